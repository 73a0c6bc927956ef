//! The `host-example` executable: restart with a replaced plugin, SIGHUP reload, the real
//! environment in `${NAME}`, config errors at start, and `list`.

mod host_support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use host_support::{
    Host, callback, echo_build_2, echo_dir, eventually, host_example_bin, http, start_sign_in,
    status_json,
};
use serde_json::Value;

async fn build_reported(host: &Host) -> String {
    let json = status_json(
        http()
            .get(format!("{}/api/connectors", host.url))
            .send()
            .await
            .unwrap(),
    )
    .await
    .1;
    let description = json["connectors"][0]["metadata"]["description"]["en"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    description
        .rsplit_once("build=")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default()
}

/// A sign-in against the process; returns the user JSON.
async fn sign_in(host: &Host, code: &str) -> Value {
    let s = start_sign_in(&host.url, "echo", None).await;
    let r = callback(
        &host.url,
        "echo",
        &[("state", &s.state), ("code", code)],
        Some(&s.cookie),
    )
    .await;
    let (status, json) = status_json(r).await;
    assert_eq!(status, 200, "{json}");
    json["user"].clone()
}

fn write_config(dir: &Path, greeting: &str) -> String {
    let path = dir.join("broker.toml");
    let text = format!(
        "public_url = \"http://127.0.0.1:1\"\n[[connectors]]\nid = \"echo\"\nfactory = \"echo-web\"\n\
         config = {{ greeting = \"{greeting}\" }}\n"
    );
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

fn serve_args<'a>(plugins: &'a str, config: &'a str) -> [&'a str; 7] {
    [
        "serve",
        "--plugins",
        plugins,
        "--config",
        config,
        "--listen",
        "127.0.0.1:0",
    ]
}

/// Restart with a replaced plugin file: the new build serves, the host binary is unchanged.
/// Then, while running, SIGHUP takes the next replacement; a sign-in started before finishes
/// on the old build, whose threads are stopped once it is done. Prints memory and threads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_and_sighup_take_a_replaced_plugin() {
    let build_2 = tokio::task::spawn_blocking(echo_build_2).await.unwrap();
    let build_1 = connector_tests::library_path("echo-plugin");
    let plugins = echo_dir();
    let dir = plugins.path().display().to_string();
    let conf_dir = tempfile::tempdir().unwrap();
    let config = write_config(conf_dir.path(), "${HX_TEST_GREETING}");
    let env = [("HX_TEST_GREETING", "Hello from the environment")];

    let host = Host::spawn(&serve_args(&dir, &config), &env).unwrap();
    assert_eq!(build_reported(&host).await, "1");
    let user = sign_in(&host, "a").await;
    assert_eq!(user["name"], "Hello from the environment");
    host.stop();

    std::fs::copy(&build_2, plugins.path().join("libecho.so")).unwrap();
    let host = Host::spawn(&serve_args(&dir, &config), &env).unwrap();
    assert_eq!(build_reported(&host).await, "2");
    assert_eq!(sign_in(&host, "b").await["rawData"]["build"], "2");

    let pending = start_sign_in(&host.url, "echo", None).await;
    let before = host.memory_and_threads();
    std::fs::copy(&build_1, plugins.path().join("libecho.so")).unwrap();
    host.signal(libc::SIGHUP);
    let reloaded = eventually(Duration::from_secs(20), || async {
        (build_reported(&host).await == "1").then_some(())
    })
    .await;
    assert!(
        reloaded.is_some(),
        "SIGHUP did not reload: {}",
        host.stderr.lock().unwrap()
    );
    assert_eq!(sign_in(&host, "c").await["rawData"]["build"], "1");
    let after_reload = host.memory_and_threads();

    let query = [("state", pending.state.as_str()), ("code", "d")];
    let (status, json) =
        status_json(callback(&host.url, "echo", &query, Some(&pending.cookie)).await).await;
    assert_eq!(
        (status, &json["user"]["rawData"]["build"]),
        (200, &"2".into()),
        "{json}"
    );
    let shut_down = eventually(Duration::from_secs(15), || async {
        host.stderr
            .lock()
            .unwrap()
            .contains("old plugin build shut down")
            .then_some(())
    })
    .await;
    assert!(shut_down.is_some(), "{}", host.stderr.lock().unwrap());
    let after_shutdown = host.memory_and_threads();
    println!(
        "VmRSS kB / threads: before reload {before:?}, after reload (2 builds live) {after_reload:?}, \
         after the old build's shutdown {after_shutdown:?}"
    );
    assert!(
        after_shutdown.1 < after_reload.1,
        "the old build's threads were not stopped"
    );
    host.stop();
}

#[test]
fn serve_refuses_a_bad_config_naming_the_connector_and_field() {
    let plugins = echo_dir();
    let dir = plugins.path().display().to_string();
    let conf_dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "${HX_SURELY_UNSET_VARIABLE}",
            "environment variable `HX_SURELY_UNSET_VARIABLE`",
        ),
        (
            "\" , colour = \"red",
            "connector `echo`: invalid config field `colour`",
        ),
    ];
    for (greeting, expected) in cases {
        let config = write_config(conf_dir.path(), greeting);
        let error = match Host::spawn(&serve_args(&dir, &config), &[]) {
            Ok(_) => panic!("started with greeting {greeting}"),
            Err(e) => e,
        };
        assert!(error.contains("exit status: 1"), "{error}");
        assert!(error.contains(expected), "{error}");
    }
}

#[test]
fn list_still_lists_the_plugin_directory() {
    let plugins = echo_dir();
    let output = Command::new(host_example_bin())
        .args(["list", "--json", "--plugins"])
        .arg(plugins.path())
        .output()
        .unwrap();
    assert!(output.status.success());
    let json: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["connectors"][0]["id"], "echo-web");
    assert_eq!(json["rejected"], serde_json::json!([]));
}

/// A supervisor that stops reading the broker's stdout must not stop the broker: its startup
/// lines then meet a closed pipe, and it goes on serving.
#[tokio::test]
async fn a_closed_stdout_does_not_stop_the_broker() {
    let plugins = echo_dir();
    let dir = plugins.path().display().to_string();
    let conf_dir = tempfile::tempdir().unwrap();
    let config = write_config(conf_dir.path(), "Hi");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{port}");
    let mut args = serve_args(&dir, &config);
    args[6] = &listen;
    let mut child = Command::new(host_example_bin())
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    drop(child.stdout.take()); // the read end is gone before the broker writes
    let url = format!("http://{listen}/healthz");
    let healthy = eventually(Duration::from_secs(30), || async {
        let r = http().get(&url).send().await.ok()?;
        (r.status() == 200).then_some(())
    })
    .await;
    let exited = child.try_wait().unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        healthy.is_some(),
        "the broker never served (exit: {exited:?})"
    );
    assert_eq!(exited, None, "the broker died on a closed stdout");
}
