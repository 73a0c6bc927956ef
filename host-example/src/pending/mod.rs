//! Sign-ins between `/sign-in/{id}` and `/callback/{id}`, kept server-side and keyed by state.
//!
//! [`PendingStore`] is small on purpose so that a shared store can implement it: the value is
//! plain serializable data, and [`PendingStore::take`] is a single-use take-and-delete that leaves
//! a tombstone, so a replayed callback is told apart from a forged one. Two implementations:
//! [`MemoryStore`] (the default, one broker instance) and [`RedisStore`] (several instances
//! behind a load balancer: a sign-in started on one finishes on any other, exactly once).

mod memory;
mod redis;

pub use self::memory::MemoryStore;
pub use self::redis::RedisStore;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::future::{BoxFuture, FutureExt as _};
use serde::{Deserialize, Serialize};

use crate::binding::BindingKey;

/// How long an expired or used entry is remembered, so that late callbacks are told "expired"
/// or "already used" rather than "unknown". Bounds the memory an abandoned sign-in costs.
pub const TOMBSTONE_GRACE: Duration = Duration::from_secs(10 * 60);

/// A started sign-in.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingSignIn {
    /// The connector instance id the sign-in started on.
    pub connector: String,
    /// The registry generation (plugin build) that made the session; the callback uses it too
    /// when it runs in the same process ([`PendingSignIn::origin`]). A per-process counter: it
    /// means nothing to another broker instance, which goes by `build` instead.
    pub generation: u64,
    /// The factory (plugin metadata id) of the connector that made the session. A callback is
    /// never finished by a connector of another factory.
    #[serde(default)]
    pub factory: String,
    /// SHA-256 of the plugin build that made the session: the same on every instance that
    /// loaded the same file, unlike `generation`.
    #[serde(default)]
    pub build: String,
    /// The broker process that started the sign-in (a random id per [`crate::Broker`]; not a
    /// secret). Only that process counts the sign-in against its generation.
    #[serde(default)]
    pub origin: String,
    /// The connector's session (may hold a PKCE verifier: a secret).
    pub session: serde_json::Value,
    /// Unix time in milliseconds after which the callback is refused.
    pub expires_at_ms: u64,
    /// SHA-256 (hex) of the browser-binding cookie's value.
    pub binding: String,
}

impl std::fmt::Debug for PendingSignIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingSignIn")
            .field("connector", &self.connector)
            .field("generation", &self.generation)
            .field("factory", &self.factory)
            .field("build", &self.build)
            .field("origin", &self.origin)
            .field("session", &"<redacted>")
            .field("expires_at_ms", &self.expires_at_ms)
            .finish_non_exhaustive()
    }
}

/// The outcome of [`PendingStore::take`].
#[derive(Debug, PartialEq)]
pub enum Taken {
    /// The entry, now deleted; it may have expired (check `expires_at_ms`).
    Found(PendingSignIn),
    /// This state was taken before: a replayed callback.
    Used,
    /// Never stored (forged), or forgotten after [`TOMBSTONE_GRACE`].
    Missing,
}

/// The store failed (a shared store may be unreachable).
#[derive(Debug, thiserror::Error)]
#[error("pending sign-in store: {0}")]
pub struct StoreError(pub String);

/// Where pending sign-ins live. Keys are opaque strings (the broker passes a hash of the state).
pub trait PendingStore: Send + Sync + 'static {
    /// Stores a new sign-in under `key`.
    fn put<'a>(
        &'a self,
        key: &'a str,
        sign_in: PendingSignIn,
    ) -> BoxFuture<'a, Result<(), StoreError>>;

    /// Atomically removes and returns the sign-in under `key`, leaving a tombstone.
    fn take<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Taken, StoreError>>;

    /// Forgets entries and tombstones that expired more than [`TOMBSTONE_GRACE`] before `now_ms`.
    fn purge(&self, now_ms: u64) -> BoxFuture<'_, Result<(), StoreError>>;

    /// What kind of store this is, for `/healthz` and logs (`memory`, `redis`).
    fn kind(&self) -> &'static str {
        "custom"
    }

    /// Whether other broker instances see the same entries. A broker whose config names a
    /// `session_store` refuses to start over a store that is not shared, rather than fall back
    /// to memory (which would break the other instances' callbacks).
    fn is_shared(&self) -> bool {
        false
    }

    /// The key binding cookies are authenticated with, when the store shares it between
    /// instances; `None` makes the broker use a random key of its own (right for a store only
    /// one process uses). A shared store must provide one: every instance must accept the
    /// cookies the others issued.
    fn binding_key(&self) -> Option<BindingKey> {
        None
    }

    /// The entries (pending sign-ins and tombstones) this store keeps in this process's memory,
    /// which the broker caps; `None` for a store whose memory is elsewhere (Redis).
    fn entries_in_memory(&self) -> Option<usize> {
        None
    }

    /// A cheap reachability check, for `/healthz`.
    fn check(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        async { Ok(()) }.boxed()
    }
}

/// Opens the store a config asks for: [`RedisStore`] for a `session_store` URL (connecting, and
/// failing with a message naming the redacted URL when Redis does not answer), else a new
/// [`MemoryStore`].
pub async fn open(config: &crate::BrokerConfig) -> Result<Arc<dyn PendingStore>, StoreError> {
    match &config.session_store {
        Some(url) => Ok(Arc::new(
            RedisStore::connect(url, &config.session_prefix).await?,
        )),
        None => Ok(Arc::new(MemoryStore::new())),
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sign_in(expires_at_ms: u64) -> PendingSignIn {
        PendingSignIn {
            connector: "c".into(),
            generation: 1,
            factory: "f".into(),
            build: "sha".into(),
            origin: "o".into(),
            session: serde_json::json!({"codeVerifier": "v3rifier"}),
            expires_at_ms,
            binding: "b".into(),
        }
    }

    #[tokio::test]
    async fn take_is_single_use_and_purge_forgets_old_tombstones() {
        let store = MemoryStore::new();
        store.put("k", sign_in(1_000)).await.unwrap();
        assert_eq!(store.take("k").await.unwrap(), Taken::Found(sign_in(1_000)));
        assert_eq!(store.take("k").await.unwrap(), Taken::Used);
        assert_eq!(store.take("other").await.unwrap(), Taken::Missing);
        let grace = TOMBSTONE_GRACE.as_millis() as u64;
        store.purge(1_000 + grace - 1).await.unwrap();
        assert_eq!(store.len(), 1);
        store.purge(1_000 + grace).await.unwrap();
        assert!(store.is_empty());
    }

    #[test]
    fn value_round_trips_as_json_and_debug_hides_the_session() {
        let p = sign_in(5);
        let json = serde_json::to_string(&p).unwrap();
        assert_eq!(serde_json::from_str::<PendingSignIn>(&json).unwrap(), p);
        assert!(!format!("{p:?}").contains("v3rifier"));
    }
}
