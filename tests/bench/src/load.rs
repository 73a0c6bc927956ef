//! How long discovering and loading plugins takes, in a fresh process each time.

use std::path::Path;
use std::time::Instant;

use serde::{Deserialize, Serialize};

/// One discovery of a directory of `copies` Hugging Face plugin files.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LoadSample {
    /// Plugin files in the directory.
    pub files: usize,
    /// Wall time of `connector_api::discover_with`, in milliseconds.
    pub ms: f64,
    /// Plugins loaded.
    pub loaded: usize,
    /// Files refused; every copy after the first, as a duplicate id, once it has been loaded
    /// and checked like any plugin (so each file costs a full load).
    pub rejected: usize,
}

/// The hidden subcommand of `connector-bench` that is the probe's child side.
pub const PROBE_SUBCOMMAND: &str = "__probe-plugin";

/// Copies `library` `copies` times into a fresh directory (each copy is a new file, so each
/// is really loaded: a loaded path is never loaded twice), then times the discovery; with
/// `probe`, each file is first loaded in a child process (this executable's probe subcommand).
pub fn measure(library: &Path, copies: usize, probe: bool) -> Result<LoadSample, String> {
    let dir = tempfile::Builder::new()
        .prefix("connector-bench-plugins-")
        .tempdir()
        .map_err(|e| e.to_string())?;
    fill(dir.path(), library, copies)?;
    measure_dir(dir.path(), probe)
}

/// Copies `library` `copies` times into `dir`, as distinct files.
pub fn fill(dir: &Path, library: &Path, copies: usize) -> Result<(), String> {
    let suffix = connector_api::PLUGIN_SUFFIX;
    for i in 0..copies {
        let target = dir.join(format!("huggingface-{i:02}{suffix}"));
        std::fs::copy(library, &target).map_err(|e| format!("{}: {e}", target.display()))?;
    }
    Ok(())
}

/// Times the discovery of `dir` as it is (see [`measure`]).
pub fn measure_dir(dir: &Path, probe: bool) -> Result<LoadSample, String> {
    let copies = std::fs::read_dir(dir).map_err(|e| e.to_string())?.count();
    let start = Instant::now();
    let options = connector_api::DiscoverOptions {
        probe: match probe {
            true => Some(
                connector_api::ProbeCommand::current_exe([PROBE_SUBCOMMAND])
                    .map_err(|e| e.to_string())?,
            ),
            false => None,
        },
        ..connector_api::DiscoverOptions::default()
    };
    let discovery = connector_api::discover_with(dir, &options).map_err(|e| e.to_string())?;
    let ms = start.elapsed().as_secs_f64() * 1e3;
    Ok(LoadSample {
        files: copies,
        ms,
        loaded: discovery.plugins.len(),
        rejected: discovery.rejected.len(),
    })
}
