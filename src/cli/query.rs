//! `upledger status`, `history`, `export` and `import`.

use std::{
    io::{BufRead, BufReader, IsTerminal, Read, Write},
    net::Shutdown,
    path::{Path, PathBuf},
};

use anyhow::{Context, anyhow, bail};
use jiff::Timestamp;

use super::{
    Exit,
    client::{self, Source},
    progress,
};
use crate::{
    api::socket::Request,
    model::LocationName,
    query::{self, ExclusionListing, ExclusionSubject, History, Imported, StatusReport},
};

/// Arguments of `upledger status`.
#[derive(Debug, clap::Args)]
pub(super) struct StatusArgs {
    /// Print one JSON document instead of a table.
    #[arg(long)]
    json: bool,
}

/// Arguments of `upledger history`.
#[derive(Debug, clap::Args)]
pub(super) struct HistoryArgs {
    /// The probe.
    probe: String,
    /// Window start: a duration back from now (`24h`, `7d`) or an RFC 3339 time.
    #[arg(long, default_value = "24h", value_parser = parse_instant)]
    since: Timestamp,
    /// Print one JSON document instead of a table.
    #[arg(long)]
    json: bool,
}

/// Arguments of `upledger export`.
#[derive(Debug, clap::Args)]
pub(super) struct ExportArgs {
    /// Only this probe.
    #[arg(long)]
    probe: Option<String>,
    /// From this instant (a duration back from now, or RFC 3339).
    #[arg(long, value_parser = parse_instant)]
    since: Option<Timestamp>,
    /// Until this instant (exclusive).
    #[arg(long, value_parser = parse_instant)]
    until: Option<Timestamp>,
}

/// Arguments of `upledger import`.
#[derive(Debug, clap::Args)]
pub(super) struct ImportArgs {
    /// JSON lines file (`-` for standard input).
    file: PathBuf,
    /// Refuse the import unless the input has exactly this many non-blank lines (what
    /// `wc -l` counts of an export): proves that a pipe was not cut short.
    #[arg(long, value_name = "N")]
    expect_lines: Option<u64>,
    /// Where the results of lines without a `"location"` were checked from (SPEC §9): a
    /// probe with `locations` stores them under that location's series.
    #[arg(long, value_name = "LOCATION", value_parser = parse_location)]
    location: Option<LocationName>,
}

/// Arguments of `upledger exclude`.
#[derive(Debug, clap::Args)]
#[command(group(
    clap::ArgGroup::new("subject")
        .args(["probe", "sla", "revoke"])
        .required(true)
        .multiple(false)
))]
pub(super) struct ExcludeArgs {
    /// The probe whose time is excluded.
    #[arg(long)]
    probe: Option<String>,
    /// The SLA whose time is excluded, as a whole (its figures only, not its probes').
    #[arg(long)]
    sla: Option<String>,
    /// Revoke the exclusion with this id (see `upledger exclusions`) instead: recorded with
    /// the reason, the exclusion stays listed but no longer applies.
    #[arg(long, value_name = "ID", conflicts_with_all = ["from", "to"])]
    revoke: Option<String>,
    /// Start (RFC 3339, or a duration back from now).
    #[arg(long, value_parser = parse_instant, required_unless_present = "revoke")]
    from: Option<Timestamp>,
    /// End, exclusive (RFC 3339, or a duration back from now).
    #[arg(long, value_parser = parse_instant, required_unless_present = "revoke")]
    to: Option<Timestamp>,
    /// Why (shown in every report the exclusion or revocation touches).
    #[arg(long)]
    reason: String,
}

/// Arguments of `upledger exclusions`.
#[derive(Debug, clap::Args)]
pub(super) struct ExclusionsArgs {
    /// Only exclusions overlapping this month, `YYYY-MM` (in the daemon's time zone).
    #[arg(long)]
    month: Option<String>,
    /// Print one JSON document instead of a table.
    #[arg(long)]
    json: bool,
}

