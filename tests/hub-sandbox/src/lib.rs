//! A loopback stand-in for huggingface.co's OAuth endpoints, for end-to-end tests.
//!
//! [`HubSandbox::start`] serves, on `127.0.0.1` and an ephemeral port:
//! `GET /oauth/authorize` (auto-approves [`SandboxConfig::user`] with a `303`),
//! `POST /oauth/token` (authorization code + PKCE S256, client auth by Basic or form),
//! `GET /oauth/userinfo` (fields by granted scope) and `GET /avatars/{name}.svg`.
//! Every request is recorded, and [`Fault`]s can be armed per [`Route`].
//!
//! OpenID Connect: `GET /.well-known/openid-configuration` (issuer = [`HubSandbox::endpoint`]),
//! `GET /oauth/jwks` (two RSA keys; see [`HubSandbox::rotate_signing_key`] and
//! [`HubSandbox::replace_signing_key`]) and, when the
//! granted scope has `openid`, an RS256 `id_token` in the authorization-code token response
//! (forged on demand: [`HubSandbox::set_id_token_forgery`]). Token responses also carry a
//! `refresh_token`, redeemable once with `grant_type=refresh_token` (rotation); refresh
//! responses carry a new `access_token` and `refresh_token` but never an `id_token`.
//! [`Fault::HugeBody`] serves oversized bodies, with or without `Content-Length`;
//! [`Fault::ResetMidBody`], [`Fault::Trickle`], [`Fault::Redirect`] and [`Fault::ContentType`]
//! break the transport; [`Fault::EchoRequest`] quotes the whole request back (credentials
//! included), as a careless provider's error does. For load tests: [`HubSandbox::set_random_failure_rate`],
//! [`HubSandbox::set_unique_users`] and [`HubSandbox::set_recording`].

mod authorize;
mod avatar;
mod config;
mod discovery;
mod echo;
mod faults;
mod huge_body;
mod id_token;
mod jwks;
mod load;
mod params;
mod record;
mod refresh;
mod server;
mod store;
mod token;
mod transport;
mod userinfo;

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use config::{
    DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, ENDPOINT_PLACEHOLDER, SandboxClient, SandboxConfig,
    SandboxOrg, SandboxUser,
};
pub use echo::EchoFormat;
pub use faults::{Fault, Route};
pub use id_token::{
    FORGED_AUDIENCE, FORGED_ISSUER, FORGED_NONCE, GARBAGE_ID_TOKEN, IdTokenForgery, UNKNOWN_KID,
};
pub use jwks::{IDLE_KEY_ID, INITIAL_KEY_ID, ROTATED_KEY_ID};
pub use record::RecordedRequest;
pub use store::CodeParams;
pub use token::pkce_challenge;

use server::{Shared, lock};

/// How long [`HubSandbox::shutdown`] waits for in-flight requests.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// A running sandbox; the server stops on [`HubSandbox::shutdown`] or when dropped.
#[derive(Debug)]
pub struct HubSandbox {
    shared: Arc<Shared>,
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl HubSandbox {
    /// Starts a sandbox on `127.0.0.1` and an ephemeral port.
    pub async fn start(config: SandboxConfig) -> io::Result<HubSandbox> {
        Self::start_on(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), config).await
    }

