//! The in-process store: the default, for a single broker instance.

use std::collections::HashMap;
use std::sync::Mutex;

use futures_util::future::{BoxFuture, FutureExt as _};

use super::{PendingSignIn, PendingStore, StoreError, TOMBSTONE_GRACE, Taken};

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
        let mut entries = self.lock();
        entries.retain(|_, e| e.expires_at_ms().saturating_add(grace) > now_ms);
        // A burst leaves a large, mostly empty table behind: give the memory back.
        if entries.len() < entries.capacity() / 4 {
            entries.shrink_to_fit();
        }
        drop(entries);
        async { Ok(()) }.boxed()
    }

    fn kind(&self) -> &'static str {
        "memory"
    }

    fn entries_in_memory(&self) -> Option<usize> {
        Some(self.len())
    }
}
