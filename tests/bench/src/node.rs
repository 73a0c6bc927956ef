//! Logto's own connector, run by the Node harness in `tests/bench/logto/`.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::signin::{Sample, Workload};
use crate::{CLIENT_ID, CLIENT_SECRET, SCOPE, paths};

/// `tests/bench/logto`.
pub fn harness_dir() -> PathBuf {
    paths::workspace_root().join("tests/bench/logto")
}

/// Whether `npm ci` has installed the harness's pinned packages.
pub fn installed() -> bool {
    harness_dir()
        .join("node_modules/@logto/connector-huggingface/package.json")
        .is_file()
}

/// Runs `workload` with Logto's connector in a fresh Node process.
pub fn run(workload: &Workload) -> Result<Sample, String> {
    let mut command = node();
    command
        .args(["--endpoint", &workload.endpoint])
        .args(["--concurrency", &workload.concurrency.to_string()])
        .args(["--count", &workload.count.to_string()])
        .args(["--warmup", &workload.warmup.to_string()])
        .args(["--batch", &workload.batch.to_string()])
        .args(["--client-id", CLIENT_ID, "--client-secret", CLIENT_SECRET])
        .args(["--scope", SCOPE]);
    json_line(command)
}

/// How long Node takes to import Logto's connector package and create the connector, in ms.
pub fn load_ms() -> Result<f64, String> {
    let mut command = node();
    command.arg("--load");
    let value: serde_json::Value = json_line(command)?;
    value["load_ms"]
        .as_f64()
        .ok_or_else(|| format!("harness said {value}"))
}

fn node() -> Command {
    let mut command = Command::new("node");
    command.current_dir(harness_dir()).arg("harness.mjs");
    command
}

/// Runs `command` and parses the last line of its standard output.
pub fn json_line<T: serde::de::DeserializeOwned>(mut command: Command) -> Result<T, String> {
    let output = command
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run {command:?}: {e}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(format!("{command:?} failed ({}): {stdout}", output.status));
    }
    let line = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(line).map_err(|e| format!("{command:?} printed {line:?}: {e}"))
}

/// Version of the installed `@logto/connector-huggingface` (e.g. `0.4.8`).
pub fn connector_version() -> String {
    let path = harness_dir().join("node_modules/@logto/connector-huggingface/package.json");
    std::fs::read_to_string(path)
        .ok()
        .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
        .and_then(|v| v["version"].as_str().map(str::to_string))
        .unwrap_or_else(|| "not installed".into())
}
