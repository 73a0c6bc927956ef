//! Loading the plugin directory so that its files can be replaced while the broker runs.
//!
//! abi_stable cannot unload a library, `dlopen` of an already loaded path returns the old code,
//! and writing over a mapped file crashes the process. So the broker never loads a file from
//! the plugin directory itself: it copies each one to a content-addressed path in a state
//! directory (`<plugins>/.loaded/<stem>-<sha256 prefix>.so` by default) and loads that copy.
//! The operator may then replace a plugin file any way they like (even `cp` over it); a changed
//! file gets a new copy, hence a fresh library, and an unchanged one is reused as is.
//!
//! Before anything is copied, the directory and each file are checked as
//! [`connector_api::discover_with`] checks them ([`check_dir`], [`check_file`]): a directory or a
//! file that group or others may write to is refused (anyone who can write there can run code in
//! the broker) unless the operator allows it (`--allow-writable-plugin-dir`); a dangling symlink
//! or a directory named like a plugin is reported as a refused file rather than skipped.
//!
//! Costs: each build ever loaded stays mapped until the process exits (about 3 MB of RSS per
//! release build, more in debug), and its copy stays on disk in the state directory. After a
//! library's last generation is retired, [`crate::broker`] calls its `shutdown()`, which stops its
//! runtime threads.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use connector_api::{
    DiscoverError, DiscoverOptions, PLUGIN_SUFFIX, Plugin, RejectReason, check_dir, check_file,
};
use sha2::{Digest, Sha256};

/// Hex digits of the SHA-256 in a copy's file name: 64 bits, plenty to tell builds apart.
const HASH_PREFIX_LEN: usize = 16;

/// One loaded build of a plugin file.
#[derive(Debug)]
pub struct Library {
    /// The file in the plugin directory this build came from.
    pub source: PathBuf,
    /// The private copy that is actually mapped.
    pub copy: PathBuf,
    /// SHA-256 (hex) of the file's content.
    pub sha256: String,
    /// The loaded plugin.
    pub plugin: Plugin,
}

/// A file of the plugin directory that was not loaded, and why (one line).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Refused {
    /// The file in the plugin directory.
    pub file: PathBuf,
    /// Why it was not loaded.
    pub reason: String,
}

/// The result of one scan: loaded libraries (at most one per factory id) and refused files,
/// both in file-name order.
#[derive(Debug, Default)]
pub struct Scan {
    /// Loaded builds, one per factory id.
    pub libraries: Vec<Arc<Library>>,
    /// Files not loaded.
    pub refused: Vec<Refused>,
}

/// The plugin directory cannot be scanned at all.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("cannot read plugin directory {path}: {source}")]
    ReadDir { path: PathBuf, source: io::Error },
    #[error("cannot create state directory {path}: {source}")]
    StateDir { path: PathBuf, source: io::Error },
    /// Group or others may write to the plugin directory, and the operator did not allow it.
    #[error("{0} (--allow-writable-plugin-dir)")]
    WritableDir(DiscoverError),
}

impl From<DiscoverError> for ScanError {
    fn from(e: DiscoverError) -> Self {
        match e {
            DiscoverError::ReadDir { path, source } => ScanError::ReadDir { path, source },
            other => ScanError::WritableDir(other),
        }
    }
}

/// What identifies a file's content without reading it: if none of these changed, the hash
/// computed last time still holds (and the file need not be read again).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Fingerprint {
    dev: u64,
    ino: u64,
    len: u64,
    mtime_ns: i128,
}

impl Fingerprint {
    fn of(meta: &std::fs::Metadata) -> Self {
        Self {
            dev: meta.dev(),
            ino: meta.ino(),
            len: meta.len(),
            mtime_ns: i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
        }
    }
}

/// A source file as last copied.
#[derive(Clone)]
struct Seen {
    fingerprint: Fingerprint,
    copy: PathBuf,
    sha256: String,
}

