//! Shared state, routes and the recording/fault middleware.

use std::io;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::config::{ENDPOINT_PLACEHOLDER, SandboxClient, SandboxConfig, SandboxUser};
use crate::faults::{Faults, Route};
use crate::id_token::IdTokenForgery;
use crate::jwks::SigningKeys;
use crate::record::RecordedRequest;
use crate::store::Store;
use crate::{authorize, avatar, discovery, jwks, load, token, userinfo};

/// Largest request body the sandbox reads.
const MAX_BODY: usize = 1 << 20;

/// State shared by the handlers and the [`crate::HubSandbox`] handle.
#[derive(Debug)]
pub(crate) struct Shared {
    pub endpoint: String,
    pub clients: Vec<SandboxClient>,
    pub code_ttl: Duration,
    pub token_ttl_secs: u64,
    pub user: Mutex<SandboxUser>,
    pub deny: AtomicBool,
    pub faults: Mutex<Faults>,
    pub requests: Mutex<Vec<RecordedRequest>>,
    pub store: Mutex<Store>,
    pub keys: Mutex<SigningKeys>,
    pub id_token_forgery: Mutex<Option<IdTokenForgery>>,
    /// Requests that reached `/oauth/jwks` (faulted ones included).
    pub jwks_fetches: AtomicUsize,
    /// Random failures and numbered users, for load tests.
    pub load: load::LoadKnobs,
    /// Whether requests are recorded (a long load test turns it off to keep memory flat).
    pub recording: AtomicBool,
}

pub(crate) type AppState = State<Arc<Shared>>;

impl Shared {
    /// Fails only if a committed key file is broken.
    pub(crate) fn new(endpoint: String, config: SandboxConfig) -> io::Result<Self> {
        let SandboxConfig {
            clients,
            user,
            code_ttl,
            token_ttl_secs,
        } = config;
        Ok(Self {
            endpoint,
            clients,
            code_ttl,
            token_ttl_secs,
            user: Mutex::new(user),
            deny: AtomicBool::new(false),
            faults: Mutex::default(),
            requests: Mutex::default(),
            store: Mutex::default(),
            keys: Mutex::new(SigningKeys::load()?),
            id_token_forgery: Mutex::default(),
            jwks_fetches: AtomicUsize::new(0),
            load: load::LoadKnobs::default(),
            recording: AtomicBool::new(true),
        })
    }

    pub(crate) fn client(&self, client_id: &str) -> Option<&SandboxClient> {
        self.clients.iter().find(|c| c.client_id == client_id)
    }

    /// `template` with [`ENDPOINT_PLACEHOLDER`] replaced by this sandbox's endpoint.
    pub(crate) fn expand(&self, template: &str) -> String {
        template.replace(ENDPOINT_PLACEHOLDER, &self.endpoint)
    }
}

/// Locks `mutex`, ignoring poisoning (state stays usable after a panicking test).
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route(Route::Authorize.path(), get(authorize::authorize))
        .route(Route::Token.path(), post(token::token))
        .route(
            Route::Userinfo.path(),
            get(userinfo::userinfo).post(userinfo::userinfo),
        )
        .route(Route::Discovery.path(), get(discovery::discovery))
        .route(Route::Jwks.path(), get(jwks::jwks))
        .route("/avatars/{file}", get(avatar::avatar))
        .layer(middleware::from_fn_with_state(shared.clone(), intercept))
        .with_state(shared)
}

/// Records the request, then answers an armed fault or hands over to the route.
async fn intercept(State(shared): AppState, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let body = to_bytes(body, MAX_BODY).await;
    let bytes = body.as_deref().unwrap_or_default();
    // Always built: an echo fault answers with it.
    let seen = RecordedRequest::new(&parts, bytes);
    if shared.recording.load(Ordering::Relaxed) {
        lock(&shared.requests).push(seen.clone());
    }
    tracing::debug!(method = %parts.method, path = parts.uri.path(), "hub-sandbox request");
    let Ok(bytes) = body else {
        return (StatusCode::PAYLOAD_TOO_LARGE, "request body too large").into_response();
    };
    let request = Request::from_parts(parts, Body::from(bytes));
    let route = Route::from_path(request.uri().path());
    if route == Some(Route::Jwks) {
        // Counted before faults, so a client's retries after a failure count too.
        shared.jwks_fetches.fetch_add(1, Ordering::SeqCst);
    }
    if let Some(fault) = route.and_then(|route| lock(&shared.faults).take(route)) {
        if let Some(delay) = fault.delay() {
            tokio::time::sleep(delay).await;
        }
        if let Some(response) = fault.response(&seen) {
            return response;
        }
        let response = next.run(request).await;
        return fault.reshape(response).await;
    }
    if route.is_some_and(|route| load::fails_at_random(&shared, route)) {
        return load::random_failure();
    }
    next.run(request).await
}
