//! `host-example`: the command line of the sample broker (the broker itself is the library).

use std::io::Write as _;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use host_example::logging::{self, LogFormat};
use host_example::{Broker, BrokerConfig, BrokerOptions, demo, list, reload};
use tokio::net::TcpListener;

#[derive(Parser)]
#[command(
    version,
    about = "A sample identity broker that loads social connector plugins"
)]
struct Cli {
    /// Log lines on stderr as text (coloured on a terminal unless NO_COLOR is set) or JSON.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Load every plugin in a directory and list the connectors and the refused files.
    List {
        /// The plugin directory [default: the directory of this executable].
        #[arg(long)]
        plugins: Option<PathBuf>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        /// How long loading one plugin file in the probe process may take.
        #[arg(long, default_value = "10s", value_parser = parse_seconds)]
        plugin_probe_timeout: Seconds,
    },
    /// Serve the connectors a config file asks for.
    Serve {
        /// The plugin directory.
        #[arg(long)]
        plugins: PathBuf,
        /// The TOML config file (public_url and [[connectors]]).
        #[arg(long)]
        config: PathBuf,
        #[command(flatten)]
        common: Common,
    },
    /// Serve the Hugging Face connector against an embedded Hub sandbox: no account needed.
    Demo {
        /// The plugin directory [default: the directory of this executable].
        #[arg(long)]
        plugins: Option<PathBuf>,
        #[command(flatten)]
        common: Common,
    },
    /// Loads one plugin file in this (child) process and reports how it went: the probe that
    /// the broker runs before it maps a file itself.
    #[command(name = reload::PROBE_SUBCOMMAND, hide = true)]
    ProbePlugin { file: PathBuf },
}

#[derive(clap::Args)]
struct Common {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:3000")]
    listen: SocketAddr,
    /// Where loaded plugin copies are kept [default: <plugins>/.loaded].
    #[arg(long)]
    state_dir: Option<PathBuf>,
    /// Load from a plugin directory (and files) that group or others may write to; refused
    /// by default, since anyone who can write there can run code in this broker.
    #[arg(long)]
    allow_writable_plugin_dir: bool,
    /// How long loading one new plugin build in the probe process may take before it is
    /// killed and the file refused ("timed out while loading").
    #[arg(long, default_value = "10s", value_parser = parse_seconds)]
    plugin_probe_timeout: Seconds,
}

/// A duration given as `10s`, `1.5s` or `10` (seconds).
#[derive(Clone, Copy)]
struct Seconds(std::time::Duration);

impl From<Seconds> for std::time::Duration {
    fn from(s: Seconds) -> Self {
        s.0
    }
}

fn parse_seconds(text: &str) -> Result<Seconds, String> {
    let number = text.strip_suffix('s').unwrap_or(text);
    match number.parse::<f64>() {
        Ok(secs) if secs > 0.0 && secs.is_finite() => {
            Ok(Seconds(std::time::Duration::from_secs_f64(secs)))
        }
        _ => Err(format!(
            "`{text}` is not a positive number of seconds (e.g. 10s)"
        )),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Before logging starts: the probe's only output is its result line.
    if let Command::ProbePlugin { file } = &cli.command {
        return connector_api::probe::run_child(file);
    }
    logging::init(cli.log_format);
    match cli.command {
        Command::List {
            plugins,
            json,
            plugin_probe_timeout,
        } => list::run(&plugin_dir(plugins), json, plugin_probe_timeout.into()),
        Command::ProbePlugin { .. } => unreachable!("handled before logging starts"),
        Command::Serve {
            plugins,
            config,
            common,
        } => block_on(serve(plugins, config, common)),
        Command::Demo { plugins, common } => block_on(run_demo(plugin_dir(plugins), common)),
    }
}

fn block_on(run: impl Future<Output = Result<(), String>>) -> ExitCode {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => return fail(&format!("cannot start the async runtime: {e}")),
    };
    match runtime.block_on(run) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => fail(&message),
    }
}

