//! The shell's table: one aligned row per probe (and per location), one per SLA.

use std::fmt::Write as _;

use super::{
    budget, columns, credit, downtime_rule, duration, latency_objective, markdown::step_text, pct,
};
use crate::query::{monthly::MonthDocument, trend::TrendMonth};

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

pub fn table(document: &MonthDocument) -> String {
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
            if let Some(objective) = &s.latency_objective {
                let _ = writeln!(out, "{}: {}", s.name, latency_objective(objective));
            }
        }
    }
    trend(&mut out, document);
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

/// `report --months N`: each probe's and SLA's availability over the last N months, a column
/// per month, oldest first; an asterisk marks a missed target.
fn trend(out: &mut String, document: &MonthDocument) {
    let rows: Vec<(String, &[TrendMonth])> = document
        .probes
        .iter()
        .map(|p| (p.name.clone(), p.trend.as_slice()))
        .chain(
            document
                .slas
                .iter()
                .map(|s| (format!("sla {}", s.name), s.trend.as_slice())),
        )
        .filter(|(_, trend)| trend.len() > 1)
        .collect();
    let Some((_, first)) = rows.first() else {
        return;
    };
    let mut lines: Vec<Vec<String>> = vec![
        std::iter::once("TREND".to_owned())
            .chain(first.iter().map(|m| m.month.clone()))
            .collect(),
    ];
    for (name, months) in &rows {
        lines.push(
            std::iter::once(name.clone())
                .chain(months.iter().map(|m| match m.availability {
                    Some(a) => format!("{a:.3}%{}", if m.met { "" } else { "*" }),
                    None => "–".to_owned(),
                }))
                .collect(),
        );
    }
    out.push('\n');
    out.push_str(&columns(&lines));
    out.push_str("(* target missed; – no measurements)\n");
}
