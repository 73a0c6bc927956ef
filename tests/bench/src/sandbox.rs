//! The Hub sandbox as its own process, so that the provider's CPU is never counted as the client's.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::{CLIENT_ID, CLIENT_SECRET, paths, usage};

/// A running `hub-sandbox` process; killed on drop.
#[derive(Debug)]
pub struct SandboxProcess {
    child: Child,
    endpoint: String,
}

impl SandboxProcess {
    /// Starts `hub-sandbox` on an ephemeral loopback port, every OAuth answer (token and
    /// userinfo) delayed by `latency`.
    pub fn start(latency: Duration) -> Result<Self, String> {
        let binary = paths::binary("hub-sandbox");
        let mut child = Command::new(&binary)
            .args(["--listen", "127.0.0.1:0"])
            .args(["--client-id", CLIENT_ID, "--client-secret", CLIENT_SECRET])
            .args(["--latency-ms", &latency.as_millis().to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
        let mut line = String::new();
        let stdout = child.stdout.take().expect("stdout is piped");
        let mut reader = BufReader::new(stdout);
        reader
            .read_line(&mut line)
            .map_err(|e| format!("hub-sandbox: {e}"))?;
        drain(reader);
        let endpoint = line
            .trim()
            .strip_prefix("listening on ")
            .ok_or_else(|| format!("hub-sandbox said {line:?}, not `listening on URL`"))?
            .to_string();
        Ok(Self { child, endpoint })
    }

    /// Base URL, e.g. `http://127.0.0.1:41234`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The sandbox's own CPU time so far.
    pub fn cpu(&self) -> Duration {
        usage::process_cpu(self.child.id()).unwrap_or_default()
    }
}

/// Reads a child's output to its end: a closed pipe would kill the child (or make its next
/// `println!` panic) the next time it prints.
pub fn drain(reader: impl BufRead + Send + 'static) {
    std::thread::spawn(move || reader.lines().for_each(drop));
}

impl Drop for SandboxProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
