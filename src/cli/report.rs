//! `upledger report` and `upledger incidents`: fetch the month from the daemon or the ledger and
//! print it as JSON (SPEC §4.1) or one of the forms of [`crate::render`].

use std::path::Path;

use anyhow::{Context, bail};
use jiff::Timestamp;

use super::{
    Exit,
    client::{self, Source},
};
use crate::{
    api::socket::Request,
    query::{
        monthly::{self, Incident, MonthDocument, Selection},
        trend,
    },
    render::{self, cause, columns, incident_duration},
    report::Month,
};

/// Output formats of `report`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(super) enum Format {
    /// Aligned columns.
    Table,
    /// One JSON document (SPEC §4.1).
    Json,
    /// Comma-separated values, one row per probe and per SLA.
    Csv,
    /// A client-ready summary.
    Markdown,
    /// A printable page per SLA (print CSS, no external assets): open it in a browser and
    /// print it to PDF.
    Html,
}

/// Arguments of `upledger report`.
#[derive(Debug, clap::Args)]
pub(super) struct ReportArgs {
    /// The month, `YYYY-MM` [default: the current month in the daemon's time zone].
    #[arg(long)]
    month: Option<String>,
    /// Only this probe.
    #[arg(long, conflicts_with = "sla")]
    probe: Option<String>,
    /// Only this SLA and its probes.
    #[arg(long)]
    sla: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
    /// Also show the last N months' availability per probe and SLA, ending with this month
    /// (1 to 12).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=12))]
    months: u32,
    /// The report as it stood at this instant (RFC 3339, or a duration back from now) instead
    /// of now: results after it are not counted, and a month it falls in is still in progress.
    #[arg(long, value_parser = parse_instant)]
    as_of: Option<Timestamp>,
    /// Sign the report (SPEC §8): write the JSON report, computed as of the hours the evidence
    /// log has sealed, to `--out` and an SSHSIG signature beside it (`FILE.sig`).
    #[arg(long, conflicts_with_all = ["format", "as_of", "months"])]
    sign: bool,
    /// Where `--sign` writes the report [default: upledger-report-YYYY-MM.json].
    #[arg(long, requires = "sign")]
    out: Option<std::path::PathBuf>,
}

/// Arguments of `upledger incidents`.
#[derive(Debug, clap::Args)]
pub(super) struct IncidentsArgs {
    /// The month, `YYYY-MM` [default: the current month].
    #[arg(long)]
    month: Option<String>,
    /// Print one JSON document instead of a table.
    #[arg(long)]
    json: bool,
    /// The incidents as they stood at this instant (RFC 3339, or a duration back from now).
    #[arg(long, value_parser = parse_instant)]
    as_of: Option<Timestamp>,
}

/// `24h` (that long ago) or an RFC 3339 instant.
fn parse_instant(text: &str) -> Result<Timestamp, String> {
    crate::query::parse_instant(text, Timestamp::now())
}

fn month_or_current(
    month: Option<&str>,
    timezone: &jiff::tz::TimeZone,
    as_of: Timestamp,
) -> anyhow::Result<Month> {
    match month {
        Some(text) => text.parse().with_context(|| format!("--month {text}")),
        None => Ok(Month::containing(as_of, timezone)),
    }
}

/// The month containing `as_of` needs the time zone; the main file alone gives it cheaply.
fn current_month_text(config_path: &Path, as_of: Timestamp) -> anyhow::Result<String> {
    let config = crate::config::load(config_path)?;
    Ok(Month::containing(as_of, &config.daemon.timezone).to_string())
}

fn fetch(
    config_path: &Path,
    args: &ReportArgs,
) -> anyhow::Result<Option<(MonthDocument, Vec<Incident>)>> {
    let Some(source) = client::connect(config_path)? else {
        return Ok(None);
    };
    let as_of = args.as_of.unwrap_or_else(Timestamp::now);
    match source {
        Source::Daemon(mut stream) => {
            let month = match &args.month {
                Some(month) => month.clone(),
                None => current_month_text(config_path, as_of)?,
            };
            let request = Request::Report {
                month: month.clone(),
                probe: args.probe.clone(),
                sla: args.sla.clone(),
                as_of: args.as_of,
                months: Some(args.months),
            };
            let document: MonthDocument =
                serde_json::from_value(client::ask(&mut stream, &request)?)
                    .context("the daemon's report is malformed")?;
            let incidents = if matches!(args.format, Format::Markdown | Format::Html) {
                let mut stream = match client::connect(config_path)? {
                    Some(Source::Daemon(stream)) => stream,
                    _ => bail!("the daemon stopped answering"),
                };
                let request = Request::Incidents {
                    month,
                    as_of: args.as_of,
                };
                serde_json::from_value(client::ask(&mut stream, &request)?)?
            } else {
                Vec::new()
            };
            Ok(Some((document, incidents)))
        }
        Source::Ledger(config, ledger) => {
            let month = month_or_current(args.month.as_deref(), &config.daemon.timezone, as_of)?;
            let selection = Selection {
                probe: args.probe.clone(),
                sla: args.sla.clone(),
            };
            let document = ledger.guard(|ledger| {
                let mut document =
                    monthly::month_document(&config, ledger, month, as_of, &selection)?;
                trend::add_trend(
                    &config,
                    ledger,
                    &mut document,
                    month,
                    as_of,
                    &selection,
                    args.months,
                )?;
                Ok::<_, crate::query::QueryError>(document)
            })?;
            // Incidents come from raw results; only the client summaries list them.
            let incidents = if matches!(args.format, Format::Markdown | Format::Html) {
                ledger.guard(|ledger| monthly::incidents(&config, ledger, month, as_of))?
            } else {
                Vec::new()
            };
            Ok(Some((document, incidents)))
        }
    }
}

