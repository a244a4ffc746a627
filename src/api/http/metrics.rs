//! `/metrics` in the Prometheus text format (version 0.0.4): live state from the status board,
//! month figures from the cache. One pass over the probes per family, one string, no sorting
//! beyond the config's order: cheap with 10,000 probes.

use std::{collections::HashMap, fmt::Write as _};

use super::figures::Figures;
use crate::{
    config::Config,
    daemon::lag::{BOUNDS_US, LagSnapshot},
    model::{NameMap, State},
    query::ProbeStatus,
};

/// The metrics text for the public probes.
pub fn render(
    config: &Config,
    board: &NameMap<ProbeStatus>,
    figures: &Figures,
    lag: &LagSnapshot,
) -> String {
    let public: Vec<(&str, Option<&ProbeStatus>)> = config
        .probes
        .iter()
        .filter(|spec| spec.public)
        .map(|spec| (spec.name.as_str(), board.get(&spec.name)))
        .collect();
    let mut out = String::with_capacity(public.len() * 600 + 1024);
    let family = |out: &mut String, name: &str, kind: &str, help: &str| {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
    };

    family(
        &mut out,
        "upledger_probe_up",
        "gauge",
        "1 while the probe's confirmed state is up or degraded, 0 otherwise.",
    );
    for (name, status) in &public {
        let up = status.is_some_and(|s| matches!(s.state, State::Up | State::Degraded));
        let _ = writeln!(
            out,
            "upledger_probe_up{{probe=\"{name}\"}} {}",
            u8::from(up)
        );
    }

    family(
        &mut out,
        "upledger_probe_state",
        "gauge",
        "The probe's confirmed state as the state label (up, degraded, down, maintenance, unknown); a past state's series ends when it changes.",
    );
    for (name, status) in &public {
        let current = status.map_or(State::Unknown, |s| s.state);
        let _ = writeln!(
            out,
            "upledger_probe_state{{probe=\"{name}\",state=\"{current}\"}} 1"
        );
    }

    family(
        &mut out,
        "upledger_check_duration_seconds",
        "gauge",
        "How long the newest check took.",
    );
    for (name, status) in &public {
        if let Some(last) = status.and_then(|s| s.last.as_ref()) {
            let _ = writeln!(
                out,
                "upledger_check_duration_seconds{{probe=\"{name}\"}} {}",
                last.latency_ms / 1e3
            );
        }
    }

    family(
        &mut out,
        "upledger_checks_total",
        "counter",
        "Checks recorded since the daemon started.",
    );
    for (name, status) in &public {
        let checks = status.map_or(0, |s| s.checks_since_start);
        let _ = writeln!(out, "upledger_checks_total{{probe=\"{name}\"}} {checks}");
    }

    let months: HashMap<&str, &crate::query::monthly::ProbeMonth> = figures
        .month
        .as_ref()
        .map(|doc| doc.probes.iter().map(|p| (p.name.as_str(), p)).collect())
        .unwrap_or_default();
    family(
        &mut out,
        "upledger_month_availability_ratio",
        "gauge",
        "Availability this month so far (0-1), against the target; absent without evidence.",
    );
    for (name, _) in &public {
        if let Some(availability) = months.get(name).and_then(|m| m.availability) {
            let _ = writeln!(
                out,
                "upledger_month_availability_ratio{{probe=\"{name}\"}} {}",
                availability / 100.0
            );
        }
    }
    family(
        &mut out,
        "upledger_month_target_ratio",
        "gauge",
        "The probe's monthly availability target (0-1).",
    );
    for (name, _) in &public {
        if let Some(month) = months.get(name) {
            let _ = writeln!(
                out,
                "upledger_month_target_ratio{{probe=\"{name}\"}} {}",
                month.target / 100.0
            );
        }
    }
    family(
        &mut out,
        "upledger_budget_remaining_seconds",
        "gauge",
        "This month's error budget left (negative once overspent).",
    );
    for (name, _) in &public {
        if let Some(month) = months.get(name) {
            let _ = writeln!(
                out,
                "upledger_budget_remaining_seconds{{probe=\"{name}\"}} {}",
                month.budget_remaining_seconds
            );
        }
    }

    family(
        &mut out,
        "upledger_schedule_lag_seconds",
        "histogram",
        "How late checks started against their planned start, since the daemon started.",
    );
    for (bound, count) in BOUNDS_US.iter().zip(&lag.cumulative) {
        let le = *bound as f64 / 1e6;
        let _ = writeln!(
            out,
            "upledger_schedule_lag_seconds_bucket{{le=\"{le}\"}} {count}"
        );
    }
    let total = lag.cumulative.last().copied().unwrap_or(0);
    let _ = writeln!(
        out,
        "upledger_schedule_lag_seconds_bucket{{le=\"+Inf\"}} {total}"
    );
    let _ = writeln!(
        out,
        "upledger_schedule_lag_seconds_sum {}",
        lag.sum_us as f64 / 1e6
    );
    let _ = writeln!(out, "upledger_schedule_lag_seconds_count {total}");
    out
}
