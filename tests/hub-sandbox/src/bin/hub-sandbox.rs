//! `hub-sandbox`: runs a Hub OAuth sandbox until Ctrl-C.

use std::io::Write as _;
use std::net::SocketAddr;

use clap::Parser;
use hub_sandbox::{
    DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, HubSandbox, SandboxClient, SandboxConfig,
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
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "listening on {}", sandbox.endpoint())?;
    stdout.flush()?;
    drop(stdout);
    tokio::signal::ctrl_c().await?;
    sandbox.shutdown().await;
    Ok(())
}
