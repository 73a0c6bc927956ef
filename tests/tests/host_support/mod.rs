//! Shared by the host-example tests: an in-process broker on an ephemeral port, a client that
//! handles the sign-in cookie by hand (so tests can drop or swap it), and a second build of
//! the echo plugin for reload tests.

// Each test crate uses its own subset of these helpers.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock, mpsc};
use std::time::Duration;

pub use connector_tests::host_example_bin;
use connector_tests::{PluginDir, library_path};
use host_example::{Broker, BrokerConfig, BrokerOptions};
use reqwest::header::{ACCEPT, COOKIE, LOCATION, SET_COOKIE};
use serde_json::Value;
use tokio::sync::oneshot;

/// A broker served in-process on `127.0.0.1` and an ephemeral port; stops when dropped.
pub struct TestBroker {
    pub url: String,
    pub broker: Broker,
    pub plugins: PluginDir,
    _stop: oneshot::Sender<()>,
}

impl TestBroker {
    /// Starts a broker over `plugins` with a config whose `public_url` is filled in.
    /// `connectors_toml` is the `[[connectors]]` part.
    pub async fn start(plugins: PluginDir, connectors_toml: &str) -> TestBroker {
        Self::start_with(plugins, connectors_toml, |_| {}).await
    }

    /// Like [`Self::start`], adjusting the options first (TTL, maintenance interval…).
    pub async fn start_with(
        plugins: PluginDir,
        connectors_toml: &str,
        adjust: impl FnOnce(&mut BrokerOptions),
    ) -> TestBroker {
        Self::open_with(plugins, connectors_toml, |_| None, adjust)
            .await
            .expect("broker starts")
    }

    /// `{url}{path}`.
    pub fn at(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }
}

/// A plugin directory holding the echo plugin (build 1) as `libecho.so`.
pub fn echo_dir() -> PluginDir {
    let dir = PluginDir::new();
    dir.add_as("echo-plugin", "libecho.so");
    dir
}

/// A `[[connectors]]` entry for the echo plugin.
pub fn echo_connector(id: &str, greeting: &str, fail_with: Option<&str>) -> String {
    let fail = fail_with.map_or(String::new(), |c| format!(", failWith = \"{c}\""));
    format!(
        "[[connectors]]\nid = \"{id}\"\nfactory = \"echo-web\"\nconfig = {{ greeting = \"{greeting}\"{fail} }}\n"
    )
}

/// A client that never follows redirects and keeps no cookies by itself. It drops pooled
/// connections idle for 5 s, before the broker's header timeout (10 s by default, which also
/// bounds a kept-alive connection's wait for its next request) closes them: reusing one just
/// as the server closes it would fail the request.
pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_idle_timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

/// A started sign-in: the provider URL the broker redirected to, its state, and the
/// `Set-Cookie` value (whole) and cookie pair (`hx_signin=…`).
#[derive(Debug, Clone)]
pub struct Started {
    pub location: String,
    pub state: String,
    pub set_cookie: String,
    pub cookie: String,
}

/// `GET /sign-in/{id}`, asserting the 303, optionally presenting a cookie.
pub async fn start_sign_in(base: &str, id: &str, cookie: Option<&str>) -> Started {
    let mut request = http().get(format!("{base}/sign-in/{id}"));
    if let Some(cookie) = cookie {
        request = request.header(COOKIE, cookie);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 303, "{:?}", response.text().await);
    let location = response.headers()[LOCATION].to_str().unwrap().to_string();
    let set_cookie = response.headers()[SET_COOKIE].to_str().unwrap().to_string();
    let cookie = set_cookie.split(';').next().unwrap().to_string();
    let state = query_param(&location, "state").expect("state in the authorization URI");
    Started {
        location,
        state,
        set_cookie,
        cookie,
    }
}

/// `GET /callback/{id}?{query}` with `Accept: application/json` and an optional cookie.
pub async fn callback(
    base: &str,
    id: &str,
    query: &[(&str, &str)],
    cookie: Option<&str>,
) -> reqwest::Response {
    callback_request(base, id, query, cookie)
        .header(ACCEPT, "application/json")
        .send()
        .await
        .unwrap()
}

/// `GET /callback/{id}?query`, with `cookie` if any; as a browser sends it (no
/// `Accept: application/json`), it answers with the HTML page.
pub fn callback_request(
    base: &str,
    id: &str,
    query: &[(&str, &str)],
    cookie: Option<&str>,
) -> reqwest::RequestBuilder {
    let request = http().get(with_query(&format!("{base}/callback/{id}"), query));
    match cookie {
        Some(cookie) => request.header(COOKIE, cookie),
        None => request,
    }
}

/// `POST /admin/reload`: status and JSON report.
pub async fn reload(b: &TestBroker) -> (u16, Value) {
    reload_at(&b.url).await
}

