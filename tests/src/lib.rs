//! Shared utilities for the end-to-end tests: the workspace's real plugin builds, copied into
//! throwaway plugin directories.
//!
//! Every lookup first runs `cargo build --workspace` (once per test process), so a plain
//! `cargo test` never tests a stale plugin build.

pub mod hf;

use std::env::consts::{DLL_PREFIX, DLL_SUFFIX};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use connector_api::Plugin;
use tempfile::TempDir;

/// The built cdylib of workspace package `package`, in the profile directory of this test binary.
///
/// Panics (with cargo's output) if the workspace does not build, or if `package` has no cdylib.
pub fn library_path(package: &str) -> PathBuf {
    static BUILD: OnceLock<Result<(), String>> = OnceLock::new();
    let profile_dir = profile_dir();
    if let Err(e) = BUILD.get_or_init(|| build_workspace(&profile_dir)) {
        panic!("{e}");
    }
    let file = format!("{DLL_PREFIX}{}{DLL_SUFFIX}", package.replace('-', "_"));
    let path = profile_dir.join(file);
    assert!(
        path.is_file(),
        "no library {} for package `{package}`: is it a cdylib workspace member?",
        path.display()
    );
    path
}

/// `target/<profile>`: test executables live in its `deps/`, uplifted cdylibs in it.
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("path of the test executable");
    let dir = exe.parent().expect("test executable has a directory");
    match dir.file_name() {
        Some(name) if name == "deps" => dir.parent().unwrap_or(dir),
        _ => dir,
    }
    .to_path_buf()
}

fn build_workspace(profile_dir: &Path) -> Result<(), String> {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is inside the workspace");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(workspace)
        .args(["build", "--workspace"]);
    match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") | None => {}
        Some("release") => {
            command.arg("--release");
        }
        Some(profile) => {
            command.args(["--profile", profile]);
        }
    }
    let output = command
        .output()
        .map_err(|e| format!("cannot run {command:?}: {e}"))?;
    match output.status.success() {
        true => Ok(()),
        false => Err(format!(
            "{command:?} failed ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        )),
    }
}

/// A temporary plugin directory, removed on drop.
///
/// Files are always fresh copies (a new inode at a new path): abi_stable never unloads a library,
/// and opening a path (or link) that is already loaded returns the loaded instance.
pub struct PluginDir {
    dir: TempDir,
}

impl Default for PluginDir {
    fn default() -> Self {
        Self::new()
    }
}

impl PluginDir {
    pub fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("connector-plugins-")
            .tempdir()
            .expect("create a temporary plugin directory");
        Self { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Copies `package`'s library in under its own file name (e.g. `libecho_plugin.so`).
    pub fn add(&self, package: &str) -> PathBuf {
        let source = library_path(package);
        let name = source.file_name().expect("library file name");
        self.add_as(package, &name.to_string_lossy())
    }

    /// Copies `package`'s library in as `file_name`.
    pub fn add_as(&self, package: &str, file_name: &str) -> PathBuf {
        let source = library_path(package);
        let target = self.fresh(file_name);
        std::fs::copy(&source, &target)
            .unwrap_or_else(|e| panic!("copy {} to {}: {e}", source.display(), target.display()));
        target
    }

    /// Writes `bytes` as `file_name` (garbage, empty files, …).
    pub fn write(&self, file_name: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
        let target = self.fresh(file_name);
        std::fs::write(&target, bytes)
            .unwrap_or_else(|e| panic!("write {}: {e}", target.display()));
        target
    }

    /// Never write over a file: it may be a loaded library, and that crashes the process.
    fn fresh(&self, file_name: &str) -> PathBuf {
        let target = self.path().join(file_name);
        assert!(!target.exists(), "{} already exists", target.display());
        target
    }
}

/// Loads a private instance of `package`'s plugin (own copy, own runtime), then removes the copy;
/// the loaded library stays mapped. Tests that need a plugin to themselves (e.g. to shut it down)
/// use this rather than sharing one.
pub fn load_private(package: &str) -> Plugin {
    let dir = PluginDir::new();
    let path = dir.add(package);
    Plugin::load(&path).unwrap_or_else(|reason| panic!("load {}: {reason}", path.display()))
}