/// The user running this command: who a change made without the daemon is recorded as.
fn this_user() -> crate::ledger::Requester {
    crate::api::access::requester(nix::unistd::getuid().as_raw())
}

/// A location name (`[daemon].location` of the agent that checked).
fn parse_location(text: &str) -> Result<LocationName, String> {
    LocationName::new(text).map_err(|e| e.to_string())
}

/// `24h` (that long ago) or an RFC 3339 instant.
fn parse_instant(text: &str) -> Result<Timestamp, String> {
    query::parse_instant(text, Timestamp::now())
}

pub(super) fn status(config_path: &Path, args: &StatusArgs) -> anyhow::Result<Exit> {
    let Some(source) = client::connect(config_path)? else {
        return Ok(Exit::Usage);
    };
    let report: StatusReport = match source {
        Source::Daemon(mut stream) => {
            let value = client::ask(&mut stream, &Request::Status)?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&value)?);
                return Ok(exit_for(&value));
            }
            return print_status_value(&value);
        }
        Source::Ledger(config, ledger) => {
            ledger.guard(|ledger| query::status_from_ledger(&config, ledger))?
        }
    };
    let value = serde_json::to_value(&report)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&value)?);
        Ok(exit_for(&value))
    } else {
        print_status_value(&value)
    }
}

/// 1 when any probe is down.
fn exit_for(status: &serde_json::Value) -> Exit {
    let down = status["summary"]["down"].as_u64().unwrap_or(0);
    if down > 0 { Exit::Failed } else { Exit::Ok }
}

fn print_status_value(status: &serde_json::Value) -> anyhow::Result<Exit> {
    let probes = status["probes"]
        .as_array()
        .ok_or_else(|| anyhow!("status has no probes"))?;
    let mut rows = vec![[
        "PROBE".to_owned(),
        "KIND".to_owned(),
        "STATE".to_owned(),
        "SINCE".to_owned(),
        "LAST CHECK".to_owned(),
    ]];
    for probe in probes {
        let text = |v: &serde_json::Value| v.as_str().unwrap_or("-").to_owned();
        let last = &probe["last"];
        let last_text = if last.is_null() {
            "never".to_owned()
        } else {
            let mut t = format!(
                "{} {} {:.1} ms",
                text(&last["at"]),
                text(&last["outcome"]),
                last["latency_ms"].as_f64().unwrap_or(0.0)
            );
            if let Some(class) = last["error_class"].as_str() {
                t.push_str(&format!(" {class}: {}", text(&last["detail"])));
            }
            t
        };
        let mut state = text(&probe["state"]);
        if probe["enabled"] == false {
            state.push_str(" (disabled)");
        }
        rows.push([
            text(&probe["name"]),
            text(&probe["kind"]),
            state,
            text(&probe["since"]),
            last_text,
        ]);
        // SPEC §9: the state above is the quorum's; each location's own below it.
        for location in probe["locations"].as_array().into_iter().flatten() {
            rows.push([
                format!("  {}@{}", text(&probe["name"]), text(&location["location"])),
                "location".to_owned(),
                text(&location["state"]),
                text(&location["since"]),
                String::new(),
            ]);
        }
    }
    print_rows(&rows);
    let summary = &status["summary"];
    println!(
        "\n{} probes: {} up, {} degraded, {} down, {} unknown{}",
        summary["total"],
        summary["up"],
        summary["degraded"],
        summary["down"],
        summary["unknown"],
        if status["daemon_running"] == true {
            ""
        } else {
            " (daemon not running)"
        }
    );
    Ok(exit_for(status))
}

fn print_rows<const N: usize>(rows: &[[String; N]]) {
    let mut widths = [0usize; N];
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    for row in rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == N {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<w$}  ", w = widths[i]));
            }
        }
        println!("{}", line.trim_end());
    }
}

