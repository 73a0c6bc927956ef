//! The broker: config, plugin loader, registry and pending sign-ins, and what keeps them fresh
//! (reload, retiring old generations).

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use axum::Router;
use connector_api::ProbeCommand;
use serde::Serialize;
use tokio::net::TcpListener;

use crate::binding::BindingKey;
use crate::config::{BrokerConfig, ConfigError};
use crate::pending::{MemoryStore, PendingStore, StoreError, now_ms};
use crate::registry::{Generation, Registry, build_generation};
use crate::reload::{Library, Loader, Refused, ScanError};
use crate::routes::ReloadGate;
use crate::serve::ServerLimits;
use crate::sign_in_rate::{SignInLimits, SignInRate};

/// How long a started sign-in may take (the 10 minutes).
pub const SIGN_IN_TTL: Duration = Duration::from_secs(10 * 60);

/// How the broker runs, beyond its config file.
pub struct BrokerOptions {
    /// The plugin directory.
    pub plugins: PathBuf,
    /// Where loaded copies go; default `<plugins>/.loaded`.
    pub state_dir: Option<PathBuf>,
    /// Lifetime of a started sign-in.
    pub sign_in_ttl: Duration,
    /// How often expired sign-ins are purged and idle old generations retired.
    pub maintenance_interval: Duration,
    /// Show the demo banner on every page.
    pub demo: bool,
    /// Load from a plugin directory (and files) that group or others may write to; refused by
    /// default, since anyone who can write there can run code in the broker.
    pub allow_writable_plugin_dir: bool,
    /// The command that loads each new plugin build in a child process before the broker maps
    /// it ([`crate::reload::probe_command`] for this executable). `None` (the default for
    /// in-process use) maps files unprobed: a library that crashes while loading takes the
    /// broker down. `host-example` always sets it.
    pub probe: Option<ProbeCommand>,
    /// The shortest time between two reloads through `POST /admin/reload` (default 1 s).
    pub reload_min_interval: Duration,
    /// The per-client rate of sign-ins; `None` (the default) takes the config file's
    /// `[sign_in]` table.
    pub sign_in_limits: Option<SignInLimits>,
    /// The cap on the in-memory store; `None` (the default) takes the config file's
    /// `[sign_in] max_pending`.
    pub max_pending: Option<usize>,
    /// The HTTP server's timers and caps; `None` (the default) takes the config file's
    /// `[server]` table.
    pub server: Option<ServerLimits>,
    /// Pending sign-ins; default in memory. [`Broker::open`] replaces it with the store the
    /// config's `session_store` names.
    pub store: Arc<dyn PendingStore>,
}

impl BrokerOptions {
    /// Defaults for the plugin directory `plugins`.
    pub fn new(plugins: impl Into<PathBuf>) -> Self {
        Self {
            plugins: plugins.into(),
            state_dir: None,
            sign_in_ttl: SIGN_IN_TTL,
            maintenance_interval: Duration::from_secs(1),
            demo: false,
            allow_writable_plugin_dir: false,
            probe: None,
            reload_min_interval: Duration::from_secs(1),
            server: None,
            sign_in_limits: None,
            max_pending: None,
            store: Arc::new(MemoryStore::new()),
        }
    }
}

/// Why the broker did not start. Nothing is served after one of these.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Scan(#[from] ScanError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The configured session store cannot be used (Redis unreachable, say).
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("start task failed: {0}")]
    Task(String),
}

/// Why a reload did not happen; the previous connectors stay in service.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error(transparent)]
    Scan(#[from] ScanError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("reload task failed: {0}")]
    Task(String),
}

/// What a successful reload did.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReloadReport {
    /// The generation now serving new sign-ins.
    pub generation: u64,
    /// Every loaded plugin file, and whether it is a new build.
    pub libraries: Vec<LibraryReport>,
    /// Files that were not loaded.
    pub refused: Vec<Refused>,
}

/// One plugin file in a [`ReloadReport`].
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LibraryReport {
    /// The file in the plugin directory.
    pub file: String,
    /// The plugin's metadata id.
    pub factory: String,
    /// SHA-256 of the build.
    pub sha256: String,
    /// `true` when this build was loaded by this reload (a new or changed file).
    pub new_build: bool,
}

pub(crate) struct Inner {
    pub(crate) config: BrokerConfig,
    pub(crate) registry: Registry,
    pub(crate) pending: Arc<dyn PendingStore>,
    pub(crate) sign_in_ttl: Duration,
    pub(crate) demo: bool,
    server: ServerLimits,
    /// Sign-ins started per client.
    pub(crate) sign_in_rate: SignInRate,
    /// The cap on entries in an in-memory store (0: none).
    pub(crate) max_pending: usize,
    /// A random id for this broker process, recorded with the sign-ins it starts (see
    /// [`crate::pending::PendingSignIn::origin`]).
    pub(crate) origin: String,
    /// Authenticates binding cookie values when the store keeps no shared key (see
    /// [`Broker::binding_key`]).
    local_binding_key: BindingKey,
    loader: Loader,
    maintenance_interval: Duration,
    next_generation: AtomicU64,
    /// Rate of reloads through the endpoint.
    pub(crate) reload_gate: ReloadGate,
    /// One reload at a time: two scans racing would build generations from mixed states.
    reload_lock: tokio::sync::Mutex<()>,
}

