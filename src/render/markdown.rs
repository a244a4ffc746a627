//! The client-facing Markdown summary.

use std::fmt::Write as _;

use jiff::Timestamp;

use super::{
    MonthHeading, credit, downtime_rule, duration, incident_duration, latency_objective, pct,
    previous_text, public_cause,
};
use crate::query::monthly::{Incident, MonthDocument};

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
pub fn markdown(document: &MonthDocument, incidents: &[Incident], show_details: bool) -> String {
    let heading = MonthHeading::new(
        document,
        |as_of| format!("month in progress, figures as of {as_of}"),
        "final figures",
    );
    let time = |at: Timestamp| heading.time(at);
    let (period, status) = (&heading.period, &heading.status);
    let mut out = String::new();
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
        if let Some(objective) = &sla.latency_objective {
            let _ = writeln!(out, "| Response time | {} |", latency_objective(objective));
        }
        let _ = writeln!(out, "| Measurement coverage | {} |", pct(sla.coverage));
        let _ = writeln!(out, "| Service credit | {} |", credit(sla));
        if let Some(previous) = &sla.previous {
            let _ = writeln!(
                out,
                "| Previous month ({}) | {} |",
                previous.month,
                previous_text(previous)
            );
        }
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
    let lines: Vec<String> = import_lines(document, probes, time)
        .into_iter()
        .map(|line| format!("- {line}"))
        .collect();
    if !lines.is_empty() {
        section(out, "Imported results", None, &lines);
    }
}

/// One sentence per import that brought results of `probes` (every probe when `None`).
pub(super) fn import_lines(
    document: &MonthDocument,
    probes: Option<&[String]>,
    time: &dyn Fn(Timestamp) -> String,
) -> Vec<String> {
    document
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
                "{}: {} results imported by {by}, of {}{span}",
                time(import.at),
                import.results,
                import.probes.join(", ")
            )
        })
        .collect()
}

/// "back 1h 0m 0s" or "forward 1day": a clock step's size and direction.
pub(super) fn step_text(step_seconds: f64) -> String {
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
    let lines: Vec<String> = clock_step_lines(document, time)
        .into_iter()
        .map(|line| format!("- {line}"))
        .collect();
    if !lines.is_empty() {
        section(out, "Clock steps", None, &lines);
    }
}

/// One sentence per clock step touching the month.
pub(super) fn clock_step_lines(
    document: &MonthDocument,
    time: &dyn Fn(Timestamp) -> String,
) -> Vec<String> {
    document
        .clock_steps
        .iter()
        .map(|step| {
            format!(
                "{}: the monitor's clock was set {}; {} to {} counts as unknown",
                time(step.at),
                step_text(step.step_seconds),
                time(step.unknown_from),
                time(step.unknown_to)
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{query::monthly::MonthDocument, render::table};

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