#[derive(Default)]
struct LoaderState {
    /// Source file → what its last copy was.
    seen: HashMap<PathBuf, Seen>,
    /// Copy path → loaded library.
    loaded: HashMap<PathBuf, Arc<Library>>,
    /// Copies whose library was shut down: loading them again would return the dead instance.
    retired: HashSet<PathBuf>,
    /// Source file → why it was refused, while unchanged: not loaded again at every reload
    /// (a plugin whose initialisation panics would print its panic each time).
    refusals: HashMap<PathBuf, (Fingerprint, String)>,
}

/// Scans a plugin directory into content-addressed copies and loads them.
pub struct Loader {
    dir: PathBuf,
    state_dir: PathBuf,
    /// What the directory and file checks allow.
    checks: DiscoverOptions,
    state: Mutex<LoaderState>,
}

impl Loader {
    /// A loader for `dir`, copying into `state_dir` (default `<dir>/.loaded`).
    pub fn new(dir: &Path, state_dir: Option<&Path>) -> Self {
        Self {
            dir: dir.to_path_buf(),
            state_dir: state_dir.map_or_else(|| dir.join(".loaded"), Path::to_path_buf),
            checks: DiscoverOptions::default(),
            state: Mutex::new(LoaderState::default()),
        }
    }

    /// Loads from a directory, and files, that group or others may write to (off by default).
    pub fn allow_writable_by_others(mut self, allow: bool) -> Self {
        self.checks.allow_writable_by_others = allow;
        self
    }

    /// The plugin directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Loads every plugin file of the directory (blocking: hashes, copies and `dlopen`s).
    /// Files unchanged since the last scan reuse their library. Fails if the directory cannot
    /// be read or is writable by others (unless allowed).
    pub fn scan(&self) -> Result<Scan, ScanError> {
        check_dir(&self.dir, &self.checks)?;
        let files = self.plugin_files()?;
        std::fs::create_dir_all(&self.state_dir).map_err(|source| ScanError::StateDir {
            path: self.state_dir.clone(),
            source,
        })?;
        let mut scan = Scan::default();
        let mut factories: HashMap<String, PathBuf> = HashMap::new();
        for file in files {
            let loaded = self
                .load_file(&file)
                .and_then(|lib| unique_factory(lib, &file, &mut factories));
            match loaded {
                Ok(lib) => scan.libraries.push(lib),
                Err(reason) => {
                    tracing::warn!(file = %file.display(), %reason, "plugin refused");
                    scan.refused.push(Refused { file, reason });
                }
            }
        }
        Ok(scan)
    }

