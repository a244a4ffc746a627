//! The shell's table: one aligned row per probe (and per location), one per SLA.

use std::fmt::Write as _;

use super::{budget, columns, credit, downtime_rule, duration, markdown::step_text, pct};
use crate::query::monthly::MonthDocument;

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