pub(super) fn history(config_path: &Path, args: &HistoryArgs) -> anyhow::Result<Exit> {
    let Some(source) = client::connect(config_path)? else {
        return Ok(Exit::Usage);
    };
    let history: History = match source {
        Source::Daemon(mut stream) => {
            let request = Request::History {
                probe: args.probe.clone(),
                since: args.since,
            };
            serde_json::from_value(client::ask(&mut stream, &request)?)
                .context("the daemon's history is malformed")?
        }
        Source::Ledger(config, ledger) => {
            ledger.guard(|ledger| query::history(&config, ledger, &args.probe, args.since))?
        }
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&history)?);
        return Ok(Exit::Ok);
    }
    let mut rows = vec![[
        "AT".to_owned(),
        "OUTCOME".to_owned(),
        "LATENCY".to_owned(),
        "DETAIL".to_owned(),
    ]];
    for r in &history.results {
        let detail = match r.error_class {
            Some(class) => format!("{class}: {}", r.detail),
            None => r.detail.clone(),
        };
        rows.push([
            r.at.to_string(),
            r.outcome.to_string(),
            format!("{:.1} ms", r.latency_ms),
            detail,
        ]);
    }
    print_rows(&rows);
    println!(
        "\n{}: {} checks, {} failed since {}",
        history.probe, history.checks, history.failed_checks, history.since
    );
    for exclusion in &history.exclusions {
        let by = exclusion
            .recorded_by
            .as_ref()
            .map_or_else(|| "unknown".to_owned(), ToString::to_string);
        println!(
            "excluded {} → {} by {by}: {}",
            exclusion.from, exclusion.to, exclusion.reason
        );
    }
    for failure in &history.write_failures {
        let lost = match (failure.first_lost, failure.last_lost) {
            (Some(first), Some(last)) => format!("{} checked {first} → {last}", failure.lost),
            _ => failure.lost.to_string(),
        };
        println!(
            "ledger could not write {} → {}: results lost (all probes): {lost}",
            failure.from, failure.to
        );
    }
    for import in &history.imports {
        let by = import
            .by
            .as_ref()
            .map_or_else(|| "unknown".to_owned(), ToString::to_string);
        let span = import
            .span
            .map(|(first, last)| format!(", checked {first} → {last}"))
            .unwrap_or_default();
        println!(
            "imported at {} by {by}: {} results of {}{span}",
            import.at,
            import.results,
            import.probes.join(", ")
        );
    }
    for span in &history.unknown {
        println!("unknown {} → {} ({})", span.from, span.to, span.reason);
    }
    Ok(Exit::Ok)
}

pub(super) fn export(config_path: &Path, args: &ExportArgs) -> anyhow::Result<Exit> {
    let Some(source) = client::connect(config_path)? else {
        return Ok(Exit::Usage);
    };
    let stdout = std::io::stdout();
    // Lines on a terminal are their own progress; into a file or a pipe they get a counter
    // (drawn only when stderr is a terminal).
    let progress = (!stdout.is_terminal()).then(|| progress::Progress::counter("lines exported"));
    let mut out = progress::Lines::new(std::io::BufWriter::new(stdout.lock()), progress.as_ref());
    match source {
        Source::Daemon(mut stream) => {
            let request = Request::Export {
                probe: args.probe.clone(),
                since: args.since,
                until: args.until,
            };
            client::send(&mut stream, &request)?;
            let reader = BufReader::new(stream);
            for line in reader.lines() {
                let line = line.context("reading the export stream")?;
                if line.starts_with("{\"done\"") {
                    out.flush()?;
                    return Ok(Exit::Ok);
                }
                if line.starts_with("{\"error\"") {
                    let value: serde_json::Value = serde_json::from_str(&line)?;
                    bail!("{}", value["error"].as_str().unwrap_or("export failed"));
                }
                writeln!(out, "{line}")?;
            }
            bail!("the daemon ended the export early")
        }
        Source::Ledger(config, ledger) => {
            ledger.guard(|ledger| {
                let probe = args
                    .probe
                    .as_deref()
                    .map(|name| query::export_probe(&config, ledger, name))
                    .transpose()?;
                query::export(ledger, probe.as_ref(), args.since, args.until, &mut out)
            })?;
            Ok(Exit::Ok)
        }
    }
}

