//! The whole host: `host-example serve` with the plugin, in its own process, driven over HTTP by
//! many keep-alive browsers (`/sign-in` → the sandbox's consent → `/callback`).
//!
//! The host's CPU comes from `/proc/<pid>/stat` around the measured sign-ins and its memory from
//! `/proc/<pid>/status` after them; the browsers run in this process and the provider in the
//! sandbox's, so neither is counted.
//!
//! Two hosts, identical but for where pending sign-ins live: in memory (the default) or in a
//! throwaway `redis-server` of the round's own (`session_store`). Redis's CPU is read from its
//! own `/proc/<pid>/stat` over the same sign-ins, and reported apart from the host's.

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use reqwest::header::{ACCEPT, COOKIE, LOCATION, SET_COOKIE};

use crate::report::HostSample;
use crate::sandbox::drain;
use crate::{CLIENT_ID, CLIENT_SECRET, SCOPE, paths, usage};

/// The connector instance id the host serves.
const INSTANCE: &str = "huggingface";

/// Whether the built `host-example` has the `serve` command.
pub fn has_serve() -> bool {
    Command::new(paths::binary("host-example"))
        .args(["serve", "--help"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Where the measured host keeps its pending sign-ins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Store {
    /// The default: in the host's memory.
    Memory,
    /// `session_store = "redis://…"`, a `redis-server` of the round's own.
    Redis,
}

impl Store {
    /// Round `r` measures the two hosts in this order (swapped every round).
    pub fn order(round: usize) -> [Store; 2] {
        match round % 2 {
            0 => [Store::Memory, Store::Redis],
            _ => [Store::Redis, Store::Memory],
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Store::Memory => "in memory",
            Store::Redis => "Redis",
        }
    }
}

/// What to tell when `redis-server` is missing.
const REDIS_MISSING: &str = "redis-server is not installed: the host rows with Redis need it; \
                             run `bash .ci/setup` (as root) to install it";

/// Whether `redis-server` can be started; the error says how to install it.
pub fn check_redis() -> Result<(), String> {
    match Command::new("redis-server").arg("--version").output() {
        Ok(o) if o.status.success() => Ok(()),
        Ok(o) => Err(format!("`redis-server --version` failed ({})", o.status)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(REDIS_MISSING.into()),
        Err(e) => Err(format!("cannot run redis-server: {e}")),
    }
}

/// A throwaway `redis-server` on a free loopback port, without persistence; killed on drop.
struct RedisProcess {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl RedisProcess {
    fn start() -> Result<Self, String> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| e.to_string())?
            .port();
        // Its working directory: nothing is written there (no RDB, no AOF), but never the cwd.
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .arg("--dir")
            .arg(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => REDIS_MISSING.to_string(),
                _ => format!("cannot start redis-server: {e}"),
            })?;
        let mut redis = Self {
            child,
            port,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !redis.answers() {
            if let Ok(Some(status)) = redis.child.try_wait() {
                return Err(format!("redis-server on port {port} exited ({status})"));
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "redis-server on port {port} did not answer within 10 s"
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(redis)
    }

    /// `redis://127.0.0.1:{port}/0`.
    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// Whether it answers `PING` with `+PONG`.
    fn answers(&self) -> bool {
        use std::io::Write as _;
        let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
        if stream.write_all(b"PING\r\n").is_err() {
            return false;
        }
        let mut line = String::new();
        BufReader::new(stream).read_line(&mut line).is_ok() && line.starts_with("+PONG")
    }
}

impl Drop for RedisProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A running `host-example serve`; killed on drop.
struct HostProcess {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl HostProcess {
    /// `session_store`: a Redis URL for pending sign-ins, or `None` for the in-memory default.
    fn start(plugin: &Path, sandbox: &str, session_store: Option<&str>) -> Result<Self, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let plugins = dir.path().join("plugins");
        std::fs::create_dir(&plugins).map_err(|e| e.to_string())?;
        let name = plugin.file_name().ok_or("plugin path has no file name")?;
        std::fs::copy(plugin, plugins.join(name)).map_err(|e| e.to_string())?;
        // The redirect URI names the public URL, so the port is chosen before the host starts.
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| e.to_string())?;
        let config = dir.path().join("broker.toml");
        // The only difference between the two hosts: the line after `public_url`.
        let store =
            session_store.map_or(String::new(), |url| format!("session_store = \"{url}\"\n"));
        let toml = format!(
            "public_url = \"http://{addr}\"\n{store}\n{UNLIMITED}\n[[connectors]]\nid = \"{INSTANCE}\"\n\
             factory = \"huggingface-universal\"\nconfig = {{ clientId = \"{CLIENT_ID}\", \
             clientSecret = \"{CLIENT_SECRET}\", scope = \"{SCOPE}\", endpoint = \"{sandbox}\" }}\n"
        );
        std::fs::write(&config, toml).map_err(|e| e.to_string())?;
        let binary = paths::binary("host-example");
        let mut child = Command::new(&binary)
            .arg("serve")
            .arg("--plugins")
            .arg(&plugins)
            .arg("--config")
            .arg(&config)
            .args(["--listen", &addr.to_string()])
            .arg("--state-dir")
            .arg(dir.path().join("state"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            // Its default logging (a line per sign-in) stays on: that is the host's real cost.
            // Kept in a file to tell what went wrong when sign-ins fail.
            .stderr(log_file()?)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
        let stdout = child.stdout.take().expect("stdout is piped");
        let mut line = String::new();
        let mut reader = BufReader::new(stdout);
        reader.read_line(&mut line).map_err(|e| e.to_string())?;
        let url = line
            .trim()
            .strip_prefix("host-example listening on ")
            .ok_or_else(|| format!("host-example said {line:?}"))?
            .to_string();
        drain(reader);
        Ok(Self {
            child,
            url,
            _dir: dir,
        })
    }
}

impl Drop for HostProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Where the host's log goes: `connector-bench-host.log` in the temporary directory.
pub fn log_path() -> std::path::PathBuf {
    std::env::temp_dir().join("connector-bench-host.log")
}

fn log_file() -> Result<std::fs::File, String> {
    std::fs::File::create(log_path()).map_err(|e| format!("{}: {e}", log_path().display()))
}

/// One browser's whole sign-in; returns the signed-in user's id.
async fn sign_in(
    http: &reqwest::Client,
    host: &str,
    cookie: &mut String,
) -> Result<String, String> {
    let text = |e: reqwest::Error| e.to_string();
    let mut start = http.get(format!("{host}/sign-in/{INSTANCE}"));
    if !cookie.is_empty() {
        start = start.header(COOKIE, cookie.as_str());
    }
    let started = start.send().await.map_err(text)?;
    if let Some(set) = started
        .headers()
        .get(SET_COOKIE)
        .and_then(|v| v.to_str().ok())
    {
        *cookie = set.split(';').next().unwrap_or_default().to_string();
    }
    let to_provider = location(&started)?;
    let consent = http.get(to_provider).send().await.map_err(text)?;
    let back = url::Url::parse(&location(&consent)?).map_err(|e| e.to_string())?;
    let query = back.query().unwrap_or_default();
    let done = http
        .get(format!("{host}/callback/{INSTANCE}?{query}"))
        .header(COOKIE, cookie.as_str())
        .header(ACCEPT, "application/json")
        .send()
        .await
        .map_err(text)?;
    let status = done.status();
    let body: serde_json::Value = done.json().await.map_err(text)?;
    match body["user"]["id"].as_str() {
        Some(id) if status.is_success() => Ok(id.to_string()),
        _ => Err(format!("callback answered {status}: {body}")),
    }
}

fn location(response: &reqwest::Response) -> Result<String, String> {
    response
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .ok_or_else(|| format!("expected a redirect, got {}", response.status()))
}

/// The benchmark's browsers all come from 127.0.0.1: the broker's per-client rate limit on
/// starting sign-ins is off, as it would be behind a proxy that limits.
const UNLIMITED: &str = "[sign_in]\nper_minute = 0\n";

/// `count` sign-ins, `concurrency` browsers at once; returns the outcomes and the wall time.
async fn drive(host: &str, concurrency: usize, count: usize) -> (Vec<Result<String, String>>, f64) {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        // Under the broker's 10 s wait for the next request on a kept-alive connection, so that
        // no request goes out on a connection the broker is closing.
        .pool_idle_timeout(std::time::Duration::from_secs(5))
        .build()
        .expect("fixed client settings");
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let browsers: Vec<_> = (0..concurrency.min(count))
        .map(|_| {
            let (http, next, host) = (http.clone(), next.clone(), host.to_string());
            tokio::spawn(async move {
                let mut cookie = String::new();
                let mut outcomes = Vec::new();
                while next.fetch_add(1, Ordering::Relaxed) < count {
                    outcomes.push(sign_in(&http, &host, &mut cookie).await);
                }
                outcomes
            })
        })
        .collect();
    let mut outcomes = Vec::with_capacity(count);
    for browser in browsers {
        outcomes.extend(browser.await.expect("browser task"));
    }
    (outcomes, start.elapsed().as_secs_f64())
}

/// One round: a fresh host (and, for [`Store::Redis`], a fresh `redis-server`), a warm-up, then
/// `count` measured sign-ins.
pub fn measure(
    plugin: &Path,
    sandbox: &str,
    store: Store,
    concurrency: usize,
    count: usize,
    warmup: usize,
) -> Result<HostSample, String> {
    // Declared first, so dropped (killed) after the host.
    let redis = match store {
        Store::Memory => None,
        Store::Redis => Some(RedisProcess::start()?),
    };
    let host = HostProcess::start(plugin, sandbox, redis.as_ref().map(|r| r.url()).as_deref())?;
    let pid = host.child.id();
    let redis_pid = redis.as_ref().map(|r| r.child.id());
    let cpu_of = |pid: u32| usage::process_cpu(pid).map_err(|e| format!("process {pid}: {e}"));
    let runtime = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    runtime.block_on(drive(&host.url, concurrency, warmup));
    let cpu = cpu_of(pid)?;
    let redis_cpu = redis_pid.map(cpu_of).transpose()?;
    let (outcomes, wall) = runtime.block_on(drive(&host.url, concurrency, count));
    let cpu = cpu_of(pid)? - cpu;
    let redis_cpu = match (redis_pid, redis_cpu) {
        (Some(pid), Some(before)) => Some(cpu_of(pid)? - before),
        _ => None,
    };
    let memory = usage::memory(&pid.to_string()).map_err(|e| e.to_string())?;
    let mut sample = HostSample {
        rss_kib: memory.rss_kib,
        ..HostSample::default()
    };
    for outcome in outcomes {
        match outcome {
            Ok(_) => sample.ok += 1,
            Err(e) => {
                sample.errors += 1;
                sample.first_error.get_or_insert(e);
            }
        }
    }
    let ok = sample.ok.max(1) as f64;
    sample.cpu_per_sign_in_us = cpu.as_secs_f64() * 1e6 / ok;
    sample.redis_cpu_per_sign_in_us = redis_cpu.map(|cpu| cpu.as_secs_f64() * 1e6 / ok);
    sample.rate = sample.ok as f64 / wall;
    Ok(sample)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_two_hosts_take_turns_going_first() {
        let firsts: Vec<Store> = (0..4).map(|r| Store::order(r)[0]).collect();
        assert_eq!(
            firsts,
            [Store::Memory, Store::Redis, Store::Memory, Store::Redis]
        );
    }
}
