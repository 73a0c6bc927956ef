//! Loading the plugin directory so that its files can be replaced while the broker runs.
//!
//! abi_stable cannot unload a library, `dlopen` of an already loaded path returns the old code,
//! and writing over a mapped file crashes the process. So the broker never loads a file from
//! the plugin directory itself: it copies each one to a content-addressed path in a state
//! directory (`<plugins>/.loaded/<stem>-<sha256 prefix>.so` by default) and loads that copy.
//! The operator may then replace a plugin file any way they like (even `cp` over it); a changed
//! file gets a new copy, hence a fresh library, and an unchanged one is reused as is.
//!
//! What is checked, in order (a refused file gets one typed [`RejectReason`], shown as one line):
//! - the plugin directory, each file, and for a symlink its target's directory, as
//!   [`connector_api::discover_with`] checks them ([`check_dir`], [`check_file`]): owned by the
//!   broker's user or root and writable by nobody else, like ssh's StrictModes (anyone who can
//!   write there can run code in the broker), unless the operator allows it
//!   (`--allow-writable-plugin-dir`, which waives both the mode and the owner check); a
//!   dangling symlink or a directory named like a plugin is refused rather than skipped;
//! - the state directory: created `0700` whatever the umask, and an existing one refused
//!   unless only the broker's user (or root) owns and may write it (always; the escape hatch
//!   is for the plugin directory only);
//! - the copy: the file is copied and hashed in one pass and `fstat`ed before and after (size,
//!   modification time, inode), and its path again after; if anything changed it is being
//!   written and is refused *for this scan only* ("changed while being read"); a partial copy
//!   is removed. A copy that already exists under the target name is hashed, and replaced
//!   unless it holds exactly those bytes: what is loaded is what was hashed;
//! - the copy is then loaded as [`Plugin::load_with`] loads: its ELF structure (a truncated
//!   file is refused, never mapped), then, with a probe command ([`probe_command`]), a load in
//!   a child process under a time limit (a library that aborts, segfaults or hangs in its
//!   initialisers is refused as `crashed while loading: SIGABRT`, `timed out while loading`),
//!   and only then the broker itself.
//!
//! Refusals that depend on the file alone are remembered while the file is unchanged (a
//! plugin whose initialisation panics is not probed again at every reload); transient ones
//! ([`RejectReason::is_transient`]) are not.
//!
//! Costs: each build ever loaded stays mapped until the process exits (about 3 MB of RSS per
//! release build, more in debug), and its copy stays on disk in the state directory. After a
//! library's last generation is retired, [`crate::broker`] calls its `shutdown()`, which stops its
//! runtime threads.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt as _, MetadataExt as _};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use connector_api::{
    DiscoverError, DiscoverOptions, Insecure, PLUGIN_SUFFIX, Plugin, ProbeCommand, RejectReason,
    check_dir, check_file, check_trusted,
};
use sha2::{Digest, Sha256};

/// The hidden subcommand of `host-example` that probes one plugin file
/// ([`connector_api::probe::run_child`]).
pub const PROBE_SUBCOMMAND: &str = "__probe-plugin";