/// `POST {base}/admin/reload`, as an operator sends it: status and JSON report.
pub async fn reload_at(base: &str) -> (u16, Value) {
    status_json(reload_request(base).send().await.unwrap()).await
}

/// The reload request an operator sends (`curl -X POST -H 'X-Broker-Admin: reload' …`): the
/// only place the tests name the admin header.
pub fn reload_request(base: &str) -> reqwest::RequestBuilder {
    http()
        .post(format!("{base}/admin/reload"))
        .header("x-broker-admin", "reload")
}

/// A `POST /admin/reload` that must fail: asserts 500 `reload_failed` and returns the JSON.
pub async fn reload_failed(b: &TestBroker) -> Value {
    let (status, json) = reload(b).await;
    assert_eq!(
        (status, json["error"]["code"].as_str()),
        (500, Some("reload_failed")),
        "{json}"
    );
    json
}

/// `url?query`, form-encoded.
pub fn with_query(url: &str, query: &[(&str, &str)]) -> String {
    url::Url::parse_with_params(url, query).unwrap().into()
}

/// Status and JSON body.
pub async fn status_json(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    let json = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"));
    (status, json)
}

/// Asserts a `{"error": {"code", "message"}}` body with `status` and `code`.
pub async fn assert_error(response: reqwest::Response, status: u16, code: &str) {
    let (got, json) = status_json(response).await;
    assert_eq!(
        (got, json["error"]["code"].as_str()),
        (status, Some(code)),
        "{json}"
    );
    assert!(
        json["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty())
    );
}

/// The first value of `name` in `uri`'s query.
pub fn query_param(uri: &str, name: &str) -> Option<String> {
    url::Url::parse(uri)
        .ok()?
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// The echo plugin built with `ECHO_PLUGIN_BUILD=2`: the same plugin file name, a different
/// build (it reports `build=2`), compiled without touching the host. Built once into
/// `target/test-plugins/echo-build-2` (reused across runs; cargo's lock serializes concurrent builds).
pub fn echo_build_2() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let profile_dir = library_path("echo-plugin")
                .parent()
                .expect("profile dir")
                .to_path_buf();
            let target = profile_dir
                .parent()
                .expect("target dir")
                .join("echo-build-2");
            build_echo(&target, "2");
            target.join("debug").join(library_file("echo-plugin"))
        })
        .clone()
}