    /// Marks `library` as shut down: a later scan that meets the same content loads a new copy.
    pub fn forget(&self, library: &Library) {
        let mut state = self.lock();
        state.loaded.remove(&library.copy);
        state.retired.insert(library.copy.clone());
        state.seen.retain(|_, seen| seen.copy != library.copy);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LoaderState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every entry named like a plugin, whatever it is (file, directory, dangling symlink): what
    /// is not a loadable file is refused with its reason, never skipped silently.
    fn plugin_files(&self) -> Result<Vec<PathBuf>, ScanError> {
        let read_error = |source| ScanError::ReadDir {
            path: self.dir.clone(),
            source,
        };
        let mut files = Vec::new();
        for entry in std::fs::read_dir(&self.dir).map_err(read_error)? {
            let path = entry.map_err(read_error)?.path();
            if path.to_string_lossy().ends_with(PLUGIN_SUFFIX) {
                files.push(path);
            }
        }
        files.sort();
        Ok(files)
    }

    fn load_file(&self, file: &Path) -> Result<Arc<Library>, String> {
        check_file(file, &self.checks).map_err(|r| r.to_string())?;
        let meta = std::fs::metadata(file).map_err(|e| format!("cannot read: {e}"))?;
        if !meta.is_file() {
            let what = if meta.is_dir() {
                "is a directory"
            } else {
                "not a regular file"
            };
            return Err(RejectReason::NotALibrary(what.into()).to_string());
        }
        let fingerprint = Fingerprint::of(&meta);
        let refused = self.lock().refusals.get(file).cloned();
        if let Some((_, reason)) = refused.filter(|(f, _)| *f == fingerprint) {
            return Err(reason);
        }
        self.load_changed(file, fingerprint)
    }

    fn load_changed(&self, file: &Path, fingerprint: Fingerprint) -> Result<Arc<Library>, String> {
        let known = self.lock().seen.get(file).cloned();
        let (copy, sha256) = match known {
            Some(seen) if seen.fingerprint == fingerprint => (seen.copy, seen.sha256),
            _ => self.copy_in(file)?,
        };
        let existing = self.lock().loaded.get(&copy).cloned();
        let lib = match existing {
            Some(lib) => lib,
            None => Arc::new(Library {
                source: file.to_path_buf(),
                copy: copy.clone(),
                plugin: Plugin::load(&copy).map_err(|r| {
                    // Only load refusals are remembered; a failed copy is tried again.
                    let reason = r.to_string();
                    let refusal = (fingerprint, reason.clone());
                    self.lock().refusals.insert(file.to_path_buf(), refusal);
                    reason
                })?,
                sha256: sha256.clone(),
            }),
        };
        let seen = Seen {
            fingerprint,
            copy: copy.clone(),
            sha256,
        };
        let mut state = self.lock();
        state.seen.insert(file.to_path_buf(), seen);
        state.loaded.insert(copy, lib.clone());
        Ok(lib)
    }

    /// Copies `file` into the state directory while hashing it, then names the copy by its hash.
    /// Hashing the bytes actually copied means a file replaced mid-copy cannot be mislabelled.
    fn copy_in(&self, file: &Path) -> Result<(PathBuf, String), String> {
        // Opened first, so that an unreadable file is reported as such, not as a copy failure.
        let source = File::open(file).map_err(|e| format!("cannot read: {e}"))?;
        let mut temp = tempfile::Builder::new()
            .prefix(".incoming-")
            .tempfile_in(&self.state_dir)
            .map_err(|e| format!("cannot create a copy in {}: {e}", self.state_dir.display()))?;
        let sha256 = copy_hashing(source, temp.as_file_mut())
            .map_err(|e| format!("cannot copy to the state directory: {e}"))?;
        let copy = self.copy_path(file, &sha256);
        // Never replace an existing copy: it may be mapped by this or another broker process.
        match temp.persist_noclobber(&copy) {
            Ok(_) => {}
            Err(e) if e.error.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(format!("cannot store {}: {}", copy.display(), e.error)),
        }
        Ok((copy, sha256))
    }

    /// `<state>/<stem>-<hash prefix>.so`, or with `-r<n>` when that copy's library was shut down.
    fn copy_path(&self, file: &Path, sha256: &str) -> PathBuf {
        let stem = file
            .file_name()
            .map(|n| {
                n.to_string_lossy()
                    .trim_end_matches(PLUGIN_SUFFIX)
                    .to_string()
            })
            .unwrap_or_default();
        let prefix = &sha256[..HASH_PREFIX_LEN];
        let retired = &self.lock().retired;
        (0..)
            .map(|n| match n {
                0 => format!("{stem}-{prefix}{PLUGIN_SUFFIX}"),
                n => format!("{stem}-{prefix}-r{n}{PLUGIN_SUFFIX}"),
            })
            .map(|name| self.state_dir.join(name))
            .find(|path| !retired.contains(path))
            .unwrap_or_default()
    }
}

/// Refuses a second library with a factory id already loaded (the first by file name wins).
fn unique_factory(
    lib: Arc<Library>,
    file: &Path,
    factories: &mut HashMap<String, PathBuf>,
) -> Result<Arc<Library>, String> {
    let id = lib.plugin.metadata().id.clone();
    match factories.get(&id) {
        Some(first) => Err(format!(
            "duplicate connector id `{id}`, already loaded from {}",
            first.display()
        )),
        None => {
            factories.insert(id, file.to_path_buf());
            Ok(lib)
        }
    }
}

fn copy_hashing(mut source: File, to: &mut File) -> io::Result<String> {
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let n = source.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
        to.write_all(&buffer[..n])?;
    }
    to.sync_all()?;
    Ok(format!("{:x}", hasher.finalize()))
}
