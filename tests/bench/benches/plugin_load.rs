//! What loading plugins costs in a fresh process, with the probe (each file loaded first in a
//! child process, as hosts should) and without, side by side: one Hugging Face plugin, and a
//! directory of 50 copies (each copy is a separate file, so each is probed and loaded).
//!
//! The directories are filled once; each iteration runs `connector-bench load --dir DIR
//! [--probe]` and times the whole process, from spawn to exit: startup, discovery, probe
//! children and `dlopen`s (a fresh process maps every file anew).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use connector_bench::{load, paths};
use criterion::{Criterion, criterion_group, criterion_main};

fn load_in_a_fresh_process(dir: &Path, files: usize, probe: bool) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_connector-bench"));
    command
        .args(["load", "--files", &files.to_string(), "--dir"])
        .arg(dir);
    if probe {
        command.arg("--probe");
    }
    let output = command.output().expect("run connector-bench load");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let sample: serde_json::Value = serde_json::from_slice(&output.stdout).expect("one JSON line");
    // All copies share one connector id: the first loads, the others are refused as duplicates
    // only after their own probe and load.
    assert_eq!(
        (sample["loaded"].as_u64(), sample["rejected"].as_u64()),
        (Some(1), Some(files as u64 - 1)),
        "{sample}"
    );
}

fn plugin_load(c: &mut Criterion) {
    if let Err(e) = paths::ensure_built(&["huggingface-plugin"]) {
        panic!("{e}");
    }
    for (files, samples) in [(1, 30), (50, 10)] {
        let dir = tempfile::tempdir().unwrap();
        load::fill(dir.path(), &paths::library("huggingface-plugin"), files).unwrap();
        let dir = dir.path();
        let mut group = c.benchmark_group(format!("load_{files}_fresh_process"));
        group.sample_size(samples);
        group.measurement_time(Duration::from_secs(10));
        group.bench_function("probed", |b| {
            b.iter(|| load_in_a_fresh_process(dir, files, true))
        });
        group.bench_function("unprobed", |b| {
            b.iter(|| load_in_a_fresh_process(dir, files, false))
        });
        group.finish();
    }
}

criterion_group!(benches, plugin_load);
criterion_main!(benches);
