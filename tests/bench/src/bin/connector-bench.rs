//! `connector-bench`: side-by-side benchmarks of the Hugging Face plugin (see `.ci/bench`).
//!
//! - `run` measures everything and writes `BENCHMARKS.md`;
//! - `worker` and `load` are what `run` starts in fresh processes, one per measurement.

use std::path::PathBuf;
use std::sync::Arc;

use clap::{Parser, Subcommand, ValueEnum};
use connector_bench::contenders::{FloorContender, PluginContender, RlibContender};
use connector_bench::signin::{self, Workload};
use connector_bench::{host, load, paths, run};

#[derive(Parser)]
#[command(about = "Side-by-side benchmarks of the Hugging Face connector plugin")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run every benchmark, alternating the contenders, and write the report.
    Run {
        #[command(flatten)]
        options: run::Options,
        /// Where to write the report.
        #[arg(long, default_value = "BENCHMARKS.md")]
        out: PathBuf,
    },
    /// One contender's sign-ins in this process; prints one JSON line.
    Worker {
        #[arg(long, value_enum)]
        contender: Contender,
        #[command(flatten)]
        workload: Workload,
        #[arg(long)]
        plugin: Option<PathBuf>,
    },
    /// One round through `host-example serve` against a running sandbox; prints one JSON line.
    Host {
        #[arg(long)]
        endpoint: String,
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
        #[arg(long, default_value_t = 10_000)]
        count: usize,
        #[arg(long, default_value_t = 1_000)]
        warmup: usize,
        /// Keep pending sign-ins in a throwaway `redis-server` instead of in memory.
        #[arg(long)]
        redis: bool,
    },
    /// Times the discovery of a directory of plugin copies; prints one JSON line.
    Load {
        #[arg(long)]
        files: usize,
        #[arg(long)]
        plugin: Option<PathBuf>,
        /// Discover this directory as it is instead of `--files` fresh copies of `--plugin`.
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Load each file in a probe process first, as a host should (`load::PROBE_SUBCOMMAND`).
        #[arg(long)]
        probe: bool,
    },
    /// The probe's child side: loads one plugin file and reports how it went.
    #[command(name = load::PROBE_SUBCOMMAND, hide = true)]
    ProbePlugin { file: PathBuf },
}

#[derive(Clone, Copy, ValueEnum)]
enum Contender {
    Plugin,
    Rlib,
    Floor,
}

fn main() -> Result<(), String> {
    match Cli::parse().command {
        Cmd::Run { options, out } => {
            let report = run::run(&options)?;
            let markdown = report.markdown();
            std::fs::write(&out, &markdown).map_err(|e| format!("{}: {e}", out.display()))?;
            println!("{markdown}");
            Ok(())
        }
        Cmd::Worker {
            contender,
            workload,
            plugin,
        } => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            let sample = runtime.block_on(async {
                match contender {
                    Contender::Plugin => {
                        let path = plugin.unwrap_or_else(|| paths::library("huggingface-plugin"));
                        let contender = PluginContender::load(&path, &workload.endpoint)?;
                        Ok::<_, String>(signin::run(Arc::new(contender), &workload).await)
                    }
                    Contender::Rlib => {
                        let contender = RlibContender::new(&workload.endpoint)?;
                        Ok(signin::run(Arc::new(contender), &workload).await)
                    }
                    Contender::Floor => {
                        let contender = FloorContender::new(&workload.endpoint);
                        Ok(signin::run(Arc::new(contender), &workload).await)
                    }
                }
            })?;
            print_json(&sample)
        }
        Cmd::Host {
            endpoint,
            concurrency,
            count,
            warmup,
            redis,
        } => {
            let plugin = paths::library("huggingface-plugin");
            let store = match redis {
                true => host::Store::Redis,
                false => host::Store::Memory,
            };
            let sample = host::measure(&plugin, &endpoint, store, concurrency, count, warmup)?;
            print_json(&sample)
        }
        Cmd::Load {
            files,
            plugin,
            dir,
            probe,
        } => {
            let path = plugin.unwrap_or_else(|| paths::library("huggingface-plugin"));
            let sample = match dir {
                Some(dir) => load::measure_dir(&dir, probe)?,
                None => load::measure(&path, files, probe)?,
            };
            print_json(&sample)
        }
        Cmd::ProbePlugin { file } => match connector_api::probe::run_child(&file) {
            code if code == std::process::ExitCode::SUCCESS => Ok(()),
            _ => Err("cannot report the probe result".into()),
        },
    }
}

/// Prints `sample` as one JSON line, what `run` reads from a worker, host or load process.
fn print_json(sample: &impl serde::Serialize) -> Result<(), String> {
    println!(
        "{}",
        serde_json::to_string(sample).map_err(|e| e.to_string())?
    );
    Ok(())
}
