//! Who may change what the host loads, checked like ssh's StrictModes: loading a library runs
//! its code with the host's rights, so a file or directory that anyone but the host's user (or
//! root) may write is as good as theirs to run.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// A path on the way to loaded code that someone else could change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum Insecure {
    #[error(
        "{path} is writable by other users (mode {mode:o}, owner uid {owner}): anyone who can \
         write it can run code in this host"
    )]
    WritableByOthers {
        path: PathBuf,
        mode: u32,
        owner: u32,
    },
    #[error(
        "{path} is owned by uid {owner}, neither this host's user (uid {host_uid}) nor root \
         (mode {mode:o}): its owner can run code in this host"
    )]
    ForeignOwner {
        path: PathBuf,
        mode: u32,
        owner: u32,
        host_uid: u32,
    },
}

/// Checks `path`, whose (symlink-following) metadata is `metadata`: only the host's user or
/// root owns it, and neither group nor others may write it. `Ok` off unix. For a host's own
/// directories (where it keeps copies to load, say); plugin directories and files are checked
/// by [`crate::check_dir`] and [`crate::check_file`].
pub fn check_trusted(path: &Path, metadata: &std::fs::Metadata) -> Result<(), Insecure> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt as _;
        let mode = metadata.mode() & 0o7777;
        let owner = metadata.uid();
        // SAFETY: geteuid(2) has no preconditions and cannot fail.
        let host_uid = unsafe { libc::geteuid() };
        if owner != host_uid && owner != 0 {
            return Err(Insecure::ForeignOwner {
                path: path.to_path_buf(),
                mode,
                owner,
                host_uid,
            });
        }
        if mode & 0o022 != 0 {
            return Err(Insecure::WritableByOthers {
                path: path.to_path_buf(),
                mode,
                owner,
            });
        }
    }
    #[cfg(not(unix))]
    let _ = (path, metadata);
    Ok(())
}

/// For a symlink, the directory holding its final target: whoever may write there may swap
/// the target. `None` for anything else.
pub(crate) fn symlink_target_dir(path: &Path) -> Option<PathBuf> {
    let link = std::fs::symlink_metadata(path).ok()?;
    if !link.file_type().is_symlink() {
        return None;
    }
    std::fs::canonicalize(path)
        .ok()?
        .parent()
        .map(Path::to_path_buf)
}
