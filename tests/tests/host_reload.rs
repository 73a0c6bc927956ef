//! Live reload in-process: a plugin file replaced by a different build while the broker runs.

mod host_support;

use std::time::Duration;

use connector_api::ProbeCommand;
use host_example::BrokerOptions;
use host_example::reload::PROBE_SUBCOMMAND;
use host_support::{
    TestBroker, callback, echo_build_2, echo_connector, echo_dir, eventually, host_example_bin,
    http, start_sign_in, status_json,
};
use serde_json::Value;

async fn get_json(url: &str) -> Value {
    status_json(http().get(url).send().await.unwrap()).await.1
}

/// The scenario: a sign-in starts on build 1; `libecho.so` is replaced by build 2 and
/// `/admin/reload` is called; new sign-ins run on build 2 while the earlier one completes on
/// build 1; then build 1's generation is retired and its library shut down.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_reload_switches_builds_and_finishes_old_sign_ins_on_the_old_build() {
    let build_2 = tokio::task::spawn_blocking(echo_build_2).await.unwrap();
    let b = TestBroker::start(echo_dir(), &echo_connector("echo", "Hello", None)).await;
    let description = |json: &Value| json["connectors"][0]["metadata"]["description"]["en"].clone();
    let before = get_json(&b.at("/api/connectors")).await;
    assert!(
        description(&before).as_str().unwrap().ends_with("build=1"),
        "{before}"
    );

    let old = start_sign_in(&b.url, "echo", None).await;

    // Overwritten in place, as an operator's `cp` would: safe, the broker maps only its copies.
    std::fs::copy(&build_2, b.plugins.path().join("libecho.so")).unwrap();
    let (status, report) = host_support::reload(&b).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["generation"], 2);
    assert_eq!(report["libraries"][0]["newBuild"], true);
    let after = get_json(&b.at("/api/connectors")).await;
    assert!(
        description(&after).as_str().unwrap().ends_with("build=2"),
        "{after}"
    );
    assert_ne!(
        after["connectors"][0]["build"]["sha256"],
        before["connectors"][0]["build"]["sha256"]
    );
    // Generation 1 is kept: a sign-in it started is still pending.
    assert_eq!(
        get_json(&b.at("/healthz")).await["liveGenerations"],
        serde_json::json!([2, 1])
    );

    let new = start_sign_in(&b.url, "echo", Some(&old.cookie)).await;
    let r = callback(
        &b.url,
        "echo",
        &[("state", &new.state), ("code", "new")],
        Some(&old.cookie),
    )
    .await;
    let (status, json) = status_json(r).await;
    assert_eq!(
        (status, &json["user"]["rawData"]["build"]),
        (200, &"2".into()),
        "{json}"
    );

    let r = callback(
        &b.url,
        "echo",
        &[("state", &old.state), ("code", "old")],
        Some(&old.cookie),
    )
    .await;
    let (status, json) = status_json(r).await;
    assert_eq!(
        (status, &json["user"]["rawData"]["build"]),
        (200, &"1".into()),
        "{json}"
    );
    assert_eq!(json["user"]["id"], "echo-old");

    // Nothing references generation 1 any more: it is retired and build 1 shut down.
    let retired = eventually(Duration::from_secs(10), || async {
        let health = get_json(&b.at("/healthz")).await;
        (health["liveGenerations"] == serde_json::json!([2])).then_some(())
    })
    .await;
    assert!(retired.is_some(), "generation 1 was not retired");
    // Each build got its own content-addressed copy; the plugin file itself is never mapped.
    let copies: Vec<_> = std::fs::read_dir(b.plugins.path().join(".loaded"))
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("libecho-") && n.ends_with(".so"))
        .collect();
    assert_eq!(copies.len(), 2, "{copies:?}");
}

