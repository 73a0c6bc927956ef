//! Host-side loader: finds every plugin library in a directory and loads each, or says why not.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use abi_stable::library::{LibraryError, RootModuleError, lib_header_from_path};

use crate::abi::ConnectorModule_Ref;
use crate::connector::Connector;
use crate::{API_VERSION, ConnectorError, Metadata};

/// File name suffix of loadable plugins on this platform (`.so`, `.dylib`, `.dll`).
pub const PLUGIN_SUFFIX: &str = std::env::consts::DLL_SUFFIX;

/// Why a file in the plugin directory was not loaded. Each reads as one line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RejectReason {
    #[error("not a loadable library: {0}")]
    NotALibrary(String),
    #[error("not a connector plugin: it exports no abi_stable root module")]
    NotAPlugin,
    #[error("built with an incompatible abi_stable: {0}")]
    IncompatibleAbiStable(String),
    #[error(
        "incompatible interface version: plugin built against connector-api {plugin}, host has {host}"
    )]
    IncompatibleVersion { plugin: String, host: String },
    #[error("layout mismatch with connector-api {host}: {detail}")]
    LayoutMismatch { host: String, detail: String },
    #[error("initialisation panicked")]
    InitPanicked,
    #[error("initialisation failed: {0}")]
    InitFailed(String),
    #[error("invalid metadata: {0}")]
    InvalidMetadata(String),
    #[error("duplicate connector id `{id}`, already loaded from {first}")]
    DuplicateId { id: String, first: String },
    #[error(
        "writable by other users (mode {mode:o}): anyone who can write it can run code in this host"
    )]
    WritableByOthers { mode: u32 },
}

/// A file that was not loaded, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    pub path: PathBuf,
    pub reason: RejectReason,
}

/// The plugin directory could not be scanned at all.
#[derive(Debug, thiserror::Error)]
pub enum DiscoverError {
    #[error("cannot read plugin directory {path}: {source}")]
    ReadDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "plugin directory {path} is writable by other users (mode {mode:o}): anyone who can write \
         there can run code in this host; fix its permissions, or allow it explicitly"
    )]
    WritableByOthers { path: PathBuf, mode: u32 },
}

/// How [`discover_with`] treats the plugin directory.
#[derive(Debug, Clone, Default)]
pub struct DiscoverOptions {
    /// Load from a directory (and files) that group or other users may write to. Off by default,
    /// like ssh's StrictModes: loading a plugin runs its code with the host's rights.
    pub allow_writable_by_others: bool,
}

/// Result of [`discover`]: loaded plugins and refused files, both sorted by file name.
#[derive(Debug, Default)]
pub struct Discovery {
    pub plugins: Vec<Plugin>,
    pub rejected: Vec<Rejected>,
}

/// A loaded connector plugin (a connector factory). Copies share the one loaded library.
#[derive(Clone)]
pub struct Plugin {
    path: PathBuf,
    api_version: String,
    metadata: Metadata,
    module: ConnectorModule_Ref,
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin")
            .field("id", &self.metadata.id)
            .field("path", &self.path)
            .field("api_version", &self.api_version)
            .finish()
    }
}

impl Plugin {
    /// Loads one plugin file. Never panics; a library is never unloaded once opened.
    ///
    /// Loading the same path (or another link to the same file) again returns the same instance:
    /// to load a new build while an old one is loaded, copy it to a new path first.
    pub fn load(path: &Path) -> Result<Plugin, RejectReason> {
        if path.is_dir() {
            return Err(RejectReason::NotALibrary("is a directory".into()));
        }
        let header = lib_header_from_path(path).map_err(reject_reason)?;
        let api_version = header.version_strings().version.to_string();
        let module = header
            .init_root_module::<ConnectorModule_Ref>()
            .map_err(reject_reason)?;
        let metadata = module.metadata()()
            .into_result()
            .map_err(|e| RejectReason::InitFailed(ConnectorError::from(e).to_string()))?
            .into();
        Metadata::validate(&metadata).map_err(RejectReason::InvalidMetadata)?;
        Ok(Plugin {
            path: path.to_path_buf(),
            api_version,
            metadata,
            module,
        })
    }

    /// The connector's metadata, read once at load.
    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    /// The file this plugin was loaded from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The connector-api version the plugin was built against.
    pub fn api_version(&self) -> &str {
        &self.api_version
    }

    /// Validates `config` and builds a connector instance (`invalid_config` names the field at fault).
    pub fn create(&self, config: &serde_json::Value) -> Result<Connector, ConnectorError> {
        self.module.create()(config.to_string().as_str().into())
            .into_result()
            .map(Connector::new)
            .map_err(ConnectorError::from)
    }

    /// Refuses new calls, waits up to 5 s for calls in flight, then stops the plugin's runtime
    /// threads. It blocks the calling thread meanwhile (from async code, use `spawn_blocking`).
    /// The library stays mapped: its memory is not returned, and later calls fail with `general`.
    pub fn shutdown(&self) {
        self.module.shutdown()();
    }
}

/// Loads every file with the platform's library suffix in `dir`.
///
/// A file that cannot be loaded is reported in [`Discovery::rejected`] with its reason; the others
/// still load. Of two plugins with one connector id, the first by file name wins.
pub fn discover(dir: &Path) -> Result<Discovery, DiscoverError> {
    discover_with(dir, &DiscoverOptions::default())
}

