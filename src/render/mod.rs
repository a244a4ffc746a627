//! How a month report is written for people: a table for the shell, CSV for spreadsheets,
//! Markdown a vendor can paste into a client email, and printable HTML. The CLI prints them,
//! the daemon sends the Markdown with a closed month's report (SPEC §10), so they live here
//! rather than in `cli`. May use `query` and `model`.

use std::fmt::Write as _;

use crate::query::{
    latency::LatencyObjectiveReport,
    monthly::{self, Incident, MonthDocument},
    trend::Previous,
};

mod csv;
mod html;
mod markdown;
mod table;

pub use csv::csv;
pub use html::html;
pub use markdown::markdown;
pub use table::table;

pub fn cause(incident: &Incident) -> String {
    match incident.error_class {
        Some(class) => format!("{class}: {}", incident.detail),
        None => incident.detail.clone(),
    }
}

/// The cause a client may read: the error class alone, since the detail can hold internal
/// addresses and OS error numbers — unless `[daemon].show_details` allows it.
pub fn public_cause(incident: &Incident, show_details: bool) -> String {
    match (incident.error_class, show_details) {
        (_, true) => cause(incident),
        (Some(class), false) => class.to_string(),
        (None, false) => String::new(),
    }
}

/// An ended incident's length to the second; an ongoing one's so far, to the minute.
pub fn incident_duration(incident: &Incident) -> String {
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
pub fn duration(seconds: f64) -> String {
    let whole = seconds.round().max(0.0) as u64;
    humantime::format_duration(std::time::Duration::from_secs(whole)).to_string()
}

pub fn pct(value: Option<f64>) -> String {
    value.map_or_else(|| "–".to_owned(), |v| format!("{v:.4}%"))
}

/// Rows as left-aligned columns, two spaces apart.
pub fn columns<R: AsRef<[String]>>(rows: &[R]) -> String {
    let mut widths: Vec<usize> = Vec::new();
    for row in rows {
        for (i, cell) in row.as_ref().iter().enumerate() {
            if widths.len() <= i {
                widths.push(0);
            }
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (cell, width) in row.as_ref().iter().zip(&widths) {
            let _ = write!(line, "{cell:<width$}  ");
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

pub fn budget(seconds: f64) -> String {
    if seconds < 0.0 {
        format!("-{}", duration(-seconds))
    } else {
        duration(seconds)
    }
}

/// How an SLA counting whole minutes counted its downtime (SPEC §10), in words; `None` when
/// every down second counts.
pub fn downtime_rule(sla: &monthly::SlaMonth) -> Option<String> {
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

pub fn credit(sla: &monthly::SlaMonth) -> String {
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

/// A latency objective and how the month did, in words: "95th percentile under 300 ms:
/// 212.4 ms, met" or "99% of checks under 500 ms: 98.7%, missed (credit +5%)".
pub fn latency_objective(objective: &LatencyObjectiveReport) -> String {
    let bound = milliseconds(objective.bound_ms);
    let (rule, achieved) = match objective.kind.as_str() {
        "percentile" => (
            format!("{} percentile under {bound}", ordinal(objective.percent)),
            objective.achieved.map(milliseconds),
        ),
        _ => (
            format!("{}% of checks under {bound}", number(objective.percent)),
            objective.achieved.map(|v| format!("{}%", number(v))),
        ),
    };
    let verdict = match (objective.met, objective.checks) {
        (_, 0) => "no successful check to judge".to_owned(),
        (true, _) => "met".to_owned(),
        (false, _) if objective.credit_percent > 0.0 => {
            format!("missed (credit +{}%)", number(objective.credit_percent))
        }
        (false, _) => "missed".to_owned(),
    };
    match achieved {
        Some(achieved) => format!("{rule}: {achieved}, {verdict}"),
        None => format!("{rule}: {verdict}"),
    }
}

/// "300 ms", "212.4 ms", "1.5 s".
fn milliseconds(ms: f64) -> String {
    if ms >= 1_000.0 {
        format!("{} s", number(ms / 1_000.0))
    } else {
        format!("{} ms", number(ms))
    }
}

/// A figure without trailing zeros: 300, 212.4.
fn number(value: f64) -> String {
    let text = format!("{value:.3}");
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// "95th", "99.9th", "1st", "2nd", "3rd", "11th".
fn ordinal(percent: f64) -> String {
    let text = number(percent);
    let suffix = if text.contains('.') {
        "th"
    } else {
        match (percent as u64 % 100, percent as u64 % 10) {
            (11..=13, _) => "th",
            (_, 1) => "st",
            (_, 2) => "nd",
            (_, 3) => "rd",
            _ => "th",
        }
    };
    format!("{text}{suffix}")
}

/// Text escaped for HTML and XML content and attributes.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The month before in a few words: "99.98%, 8m 20s of downtime, 1 incident".
pub fn previous_text(previous: &Previous) -> String {
    if previous.availability.is_none() && previous.incidents == 0 {
        return "no measurements".to_owned();
    }
    format!(
        "{}, {} of downtime, {} incident{}",
        pct(previous.availability),
        duration(previous.downtime_seconds),
        previous.incidents,
        if previous.incidents == 1 { "" } else { "s" }
    )
}

/// What every client-facing form says about the month as a whole, in its time zone: the
/// period and whether the figures are final, and how to write an instant to the minute.
pub(crate) struct MonthHeading {
    zone: jiff::tz::TimeZone,
    /// "2026-10-01 00:00 CEST to 2026-11-01 00:00 CET (Europe/Berlin)".
    pub period: String,
    /// Whether the month is over, and as of when the figures are when it is not.
    pub status: String,
}

impl MonthHeading {
    /// `in_progress` words the status as the caller's sentence needs it.
    pub fn new(
        document: &MonthDocument,
        in_progress: impl Fn(String) -> String,
        closed: &str,
    ) -> Self {
        // The zone was validated when the configuration loaded; UTC times are still true ones.
        let zone = jiff::tz::TimeZone::get(&document.timezone).unwrap_or(jiff::tz::TimeZone::UTC);
        let time = |at: jiff::Timestamp| monthly::local_time_text(at, &zone);
        let period = format!(
            "{} to {} ({})",
            time(document.period_start),
            time(document.period_end),
            document.timezone
        );
        let status = if document.in_progress {
            in_progress(time(document.as_of))
        } else {
            closed.to_owned()
        };
        MonthHeading {
            zone,
            period,
            status,
        }
    }

    /// An instant to the minute in the report's zone.
    pub fn time(&self, at: jiff::Timestamp) -> String {
        monthly::local_time_text(at, &self.zone)
    }
}
