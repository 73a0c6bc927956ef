//! Pending sign-ins in Redis, shared by several broker instances behind a load balancer.
//!
//! Keys, under the broker's prefix (`session_prefix`), so that one Redis serves several brokers:
//!
//! - `{prefix}:pending:{key}`: the [`PendingSignIn`] as JSON, set with `SET … PX <ttl> NX`, so
//!   Redis itself forgets it when the sign-in's lifetime (10 minutes) ends. `key` is the SHA-256
//!   of the state (the broker never hands the state itself to the store).
//! - `{prefix}:used:{key}`: a tombstone (`1`), kept [`TOMBSTONE_GRACE`], so that a replayed
//!   callback is told "already used" rather than "unknown".
//! - `{prefix}:binding-key`: the key binding cookies are authenticated with (32 random bytes,
//!   base64url), so that every instance honours the cookies the others issued. The first
//!   instance to connect creates it (`SET … NX`); the others adopt it. Each maintenance round
//!   sets it again if missing (a Redis restarted without persistence) and adopts what Redis
//!   holds, so the instances converge on one key. Redis already holds PKCE verifiers: whoever
//!   reads it is trusted alike.
//!
//! [`PendingStore::take`] is one Lua script (GET, DEL, SET tombstone): Redis runs scripts one at
//! a time, so two instances taking the same state at once get it once between them.
//!
//! The value is what the callback needs and nothing more: connector id, factory, build, the
//! connector's session (which may hold a PKCE verifier, needed to redeem the code), the expiry
//! and the SHA-256 of the browser's binding cookie. No token ever goes there.
//!
//! Failures: every Redis error (unreachable, timeout, refused) is a [`StoreError`], which the
//! routes answer with 503 `store_unavailable`. Commands time out after [`COMMAND_TIMEOUT`], so
//! a dead Redis never hangs a request; the connection manager reconnects by itself on the next
//! command once Redis is back.

use std::sync::RwLock;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use futures_util::future::{BoxFuture, FutureExt as _};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Script, Value};

use super::{PendingSignIn, PendingStore, StoreError, TOMBSTONE_GRACE, Taken, now_ms};
use crate::binding::BindingKey;
use crate::config::SecretUrl;

/// The longest a store command (connecting included) may take before it counts as a failure.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(3);

/// Takes `KEYS[1]` (pending) and leaves the tombstone `KEYS[2]` for `ARGV[1]` ms.
/// Returns the value, `1` if only the tombstone exists (already used), or nil (unknown).
const TAKE: &str = r#"
local value = redis.call('GET', KEYS[1])
if value then
  redis.call('DEL', KEYS[1])
  redis.call('SET', KEYS[2], '1', 'PX', ARGV[1])
  return value
end
if redis.call('EXISTS', KEYS[2]) == 1 then
  return 1
end
return false
"#;

/// The Redis implementation of [`PendingStore`]. Cheap to share: one multiplexed connection,
/// reconnected by [`ConnectionManager`] when lost.
pub struct RedisStore {
    connection: ConnectionManager,
    prefix: String,
    take: Script,
    url: SecretUrl,
    /// The shared binding key, as last read from Redis.
    binding_key: RwLock<([u8; 32], BindingKey)>,
}

impl RedisStore {
    /// Connects to `url` and checks with a `PING` that Redis answers: a broker whose store is
    /// unreachable does not start. Errors name the URL with its password redacted.
    pub async fn connect(url: &SecretUrl, prefix: &str) -> Result<RedisStore, StoreError> {
        let fail = |e: &dyn std::fmt::Display| {
            StoreError(format!(
                "cannot reach the session store {url}: {}",
                redact(url, &e.to_string())
            ))
        };
        let client = redis::Client::open(url.expose()).map_err(|e| fail(&e))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_response_timeout(Some(Duration::from_secs(2)))
            // One quick retry per attempt: while Redis is down a request fails at once (or within
            // the timeouts, for a Redis that hangs) instead of waiting out a long backoff; the
            // next request tries again.
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_millis(200));
        let connection = tokio::time::timeout(
            COMMAND_TIMEOUT,
            client.get_connection_manager_with_config(config),
        )
        .await
        .map_err(|_| fail(&"timed out"))?
        .map_err(|e| fail(&e))?;
        let mut store = RedisStore {
            connection,
            prefix: prefix.to_string(),
            take: Script::new(TAKE),
            url: url.clone(),
            binding_key: RwLock::new(random_key()),
        };
        store.ping().await.map_err(|e| fail(&e.0))?;
        let shared = store.sync_binding_key().await.map_err(|e| fail(&e.0))?;
        store.binding_key = RwLock::new(shared);
        tracing::info!(url = %url, prefix, "pending sign-ins are kept in Redis");
        Ok(store)
    }

    /// `{prefix}:pending:{key}`.
    pub fn pending_key(&self, key: &str) -> String {
        format!("{}:pending:{key}", self.prefix)
    }

    /// `{prefix}:used:{key}`.
    pub fn used_key(&self, key: &str) -> String {
        format!("{}:used:{key}", self.prefix)
    }

    /// `{prefix}:binding-key`.
    pub fn binding_key_name(&self) -> String {
        format!("{}:binding-key", self.prefix)
    }

    /// Sets the shared binding key to ours if Redis has none, and returns the one Redis holds.
    async fn sync_binding_key(&self) -> Result<([u8; 32], BindingKey), StoreError> {
        let ours = URL_SAFE_NO_PAD.encode(self.key_bytes());
        let mut connection = self.connection.clone();
        let name = self.binding_key_name();
        let held: Option<String> = self
            .run(async move {
                redis::pipe()
                    .cmd("SET")
                    .arg(&name)
                    .arg(ours)
                    .arg("NX")
                    .ignore()
                    .cmd("GET")
                    .arg(&name)
                    .query_async::<(Option<String>,)>(&mut connection)
                    .await
                    .map(|(held,)| held)
            })
            .await?;
        let bytes = held
            .and_then(|h| URL_SAFE_NO_PAD.decode(h).ok())
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
            .ok_or_else(|| {
                StoreError(format!(
                    "`{}` is not a 32-byte key",
                    self.binding_key_name()
                ))
            })?;
        Ok((bytes, BindingKey::from_bytes(bytes)))
    }

    fn key_bytes(&self) -> [u8; 32] {
        self.binding_key.read().unwrap_or_else(|p| p.into_inner()).0
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let mut connection = self.connection.clone();
        let pong: String = self
            .run(async move { redis::cmd("PING").query_async(&mut connection).await })
            .await?;
        match pong.as_str() {
            "PONG" => Ok(()),
            other => Err(StoreError(format!("unexpected PING answer `{other}`"))),
        }
    }

    /// Runs one command with [`COMMAND_TIMEOUT`], mapping every failure to a [`StoreError`].
    async fn run<T>(
        &self,
        command: impl Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, StoreError> {
        match tokio::time::timeout(COMMAND_TIMEOUT, command).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(StoreError(format!(
                "redis {}: {}",
                self.url,
                redact(&self.url, &e.to_string())
            ))),
            Err(_) => Err(StoreError(format!(
                "redis {}: no answer within {COMMAND_TIMEOUT:?}",
                self.url
            ))),
        }
    }
}

