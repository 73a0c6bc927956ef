//! Shared utilities for the end-to-end tests: the workspace's real plugin builds, copied into
//! throwaway plugin directories.
//!
//! Every lookup first builds the plugin it names (once per test process), so a plain
//! `cargo test` never tests a stale plugin build.

pub mod hf;
pub mod logs;

use std::env::consts::{DLL_PREFIX, DLL_SUFFIX};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use connector_api::Plugin;
use tempfile::TempDir;

/// The built cdylib of package `package`: a workspace member (`huggingface-plugin`) or one of
/// the loader's test plugins in `tests/plugins/` (`echo-plugin`, `panicking-init-plugin`, …), in
/// the profile of this test binary.
///
/// Each lookup first builds what it names (once per test process), so a plain `cargo test`
/// never tests a stale plugin build: `cargo build --workspace` for a member, and the test
/// plugins' own workspace into `target/test-plugins/<profile>` for a test plugin. Panics (with
/// cargo's output) if the build fails, or if `package` has no cdylib.
pub fn library_path(package: &str) -> PathBuf {
    static WORKSPACE: OnceLock<Result<(), String>> = OnceLock::new();
    static TEST_PLUGINS: OnceLock<Result<(), String>> = OnceLock::new();
    let profile_dir = profile_dir();
    let test_plugins = test_plugins_dir();
    let (built, dir) = match test_plugins.join(package).join("Cargo.toml").is_file() {
        true => {
            let target = target_dir(&profile_dir).join("test-plugins");
            let build =
                || cargo_build(&test_plugins, &["--workspace"], Some(&target), &profile_dir);
            (
                TEST_PLUGINS.get_or_init(build),
                target.join(profile_name(&profile_dir)),
            )
        }
        false => {
            let build = || cargo_build(workspace_dir(), &["--workspace"], None, &profile_dir);
            (WORKSPACE.get_or_init(build), profile_dir.clone())
        }
    };
    if let Err(e) = built {
        panic!("{e}");
    }
    let file = format!("{DLL_PREFIX}{}{DLL_SUFFIX}", package.replace('-', "_"));
    let path = dir.join(file);
    assert!(
        path.is_file(),
        "no library {} for package `{package}`: is it a cdylib?",
        path.display()
    );
    path
}

/// The built `host-example` executable, next to the workspace's plugins (built with them).
pub fn host_example_bin() -> PathBuf {
    let bin = library_path("huggingface-plugin").with_file_name("host-example");
    assert!(bin.is_file(), "no {}", bin.display());
    bin
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

/// `debug`, `release`, or a custom profile's name.
fn profile_name(profile_dir: &Path) -> String {
    profile_dir
        .file_name()
        .map_or_else(|| "debug".into(), |n| n.to_string_lossy().into_owned())
}

fn target_dir(profile_dir: &Path) -> PathBuf {
    profile_dir.parent().unwrap_or(profile_dir).to_path_buf()
}

fn workspace_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is inside the workspace")
}

/// The test plugins' own workspace.
fn test_plugins_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("plugins")
}

/// `cargo build <args> [<target_dir>]` in `dir`, in the profile of `profile_dir`.
fn cargo_build(
    dir: &Path,
    args: &[&str],
    target_dir: Option<&Path>,
    profile_dir: &Path,
) -> Result<(), String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command.current_dir(dir).arg("build").args(args);
    if let Some(target_dir) = target_dir {
        command.arg("--target-dir").arg(target_dir);
    }
    match profile_name(profile_dir).as_str() {
        "debug" => {}
        "release" => {
            command.arg("--release");
        }
        profile => {
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
