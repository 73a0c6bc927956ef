//! `host-example list`: what a plugin directory holds, as text or JSON.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use connector_api::{DiscoverOptions, Discovery, discover_with};
use serde::Serialize;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ConnectorRow {
    id: String,
    target: String,
    platform: connector_api::Platform,
    name: String,
    file: String,
    api_version: String,
}

#[derive(Serialize)]
struct RejectedRow {
    file: String,
    reason: String,
}

#[derive(Serialize)]
struct Listing {
    connectors: Vec<ConnectorRow>,
    rejected: Vec<RejectedRow>,
}

impl From<&Discovery> for Listing {
    fn from(d: &Discovery) -> Self {
        Self {
            connectors: d
                .plugins
                .iter()
                .map(|p| ConnectorRow {
                    id: p.metadata().id.clone(),
                    target: p.metadata().target.clone(),
                    platform: p.metadata().platform,
                    name: p.metadata().english_name().to_string(),
                    file: p.path().display().to_string(),
                    api_version: p.api_version().to_string(),
                })
                .collect(),
            rejected: d
                .rejected
                .iter()
                .map(|r| RejectedRow {
                    file: r.path.display().to_string(),
                    reason: r.reason.to_string(),
                })
                .collect(),
        }
    }
}

/// Lists `dir`, probing each file in a child process first (each under `probe_timeout`, see
/// [`crate::reload`]); exit 0 when the directory could be read, 1 when not.
pub fn run(dir: &Path, json: bool, probe_timeout: Duration) -> ExitCode {
    let options = DiscoverOptions {
        probe: Some(crate::reload::probe_command().with_timeout(probe_timeout)),
        ..DiscoverOptions::default()
    };
    let discovery = match discover_with(dir, &options) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("host-example: {e}");
            return ExitCode::FAILURE;
        }
    };
    let listing = Listing::from(&discovery);
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&listing).expect("plain data serializes")
        );
    } else {
        print_text(dir, &listing);
    }
    ExitCode::SUCCESS
}

fn print_text(dir: &Path, listing: &Listing) {
    println!(
        "{} connector(s) loaded from {}",
        listing.connectors.len(),
        dir.display()
    );
    for c in &listing.connectors {
        println!(
            "  {}  target={} platform={:?} name={:?} api={} file={}",
            c.id, c.target, c.platform, c.name, c.api_version, c.file
        );
    }
    if !listing.rejected.is_empty() {
        println!("{} file(s) refused:", listing.rejected.len());
        for r in &listing.rejected {
            println!("  {}: {}", r.file, r.reason);
        }
    }
}
