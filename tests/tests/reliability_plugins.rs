//! A bad plugin directory through the host (issue 5, item 2): the broker starts on a directory
//! holding every bad kind of file next to the good plugins, names each refused file with its
//! reason in `/admin/reload`'s report, and serves sign-ins with the good ones; a plugin whose
//! call panics fails that sign-in only. A directory others may write to is refused unless
//! the operator allows it.

mod host_support;

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use connector_tests::PluginDir;
use host_example::{Broker, BrokerConfig, BrokerOptions, StartError};
use host_support::{
    Host, TestBroker, assert_error, callback, echo_build_2, echo_connector, echo_dir, eventually,
    host_example_bin, http, reload, reload_failed, start_sign_in, status_json,
};
use serde_json::json;

fn set_mode(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// `chmod 000` stops reading only for a user without CAP_DAC_OVERRIDE; CI runs tests as root.
fn can_test_unreadable() -> bool {
    // SAFETY: geteuid(2) has no preconditions and cannot fail.
    unsafe { libc::geteuid() != 0 }
}

/// The good plugins, and every bad kind of file, each with the reason the report must give
/// (`{dir}` stands for the directory).
fn bad_directory() -> (PluginDir, Vec<(&'static str, String)>) {
    let dir = PluginDir::new();
    dir.add("echo-plugin");
    dir.add("huggingface-plugin");
    dir.add_as("echo-plugin", "libecho_plugin_copy.so");
    dir.write("garbage.so", [0x5a_u8; 4096]);
    dir.write("empty.so", b"");
    for package in [
        "not-a-plugin",
        "old-api-plugin",
        "new-api-plugin",
        "layout-mismatch-plugin",
        "panicking-init-plugin",
    ] {
        dir.add(package);
    }
    std::fs::create_dir(dir.path().join("dir.so")).unwrap();
    std::os::unix::fs::symlink(dir.path().join("gone.so"), dir.path().join("dangling.so")).unwrap();
    set_mode(&dir.add_as("echo-plugin", "writable.so"), 0o666);
    let not_a_library = |why: &str| format!("not a loadable library: {why}");
    let version = |v: &str| {
        format!(
            "incompatible interface version: plugin built against connector-api {v}, host has 0.1.0"
        )
    };
    let mut expected = vec![
        ("dangling.so", not_a_library("dangling symlink")),
        ("dir.so", not_a_library("is a directory")),
        ("empty.so", not_a_library("file too short")),
        ("garbage.so", not_a_library("invalid ELF header")),
        (
            "libecho_plugin_copy.so",
            "duplicate connector id `echo-web`, already loaded from {dir}/libecho_plugin.so".into(),
        ),
        (
            "liblayout_mismatch_plugin.so",
            "layout mismatch with connector-api 0.1.0: Error:mismatched package Expected: \
             connector-api Found: layout-mismatch-plugin"
                .into(),
        ),
        ("libnew_api_plugin.so", version("1.0.0")),
        (
            "libnot_a_plugin.so",
            "not a connector plugin: it exports no abi_stable root module".into(),
        ),
        ("libold_api_plugin.so", version("0.0.1")),
        (
            "libpanicking_init_plugin.so",
            "initialisation panicked".into(),
        ),
    ];
    if can_test_unreadable() {
        set_mode(&dir.add_as("echo-plugin", "unreadable.so"), 0o000);
        expected.push((
            "unreadable.so",
            "cannot read: Permission denied (os error 13)".into(),
        ));
    } else {
        println!(
            "RELIABILITY plugins unreadable=skipped (running as root: chmod 000 does not stop root reading)"
        );
    }
    // SAFETY: geteuid(2) has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    expected.push((
        "writable.so",
        format!(
            "{{dir}}/writable.so is writable by other users (mode 666, owner uid {euid}): anyone \
             who can write it can run code in this host"
        ),
    ));
    (dir, expected)
}

