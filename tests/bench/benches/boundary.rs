//! The plugin boundary's cost: the same calls in-process (the plugin's rlib) and through the
//! loaded cdylib (`connector_api::Plugin`), side by side.
//!
//! `user_info` runs one sign-in at a time against an in-process Hub sandbox (on its own
//! runtime), so its figure is a latency: token + userinfo over keep-alive, plus the mapping.
//! Authorization URIs and the sandbox's consent are prepared outside the timed part.

use std::sync::Arc;
use std::time::{Duration, Instant};

use connector_api::plugin::Connector as _;
use connector_api::{Connector, Plugin};
use connector_bench::contenders::{plugin_config, request};
use connector_bench::signin::Browser;
use connector_bench::{CLIENT_ID, CLIENT_SECRET, paths};
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use hub_sandbox::{HubSandbox, SandboxClient, SandboxConfig};
use huggingface_plugin::HuggingFace;
use serde_json::Value;
use tokio::runtime::Runtime;

/// Both sides of the boundary, configured alike.
struct Sides {
    rlib: Arc<HuggingFace>,
    cdylib: Connector,
}

fn sides(endpoint: &str) -> Sides {
    if let Err(e) = paths::ensure_built(&["huggingface-plugin"]) {
        panic!("{e}");
    }
    let plugin = Plugin::load(&paths::library("huggingface-plugin")).expect("the plugin loads");
    Sides {
        rlib: Arc::new(HuggingFace::create(plugin_config(endpoint)).expect("valid config")),
        cdylib: plugin
            .create(&plugin_config(endpoint))
            .expect("valid config"),
    }
}

/// A sandbox on a runtime of its own, which keeps serving while the benchmark runs.
fn sandbox() -> (Runtime, HubSandbox) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let config = SandboxConfig {
        clients: vec![SandboxClient {
            client_id: CLIENT_ID.into(),
            client_secret: Some(CLIENT_SECRET.into()),
            redirect_uris: Vec::new(),
        }],
        ..SandboxConfig::default()
    };
    let hub = runtime.block_on(HubSandbox::start(config)).unwrap();
    (runtime, hub)
}

fn authorization_uri(c: &mut Criterion) {
    let sides = sides("http://127.0.0.1:9");
    let mut group = c.benchmark_group("authorization_uri");
    group.bench_function("rlib", |b| {
        b.iter_batched(
            || request(1),
            |r| sides.rlib.authorization_uri(r).unwrap(),
            BatchSize::SmallInput,
        )
    });
    group.bench_function("cdylib", |b| {
        b.iter_batched(
            || request(1),
            |r| sides.cdylib.authorization_uri(r).unwrap(),
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

/// `n` started sign-ins (callback parameters and session), approved at the sandbox.
async fn started(connector: &Connector, n: u64) -> Vec<(Value, Value)> {
    let browser = Browser::new();
    let mut out = Vec::with_capacity(n as usize);
    for i in 0..n {
        let auth = connector.authorization_uri(request(i as usize)).unwrap();
        out.push((browser.approve(&auth.uri).await, auth.session));
    }
    out
}

fn user_info(c: &mut Criterion) {
    let (_sandbox_runtime, hub) = sandbox();
    let sides = sides(&hub.endpoint());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("user_info");
    group.bench_function("rlib", |b| {
        b.iter_custom(|iters| {
            let prepared = runtime.block_on(started(&sides.cdylib, iters));
            let rlib = sides.rlib.clone();
            let start = Instant::now();
            // Spawned, as the plugin glue spawns it on the plugin's runtime: polled on a worker
            // next to the connections, not on the thread that blocks.
            let run = runtime.spawn(async move {
                for (callback, session) in prepared {
                    rlib.clone().user_info(callback, session).await.unwrap();
                }
            });
            runtime.block_on(run).unwrap();
            start.elapsed()
        })
    });
    group.bench_function("cdylib", |b| {
        b.iter_custom(|iters| {
            let prepared = runtime.block_on(started(&sides.cdylib, iters));
            let start = Instant::now();
            runtime.block_on(async {
                for (callback, session) in &prepared {
                    sides.cdylib.user_info(callback, session).await.unwrap();
                }
            });
            start.elapsed()
        })
    });
    group.finish();
}

fn config() -> Criterion {
    // Short: the machine is shared, and `.ci/bench` should finish in a few minutes.
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}

criterion_group! {
    name = benches;
    config = config();
    targets = authorization_uri, user_info
}
criterion_main!(benches);
