//! The loader through real builds: every kind of file a plugin directory can hold, and the echo
//! plugin used through the ABI.
//!
//! No test here calls `Plugin::shutdown`: the shared echo instance would stop for every test in
//! this process (see `shutdown.rs`, its own process).

use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use connector_api::{
    AuthorizationRequest, DiscoverError, DiscoverOptions, ErrorCode, FormItem, FormItemType,
    Insecure, Metadata, Platform, Plugin, ProbeCommand, RejectReason, SelectItem, SocialUserInfo,
    discover, discover_with,
};
use connector_tests::{PluginDir, host_example_bin, library_path, load_private};
use serde_json::{Value, json};

/// One echo instance shared by the tests of this process.
fn echo() -> &'static Plugin {
    static ECHO: OnceLock<Plugin> = OnceLock::new();
    ECHO.get_or_init(|| load_private("echo-plugin"))
}

fn echo_connector(config: Value) -> connector_api::Connector {
    echo().create(&config).expect("valid echo config")
}

fn file_name(path: &Path) -> &str {
    path.file_name().unwrap().to_str().unwrap()
}

/// Not an ELF file; deterministic so that the dynamic loader's complaint is too.
fn garbage() -> Vec<u8> {
    (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect()
}

#[test]
fn discover_loads_the_good_plugins_and_names_each_refused_file() {
    let dir = PluginDir::new();
    let echo_path = dir.add("echo-plugin");
    dir.add("huggingface-plugin");
    dir.add_as("echo-plugin", "libecho_plugin_copy.so");
    dir.write("garbage.so", garbage());
    dir.write("empty.so", b"");
    dir.add("not-a-plugin");
    dir.add("old-api-plugin");
    dir.add("new-api-plugin");
    dir.add("layout-mismatch-plugin");
    dir.add("panicking-init-plugin");
    std::fs::create_dir(dir.path().join("dir.so")).unwrap();
    dir.write("readme.txt", "not a library, and not named like one");

    let found = discover(dir.path()).expect("the directory is readable");

    let plugins: Vec<(&str, &str, &str)> = found
        .plugins
        .iter()
        .map(|p| {
            (
                file_name(p.path()),
                p.metadata().id.as_str(),
                p.api_version(),
            )
        })
        .collect();
    assert_eq!(
        plugins,
        [
            ("libecho_plugin.so", "echo-web", "0.1.0"),
            ("libhuggingface_plugin.so", "huggingface-universal", "0.1.0"),
        ]
    );

    let rejected: Vec<(&str, &RejectReason)> = found
        .rejected
        .iter()
        .map(|r| (file_name(&r.path), &r.reason))
        .collect();
    let not_a_library = |why: &str| RejectReason::NotALibrary(why.into());
    assert_eq!(
        rejected,
        [
            ("dir.so", &not_a_library("is a directory")),
            ("empty.so", &not_a_library("file too short")),
            ("garbage.so", &not_a_library("invalid ELF header")),
            (
                "libecho_plugin_copy.so",
                &RejectReason::DuplicateId {
                    id: "echo-web".into(),
                    first: echo_path.display().to_string(),
                }
            ),
            (
                "liblayout_mismatch_plugin.so",
                &RejectReason::LayoutMismatch {
                    host: "0.1.0".into(),
                    // abi_stable compares the crate that defines a type before its fields.
                    detail: "Error:mismatched package Expected: connector-api \
                             Found: layout-mismatch-plugin"
                        .into(),
                }
            ),
            (
                "libnew_api_plugin.so",
                &RejectReason::IncompatibleVersion {
                    plugin: "1.0.0".into(),
                    host: "0.1.0".into(),
                }
            ),
            ("libnot_a_plugin.so", &RejectReason::NotAPlugin),
            (
                "libold_api_plugin.so",
                &RejectReason::IncompatibleVersion {
                    plugin: "0.0.1".into(),
                    host: "0.1.0".into(),
                }
            ),
            (
                "libpanicking_init_plugin.so",
                &RejectReason::InitPanicked {
                    message: String::new()
                }
            ),
        ]
    );
    for r in &found.rejected {
        assert_eq!(r.path.parent(), Some(dir.path()));
    }
}

#[test]
fn every_reject_reason_reads_as_one_line_naming_the_cause() {
    let first = "/plugins/libecho_plugin.so";
    let cases = [
        (
            RejectReason::NotALibrary("invalid ELF header".into()),
            "not a loadable library: invalid ELF header",
        ),
        (
            RejectReason::NotAPlugin,
            "not a connector plugin: it exports no abi_stable root module",
        ),
        (
            RejectReason::IncompatibleVersion {
                plugin: "0.0.1".into(),
                host: "0.1.0".into(),
            },
            "incompatible interface version: plugin built against connector-api 0.0.1, host has 0.1.0",
        ),
        (
            RejectReason::LayoutMismatch {
                host: "0.1.0".into(),
                detail:
                    "Error:mismatched package Expected: connector-api Found: layout-mismatch-plugin"
                        .into(),
            },
            "layout mismatch with connector-api 0.1.0: Error:mismatched package Expected: connector-api Found: layout-mismatch-plugin",
        ),
        (
            RejectReason::InitPanicked {
                message: String::new(),
            },
            "initialisation panicked",
        ),
        (
            RejectReason::InitPanicked {
                message: "boom".into(),
            },
            "initialisation panicked: boom",
        ),
        (
            RejectReason::DuplicateId {
                id: "echo-web".into(),
                first: first.into(),
            },
            "duplicate connector id `echo-web`, already loaded from /plugins/libecho_plugin.so",
        ),
    ];
    for (reason, text) in cases {
        assert_eq!(reason.to_string(), text);
        assert!(!text.contains('\n'));
    }
}

#[test]
fn discover_of_a_missing_directory_is_read_dir_naming_the_path() {
    let dir = PluginDir::new();
    let missing = dir.path().join("no-such-dir");
    let error = discover(&missing).unwrap_err();
    let DiscoverError::ReadDir { path, source } = &error else {
        panic!("expected ReadDir, got {error:?}");
    };
    assert_eq!(path, &missing);
    assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
    let text = error.to_string();
    assert!(
        text.starts_with(&format!(
            "cannot read plugin directory {}: ",
            missing.display()
        )),
        "{text}"
    );
    assert!(!text.contains('\n'), "{text}");
}

#[test]
fn discover_of_a_directory_without_libraries_finds_nothing() {
    let dir = PluginDir::new();
    dir.write("readme.txt", "hello");
    let found = discover(dir.path()).unwrap();
    assert!(found.plugins.is_empty() && found.rejected.is_empty());
}

#[test]
fn echo_metadata_read_through_the_abi_equals_what_it_declared() {
    let en = |text: &str| [("en".to_string(), text.to_string())].into();
    let expected = Metadata {
        id: "echo-web".into(),
        target: "echo".into(),
        platform: Platform::Web,
        name: en("Echo"),
        description: en("Signs in whoever presents a code; for tests. build=1"),
        logo: "data:image/svg+xml;base64,PHN2ZyB4bWxucz0iaHR0cDovL3d3dy53My5vcmcvMjAwMC9zdmciIHZpZXdCb3g9IjAgMCAxNiAxNiI+PGNpcmNsZSBjeD0iOCIgY3k9IjgiIHI9IjciIGZpbGw9IiM2YjcyODAiLz48L3N2Zz4=".into(),
        logo_dark: None,
        readme: "# Echo\n\nA test connector: the user id is `echo-<code>`.\n".into(),
        form_items: vec![
            FormItem {
                placeholder: Some("Hello".into()),
                ..FormItem::text("greeting", "Greeting", true)
            },
            FormItem {
                item_type: FormItemType::Select,
                description: Some("Make user info fail with this error code.".into()),
                select_items: ["general", "rate_limit_exceeded"]
                    .map(|code| SelectItem {
                        value: code.into(),
                        title: code.into(),
                    })
                    .into(),
                ..FormItem::text("failWith", "Fail with", false)
            },
        ],
    };
    assert_eq!(echo().metadata(), &expected);
    assert_eq!(echo().api_version(), connector_api::API_VERSION);
}

#[test]
fn create_accepts_a_valid_config() {
    echo_connector(json!({"greeting": "Hello"}));
    echo_connector(json!({"greeting": "", "failWith": "general"}));
}

#[test]
fn create_refuses_an_invalid_config_naming_the_field() {
    let cases = [
        (json!({}), "greeting", "is required"),
        (json!({"failWith": "general"}), "greeting", "is required"),
        (json!({"greeting": 7}), "greeting", "must be a string"),
        (json!({"greeting": null}), "greeting", "must be a string"),
        (
            json!({"greeting": "Hi", "failWith": ["general"]}),
            "failWith",
            "must be a string",
        ),
        (
            json!({"greeting": "Hi", "greting": "typo"}),
            "greting",
            "unknown field",
        ),
        (json!(42), "config", "must be a JSON object"),
        (json!("greeting"), "config", "must be a JSON object"),
    ];
    for (config, field, problem) in cases {
        let error = echo().create(&config).unwrap_err();
        assert_eq!(error.code, ErrorCode::InvalidConfig, "{config}");
        assert_eq!(
            error.message,
            format!("invalid config `{field}`: {problem}"),
            "{config}"
        );
        assert_eq!(error.data, Some(json!({ "field": field })), "{config}");
    }
}

fn request(state: &str, redirect_uri: &str) -> AuthorizationRequest {
    AuthorizationRequest {
        state: state.into(),
        redirect_uri: redirect_uri.into(),
        connector_id: "echo-1".into(),
        jti: "jti-1".into(),
        user_agent: "loader-test".into(),
        scope: None,
    }
}

#[test]
fn authorization_uri_carries_the_state_and_the_encoded_redirect_uri() {
    let connector = echo_connector(json!({"greeting": "Hello"}));
    let redirect = "https://broker.example/callback/echo?tenant=a b&x=1";
    let authorization = connector
        .authorization_uri(request("st/1", redirect))
        .unwrap();
    assert_eq!(
        authorization.uri,
        "https://echo.invalid/authorize?state=st%2F1\
         &redirect_uri=https%3A%2F%2Fbroker.example%2Fcallback%2Fecho%3Ftenant%3Da+b%26x%3D1"
    );
    assert_eq!(
        authorization.session,
        json!({"redirectUri": redirect, "greeting": "Hello"})
    );
}

fn user(code: &str, greeting: &str) -> SocialUserInfo {
    SocialUserInfo {
        id: format!("echo-{code}"),
        email: None,
        phone: None,
        name: Some(greeting.into()),
        avatar: None,
        raw_data: json!({ "callback": { "code": code }, "build": "1" }),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn user_info_is_awaited_on_the_host_runtime() {
    let connector = echo_connector(json!({"greeting": "Hello"}));
    let session = connector
        .authorization_uri(request("s", "https://b.example/cb"))
        .unwrap()
        .session;
    let info = connector
        .user_info(&json!({"code": "abc"}), &session)
        .await
        .unwrap();
    assert_eq!(info, user("abc", "Hello"));
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_user_info_calls_from_host_tasks_all_complete() {
    let connector = Arc::new(echo_connector(json!({"greeting": "Hi"})));
    let tasks: Vec<_> = (0..32)
        .map(|i| {
            let connector = Arc::clone(&connector);
            tokio::spawn(async move {
                connector
                    .user_info(&json!({ "code": i.to_string() }), &json!({}))
                    .await
            })
        })
        .collect();
    for (i, task) in tasks.into_iter().enumerate() {
        assert_eq!(task.await.unwrap().unwrap(), user(&i.to_string(), "Hi"));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_panic_in_user_info_is_general_and_the_plugin_keeps_working() {
    let connector = echo_connector(json!({"greeting": "Hello"}));
    let error = connector
        .user_info(&json!({"panic": true}), &json!({}))
        .await
        .unwrap_err();
    assert_eq!(error.code, ErrorCode::General);
    assert!(error.message.contains("panicked"), "{error}");

    let again = connector
        .user_info(&json!({"code": "after"}), &json!({}))
        .await;
    assert_eq!(again.unwrap(), user("after", "Hello"));
    let fresh = echo_connector(json!({"greeting": "Again"}));
    let info = fresh.user_info(&json!({"code": "x"}), &json!({})).await;
    assert_eq!(info.unwrap(), user("x", "Again"));
}

#[tokio::test(flavor = "multi_thread")]
async fn fail_with_returns_that_error_code() {
    let cases = [
        ("rate_limit_exceeded", ErrorCode::RateLimitExceeded),
        ("social_invalid_id_token", ErrorCode::SocialIdTokenInvalid),
        ("general", ErrorCode::General),
        // Not a Logto code: the plugin itself falls back to `general`.
        ("made_up", ErrorCode::General),
    ];
    for (code, expected) in cases {
        let connector = echo_connector(json!({"greeting": "Hi", "failWith": code}));
        let error = connector
            .user_info(&json!({"code": "abc"}), &json!({}))
            .await
            .unwrap_err();
        assert_eq!(error.code, expected, "{code}");
        assert_eq!(error.message, format!("failWith `{code}`"));
        assert_eq!(error.data, None);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_callback_without_code_is_invalid_request_parameters() {
    let connector = echo_connector(json!({"greeting": "Hi"}));
    let error = connector
        .user_info(&json!({"error": "access_denied"}), &json!({}))
        .await
        .unwrap_err();
    assert_eq!(error.code, ErrorCode::InvalidRequestParameters);
    assert_eq!(error.message, "callback has no `code`");
}

#[cfg(unix)]
#[test]
fn a_plugin_dir_copy_is_a_separate_file() {
    use std::os::unix::fs::MetadataExt as _;

    let dir = PluginDir::new();
    let copy = dir.add("echo-plugin");
    let built = connector_tests::library_path("echo-plugin");
    assert_ne!(copy, built);
    assert_eq!(
        std::fs::read(&copy).unwrap(),
        std::fs::read(&built).unwrap()
    );
    assert_ne!(
        std::fs::metadata(&copy).unwrap().ino(),
        std::fs::metadata(&built).unwrap().ino()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn optional_token_methods_the_plugin_lacks_are_not_implemented() {
    let connector = echo_connector(json!({"greeting": "Hi"}));
    let error = connector
        .token_response_and_user_info(&json!({"code": "abc"}), &json!({}))
        .await
        .unwrap_err();
    assert_eq!(error.code, ErrorCode::NotImplemented);
    let error = connector
        .access_token_by_refresh_token("r")
        .await
        .unwrap_err();
    assert_eq!(error.code, ErrorCode::NotImplemented);
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn a_directory_others_can_write_is_refused_unless_allowed() {
    let dir = PluginDir::new();
    dir.add("echo-plugin");
    set_mode(dir.path(), 0o777);
    match discover(dir.path()) {
        Err(e @ DiscoverError::Insecure(Insecure::WritableByOthers { mode: 0o777, .. })) => {
            let text = e.to_string();
            assert!(
                text.contains("writable by other users (mode 777, owner uid "),
                "{text}"
            );
            assert!(text.contains(&dir.path().display().to_string()), "{text}");
        }
        other => panic!("expected WritableByOthers, got {other:?}"),
    }
    set_mode(dir.path(), 0o775);
    assert!(
        matches!(
            discover(dir.path()),
            Err(DiscoverError::Insecure(Insecure::WritableByOthers { .. }))
        ),
        "g+w too"
    );

    let allow = DiscoverOptions {
        allow_writable_by_others: true,
        ..DiscoverOptions::default()
    };
    let found = discover_with(dir.path(), &allow).unwrap();
    assert_eq!(found.plugins.len(), 1);
    set_mode(dir.path(), 0o755);
    assert_eq!(discover(dir.path()).unwrap().plugins.len(), 1);
}

#[test]
fn a_plugin_file_others_can_write_and_a_dangling_symlink_are_refused() {
    let dir = PluginDir::new();
    let echo = dir.add("echo-plugin");
    set_mode(&echo, 0o666);
    std::os::unix::fs::symlink(dir.path().join("gone.so"), dir.path().join("dangling.so")).unwrap();
    let found = discover(dir.path()).unwrap();
    assert!(found.plugins.is_empty());
    let reasons: Vec<_> = found
        .rejected
        .iter()
        .map(|r| (file_name(&r.path).to_string(), r.reason.clone()))
        .collect();
    assert_eq!(
        reasons,
        [
            (
                "dangling.so".to_string(),
                RejectReason::NotALibrary("dangling symlink".into())
            ),
            (
                "libecho_plugin.so".to_string(),
                RejectReason::Insecure(Insecure::WritableByOthers {
                    path: echo.clone(),
                    mode: 0o666,
                    owner: euid(),
                })
            ),
        ]
    );
}

fn euid() -> u32 {
    // SAFETY: geteuid(2) has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

fn probing(timeout: Duration) -> DiscoverOptions {
    DiscoverOptions {
        probe: Some(
            ProbeCommand::new(host_example_bin(), ["__probe-plugin"]).with_timeout(timeout),
        ),
        ..DiscoverOptions::default()
    }
}

/// The probe loads each file in a child: libraries whose ELF constructors abort, segfault or
/// hang are refused with what happened, the child's own refusals come back as the same typed
/// reasons an in-process load gives, and the good plugin loads (in this process, only then).
#[test]
fn the_probe_refuses_libraries_that_crash_or_hang_while_loading_and_the_others_load() {
    let dir = PluginDir::new();
    dir.add("echo-plugin");
    for package in [
        "aborting-init-plugin",
        "segfaulting-init-plugin",
        "hanging-init-plugin",
        "panicking-init-plugin",
        "not-a-plugin",
        "old-api-plugin",
    ] {
        dir.add(package);
    }
    let limit = Duration::from_secs(2);
    let found = discover_with(dir.path(), &probing(limit)).unwrap();
    let loaded: Vec<_> = found.plugins.iter().map(|p| file_name(p.path())).collect();
    assert_eq!(loaded, ["libecho_plugin.so"]);
    let rejected: Vec<(&str, &RejectReason)> = found
        .rejected
        .iter()
        .map(|r| (file_name(&r.path), &r.reason))
        .collect();
    let crashed = |signal: &str, output: &str| RejectReason::Crashed {
        signal: signal.into(),
        output: output.into(),
    };
    assert_eq!(
        rejected,
        [
            (
                "libaborting_init_plugin.so",
                &crashed(
                    "SIGABRT",
                    "aborting-init-plugin: aborting in its constructor"
                )
            ),
            (
                "libhanging_init_plugin.so",
                &RejectReason::TimedOut { limit }
            ),
            ("libnot_a_plugin.so", &RejectReason::NotAPlugin,),
            (
                "libold_api_plugin.so",
                &RejectReason::IncompatibleVersion {
                    plugin: "0.0.1".into(),
                    host: "0.1.0".into(),
                }
            ),
            (
                "libpanicking_init_plugin.so",
                &RejectReason::InitPanicked {
                    message: "panicking-init-plugin: refusing to initialise".into()
                }
            ),
            ("libsegfaulting_init_plugin.so", &crashed("SIGSEGV", "")),
        ]
    );
    assert_eq!(
        found.rejected[0].reason.to_string(),
        "crashed while loading: SIGABRT (stderr: aborting-init-plugin: aborting in its constructor)"
    );
    assert_eq!(
        found.rejected[1].reason.to_string(),
        "timed out while loading after 2 s"
    );
}

/// Cuts of a real plugin, from 1 KB to one byte short, through `host-example list` (a child
/// process, so that a crash fails this test rather than killing it): each is refused as
/// truncated with the sizes, the good plugin beside them loads, and the lister exits 0.
#[test]
fn truncated_libraries_are_refused_naming_the_sizes_and_never_mapped() {
    let dir = PluginDir::new();
    dir.add("echo-plugin");
    let whole = std::fs::read(library_path("huggingface-plugin")).unwrap();
    let cuts = [
        1_000,
        5_000,
        100_000,
        1_000_000,
        whole.len() / 2,
        whole.len() - 1,
    ];
    for cut in cuts {
        dir.write(&format!("cut-{cut:09}.so"), &whole[..cut]);
    }
    let output = std::process::Command::new(host_example_bin())
        .args(["list", "--json", "--plugins"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let listing: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(listing["connectors"][0]["id"], "echo-web", "{listing}");
    let reasons: Vec<&str> = listing["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["reason"].as_str().unwrap())
        .collect();
    assert_eq!(reasons.len(), cuts.len(), "{listing}");
    for (cut, reason) in cuts.iter().zip(&reasons) {
        let prefix = format!("truncated: file is {cut} bytes, ");
        assert!(reason.starts_with(&prefix), "{reason}");
        let end: u64 = reason.rsplit(" ends at ").next().unwrap().parse().unwrap();
        assert!(end > *cut as u64 && end <= whole.len() as u64, "{reason}");
    }
}

/// `host-example list` over libraries that crash while loading: it survives, names each with
/// the signal, and the libraries' own output does not reach its stderr.
#[test]
fn host_example_list_survives_libraries_that_crash_while_loading() {
    let dir = PluginDir::new();
    dir.add("echo-plugin");
    dir.add("aborting-init-plugin");
    dir.add("segfaulting-init-plugin");
    dir.add("hanging-init-plugin");
    let output = std::process::Command::new(host_example_bin())
        .args(["list", "--plugin-probe-timeout", "1s", "--plugins"])
        .arg(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{}: {stderr}", output.status);
    for line in [
        "1 connector(s) loaded from",
        "libaborting_init_plugin.so: crashed while loading: SIGABRT",
        "libsegfaulting_init_plugin.so: crashed while loading: SIGSEGV",
        "libhanging_init_plugin.so: timed out while loading after 1 s",
    ] {
        assert!(stdout.contains(line), "no {line:?} in {stdout}");
    }
    assert!(!stderr.contains("aborting in its constructor"), "{stderr}");
}

/// Like ssh's StrictModes: a plugin file or directory owned by another user (not root) is
/// refused naming the path, mode and owner; a symlink is judged by its target's directory.
#[test]
fn files_and_directories_owned_by_another_user_or_reached_through_a_writable_directory_are_refused()
{
    if euid() != 0 {
        println!("skipped: giving a file to another user needs root");
        return;
    }
    let nobody = 65534;
    let dir = PluginDir::new();
    let echo = dir.add("echo-plugin");
    std::os::unix::fs::chown(&echo, Some(nobody), None).unwrap();
    let elsewhere = PluginDir::new();
    let target = elsewhere.add("huggingface-plugin");
    set_mode(elsewhere.path(), 0o777);
    std::os::unix::fs::symlink(&target, dir.path().join("linked.so")).unwrap();

    let found = discover(dir.path()).unwrap();
    assert!(found.plugins.is_empty(), "{:?}", found.plugins);
    let reasons: Vec<String> = found
        .rejected
        .iter()
        .map(|r| r.reason.to_string())
        .collect();
    assert_eq!(
        reasons,
        [
            format!(
                "{} is owned by uid 65534, neither this host's user (uid 0) nor root (mode 755): \
                 its owner can run code in this host",
                echo.display()
            ),
            format!(
                "{} is writable by other users (mode 777, owner uid 0): anyone who can write it \
                 can run code in this host",
                std::fs::canonicalize(elsewhere.path()).unwrap().display()
            ),
        ]
    );
    set_mode(elsewhere.path(), 0o700);

    std::os::unix::fs::chown(dir.path(), Some(nobody), None).unwrap();
    let error = discover(dir.path()).unwrap_err();
    assert!(
        matches!(
            &error,
            DiscoverError::Insecure(Insecure::ForeignOwner { owner: 65534, .. })
        ),
        "{error}"
    );
    assert!(
        error
            .to_string()
            .contains(&dir.path().display().to_string())
    );
    let allow = DiscoverOptions {
        allow_writable_by_others: true,
        ..DiscoverOptions::default()
    };
    assert_eq!(discover_with(dir.path(), &allow).unwrap().plugins.len(), 2);
    std::os::unix::fs::chown(dir.path(), Some(0), None).unwrap();
}
