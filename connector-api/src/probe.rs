//! Loading a plugin first in a child process, so that a library that crashes or hangs while it
//! is mapped (an ELF constructor that aborts, segfaults or never returns) takes down that child,
//! not the host.
//!
//! The host names a command that ends up calling [`run_child`] with the file, typically its own
//! executable with a hidden subcommand (`my-broker __probe-plugin FILE`). [`ProbeCommand::probe`]
//! runs it with a time limit, keeps its output away from the host's terminal, and maps what
//! happened to a [`RejectReason`]: the child's own load result (sent back as JSON on stdout, so
//! it is the same typed reason an in-process load gives), `Crashed` with the signal's name,
//! `TimedOut`, or `ProbeFailed`. Only after a probe succeeds should the host map the file
//! itself ([`crate::Plugin::load_with`] does this when [`crate::DiscoverOptions::probe`] is set).

use std::ffi::OsString;
use std::io::{Read, Write as _};
use std::os::unix::process::{CommandExt as _, ExitStatusExt as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::loader::{Plugin, RejectReason, one_line};

/// How long a probe may take before its child is killed.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Marks the child's result line: a plugin may print to stdout too.
const RESULT_PREFIX: &str = "connector-api-probe-result ";
/// Output kept per stream (the tail: the result line and a panic message come last).
const CAPTURE_LIMIT: usize = 64 * 1024;
/// Characters of the child's stderr quoted in a reason.
const EXCERPT_LEN: usize = 160;
/// How long to wait for the pipes to close once the child is gone (a grandchild may hold them).
const DRAIN_TIMEOUT: Duration = Duration::from_secs(1);

/// The command that probes a plugin file: `program args… FILE`, under a time limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeCommand {
    program: PathBuf,
    args: Vec<OsString>,
    timeout: Duration,
}

/// What the child reports on stdout.
#[derive(Debug, Serialize, Deserialize)]
enum Outcome {
    Loaded { id: String, api_version: String },
    Refused(RejectReason),
}

impl ProbeCommand {
    /// `program args… FILE`, with the [`DEFAULT_TIMEOUT`].
    pub fn new<A: Into<OsString>>(
        program: impl Into<PathBuf>,
        args: impl IntoIterator<Item = A>,
    ) -> Self {
        Self {
            program: program.into(),
            args: args.into_iter().map(Into::into).collect(),
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// This process's own executable with `args` (a hidden subcommand that calls [`run_child`]).
    pub fn current_exe<A: Into<OsString>>(
        args: impl IntoIterator<Item = A>,
    ) -> std::io::Result<Self> {
        Ok(Self::new(std::env::current_exe()?, args))
    }

    /// The same command with another time limit.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The time limit.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Loads `path` in a child process: `Ok` when it loaded there, else why not. Blocks for at
    /// most the time limit (plus reaping). The child's output never reaches the host's.
    pub fn probe(&self, path: &Path) -> Result<(), RejectReason> {
        let mut command = Command::new(&self.program);
        command
            .args(&self.args)
            .arg(path)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group: whatever it forks is killed with it.
            .process_group(0);
        die_with_parent(&mut command);
        let mut child = command.spawn().map_err(|e| {
            RejectReason::ProbeFailed(format!("cannot run {}: {e}", self.program.display()))
        })?;
        let stdout = capture(child.stdout.take());
        let stderr = capture(child.stderr.take());
        let status = wait_until(&mut child, Instant::now() + self.timeout);
        kill_group(&child);
        let Some(status) = status else {
            let _ = child.wait();
            return Err(RejectReason::TimedOut {
                limit: self.timeout,
            });
        };
        let stdout = stdout.recv_timeout(DRAIN_TIMEOUT).unwrap_or_default();
        let stderr = stderr.recv_timeout(DRAIN_TIMEOUT).unwrap_or_default();
        interpret(status, &stdout, &stderr)
    }
}

/// The child side: loads `path` in this process and prints the outcome for
/// [`ProbeCommand::probe`]. A host's hidden probe subcommand calls this and exits with its code.
pub fn run_child(path: &Path) -> ExitCode {
    let outcome = match Plugin::load(path) {
        Ok(plugin) => Outcome::Loaded {
            id: plugin.metadata().id.clone(),
            api_version: plugin.api_version().to_string(),
        },
        Err(reason) => Outcome::Refused(reason),
    };
    let line = serde_json::to_string(&outcome).expect("plain data serializes");
    let mut stdout = std::io::stdout().lock();
    match writeln!(stdout, "{RESULT_PREFIX}{line}").and_then(|()| stdout.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(_) => ExitCode::FAILURE,
    }
}

fn interpret(status: ExitStatus, stdout: &[u8], stderr: &[u8]) -> Result<(), RejectReason> {
    if let Some(signal) = status.signal() {
        return Err(RejectReason::Crashed {
            signal: signal_name(signal),
            output: excerpt(stderr),
        });
    }
    let result = String::from_utf8_lossy(stdout)
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix(RESULT_PREFIX).map(str::to_owned));
    match result.map(|r| serde_json::from_str::<Outcome>(&r)) {
        Some(Ok(Outcome::Loaded { .. })) => Ok(()),
        Some(Ok(Outcome::Refused(RejectReason::InitPanicked { .. }))) => {
            Err(RejectReason::InitPanicked {
                message: panic_message(stderr),
            })
        }
        Some(Ok(Outcome::Refused(reason))) => Err(reason),
        Some(Err(e)) => Err(RejectReason::ProbeFailed(format!("unreadable result: {e}"))),
        None => Err(RejectReason::ProbeFailed(match excerpt(stderr) {
            e if e.is_empty() => format!("{status} without a result"),
            e => format!("{status} without a result: {e}"),
        })),
    }
}

/// Reads a pipe to its end on a thread, keeping the last [`CAPTURE_LIMIT`] bytes.
fn capture(pipe: Option<impl Read + Send + 'static>) -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    if let Some(mut pipe) = pipe {
        std::thread::spawn(move || {
            let mut kept = Vec::new();
            let mut buffer = [0u8; 8192];
            while let Ok(n @ 1..) = pipe.read(&mut buffer) {
                kept.extend_from_slice(&buffer[..n]);
                if kept.len() > 2 * CAPTURE_LIMIT {
                    kept.drain(..kept.len() - CAPTURE_LIMIT);
                }
            }
            let start = kept.len().saturating_sub(CAPTURE_LIMIT);
            let _ = tx.send(kept.split_off(start));
        });
    }
    rx
}

