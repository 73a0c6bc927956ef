//! One contender's sign-ins against the sandbox, measured in this process (the contenders
//! themselves are in [`crate::contenders`]).
//!
//! Only the callback half of a sign-in is timed (token POST + userinfo GET + mapping): the
//! authorization URIs and the browser's consent at the sandbox are prepared before each batch,
//! outside the measured phase, on the same terms for every contender (Logto's harness included).
//! Sign-ins run in batches so that at most one batch of prepared sign-ins is held at once:
//! the memory figure is then the connector's, not the harness's.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use futures_util::StreamExt as _;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::usage;

/// What to run (`connector-bench worker`'s options).
#[derive(Debug, Clone, clap::Args)]
pub struct Workload {
    /// The sandbox's base URL.
    #[arg(long)]
    pub endpoint: String,
    /// Sign-ins in flight at once.
    #[arg(long)]
    pub concurrency: usize,
    /// Measured sign-ins.
    #[arg(long)]
    pub count: usize,
    /// Unmeasured sign-ins first (JIT, connection pools, lazy statics).
    #[arg(long)]
    pub warmup: usize,
    /// Sign-ins prepared and run per batch.
    #[arg(long)]
    pub batch: usize,
}

impl Workload {
    /// `n` sign-ins started at once, in one batch, after as many unmeasured ones.
    pub fn at_once(endpoint: &str, n: usize) -> Self {
        Self {
            endpoint: endpoint.into(),
            concurrency: n,
            count: n,
            warmup: n,
            batch: n,
        }
    }
}

/// One contender's result; Logto's harness prints the same JSON.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Sample {
    /// Completed sign-ins (the user's id came back).
    pub ok: usize,
    /// Failed sign-ins.
    pub errors: usize,
    /// The first failure, to tell what went wrong.
    pub first_error: Option<String>,
    /// Wall time of the measured phases, in seconds.
    pub wall_secs: f64,
    /// CPU time (user + system, whole process) of the measured phases, in microseconds.
    pub cpu_us: f64,
    /// Context switches of the whole process in the measured phases.
    #[serde(default)]
    pub switches: u64,
    /// Memory at the end of the run.
    pub memory: usage::Memory,
}

impl Sample {
    /// CPU per completed sign-in, in microseconds.
    pub fn cpu_per_sign_in_us(&self) -> f64 {
        self.cpu_us / self.ok.max(1) as f64
    }

    /// Context switches per completed sign-in.
    pub fn switches_per_sign_in(&self) -> f64 {
        self.switches as f64 / self.ok.max(1) as f64
    }

    /// Completed sign-ins per second of wall time.
    pub fn rate(&self) -> f64 {
        self.ok as f64 / self.wall_secs.max(f64::MIN_POSITIVE)
    }
}

/// A contender that finishes prepared sign-ins.
pub trait Contender: Send + Sync + 'static {
    /// A started sign-in: what the callback needs.
    type Prepared: Send + Sync + 'static;

    /// Starts a sign-in up to the browser's return to the redirect URI (not measured).
    fn prepare(&self, browser: &Browser, n: usize) -> impl Future<Output = Self::Prepared> + Send;

    /// The measured part: exchanges the code and fetches the user; returns the user's id.
    fn finish(
        &self,
        prepared: &Self::Prepared,
    ) -> impl Future<Output = Result<String, String>> + Send;
}

/// The user's browser: follows an authorization URI to the sandbox, which approves with a 303.
#[derive(Debug, Clone)]
pub struct Browser {
    http: reqwest::Client,
}

impl Default for Browser {
    fn default() -> Self {
        Self::new()
    }
}

impl Browser {
    pub fn new() -> Self {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("fixed client settings");
        Self { http }
    }

    /// The callback parameters the provider sends to the redirect URI (`code`, `state`).
    pub async fn approve(&self, uri: &str) -> Value {
        let response = self.http.get(uri).send().await.expect("sandbox answers");
        let location = response
            .headers()
            .get("location")
            .and_then(|l| l.to_str().ok())
            .unwrap_or_else(|| panic!("no 303 from {uri}: {}", response.status()));
        let url = url::Url::parse(location).expect("absolute redirect");
        Value::Object(
            url.query_pairs()
                .map(|(k, v)| (k.into(), Value::String(v.into())))
                .collect(),
        )
    }
}

/// Runs `workload` with `contender` and measures it.
pub async fn run<C: Contender>(contender: Arc<C>, workload: &Workload) -> Sample {
    let browser = Browser::new();
    let mut measured = Sample::default();
    let mut warmup = Sample::default();
    let mut left = workload.warmup;
    while left > 0 {
        let n = left.min(workload.batch);
        batch(&contender, &browser, workload, n, &mut warmup).await;
        left -= n;
    }
    let mut left = workload.count;
    while left > 0 {
        let n = left.min(workload.batch);
        batch(&contender, &browser, workload, n, &mut measured).await;
        left -= n;
    }
    measured.memory = usage::memory("self").unwrap_or_default();
    measured
}

/// Prepares `n` sign-ins (unmeasured), then finishes them `concurrency` at a time (measured).
async fn batch<C: Contender>(
    contender: &Arc<C>,
    browser: &Browser,
    workload: &Workload,
    n: usize,
    sample: &mut Sample,
) {
    let prepared: Vec<C::Prepared> = futures_util::stream::iter(0..n)
        .map(|i| contender.prepare(browser, i))
        .buffered(16)
        .collect()
        .await;
    let prepared = Arc::new(prepared);
    let next = Arc::new(AtomicUsize::new(0));
    let (cpu, switches) = (usage::self_cpu(), usage::self_switches());
    let start = Instant::now();
    // One task per slot, so that the client's work spreads over the runtime's threads.
    let workers: Vec<_> = (0..workload.concurrency.min(n))
        .map(|_| {
            let (contender, prepared, next) = (contender.clone(), prepared.clone(), next.clone());
            tokio::spawn(async move {
                let mut outcomes = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(item) = prepared.get(i) else { break };
                    outcomes.push(contender.finish(item).await);
                }
                outcomes
            })
        })
        .collect();
    let mut outcomes = Vec::with_capacity(n);
    for worker in workers {
        outcomes.extend(worker.await.expect("sign-in worker"));
    }
    sample.wall_secs += start.elapsed().as_secs_f64();
    sample.cpu_us += (usage::self_cpu() - cpu).as_secs_f64() * 1e6;
    sample.switches += usage::self_switches() - switches;
    for outcome in outcomes {
        match outcome {
            Ok(id) if !id.is_empty() => sample.ok += 1,
            Ok(_) => record_error(sample, "empty user id".into()),
            Err(e) => record_error(sample, e),
        }
    }
}

fn record_error(sample: &mut Sample, error: String) {
    sample.errors += 1;
    sample.first_error.get_or_insert(error);
}
