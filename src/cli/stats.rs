//! `upledger stats`: what the ledger holds and what it costs on disk, per result. It decodes
//! every block on the way (the same pass as a consistency check), so it works on the ledger
//! directly and asks for the daemon to be stopped first.

use std::path::Path;

use anyhow::bail;
use serde::Serialize;

use super::{Exit, client, client::Source};

#[derive(Debug, clap::Args)]
pub(super) struct StatsArgs {
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// The figures `stats` prints.
#[derive(Debug, Serialize)]
struct Stats {
    probes: u64,
    results: u64,
    blocks: u64,
    open_blocks: u64,
    /// Bytes of the packed result blocks (the payload, keys and sled's overhead excluded).
    payload_bytes: u64,
    /// Bytes of every file of the ledger directory.
    disk_bytes: u64,
    payload_bytes_per_result: Option<f64>,
    disk_bytes_per_result: Option<f64>,
}

pub(super) fn stats(config_path: &Path, args: &StatsArgs) -> anyhow::Result<Exit> {
    let ledger = match client::connect(config_path)? {
        None => return Ok(Exit::Usage),
        Some(Source::Daemon(_)) => {
            bail!("the daemon is running: stop it first (stats reads every block of the ledger)")
        }
        Some(Source::Ledger(_, ledger)) => ledger,
    };
    let results = ledger.guard(|ledger| ledger.verify())?;
    let counts = ledger.guard(|ledger| ledger.stats())?;
    let disk_bytes = ledger.size_on_disk()?;
    let per_result = |bytes: u64| (results > 0).then(|| bytes as f64 / results as f64);
    let stats = Stats {
        probes: counts.probes,
        results,
        blocks: counts.blocks,
        open_blocks: counts.open_blocks,
        payload_bytes: counts.block_bytes,
        disk_bytes,
        payload_bytes_per_result: per_result(counts.block_bytes),
        disk_bytes_per_result: per_result(disk_bytes),
    };
    if args.json {
        println!("{}", serde_json::to_string(&stats)?);
        return Ok(Exit::Ok);
    }
    let fmt = |value: Option<f64>| value.map_or_else(|| "-".to_owned(), |v| format!("{v:.2}"));
    println!("probes        {}", stats.probes);
    println!("results       {}", stats.results);
    println!(
        "blocks        {} ({} open)",
        stats.blocks, stats.open_blocks
    );
    println!(
        "payload       {} bytes, {} per result",
        stats.payload_bytes,
        fmt(stats.payload_bytes_per_result)
    );
    println!(
        "on disk       {} bytes, {} per result",
        stats.disk_bytes,
        fmt(stats.disk_bytes_per_result)
    );
    Ok(Exit::Ok)
}
