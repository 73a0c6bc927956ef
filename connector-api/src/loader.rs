//! Host-side loader: finds every plugin library in a directory and loads each, or says why not.
//!
//! What is checked before a file is mapped into the host, in order:
//! 1. the directory, the file, and for a symlink its target's directory: owned by the host's
//!    user or root and writable by nobody else ([`check_dir`], [`check_file`]);
//! 2. the ELF structure: every table, segment and section lies within the file, so that the
//!    dynamic loader never maps past its end (a truncated file is `Truncated`, not SIGBUS);
//! 3. with [`DiscoverOptions::probe`], a load in a child process under a time limit, which
//!    catches initialisers that crash or hang ([`crate::probe`]);
//! 4. abi_stable's checks at load: a root module, the abi_stable and interface versions, the
//!    layout of every type that crosses the boundary, then the metadata.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use std::time::Duration;

use abi_stable::library::{LibraryError, RootModuleError, lib_header_from_path};
use serde::{Deserialize, Serialize};

use crate::abi::ConnectorModule_Ref;
use crate::connector::Connector;
use crate::permissions::{self, Insecure};
use crate::probe::ProbeCommand;
use crate::{API_VERSION, ConnectorError, Metadata};

/// File name suffix of loadable plugins on this platform (`.so`, `.dylib`, `.dll`).
pub const PLUGIN_SUFFIX: &str = std::env::consts::DLL_SUFFIX;

/// Why a file in the plugin directory was not loaded. Each reads as one line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[non_exhaustive]
pub enum RejectReason {
    #[error("not a loadable library: {0}")]
    NotALibrary(String),
    /// A table, segment or section of the ELF file ends past the end of the file (a copy in
    /// progress, a cut download): mapping it would crash the process with SIGBUS.
    #[error("truncated: file is {len} bytes, {what} ends at {end}")]
    Truncated { len: u64, what: String, end: u64 },
    #[error("malformed ELF: {0}")]
    MalformedElf(String),
    #[error("cannot read: {0}")]
    Unreadable(String),
    /// The file changed (size, modification time or inode) while it was read: it is being
    /// written. Not permanent: the next scan tries again.
    #[error("changed while being read: {0}")]
    ChangedWhileRead(String),
    /// The host could not keep a private copy of the file to load.
    #[error("cannot copy to the state directory: {0}")]
    CopyFailed(String),
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
    /// The plugin's root module panicked while it was built. `message` is the panic's message
    /// when a probe process saw it (empty for an in-process load, where the plugin's own panic
    /// hook reports it).
    #[error("initialisation panicked{}", match message.is_empty() {
        true => String::new(),
        false => format!(": {message}"),
    })]
    InitPanicked { message: String },
    #[error("initialisation failed: {0}")]
    InitFailed(String),
    /// The probe process died of a signal while loading the file (its ELF constructors, say).
    /// `output` is the last line it wrote to stderr, if any.
    #[error("crashed while loading: {signal}{}", stderr_note(output))]
    Crashed { signal: String, output: String },
    /// The probe process did not finish loading the file in time; it was killed.
    #[error("timed out while loading after {} s", limit.as_secs_f64())]
    TimedOut { limit: Duration },
    /// The probe process could not be run, or ended without saying how the load went.
    #[error("probe failed: {0}")]
    ProbeFailed(String),
    #[error("invalid metadata: {0}")]
    InvalidMetadata(String),
    #[error("duplicate connector id `{id}`, already loaded from {first}")]
    DuplicateId { id: String, first: String },
    /// The file, or a symlink's target or its directory, may be changed by someone else.
    #[error(transparent)]
    Insecure(#[from] Insecure),
}

impl RejectReason {
    /// Whether the same file may load at a later attempt (it was being written, the machine
    /// was too busy, a copy failed): such a refusal must not be remembered as final.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            RejectReason::ChangedWhileRead(_)
                | RejectReason::Unreadable(_)
                | RejectReason::CopyFailed(_)
                | RejectReason::TimedOut { .. }
                | RejectReason::ProbeFailed(_)
        )
    }
}

fn stderr_note(output: &str) -> String {
    match output.is_empty() {
        true => String::new(),
        false => format!(" (stderr: {output})"),
    }
}

/// A file that was not loaded, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    pub path: PathBuf,
    pub reason: RejectReason,
}

/// The plugin directory could not be scanned at all.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DiscoverError {
    #[error("cannot read plugin directory {path}: {source}")]
    ReadDir {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Someone other than the host's user or root may change the plugin directory.
    #[error("plugin directory refused: {0}; fix its permissions, or allow it explicitly")]
    Insecure(Insecure),
}

