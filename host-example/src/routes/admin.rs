//! `POST /admin/reload`: re-scan the plugin directory, from loopback only, never from a
//! browser, at a limited rate.
//!
//! Loopback alone does not keep web pages out: a page of any origin, open in a browser on the
//! broker's machine, can send a form POST or a `no-cors` fetch to `127.0.0.1`. Such requests
//! carry `Origin` (and, from current browsers, `Sec-Fetch-Site: cross-site`), and cannot carry a
//! custom header: a form cannot set one, and a cross-origin fetch that does needs a CORS
//! preflight this broker never grants. So a reload needs [`ADMIN_HEADER`], no `Origin`, and a
//! `Sec-Fetch-Site` (if any) of `same-origin` or `none`:
//!
//! ```sh
//! curl -X POST -H 'X-Broker-Admin: reload' http://127.0.0.1:3000/admin/reload
//! ```

use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::broker::Broker;

/// The header a reload request must carry, with the value [`ADMIN_HEADER_VALUE`].
pub const ADMIN_HEADER: &str = "x-broker-admin";
/// The value of [`ADMIN_HEADER`].
pub const ADMIN_HEADER_VALUE: &str = "reload";

/// Why a reload request was refused before anything was reloaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AdminRefusal {
    /// The peer is not on loopback.
    #[error("reload is allowed from loopback only")]
    NotLoopback,
    /// The request comes from a web page (it carries `Origin`, or a cross-site
    /// `Sec-Fetch-Site`).
    #[error("reload is not allowed from a web page")]
    CrossSite,
    /// The request lacks `X-Broker-Admin: reload`.
    #[error("reload needs the header `X-Broker-Admin: reload`")]
    MissingHeader,
    /// The previous reload started less than the minimum interval ago.
    #[error("a reload ran less than the minimum interval ago; retry after {0} s")]
    TooSoon(u64),
}

impl AdminRefusal {
    /// The code in the JSON answer.
    pub const fn code(self) -> &'static str {
        match self {
            Self::NotLoopback => "forbidden",
            Self::CrossSite => "cross_site_request",
            Self::MissingHeader => "admin_header_missing",
            Self::TooSoon(_) => "reload_rate_limited",
        }
    }

    fn respond(self) -> Response {
        let status = match self {
            Self::TooSoon(_) => StatusCode::TOO_MANY_REQUESTS,
            _ => StatusCode::FORBIDDEN,
        };
        let mut response = error(status, self.code(), &self.to_string());
        if let Self::TooSoon(secs) = self {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

/// At most one reload per `min_interval` through the endpoint (`SIGHUP` is not limited: only
/// the broker's user can send it).
pub struct ReloadGate {
    min_interval: Duration,
    last: Mutex<Option<Instant>>,
}

impl ReloadGate {
    /// A gate letting one reload through per `min_interval`.
    pub fn new(min_interval: Duration) -> Self {
        Self {
            min_interval,
            last: Mutex::new(None),
        }
    }

    /// Lets a reload start now, or says how many seconds to wait.
    fn try_start(&self) -> Result<(), AdminRefusal> {
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if let Some(wait) = last
            .map(|t| (t + self.min_interval).saturating_duration_since(now))
            .filter(|wait| !wait.is_zero())
        {
            return Err(AdminRefusal::TooSoon(
                wait.as_secs_f64().ceil().max(1.0) as u64
            ));
        }
        *last = Some(now);
        Ok(())
    }
}

/// 200 with the reload report, 500 with the reason when the reload failed (the previous
/// connectors stay), 403 for a request from elsewhere than loopback or from a web page, 429
/// with `Retry-After` within the minimum interval of the previous reload.
///
/// The peer address is the TCP peer: behind a reverse proxy on the same machine every request
/// looks local, so such a proxy must not forward `/admin/`.
pub async fn reload(
    State(broker): State<Broker>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    let admitted = admit(peer.ip(), &headers).and_then(|()| broker.inner.reload_gate.try_start());
    if let Err(refusal) = admitted {
        tracing::warn!(%peer, code = refusal.code(), "reload refused: {refusal}");
        return refusal.respond();
    }
    match broker.reload().await {
        Ok(report) => Json(report).into_response(),
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "reload_failed",
            &e.to_string(),
        ),
    }
}

/// Loopback, not from a web page, with the admin header.
fn admit(ip: IpAddr, headers: &HeaderMap) -> Result<(), AdminRefusal> {
    if !is_loopback(ip) {
        return Err(AdminRefusal::NotLoopback);
    }
    let fetch_site = headers.get("sec-fetch-site").map(HeaderValue::as_bytes);
    let same_site = matches!(fetch_site, None | Some(b"same-origin" | b"none"));
    if headers.contains_key(header::ORIGIN) || !same_site {
        return Err(AdminRefusal::CrossSite);
    }
    let values: Vec<&HeaderValue> = headers.get_all(ADMIN_HEADER).iter().collect();
    match values.as_slice() {
        [value] if value.as_bytes() == ADMIN_HEADER_VALUE.as_bytes() => Ok(()),
        _ => Err(AdminRefusal::MissingHeader),
    }
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        Json(json!({"error": {"code": code, "message": message}})),
    )
        .into_response()
}

/// 127.0.0.0/8, ::1, and IPv4-mapped loopback (`::ffff:127.0.0.1` on a dual-stack socket).
pub fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_only() {
        for ip in ["127.0.0.1", "127.1.2.3", "::1", "::ffff:127.0.0.1"] {
            assert!(is_loopback(ip.parse().unwrap()), "{ip}");
        }
        for ip in [
            "10.0.0.1",
            "192.168.1.1",
            "::ffff:10.0.0.1",
            "2001:db8::1",
            "0.0.0.0",
        ] {
            assert!(!is_loopback(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn the_gate_lets_one_reload_through_per_interval() {
        let gate = ReloadGate::new(Duration::from_secs(60));
        assert_eq!(gate.try_start(), Ok(()));
        assert!(
            matches!(gate.try_start(), Err(AdminRefusal::TooSoon(s)) if (59..=60).contains(&s))
        );
        let open = ReloadGate::new(Duration::ZERO);
        assert_eq!(open.try_start(), Ok(()));
        assert_eq!(open.try_start(), Ok(()));
    }
}