/// [`discover`] with options.
pub fn discover_with(dir: &Path, options: &DiscoverOptions) -> Result<Discovery, DiscoverError> {
    let read_error = |source| DiscoverError::ReadDir {
        path: dir.to_path_buf(),
        source,
    };
    check_dir(dir, options)?;
    let mut paths = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(read_error)? {
        let path = entry.map_err(read_error)?.path();
        if path.to_string_lossy().ends_with(PLUGIN_SUFFIX) {
            paths.push(path);
        }
    }
    paths.sort();

    let mut discovery = Discovery::default();
    let mut ids: HashMap<String, PathBuf> = HashMap::new();
    for path in paths {
        let loaded = check_file(&path, options)
            .and_then(|()| Plugin::load(&path))
            .and_then(|plugin| match ids.get(&plugin.metadata.id) {
                Some(first) => Err(RejectReason::DuplicateId {
                    id: plugin.metadata.id.clone(),
                    first: first.display().to_string(),
                }),
                None => Ok(plugin),
            });
        match loaded {
            Ok(plugin) => {
                ids.insert(plugin.metadata.id.clone(), path);
                discovery.plugins.push(plugin);
            }
            Err(reason) => {
                tracing::warn!(path = %path.display(), %reason, "plugin refused");
                discovery.rejected.push(Rejected { path, reason });
            }
        }
    }
    Ok(discovery)
}

/// The permission bits when group or others may write (`None` elsewhere, and off unix).
fn writable_by_others(metadata: &std::fs::Metadata) -> Option<u32> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = metadata.permissions().mode() & 0o7777;
        (mode & 0o022 != 0).then_some(mode)
    }
    #[cfg(not(unix))]
    {
        let _ = metadata;
        None
    }
}

/// Checks that `dir` can be read and that only its owner may write to it (unless `options`
/// allow more). For hosts that scan the directory themselves.
pub fn check_dir(dir: &Path, options: &DiscoverOptions) -> Result<(), DiscoverError> {
    let metadata = std::fs::metadata(dir).map_err(|source| DiscoverError::ReadDir {
        path: dir.to_path_buf(),
        source,
    })?;
    match (
        writable_by_others(&metadata),
        options.allow_writable_by_others,
    ) {
        (Some(mode), false) => Err(DiscoverError::WritableByOthers {
            path: dir.to_path_buf(),
            mode,
        }),
        _ => Ok(()),
    }
}

/// Checks one candidate file before it is loaded: it exists (a symlink is followed) and only its
/// owner may write to it (unless `options` allow more). For hosts that scan the directory
/// themselves.
pub fn check_file(path: &Path, options: &DiscoverOptions) -> Result<(), RejectReason> {
    // Follows symlinks: what counts is the file that would be mapped.
    let metadata = std::fs::metadata(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => RejectReason::NotALibrary("dangling symlink".into()),
        _ => RejectReason::NotALibrary(e.to_string()),
    })?;
    match (
        writable_by_others(&metadata),
        options.allow_writable_by_others,
    ) {
        (Some(mode), false) if metadata.is_file() => Err(RejectReason::WritableByOthers { mode }),
        _ => Ok(()),
    }
}

fn reject_reason(e: LibraryError) -> RejectReason {
    match e {
        LibraryError::OpenError { err, path } => {
            // dlopen's message starts with the path, which the report already names.
            let message = err.to_string();
            let prefix = format!("{}: ", path.display());
            RejectReason::NotALibrary(one_line(message.strip_prefix(&prefix).unwrap_or(&message)))
        }
        LibraryError::GetSymbolError { .. } => RejectReason::NotAPlugin,
        LibraryError::InvalidAbiHeader(header) => RejectReason::IncompatibleAbiStable(format!(
            "abi_stable ABI {}.{}, host has {}.{}",
            header.abi_major,
            header.abi_minor,
            abi_stable::library::AbiHeader::VALUE.abi_major,
            abi_stable::library::AbiHeader::VALUE.abi_minor,
        )),
        LibraryError::InvalidCAbi { .. } => {
            RejectReason::IncompatibleAbiStable("C ABI self-test failed".into())
        }
        LibraryError::ParseVersionError(e) => RejectReason::IncompatibleVersion {
            plugin: format!("(unparsable: {e})"),
            host: API_VERSION.into(),
        },
        LibraryError::IncompatibleVersionNumber { actual_version, .. } => {
            RejectReason::IncompatibleVersion {
                plugin: actual_version.to_string(),
                host: API_VERSION.into(),
            }
        }
        LibraryError::AbiInstability(e) => RejectReason::LayoutMismatch {
            host: API_VERSION.into(),
            detail: layout_error_summary(&e.to_string()),
        },
        LibraryError::RootModule {
            err: RootModuleError::Unwound,
            ..
        } => RejectReason::InitPanicked,
        LibraryError::RootModule {
            err: RootModuleError::Returned(e),
            ..
        } => RejectReason::InitFailed(one_line(&e.to_string())),
        LibraryError::Many(errors) => errors.into_iter().next().map_or(
            RejectReason::InitFailed("unknown error".into()),
            reject_reason,
        ),
    }
}

/// abi_stable's layout errors dump whole type trees; keep the lines that say what differs.
fn layout_error_summary(dump: &str) -> String {
    let lines: Vec<&str> = dump
        .lines()
        .map(str::trim)
        .skip_while(|l| !l.starts_with("Error:"))
        // "Error:<what>", "Expected:", <expected>, "Found:", <found>
        .take(5)
        .collect();
    match lines.is_empty() {
        true => one_line(dump),
        false => one_line(&lines.join(" ")),
    }
}

fn one_line(text: &str) -> String {
    let joined = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match joined.char_indices().nth(300) {
        Some((cut, _)) => format!("{}…", &joined[..cut]),
        None => joined,
    }
}
