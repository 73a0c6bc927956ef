//! The figures of one run, and `BENCHMARKS.md` made from them.

use std::fmt::Write as _;

use crate::host::Store;
use crate::load::LoadSample;
use crate::machine::Machine;
use crate::signin::Sample;

/// The three contenders of a side-by-side run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Who {
    /// The Hugging Face plugin, loaded from its cdylib.
    Plugin,
    /// Logto's `@logto/connector-huggingface` on Node.
    Logto,
    /// A bare reqwest client: the two requests of a sign-in and nothing else.
    Floor,
    /// The plugin in-process (rlib): its own cost without the boundary's.
    Rlib,
}

impl Who {
    /// Round `r` runs the contenders in this order (rotated, so none is always first).
    pub fn order(round: usize) -> [Who; 4] {
        let mut all = [Who::Plugin, Who::Logto, Who::Floor, Who::Rlib];
        all.rotate_left(round % 4);
        all
    }

    pub fn name(self) -> &'static str {
        match self {
            Who::Plugin => "plugin",
            Who::Logto => "logto",
            Who::Floor => "floor",
            Who::Rlib => "rlib",
        }
    }
}

/// Samples of each contender, one per round.
#[derive(Debug, Clone, Default)]
pub struct Rounds {
    pub plugin: Vec<Sample>,
    pub logto: Vec<Sample>,
    pub floor: Vec<Sample>,
    pub rlib: Vec<Sample>,
}

impl Rounds {
    pub fn push(&mut self, who: Who, sample: Sample) {
        match who {
            Who::Plugin => self.plugin.push(sample),
            Who::Logto => self.logto.push(sample),
            Who::Floor => self.floor.push(sample),
            Who::Rlib => self.rlib.push(sample),
        }
    }

    /// Median of `f` over `who`'s rounds.
    fn median(&self, who: Who, f: impl Fn(&Sample) -> f64) -> f64 {
        median(self.of(who).iter().map(f).collect())
    }

    /// Median over the rounds of `f(a) / f(b)`, pairing the runs of one round (same conditions).
    fn ratio(&self, a: Who, b: Who, f: impl Fn(&Sample) -> f64) -> f64 {
        let pairs = self.of(a).iter().zip(self.of(b));
        median(pairs.map(|(x, y)| f(x) / f(y)).collect())
    }

    fn of(&self, who: Who) -> &[Sample] {
        match who {
            Who::Plugin => &self.plugin,
            Who::Logto => &self.logto,
            Who::Floor => &self.floor,
            Who::Rlib => &self.rlib,
        }
    }

    fn errors(&self) -> usize {
        [&self.plugin, &self.logto, &self.floor, &self.rlib]
            .iter()
            .flat_map(|s| s.iter())
            .map(|s| s.errors)
            .sum()
    }
}

/// Criterion medians, in nanoseconds per call.
#[derive(Debug, Clone, Copy, Default)]
pub struct Micro {
    pub authorization_uri_rlib: f64,
    pub authorization_uri_cdylib: f64,
    pub user_info_rlib: f64,
    pub user_info_cdylib: f64,
}

/// The host rows: `host-example serve` driven over HTTP, or why they are missing.
#[derive(Debug, Clone)]
pub enum HostFigures {
    NotMeasured(String),
    Measured(HostRounds),
}

/// The two hosts' samples, one per round each: pending sign-ins in memory and in Redis.
#[derive(Debug, Clone, Default)]
pub struct HostRounds {
    pub memory: Vec<HostSample>,
    pub redis: Vec<HostSample>,
}

impl HostRounds {
    pub fn push(&mut self, store: Store, sample: HostSample) {
        match store {
            Store::Memory => self.memory.push(sample),
            Store::Redis => self.redis.push(sample),
        }
    }

    /// Median over the rounds of `f(redis) / f(memory)`, pairing the hosts of one round.
    fn redis_over_memory(&self, f: impl Fn(&HostSample) -> f64) -> f64 {
        self.redis_by_memory(&f, &f)
    }

