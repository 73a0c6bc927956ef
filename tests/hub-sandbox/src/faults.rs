//! Injected failures: which route fails, how, and for how long.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::echo::{self, EchoFormat};
use crate::record::RecordedRequest;
use crate::{huge_body, transport};

/// An OAuth endpoint that faults can target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Route {
    /// `/oauth/authorize`
    Authorize,
    /// `/oauth/token`
    Token,
    /// `/oauth/userinfo`
    Userinfo,
    /// `/.well-known/openid-configuration`
    Discovery,
    /// `/oauth/jwks`
    Jwks,
}

impl Route {
    /// The route's path, e.g. `/oauth/token`.
    pub fn path(self) -> &'static str {
        match self {
            Route::Authorize => "/oauth/authorize",
            Route::Token => "/oauth/token",
            Route::Userinfo => "/oauth/userinfo",
            Route::Discovery => "/.well-known/openid-configuration",
            Route::Jwks => "/oauth/jwks",
        }
    }

    /// Every route, for lookups by path.
    const ALL: [Route; 5] = [
        Route::Authorize,
        Route::Token,
        Route::Userinfo,
        Route::Discovery,
        Route::Jwks,
    ];

    pub(crate) fn from_path(path: &str) -> Option<Route> {
        Route::ALL.into_iter().find(|route| route.path() == path)
    }
}

/// A failure answered instead of (or, for [`Fault::Stall`], before) the normal response.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Fault {
    /// Any raw response (500, 502 with HTML, 422 empty, 200 with a wrong body, …).
    Status {
        /// HTTP status (invalid codes become 500).
        status: u16,
        /// Body, sent as is.
        body: String,
        /// `Content-Type` header value.
        content_type: String,
    },
    /// A JSON response, e.g. `400 {"error":"invalid_grant"}` or `200 {"invalid_field":true}`.
    Json {
        /// HTTP status (invalid codes become 500).
        status: u16,
        /// Body, serialized with `Content-Type: application/json`.
        body: serde_json::Value,
    },
    /// `429` with `Retry-After`, Hugging Face's `RateLimit` headers and a JSON error body.
    RateLimited {
        /// Value of `Retry-After` and of the `t=` of `RateLimit`.
        retry_after_secs: u64,
    },
    /// Wait this long, then answer normally (to exercise client timeouts).
    Stall(Duration),
    /// `200` with a JSON-looking body of exactly `bytes` bytes (`{"padding":"xxx…"}`; fewer
    /// than 14 bytes are all `x`), to exercise clients' response size limits.
    HugeBody {
        /// Total body size in bytes.
        bytes: usize,
        /// `false`: sent with `Content-Length`, so a client may refuse before reading.
        /// `true`: streamed in chunks without `Content-Length` (chunked transfer encoding),
        /// so a client must enforce its limit while reading.
        chunked: bool,
    },
    /// `200 application/json`, a first part of a body, then the connection is dropped (no
    /// terminating chunk): a provider or proxy that dies mid-answer.
    ResetMidBody,
    /// The normal answer, its body sent `chunk` bytes at a time, one chunk every `every` (the
    /// first at once): a valid but slow body, to exercise timeouts that cover the body.
    Trickle {
        /// Bytes per chunk (0 counts as 1).
        chunk: usize,
        /// Pause between two chunks.
        every: Duration,
    },
    /// A redirect (`status`, e.g. 302 or 307; invalid codes become 302) to `location`, with an
    /// empty body: an endpoint that sends its client elsewhere (which it must not follow).
    Redirect {
        /// `Location` header value.
        location: String,
        /// HTTP status.
        status: u16,
    },
    /// The normal answer, with its `Content-Type` replaced by this value.
    ContentType(String),
    /// `status` with the whole request echoed back (request line, every header with
    /// `Authorization`, the body, and the Basic credentials decoded and form-encoded), wrapped
    /// as `format` says: a provider that quotes what it was sent in its error.
    EchoRequest {
        /// HTTP status (invalid codes become 500).
        status: u16,
        /// Text, or inside an OAuth or other JSON error.
        format: EchoFormat,
    },
}

impl Fault {
    /// How long to wait before answering.
    pub(crate) fn delay(&self) -> Option<Duration> {
        match self {
            Fault::Stall(delay) => Some(*delay),
            _ => None,
        }
    }

