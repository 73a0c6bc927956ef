//! `hub-sandbox`: runs a Hub OAuth sandbox until Ctrl-C.

use std::io::Write as _;
use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use hub_sandbox::{
    DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, Fault, HubSandbox, Route, SandboxClient,
    SandboxConfig,
};

/// A loopback server that behaves as huggingface.co's OAuth endpoints.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Loopback address to listen on (port 0 = ephemeral).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Client id of the registered OAuth app.
    #[arg(long, default_value = DEFAULT_CLIENT_ID)]
    client_id: String,
    /// Client secret of the app.
    #[arg(long, default_value = DEFAULT_CLIENT_SECRET, conflicts_with = "public")]
    client_secret: String,
    /// Register a public client (no secret, PKCE) instead.
    #[arg(long)]
    public: bool,
    /// Registered redirect URI (repeatable); none accepts any.
    #[arg(long = "redirect-uri")]
    redirect_uris: Vec<String>,
    /// Delay every OAuth answer (token and userinfo) by this many milliseconds, as a distant
    /// provider would (benchmarks).
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let client = SandboxClient {
        client_id: args.client_id,
        client_secret: (!args.public).then_some(args.client_secret),
        redirect_uris: args.redirect_uris,
    };
    let config = SandboxConfig {
        clients: vec![client],
        ..SandboxConfig::default()
    };
    let sandbox = HubSandbox::start_on(args.listen, config).await?;
    add_latency(&sandbox, Duration::from_millis(args.latency_ms));
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "listening on {}", sandbox.endpoint())?;
    stdout.flush()?;
    drop(stdout);
    tokio::signal::ctrl_c().await?;
    sandbox.shutdown().await;
    Ok(())
}

/// Delays the OAuth answers of a sign-in (token and userinfo) by `latency`; zero changes nothing.
fn add_latency(sandbox: &HubSandbox, latency: Duration) {
    if !latency.is_zero() {
        for route in [Route::Token, Route::Userinfo] {
            sandbox.set_fault(route, Fault::Stall(latency));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;

    #[tokio::test]
    async fn latency_delays_token_and_userinfo_but_not_authorize() {
        let sandbox = HubSandbox::start(SandboxConfig::default()).await.unwrap();
        add_latency(&sandbox, Duration::from_millis(150));
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let timed = async |request: reqwest::RequestBuilder| {
            let start = Instant::now();
            let status = request.send().await.unwrap().status();
            (status.as_u16(), start.elapsed())
        };
        let endpoint = sandbox.endpoint();
        let (_, userinfo) = timed(client.get(format!("{endpoint}/oauth/userinfo"))).await;
        let (_, token) = timed(client.post(format!("{endpoint}/oauth/token"))).await;
        assert!(userinfo >= Duration::from_millis(150), "{userinfo:?}");
        assert!(token >= Duration::from_millis(150), "{token:?}");
        let authorize = format!(
            "{endpoint}/oauth/authorize?response_type=code&client_id={DEFAULT_CLIENT_ID}\
             &redirect_uri=http://localhost/cb&scope=profile&state=s"
        );
        let (status, took) = timed(client.get(authorize)).await;
        assert_eq!(status, 303);
        assert!(took < Duration::from_millis(150), "{took:?}");
    }

    #[tokio::test]
    async fn zero_latency_arms_no_fault() {
        let sandbox = HubSandbox::start(SandboxConfig::default()).await.unwrap();
        add_latency(&sandbox, Duration::ZERO);
        let start = Instant::now();
        let response = reqwest::get(format!("{}/oauth/userinfo", sandbox.endpoint()))
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            401,
            "no token: the normal answer, at once"
        );
        assert!(start.elapsed() < Duration::from_millis(150));
    }
}
