//! Plugin-side glue: implement [`Connector`] with ordinary Rust types and call [`export_connector!`].
//!
//! The glue owns the plugin's tokio runtime (each plugin library has its own copy of tokio, whose
//! reactor the host's executor cannot drive), catches every panic before it reaches the boundary,
//! and turns futures into [`FfiFuture`]s that are safe to poll from the host's runtime.

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use abi_stable::{
    prefix_type::PrefixTypeTrait,
    sabi_trait::TD_Opaque,
    std_types::{RResult, RStr, RString, Tuple2},
};
use async_ffi::{FfiFuture, FutureExt as _};
use tokio::runtime::Runtime;
use tokio::task::JoinHandle;
use tokio_util::task::TaskTracker;

use crate::abi::{
    ConnectorModule, ConnectorModule_Ref, FfiAuthorization, FfiAuthorizationRequest, FfiConnector,
    FfiConnector_TO, FfiConnectorBox, FfiError, FfiMetadata, FfiTokenResponse, FfiUserInfo,
};
use crate::{
    Authorization, AuthorizationRequest, ConnectorError, ErrorCode, Metadata, SocialUserInfo,
    TokenResponse,
};

/// A social connector, written with ordinary Rust types. One value per configured instance.
pub trait Connector: Sized + Send + Sync + 'static {
    /// What the connector says about itself.
    fn metadata() -> Metadata;

    /// Validates `config` and builds an instance; a bad config is `invalid_config` naming the field.
    fn create(config: serde_json::Value) -> Result<Self, ConnectorError>;

    /// The provider's authorization URI for one sign-in, and the session to keep until the callback.
    fn authorization_uri(
        &self,
        request: AuthorizationRequest,
    ) -> Result<Authorization, ConnectorError>;

    /// Turns the callback parameters into the user, using the session from [`Self::authorization_uri`].
    /// Runs on the plugin's runtime.
    fn user_info(
        self: Arc<Self>,
        callback: serde_json::Value,
        session: serde_json::Value,
    ) -> impl Future<Output = Result<SocialUserInfo, ConnectorError>> + Send + 'static;

    /// Like [`Self::user_info`], and also returns the provider's tokens (Logto's optional
    /// `getTokenResponseAndUserInfo`). `not_implemented` unless the connector supports it.
    fn token_response_and_user_info(
        self: Arc<Self>,
        callback: serde_json::Value,
        session: serde_json::Value,
    ) -> impl Future<Output = Result<(TokenResponse, SocialUserInfo), ConnectorError>> + Send + 'static
    {
        let _ = (callback, session);
        async { Err(not_implemented("token storage")) }
    }

    /// A new access token from a refresh token (Logto's optional `getAccessTokenByRefreshToken`).
    /// `not_implemented` unless the connector supports it.
    fn access_token_by_refresh_token(
        self: Arc<Self>,
        refresh_token: String,
    ) -> impl Future<Output = Result<TokenResponse, ConnectorError>> + Send + 'static {
        let _ = refresh_token;
        async { Err(not_implemented("token refresh")) }
    }
}

fn not_implemented(what: &str) -> ConnectorError {
    ConnectorError::new(
        ErrorCode::NotImplemented,
        format!("this connector has no {what}"),
    )
}

/// Exports `$connector` (a type implementing [`Connector`]) as this library's root module.
///
/// The plugin crate must depend on `abi_stable` too: its `export_root_module` attribute names it.
#[macro_export]
macro_rules! export_connector {
    ($connector:ty) => {
        /// The root module of this connector plugin.
        #[::abi_stable::export_root_module]
        pub fn connector_root_module() -> $crate::abi::ConnectorModule_Ref {
            $crate::plugin::root_module::<$connector>()
        }
    };
}

/// Builds the root module for `C`; used by [`export_connector!`].
pub fn root_module<C: Connector>() -> ConnectorModule_Ref {
    silence_panics();
    ConnectorModule {
        metadata: metadata::<C>,
        create: create::<C>,
        shutdown,
    }
    .leak_into_prefix()
}