/// A running broker's shared state; cheap to clone (handlers get one each).
#[derive(Clone)]
pub struct Broker {
    pub(crate) inner: Arc<Inner>,
}

impl Broker {
    /// Loads the plugins and validates every connector config (blocking). Any error stops the
    /// start: there is no half-configured broker.
    ///
    /// A config with a `session_store` needs a shared store in `options.store`: use
    /// [`Broker::open`], which connects to it. Given the in-memory store instead, this refuses to
    /// start rather than silently keep sign-ins where the other instances cannot see them.
    pub fn start(config: BrokerConfig, options: BrokerOptions) -> Result<Broker, StartError> {
        if let Some(url) = &config.session_store {
            if !options.store.is_shared() {
                return Err(StoreError(format!(
                    "`session_store` is {url}, but the broker was given a {} store \
                     (start it with `Broker::open`, which connects to the configured store)",
                    options.store.kind()
                ))
                .into());
            }
        }
        let local_binding_key = match options.store.binding_key() {
            Some(key) => key,
            None if options.store.is_shared() => {
                return Err(StoreError(format!(
                    "the shared {} store provides no binding key: cookies issued by one \
                     instance would be refused by the others",
                    options.store.kind()
                ))
                .into());
            }
            None => BindingKey::random(),
        };
        let loader = Loader::new(&options.plugins, options.state_dir.as_deref())
            .allow_writable_by_others(options.allow_writable_plugin_dir)
            .probe(options.probe.clone());
        let scan = loader.scan()?;
        let first = build_generation(1, &config.connectors, &scan)?;
        for instance in &first.instances {
            tracing::info!(
                connector = ?instance.id,
                factory = ?instance.metadata.id,
                file = ?instance.library.source,
                sha256 = %short(&instance.library.sha256),
                "connector ready"
            );
        }
        let server = options.server.unwrap_or(config.server);
        let sign_in_rate = SignInRate::new(options.sign_in_limits.unwrap_or(config.sign_in));
        let max_pending = options.max_pending.unwrap_or(config.max_pending);
        Ok(Broker {
            inner: Arc::new(Inner {
                config,
                registry: Registry::new(first),
                pending: options.store,
                sign_in_ttl: options.sign_in_ttl,
                demo: options.demo,
                server,
                sign_in_rate,
                max_pending,
                origin: format!("{:016x}", rand::random::<u64>()),
                local_binding_key,
                loader,
                maintenance_interval: options.maintenance_interval,
                next_generation: AtomicU64::new(2),
                reload_gate: ReloadGate::new(options.reload_min_interval),
                reload_lock: tokio::sync::Mutex::new(()),
            }),
        })
    }

    /// Opens the pending sign-in store the config names (connecting to Redis for a
    /// `session_store`, and refusing to start when it does not answer), then [`Broker::start`]s
    /// on a blocking thread. Without `session_store`, `options.store` is kept (in memory by
    /// default).
    pub async fn open(
        config: BrokerConfig,
        mut options: BrokerOptions,
    ) -> Result<Broker, StartError> {
        if config.session_store.is_some() {
            options.store = crate::pending::open(&config).await?;
        }
        tokio::task::spawn_blocking(move || Broker::start(config, options))
            .await
            .map_err(|e| StartError::Task(e.to_string()))?
    }

    /// The pending sign-in store.
    pub fn store(&self) -> &Arc<dyn PendingStore> {
        &self.inner.pending
    }

    /// The key binding cookie values are authenticated with: the shared store's (every
    /// instance honours the cookies the others issued), else this process's own.
    pub fn binding_key(&self) -> BindingKey {
        self.inner
            .pending
            .binding_key()
            .unwrap_or_else(|| self.inner.local_binding_key.clone())
    }

    /// The config the broker runs.
    pub fn config(&self) -> &BrokerConfig {
        &self.inner.config
    }

    /// Whether the in-memory store holds `max_pending` entries (never for a shared store).
    pub fn pending_store_is_full(&self) -> bool {
        let max = self.inner.max_pending;
        max > 0
            && self
                .inner
                .pending
                .entries_in_memory()
                .is_some_and(|n| n >= max)
    }

    /// Whether this is the demo broker (its pages say that it signs in against a sandbox).
    pub fn is_demo(&self) -> bool {
        self.inner.demo
    }

    /// The generation new sign-ins use.
    pub fn current(&self) -> Arc<Generation> {
        self.inner.registry.current()
    }

    /// Generations kept (current first): retired ones still finishing sign-ins.
    pub fn live_generations(&self) -> Vec<u64> {
        self.inner.registry.live_generations()
    }