fn hf_connector() -> String {
    // Never signed in with here: its config only has to be valid.
    "[[connectors]]\nid = \"hf\"\nfactory = \"huggingface-universal\"\n\
     config = { clientId = \"id\", clientSecret = \"secret\", scope = \"profile\" }\n"
        .into()
}

#[tokio::test]
async fn every_bad_file_is_named_with_its_reason_and_the_good_plugins_serve() {
    let (dir, expected) = bad_directory();
    let dir_path = dir.path().display().to_string();
    let b = TestBroker::start(dir, &(echo_connector("echo", "Hi", None) + &hf_connector())).await;

    let (status, report) = reload(&b).await;
    assert_eq!(status, 200, "{report}");
    let refused: BTreeMap<String, String> = report["refused"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let file = r["file"].as_str().unwrap();
            let name = Path::new(file).file_name().unwrap().to_string_lossy();
            (name.into_owned(), r["reason"].as_str().unwrap().to_owned())
        })
        .collect();
    let expected: BTreeMap<String, String> = expected
        .into_iter()
        .map(|(file, reason)| (file.to_owned(), reason.replace("{dir}", &dir_path)))
        .collect();
    assert_eq!(refused, expected);
    let loaded: Vec<_> = report["libraries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["factory"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(loaded, ["echo-web", "huggingface-universal"]);
    println!(
        "RELIABILITY plugins refused={} loaded={}",
        refused.len(),
        loaded.len()
    );

    assert_sign_in_works(&b).await;
    let hf = http().get(b.at("/sign-in/hf")).send().await.unwrap();
    assert_eq!(hf.status(), 303, "the Hugging Face connector serves too");
}

async fn assert_sign_in_works(b: &TestBroker) {
    let s = start_sign_in(&b.url, "echo", None).await;
    let query = [("state", s.state.as_str()), ("code", "ada")];
    let (status, json) = status_json(callback(&b.url, "echo", &query, Some(&s.cookie)).await).await;
    assert_eq!((status, &json["user"]["id"]), (200, &json!("echo-ada")));
}

/// A call that panics inside the plugin (echo's callback `panic=true`) fails that sign-in with
/// `502 general`; the host and the plugin go on serving.
#[tokio::test]
async fn a_call_that_panics_fails_that_sign_in_only() {
    let dir = PluginDir::new();
    dir.add("echo-plugin");
    let b = TestBroker::start(dir, &echo_connector("echo", "Hi", None)).await;
    let s = start_sign_in(&b.url, "echo", None).await;
    let query = [
        ("state", s.state.as_str()),
        ("code", "x"),
        ("panic", "true"),
    ];
    assert_error(
        callback(&b.url, "echo", &query, Some(&s.cookie)).await,
        502,
        "general",
    )
    .await;
    let healthz = http().get(b.at("/healthz")).send().await.unwrap();
    assert_eq!(healthz.status(), 200);
    assert_sign_in_works(&b).await;
}

fn start_on(dir: &Path, allow: bool) -> Result<Broker, StartError> {
    let text = format!(
        "public_url = \"http://127.0.0.1:1\"\n{}",
        echo_connector("echo", "Hi", None)
    );
    let config = BrokerConfig::parse(&text, |_| None).unwrap();
    let mut options = BrokerOptions::new(dir);
    options.allow_writable_plugin_dir = allow;
    Broker::start(config, options)
}

#[test]
fn a_directory_others_can_write_is_refused_unless_allowed() {
    let dir = PluginDir::new();
    dir.add("echo-plugin");
    set_mode(dir.path(), 0o777);
    let Err(e) = start_on(dir.path(), false) else {
        panic!("started on a world-writable plugin directory");
    };
    assert!(matches!(e, StartError::Scan(_)), "{e}");
    let message = e.to_string();
    assert!(
        message.contains("writable by other users (mode 777, owner uid ")
            && message.contains("--allow-writable-plugin-dir"),
        "{message}"
    );
    let broker = start_on(dir.path(), true).expect("allowed explicitly");
    assert!(broker.current().instance("echo").is_some());
    set_mode(dir.path(), 0o700);
}

