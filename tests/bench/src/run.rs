//! The orchestrator: sandboxes, contenders in fresh processes, rounds, the report.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::host::Store;
use crate::load::LoadSample;
use crate::report::{HostFigures, HostRounds, Micro, Report, Rounds, Who};
use crate::sandbox::SandboxProcess;
use crate::signin::{Sample, Workload};
use crate::{host, machine, node, paths};

/// What a run measures: `connector-bench run`'s options.
#[derive(Debug, Clone, clap::Args)]
pub struct Options {
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// Measured sign-ins per contender and round.
    #[arg(long, default_value_t = 10_000)]
    pub count: usize,
    #[arg(long, default_value_t = 1_000)]
    pub warmup: usize,
    #[arg(long, default_value_t = 1_000)]
    pub batch: usize,
    /// Latency added to each token and userinfo answer in the latency benchmark.
    #[arg(long, default_value_t = 100)]
    pub latency_ms: u64,
    /// Sign-ins started at once in the latency benchmark.
    #[arg(long, default_value_t = 1_000)]
    pub latency_count: usize,
    /// Plugin files in the "many plugins" discovery.
    #[arg(long, default_value_t = 50)]
    pub load_files: usize,
    /// Where criterion wrote its results (`target/criterion`).
    #[arg(skip = paths::workspace_root().join("target/criterion"))]
    pub criterion_dir: PathBuf,
    /// The command line that regenerates the report, for its header.
    #[arg(skip = String::from(".ci/bench"))]
    pub command: String,
}

/// Runs every benchmark and returns the report.
pub fn run(options: &Options) -> Result<Report, String> {
    let started = Instant::now();
    if !node::installed() {
        return Err(format!(
            "Logto's connector is not installed: run `npm ci` in {}",
            node::harness_dir().display()
        ));
    }
    let plugin = paths::library("huggingface-plugin");
    let normal = SandboxProcess::start(Duration::ZERO)?;
    let slow = SandboxProcess::start(Duration::from_millis(options.latency_ms))?;
    let main_load = Workload {
        endpoint: normal.endpoint().into(),
        concurrency: options.concurrency,
        count: options.count,
        warmup: options.warmup,
        batch: options.batch,
    };
    let latency_load = Workload::at_once(slow.endpoint(), options.latency_count);
    let (mut main, mut latency) = (Rounds::default(), Rounds::default());
    let (mut load_one, mut load_many, mut logto_load_ms) = (Vec::new(), Vec::new(), Vec::new());
    let (mut probed_one, mut probed_many) = (Vec::new(), Vec::new());
    let serve = host::has_serve();
    if serve {
        // The Redis host is measured whenever the in-memory one is: fail now, not rounds later.
        host::check_redis()?;
    }
    let mut hosts = HostRounds::default();
    for round in 0..options.rounds {
        for who in Who::order(round) {
            eprintln!(
                "round {}: {} ({} sign-ins)",
                round + 1,
                who.name(),
                main_load.count
            );
            main.push(who, contender(who, &main_load, &plugin)?);
        }
        for store in Store::order(round).into_iter().filter(|_| serve) {
            eprintln!(
                "round {}: host-example serve, pending sign-ins {}",
                round + 1,
                store.name()
            );
            let sample = host::measure(
                &plugin,
                normal.endpoint(),
                store,
                options.concurrency,
                options.count,
                options.warmup,
            )?;
            hosts.push(store, sample);
        }
        for who in Who::order(round) {
            eprintln!("round {}: {} with latency", round + 1, who.name());
            latency.push(who, contender(who, &latency_load, &plugin)?);
        }
        load_one.push(load(&plugin, 1, false)?);
        probed_one.push(load(&plugin, 1, true)?);
        load_many.push(load(&plugin, options.load_files, false)?);
        probed_many.push(load(&plugin, options.load_files, true)?);
        logto_load_ms.push(node::load_ms()?);
    }
    let host = match serve {
        true => HostFigures::Measured(hosts),
        false => HostFigures::NotMeasured("needs `host-example serve`".into()),
    };
    Ok(Report {
        machine: machine::describe(),
        command: options.command.clone(),
        rounds: options.rounds,
        concurrency: options.concurrency,
        count: options.count,
        warmup: options.warmup,
        latency_ms: options.latency_ms,
        latency_count: options.latency_count,
        main,
        latency,
        load_one,
        load_many,
        probed_one,
        probed_many,
        logto_load_ms,
        micro: micro(&options.criterion_dir),
        host,
        duration_secs: started.elapsed().as_secs_f64(),
    })
}

/// One contender's run in a fresh process.
fn contender(who: Who, workload: &Workload, plugin: &Path) -> Result<Sample, String> {
    if who == Who::Logto {
        return node::run(workload);
    }
    let mut command = Command::new(std::env::current_exe().map_err(|e| e.to_string())?);
    command
        .args(["worker", "--contender", who.name()])
        .args(["--endpoint", &workload.endpoint])
        .args(["--concurrency", &workload.concurrency.to_string()])
        .args(["--count", &workload.count.to_string()])
        .args(["--warmup", &workload.warmup.to_string()])
        .args(["--batch", &workload.batch.to_string()])
        .arg("--plugin")
        .arg(plugin);
    node::json_line(command)
}

/// One discovery of `files` copies of the plugin, in a fresh process; with `probe`, each file is
/// first loaded in a child process, as `host-example` does.
fn load(plugin: &Path, files: usize, probe: bool) -> Result<LoadSample, String> {
    let mut command = Command::new(std::env::current_exe().map_err(|e| e.to_string())?);
    command
        .args(["load", "--files", &files.to_string(), "--plugin"])
        .arg(plugin);
    if probe {
        command.arg("--probe");
    }
    node::json_line(command)
}

/// Criterion's medians for the boundary benchmarks, if they ran.
fn micro(dir: &Path) -> Option<Micro> {
    let median = |group: &str, function: &str| -> Option<f64> {
        let path = dir.join(group).join(function).join("new/estimates.json");
        let text = std::fs::read_to_string(path).ok()?;
        let value: serde_json::Value = serde_json::from_str(&text).ok()?;
        value["median"]["point_estimate"].as_f64()
    };
    Some(Micro {
        authorization_uri_rlib: median("authorization_uri", "rlib")?,
        authorization_uri_cdylib: median("authorization_uri", "cdylib")?,
        user_info_rlib: median("user_info", "rlib")?,
        user_info_cdylib: median("user_info", "cdylib")?,
    })
}
