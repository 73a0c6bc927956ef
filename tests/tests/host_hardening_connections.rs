//! Slow and idle connections: clients that connect and stall (headers never finished, a body
//! that never arrives, a kept-alive connection left idle) are closed by the server's timers, at
//! most `max_connections` are served at once, and once the stalled ones are gone everyone is
//! served again, without a restart. Timeouts are configured short (hundreds of ms); the margins
//! are generous.

mod host_support;

use std::time::{Duration, Instant};

use host_example::ServerLimits;
use host_support::{TestBroker, echo_connector, echo_dir, http};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const SHORT: Duration = Duration::from_millis(300);

async fn broker(limits: ServerLimits) -> TestBroker {
    TestBroker::start_with(echo_dir(), &echo_connector("echo", "Hello", None), |o| {
        o.server = Some(limits);
    })
    .await
}

fn limits() -> ServerLimits {
    ServerLimits {
        header_timeout: SHORT,
        body_timeout: SHORT,
        idle_timeout: Duration::from_secs(30),
        max_connections: 20,
    }
}

fn addr(b: &TestBroker) -> String {
    b.url.trim_start_matches("http://").to_owned()
}

/// Reads until the server closes the connection; what it sent and when it closed, or `None`
/// if it was still open after `within`.
async fn until_closed(stream: &mut TcpStream, within: Duration) -> Option<(Vec<u8>, Instant)> {
    let mut received = Vec::new();
    let deadline = tokio::time::Instant::now() + within;
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some((received, Instant::now())),
            Ok(Ok(n)) => received.extend_from_slice(&buf[..n]),
        }
    }
}

/// Socket descriptors of this test process.
fn open_sockets() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter(|target| target.to_string_lossy().starts_with("socket:"))
        .count()
}

/// 200 connections that never finish their headers, against a cap of 20: no more than 20 are
/// accepted at a time, each is closed after the header timeout (not before), and a normal
/// client is served afterwards.
#[tokio::test]
async fn stalled_headers_are_closed_and_everyone_is_served_again() {
    const STALLED: usize = 200;
    let b = broker(limits()).await;
    let (status, _) =
        host_support::status_json(http().get(b.at("/healthz")).send().await.unwrap()).await;
    assert_eq!(status, 200);
    let before = open_sockets();
    let started = Instant::now();
    let mut stalled = Vec::new();
    for _ in 0..STALLED {
        let mut s = TcpStream::connect(addr(&b)).await.unwrap();
        s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            .await
            .unwrap();
        stalled.push(s);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let accepted = open_sockets().saturating_sub(before + STALLED);
    // Slack for what other tests of this file open meanwhile.
    assert!(
        accepted <= 20 + 10,
        "{accepted} connections accepted at once"
    );

    // 10 rounds of the cap, 300 ms each: 3 s; allowed 20 s.
    let mut closed_after = Vec::new();
    for s in &mut stalled {
        let (_, at) = until_closed(s, Duration::from_secs(20))
            .await
            .expect("a connection that never finished its headers is still open after 20 s");
        closed_after.push(at - started);
    }
    let first = closed_after.iter().min().unwrap();
    assert!(
        *first >= Duration::from_millis(250),
        "closed after {first:?}"
    );
    drop(stalled);
    let r = http().get(b.at("/healthz")).send().await.unwrap();
    assert_eq!(
        r.status(),
        200,
        "served again once the stalled connections are gone"
    );
}

/// A request declaring a body and sending 10 bytes of it is cut after the body timeout; one
/// declaring 10 GB is refused at once (the body limit).
#[tokio::test]
async fn a_body_that_never_arrives_is_cut_after_the_body_timeout() {
    let b = broker(limits()).await;
    for (length, at_least, at_most) in [
        ("1000", Duration::from_millis(250), Duration::from_secs(10)),
        ("10000000000", Duration::ZERO, Duration::from_secs(10)),
    ] {
        let mut s = TcpStream::connect(addr(&b)).await.unwrap();
        let head = format!(
            "POST /callback/echo HTTP/1.1\r\nHost: x\r\nContent-Type: \
             application/x-www-form-urlencoded\r\nContent-Length: {length}\r\n\r\nstate=abcd"
        );
        let sent = Instant::now();
        s.write_all(head.as_bytes()).await.unwrap();
        let (_, at) = until_closed(&mut s, at_most)
            .await
            .unwrap_or_else(|| panic!("Content-Length {length}: still open after {at_most:?}"));
        assert!(
            at - sent >= at_least,
            "{length}: closed after {:?}",
            at - sent
        );
    }
}

/// A kept-alive connection left idle after its answer is closed after the idle timeout.
#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout() {
    let b = broker(ServerLimits {
        header_timeout: Duration::from_secs(30),
        idle_timeout: SHORT,
        ..limits()
    })
    .await;
    let mut s = TcpStream::connect(addr(&b)).await.unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    while !answer.ends_with(b"}") {
        let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf))
            .await
            .expect("an answer")
            .unwrap();
        assert!(n > 0, "closed before answering");
        answer.extend_from_slice(&buf[..n]);
    }
    let answered = Instant::now();
    assert!(
        answer.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
    let (rest, at) = until_closed(&mut s, Duration::from_secs(10))
        .await
        .expect("an idle kept-alive connection is still open after 10 s");
    assert!(rest.is_empty());
    assert!(
        at - answered >= Duration::from_millis(250),
        "closed after {:?}",
        at - answered
    );
}