/// The child's exit status, or `None` once `deadline` passed. Polls with a growing interval: a
/// plugin that loads in a few milliseconds is not kept waiting for a coarse tick.
fn wait_until(child: &mut Child, deadline: Instant) -> Option<ExitStatus> {
    let mut pause = Duration::from_micros(200);
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) => {}
            // Not ours to wait for any more (cannot happen for a child we hold): treat as hung.
            Err(_) => return None,
        }
        let now = Instant::now();
        if now >= deadline {
            return None;
        }
        std::thread::sleep(pause.min(deadline - now));
        pause = (pause * 2).min(Duration::from_millis(10));
    }
}

/// Makes the child die with the thread that spawned it (Linux), so that a host killed while
/// it waits for a hung probe does not leave the probe behind. That thread blocks until the
/// probe is over, so this never cuts a probe short.
fn die_with_parent(command: &mut Command) {
    #[cfg(target_os = "linux")]
    // SAFETY: prctl(2) is async-signal-safe, the closure allocates nothing and touches no
    // state of the parent.
    unsafe {
        command.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    #[cfg(not(target_os = "linux"))]
    let _ = command;
}

/// SIGKILL to the child's process group: the child if it still runs, and anything it forked.
fn kill_group(child: &Child) {
    if let Ok(pid) = i32::try_from(child.id()) {
        // SAFETY: kill(2) has no memory-safety preconditions; the group is the one the child
        // leads (process_group(0)), and a group id is not reused while any member lives.
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
    }
}

/// The message of the last panic the child reported on `stderr` (std's default hook writes
/// `thread '…' panicked at FILE:LINE:COL:` and the message on the line after it), short.
fn panic_message(stderr: &[u8]) -> String {
    let text = printable(stderr);
    let mut lines = text.lines();
    let mut message = "";
    while let Some(line) = lines.next() {
        if line.contains(" panicked at ") {
            message = lines.next().unwrap_or_default();
        }
    }
    shorten(message)
}

/// The last line of `stderr` that says something, on one line and short.
fn excerpt(stderr: &[u8]) -> String {
    let text = printable(stderr);
    shorten(
        text.lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or_default(),
    )
}

/// `stderr` as text without control characters but newlines (a reason reaches logs and
/// terminals).
fn printable(stderr: &[u8]) -> String {
    String::from_utf8_lossy(stderr)
        .chars()
        .map(|c| match c {
            '\n' => c,
            c if c.is_control() => char::REPLACEMENT_CHARACTER,
            c => c,
        })
        .collect()
}

/// `line` on one line, at most [`EXCERPT_LEN`] characters.
fn shorten(line: &str) -> String {
    let line = one_line(line);
    match line.char_indices().nth(EXCERPT_LEN) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line,
    }
}