    /// Median over the rounds of `r(redis) / m(memory)`, pairing the hosts of one round.
    fn redis_by_memory(
        &self,
        r: impl Fn(&HostSample) -> f64,
        m: impl Fn(&HostSample) -> f64,
    ) -> f64 {
        let pairs = self.redis.iter().zip(&self.memory);
        median(pairs.map(|(x, y)| r(x) / m(y)).collect())
    }
}

fn median_of(samples: &[HostSample], f: impl Fn(&HostSample) -> f64) -> f64 {
    median(samples.iter().map(f).collect())
}

/// One round of sign-ins through `host-example serve`.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct HostSample {
    pub ok: usize,
    pub errors: usize,
    pub first_error: Option<String>,
    /// The host process's CPU per completed sign-in (`/sign-in` + `/callback`), in µs.
    pub cpu_per_sign_in_us: f64,
    pub rate: f64,
    /// The host's RSS after the round, in KiB.
    pub rss_kib: u64,
    /// With pending sign-ins in Redis: `redis-server`'s own CPU per completed sign-in, in µs
    /// (a separate process, not in [`Self::cpu_per_sign_in_us`]).
    #[serde(default)]
    pub redis_cpu_per_sign_in_us: Option<f64>,
}

/// Everything one run measured.
#[derive(Debug, Clone)]
pub struct Report {
    pub machine: Machine,
    pub command: String,
    pub rounds: usize,
    pub concurrency: usize,
    pub count: usize,
    /// Unmeasured sign-ins each contender runs first.
    pub warmup: usize,
    pub latency_ms: u64,
    pub latency_count: usize,
    pub main: Rounds,
    pub latency: Rounds,
    pub load_one: Vec<LoadSample>,
    pub load_many: Vec<LoadSample>,
    /// The same discoveries with each file probed in a child process first.
    pub probed_one: Vec<LoadSample>,
    pub probed_many: Vec<LoadSample>,
    pub logto_load_ms: Vec<f64>,
    pub micro: Option<Micro>,
    pub host: HostFigures,
    pub duration_secs: f64,
}

pub fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

fn met(ok: bool) -> &'static str {
    if ok { "yes" } else { "**no**" }
}

fn mib(kib: f64) -> f64 {
    kib / 1024.0
}

impl Report {
    /// `BENCHMARKS.md`.
    pub fn markdown(&self) -> String {
        let mut md = String::new();
        self.header(&mut md);
        self.targets(&mut md);
        self.bounds(&mut md);
        self.raw(&mut md);
        md
    }

    fn header(&self, md: &mut String) {
        let m = &self.machine;
        let _ = writeln!(md, "# Benchmarks\n");
        let _ = writeln!(
            md,
            "Generated by `{}` in {:.0} s; do not edit by hand.\n",
            self.command, self.duration_secs
        );
        let _ = writeln!(
            md,
            "- Machine: {} CPUs, {}; {}; shared and noisy, so every figure is compared with \
             figures taken in the same run, alternating contenders round by round ({} rounds, \
             medians; ratios are medians of per-round ratios).",
            m.cpus, m.cpu_model, m.kernel, self.rounds
        );
        let _ = writeln!(
            md,
            "- Toolchains: {}; Node {} (`@logto/connector-huggingface` 0.4.8 declares Node \
             ^22.14; npm warns, and it runs unchanged on this one).",
            m.rustc, m.node
        );
        let versions: Vec<String> = m.versions.iter().map(|(n, v)| format!("{n} {v}")).collect();
        let _ = writeln!(md, "- Versions: {}.", versions.join(", "));
        let _ = writeln!(
            md,
            "- Contenders: **ours** = the Hugging Face plugin, release cdylib, loaded by \
             `connector_api::Plugin::load` in a host process of its own; **Logto** = \
             `@logto/connector-huggingface` on Node (`tests/bench/logto/`); **floor** = a bare \
             reqwest client doing only the token POST and the userinfo GET and parsing them. \
             Each runs in a fresh process against the same `hub-sandbox` process, {} sign-ins \
             after a warm-up, {} in flight at once. A sign-in is timed from the callback: token \
             + userinfo + mapping (authorization URIs and the browser's consent are prepared \
             beforehand, in batches, the same way for all three). CPU is user + system of the \
             whole client process over the timed phases (`getrusage`, Node's \
             `process.cpuUsage()`), the sandbox's not included.\n",
            self.count, self.concurrency
        );
    }

