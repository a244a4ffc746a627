//! `upledger check`: run probes once, now, concurrently, and print a table or one JSON document.

use std::sync::Arc;

use anyhow::{Context, bail};
use serde::Serialize;
use tokio::sync::Semaphore;

use super::Exit;
use crate::{
    config::{Config, ProbeSpec},
    model::{CheckResult, Outcome},
    probe::{Checker, Toolkit},
};

/// Arguments of `upledger check`.
#[derive(Debug, clap::Args)]
pub(super) struct CheckArgs {
    /// Probes to run (default: every enabled probe).
    #[arg(value_name = "PROBE")]
    probes: Vec<String>,
    /// Print one JSON document instead of a table.
    #[arg(long)]
    json: bool,
}

/// One probe's result as `check --json` prints it.
#[derive(Debug, Serialize)]
struct ResultJson<'a> {
    name: &'a str,
    kind: &'static str,
    at: String,
    outcome: &'static str,
    latency_ms: f64,
    error_class: Option<&'static str>,
    detail: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    cert_days_left: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cert_expiring: Option<bool>,
}

/// The whole `check --json` document.
#[derive(Debug, Serialize)]
struct CheckJson<'a> {
    probes: Vec<ResultJson<'a>>,
    up: usize,
    degraded: usize,
    down: usize,
}

pub(super) fn run(config: &Config, args: &CheckArgs) -> anyhow::Result<Exit> {
    let selected = select(config, &args.probes)?;
    let toolkit = Toolkit::new();
    let mut checkers = Vec::with_capacity(selected.len());
    for spec in &selected {
        checkers.push((Checker::new(spec, &toolkit)?, *spec));
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let results = runtime.block_on(run_all(checkers, config.daemon.max_concurrency));
    // Dropping the runtime would wait for its blocking threads, and a system-resolver lookup
    // (getaddrinfo) the probe's timeout gave up on may hang there for minutes. Every result
    // is in: leave such threads to the process exit.
    runtime.shutdown_background();

    if args.json {
        print_json(&results)?;
    } else {
        print_table(&results);
    }
    let any_down = results.iter().any(|(_, r)| r.outcome == Outcome::Down);
    Ok(if any_down { Exit::Failed } else { Exit::Ok })
}

/// The probes named on the command line, or every enabled probe; unknown names are an error.
fn select<'a>(config: &'a Config, names: &[String]) -> anyhow::Result<Vec<&'a ProbeSpec>> {
    if names.is_empty() {
        return Ok(config.probes.iter().filter(|p| p.enabled).collect());
    }
    let mut selected = Vec::with_capacity(names.len());
    for name in names {
        match config.probe(name) {
            Some(spec) if !selected.iter().any(|s: &&ProbeSpec| s.name == spec.name) => {
                selected.push(spec)
            }
            Some(_) => {}
            None => bail!("no probe is named \"{name}\" (see `upledger validate`)"),
        }
    }
    Ok(selected)
}

/// Runs every check concurrently, at most `limit` at once, and returns results in input order.
async fn run_all(
    checkers: Vec<(Checker, &ProbeSpec)>,
    limit: usize,
) -> Vec<(&ProbeSpec, CheckResult)> {
    let permits = Arc::new(Semaphore::new(limit.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    let mut specs = Vec::with_capacity(checkers.len());
    for (index, (checker, spec)) in checkers.into_iter().enumerate() {
        specs.push(spec);
        let permits = Arc::clone(&permits);
        tasks.spawn(async move {
            let _permit = permits.acquire_owned().await;
            (index, checker.check().await)
        });
    }
    let mut results: Vec<Option<CheckResult>> = vec![None; specs.len()];
    while let Some(joined) = tasks.join_next().await {
        if let Ok((index, result)) = joined {
            results[index] = Some(result);
        }
    }
    specs
        .into_iter()
        .zip(results)
        .filter_map(|(spec, result)| Some((spec, result?)))
        .collect()
}

fn print_json(results: &[(&ProbeSpec, CheckResult)]) -> anyhow::Result<()> {
    let count = |outcome| results.iter().filter(|(_, r)| r.outcome == outcome).count();
    let document = CheckJson {
        probes: results
            .iter()
            .map(|(spec, r)| ResultJson {
                name: spec.name.as_str(),
                kind: spec.kind().as_str(),
                at: r.at.to_string(),
                outcome: r.outcome.as_str(),
                latency_ms: (r.latency_ms() * 1000.0).round() / 1000.0,
                error_class: r.error_class.map(|c| c.as_str()),
                detail: &r.detail,
                cert_days_left: r.cert.map(|c| c.days_left),
                cert_expiring: r.cert.map(|c| c.expiring),
            })
            .collect(),
        up: count(Outcome::Up),
        degraded: count(Outcome::Degraded),
        down: count(Outcome::Down),
    };
    let text = serde_json::to_string_pretty(&document)?;
    println!("{text}");
    Ok(())
}

fn print_table(results: &[(&ProbeSpec, CheckResult)]) {
    let rows: Vec<[String; 5]> = results
        .iter()
        .map(|(spec, r)| {
            let mut detail = match r.error_class {
                Some(class) => format!("{class}: {}", r.detail),
                None => r.detail.clone(),
            };
            if let Some(cert) = r.cert {
                let note = if cert.expiring { " (expiring)" } else { "" };
                let cert_text = format!("cert {} days left{note}", cert.days_left);
                detail = if detail.is_empty() {
                    cert_text
                } else {
                    format!("{detail}; {cert_text}")
                };
            }
            [
                spec.name.to_string(),
                spec.kind().to_string(),
                r.outcome.to_string(),
                format!("{:.1} ms", r.latency_ms()),
                detail,
            ]
        })
        .collect();
    let headers = ["PROBE", "KIND", "OUTCOME", "LATENCY", "DETAIL"];
    let mut widths = headers.map(str::len);
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: [&str; 5]| {
        let [name, kind, outcome, latency, detail] = cells;
        let text = format!(
            "{name:<w0$}  {kind:<w1$}  {outcome:<w2$}  {latency:>w3$}  {detail}",
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2],
            w3 = widths[3],
        );
        println!("{}", text.trim_end());
    };
    line(headers);
    for row in &rows {
        line([&row[0], &row[1], &row[2], &row[3], &row[4]]);
    }
    let down = results
        .iter()
        .filter(|(_, r)| r.outcome == Outcome::Down)
        .count();
    println!("\n{} checked, {} down", results.len(), down);
}
