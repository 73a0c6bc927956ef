//! Where the built artifacts are: the release plugin, the sandbox and host binaries.

use std::env::consts::{DLL_PREFIX, DLL_SUFFIX, EXE_SUFFIX};
use std::path::{Path, PathBuf};

/// The workspace root (two levels above this crate).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("tests/bench is inside the workspace")
        .to_path_buf()
}

/// `target/<profile>` of the running executable (benches and tests live in its `deps/`).
pub fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("path of the running executable");
    let dir = exe.parent().expect("executable has a directory");
    match dir.file_name() {
        Some(name) if name == "deps" => dir.parent().unwrap_or(dir),
        _ => dir,
    }
    .to_path_buf()
}

/// The built cdylib of `package` next to this executable, e.g. `libhuggingface_plugin.so`.
pub fn library(package: &str) -> PathBuf {
    let file = format!("{DLL_PREFIX}{}{DLL_SUFFIX}", package.replace('-', "_"));
    profile_dir().join(file)
}

/// The built binary `name` next to this executable.
pub fn binary(name: &str) -> PathBuf {
    profile_dir().join(format!("{name}{EXE_SUFFIX}"))
}

/// Builds `packages` in release (`cargo build --release -p …`; a no-op when fresh), so that a
/// bench run by `cargo bench` alone never measures a stale plugin.
pub fn ensure_built(packages: &[&str]) -> Result<(), String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = std::process::Command::new(cargo);
    command
        .current_dir(workspace_root())
        .args(["build", "--release", "--quiet"]);
    for package in packages {
        command.args(["-p", package]);
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
