//! Configured connector instances, by instance id, in generations.
//!
//! A generation is one consistent set of instances built from one scan of the plugin directory.
//! A reload builds a new generation and swaps it in atomically; new sign-ins use it. The old one
//! is retired, not dropped: sign-ins it started finish on it (their pending entry records the
//! generation number). It is dropped, and libraries no other generation uses are shut down, once
//! nothing references it: no callback in flight and no pending sign-in, or the sign-in lifetime
//! has passed since it was retired.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use connector_api::{Connector, Metadata};

use crate::config::{ConfigError, ConnectorConfig};
use crate::reload::{Library, Scan};

/// One configured connector: an instance id bound to a connector made by a plugin.
#[derive(Debug)]
pub struct Instance {
    /// The instance id (routes use it).
    pub id: String,
    /// The plugin's metadata (its id is the factory id).
    pub metadata: Metadata,
    /// The connector made from the instance's config.
    pub connector: Connector,
    /// The build that made it.
    pub library: Arc<Library>,
}

/// One consistent set of instances and the libraries of the scan that produced them.
#[derive(Debug)]
pub struct Generation {
    /// Starts at 1, grows by one per successful reload.
    pub number: u64,
    /// In config order.
    pub instances: Vec<Arc<Instance>>,
    /// Every library the scan loaded, used by an instance or not.
    pub libraries: Vec<Arc<Library>>,
    /// Sign-ins started on this generation whose callback has not come yet.
    pending: AtomicUsize,
}

impl Generation {
    /// The instance with id `id`.
    pub fn instance(&self, id: &str) -> Option<&Arc<Instance>> {
        self.instances.iter().find(|i| i.id == id)
    }

    /// Counts a sign-in started on this generation.
    pub fn sign_in_started(&self) {
        self.pending.fetch_add(1, Ordering::SeqCst);
    }

    /// Counts a sign-in whose callback arrived (or that failed to start).
    pub fn sign_in_ended(&self) {
        // Saturating: never wrap if a callback is counted twice by mistake.
        let _ = self
            .pending
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
    }

    /// Pending sign-ins started on this generation.
    pub fn pending(&self) -> usize {
        self.pending.load(Ordering::SeqCst)
    }
}

/// Builds a generation: every configured instance must find its factory and accept its config,
/// else nothing is built and the error names the connector and field.
pub fn build_generation(
    number: u64,
    connectors: &[ConnectorConfig],
    scan: &Scan,
) -> Result<Generation, ConfigError> {
    let instances = connectors
        .iter()
        .map(|c| build_instance(c, scan).map(Arc::new))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Generation {
        number,
        instances,
        libraries: scan.libraries.clone(),
        pending: AtomicUsize::new(0),
    })
}

fn build_instance(config: &ConnectorConfig, scan: &Scan) -> Result<Instance, ConfigError> {
    let library = scan
        .libraries
        .iter()
        .find(|l| l.plugin.metadata().id == config.factory)
        .ok_or_else(|| ConfigError::UnknownFactory {
            connector: config.id.clone(),
            factory: config.factory.clone(),
            available: available_factories(scan),
        })?;
    let connector =
        library
            .plugin
            .create(&config.config)
            .map_err(|e| ConfigError::InvalidConnector {
                connector: config.id.clone(),
                field: e
                    .data
                    .as_ref()
                    .and_then(|d| d["field"].as_str())
                    .unwrap_or("config")
                    .to_string(),
                message: e.message.clone(),
            })?;
    Ok(Instance {
        id: config.id.clone(),
        metadata: library.plugin.metadata().clone(),
        connector,
        library: library.clone(),
    })
}

fn available_factories(scan: &Scan) -> String {
    let ids: Vec<_> = scan
        .libraries
        .iter()
        .map(|l| format!("`{}`", l.plugin.metadata().id))
        .collect();
    match ids.is_empty() {
        true => "none".into(),
        false => ids.join(", "),
    }
}

struct Retired {
    generation: Arc<Generation>,
    since: Instant,
}

/// The current generation and the retired ones still in use.
pub struct Registry {
    current: ArcSwap<Generation>,
    retired: Mutex<Vec<Retired>>,
}

impl Registry {
    /// A registry serving `first`.
    pub fn new(first: Generation) -> Self {
        Self {
            current: ArcSwap::from_pointee(first),
            retired: Mutex::new(Vec::new()),
        }
    }

    /// The generation new sign-ins use.
    pub fn current(&self) -> Arc<Generation> {
        self.current.load_full()
    }

    /// Generation `number`, current or retired, while it is kept.
    pub fn generation(&self, number: u64) -> Option<Arc<Generation>> {
        let current = self.current();
        if current.number == number {
            return Some(current);
        }
        self.lock()
            .iter()
            .find(|r| r.generation.number == number)
            .map(|r| r.generation.clone())
    }

    /// Numbers of the current and retained generations, current first.
    pub fn live_generations(&self) -> Vec<u64> {
        let mut numbers = vec![self.current().number];
        numbers.extend(self.lock().iter().map(|r| r.generation.number));
        numbers
    }

    /// Makes `next` current and retires the previous generation.
    pub fn install(&self, next: Generation) {
        let previous = self.current.swap(Arc::new(next));
        self.lock().push(Retired {
            generation: previous,
            since: Instant::now(),
        });
    }

    /// Drops retired generations nothing needs any more, and returns the libraries that no
    /// remaining generation uses: the caller shuts them down.
    pub fn reap(&self, sign_in_ttl: Duration) -> Vec<Arc<Library>> {
        let mut retired = self.lock();
        let (dropped, kept): (Vec<_>, Vec<_>) = retired.drain(..).partition(|r| {
            // Held elsewhere means a callback is running on it right now.
            let idle = Arc::strong_count(&r.generation) == 1;
            idle && (r.generation.pending() == 0 || r.since.elapsed() >= sign_in_ttl)
        });
        *retired = kept;
        let current = self.current();
        let still_used = |lib: &Arc<Library>| {
            std::iter::once(&current)
                .chain(retired.iter().map(|r| &r.generation))
                .any(|g| g.libraries.iter().any(|l| Arc::ptr_eq(l, lib)))
        };
        let mut unused: Vec<Arc<Library>> = Vec::new();
        for lib in dropped.iter().flat_map(|r| r.generation.libraries.iter()) {
            if !still_used(lib) && !unused.iter().any(|u| Arc::ptr_eq(u, lib)) {
                unused.push(lib.clone());
            }
        }
        unused
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Retired>> {
        self.retired.lock().unwrap_or_else(|p| p.into_inner())
    }
}