    /// Starts a sandbox on `addr`, which must be a loopback address.
    pub async fn start_on(addr: SocketAddr, config: SandboxConfig) -> io::Result<HubSandbox> {
        if !addr.ip().is_loopback() {
            let message = format!("hub-sandbox only listens on loopback addresses, not {addr}");
            return Err(io::Error::new(io::ErrorKind::InvalidInput, message));
        }
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::new(format!("http://{addr}"), config)?);
        let (stop, stopped) = oneshot::channel::<()>();
        let app = server::router(shared.clone());
        let task = tokio::spawn(async move {
            let server = axum::serve(listener, app).with_graceful_shutdown(async {
                // A dropped sender stops the server as well.
                let _ = stopped.await;
            });
            if let Err(error) = server.await {
                tracing::warn!(%error, "hub-sandbox server failed");
            }
        });
        tracing::debug!(%addr, "hub-sandbox listening");
        Ok(HubSandbox {
            shared,
            addr,
            stop: Some(stop),
            task,
        })
    }

    /// Base URL, e.g. `http://127.0.0.1:41234` (no trailing slash).
    pub fn endpoint(&self) -> String {
        self.shared.endpoint.clone()
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every later request to `route` gets `fault`, until [`HubSandbox::clear_faults`].
    pub fn set_fault(&self, route: Route, fault: Fault) {
        lock(&self.shared.faults).set(route, fault);
    }

    /// Only the next request to `route` gets `fault`; repeated calls queue one fault per request.
    /// One-shot faults take precedence over [`HubSandbox::set_fault`].
    pub fn set_fault_once(&self, route: Route, fault: Fault) {
        lock(&self.shared.faults).push_once(route, fault);
    }

    /// Disarms every fault.
    pub fn clear_faults(&self) {
        lock(&self.shared.faults).clear();
    }

    /// Every request received so far, in order (faulted ones included).
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.shared.requests).clone()
    }

    /// Forgets the recorded requests.
    pub fn clear_requests(&self) {
        lock(&self.shared.requests).clear();
    }

    /// The user that later authorizations (and [`HubSandbox::issue_code`]) are for.
    pub fn set_user(&self, user: SandboxUser) {
        *lock(&self.shared.user) = user;
    }

    /// When `true`, `/oauth/authorize` redirects with `error=access_denied`.
    pub fn set_deny(&self, deny: bool) {
        self.shared.deny.store(deny, Ordering::SeqCst);
    }

    /// Mints a code for the current user without going through `/oauth/authorize`.
    pub fn issue_code(&self, params: CodeParams) -> String {
        authorize::issue_code(&self.shared, params)
    }

    /// Makes every code issued so far expired.
    pub fn expire_all_codes(&self) {
        lock(&self.shared.store).expire_all_codes();
    }

    /// Makes every access token issued so far invalid (userinfo answers `401`).
    pub fn revoke_all_tokens(&self) {
        lock(&self.shared.store).revoke_all_tokens();
    }

    /// Makes every refresh token issued so far unusable (`400 invalid_grant`).
    pub fn revoke_all_refresh_tokens(&self) {
        lock(&self.shared.store).revoke_all_refresh_tokens();
    }

    /// Makes every refresh token issued so far expired (`400 invalid_grant`).
    pub fn expire_all_refresh_tokens(&self) {
        lock(&self.shared.store).expire_all_refresh_tokens();
    }

    /// Signs later id_tokens with `sandbox-key-3` ([`ROTATED_KEY_ID`]), published in the JWKS
    /// from now on next to the two earlier keys, so a client with a cached JWKS meets an
    /// unknown `kid` and must fetch it again. Calling it again changes nothing.
    pub fn rotate_signing_key(&self) {
        lock(&self.shared.keys).rotate();
    }

    /// Signs later id_tokens with `sandbox-key-4`, published in the JWKS from now on in place
    /// of the signing key and under its `kid`: a client that caches keys by `kid` holds a key
    /// that no longer verifies, and must fetch the JWKS again. Calling it again changes nothing.
    pub fn replace_signing_key(&self) {
        lock(&self.shared.keys).replace_keeping_kid();
    }

    /// `kid` of the key that signs id_tokens now ([`INITIAL_KEY_ID`] until rotation).
    pub fn signing_key_id(&self) -> &'static str {
        lock(&self.shared.keys).active().kid
    }

    /// How many requests reached `/oauth/jwks` so far, faulted ones included (not reset by
    /// [`HubSandbox::clear_requests`]); to check that a client caches the JWKS.
    pub fn jwks_fetches(&self) -> usize {
        self.shared.jwks_fetches.load(Ordering::SeqCst)
    }

    /// Every later id_token is forged as `forgery` says, until cleared with `None`.
    pub fn set_id_token_forgery(&self, forgery: Option<IdTokenForgery>) {
        *lock(&self.shared.id_token_forgery) = forgery;
    }

    /// From now on a `rate` share (0 to 1) of token and userinfo requests, drawn from a generator
    /// seeded with `seed`, answer a bare `500` (armed faults take precedence); `0` turns it off.
    pub fn set_random_failure_rate(&self, rate: f64, seed: u64) {
        self.shared.load.set_failure_rate(rate, seed);
    }

    /// How many random failures were answered so far.
    pub fn random_failures(&self) -> usize {
        self.shared.load.failures.load(Ordering::SeqCst)
    }

    /// When `true`, each later authorization (and [`HubSandbox::issue_code`]) is for a new user:
    /// the current one with a sequence number in `sub` (`{n:024x}`), `name` and
    /// `preferred_username`, so every sign-in's profile is distinct.
    pub fn set_unique_users(&self, unique: bool) {
        self.shared
            .load
            .unique_users
            .store(unique, Ordering::SeqCst);
    }

    /// Turns request recording off (or on again); [`HubSandbox::requests`] then misses the
    /// requests in between. Long load tests turn it off so that memory stays flat.
    pub fn set_recording(&self, record: bool) {
        self.shared.recording.store(record, Ordering::SeqCst);
    }

    /// Forgets every code, access token and refresh token issued so far (using one later is
    /// refused as unknown). Long load tests call it so that the sandbox's memory stays flat.
    pub fn forget_grants(&self) {
        *lock(&self.shared.store) = store::Store::default();
    }

    /// Stops accepting connections and waits (a few seconds at most) for in-flight requests.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = tokio::time::timeout(SHUTDOWN_GRACE, &mut self.task).await;
    }
}

impl Drop for HubSandbox {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.abort();
    }
}
