//! `upledger report` and `upledger incidents`, and the four ways a report is written:
//! a table for the shell, JSON (SPEC §4.1) for scripts, CSV for spreadsheets, and Markdown a
//! vendor can paste into a client email.

use std::{fmt::Write as _, path::Path};

use anyhow::{Context, bail};
use jiff::Timestamp;

use super::{
    Exit,
    client::{self, Source},
};
use crate::{
    api::socket::Request,
    query::monthly::{self, Incident, MonthDocument, Selection},
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
    /// The report as it stood at this instant (RFC 3339, or a duration back from now) instead
    /// of now: results after it are not counted, and a month it falls in is still in progress.
    #[arg(long, value_parser = parse_instant)]
    as_of: Option<Timestamp>,
    /// Sign the report (SPEC §8): write the JSON report, computed as of the hours the evidence
    /// log has sealed, to `--out` and an SSHSIG signature beside it (`FILE.sig`).
    #[arg(long, conflicts_with_all = ["format", "as_of"])]
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
            };
            let document: MonthDocument =
                serde_json::from_value(client::ask(&mut stream, &request)?)
                    .context("the daemon's report is malformed")?;
            let incidents = if args.format == Format::Markdown {
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
                monthly::month_document(&config, ledger, month, as_of, &selection)
            })?;
            // Incidents come from raw results; only the Markdown summary lists them.
            let incidents = if args.format == Format::Markdown {
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
        Format::Table => table(&document),
        Format::Csv => csv(&document),
        Format::Markdown => markdown(&document, &incidents, show_details(config_path)),
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

fn cause(incident: &Incident) -> String {
    match incident.error_class {
        Some(class) => format!("{class}: {}", incident.detail),
        None => incident.detail.clone(),
    }
}

/// The cause a client may read: the error class alone, since the detail can hold internal
/// addresses and OS error numbers — unless `[daemon].show_details` allows it.
fn public_cause(incident: &Incident, show_details: bool) -> String {
    match (incident.error_class, show_details) {
        (_, true) => cause(incident),
        (Some(class), false) => class.to_string(),
        (None, false) => String::new(),
    }
}

/// An ended incident's length to the second; an ongoing one's so far, to the minute.
fn incident_duration(incident: &Incident) -> String {
    if incident.end.is_none() {
        format!(
            "ongoing for {}",
            monthly::minutes_text(incident.duration_seconds)
        )
    } else {
        duration(incident.duration_seconds)
    }
}

/// `2h 3m 4s`, to the second.
fn duration(seconds: f64) -> String {
    let whole = seconds.round().max(0.0) as u64;
    humantime::format_duration(std::time::Duration::from_secs(whole)).to_string()
}

fn pct(value: Option<f64>) -> String {
    value.map_or_else(|| "–".to_owned(), |v| format!("{v:.4}%"))
}

/// Rows as left-aligned columns, two spaces apart.
pub(super) fn columns<const N: usize>(rows: &[[String; N]]) -> String {
    let mut widths = [0usize; N];
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            let _ = write!(line, "{cell:<w$}  ", w = widths[i]);
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn heading(document: &MonthDocument) -> String {
    let state = if document.in_progress {
        format!("in progress, as of {}", document.as_of)
    } else {
        "closed".to_owned()
    };
    format!(
        "{} ({}): {} → {}, {state}\n\n",
        document.month, document.timezone, document.period_start, document.period_end
    )
}

fn table(document: &MonthDocument) -> String {
    let mut out = heading(document);
    let mut rows = vec![
        [
            "PROBE",
            "TARGET",
            "AVAILABILITY",
            "MET",
            "DOWNTIME",
            "BUDGET LEFT",
            "COVERAGE",
            "INCIDENTS",
        ]
        .map(str::to_owned),
    ];
    for p in &document.probes {
        rows.push([
            p.name.clone(),
            format!("{}%", p.target),
            pct(p.availability),
            if p.met { "yes" } else { "NO" }.to_owned(),
            duration(p.downtime_seconds),
            budget(p.budget_remaining_seconds),
            pct(p.coverage),
            p.incidents.to_string(),
        ]);
        // SPEC §9: the row above is the quorum's; each location's own figures below it.
        for l in &p.locations {
            rows.push([
                format!("  {}@{}", p.name, l.location),
                String::new(),
                pct(l.availability),
                String::new(),
                duration(l.downtime_s),
                String::new(),
                String::new(),
                String::new(),
            ]);
        }
    }
    out.push_str(&columns(&rows));
    if !document.slas.is_empty() {
        out.push('\n');
        let mut rows =
            vec![["SLA", "CLIENT", "TARGET", "AVAILABILITY", "MET", "CREDIT"].map(str::to_owned)];
        for s in &document.slas {
            rows.push([
                s.name.clone(),
                s.client.clone().unwrap_or_default(),
                format!("{}%", s.target),
                pct(s.availability),
                if s.met { "yes" } else { "NO" }.to_owned(),
                credit(s),
            ]);
        }
        out.push_str(&columns(&rows));
        for s in &document.slas {
            if let Some(rule) = downtime_rule(s) {
                let _ = writeln!(out, "{}: downtime counts {rule}", s.name);
            }
        }
    }
    for p in document
        .probes
        .iter()
        .filter_map(|p| p.forecast.as_ref().map(|f| (p, f)))
    {
        if let Some(at) = p.1.budget_exhausted_at {
            let _ = writeln!(
                out,
                "\n{}: at the current rate the error budget runs out at {at}",
                p.0.name
            );
        }
    }
    for step in &document.clock_steps {
        let _ = writeln!(
            out,
            "\nclock stepped {} at {}: {} to {} counts as unknown",
            step_text(step.step_seconds),
            step.at,
            step.unknown_from,
            step.unknown_to
        );
    }
    for damage in &document.damage {
        let _ = writeln!(
            out,
            "\nDAMAGED: probe {} from {} to {} counts as unknown: {} (see upledger fsck)",
            damage.probe, damage.from, damage.to, damage.what
        );
    }
    out
}

fn budget(seconds: f64) -> String {
    if seconds < 0.0 {
        format!("-{}", duration(-seconds))
    } else {
        duration(seconds)
    }
}

/// How an SLA counting whole minutes counted its downtime (SPEC §10), in words; `None` when
/// every down second counts.
fn downtime_rule(sla: &monthly::SlaMonth) -> Option<String> {
    if sla.downtime_unit.as_deref() != Some("minute") {
        return None;
    }
    Some(match sla.min_downtime_minutes {
        Some(run) if run > 1 => {
            format!("only whole clock minutes entirely down, in runs of at least {run} minutes")
        }
        _ => "only whole clock minutes entirely down".to_owned(),
    })
}

fn credit(sla: &monthly::SlaMonth) -> String {
    if sla.credit_percent == 0.0 {
        return "none".to_owned();
    }
    match &sla.currency {
        Some(currency) => format!(
            "{}% = {:.2} {currency}",
            sla.credit_percent, sla.credit_amount
        ),
        None => format!("{}%", sla.credit_percent),
    }
}

/// RFC 4180 rows: a field holding a comma, a quote, CR or LF is quoted, its quotes doubled
/// (an SLA named `acme, premium` stays one field).
fn csv(document: &MonthDocument) -> String {
    fn field(text: &str) -> String {
        if text.contains([',', '"', '\r', '\n']) {
            format!("\"{}\"", text.replace('"', "\"\""))
        } else {
            text.to_owned()
        }
    }
    fn row(out: &mut String, fields: &[String]) {
        let fields: Vec<String> = fields.iter().map(|f| field(f)).collect();
        out.push_str(&fields.join(","));
        out.push('\n');
    }
    let mut out = String::from(
        "kind,name,month,target,availability,coverage,met,downtime_seconds,eligible_seconds,budget_seconds,budget_remaining_seconds,up_seconds,degraded_seconds,down_seconds,maintenance_seconds,unknown_seconds,excluded_seconds,checks,failed_checks,incidents,credit_percent,credit_amount,currency\n",
    );
    let opt = |v: Option<f64>| v.map(|v| v.to_string()).unwrap_or_default();
    for p in &document.probes {
        let mut fields = vec![
            "probe".to_owned(),
            p.name.clone(),
            document.month.clone(),
            p.target.to_string(),
            opt(p.availability),
            opt(p.coverage),
            p.met.to_string(),
            p.downtime_seconds.to_string(),
            p.eligible_seconds.to_string(),
            p.budget_seconds.to_string(),
            p.budget_remaining_seconds.to_string(),
            p.up_seconds.to_string(),
            p.degraded_seconds.to_string(),
            p.down_seconds.to_string(),
            p.maintenance_seconds.to_string(),
            p.unknown_seconds.to_string(),
            p.excluded_seconds.to_string(),
            p.checks.to_string(),
            p.failed_checks.to_string(),
            p.incidents.to_string(),
        ];
        fields.resize(23, String::new());
        row(&mut out, &fields);
    }
    for s in &document.slas {
        let mut fields = vec![
            "sla".to_owned(),
            s.name.clone(),
            document.month.clone(),
            s.target.to_string(),
            opt(s.availability),
            opt(s.coverage),
            s.met.to_string(),
            s.downtime_seconds.to_string(),
            s.eligible_seconds.to_string(),
            s.budget_seconds.to_string(),
            s.budget_remaining_seconds.to_string(),
        ];
        fields.resize(20, String::new());
        fields.extend([
            s.credit_percent.to_string(),
            s.credit_amount.to_string(),
            s.currency.clone().unwrap_or_default(),
        ]);
        row(&mut out, &fields);
    }
    out
}

/// A Markdown section: its title, then "None." or the (optional) table header and lines.
fn section(out: &mut String, title: &str, header: Option<&str>, lines: &[String]) {
    let _ = writeln!(out, "## {title}\n");
    if lines.is_empty() {
        let _ = writeln!(out, "None.\n");
        return;
    }
    if let Some(header) = header {
        let _ = writeln!(out, "{header}");
    }
    for line in lines {
        let _ = writeln!(out, "{line}");
    }
    out.push('\n');
}

/// The client-facing summary: times to the minute in the report's time zone, and no check
/// details (see [`public_cause`]) unless `show_details`.
fn markdown(document: &MonthDocument, incidents: &[Incident], show_details: bool) -> String {
    // The zone was validated when the configuration loaded; UTC times are still true ones.
    let zone = jiff::tz::TimeZone::get(&document.timezone).unwrap_or(jiff::tz::TimeZone::UTC);
    let time = |at: Timestamp| monthly::local_time_text(at, &zone);
    let mut out = String::new();
    let period = format!(
        "{} to {} ({})",
        time(document.period_start),
        time(document.period_end),
        document.timezone
    );
    let status = if document.in_progress {
        format!("month in progress, figures as of {}", time(document.as_of))
    } else {
        "final figures".to_owned()
    };
    for sla in &document.slas {
        let client = sla.client.clone().unwrap_or_else(|| sla.name.clone());
        let _ = writeln!(
            out,
            "# Service availability report — {client}, {}\n",
            document.month
        );
        let _ = writeln!(out, "Agreement **{}** · {period} · {status}\n", sla.name);
        let _ = writeln!(out, "| | |\n|---|---|");
        let _ = writeln!(out, "| Target | {}% |", sla.target);
        let _ = writeln!(
            out,
            "| Achieved | {} {} |",
            pct(sla.availability),
            if sla.met { "(met)" } else { "(**missed**)" }
        );
        let rule = downtime_rule(sla)
            .map(|rule| format!(" ({rule})"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "| Downtime counted | {}{rule} |",
            duration(sla.downtime_seconds)
        );
        let _ = writeln!(out, "| Measurement coverage | {} |", pct(sla.coverage));
        let _ = writeln!(out, "| Service credit | {} |", credit(sla));
        let _ = writeln!(out, "| Services covered | {} |\n", sla.probes.join(", "));
        let mine: Vec<&Incident> = incidents
            .iter()
            .filter(|i| sla.probes.contains(&i.probe))
            .collect();
        let incident_lines: Vec<String> = mine
            .iter()
            .map(|i| {
                let end = i.end.map_or_else(|| "—".to_owned(), time);
                format!(
                    "| {} | {} | {end} | {} | {} |",
                    i.probe,
                    time(i.start),
                    incident_duration(i),
                    public_cause(i, show_details)
                )
            })
            .collect();
        section(
            &mut out,
            "Incidents",
            Some("| Service | Start | End | Duration | Cause |\n|---|---|---|---|---|"),
            &incident_lines,
        );
        let windows: Vec<String> = sla
            .maintenance
            .iter()
            .map(|w| format!("- {} to {}: {}", time(w.start), time(w.end), w.reason))
            .collect();
        section(&mut out, "Planned maintenance", None, &windows);
        let exclusions: Vec<String> = document
            .probes
            .iter()
            .filter(|p| sla.probes.contains(&p.name))
            .flat_map(|p| {
                p.exclusions.iter().map(move |e| {
                    let by = e
                        .recorded_by
                        .as_ref()
                        .map(|by| format!(" (entered by {by})"))
                        .unwrap_or_default();
                    format!(
                        "- {}: {} to {} — {}{by}",
                        p.name,
                        time(e.from),
                        time(e.to),
                        e.reason
                    )
                })
            })
            .collect();
        section(&mut out, "Exclusions", None, &exclusions);
        imports_section(&mut out, document, Some(&sla.probes), &time);
        clock_steps_section(&mut out, document, &time);
    }
    if document.slas.is_empty() {
        let _ = writeln!(
            out,
            "# Availability report — {}\n\n{period} · {status}\n",
            document.month
        );
        let _ = writeln!(
            out,
            "| Service | Target | Achieved | Downtime | Incidents |\n|---|---|---|---|---|"
        );
        for p in &document.probes {
            let _ = writeln!(
                out,
                "| {} | {}% | {} | {} | {} |",
                p.name,
                p.target,
                pct(p.availability),
                duration(p.downtime_seconds),
                p.incidents
            );
        }
        out.push('\n');
        imports_section(&mut out, document, None, &time);
        clock_steps_section(&mut out, document, &time);
    }
    out
}

/// The imports that brought results of `probes` (every probe when `None`) into the month, when
/// there are any: those results were not measured by this monitor, and a reader must be told
/// who put them there.
fn imports_section(
    out: &mut String,
    document: &MonthDocument,
    probes: Option<&[String]>,
    time: &dyn Fn(Timestamp) -> String,
) {
    let lines: Vec<String> = document
        .imports
        .iter()
        .filter(|import| {
            probes.is_none_or(|probes| import.probes.iter().any(|p| probes.contains(p)))
        })
        .map(|import| {
            let by = import
                .by
                .as_ref()
                .map_or_else(|| "an unknown user".to_owned(), ToString::to_string);
            let span = import
                .span
                .map(|(first, last)| format!(", checked {} to {}", time(first), time(last)))
                .unwrap_or_default();
            format!(
                "- {}: {} results imported by {by}, of {}{span}",
                time(import.at),
                import.results,
                import.probes.join(", ")
            )
        })
        .collect();
    if !lines.is_empty() {
        section(out, "Imported results", None, &lines);
    }
}

/// "back 1h 0m 0s" or "forward 1day": a clock step's size and direction.
fn step_text(step_seconds: f64) -> String {
    let direction = if step_seconds < 0.0 {
        "back"
    } else {
        "forward"
    };
    let size = std::time::Duration::try_from_secs_f64(step_seconds.abs().round())
        .map(|d| humantime::format_duration(d).to_string())
        .unwrap_or_else(|_| format!("{step_seconds} s"));
    format!("{direction} {size}")
}

/// The clock steps touching the month, when there are any: the time they made ambiguous is
/// unknown in the figures, and a reader must be told why.
fn clock_steps_section(
    out: &mut String,
    document: &MonthDocument,
    time: &dyn Fn(Timestamp) -> String,
) {
    if document.clock_steps.is_empty() {
        return;
    }
    let lines: Vec<String> = document
        .clock_steps
        .iter()
        .map(|step| {
            format!(
                "- {}: the monitor's clock was set {}; {} to {} counts as unknown",
                time(step.at),
                step_text(step.step_seconds),
                time(step.unknown_from),
                time(step.unknown_to)
            )
        })
        .collect();
    section(out, "Clock steps", None, &lines);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// November 2026 in Europe/Berlin, in progress, one SLA with a maintenance window.
    fn november() -> MonthDocument {
        serde_json::from_value(serde_json::json!({
            "month": "2026-11", "timezone": "Europe/Berlin",
            "period_start": "2026-10-31T23:00:00Z", "period_end": "2026-11-30T23:00:00Z",
            "in_progress": true, "as_of": "2026-11-03T14:10:45.123456789Z",
            "probes": [],
            "slas": [{
                "name": "acme", "client": "ACME Corp", "probes": ["db"], "mode": "all",
                "target": 99.9, "availability": 99.5, "availability_exact": "199/200",
                "coverage": 100.0, "downtime_seconds": 8_130.0, "eligible_seconds": 1_626_000.0,
                "budget_seconds": 2_592.0, "budget_remaining_seconds": -5_538.0, "met": false,
                "credit_percent": 0.0, "credit_amount": 0.0, "currency": null,
                "maintenance": [{
                    "start": "2026-11-08T02:00:00Z", "end": "2026-11-08T04:00:00Z",
                    "reason": "database upgrade", "first_seen": null, "seen_late": false
                }]
            }]
        }))
        .unwrap()
    }

    /// An ongoing outage (2 h 10 m so far) and an ended one whose detail names an address.
    fn incidents() -> Vec<Incident> {
        let detail = "connection refused (os error 111) to 192.0.2.7:5432".to_owned();
        let at = |text: &str| text.parse::<Timestamp>().unwrap();
        vec![
            Incident {
                probe: "db".to_owned(),
                start: at("2026-11-02T08:00:00.250Z"),
                end: Some(at("2026-11-02T08:05:00.250Z")),
                ongoing: false,
                duration_seconds: 300.0,
                error_class: Some(crate::model::ErrorClass::Connect),
                detail: detail.clone(),
            },
            Incident {
                probe: "db".to_owned(),
                start: at("2026-11-03T12:00:00Z"),
                end: None,
                ongoing: true,
                duration_seconds: 7_830.5,
                error_class: Some(crate::model::ErrorClass::Connect),
                detail,
            },
        ]
    }

    #[test]
    fn the_markdown_report_reads_in_its_zone_without_details() {
        let text = markdown(&november(), &incidents(), false);
        for shown in [
            "2026-11-01 00:00 CET to 2026-12-01 00:00 CET (Europe/Berlin)",
            "figures as of 2026-11-03 15:10 CET",
            "| db | 2026-11-02 09:00 CET | 2026-11-02 09:05 CET | 5m | connect |",
            "| db | 2026-11-03 13:00 CET | — | ongoing for 2h 10m | connect |",
            "- 2026-11-08 03:00 CET to 2026-11-08 05:00 CET: database upgrade",
        ] {
            assert!(text.contains(shown), "the report lacks {shown:?}:\n{text}");
        }
        for hidden in [
            "UTC",
            "192.0.2.7",
            "os error",
            "refused",
            ":00Z",
            ".250",
            ".123",
        ] {
            assert!(
                !text.contains(hidden),
                "the report shows {hidden:?}:\n{text}"
            );
        }
    }

    #[test]
    fn reports_say_when_downtime_counts_whole_minutes() {
        let seconds = november();
        assert!(!markdown(&seconds, &[], false).contains("clock minutes"));
        assert!(!table(&seconds).contains("clock minutes"));
        let mut minutes = november();
        minutes.slas[0].downtime_unit = Some("minute".to_owned());
        minutes.slas[0].min_downtime_minutes = Some(5);
        let text = markdown(&minutes, &[], false);
        assert!(
            text.contains(
                "| Downtime counted | 2h 15m 30s (only whole clock minutes entirely down, in runs of at least 5 minutes) |"
            ),
            "{text}"
        );
        assert!(
            table(&minutes).contains(
                "acme: downtime counts only whole clock minutes entirely down, in runs of at least 5 minutes"
            ),
            "{}",
            table(&minutes)
        );
        minutes.slas[0].min_downtime_minutes = Some(1);
        assert!(
            table(&minutes)
                .contains("acme: downtime counts only whole clock minutes entirely down\n")
        );
    }

    #[test]
    fn the_markdown_report_shows_details_when_allowed() {
        let text = markdown(&november(), &incidents(), true);
        assert!(
            text.contains("| connect: connection refused (os error 111) to 192.0.2.7:5432 |"),
            "{text}"
        );
    }
}