fn build_echo(target: &Path, build: &str) {
    let test_plugins = Path::new(env!("CARGO_MANIFEST_DIR")).join("plugins");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(cargo)
        .current_dir(test_plugins)
        .env("ECHO_PLUGIN_BUILD", build)
        .args(["build", "-p", "echo-plugin", "--target-dir"])
        .arg(target)
        .output()
        .expect("run cargo");
    assert!(
        output.status.success(),
        "building echo-plugin build {build} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// `lib<name>.so` for a package name.
pub fn library_file(package: &str) -> String {
    use std::env::consts::{DLL_PREFIX, DLL_SUFFIX};
    format!("{DLL_PREFIX}{}{DLL_SUFFIX}", package.replace('-', "_"))
}

/// Polls `check` every 50 ms until it returns `Some`, for at most `within`.
pub async fn eventually<T, F: Future<Output = Option<T>>>(
    within: Duration,
    mut check: impl FnMut() -> F,
) -> Option<T> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if let Some(value) = check().await {
            return Some(value);
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A running `host-example`, killed when dropped.
pub struct Host {
    pub child: Child,
    /// `http://127.0.0.1:PORT`, from the "listening on" line.
    pub url: String,
    /// Everything logged so far.
    pub stderr: Arc<Mutex<String>>,
}

impl Host {
    /// Starts `host-example args…` and waits for its "listening on" line.
    pub fn spawn(args: &[&str], env: &[(&str, &str)]) -> Result<Host, String> {
        let mut command = Command::new(host_example_bin());
        command.args(args);
        Self::spawn_command(command, env)
    }

    /// Like [`Self::spawn`], running `command` (which runs `host-example` in the end: under
    /// `prlimit`, say).
    pub fn spawn_command(mut command: Command, env: &[(&str, &str)]) -> Result<Host, String> {
        let mut child = command
            .envs(env.iter().copied())
            .env("RUST_LOG", "host_example=info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn host-example");
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut err_pipe = child.stderr.take().unwrap();
        let sink = stderr.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = err_pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        let (tx, rx) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("host-example listening on ") {
                    let _ = tx.send(url.to_string());
                }
            }
        });
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(url) => Ok(Host { child, url, stderr }),
            Err(_) => {
                let _ = child.kill();
                let status = child.wait().unwrap();
                std::thread::sleep(Duration::from_millis(100));
                Err(format!("{status}\n{}", stderr.lock().unwrap()))
            }
        }
    }

    pub fn signal(&self, signal: i32) {
        // SAFETY: kill(2) on our own child's pid has no memory-safety preconditions.
        let rc = unsafe { libc::kill(self.child.id() as i32, signal) };
        assert_eq!(rc, 0, "kill({signal})");
    }

    /// SIGTERM, then waits for a clean exit.
    pub fn stop(mut self) {
        self.signal(libc::SIGTERM);
        let status = self.child.wait().unwrap();
        assert!(
            status.success(),
            "{status}: {}",
            self.stderr.lock().unwrap()
        );
    }

    /// (VmRSS in kB, thread count) from /proc.
    pub fn memory_and_threads(&self) -> (u64, u64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        (field("VmRSS:"), field("Threads:"))
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl TestBroker {
    /// Starts a broker through [`Broker::open`] (which connects to a configured
    /// `session_store`). `rest_toml` follows `public_url`: top-level keys first
    /// (`session_store`, `session_prefix`), then `[[connectors]]`. `env` answers `${NAME}`.
    pub async fn open_with(
        plugins: PluginDir,
        rest_toml: &str,
        env: impl Fn(&str) -> Option<String>,
        adjust: impl FnOnce(&mut BrokerOptions),
    ) -> Result<TestBroker, host_example::StartError> {
        Self::open_as(None, plugins, rest_toml, env, adjust).await
    }

    /// Like [`Self::open_with`], with `public_url` set to `public_url` when given (e.g. an
    /// https URL, while the test still talks to the loopback http address in `url`).
    pub async fn open_as(
        public_url: Option<&str>,
        plugins: PluginDir,
        rest_toml: &str,
        env: impl Fn(&str) -> Option<String>,
        adjust: impl FnOnce(&mut BrokerOptions),
    ) -> Result<TestBroker, host_example::StartError> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let public_url = public_url.unwrap_or(&url);
        let text = format!("public_url = \"{public_url}\"\n{rest_toml}");
        let config = BrokerConfig::parse(&text, env)?;
        let mut options = BrokerOptions::new(plugins.path());
        options.maintenance_interval = Duration::from_millis(50);
        // Tests reload back to back; `host_hardening_admin.rs` checks the limit.
        options.reload_min_interval = Duration::ZERO;
        // Tests start thousands of sign-ins from 127.0.0.1; `host_hardening_pending.rs`
        // checks the limit.
        options.sign_in_limits = Some(host_example::SignInLimits::UNLIMITED);
        adjust(&mut options);
        let broker = Broker::open(config, options).await?;
        let (stop, stopped) = oneshot::channel::<()>();
        let served = broker.clone();
        tokio::spawn(async move {
            let _ = served
                .serve(listener, async {
                    let _ = stopped.await;
                })
                .await;
        });
        Ok(TestBroker {
            url,
            broker,
            plugins,
            _stop: stop,
        })
    }
}

/// A `redis-server` of the test's own on a free loopback port, without persistence; killed
/// when dropped. Needs Debian's `redis-server` (`bash .ci/setup` installs it).
pub struct RedisServer {
    pub port: u16,
    args: Vec<String>,
    child: Option<Child>,
    _dir: tempfile::TempDir,
}

impl RedisServer {
    /// Starts one; `extra` are more `redis-server` arguments (e.g. `--requirepass`, `pw`).
    pub fn start(extra: &[&str]) -> RedisServer {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free loopback port")
            .port();
        let dir = tempfile::tempdir().expect("a temporary directory");
        let mut args: Vec<String> = [
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
            "--dir",
            &dir.path().display().to_string(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(extra.iter().map(|s| s.to_string()));
        let mut server = RedisServer {
            port,
            args,
            child: None,
            _dir: dir,
        };
        server.restart();
        server
    }

    /// `redis://127.0.0.1:{port}/0`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// Kills the server (its data is lost: no persistence).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port (after [`Self::stop`]) and waits until it
    /// answers.
    pub fn restart(&mut self) {
        self.stop();
        let child = match Command::new("redis-server")
            .args(&self.args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
        {
            Ok(child) => child,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
                "redis-server is not installed: the Redis tests need it; run `bash .ci/setup` \
                 (as root) to install it"
            ),
            Err(e) => panic!("cannot start redis-server: {e}"),
        };
        self.child = Some(child);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !self.answers() {
            assert!(
                std::time::Instant::now() < deadline,
                "redis-server on port {} did not come up within 10 s",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether something on the port answers `PING` (with `+PONG`, or an auth error).
    fn answers(&self) -> bool {
        use std::io::Write;
        let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
        if stream.write_all(b"PING\r\n").is_err() {
            return false;
        }
        let mut line = String::new();
        BufReader::new(stream).read_line(&mut line).is_ok()
            && (line.starts_with("+PONG") || line.starts_with("-NOAUTH"))
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}