/// A directory that becomes writable after the start fails the reload; the running
/// connectors stay.
#[tokio::test]
async fn a_reload_on_a_directory_made_writable_keeps_the_old_connectors() {
    let dir = PluginDir::new();
    dir.add("echo-plugin");
    let b = TestBroker::start(dir, &echo_connector("echo", "Hi", None)).await;
    set_mode(b.plugins.path(), 0o775);
    let json = reload_failed(&b).await;
    assert!(
        json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("mode 775"),
        "{json}"
    );
    assert_sign_in_works(&b).await;
    set_mode(b.plugins.path(), 0o700);
}

/// `host-example serve` over `plugins` with a config for the echo connector (kept in `config`).
fn serve(plugins: &Path, config: &tempfile::TempDir) -> Host {
    let file = config.path().join("broker.toml");
    let text = format!(
        "public_url = \"http://127.0.0.1:1\"\n{}",
        echo_connector("echo", "Hi", None)
    );
    std::fs::write(&file, text).unwrap();
    let args = [
        "serve",
        "--plugins",
        &plugins.display().to_string(),
        "--config",
        &file.display().to_string(),
        "--listen",
        "127.0.0.1:0",
        "--plugin-probe-timeout",
        "2s",
    ];
    let args: Vec<&str> = args.iter().map(|a| a.as_ref()).collect();
    Host::spawn(&args, &[]).expect("host-example serves")
}

/// The `plugin refused` lines logged so far.
fn refusals(host: &Host) -> Vec<String> {
    let log = host.stderr.lock().unwrap();
    log.lines()
        .filter(|l| l.contains("plugin refused"))
        .map(str::to_owned)
        .collect()
}

fn still_running(host: &mut Host) {
    let status = host.child.try_wait().unwrap();
    assert!(
        status.is_none(),
        "the broker died: {status:?}\n{}",
        host.stderr.lock().unwrap()
    );
}

async fn process_sign_in_works(url: &str) {
    let s = start_sign_in(url, "echo", None).await;
    let query = [("state", s.state.as_str()), ("code", "ada")];
    let (status, json) = status_json(callback(url, "echo", &query, Some(&s.cookie)).await).await;
    assert_eq!((status, &json["user"]["id"]), (200, &json!("echo-ada")));
}

/// A running `host-example serve` gets libraries that abort, segfault or hang in their
/// constructors and a cut file, then SIGHUP: it logs each refusal, stays up and serves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_serving_broker_survives_sighup_with_libraries_that_crash_while_loading() {
    let plugins = echo_dir();
    let config = tempfile::tempdir().unwrap();
    let mut host = serve(plugins.path(), &config);
    for package in [
        "aborting-init-plugin",
        "segfaulting-init-plugin",
        "hanging-init-plugin",
    ] {
        plugins.add(package);
    }
    let whole = std::fs::read(connector_tests::library_path("huggingface-plugin")).unwrap();
    plugins.write("cut.so", &whole[..1_000_000]);
    host.signal(libc::SIGHUP);
    let logged = eventually(std::time::Duration::from_secs(30), || {
        let lines = refusals(&host);
        async move { (lines.len() >= 4).then_some(lines) }
    })
    .await
    .unwrap_or_else(|| panic!("no refusals logged: {}", host.stderr.lock().unwrap()));
    let log = logged.join("\n");
    for reason in [
        "crashed while loading: SIGABRT",
        "crashed while loading: SIGSEGV",
        "timed out while loading after 2 s",
        "truncated: file is 1000000 bytes, ",
    ] {
        assert!(log.contains(reason), "no {reason:?} in {log}");
    }
    still_running(&mut host);
    process_sign_in_works(&host.url).await;
    host.stop();
}

