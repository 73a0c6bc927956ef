//! Sign-ins between `/sign-in/{id}` and `/callback/{id}`, kept server-side and keyed by state.
//!
//! [`PendingStore`] is small on purpose so that a shared store (Redis, say) can implement it: the
//! value is plain serializable data, and [`PendingStore::take`] is a single-use take-and-delete
//! that leaves a tombstone, so a replayed callback is told apart from a forged one.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::future::{BoxFuture, FutureExt as _};
use serde::{Deserialize, Serialize};

/// How long an expired or used entry is remembered, so that late callbacks are told "expired"
/// or "already used" rather than "unknown". Bounds the memory an abandoned sign-in costs.
pub const TOMBSTONE_GRACE: Duration = Duration::from_secs(10 * 60);

/// A started sign-in.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingSignIn {
    /// The connector instance id the sign-in started on.
    pub connector: String,
    /// The registry generation (plugin build) that made the session; the callback uses it too.
    pub generation: u64,
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
}

enum Entry {
    Pending(PendingSignIn),
    Used { expires_at_ms: u64 },
}

impl Entry {
    fn expires_at_ms(&self) -> u64 {
        match self {
            Entry::Pending(p) => p.expires_at_ms,
            Entry::Used { expires_at_ms } => *expires_at_ms,
        }
    }
}

/// The in-process store: a map behind a mutex. Sign-ins do not survive a restart.
#[derive(Default)]
pub struct MemoryStore {
    entries: Mutex<HashMap<String, Entry>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of entries, tombstones included.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether the store holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        // A panic while holding this lock cannot leave the map half-updated: recover it.
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl PendingStore for MemoryStore {
    fn put<'a>(
        &'a self,
        key: &'a str,
        sign_in: PendingSignIn,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        self.lock().insert(key.to_string(), Entry::Pending(sign_in));
        async { Ok(()) }.boxed()
    }

    fn take<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Taken, StoreError>> {
        let mut entries = self.lock();
        let taken = match entries.get_mut(key) {
            None => Taken::Missing,
            Some(Entry::Used { .. }) => Taken::Used,
            Some(entry) => {
                let expires_at_ms = entry.expires_at_ms();
                match std::mem::replace(entry, Entry::Used { expires_at_ms }) {
                    Entry::Pending(p) => Taken::Found(p),
                    Entry::Used { .. } => Taken::Used,
                }
            }
        };
        async { Ok(taken) }.boxed()
    }

    fn purge(&self, now_ms: u64) -> BoxFuture<'_, Result<(), StoreError>> {
        let grace = TOMBSTONE_GRACE.as_millis() as u64;
        self.lock()
            .retain(|_, e| e.expires_at_ms().saturating_add(grace) > now_ms);
        async { Ok(()) }.boxed()
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