    fn targets(&self, md: &mut String) {
        let r = &self.main;
        let cpu = |s: &Sample| s.cpu_per_sign_in_us();
        let rate = |s: &Sample| s.rate();
        let (ours, logto, floor) = (
            r.median(Who::Plugin, cpu),
            r.median(Who::Logto, cpu),
            r.median(Who::Floor, cpu),
        );
        let over_floor = r.ratio(Who::Plugin, Who::Floor, cpu);
        let under_logto = r.ratio(Who::Logto, Who::Plugin, cpu);
        let _ = writeln!(md, "## Targets\n");
        let _ = writeln!(
            md,
            "| figure | ours | Logto | floor | ratio | target | met |\n|---|---|---|---|---|---|---|"
        );
        let _ = writeln!(
            md,
            "| client CPU per completed sign-in | {ours:.0} µs | {logto:.0} µs | {floor:.0} µs | \
             {over_floor:.2}× floor; 1/{under_logto:.0} of Logto | ≤ 2× floor; ≤ 1/20 of Logto | {} |",
            met(over_floor <= 2.0 && under_logto >= 20.0)
        );
        let speedup = r.ratio(Who::Plugin, Who::Logto, rate);
        let _ = writeln!(
            md,
            "| completed sign-ins per second, concurrency {} | {:.0}/s | {:.0}/s | {:.0}/s | \
             {speedup:.1}× Logto | ≥ 10× Logto | {} |",
            self.concurrency,
            r.median(Who::Plugin, rate),
            r.median(Who::Logto, rate),
            r.median(Who::Floor, rate),
            met(speedup >= 10.0)
        );
        self.host_row(md, logto);
        self.boundary_row(md);
        self.load_rows(md);
        self.latency_row(md);
        self.memory_row(md);
        let errors = self.main.errors() + self.latency.errors();
        let _ = writeln!(
            md,
            "\nFailed sign-ins in this run, all contenders: {errors} (every figure counts \
             completed sign-ins only; see the rounds below).\n"
        );
    }

    fn host_row(&self, md: &mut String, logto_cpu: f64) {
        let hosts = match &self.host {
            HostFigures::Measured(hosts) => hosts,
            HostFigures::NotMeasured(why) => {
                let _ = writeln!(
                    md,
                    "| the whole host per sign-in (`/sign-in` + `/callback`) | not measured yet: \
                     {why} | {logto_cpu:.0} µs (connector alone) | | | ≤ 1/10 of Logto's \
                     connector | not measured |"
                );
                return;
            }
        };
        let samples = &hosts.memory;
        let cpu = |s: &HostSample| s.cpu_per_sign_in_us;
        let host = median_of(samples, cpu);
        let pairs = samples.iter().zip(&self.main.logto);
        let under = median(
            pairs
                .map(|(h, l)| l.cpu_per_sign_in_us() / h.cpu_per_sign_in_us)
                .collect(),
        );
        let _ = writeln!(
            md,
            "| the whole host per sign-in (`/sign-in` + `/callback`: HTTP server, state, plugin, \
             its log line), host CPU | {host:.0} µs | {logto_cpu:.0} µs (connector alone) | | 1/{under:.0} of \
             Logto | ≤ 1/10 of Logto's connector | {} |",
            met(under >= 10.0 && samples.iter().all(|s| s.errors == 0))
        );
        // No target for Redis: its rows show the cost beside the in-memory figure.
        let redis = median_of(&hosts.redis, cpu);
        let redis_own = median_of(&hosts.redis, |s| {
            s.redis_cpu_per_sign_in_us.unwrap_or(f64::NAN)
        });
        let both =
            |s: &HostSample| s.cpu_per_sign_in_us + s.redis_cpu_per_sign_in_us.unwrap_or(f64::NAN);
        let _ = writeln!(
            md,
            "| the same host with pending sign-ins in Redis (`session_store`, a `redis-server` \
             of its own on loopback), host CPU | {redis:.0} µs (in memory: {host:.0} µs) | | | \
             {:.2}× the in-memory host | — | — |",
            hosts.redis_over_memory(cpu)
        );
        let _ = writeln!(
            md,
            "| `redis-server`'s own CPU per sign-in (a separate process the broker relies on) | \
             {redis_own:.0} µs (host + Redis: {:.0} µs) | | | host + Redis = {:.2}× the in-memory \
             host | — | — |",
            median_of(&hosts.redis, both),
            hosts.redis_by_memory(both, cpu)
        );
        let rate = |s: &HostSample| s.rate;
        let _ = writeln!(
            md,
            "| the whole host's completed sign-ins per second, concurrency {}: in memory / \
             Redis | {:.0}/s / {:.0}/s | | | Redis {:.2}× in memory | — | — |",
            self.concurrency,
            median_of(&hosts.memory, rate),
            median_of(&hosts.redis, rate),
            hosts.redis_over_memory(rate)
        );
    }

