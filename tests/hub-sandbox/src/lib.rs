//! A loopback stand-in for huggingface.co's OAuth endpoints, for end-to-end tests.
//!
//! [`HubSandbox::start`] serves, on `127.0.0.1` and an ephemeral port:
//! `GET /oauth/authorize` (auto-approves [`SandboxConfig::user`] with a `303`),
//! `POST /oauth/token` (authorization code + PKCE S256, client auth by Basic or form),
//! `GET /oauth/userinfo` (fields by granted scope) and `GET /avatars/{name}.svg`.
//! Every request is recorded, and [`Fault`]s can be armed per [`Route`].

mod authorize;
mod avatar;
mod config;
mod faults;
mod params;
mod record;
mod server;
mod store;
mod token;
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
pub use faults::{Fault, Route};
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
        let shared = Arc::new(Shared::new(format!("http://{addr}"), config));
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
