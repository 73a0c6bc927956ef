//! A real browser through `host-example demo`: headless Chromium (Debian's `chromium`, driven
//! through `chromedriver` with the fantoccini WebDriver client) opens the sign-in page, clicks
//! Hugging Face, passes the embedded Hub sandbox and lands on the profile page.
//!
//! Needs `chromium` and `chromium-driver`: `bash .ci/setup` installs them. Without them this
//! test fails (it does not skip), saying so.

mod host_support;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use host_support::{Host, eventually, http};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// `chromedriver` on a free loopback port; killed when dropped.
struct Driver {
    child: Child,
    url: String,
}

impl Driver {
    async fn start() -> Driver {
        for (path, package) in [(CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")] {
            assert!(
                Path::new(path).is_file(),
                "{path} is missing (Debian package `{package}`): run `bash .ci/setup` first"
            );
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port();
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let url = format!("http://127.0.0.1:{port}");
        let status = format!("{url}/status");
        let ready = eventually(Duration::from_secs(20), || async {
            let r = http().get(&status).send().await.ok()?;
            r.status().is_success().then_some(())
        })
        .await;
        assert!(ready.is_some(), "chromedriver did not come up on {url}");
        Driver { child, url }
    }

    async fn browser(&self, profile_dir: &Path) -> Client {
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--window-size=900,720",
        ]
        .map(String::from)
        .into_iter()
        .chain([format!("--user-data-dir={}", profile_dir.display())])
        .collect::<Vec<_>>();
        let capabilities = json!({
            "goog:chromeOptions": { "binary": CHROMIUM, "args": args }
        });
        let serde_json::Value::Object(capabilities) = capabilities else {
            unreachable!("a JSON object literal")
        };
        ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&self.url)
            .await
            .expect("a Chromium session through chromedriver")
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn screenshot_path() -> PathBuf {
    let profile_dir = connector_tests::library_path("huggingface-plugin")
        .parent()
        .expect("profile dir")
        .to_path_buf();
    let dir = profile_dir
        .parent()
        .expect("target dir")
        .join("screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("browser-demo.png")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_sign_in_in_headless_chromium() {
    let driver = Driver::start().await;
    let screenshot = screenshot_path();
    // The demo exactly as the README runs it: default plugin directory (next to the binary).
    let host = Host::spawn(&["demo", "--listen", "127.0.0.1:0"], &[]).expect("demo starts");
    let profile = tempfile::tempdir().unwrap();
    let browser = driver.browser(profile.path()).await;

    let outcome = click_through(&browser, &host.url).await;
    // A picture of wherever the browser ended up, even when an assertion below fails.
    if let Ok(png) = browser.screenshot().await {
        std::fs::write(&screenshot, png).unwrap();
    }
    let _ = browser.close().await;
    let (banner, name, avatar_width) = outcome.unwrap_or_else(|e| {
        panic!(
            "{e}\nscreenshot: {}\nbroker log:\n{}",
            screenshot.display(),
            host.stderr.lock().unwrap()
        )
    });
    assert_eq!(banner, host_example::pages::DEMO_BANNER);
    assert_eq!(name, "Ada Lovelace");
    assert!(avatar_width > 0, "the avatar image did not load");
    println!("screenshot: {}", screenshot.display());
    host.stop();
}

/// `/` → click "Sign in with Hugging Face" → sandbox consent (auto-approved) → profile.
/// Returns the banner text, the profile name and the avatar's natural width.
async fn click_through(browser: &Client, base: &str) -> Result<(String, String, u64), String> {
    let step = |what: &'static str| move |e: fantoccini::error::CmdError| format!("{what}: {e}");
    browser.goto(base).await.map_err(step("open /"))?;
    let banner = browser
        .find(Locator::Css(".demo"))
        .await
        .map_err(step("demo banner"))?;
    let banner = banner.text().await.map_err(step("banner text"))?;
    let button = browser
        .find(Locator::Css("a.signin[data-connector='huggingface']"))
        .await
        .map_err(step("the Hugging Face button"))?;
    let label = button.text().await.map_err(step("button text"))?;
    if !label.contains("Sign in with Hugging Face") {
        return Err(format!("button says {label:?}"));
    }
    button.click().await.map_err(step("click"))?;
    let name = browser
        .wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::Css(".profile .name"))
        .await
        .map_err(step("the profile page"))?;
    let name = name.text().await.map_err(step("name"))?;
    // Wait for the avatar (served by the sandbox) to finish loading.
    let script = "const i = document.querySelector('img.avatar'); \
                  return i && i.complete ? i.naturalWidth : -1;";
    let mut width = -1;
    for _ in 0..50 {
        let value = browser
            .execute(script, vec![])
            .await
            .map_err(step("avatar"))?;
        width = value.as_i64().unwrap_or(-1);
        if width >= 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok((banner, name, width.max(0) as u64))
}