/// How long [`shutdown`] waits for calls in flight before it stops the runtime's threads anyway.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// Two workers: network-bound work, and the hosts we target have two cores.
const WORKER_THREADS: usize = 2;

/// The plugin's runtime and the tasks it runs for the host, so that shutdown can drain them.
struct Running {
    runtime: Runtime,
    tasks: TaskTracker,
}

enum RuntimeState {
    NotStarted,
    Running(Running),
    ShutDown,
}

static RUNTIME: Mutex<RuntimeState> = Mutex::new(RuntimeState::NotStarted);

fn shut_down() -> ConnectorError {
    ConnectorError::general("connector plugin was shut down")
}

/// Spawns `task` on the plugin's runtime (started on first use); fails once [`shutdown`] ran.
fn spawn_tracked<T: Send + 'static>(
    task: impl Future<Output = T> + Send + 'static,
) -> Result<JoinHandle<T>, ConnectorError> {
    let mut state = RUNTIME.lock().unwrap_or_else(|p| p.into_inner());
    if matches!(*state, RuntimeState::NotStarted) {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(WORKER_THREADS)
            .thread_name("connector-plugin")
            .enable_all()
            .build()
            .map_err(|e| ConnectorError::general(format!("cannot start plugin runtime: {e}")))?;
        *state = RuntimeState::Running(Running {
            runtime,
            tasks: TaskTracker::new(),
        });
    }
    match &*state {
        RuntimeState::Running(r) => Ok(r.tasks.spawn_on(task, r.runtime.handle())),
        _ => Err(shut_down()),
    }
}

fn is_shut_down() -> bool {
    let state = RUNTIME.lock().unwrap_or_else(|p| p.into_inner());
    matches!(*state, RuntimeState::ShutDown)
}

/// Refuses new calls, waits up to [`SHUTDOWN_GRACE`] for calls in flight, then stops the threads.
/// Blocks the calling thread meanwhile.
extern "C" fn shutdown() {
    let previous = {
        let mut state = RUNTIME.lock().unwrap_or_else(|p| p.into_inner());
        std::mem::replace(&mut *state, RuntimeState::ShutDown)
    };
    if let RuntimeState::Running(Running { runtime, tasks }) = previous {
        tasks.close();
        // This library's own tokio: blocking on it is allowed even on a host runtime thread.
        runtime.block_on(async {
            let _ = tokio::time::timeout(SHUTDOWN_GRACE, tasks.wait()).await;
        });
        runtime.shutdown_timeout(Duration::from_millis(100));
    }
}

/// Every panic of this plugin is caught at the boundary and reported to the host as an error
/// carrying its message ([`panicked`]), so the default hook's report (and backtrace, with
/// `RUST_BACKTRACE`) would only write to the host's terminal behind its back. The hook is this
/// library's own: a cdylib links its own copy of std, so the host's hook is untouched.
fn silence_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| std::panic::set_hook(Box::new(|_| {})));
}

/// Longest panic message passed on to the host.
const MAX_PANIC_MESSAGE: usize = 200;

/// `general`, with the panic's message on one line (cut short): the host logs it once.
fn panicked(payload: &(dyn std::any::Any + Send)) -> ConnectorError {
    let message = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)");
    let mut line: String = message.split_whitespace().collect::<Vec<_>>().join(" ");
    if let Some((cut, _)) = line.char_indices().nth(MAX_PANIC_MESSAGE) {
        line.truncate(cut);
        line.push('…');
    }
    ConnectorError::general(format!("connector panicked: {line}"))
}

/// Runs `f`, turning a panic into `general` so that it never unwinds into the host.
fn guard<T>(f: impl FnOnce() -> Result<T, ConnectorError>) -> RResult<T, FfiError> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(value)) => RResult::ROk(value),
        Ok(Err(e)) => RResult::RErr(e.into()),
        Err(payload) => RResult::RErr(panicked(payload.as_ref()).into()),
    }
}