pub(super) fn import(config_path: &Path, args: &ImportArgs) -> anyhow::Result<Exit> {
    let mut text = String::new();
    if args.file.as_os_str() == "-" {
        std::io::stdin().read_to_string(&mut text)?;
    } else {
        text = std::fs::read_to_string(&args.file)
            .with_context(|| format!("cannot read {}", args.file.display()))?;
    }
    let Some(source) = client::connect(config_path)? else {
        return Ok(Exit::Usage);
    };
    let outcome: Result<Imported, String> = match source {
        // The daemon validates against its own (running) configuration.
        Source::Daemon(mut stream) => {
            // The socket's import request carries no location: the lines carry it instead.
            if let Some(location) = &args.location {
                text = query::with_location(&text, location);
            }
            let request = Request::Import {
                bytes: Some(text.len() as u64),
                expect_lines: args.expect_lines,
            };
            client::send(&mut stream, &request)?;
            let progress = progress::Progress::bytes(text.len() as u64, "sending");
            for chunk in text.as_bytes().chunks(256 * 1024) {
                stream.write_all(chunk)?;
                progress.inc(chunk.len() as u64);
            }
            stream.shutdown(Shutdown::Write)?;
            progress.waiting("the daemon checks and stores the import");
            let mut line = String::new();
            BufReader::new(&stream).read_line(&mut line)?;
            drop(progress);
            let answer: serde_json::Value = serde_json::from_str(&line)?;
            match serde_json::from_value::<Imported>(answer["ok"].clone()) {
                Ok(imported) => Ok(imported),
                Err(_) => Err(answer["error"]
                    .as_str()
                    .unwrap_or("import failed")
                    .to_owned()),
            }
        }
        Source::Ledger(config, ledger) => {
            let now = Timestamp::now();
            ledger
                .guard(|ledger| {
                    let by = Some(this_user());
                    query::import_with_location(
                        &config,
                        ledger,
                        &text,
                        now,
                        args.expect_lines,
                        by,
                        args.location.as_ref(),
                    )
                })
                .map_err(|e| e.to_string())
        }
    };
    match outcome {
        Ok(imported) => {
            eprintln!(
                "imported {} results and {} corrections from {}",
                imported.imported,
                imported.corrections,
                args.file.display()
            );
            Ok(Exit::Ok)
        }
        Err(e) => {
            eprintln!("error: {}: {e}", args.file.display());
            Ok(Exit::Usage)
        }
    }
}

pub(super) fn exclude(config_path: &Path, args: &ExcludeArgs) -> anyhow::Result<Exit> {
    let Some(source) = client::connect(config_path)? else {
        return Ok(Exit::Usage);
    };
    if let Some(id) = &args.revoke {
        return revoke(source, id, &args.reason);
    }
    let (Some(from), Some(to)) = (args.from, args.to) else {
        bail!("--from and --to are required");
    };
    let subject = match (&args.probe, &args.sla) {
        (Some(probe), _) => ExclusionSubject::Probe(probe.clone()),
        (None, Some(sla)) => ExclusionSubject::Sla(sla.clone()),
        (None, None) => bail!("--probe or --sla is required"),
    };
    let outcome: Result<serde_json::Value, String> = match source {
        Source::Daemon(mut stream) => {
            let request = Request::Exclude {
                probe: args.probe.clone(),
                sla: args.sla.clone(),
                from,
                to,
                reason: args.reason.clone(),
            };
            client::ask(&mut stream, &request).map_err(|e| e.to_string())
        }
        Source::Ledger(config, ledger) => {
            query::exclusion(&config, &subject, from, to, &args.reason)
                .map_err(|e| e.to_string())
                .and_then(|mut exclusion| {
                    exclusion.recorded_by = Some(this_user());
                    ledger
                        .guard(|ledger| {
                            crate::query::monthly::record_exclusion(&config, ledger, &exclusion)
                        })
                        .map_err(|e| e.to_string())?;
                    serde_json::to_value(exclusion).map_err(|e| e.to_string())
                })
        }
    };
    match outcome {
        Ok(recorded) => {
            let (ExclusionSubject::Probe(name) | ExclusionSubject::Sla(name)) = &subject;
            eprintln!(
                "excluded {name} from {from} to {to}: {} (id {})",
                args.reason,
                recorded["id"].as_str().unwrap_or("?")
            );
            Ok(Exit::Ok)
        }
        Err(e) => {
            eprintln!("error: {e}");
            Ok(Exit::Usage)
        }
    }
}

