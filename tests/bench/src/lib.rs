//! Side-by-side benchmarks of the Hugging Face connector plugin.
//!
//! Every figure is measured in its own process so that CPU time and memory are counted apart:
//! the Hub sandbox (the provider), each contender (the loaded plugin, a bare reqwest "floor"
//! client, and Logto's own Node.js connector) and, for the host rows, `host-example serve`.
//! The `connector-bench run` orchestrator alternates the contenders round by round, takes
//! medians, and writes `BENCHMARKS.md`. See `.ci/bench`.

pub mod contenders;
pub mod host;
pub mod load;
pub mod machine;
pub mod node;
pub mod paths;
pub mod report;
pub mod run;
pub mod sandbox;
pub mod signin;
pub mod usage;

/// Client id of the OAuth app that the benchmark's sandboxes register.
pub const CLIENT_ID: &str = "bench-client";
/// Its client secret.
pub const CLIENT_SECRET: &str = "bench-secret";
/// The redirect URI of every benchmark sign-in (never contacted: the callback is read from the
/// sandbox's 303).
pub const REDIRECT_URI: &str = "http://localhost:3000/callback";
/// The scope every contender asks for.
pub const SCOPE: &str = "profile email";