extern "C" fn metadata<C: Connector>() -> RResult<FfiMetadata, FfiError> {
    guard(|| Ok(C::metadata().into()))
}

extern "C" fn create<C: Connector>(config: RStr<'_>) -> RResult<FfiConnectorBox, FfiError> {
    guard(|| {
        if is_shut_down() {
            return Err(shut_down());
        }
        let config = serde_json::from_str(config.as_str()).map_err(|e| {
            ConnectorError::new(ErrorCode::InvalidConfig, format!("config is not JSON: {e}"))
        })?;
        let instance = Instance(Arc::new(C::create(config)?));
        Ok(FfiConnector_TO::from_value(instance, TD_Opaque))
    })
}

struct Instance<C>(Arc<C>);

impl<C: Connector> FfiConnector for Instance<C> {
    fn authorization_uri(
        &self,
        request: FfiAuthorizationRequest,
    ) -> RResult<FfiAuthorization, FfiError> {
        guard(|| match is_shut_down() {
            // A sign-in started now could not finish.
            true => Err(shut_down()),
            false => Ok(self.0.authorization_uri(request.into())?.into()),
        })
    }

    fn user_info(
        &self,
        callback: RString,
        session: RString,
    ) -> FfiFuture<RResult<FfiUserInfo, FfiError>> {
        let connector = Arc::clone(&self.0);
        spawn(async move {
            let (callback, session) = parse_callback(&callback, &session)?;
            connector.user_info(callback, session).await
        })
    }

    fn token_response_and_user_info(
        &self,
        callback: RString,
        session: RString,
    ) -> FfiFuture<RResult<Tuple2<FfiTokenResponse, FfiUserInfo>, FfiError>> {
        let connector = Arc::clone(&self.0);
        spawn(async move {
            let (callback, session) = parse_callback(&callback, &session)?;
            let (token, user) = connector
                .token_response_and_user_info(callback, session)
                .await?;
            Ok(Tuple2(
                FfiTokenResponse::from(token),
                FfiUserInfo::from(user),
            ))
        })
    }

    fn access_token_by_refresh_token(
        &self,
        refresh_token: RString,
    ) -> FfiFuture<RResult<FfiTokenResponse, FfiError>> {
        let connector = Arc::clone(&self.0);
        spawn(async move {
            connector
                .access_token_by_refresh_token(refresh_token.into_string())
                .await
        })
    }
}

/// Runs `task` on the plugin's runtime and returns a future the host can poll from its own.
/// A panic in the task becomes `general`; dropping the future cancels the task.
fn spawn<T, F>(
    task: impl Future<Output = Result<T, ConnectorError>> + Send + 'static,
) -> FfiFuture<RResult<F, FfiError>>
where
    T: Into<F> + Send + 'static,
    F: 'static,
{
    let spawned = spawn_tracked(task).map(AbortOnDrop);
    async move {
        let result = match spawned {
            Ok(mut task) => match (&mut task.0).await {
                Ok(result) => result,
                Err(e) if e.is_panic() => Err(panicked(e.into_panic().as_ref())),
                Err(_) => Err(shut_down()),
            },
            Err(e) => Err(e),
        };
        result.map(Into::into).map_err(FfiError::from).into()
    }
    .into_ffi()
}

fn parse_callback(
    callback: &str,
    session: &str,
) -> Result<(serde_json::Value, serde_json::Value), ConnectorError> {
    Ok((
        parse_json(callback, ErrorCode::InvalidRequestParameters)?,
        parse_json(session, ErrorCode::General)?,
    ))
}

fn parse_json(text: &str, code: ErrorCode) -> Result<serde_json::Value, ConnectorError> {
    serde_json::from_str(text)
        .map_err(|e| ConnectorError::new(code, format!("not valid JSON: {e}")))
}

/// Cancels the provider calls of a sign-in whose future the host dropped.
struct AbortOnDrop<T>(JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}