pub(super) fn report(config_path: &Path, args: &ReportArgs) -> anyhow::Result<Exit> {
    if args.sign {
        return sign(config_path, args);
    }
    let Some((document, incidents)) = fetch(config_path, args)? else {
        return Ok(Exit::Usage);
    };
    let text = match args.format {
        Format::Json => serde_json::to_string_pretty(&document)? + "\n",
        Format::Table => render::table(&document),
        Format::Csv => render::csv(&document),
        Format::Markdown => render::markdown(&document, &incidents, show_details(config_path)),
        Format::Html => render::html(&document, &incidents, show_details(config_path)),
    };
    print!("{text}");
    let missed = document.probes.iter().any(|p| !p.met) || document.slas.iter().any(|s| !s.met);
    Ok(if missed { Exit::Failed } else { Exit::Ok })
}

/// `report --sign`: the signed JSON report and its signature, written to files.
fn sign(config_path: &Path, args: &ReportArgs) -> anyhow::Result<Exit> {
    let Some(report) =
        super::evidence::signed_report(config_path, &args.month, &args.probe, &args.sla)?
    else {
        return Ok(Exit::Usage);
    };
    let document: MonthDocument =
        serde_json::from_str(&report.json).context("the signed report is malformed")?;
    let out = args.out.clone().unwrap_or_else(|| {
        std::path::PathBuf::from(format!("upledger-report-{}.json", document.month))
    });
    super::evidence::write_signed(&report, &out)?;
    let missed = document.probes.iter().any(|p| !p.met) || document.slas.iter().any(|s| !s.met);
    Ok(if missed { Exit::Failed } else { Exit::Ok })
}

/// `[daemon].show_details` of the configuration: whether client-facing text may show check
/// details (addresses, OS errors). Hidden when the configuration cannot be read.
fn show_details(config_path: &Path) -> bool {
    crate::config::load(config_path).is_ok_and(|config| config.daemon.show_details)
}

pub(super) fn incidents(config_path: &Path, args: &IncidentsArgs) -> anyhow::Result<Exit> {
    let Some(source) = client::connect(config_path)? else {
        return Ok(Exit::Usage);
    };
    let as_of = args.as_of.unwrap_or_else(Timestamp::now);
    let incidents: Vec<Incident> = match source {
        Source::Daemon(mut stream) => {
            let month = match &args.month {
                Some(month) => month.clone(),
                None => current_month_text(config_path, as_of)?,
            };
            let request = Request::Incidents {
                month,
                as_of: args.as_of,
            };
            serde_json::from_value(client::ask(&mut stream, &request)?)?
        }
        Source::Ledger(config, ledger) => {
            let month = month_or_current(args.month.as_deref(), &config.daemon.timezone, as_of)?;
            ledger.guard(|ledger| monthly::incidents(&config, ledger, month, as_of))?
        }
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&incidents)?);
        return Ok(Exit::Ok);
    }
    let mut rows = vec![[
        "PROBE".to_owned(),
        "START".to_owned(),
        "END".to_owned(),
        "DURATION".to_owned(),
        "CAUSE".to_owned(),
    ]];
    for i in &incidents {
        rows.push([
            i.probe.clone(),
            i.start.to_string(),
            i.end.map_or_else(|| "-".to_owned(), |e| e.to_string()),
            incident_duration(i),
            cause(i),
        ]);
    }
    print!("{}", columns(&rows));
    println!(
        "\n{} incident{}",
        incidents.len(),
        if incidents.len() == 1 { "" } else { "s" }
    );
    Ok(Exit::Ok)
}