    fn boundary_row(&self, md: &mut String) {
        match self.micro {
            Some(m) => {
                let extra = (m.authorization_uri_cdylib - m.authorization_uri_rlib) / 1e3;
                let _ = writeln!(
                    md,
                    "| extra cost of the plugin boundary per call (cdylib − rlib), authorization \
                     URI | {extra:.2} µs ({:.2} µs vs {:.2} µs) | | | | ≤ 2 µs | {} |",
                    m.authorization_uri_cdylib / 1e3,
                    m.authorization_uri_rlib / 1e3,
                    met(extra <= 2.0)
                );
            }
            None => {
                let _ = writeln!(
                    md,
                    "| extra cost of the plugin boundary per call, authorization URI | no \
                     criterion results (run `cargo bench -p connector-bench --bench boundary`) \
                     | | | | ≤ 2 µs | not measured |"
                );
            }
        }
    }

    fn load_rows(&self, md: &mut String) {
        let ms = |v: &[LoadSample]| median(v.iter().map(|s| s.ms).collect());
        let ratio = |probed: &[LoadSample], plain: &[LoadSample]| {
            median(probed.iter().zip(plain).map(|(p, u)| p.ms / u.ms).collect())
        };
        let (one, probed_one) = (ms(&self.load_one), ms(&self.probed_one));
        let (many, probed_many) = (ms(&self.load_many), ms(&self.probed_many));
        let files = self.load_many.first().map_or(0, |s| s.files);
        let _ = writeln!(
            md,
            "| discover, probe (in a child process) and load the Hugging Face plugin (fresh \
             process) | {probed_one:.1} ms (unprobed: {one:.1} ms) | {:.0} ms (import + create) \
             | | probe {:.1}× unprobed | ≤ 50 ms | {} |",
            median(self.logto_load_ms.clone()),
            ratio(&self.probed_one, &self.load_one),
            met(probed_one <= 50.0)
        );
        let _ = writeln!(
            md,
            "| discover, probe and load {files} plugin files | {probed_many:.0} ms (unprobed: \
             {many:.0} ms) | | | probe {:.1}× unprobed | unprobed ≤ 500 ms | {} |",
            ratio(&self.probed_many, &self.load_many),
            met(many <= 500.0)
        );
    }

    fn latency_row(&self, md: &mut String) {
        let wall = |s: &Sample| s.wall_secs;
        let r = &self.latency;
        let ours = r.median(Who::Plugin, wall);
        let _ = writeln!(
            md,
            "| {} concurrent sign-ins, {} ms injected provider latency, wall | {ours:.3} s | \
             {:.3} s | {:.3} s | {:.1}× faster than Logto | ≤ 0.5 s | {} |",
            self.latency_count,
            self.latency_ms,
            r.median(Who::Logto, wall),
            r.median(Who::Floor, wall),
            r.ratio(Who::Logto, Who::Plugin, wall),
            met(ours <= 0.5 && r.plugin.iter().all(|s| s.ok == self.latency_count))
        );
    }