/// How [`discover_with`] checks and loads the plugin files.
#[derive(Debug, Clone, Default)]
pub struct DiscoverOptions {
    /// Load from a directory (and files) that group or other users may write to, or that
    /// another user owns. Off by default, like ssh's StrictModes: loading a plugin runs its
    /// code with the host's rights.
    pub allow_writable_by_others: bool,
    /// Load each file first in a child process ([`ProbeCommand::probe`]), and map it into this
    /// process only if that succeeded. `None` maps files directly: a library that crashes in
    /// its initialisers then takes the host down. Hosts should set it.
    pub probe: Option<ProbeCommand>,
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
    /// Loads one plugin file into this process, after checking its ELF structure, without a
    /// probe: a library whose initialisers crash or hang takes this process with it. Hosts
    /// should load through [`Plugin::load_with`] (or [`discover_with`]) with a probe command.
    /// Never panics; a library is never unloaded once opened.
    ///
    /// Loading the same path (or another link to the same file) again returns the same instance:
    /// to load a new build while an old one is loaded, copy it to a new path first.
    pub fn load(path: &Path) -> Result<Plugin, RejectReason> {
        if path.is_dir() {
            return Err(RejectReason::NotALibrary("is a directory".into()));
        }
        crate::elf::check(path)?;
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

    /// Loads one plugin file as [`discover_with`] does (without its permission checks): the
    /// ELF structure first, then the probe in a child process if `options` name one, and only
    /// then this process.
    pub fn load_with(path: &Path, options: &DiscoverOptions) -> Result<Plugin, RejectReason> {
        if path.is_dir() {
            return Err(RejectReason::NotALibrary("is a directory".into()));
        }
        crate::elf::check(path)?;
        if let Some(probe) = &options.probe {
            probe.probe(path)?;
        }
        Plugin::load(path)
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

/// Loads every file with the platform's library suffix in `dir`, without a probe (see
/// [`discover_with`]).
///
/// A file that cannot be loaded is reported in [`Discovery::rejected`] with its reason; the others
/// still load. Of two plugins with one connector id, the first by file name wins.
pub fn discover(dir: &Path) -> Result<Discovery, DiscoverError> {
    discover_with(dir, &DiscoverOptions::default())
}

/// [`discover`] with options: with [`DiscoverOptions::probe`], each file is loaded in a child
/// process first, and a file whose loading crashes or hangs there is refused.
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
            .and_then(|()| Plugin::load_with(&path, options))
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
                tracing::warn!(path = ?path, reason = ?reason.to_string(), "plugin refused");
                discovery.rejected.push(Rejected { path, reason });
            }
        }
    }
    Ok(discovery)
}

/// Checks that `dir` can be read and that only the host's user or root owns it and may write
/// to it (unless `options` allow more). For hosts that scan the directory themselves.
pub fn check_dir(dir: &Path, options: &DiscoverOptions) -> Result<(), DiscoverError> {
    let metadata = std::fs::metadata(dir).map_err(|source| DiscoverError::ReadDir {
        path: dir.to_path_buf(),
        source,
    })?;
    match options.allow_writable_by_others {
        true => Ok(()),
        false => permissions::check_trusted(dir, &metadata).map_err(DiscoverError::Insecure),
    }
}

/// Checks one candidate file before it is loaded: it exists (a symlink is followed), and the
/// file, and for a symlink its target's directory, are owned by the host's user or root and
/// writable by nobody else (unless `options` allow more). For hosts that scan the directory
/// themselves.
pub fn check_file(path: &Path, options: &DiscoverOptions) -> Result<(), RejectReason> {
    // Follows symlinks: what counts is the file that would be mapped.
    let metadata = std::fs::metadata(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => RejectReason::NotALibrary("dangling symlink".into()),
        _ => RejectReason::NotALibrary(e.to_string()),
    })?;
    if options.allow_writable_by_others || !metadata.is_file() {
        return Ok(());
    }
    permissions::check_trusted(path, &metadata)?;
    if let Some(target_dir) = permissions::symlink_target_dir(path) {
        let dir_metadata = std::fs::metadata(&target_dir)
            .map_err(|e| RejectReason::Unreadable(format!("{}: {e}", target_dir.display())))?;
        permissions::check_trusted(&target_dir, &dir_metadata)?;
    }
    Ok(())
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
        } => RejectReason::InitPanicked {
            message: String::new(),
        },
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

pub(crate) fn one_line(text: &str) -> String {
    let joined = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match joined.char_indices().nth(300) {
        Some((cut, _)) => format!("{}…", &joined[..cut]),
        None => joined,
    }
}