    /// The response to `request` that replaces normal handling; `None` for [`Fault::Stall`].
    pub(crate) fn response(&self, request: &RecordedRequest) -> Option<Response> {
        match self {
            Fault::Status {
                status,
                body,
                content_type,
            } => Some(raw(*status, body.clone(), content_type)),
            Fault::Json { status, body } => {
                Some(raw(*status, body.to_string(), "application/json"))
            }
            Fault::RateLimited { retry_after_secs } => Some(rate_limited(*retry_after_secs)),
            Fault::Stall(_) => None,
            Fault::HugeBody { bytes, chunked } => Some(huge_body::response(*bytes, *chunked)),
            Fault::ResetMidBody => Some(transport::reset_mid_body()),
            Fault::Redirect { location, status } => Some(transport::redirect(location, *status)),
            Fault::EchoRequest { status, format } => {
                Some(echo::response(*status, *format, request))
            }
            Fault::Trickle { .. } | Fault::ContentType(_) => None,
        }
    }

    /// The normal answer as this fault alters it (trickled, relabelled), else unchanged.
    pub(crate) async fn reshape(&self, response: Response) -> Response {
        match self {
            Fault::Trickle { chunk, every } => transport::trickle(response, *chunk, *every).await,
            Fault::ContentType(value) => {
                let mut response = response;
                let headers = response.headers_mut();
                headers.remove(header::CONTENT_TYPE);
                if let Ok(value) = HeaderValue::from_str(value) {
                    headers.insert(header::CONTENT_TYPE, value);
                }
                response
            }
            _ => response,
        }
    }
}

pub(crate) fn raw(status: u16, body: String, content_type: &str) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.remove(header::CONTENT_TYPE);
    if let Ok(value) = HeaderValue::from_str(content_type) {
        headers.insert(header::CONTENT_TYPE, value);
    }
    response
}

fn rate_limited(secs: u64) -> Response {
    let body = serde_json::json!({
        "error": "Too Many Requests",
        "error_description": format!("Rate limit reached, retry in {secs} seconds"),
    });
    let mut response = raw(429, body.to_string(), "application/json");
    let headers = response.headers_mut();
    headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
    let limit = format!("\"api\";r=0;t={secs}");
    if let Ok(value) = HeaderValue::from_str(&limit) {
        headers.insert("ratelimit", value);
    }
    headers.insert(
        "ratelimit-policy",
        HeaderValue::from_static("\"fixed window\";\"api\";q=1000;w=300"),
    );
    response
}

/// Faults currently armed, per route.
#[derive(Debug, Default)]
pub(crate) struct Faults {
    sticky: HashMap<Route, Fault>,
    once: HashMap<Route, VecDeque<Fault>>,
}

impl Faults {
    pub(crate) fn set(&mut self, route: Route, fault: Fault) {
        self.sticky.insert(route, fault);
    }

    pub(crate) fn push_once(&mut self, route: Route, fault: Fault) {
        self.once.entry(route).or_default().push_back(fault);
    }

    pub(crate) fn clear(&mut self) {
        self.sticky.clear();
        self.once.clear();
    }

    /// The fault for the request now arriving at `route`: one-shot faults first.
    pub(crate) fn take(&mut self, route: Route) -> Option<Fault> {
        let once = self.once.get_mut(&route).and_then(VecDeque::pop_front);
        once.or_else(|| self.sticky.get(&route).cloned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn once_faults_come_before_sticky_ones_and_are_consumed() {
        let mut faults = Faults::default();
        let stall = |ms| Fault::Stall(Duration::from_millis(ms));
        faults.set(Route::Token, stall(1));
        faults.push_once(Route::Token, stall(2));
        faults.push_once(Route::Token, stall(3));
        assert_eq!(faults.take(Route::Userinfo), None);
        assert_eq!(faults.take(Route::Token), Some(stall(2)));
        assert_eq!(faults.take(Route::Token), Some(stall(3)));
        assert_eq!(faults.take(Route::Token), Some(stall(1)));
        assert_eq!(faults.take(Route::Token), Some(stall(1)));
        faults.clear();
        assert_eq!(faults.take(Route::Token), None);
    }

    #[test]
    fn out_of_range_status_becomes_500() {
        let fault = Fault::Json {
            status: 42,
            body: serde_json::json!({}),
        };
        let request = RecordedRequest {
            method: "GET".into(),
            path: "/".into(),
            query: None,
            headers: Vec::new(),
            body: String::new(),
        };
        let response = fault.response(&request).expect("a response");
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }
}