    fn memory_row(&self, md: &mut String) {
        let rss = |s: &Sample| s.memory.rss_kib as f64;
        let r = &self.main;
        let ours = mib(r.median(Who::Plugin, rss));
        let logto = mib(r.median(Who::Logto, rss));
        let peak = |s: &Sample| s.memory.peak_kib as f64;
        let _ = writeln!(
            md,
            "| memory (RSS) after {} sign-ins: a bare host process with the plugin loaded (no HTTP server) | {ours:.1} MB (peak \
             {:.1}) | {logto:.1} MB (peak {:.1}) | {:.1} MB | 1/{:.0} of Logto | ≤ 25 MB | {} |",
            self.count + self.warmup,
            mib(r.median(Who::Plugin, peak)),
            mib(r.median(Who::Logto, peak)),
            mib(r.median(Who::Floor, rss)),
            logto / ours,
            met(ours <= 25.0)
        );
        if let HostFigures::Measured(hosts) = &self.host {
            let host_rss = |s: &HostSample| s.rss_kib as f64;
            let host = mib(median_of(&hosts.memory, host_rss));
            let _ = writeln!(
                md,
                "| memory (RSS) of `host-example serve` after {} sign-ins | {host:.1} MB | \
                 {logto:.1} MB | | 1/{:.0} of Logto | ≤ 25 MB | {} |",
                self.count + self.warmup,
                logto / host,
                met(host <= 25.0)
            );
            let _ = writeln!(
                md,
                "| memory (RSS) of `host-example serve` with pending sign-ins in Redis after {} \
                 sign-ins (`redis-server` not included) | {:.1} MB (in memory: {host:.1} MB) | | | \
                 Redis {:.2}× in memory | — | — |",
                self.count + self.warmup,
                mib(median_of(&hosts.redis, host_rss)),
                hosts.redis_over_memory(host_rss)
            );
        }
    }

    /// What each figure is made of, from this run's own numbers.
    fn bounds(&self, md: &mut String) {
        let r = &self.main;
        let cpu = |s: &Sample| s.cpu_per_sign_in_us();
        let switches = |s: &Sample| s.switches_per_sign_in();
        let (ours, rlib, floor) = (
            r.median(Who::Plugin, cpu),
            r.median(Who::Rlib, cpu),
            r.median(Who::Floor, cpu),
        );
        let _ = writeln!(md, "## What bounds the figures\n");
        let _ = writeln!(
            md,
            "- **Client CPU.** Ours = the floor's two requests ({floor:.0} µs) + the plugin's own \
             work ({:+.0} µs: the same plugin in-process, {rlib:.0} µs: PKCE, size-limited body \
             reads, JSON with field-naming errors, the mapping) + the boundary ({:+.0} µs: the \
             cdylib runs the sign-in on its own tokio runtime, so every sign-in hops from the \
             host's runtime to the plugin's and back; context switches per sign-in: ours {:.1}, \
             in-process {:.1}, floor {:.1}, Logto {:.1}). The hop is mostly kernel time \
             (futex wake-ups of parked workers of two runtimes on two cores), and it is what \
             varies most from run to run on a busy machine.",
            rlib - floor,
            ours - rlib,
            r.median(Who::Plugin, switches),
            r.median(Who::Rlib, switches),
            r.median(Who::Floor, switches),
            r.median(Who::Logto, switches),
        );
        let _ = writeln!(
            md,
            "- **Sign-ins per second.** Client, sandbox and (for the host row) browsers share the \
             two cores; ours and the floor are bound by the sandbox's CPU as much as their own, \
             Logto's by Node's single JavaScript thread ({:.0} µs of CPU per sign-in).",
            r.median(Who::Logto, cpu)
        );
        let _ = writeln!(
            md,
            "- **Latency.** With {} ms per provider answer a sign-in cannot finish in less than \
             {} ms (token, then userinfo); the rest is opening {} connections and the CPU to \
             run them.",
            self.latency_ms,
            2 * self.latency_ms,
            self.latency_count
        );
        let _ = writeln!(
            md,
            "- **Memory.** The plugin's host process holds two tokio runtimes (host and plugin), \
             a pool of {} keep-alive connections and the mapped plugin; the floor process \
             shows what the same work costs without the plugin. Its RSS stays flat as sign-ins \
             go on. `host-example serve` adds an HTTP server and its pending-sign-in store, which \
             keeps a tombstone per finished sign-in until the sign-in TTL (to refuse replays), so \
             its RSS grows with the sign-ins of one TTL window.",
            self.concurrency
        );
        if let HostFigures::Measured(hosts) = &self.host {
            let cpu = |s: &HostSample| s.cpu_per_sign_in_us;
            let extra = median_of(&hosts.redis, cpu) - median_of(&hosts.memory, cpu);
            let _ = writeln!(
                md,
                "- **Redis.** With `session_store`, a sign-in is two Redis round trips over \
                 loopback on the host's one multiplexed connection: `SET … PX … NX` at \
                 `/sign-in` and the take script (`EVALSHA`: get, delete, leave the tombstone) at \
                 `/callback`. The host's CPU per sign-in differs from the in-memory host's by \
                 {extra:+.0} µs (encoding the commands, socket reads and writes, against no \
                 pending sign-ins or tombstones kept in its own memory); `redis-server` spends \
                 {:.0} µs more in its own process (the same two commands, \
                 the Lua script and key expiry), on the same two cores.",
                median_of(&hosts.redis, |s| s
                    .redis_cpu_per_sign_in_us
                    .unwrap_or(f64::NAN))
            );
        }
        let _ = writeln!(md);
    }

