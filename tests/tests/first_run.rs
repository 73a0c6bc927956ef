//! What a newcomer sees: the README's first command (`host-example demo` from `target/debug`,
//! with its default plugin directory) run as a Rust developer would, with `RUST_BACKTRACE=1`;
//! and a plugin that panics while loading or in a call, reported as one log line.

mod host_support;

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use host_support::{Host, callback, echo_dir, host_example_bin, start_sign_in, status_json};

/// Everything `host-example demo` prints on stdout and stderr until its "listening" line.
fn demo_output_until_listening() -> (String, String) {
    let mut child = Command::new(host_example_bin())
        .args(["demo", "--listen", "127.0.0.1:0"])
        .env("RUST_BACKTRACE", "1")
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn host-example demo");
    let (tx, rx) = mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut out = String::new();
    // The lines after "listening" say what to do next; they come right after it.
    while let Ok(line) = rx.recv_timeout(Duration::from_secs(60)) {
        out += &line;
        out.push('\n');
        if line.starts_with("next:") {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let mut err = String::new();
    let _ = child.stderr.take().unwrap().read_to_string(&mut err);
    (out, err)
}

#[test]
fn the_demo_starts_without_backtraces_or_refused_plugins_and_says_what_to_do() {
    let (stdout, stderr) = demo_output_until_listening();
    let all = format!("{stdout}{stderr}");
    assert!(
        stdout.contains("host-example listening on http://127.0.0.1:"),
        "{all}"
    );
    for noise in ["backtrace", "panicked", "refused", "RUST_BACKTRACE"] {
        assert!(
            !all.contains(noise),
            "`{noise}` in the demo's output:\n{all}"
        );
    }
    assert!(
        stdout.contains("connectors: huggingface (Hugging Face)"),
        "{stdout}"
    );
    let next = stdout
        .lines()
        .find(|l| l.starts_with("next:"))
        .unwrap_or_else(|| panic!("no next step in:\n{stdout}"));
    assert!(
        next.contains("open http://127.0.0.1:") && next.contains("Sign in with Hugging Face"),
        "{next}"
    );
}

#[tokio::test]
async fn a_panic_in_a_plugin_call_is_one_log_line_without_a_backtrace() {
    let dir = echo_dir();
    let config = dir.path().join("broker.toml");
    std::fs::write(
        &config,
        "public_url = \"http://127.0.0.1:1\"\n[[connectors]]\nid = \"echo\"\n\
         factory = \"echo-web\"\nconfig = { greeting = \"hi\" }\n",
    )
    .unwrap();
    let (plugins, config) = (
        dir.path().display().to_string(),
        config.display().to_string(),
    );
    let host = Host::spawn(
        &[
            "serve",
            "--plugins",
            &plugins,
            "--config",
            &config,
            "--listen",
            "127.0.0.1:0",
        ],
        &[("RUST_BACKTRACE", "1")],
    )
    .unwrap();
    let s = start_sign_in(&host.url, "echo", None).await;
    let r = callback(
        &host.url,
        "echo",
        &[("state", &s.state), ("code", "c"), ("panic", "true")],
        Some(&s.cookie),
    )
    .await;
    let (status, json) = status_json(r).await;
    assert_eq!(
        (status, json["error"]["code"].as_str()),
        (502, Some("general")),
        "{json}"
    );
    let message = "echo-plugin: the callback asked for a panic";
    assert!(
        json["error"]["message"].as_str().unwrap().contains(message),
        "{json}"
    );
    let log = host_support::eventually(Duration::from_secs(5), || {
        let log = host.stderr.lock().unwrap().clone();
        async move { log.contains(message).then_some(log) }
    })
    .await
    .expect("the panic is logged");
    let lines: Vec<&str> = log.lines().filter(|l| l.contains("panic")).collect();
    assert_eq!(lines.len(), 1, "{log}");
    assert!(
        lines[0].contains("libecho.so"),
        "the plugin file is named: {log}"
    );
    for noise in ["backtrace", "panicked at"] {
        assert!(
            !log.contains(noise),
            "`{noise}` on the broker's stderr:\n{log}"
        );
    }
}

#[test]
fn a_plugin_that_panics_while_loading_is_one_log_line_with_its_message() {
    let dir = echo_dir();
    dir.add("panicking-init-plugin");
    let config = dir.path().join("broker.toml");
    std::fs::write(
        &config,
        "public_url = \"http://127.0.0.1:1\"\n[[connectors]]\nid = \"echo\"\n\
         factory = \"echo-web\"\nconfig = { greeting = \"hi\" }\n",
    )
    .unwrap();
    let (plugins, config) = (
        dir.path().display().to_string(),
        config.display().to_string(),
    );
    let host = Host::spawn(
        &[
            "serve",
            "--plugins",
            &plugins,
            "--config",
            &config,
            "--listen",
            "127.0.0.1:0",
        ],
        &[("RUST_BACKTRACE", "1")],
    )
    .unwrap();
    let log = host.stderr.lock().unwrap().clone();
    let lines: Vec<&str> = log.lines().filter(|l| l.contains("panic")).collect();
    assert_eq!(lines.len(), 1, "{log}");
    assert!(
        lines[0].contains("libpanicking_init_plugin.so")
            && lines[0]
                .contains("initialisation panicked: panicking-init-plugin: refusing to initialise"),
        "{log}"
    );
    for noise in ["backtrace", "panicked at"] {
        assert!(
            !log.contains(noise),
            "`{noise}` on the broker's stderr:\n{log}"
        );
    }
}