/// The config file's `[server]` table reaches the server.
#[tokio::test]
async fn the_server_table_configures_the_limits() {
    let rest = format!(
        "[server]\nheader_timeout_ms = 300\nmax_connections = 5\n{}",
        echo_connector("echo", "Hello", None)
    );
    let b = TestBroker::open_with(echo_dir(), &rest, |_| None, |_| {})
        .await
        .unwrap();
    let limits = b.broker.server_limits();
    assert_eq!((limits.header_timeout, limits.max_connections), (SHORT, 5));
    let mut s = TcpStream::connect(addr(&b)).await.unwrap();
    s.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
    assert!(
        until_closed(&mut s, Duration::from_secs(10))
            .await
            .is_some()
    );
}

/// Out of file descriptors (`prlimit --nofile=64`, 200 connections that stall): the accept
/// error is logged once per period with its count, not once a second, and once the stalled
/// connections time out the broker serves again.
#[tokio::test]
async fn accept_errors_are_logged_rarely_and_the_broker_recovers() {
    let dir = echo_dir();
    let config = dir.path().join("broker.toml");
    let text = format!(
        "public_url = \"http://127.0.0.1:1\"\n[server]\nheader_timeout_ms = 3000\n{}",
        echo_connector("echo", "Hello", None)
    );
    std::fs::write(&config, text).unwrap();
    let mut command = std::process::Command::new("prlimit");
    command
        .arg("--nofile=64:64")
        .arg(host_support::host_example_bin())
        .args(["serve", "--listen", "127.0.0.1:0", "--plugins"])
        .arg(dir.path())
        .arg("--config")
        .arg(&config);
    let host = host_support::Host::spawn_command(command, &[]).expect("the broker starts");
    let addr = host.url.trim_start_matches("http://").to_owned();
    let mut stalled = Vec::new();
    for _ in 0..200 {
        let mut s = TcpStream::connect(&addr).await.unwrap();
        s.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
        stalled.push(s);
    }
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let lines = |log: &str| {
        log.lines()
            .filter(|l| l.contains("cannot accept connections"))
            .count()
    };
    let log = host.stderr.lock().unwrap().clone();
    assert_eq!(lines(&log), 1, "{log}");
    assert!(log.contains("count=1"), "{log}");
    drop(stalled);
    let served = host_support::eventually(Duration::from_secs(20), || async {
        let r = http()
            .get(format!("{}/healthz", host.url))
            .send()
            .await
            .ok()?;
        (r.status() == 200).then_some(())
    })
    .await;
    assert!(served.is_some(), "not served again");
    host.stop();
}