    fn raw(&self, md: &mut String) {
        let _ = writeln!(md, "## Rounds\n");
        let _ = writeln!(
            md,
            "Sign-ins at concurrency {} (CPU µs per sign-in / sign-ins per second / RSS MB / ok / \
             errors / context switches per sign-in):\n",
            self.concurrency
        );
        rounds_table(md, &self.main);
        let _ = writeln!(
            md,
            "\n{} sign-ins at once with {} ms added to each token and userinfo answer (wall s / \
             CPU µs per sign-in / ok / errors):\n",
            self.latency_count, self.latency_ms
        );
        latency_table(md, &self.latency);
        if let Some(m) = self.micro {
            let _ = writeln!(
                md,
                "\nCriterion medians (`cargo bench -p connector-bench --bench boundary`), per call:\n\n\
                 | call | in-process (rlib) | loaded cdylib | boundary |\n|---|---|---|---|\n\
                 | authorization URI | {:.2} µs | {:.2} µs | {:+.2} µs |\n\
                 | user info (token + userinfo at an in-process sandbox) | {:.1} µs | {:.1} µs | {:+.1} µs |",
                m.authorization_uri_rlib / 1e3,
                m.authorization_uri_cdylib / 1e3,
                (m.authorization_uri_cdylib - m.authorization_uri_rlib) / 1e3,
                m.user_info_rlib / 1e3,
                m.user_info_cdylib / 1e3,
                (m.user_info_cdylib - m.user_info_rlib) / 1e3,
            );
        }
        let loads: Vec<String> = self
            .load_one
            .iter()
            .map(|s| format!("{:.1}", s.ms))
            .collect();
        let many: Vec<String> = self
            .load_many
            .iter()
            .map(|s| format!("{:.0}", s.ms))
            .collect();
        let probed = |v: &[LoadSample]| -> Vec<String> {
            v.iter().map(|s| format!("{:.0}", s.ms)).collect()
        };
        let _ = writeln!(
            md,
            "\nDiscovery, ms per round: one plugin {}; {} files {} (all but the first refused as \
             duplicate ids, after a full load and check each). Probed: one plugin {}; {} files {}.",
            loads.join(", "),
            self.load_many.first().map_or(0, |s| s.files),
            many.join(", "),
            probed(&self.probed_one).join(", "),
            self.probed_many.first().map_or(0, |s| s.files),
            probed(&self.probed_many).join(", ")
        );
        if let HostFigures::Measured(hosts) = &self.host {
            host_table(md, hosts);
        }
        first_errors(md, &[&self.main, &self.latency]);
    }
}