/// `exclude --revoke ID --reason TEXT`.
fn revoke(source: Source, id: &str, reason: &str) -> anyhow::Result<Exit> {
    let outcome: Result<serde_json::Value, String> = match source {
        Source::Daemon(mut stream) => {
            let request = Request::Revoke {
                id: id.to_owned(),
                reason: reason.to_owned(),
            };
            client::ask(&mut stream, &request).map_err(|e| e.to_string())
        }
        Source::Ledger(config, ledger) => ledger
            .guard(|ledger| query::revoke(&config, ledger, id, reason, this_user()))
            .map_err(|e| e.to_string())
            .and_then(|listing| serde_json::to_value(listing).map_err(|e| e.to_string())),
    };
    match outcome {
        Ok(_) => {
            eprintln!("revoked exclusion {id}: {reason}");
            Ok(Exit::Ok)
        }
        Err(e) => {
            eprintln!("error: {e}");
            Ok(Exit::Usage)
        }
    }
}

pub(super) fn exclusions(config_path: &Path, args: &ExclusionsArgs) -> anyhow::Result<Exit> {
    let Some(source) = client::connect(config_path)? else {
        return Ok(Exit::Usage);
    };
    let listing: Vec<ExclusionListing> = match source {
        Source::Daemon(mut stream) => {
            let request = Request::Exclusions {
                month: args.month.clone(),
            };
            serde_json::from_value(client::ask(&mut stream, &request)?)
                .context("the daemon's exclusions are malformed")?
        }
        Source::Ledger(config, ledger) => {
            let month = args
                .month
                .as_deref()
                .map(|text| {
                    text.parse::<crate::report::Month>()
                        .with_context(|| format!("--month {text}"))
                })
                .transpose()?;
            ledger.guard(|ledger| query::exclusion_list(&config, ledger, month))?
        }
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&listing)?);
        return Ok(Exit::Ok);
    }
    let mut rows = vec![[
        "ID".to_owned(),
        "APPLIES TO".to_owned(),
        "FROM".to_owned(),
        "TO".to_owned(),
        "RECORDED".to_owned(),
        "BY".to_owned(),
        "REASON".to_owned(),
    ]];
    for e in &listing {
        let subject = match (&e.probe, &e.sla) {
            (Some(probe), _) => format!("probe {probe}"),
            (None, Some(sla)) => format!("sla {sla}"),
            (None, None) => "-".to_owned(),
        };
        let mut reason = e.reason.clone();
        if let (Some(at), Some(why)) = (e.revoked_at, &e.revocation_reason) {
            let by = e.revoked_by.as_deref().unwrap_or("unknown");
            reason.push_str(&format!(" [REVOKED {at} by {by}: {why}]"));
        }
        rows.push([
            e.id.clone(),
            subject,
            e.from.to_string(),
            e.to.to_string(),
            e.recorded_at.to_string(),
            e.recorded_by.clone(),
            reason,
        ]);
    }
    print_rows(&rows);
    let revoked = listing.iter().filter(|e| e.revoked).count();
    println!(
        "\n{} exclusion{}, {revoked} revoked",
        listing.len(),
        if listing.len() == 1 { "" } else { "s" }
    );
    Ok(Exit::Ok)
}