fn fail(message: &str) -> ExitCode {
    eprintln!("host-example: {message}");
    ExitCode::FAILURE
}

async fn serve(plugins: PathBuf, config: PathBuf, common: Common) -> Result<(), String> {
    let config = BrokerConfig::load(&config).map_err(|e| e.to_string())?;
    let listener = bind(common.listen).await?;
    run(listener, config, options(plugins, &common, false)).await
}

async fn run_demo(plugins: PathBuf, common: Common) -> Result<(), String> {
    let listener = bind(common.listen).await?;
    let public_url = format!("http://{}", reachable(listener.local_addr().map_err(io)?));
    let hub = demo::start_hub().await.map_err(io)?;
    tracing::warn!(
        hub = %hub.endpoint(),
        "DEMO: signing in against the local Hub sandbox, not huggingface.co (no account needed)"
    );
    let config = demo::config(&public_url, &hub.endpoint());
    // `hub` lives until the broker stops.
    let served = run(listener, config, options(plugins, &common, true)).await;
    hub.shutdown().await;
    served
}

fn options(plugins: PathBuf, common: &Common, demo: bool) -> BrokerOptions {
    BrokerOptions {
        state_dir: common.state_dir.clone(),
        demo,
        allow_writable_plugin_dir: common.allow_writable_plugin_dir,
        probe: Some(reload::probe_command().with_timeout(common.plugin_probe_timeout.into())),
        ..BrokerOptions::new(plugins)
    }
}

async fn run(
    listener: TcpListener,
    config: BrokerConfig,
    options: BrokerOptions,
) -> Result<(), String> {
    let plugins = options.plugins.display().to_string();
    // Connects to the config's session store (Redis), then loads the plugins on a blocking
    // thread (hashing, copying and loading them is blocking file work).
    let broker = Broker::open(config, options)
        .await
        .map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(io)?;
    // On stdout, for people and for tests that wait for it. A closed stdout (a supervisor that
    // stopped reading) must not stop the broker, so write errors are ignored, unlike `println!`.
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "host-example listening on http://{addr}");
    let _ = writeln!(
        stdout,
        "public URL {} (plugins from {plugins})",
        broker.config().public_url
    );
    let _ = write!(stdout, "{}", next_steps(&broker));
    let _ = stdout.flush();
    drop(stdout);
    broker.spawn_sighup_reloader().map_err(io)?;
    broker.serve(listener, shutdown_signal()).await.map_err(io)
}

/// What the person who started the broker can do now: the connectors it serves and the page
/// to open.
fn next_steps(broker: &Broker) -> String {
    let generation = broker.current();
    let connectors: Vec<String> = generation
        .instances
        .iter()
        .map(|i| format!("{} ({})", i.id, i.metadata.english_name()))
        .collect();
    let public_url = &broker.config().public_url;
    let mut text = format!("connectors: {}\n", connectors.join(", "));
    if let Some(first) = generation.instances.first() {
        let name = first.metadata.english_name();
        text += &format!("next: open {public_url}/ in a browser and press \"Sign in with {name}\"");
        if broker.is_demo() {
            text += " (the local Hub sandbox signs you in: no account needed)";
        }
        text.push('\n');
    }
    text
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, String> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen on {addr}: {e}"))
}

/// A wildcard listen address is reached through loopback.
fn reachable(addr: SocketAddr) -> SocketAddr {
    match addr.ip().is_unspecified() {
        true => SocketAddr::from((Ipv4Addr::LOCALHOST, addr.port())),
        false => addr,
    }
}

/// Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let terminate = async {
        match signal(SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate => {}
    }
    tracing::info!("shutting down");
}

fn io(e: std::io::Error) -> String {
    e.to_string()
}

/// The given directory, else the one holding this executable (where cargo puts the plugins).
fn plugin_dir(given: Option<PathBuf>) -> PathBuf {
    given.unwrap_or_else(|| {
        std::env::current_exe()
            .ok()
            .and_then(|exe| exe.parent().map(Path::to_path_buf))
            .unwrap_or_else(|| PathBuf::from("."))
    })
}