fn host_table(md: &mut String, hosts: &HostRounds) {
    let _ = writeln!(
        md,
        "\n`host-example serve` rounds, the two hosts in alternating order (pending sign-ins in \
         memory or in Redis; `redis-server`'s CPU is its own process's, not in the host's):\n"
    );
    let _ = writeln!(
        md,
        "| round | pending sign-ins | host CPU µs per sign-in | redis-server CPU µs per sign-in | \
         sign-ins/s | host RSS MB | ok | errors |\n|---|---|---|---|---|---|---|---|"
    );
    let rounds = hosts.memory.len().max(hosts.redis.len());
    for i in 0..rounds {
        for store in Store::order(i) {
            let samples = match store {
                Store::Memory => &hosts.memory,
                Store::Redis => &hosts.redis,
            };
            let Some(s) = samples.get(i) else { continue };
            let redis = s
                .redis_cpu_per_sign_in_us
                .map_or("—".to_string(), |us| format!("{us:.0}"));
            let _ = writeln!(
                md,
                "| {} | {} | {:.0} | {redis} | {:.0} | {:.1} | {} | {} |",
                i + 1,
                store.name(),
                s.cpu_per_sign_in_us,
                s.rate,
                mib(s.rss_kib as f64),
                s.ok,
                s.errors
            );
        }
    }
    for (store, samples) in [(Store::Memory, &hosts.memory), (Store::Redis, &hosts.redis)] {
        if let Some(error) = samples.iter().find_map(|s| s.first_error.as_deref()) {
            let _ = writeln!(md, "\nFirst host error ({}): `{error}`.", store.name());
        }
    }
}

fn rounds_table(md: &mut String, r: &Rounds) {
    contenders_table(md, r, |s| {
        format!(
            "{:.0} / {:.0} / {:.1} / {} / {} / {:.1}",
            s.cpu_per_sign_in_us(),
            s.rate(),
            mib(s.memory.rss_kib as f64),
            s.ok,
            s.errors,
            s.switches_per_sign_in()
        )
    });
}

fn latency_table(md: &mut String, r: &Rounds) {
    contenders_table(md, r, |s| {
        format!(
            "{:.3} / {:.0} / {} / {}",
            s.wall_secs,
            s.cpu_per_sign_in_us(),
            s.ok,
            s.errors
        )
    });
}

/// One row per round, one column per contender, each cell `cell` of that round's sample.
fn contenders_table(md: &mut String, r: &Rounds, cell: impl Fn(&Sample) -> String) {
    let _ = writeln!(
        md,
        "| round | ours | Logto | floor | ours in-process (rlib) |\n|---|---|---|---|---|"
    );
    for i in 0..r.plugin.len() {
        let cell = |v: &[Sample]| v.get(i).map_or(String::new(), &cell);
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} |",
            i + 1,
            cell(&r.plugin),
            cell(&r.logto),
            cell(&r.floor),
            cell(&r.rlib)
        );
    }
}

fn first_errors(md: &mut String, all: &[&Rounds]) {
    let mut seen = Vec::new();
    for rounds in all {
        for (who, samples) in [
            ("ours", &rounds.plugin),
            ("Logto", &rounds.logto),
            ("floor", &rounds.floor),
            ("rlib", &rounds.rlib),
        ] {
            for error in samples.iter().filter_map(|s| s.first_error.as_deref()) {
                if !seen.contains(&(who, error)) {
                    seen.push((who, error));
                }
            }
        }
    }
    if !seen.is_empty() {
        let _ = writeln!(md, "\nFirst errors seen:\n");
        for (who, error) in seen {
            let _ = writeln!(md, "- {who}: `{error}`");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_even_and_empty() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(Vec::new()).is_nan());
    }

    #[test]
    fn every_contender_leads_one_round_in_four() {
        let firsts: Vec<Who> = (0..4).map(|r| Who::order(r)[0]).collect();
        assert_eq!(firsts, [Who::Plugin, Who::Logto, Who::Floor, Who::Rlib]);
    }
}
