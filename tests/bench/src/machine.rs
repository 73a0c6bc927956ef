//! The machine and the versions a report was made with.

use std::process::Command;

/// Machine and versions, each as a short line.
#[derive(Debug, Clone)]
pub struct Machine {
    pub cpus: usize,
    pub cpu_model: String,
    pub kernel: String,
    pub rustc: String,
    pub node: String,
    /// `(name, version)` of the crates and packages that matter.
    pub versions: Vec<(String, String)>,
}

/// Reads the machine and versions.
pub fn describe() -> Machine {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu_model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name")?.split_once(':'))
        .map_or("unknown".into(), |(_, v)| v.trim().to_string());
    let mut versions = vec![
        ("connector-api".into(), connector_api::API_VERSION.into()),
        (
            "huggingface-plugin".into(),
            package_version("huggingface-plugin/Cargo.toml"),
        ),
        (
            "@logto/connector-huggingface".into(),
            crate::node::connector_version(),
        ),
    ];
    for name in ["reqwest", "tokio", "hyper", "abi_stable", "axum"] {
        versions.push((name.into(), locked_version(name)));
    }
    Machine {
        cpus: std::thread::available_parallelism().map_or(0, |n| n.get()),
        cpu_model,
        kernel: output("uname", &["-sr"]),
        rustc: output("rustc", &["--version"]),
        node: output("node", &["--version"]),
        versions,
    }
}

fn output(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| format!("{program}: not found"))
}

/// `version = "…"` of a workspace manifest.
fn package_version(manifest: &str) -> String {
    let text = std::fs::read_to_string(crate::paths::workspace_root().join(manifest));
    text.ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("version = ")?.trim().strip_prefix('"'))
                .map(|v| v.trim_end_matches('"').to_string())
        })
        .unwrap_or_else(|| "?".into())
}

/// The version of `name` in `Cargo.lock` (the first, if several).
fn locked_version(name: &str) -> String {
    let lock = std::fs::read_to_string(crate::paths::workspace_root().join("Cargo.lock"));
    let lock = lock.unwrap_or_default();
    let header = format!("name = \"{name}\"\n");
    lock.split("[[package]]")
        .find_map(|entry| entry.trim_start().strip_prefix(&header))
        .and_then(|rest| rest.lines().next()?.strip_prefix("version = "))
        .map_or("?".into(), |v| v.trim_matches('"').to_string())
}