    /// Re-scans the plugin directory and swaps in a new generation; on any error the current
    /// one stays. Sign-ins already started finish on the generation that started them.
    pub async fn reload(&self) -> Result<ReloadReport, ReloadError> {
        let _one_at_a_time = self.inner.reload_lock.lock().await;
        let inner = self.inner.clone();
        let number = inner.next_generation.load(Ordering::SeqCst);
        let built = tokio::task::spawn_blocking(move || -> Result<_, ReloadError> {
            let scan = inner.loader.scan()?;
            let generation = build_generation(number, &inner.config.connectors, &scan)?;
            Ok((generation, scan.refused))
        })
        .await
        .map_err(|e| ReloadError::Task(e.to_string()))?;
        let (generation, refused) = match built {
            Ok(built) => built,
            Err(e) => {
                tracing::error!(error = ?e.to_string(), "reload failed; the previous connectors stay");
                return Err(e);
            }
        };
        let report = self.report(&generation, refused);
        self.inner
            .next_generation
            .store(number + 1, Ordering::SeqCst);
        self.inner.registry.install(generation);
        for lib in report.libraries.iter().filter(|l| l.new_build) {
            tracing::info!(file = ?lib.file, factory = ?lib.factory, sha256 = %short(&lib.sha256), generation = number, "new plugin build loaded");
        }
        tracing::info!(generation = number, "reload complete");
        Ok(report)
    }

    fn report(&self, next: &Generation, refused: Vec<Refused>) -> ReloadReport {
        let previous = self.current();
        let libraries = next
            .libraries
            .iter()
            .map(|lib| LibraryReport {
                file: lib.source.display().to_string(),
                factory: lib.plugin.metadata().id.clone(),
                sha256: lib.sha256.clone(),
                new_build: !previous.libraries.iter().any(|l| Arc::ptr_eq(l, lib)),
            })
            .collect();
        ReloadReport {
            generation: next.number,
            libraries,
            refused,
        }
    }

    /// The HTTP routes.
    pub fn router(&self) -> Router {
        crate::routes::router(self.clone())
    }

    /// Serves on `listener` until `shutdown` completes, with the maintenance task running,
    /// under the server's timers and connection cap ([`ServerLimits`]). Peer addresses are
    /// recorded so that `/admin/reload` can insist on loopback.
    pub async fn serve(
        &self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let maintenance = self.spawn_maintenance();
        let served =
            crate::serve::serve(listener, self.router(), self.inner.server, shutdown).await;
        maintenance.abort();
        served
    }

    /// The HTTP server's timers and caps in force.
    pub fn server_limits(&self) -> ServerLimits {
        self.inner.server
    }

    /// Reloads on every `SIGHUP` (until the broker is dropped).
    pub fn spawn_sighup_reloader(&self) -> std::io::Result<tokio::task::JoinHandle<()>> {
        use tokio::signal::unix::{SignalKind, signal};
        let mut hangups = signal(SignalKind::hangup())?;
        let weak = Arc::downgrade(&self.inner);
        Ok(tokio::spawn(async move {
            while hangups.recv().await.is_some() {
                let Some(inner) = weak.upgrade() else { break };
                tracing::info!("SIGHUP: reloading plugins");
                // Errors are logged by reload itself.
                let _ = Broker { inner }.reload().await;
            }
        }))
    }

    /// Purges expired sign-ins and retires old generations every `maintenance_interval`.
    pub fn spawn_maintenance(&self) -> tokio::task::JoinHandle<()> {
        let weak: Weak<Inner> = Arc::downgrade(&self.inner);
        let every = self.inner.maintenance_interval;
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(every);
            loop {
                ticks.tick().await;
                let Some(inner) = weak.upgrade() else { break };
                Broker { inner }.maintain().await;
            }
        })
    }

    /// One maintenance round (also callable directly, e.g. by tests).
    pub async fn maintain(&self) {
        if let Err(e) = self.inner.pending.purge(now_ms()).await {
            tracing::warn!(error = ?e.to_string(), "cannot purge expired sign-ins");
        }
        self.inner.sign_in_rate.purge();
        for lib in self.inner.registry.reap(self.inner.sign_in_ttl) {
            self.retire(lib).await;
        }
    }

    /// Stops a library no generation uses any more. Its memory stays mapped (abi_stable cannot
    /// unload); `shutdown()` stops its runtime threads, waiting up to 5 s for calls in flight.
    async fn retire(&self, lib: Arc<Library>) {
        let plugin = lib.plugin.clone();
        if let Err(e) = tokio::task::spawn_blocking(move || plugin.shutdown()).await {
            tracing::warn!(error = ?e.to_string(), "plugin shutdown task failed");
        }
        self.inner.loader.forget(&lib);
        tracing::info!(
            file = ?lib.source,
            copy = ?lib.copy,
            sha256 = %short(&lib.sha256),
            "old plugin build shut down (its threads are stopped; its memory stays mapped)"
        );
    }
}

fn short(sha256: &str) -> &str {
    sha256.get(..16).unwrap_or(sha256)
}