/// A reload started while a sign-in is mid-callback waits for nothing and breaks nothing: the
/// in-flight callback holds its generation until it returns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callback_in_flight_during_a_reload_completes() {
    let b = TestBroker::start(echo_dir(), &echo_connector("echo", "Hello", None)).await;
    let s = start_sign_in(&b.url, "echo", None).await;
    let url = b.url.clone();
    let slow = tokio::spawn(async move {
        // `sleepMs` keeps the echo plugin's user_info busy across the reload.
        let query = [
            ("state", s.state.as_str()),
            ("code", "slow"),
            ("sleepMs", "500"),
        ];
        status_json(callback(&url, "echo", &query, Some(&s.cookie)).await).await
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (status, _) = host_support::reload(&b).await;
    assert_eq!(status, 200);
    let (status, json) = slow.await.unwrap();
    assert_eq!(
        (status, &json["user"]["id"]),
        (200, &"echo-slow".into()),
        "{json}"
    );
}

/// `/api/connectors`' first description, which the echo plugin ends with `build=<n>`.
async fn build_serving(b: &TestBroker) -> String {
    let json = get_json(&b.at("/api/connectors")).await;
    let description = json["connectors"][0]["metadata"]["description"]["en"].clone();
    description
        .as_str()
        .and_then(|d| d.rsplit_once("build="))
        .map(|(_, n)| n.to_string())
        .unwrap_or_else(|| panic!("no build in {json}"))
}

async fn sign_in_works(b: &TestBroker) {
    let s = start_sign_in(&b.url, "echo", None).await;
    let query = [("state", s.state.as_str()), ("code", "ada")];
    let (status, json) = status_json(callback(&b.url, "echo", &query, Some(&s.cookie)).await).await;
    assert_eq!(
        (status, &json["user"]["id"]),
        (200, &"echo-ada".into()),
        "{json}"
    );
}

fn probing(options: &mut BrokerOptions) {
    let probe = ProbeCommand::new(host_example_bin(), [PROBE_SUBCOMMAND]);
    options.probe = Some(probe.with_timeout(Duration::from_secs(2)));
}

/// Files that crash, hang or are cut short, dropped into the plugin directory of a running
/// broker: the reload refuses each with what happened (the probe takes the crashes), the
/// running connector stays on its build and keeps serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_refuses_libraries_that_crash_hang_or_are_cut_and_the_old_connectors_stay() {
    let b = TestBroker::start_with(echo_dir(), &echo_connector("echo", "Hi", None), probing).await;
    for package in [
        "aborting-init-plugin",
        "segfaulting-init-plugin",
        "hanging-init-plugin",
    ] {
        b.plugins.add(package);
    }
    let whole = std::fs::read(echo_build_2()).unwrap();
    b.plugins.write("cut.so", &whole[..whole.len() / 3]);

    let report = b.broker.reload().await.expect("the reload itself succeeds");
    let refused: Vec<(String, String)> = report
        .refused
        .iter()
        .map(|r| {
            let name = r.file.file_name().unwrap().to_string_lossy().into_owned();
            (name, r.reason.clone())
        })
        .collect();
    assert_eq!(refused.len(), 4, "{refused:?}");
    assert!(
        refused[0].0 == "cut.so" && refused[0].1.starts_with("truncated: file is "),
        "{refused:?}"
    );
    assert!(
        refused[1].1.starts_with("crashed while loading: SIGABRT"),
        "{refused:?}"
    );
    assert_eq!(refused[2].1, "timed out while loading after 2 s");
    assert_eq!(refused[3].1, "crashed while loading: SIGSEGV");
    assert_eq!(report.libraries.len(), 1);
    assert!(!report.libraries[0].new_build);
    assert_eq!(build_serving(&b).await, "1");
    sign_in_works(&b).await;
}

/// A plugin file replaced by a cut copy of a new build fails that reload (its factory is
/// gone) and build 1 keeps serving; once the file is complete, the next reload takes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replacement_cut_short_keeps_the_old_build_until_it_is_complete() {
    let build_2 = tokio::task::spawn_blocking(echo_build_2).await.unwrap();
    let b = TestBroker::start_with(echo_dir(), &echo_connector("echo", "Hi", None), probing).await;
    let whole = std::fs::read(&build_2).unwrap();
    let file = b.plugins.path().join("libecho.so");
    std::fs::write(&file, &whole[..whole.len() - 4096]).unwrap();
    let error = b.broker.reload().await.unwrap_err();
    assert!(error.to_string().contains("echo-web"), "{error}");
    assert_eq!(build_serving(&b).await, "1");
    sign_in_works(&b).await;

    std::fs::write(&file, &whole).unwrap();
    let report = b.broker.reload().await.expect("the complete file loads");
    assert!(report.refused.is_empty(), "{:?}", report.refused);
    assert_eq!(build_serving(&b).await, "2");
}

/// What is loaded is what was hashed: a different library planted in the state directory
/// under the exact name the copy of `libecho.so` would get is replaced, not loaded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_library_planted_under_the_name_of_a_copy_is_not_loaded() {
    use sha2::Digest as _;
    let build_2 = tokio::task::spawn_blocking(echo_build_2).await.unwrap();
    let plugins = echo_dir();
    let build_1 = std::fs::read(plugins.path().join("libecho.so")).unwrap();
    let hash = format!("{:x}", sha2::Sha256::digest(&build_1));
    let state = plugins.path().join(".loaded");
    std::fs::create_dir(&state).unwrap();
    let planted = state.join(format!("libecho-{}.so", &hash[..16]));
    std::fs::copy(&build_2, &planted).unwrap();

    let b = TestBroker::start(plugins, &echo_connector("echo", "Hi", None)).await;
    assert_eq!(build_serving(&b).await, "1", "the planted build 2 ran");
    assert_eq!(std::fs::read(&planted).unwrap(), build_1);
}

/// The state directory holds what gets loaded: an existing one that others may write to
/// stops the start, naming it with its mode and owner.
#[tokio::test]
async fn an_existing_state_directory_others_can_write_is_refused() {
    use std::os::unix::fs::PermissionsExt as _;
    let plugins = echo_dir();
    let state = plugins.path().join(".loaded");
    std::fs::create_dir(&state).unwrap();
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o777)).unwrap();
    let Err(error) = TestBroker::open_with(
        plugins,
        &echo_connector("echo", "Hi", None),
        |_| None,
        |_| {},
    )
    .await
    else {
        panic!("started with a world-writable state directory");
    };
    let message = error.to_string();
    assert!(
        message.contains(&format!(
            "{} is writable by other users (mode 777, owner uid ",
            state.display()
        )),
        "{message}"
    );
}