impl PendingStore for RedisStore {
    fn put<'a>(
        &'a self,
        key: &'a str,
        sign_in: PendingSignIn,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        async move {
            let json = serde_json::to_string(&sign_in)
                .map_err(|e| StoreError(format!("cannot encode a pending sign-in: {e}")))?;
            // Redis's own expiry, in milliseconds: the sign-in's lifetime left.
            let ttl_ms = sign_in.expires_at_ms.saturating_sub(now_ms()).max(1);
            let mut connection = self.connection.clone();
            let pending_key = self.pending_key(key);
            let stored: Value = self
                .run(async move {
                    redis::cmd("SET")
                        .arg(&pending_key)
                        .arg(json)
                        .arg("PX")
                        .arg(ttl_ms)
                        .arg("NX")
                        .query_async(&mut connection)
                        .await
                })
                .await?;
            match stored {
                Value::Okay => Ok(()),
                // NX refused: the key exists. States are 256 random bits, so this is a bug.
                _ => Err(StoreError("a pending sign-in with this key exists".into())),
            }
        }
        .boxed()
    }

    fn take<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Taken, StoreError>> {
        async move {
            let mut connection = self.connection.clone();
            let mut invocation = self.take.prepare_invoke();
            invocation
                .key(self.pending_key(key))
                .key(self.used_key(key))
                .arg(TOMBSTONE_GRACE.as_millis() as u64);
            let value: Value = self
                .run(async move { invocation.invoke_async(&mut connection).await })
                .await?;
            match value {
                Value::BulkString(bytes) => serde_json::from_slice(&bytes)
                    .map(Taken::Found)
                    .map_err(|e| StoreError(format!("a pending sign-in does not decode: {e}"))),
                Value::Int(1) => Ok(Taken::Used),
                Value::Nil => Ok(Taken::Missing),
                other => Err(StoreError(format!(
                    "unexpected answer from the take script: {other:?}"
                ))),
            }
        }
        .boxed()
    }

    /// Redis expires entries and tombstones itself; this keeps the shared binding key in place.
    fn purge(&self, _now_ms: u64) -> BoxFuture<'_, Result<(), StoreError>> {
        async {
            let shared = self.sync_binding_key().await?;
            *self.binding_key.write().unwrap_or_else(|p| p.into_inner()) = shared;
            Ok(())
        }
        .boxed()
    }

    fn binding_key(&self) -> Option<BindingKey> {
        Some(
            self.binding_key
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .1
                .clone(),
        )
    }

    fn kind(&self) -> &'static str {
        "redis"
    }

    fn is_shared(&self) -> bool {
        true
    }

    fn check(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        self.ping().boxed()
    }
}

fn random_key() -> ([u8; 32], BindingKey) {
    let bytes = rand::random();
    (bytes, BindingKey::from_bytes(bytes))
}

/// Removes the URL's password from an error message, should a driver message ever quote it.
fn redact(url: &SecretUrl, message: &str) -> String {
    let password = url::Url::parse(url.expose())
        .ok()
        .and_then(|u| u.password().map(str::to_string));
    match password {
        Some(p) if !p.is_empty() => message.replace(&p, "***"),
        _ => message.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_hides_the_password() {
        let url = SecretUrl::new("redis://:hunter2@127.0.0.1:1/0");
        assert_eq!(redact(&url, "auth hunter2 failed"), "auth *** failed");
        assert_eq!(url.to_string(), "redis://:***@127.0.0.1:1/0");
    }

    #[tokio::test]
    async fn an_unreachable_redis_is_a_clear_error_without_the_password() {
        // Port 1 on loopback: nothing listens there.
        let url = SecretUrl::new("redis://:hunter2@127.0.0.1:1/0");
        let e = match RedisStore::connect(&url, "p").await {
            Ok(_) => panic!("connected to nothing"),
            Err(e) => e.to_string(),
        };
        assert!(
            e.contains("cannot reach the session store redis://:***@127.0.0.1:1/0"),
            "{e}"
        );
        assert!(!e.contains("hunter2"), "{e}");
    }
}
