//! The provider's JSON Web Key Set, cached per connector instance.

use std::sync::Arc;

use connector_api::ConnectorError;
use jsonwebtoken::jwk::JwkSet;
use tokio::sync::Mutex;

use super::discovery;
use crate::config::Config;
use crate::http::{self, Step};

#[derive(Default)]
struct Cached {
    jwks_uri: Option<String>,
    keys: Option<Arc<JwkSet>>,
}

/// The keys and where they come from; fetched on first use, again when asked to `refresh`.
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
    /// The cached keys, or freshly fetched ones when there are none yet or `refresh` is set.
    /// Concurrent sign-ins wait for one fetch rather than each fetching.
    pub async fn get(&self, config: &Config, refresh: bool) -> Result<Arc<JwkSet>, ConnectorError> {
        let mut cached = self.cached.lock().await;
        if let (Some(keys), false) = (&cached.keys, refresh) {
            return Ok(Arc::clone(keys));
        }
        let uri = match &cached.jwks_uri {
            Some(uri) => uri.clone(),
            None => discovery::jwks_uri(config).await?,
        };
        cached.jwks_uri = Some(uri.clone());
        let keys = Arc::new(fetch(config, &uri).await?);
        cached.keys = Some(Arc::clone(&keys));
        Ok(keys)
    }
}

async fn fetch(config: &Config, uri: &str) -> Result<JwkSet, ConnectorError> {
    let request = http::client()
        .get(uri)
        .header(reqwest::header::ACCEPT, "application/json");
    let reply = http::send(request, Step::Jwks, config.timeout).await?;
    match reply.status.as_u16() {
        200..=299 => reply.json(),
        429 => Err(reply.rate_limited()),
        _ => Err(reply.unexpected_status()),
    }
}