/// This executable with [`PROBE_SUBCOMMAND`]: the probe the `host-example` binary uses.
pub fn probe_command() -> ProbeCommand {
    // Linux resolves /proc/self/exe in the child, before exec replaces it: the same binary.
    let exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("/proc/self/exe"));
    ProbeCommand::new(exe, [PROBE_SUBCOMMAND])
}

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
    /// Someone other than the broker's user or root may change the state directory.
    #[error("state directory refused: {0}")]
    InsecureStateDir(Insecure),
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
    /// (a plugin whose initialisation panics would be probed again each time). Transient
    /// refusals are not kept.
    refusals: HashMap<PathBuf, (Fingerprint, RejectReason)>,
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

    /// Loads from a directory, and files, that group or others may write to or that another
    /// user owns (off by default).
    pub fn allow_writable_by_others(mut self, allow: bool) -> Self {
        self.checks.allow_writable_by_others = allow;
        self
    }

    /// Loads each new build in a child process first (`None`: maps it directly).
    pub fn probe(mut self, probe: Option<ProbeCommand>) -> Self {
        self.checks.probe = probe;
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
        self.prepare_state_dir()?;
        let mut scan = Scan::default();
        let mut factories: HashMap<String, PathBuf> = HashMap::new();
        for file in files {
            let loaded = self
                .load_file(&file)
                .and_then(|lib| unique_factory(lib, &file, &mut factories));
            match loaded {
                Ok(lib) => scan.libraries.push(lib),
                Err(reason) => {
                    tracing::warn!(file = ?file, reason = ?reason.to_string(), "plugin refused");
                    // The one place a typed reason becomes the report's line.
                    let reason = reason.to_string();
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

    /// Creates the state directory `0700` (the umask can only take bits away), and refuses an
    /// existing one that others could write to: what is in it gets loaded.
    fn prepare_state_dir(&self) -> Result<(), ScanError> {
        let state_error = |source| ScanError::StateDir {
            path: self.state_dir.clone(),
            source,
        };
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.state_dir)
            .map_err(state_error)?;
        let metadata = std::fs::metadata(&self.state_dir).map_err(state_error)?;
        check_trusted(&self.state_dir, &metadata).map_err(ScanError::InsecureStateDir)
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

    fn load_file(&self, file: &Path) -> Result<Arc<Library>, RejectReason> {
        check_file(file, &self.checks)?;
        let meta = std::fs::metadata(file).map_err(|e| RejectReason::Unreadable(e.to_string()))?;
        if !meta.is_file() {
            let what = if meta.is_dir() {
                "is a directory"
            } else {
                "not a regular file"
            };
            return Err(RejectReason::NotALibrary(what.into()));
        }
        let fingerprint = Fingerprint::of(&meta);
        let refused = self.lock().refusals.get(file).cloned();
        if let Some((_, reason)) = refused.filter(|(f, _)| *f == fingerprint) {
            return Err(reason);
        }
        self.load_changed(file, fingerprint)
    }

    fn load_changed(
        &self,
        file: &Path,
        fingerprint: Fingerprint,
    ) -> Result<Arc<Library>, RejectReason> {
        let known = self.lock().seen.get(file).cloned();
        let (copy, sha256) = match known {
            Some(seen) if seen.fingerprint == fingerprint => (seen.copy, seen.sha256),
            _ => self.copy_in(file, fingerprint)?,
        };
        let existing = self.lock().loaded.get(&copy).cloned();
        let lib = match existing {
            Some(lib) => lib,
            None => Arc::new(Library {
                source: file.to_path_buf(),
                copy: copy.clone(),
                plugin: Plugin::load_with(&copy, &self.checks).inspect_err(|reason| {
                    if !reason.is_transient() {
                        let refusal = (fingerprint, reason.clone());
                        self.lock().refusals.insert(file.to_path_buf(), refusal);
                    }
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
    /// Hashing the bytes actually copied means a file replaced mid-copy cannot be mislabelled;
    /// `expected` (the file as the scan saw it) and `fstat`s before and after the copy catch a
    /// file being written meanwhile.
    fn copy_in(
        &self,
        file: &Path,
        expected: Fingerprint,
    ) -> Result<(PathBuf, String), RejectReason> {
        // Opened first, so that an unreadable file is reported as such, not as a copy failure.
        let source = File::open(file).map_err(|e| RejectReason::Unreadable(e.to_string()))?;
        let before = fstat(&source)?;
        let mut temp = tempfile::Builder::new()
            .prefix(".incoming-")
            .tempfile_in(&self.state_dir)
            .map_err(|e| {
                RejectReason::CopyFailed(format!(
                    "cannot create a copy in {}: {e}",
                    self.state_dir.display()
                ))
            })?;
        // On any error below, `temp` is dropped, which removes the partial copy.
        let (sha256, copied) = copy_hashing(&source, temp.as_file_mut())
            .and_then(|hashed| temp.as_file().sync_all().map(|()| hashed))
            .map_err(|e| RejectReason::CopyFailed(e.to_string()))?;
        let after = fstat(&source)?;
        let now_at_path = std::fs::metadata(file)
            .map(|m| Fingerprint::of(&m))
            .map_err(|e| RejectReason::ChangedWhileRead(format!("gone after reading: {e}")))?;
        unchanged(expected, before, after, now_at_path, copied)?;
        let copy = self.copy_path(file, &sha256);
        self.store(temp, &copy, &sha256)?;
        Ok((copy, sha256))
    }

    /// Moves a finished copy to its content-addressed name. An existing file there is kept
    /// only if it holds exactly these bytes (it may be mapped by this or another broker
    /// process); anything else there, planted or damaged, is replaced (a rename: whoever maps
    /// the old file keeps it).
    fn store(
        &self,
        temp: tempfile::NamedTempFile,
        copy: &Path,
        sha256: &str,
    ) -> Result<(), RejectReason> {
        let store_error = |e: io::Error| {
            RejectReason::CopyFailed(format!("cannot store {}: {e}", copy.display()))
        };
        let temp = match temp.persist_noclobber(copy) {
            Ok(_) => return Ok(()),
            Err(e) if e.error.kind() == io::ErrorKind::AlreadyExists => e.file,
            Err(e) => return Err(store_error(e.error)),
        };
        if holds_exactly(copy, sha256) {
            return Ok(());
        }
        tracing::warn!(
            copy = ?copy,
            "replacing a file in the state directory whose content does not match its name"
        );
        temp.persist(copy)
            .map(drop)
            .map_err(|e| store_error(e.error))
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
) -> Result<Arc<Library>, RejectReason> {
    let id = lib.plugin.metadata().id.clone();
    match factories.get(&id) {
        Some(first) => Err(RejectReason::DuplicateId {
            id,
            first: first.display().to_string(),
        }),
        None => {
            factories.insert(id, file.to_path_buf());
            Ok(lib)
        }
    }
}

fn fstat(file: &File) -> Result<Fingerprint, RejectReason> {
    file.metadata()
        .map(|m| Fingerprint::of(&m))
        .map_err(|e| RejectReason::Unreadable(e.to_string()))
}

/// `ChangedWhileRead` unless the file stayed what the scan saw from open to the end of the
/// copy, all of it was copied, and the path still names it.
fn unchanged(
    expected: Fingerprint,
    before: Fingerprint,
    after: Fingerprint,
    now_at_path: Fingerprint,
    copied: u64,
) -> Result<(), RejectReason> {
    let changed = |what: String| Err(RejectReason::ChangedWhileRead(what));
    let same_file = |f: Fingerprint| (f.dev, f.ino) == (before.dev, before.ino);
    if !same_file(expected) || !same_file(now_at_path) {
        return changed("replaced by another file".into());
    }
    if [expected.len, after.len, now_at_path.len, copied] != [before.len; 4] {
        return changed(format!(
            "{} bytes when opened, {copied} read, {} after",
            before.len, after.len
        ));
    }
    if [expected, after, now_at_path] != [before; 3] {
        return changed("modified while it was copied".into());
    }
    Ok(())
}

/// Whether `path` is a regular file (not a symlink) whose SHA-256 is `sha256`.
fn holds_exactly(path: &Path, sha256: &str) -> bool {
    let regular = std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_file());
    regular
        && File::open(path)
            .and_then(|f| copy_hashing(&f, &mut io::sink()))
            .is_ok_and(|(hash, _)| hash == sha256)
}

/// Copies `source` to `to` and returns the SHA-256 (hex) of the bytes
/// copied and their count.
fn copy_hashing(mut source: &File, to: &mut impl Write) -> io::Result<(String, u64)> {
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    let mut copied = 0u64;
    loop {
        let n = source.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
        to.write_all(&buffer[..n])?;
        copied += n as u64;
    }
    to.flush()?;
    Ok((format!("{:x}", hasher.finalize()), copied))
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: Fingerprint = Fingerprint {
        dev: 1,
        ino: 7,
        len: 100,
        mtime_ns: 5,
    };

    fn reason(result: Result<(), RejectReason>) -> String {
        result.unwrap_err().to_string()
    }

    #[test]
    fn a_file_that_stayed_put_and_was_read_whole_is_unchanged() {
        assert_eq!(unchanged(FILE, FILE, FILE, FILE, 100), Ok(()));
    }

    #[test]
    fn growth_truncation_rewrites_and_replacements_are_changed_while_being_read() {
        let grown = Fingerprint { len: 150, ..FILE };
        assert_eq!(
            reason(unchanged(FILE, FILE, grown, grown, 120)),
            "changed while being read: 100 bytes when opened, 120 read, 150 after"
        );
        assert!(reason(unchanged(FILE, FILE, FILE, FILE, 60)).contains("60 read"));
        let touched = Fingerprint {
            mtime_ns: 6,
            ..FILE
        };
        assert_eq!(
            reason(unchanged(FILE, FILE, touched, touched, 100)),
            "changed while being read: modified while it was copied"
        );
        let other = Fingerprint { ino: 8, ..FILE };
        assert_eq!(
            reason(unchanged(FILE, FILE, FILE, other, 100)),
            "changed while being read: replaced by another file"
        );
        assert!(RejectReason::ChangedWhileRead(String::new()).is_transient());
    }
}