fn signal_name(signal: i32) -> String {
    let name = match signal {
        libc::SIGABRT => "SIGABRT",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGBUS => "SIGBUS",
        libc::SIGILL => "SIGILL",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGTERM => "SIGTERM",
        libc::SIGTRAP => "SIGTRAP",
        libc::SIGSYS => "SIGSYS",
        libc::SIGPIPE => "SIGPIPE",
        other => return format!("signal {other}"),
    };
    name.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> ProbeCommand {
        // `sh -c SCRIPT NAME FILE`: the file is `$1`.
        ProbeCommand::new("/bin/sh", ["-c", script, "probe"])
    }

    #[test]
    fn a_signal_is_crashed_with_its_name_and_the_last_stderr_line() {
        let reason = sh("echo 'plugin says bye' >&2; kill -SEGV $$")
            .probe(Path::new("/x.so"))
            .unwrap_err();
        assert_eq!(
            reason,
            RejectReason::Crashed {
                signal: "SIGSEGV".into(),
                output: "plugin says bye".into()
            }
        );
        assert_eq!(
            reason.to_string(),
            "crashed while loading: SIGSEGV (stderr: plugin says bye)"
        );
    }

    #[test]
    fn control_characters_of_the_child_never_reach_the_reason() {
        let reason = sh("printf 'evil \\033[31mred\\033[0m\\r\\n' >&2; kill -ABRT $$")
            .probe(Path::new("/x.so"))
            .unwrap_err();
        let RejectReason::Crashed { output, .. } = &reason else {
            panic!("{reason}");
        };
        assert!(!output.chars().any(char::is_control), "{output:?}");
        assert!(output.starts_with("evil \u{fffd}[31mred"), "{output:?}");
    }

    #[test]
    fn a_hung_child_is_killed_after_the_limit() {
        let started = Instant::now();
        let reason = sh("sleep 30")
            .with_timeout(Duration::from_millis(300))
            .probe(Path::new("/x.so"))
            .unwrap_err();
        assert_eq!(reason.to_string(), "timed out while loading after 0.3 s");
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn the_child_result_line_is_the_typed_reason() {
        let line = serde_json::to_string(&Outcome::Refused(RejectReason::NotAPlugin)).unwrap();
        let script = format!("echo noise; echo '{RESULT_PREFIX}{line}'");
        assert_eq!(
            sh(&script).probe(Path::new("/x.so")),
            Err(RejectReason::NotAPlugin)
        );
    }

    #[test]
    fn a_panicking_initialisation_carries_the_panic_s_message() {
        let panicked = RejectReason::InitPanicked {
            message: String::new(),
        };
        let line = serde_json::to_string(&Outcome::Refused(panicked)).unwrap();
        let script = format!(
            "printf \"thread '<unnamed>' panicked at src/lib.rs:11:5:\\nno config here\\nnote: run \
             with RUST_BACKTRACE=1\\n\" >&2; echo '{RESULT_PREFIX}{line}'"
        );
        assert_eq!(
            sh(&script).probe(Path::new("/x.so")),
            Err(RejectReason::InitPanicked {
                message: "no config here".into()
            })
        );
    }

    #[test]
    fn an_exit_without_a_result_or_a_missing_program_is_probe_failed() {
        let reason = sh("echo oops >&2; exit 3")
            .probe(Path::new("/x.so"))
            .unwrap_err();
        assert_eq!(
            reason.to_string(),
            "probe failed: exit status: 3 without a result: oops"
        );
        let missing = ProbeCommand::new("/nonexistent/probe", Vec::<OsString>::new());
        assert!(matches!(
            missing.probe(Path::new("/x.so")),
            Err(RejectReason::ProbeFailed(_))
        ));
    }
}
