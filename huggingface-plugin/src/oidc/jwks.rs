//! The provider's JSON Web Key Set, cached per connector instance and fetched again, at most
//! once per [`JWKS_REFETCH_INTERVAL`], when a token needs a key the cache does not hold.

use std::sync::Arc;
use std::time::{Duration, Instant};

use connector_api::ConnectorError;
use jsonwebtoken::jwk::JwkSet;
use tokio::sync::Mutex;
use url::Url;

use super::discovery;
use crate::config::Config;
use crate::constants::JWKS_REFETCH_INTERVAL;
use crate::http::{self, Step};
use crate::scrub::Scrubber;

#[derive(Default)]
struct Cached {
    jwks_uri: Option<Url>,
    keys: Option<Arc<JwkSet>>,
    refetches: RefetchLimit,
}

/// The keys and where they come from; fetched on first use, again on [`KeyCache::refetch`].
#[derive(Default)]
pub struct KeyCache {
    cached: Mutex<Cached>,
}

impl std::fmt::Debug for KeyCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyCache").finish_non_exhaustive()
    }
}

impl KeyCache {
    /// The cached keys, fetched first if there are none yet. Concurrent sign-ins wait for one
    /// fetch rather than each fetching.
    pub async fn get(
        &self,
        config: &Config,
        held: &Scrubber,
    ) -> Result<Arc<JwkSet>, ConnectorError> {
        let mut cached = self.cached.lock().await;
        match &cached.keys {
            Some(keys) => Ok(Arc::clone(keys)),
            None => fetch_into(&mut cached, config, held).await,
        }
    }

    /// Keys newer than `stale` (the set a token failed against): those another sign-in fetched
    /// meanwhile, else freshly fetched ones; `None` when a refetch happened less than
    /// [`JWKS_REFETCH_INTERVAL`] ago, so that tokens that fail on purpose cannot make the
    /// connector hammer the provider.
    pub async fn refetch(
        &self,
        config: &Config,
        stale: &Arc<JwkSet>,
        held: &Scrubber,
    ) -> Result<Option<Arc<JwkSet>>, ConnectorError> {
        let mut cached = self.cached.lock().await;
        if let Some(keys) = cached
            .keys
            .as_ref()
            .filter(|keys| !Arc::ptr_eq(keys, stale))
        {
            return Ok(Some(Arc::clone(keys)));
        }
        match cached.refetches.allow(Instant::now()) {
            true => fetch_into(&mut cached, config, held).await.map(Some),
            false => Ok(None),
        }
    }
}

async fn fetch_into(
    cached: &mut Cached,
    config: &Config,
    held: &Scrubber,
) -> Result<Arc<JwkSet>, ConnectorError> {
    let uri = match &cached.jwks_uri {
        Some(uri) => uri.clone(),
        None => discovery::jwks_uri(config, held.clone()).await?,
    };
    cached.jwks_uri = Some(uri.clone());
    let keys = Arc::new(fetch(config, uri, held).await?);
    cached.keys = Some(Arc::clone(&keys));
    Ok(keys)
}

async fn fetch(config: &Config, uri: Url, held: &Scrubber) -> Result<JwkSet, ConnectorError> {
    let request = http::client()
        .get(uri)
        .header(reqwest::header::ACCEPT, "application/json");
    let reply = http::send(config, request, Step::Jwks, held.clone()).await?;
    match reply.status.as_u16() {
        200..=299 => reply.json(),
        429 => Err(reply.rate_limited()),
        _ => Err(reply.unexpected_status()),
    }
}

/// At most one refetch per interval; the first is always allowed.
#[derive(Debug)]
struct RefetchLimit {
    interval: Duration,
    last: Option<Instant>,
}

impl Default for RefetchLimit {
    fn default() -> Self {
        Self {
            interval: JWKS_REFETCH_INTERVAL,
            last: None,
        }
    }
}

impl RefetchLimit {
    /// Whether a refetch may happen `now`; if so, it counts from `now` (failed or not).
    fn allow(&mut self, now: Instant) -> bool {
        let allowed = self
            .last
            .is_none_or(|last| now.saturating_duration_since(last) >= self.interval);
        if allowed {
            self.last = Some(now);
        }
        allowed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_refetch_per_interval() {
        let mut limit = RefetchLimit::default();
        let start = Instant::now();
        assert!(limit.allow(start));
        assert!(!limit.allow(start));
        assert!(!limit.allow(start + JWKS_REFETCH_INTERVAL - Duration::from_millis(1)));
        assert!(limit.allow(start + JWKS_REFETCH_INTERVAL));
        assert!(!limit.allow(start + JWKS_REFETCH_INTERVAL + Duration::from_secs(1)));
    }
}