/// The plugin file rewritten slowly, four times, while the broker reloads every 20 ms: the
/// broker never dies, every refusal says the file is incomplete, and once
/// the writer is done the complete new build serves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_reloading_while_its_plugin_is_rewritten_never_crashes() {
    let build_2 = tokio::task::spawn_blocking(echo_build_2).await.unwrap();
    let build_1 = connector_tests::library_path("echo-plugin");
    let plugins = echo_dir();
    let config = tempfile::tempdir().unwrap();
    let mut host = serve(plugins.path(), &config);
    let target = plugins.path().join("libecho.so");
    let writer = std::thread::spawn(move || {
        for round in 0..4 {
            let source = if round % 2 == 0 { &build_2 } else { &build_1 };
            write_slowly(source, &target);
        }
    });
    while !writer.is_finished() {
        host.signal(libc::SIGHUP);
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        still_running(&mut host);
    }
    writer.join().unwrap();
    host.signal(libc::SIGHUP);
    let url = host.url.clone();
    let serving_1 = eventually(std::time::Duration::from_secs(30), || {
        let url = url.clone();
        async move {
            let (_, json) = status_json(
                http()
                    .get(format!("{url}/api/connectors"))
                    .send()
                    .await
                    .ok()?,
            )
            .await;
            let description = json["connectors"][0]["metadata"]["description"]["en"]
                .as_str()?
                .to_owned();
            description.ends_with("build=1").then_some(())
        }
    })
    .await;
    still_running(&mut host);
    let lines = refusals(&host);
    println!(
        "RELIABILITY plugins rewrite_during_reload refusals={}",
        lines.len()
    );
    for line in &lines {
        assert!(
            // An empty file (`cp` has just truncated it) is "file too short".
            [
                "changed while being read",
                "truncated: file is ",
                "file too short"
            ]
            .iter()
            .any(|reason| line.contains(reason)),
            "{line}"
        );
    }
    assert!(
        serving_1.is_some(),
        "the last complete build (1) is not served"
    );
    process_sign_in_works(&host.url).await;
    host.stop();
}

/// Rewrites `target` in place as `cp` does (truncate, then write), in 32 pieces a few
/// milliseconds apart, so that a reload meets it half-written.
fn write_slowly(source: &Path, target: &Path) {
    use std::io::Write as _;
    let bytes = std::fs::read(source).unwrap();
    let mut file = std::fs::File::create(target).unwrap();
    for chunk in bytes.chunks(bytes.len().div_ceil(32)) {
        file.write_all(chunk).unwrap();
        file.flush().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// The state directory is created `0700` even under umask 000.
#[test]
fn a_state_directory_is_created_private_whatever_the_umask() {
    use std::io::BufRead as _;
    use std::os::unix::process::CommandExt as _;
    let plugins = echo_dir();
    let config = tempfile::tempdir().unwrap();
    let file = config.path().join("broker.toml");
    let text = format!(
        "public_url = \"http://127.0.0.1:1\"\n{}",
        echo_connector("echo", "Hi", None)
    );
    std::fs::write(&file, text).unwrap();
    let mut command = std::process::Command::new(host_example_bin());
    command
        .args(["serve", "--listen", "127.0.0.1:0", "--plugins"])
        .arg(plugins.path())
        .arg("--config")
        .arg(&file)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null());
    // SAFETY: umask(2) is async-signal-safe and cannot fail.
    unsafe {
        command.pre_exec(|| {
            libc::umask(0);
            Ok(())
        });
    }
    let mut child = command.spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let listening = std::io::BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .any(|l| l.starts_with("host-example listening on "));
    let mode =
        std::fs::metadata(plugins.path().join(".loaded")).map(|m| m.permissions().mode() & 0o777);
    let _ = child.kill();
    let _ = child.wait();
    assert!(listening, "the broker did not start");
    assert_eq!(mode.unwrap(), 0o700);
}
