//! `/metrics` in the Prometheus text format (version 0.0.4): live state and per-probe check
//! tallies from the status board, month figures from the cache. One pass over the probes per
//! family, one string, no sorting beyond the config's order: cheap with 10,000 probes.
//!
//! Written by hand rather than with `prometheus-client`: the counters already live in the
//! status board, updated under the lock the recorder holds anyway (see
//! [`crate::query::tally`]), and the probes shown change with the configuration (public,
//! enabled), which a registry of label sets would have to be kept in step with. The lines a
//! probe repeats most (histogram buckets) are appended piece by piece, without the formatting
//! machinery, because at 10,000 probes they are most of a scrape.

use std::{collections::HashMap, fmt::Write as _};

use super::figures::Figures;
use crate::{
    config::Config,
    daemon::lag::{BOUNDS_US, LagSnapshot},
    model::{NameMap, State},
    query::{
        ProbeStatus,
        locations::{Located, located},
        tally::{CheckTally, DURATION_BUCKETS, OUTCOMES},
    },
};

/// Significant digits kept of a ratio computed from a percentage. The percentages carry at
/// most 10 (availability: 6 decimals of a percent; targets: 7), so 12 keep every one of them
/// and drop only the division's rounding noise (`99.9 / 100` is `0.9990000000000001`).
const RATIO_DIGITS: usize = 12;

/// The metrics text for the public, enabled probes.
pub fn render(
    config: &Config,
    board: &NameMap<ProbeStatus>,
    figures: &Figures,
    lag: &LagSnapshot,
) -> String {
    let public: Vec<(&str, Option<&ProbeStatus>)> = config
        .probes
        .iter()
        .filter(|spec| spec.public && spec.enabled)
        .map(|spec| (spec.name.as_str(), board.get(&spec.name)))
        .collect();
    let mut out = String::with_capacity(public.len() * 2_000 + 2_048);
    family(
        &mut out,
        "upledger_build_info",
        "gauge",
        "Always 1; the version label names the upledger build that answers.",
    );
    let _ = writeln!(
        out,
        "upledger_build_info{{version=\"{}\"}} 1",
        env!("CARGO_PKG_VERSION")
    );

    family(
        &mut out,
        "upledger_probe_up",
        "gauge",
        "1 while the probe's confirmed state is up or degraded, 0 otherwise.",
    );
    for (name, status) in &public {
        let up = status.is_some_and(|s| matches!(s.state, State::Up | State::Degraded));
        series(&mut out, "upledger_probe_up", name, None);
        push_u64(&mut out, u64::from(up));
        out.push('\n');
    }

    family(
        &mut out,
        "upledger_probe_state",
        "gauge",
        "The probe's confirmed state as the state label (up, degraded, down, maintenance, unknown); a past state's series ends when it changes.",
    );
    for (name, status) in &public {
        let current = status.map_or(State::Unknown, |s| s.state);
        series(
            &mut out,
            "upledger_probe_state",
            name,
            Some(("state", current.as_str())),
        );
        out.push_str("1\n");
    }

    // SPEC §9: a probe read over locations carries its quorum's state above; each location's
    // own state is a series of its own, labelled by location.
    let located: Vec<(&str, Located)> = config
        .probes
        .iter()
        .filter(|spec| spec.public && spec.enabled)
        .filter_map(|spec| Some((spec.name.as_str(), located(config, spec)?)))
        .collect();
    if !located.is_empty() {
        location_families(&mut out, board, &located, figures);
    }

    family(
        &mut out,
        "upledger_last_check_duration_seconds",
        "gauge",
        "How long the newest check took.",
    );
    for (name, status) in &public {
        if let Some(last) = status.and_then(|s| s.last.as_ref()) {
            // The status keeps milliseconds with microsecond digits; dividing the whole
            // microseconds once gives 0.0123, not 0.012299999999999998.
            let micros = (last.latency_ms * 1e3).round();
            let _ = writeln!(
                out,
                "upledger_last_check_duration_seconds{{probe=\"{name}\"}} {}",
                micros / 1e6
            );
        }
    }

    let idle = CheckTally::default();
    let tally = |status: &Option<&ProbeStatus>| -> CheckTally { status.map_or(idle, |s| s.tally) };

    family(
        &mut out,
        "upledger_check_duration_seconds",
        "histogram",
        "How long checks took, since the daemon started.",
    );
    for (name, status) in &public {
        histogram(&mut out, name, &tally(status));
    }

    family(
        &mut out,
        "upledger_checks_total",
        "counter",
        "Checks recorded since the daemon started, by outcome (up, degraded, down, unknown).",
    );
    for (name, status) in &public {
        let counts = tally(status).outcomes;
        for (outcome, count) in OUTCOMES.iter().zip(counts) {
            series(
                &mut out,
                "upledger_checks_total",
                name,
                Some(("outcome", outcome.as_str())),
            );
            push_u64(&mut out, count);
            out.push('\n');
        }
    }

    family(
        &mut out,
        "upledger_cert_expiry_timestamp_seconds",
        "gauge",
        "When the leaf certificate the newest TLS handshake showed expires (notAfter), as Unix time.",
    );
    for (name, status) in &public {
        if let Some(not_after) = tally(status).cert_not_after {
            series(
                &mut out,
                "upledger_cert_expiry_timestamp_seconds",
                name,
                None,
            );
            let _ = writeln!(out, "{not_after}");
        }
    }

    let months: HashMap<&str, &crate::query::monthly::ProbeMonth> = figures
        .month
        .as_ref()
        .map(|doc| doc.probes.iter().map(|p| (p.name.as_str(), p)).collect())
        .unwrap_or_default();
    let mut scratch = String::new();
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
                ratio_of_percent(availability, &mut scratch)
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
                ratio_of_percent(month.target, &mut scratch)
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

    sla_families(&mut out, figures, &mut scratch);

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

/// The month so far of every SLA, and its latency objective where it has one (SPEC §10).
fn sla_families(out: &mut String, figures: &Figures, scratch: &mut String) {
    let slas = figures
        .month
        .as_ref()
        .map(|doc| doc.slas.as_slice())
        .unwrap_or_default();
    family(
        out,
        "upledger_sla_availability_ratio",
        "gauge",
        "An SLA's availability this month so far (0-1); absent without evidence.",
    );
    for sla in slas {
        if let Some(availability) = sla.availability {
            let _ = writeln!(
                out,
                "upledger_sla_availability_ratio{{sla=\"{}\"}} {}",
                label_value(&sla.name),
                ratio_of_percent(availability, scratch)
            );
        }
    }
    family(
        out,
        "upledger_sla_met",
        "gauge",
        "1 while the SLA's month so far meets its terms (availability and latency objective), else 0.",
    );
    for sla in slas {
        let _ = writeln!(
            out,
            "upledger_sla_met{{sla=\"{}\"}} {}",
            label_value(&sla.name),
            u8::from(sla.met)
        );
    }
    let objectives: Vec<_> = slas
        .iter()
        .filter_map(|sla| {
            sla.latency_objective
                .as_ref()
                .map(|o| (label_value(&sla.name), o))
        })
        .collect();
    family(
        out,
        "upledger_sla_latency_objective_met",
        "gauge",
        "1 while the month's successful checks keep the SLA's latency objective, else 0.",
    );
    for (name, objective) in &objectives {
        let _ = writeln!(
            out,
            "upledger_sla_latency_objective_met{{sla=\"{name}\"}} {}",
            u8::from(objective.met)
        );
    }
    family(
        out,
        "upledger_sla_latency_percentile_seconds",
        "gauge",
        "The month's percentile of successful check latencies that a percentile objective names.",
    );
    for (name, objective) in objectives.iter().filter(|(_, o)| o.kind == "percentile") {
        if let Some(ms) = objective.achieved {
            let _ = writeln!(
                out,
                "upledger_sla_latency_percentile_seconds{{sla=\"{name}\",percentile=\"{}\"}} {}",
                objective.percent,
                ms / 1e3
            );
        }
    }
    family(
        out,
        "upledger_sla_latency_under_bound_ratio",
        "gauge",
        "The share (0-1) of the month's successful checks under the latency objective's bound.",
    );
    for (name, objective) in &objectives {
        if objective.checks > 0 {
            let _ = writeln!(
                out,
                "upledger_sla_latency_under_bound_ratio{{sla=\"{name}\",bound_seconds=\"{}\"}} {}",
                objective.bound_ms / 1e3,
                objective.checks_under as f64 / objective.checks as f64
            );
        }
    }
}

/// The families of probes read over locations: the quorum, and per location its state
/// (as the board holds it under the location's series), its checks and its month.
fn location_families(
    out: &mut String,
    board: &NameMap<ProbeStatus>,
    located: &[(&str, Located)],
    figures: &Figures,
) {
    family(
        out,
        "upledger_probe_quorum",
        "gauge",
        "How many of a probe's locations must see it down for it to be down.",
    );
    for (name, located) in located {
        series(out, "upledger_probe_quorum", name, None);
        push_u64(out, located.quorum as u64);
        out.push('\n');
    }
    // One series per probe and location, its value from the location's board entry.
    let each =
        |out: &mut String, metric: &str, value: &dyn Fn(Option<&ProbeStatus>, &mut String)| {
            for (name, located) in located {
                for (location, series_name) in &located.series {
                    let _ = write!(out, "{metric}{{probe=\"{name}\",location=\"{location}\"}} ");
                    value(board.get(series_name), out);
                    out.push('\n');
                }
            }
        };
    family(
        out,
        "upledger_probe_location_up",
        "gauge",
        "1 while the location's own confirmed state of the probe is up or degraded, 0 otherwise.",
    );
    each(out, "upledger_probe_location_up", &|status, out| {
        let up = status.is_some_and(|s| matches!(s.state, State::Up | State::Degraded));
        push_u64(out, u64::from(up));
    });
    family(
        out,
        "upledger_probe_location_state",
        "gauge",
        "The location's own confirmed state of the probe as the state label; a past state's series ends when it changes.",
    );
    for (name, located) in located {
        for (location, series_name) in &located.series {
            let state = board.get(series_name).map_or(State::Unknown, |s| s.state);
            let _ = writeln!(
                out,
                "upledger_probe_location_state{{probe=\"{name}\",location=\"{location}\",state=\"{}\"}} 1",
                state.as_str()
            );
        }
    }
    family(
        out,
        "upledger_probe_location_checks_total",
        "counter",
        "Checks of the probe from the location received since the daemon started.",
    );
    each(
        out,
        "upledger_probe_location_checks_total",
        &|status, out| {
            push_u64(out, status.map_or(0, |s| s.tally.checks()));
        },
    );
    let months: HashMap<&str, &crate::query::monthly::ProbeMonth> = figures
        .month
        .as_ref()
        .map(|doc| doc.probes.iter().map(|p| (p.name.as_str(), p)).collect())
        .unwrap_or_default();
    family(
        out,
        "upledger_month_location_availability_ratio",
        "gauge",
        "Availability this month so far (0-1) seen from the location; absent without evidence.",
    );
    let mut scratch = String::new();
    for (name, _) in located {
        let Some(month) = months.get(name) else {
            continue;
        };
        for location in &month.locations {
            if let Some(availability) = location.availability {
                let _ = writeln!(
                    out,
                    "upledger_month_location_availability_ratio{{probe=\"{name}\",location=\"{}\"}} {}",
                    location.location,
                    ratio_of_percent(availability, &mut scratch)
                );
            }
        }
    }
}

/// The evidence log's and the witness's state, read from the ledger for `/metrics`.
#[derive(Debug, Clone, Default)]
pub struct EvidenceGauges {
    /// Size of the newest signed checkpoint (0 before the first).
    pub checkpoint_size: u64,
    /// Per `[evidence] witnesses` URL, the size it last cosigned (0: none yet).
    pub cosigned: Vec<(String, u64)>,
    /// Per `[witness]` log origin: the size this witness last cosigned, and when the log was
    /// last heard from (seconds since the epoch).
    pub witnessed: Vec<(String, u64, Option<i64>)>,
    /// An agent's results written but not yet stored by JetStream (SPEC §9); `None` when
    /// this daemon is no agent.
    pub replication_backlog: Option<u64>,
}

/// Writes a metric family's `# HELP` and `# TYPE` lines.
fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// Appends the evidence and witness families: what an operator alerts on when a witness
/// stops cosigning (the gap between the two sizes grows) or a witnessed log goes quiet.
pub fn render_evidence(out: &mut String, gauges: &EvidenceGauges) {
    let family = |out: &mut String, name: &str, help: &str| family(out, name, "gauge", help);
    family(
        out,
        "upledger_checkpoint_size",
        "Leaves in the newest signed checkpoint of this daemon's evidence log.",
    );
    let _ = writeln!(out, "upledger_checkpoint_size {}", gauges.checkpoint_size);
    if !gauges.cosigned.is_empty() {
        family(
            out,
            "upledger_witness_cosigned_size",
            "Leaves in the newest checkpoint of this log each witness has cosigned.",
        );
        for (url, size) in &gauges.cosigned {
            let _ = writeln!(
                out,
                "upledger_witness_cosigned_size{{witness=\"{}\"}} {size}",
                label_value(url)
            );
        }
    }
    if let Some(backlog) = gauges.replication_backlog {
        family(
            out,
            "upledger_replication_backlog",
            "Results this agent wrote that NATS JetStream has not stored yet (they wait in the ledger).",
        );
        let _ = writeln!(out, "upledger_replication_backlog {backlog}");
    }
    if !gauges.witnessed.is_empty() {
        family(
            out,
            "upledger_witnessed_log_size",
            "Leaves in the newest checkpoint this witness cosigned, per witnessed log.",
        );
        for (origin, size, _) in &gauges.witnessed {
            let _ = writeln!(
                out,
                "upledger_witnessed_log_size{{log=\"{}\"}} {size}",
                label_value(origin)
            );
        }
        family(
            out,
            "upledger_witnessed_log_last_heard_seconds",
            "When each witnessed log last sent a validly signed checkpoint (Unix time).",
        );
        for (origin, _, heard) in &gauges.witnessed {
            if let Some(heard) = heard {
                let _ = writeln!(
                    out,
                    "upledger_witnessed_log_last_heard_seconds{{log=\"{}\"}} {heard}",
                    label_value(origin)
                );
            }
        }
    }
}

/// A label value escaped as the exposition format asks (backslash, quote, newline).
fn label_value(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// One probe's `upledger_check_duration_seconds` buckets, sum and count.
fn histogram(out: &mut String, probe: &str, tally: &CheckTally) {
    const BUCKET: &str = "upledger_check_duration_seconds_bucket";
    const SUM: &str = "upledger_check_duration_seconds_sum";
    const COUNT: &str = "upledger_check_duration_seconds_count";
    let mut cumulative = 0;
    let les = DURATION_BUCKETS.iter().map(|(_, le)| *le).chain(["+Inf"]);
    for (le, count) in les.zip(&tally.duration_buckets) {
        cumulative += count;
        series(out, BUCKET, probe, Some(("le", le)));
        push_u64(out, cumulative);
        out.push('\n');
    }
    series(out, SUM, probe, None);
    let _ = writeln!(out, "{}", tally.duration_sum_us as f64 / 1e6);
    series(out, COUNT, probe, None);
    push_u64(out, cumulative);
    out.push('\n');
}

/// Appends `name{probe="…"[,label="…"]} `, ready for the value.
fn series(out: &mut String, name: &str, probe: &str, label: Option<(&str, &str)>) {
    out.push_str(name);
    out.push_str("{probe=\"");
    out.push_str(probe);
    if let Some((label, value)) = label {
        out.push_str("\",");
        out.push_str(label);
        out.push_str("=\"");
        out.push_str(value);
    }
    out.push_str("\"} ");
}

/// Appends `value` in decimal, without the formatting machinery: the histogram's many counts
/// are the scrape's hottest path.
fn push_u64(out: &mut String, mut value: u64) {
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = b'0' + (value % 10) as u8;
        value /= 10;
        if value == 0 {
            break;
        }
    }
    // Only ASCII digits were written.
    out.push_str(std::str::from_utf8(&digits[start..]).unwrap_or_default());
}

/// `percent / 100` at [`RATIO_DIGITS`] significant digits, so that it prints as the shortest
/// decimal that reads back as the same number (0.999); `scratch` is reused between calls.
fn ratio_of_percent(percent: f64, scratch: &mut String) -> f64 {
    let ratio = percent / 100.0;
    scratch.clear();
    let _ = write!(scratch, "{ratio:.*e}", RATIO_DIGITS - 1);
    scratch.parse().unwrap_or(ratio)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use jiff::Timestamp;

    use super::*;
    use crate::{
        daemon::lag::LagHistogram,
        ledger::Ledger,
        model::{CertStatus, Outcome, ProbeName},
        query,
    };

    /// Three probes: `web` (public), `off` (disabled) and `hidden` (not public), the first
    /// with a 99.9 % target, all from a real configuration file.
    fn config(dir: &std::path::Path) -> Config {
        std::fs::create_dir_all(dir.join("probes.d")).unwrap();
        let main = dir.join("upledger.toml");
        std::fs::write(&main, "[daemon]\n").unwrap();
        std::fs::write(
            dir.join("probes.d/p.toml"),
            "[[probe]]\nname = \"web\"\nkind = \"tcp\"\naddress = \"127.0.0.1:9\"\n\
             target = \"99.9%\"\n\n\
             [[probe]]\nname = \"off\"\nkind = \"tcp\"\naddress = \"127.0.0.1:9\"\n\
             enabled = false\n\n\
             [[probe]]\nname = \"hidden\"\nkind = \"tcp\"\naddress = \"127.0.0.1:9\"\n\
             public = false\n",
        )
        .unwrap();
        crate::config::load(&main).unwrap()
    }

    /// The board after `checks` (outcome, duration in µs, certificate `notAfter`) of every
    /// probe in `config`, recorded the way the recorder does.
    fn board(config: &Config, checks: &[(Outcome, u64, Option<i64>)]) -> NameMap<ProbeStatus> {
        let now = Timestamp::from_second(1_800_000_000).unwrap();
        let mut board = NameMap::default();
        for spec in &config.probes {
            let mut status = query::probe_status(spec, None, None, now);
            for &(outcome, us, not_after) in checks {
                let last = query::LastCheck {
                    at: now,
                    outcome,
                    latency_ms: us as f64 / 1000.0,
                    error_class: None,
                    detail: String::new(),
                };
                query::update_status(&mut status, None, last);
                let cert = not_after.map(|not_after| CertStatus {
                    days_left: 1,
                    expiring: false,
                    not_after,
                });
                status
                    .tally
                    .record(outcome, Duration::from_micros(us), cert.as_ref());
            }
            board.insert(spec.name.clone(), status);
        }
        board
    }

    fn render_with(checks: &[(Outcome, u64, Option<i64>)]) -> String {
        let dir = tempfile::tempdir().unwrap();
        let config = config(dir.path());
        let ledger = Ledger::open(&dir.path().join("ledger")).unwrap();
        let now = Timestamp::from_second(1_800_000_000).unwrap();
        let figures = super::super::figures::compute(&config, &ledger, now).unwrap();
        render(
            &config,
            &board(&config, checks),
            &figures,
            &LagHistogram::default().snapshot(),
        )
    }

    fn value(text: &str, series: &str) -> Option<String> {
        text.lines()
            .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
            .map(str::to_owned)
    }

    #[test]
    fn check_durations_are_a_histogram_per_probe() {
        let text = render_with(&[
            (Outcome::Up, 800, None),
            (Outcome::Up, 12_300, None),
            (Outcome::Down, 30_000_000, None),
        ]);
        assert!(text.contains("# TYPE upledger_check_duration_seconds histogram\n"));
        let bucket = |le: &str| {
            value(
                &text,
                &format!("upledger_check_duration_seconds_bucket{{probe=\"web\",le=\"{le}\"}}"),
            )
        };
        assert_eq!(bucket("0.001").as_deref(), Some("1"));
        assert_eq!(bucket("0.01").as_deref(), Some("1"));
        assert_eq!(bucket("0.025").as_deref(), Some("2"), "cumulative");
        assert_eq!(bucket("10").as_deref(), Some("2"));
        assert_eq!(bucket("+Inf").as_deref(), Some("3"));
        let count = "upledger_check_duration_seconds_count{probe=\"web\"}";
        assert_eq!(value(&text, count).as_deref(), Some("3"));
        let sum = "upledger_check_duration_seconds_sum{probe=\"web\"}";
        assert_eq!(value(&text, sum).as_deref(), Some("30.0131"));
        // The newest check's duration is a gauge of its own name.
        assert!(text.contains("# TYPE upledger_last_check_duration_seconds gauge\n"));
        let last = "upledger_last_check_duration_seconds{probe=\"web\"}";
        assert_eq!(value(&text, last).as_deref(), Some("30"));
        assert!(!text.contains("upledger_check_duration_seconds{"));
    }

    #[test]
    fn the_last_duration_is_exact_to_the_microsecond() {
        // 1,005 µs: milliseconds then seconds would show 0.0010049999999999998.
        let text = render_with(&[(Outcome::Up, 1_005, None)]);
        let last = "upledger_last_check_duration_seconds{probe=\"web\"}";
        assert_eq!(value(&text, last).as_deref(), Some("0.001005"));
        let sum = "upledger_check_duration_seconds_sum{probe=\"web\"}";
        assert_eq!(value(&text, sum).as_deref(), Some("0.001005"));
    }

    #[test]
    fn checks_are_counted_by_outcome() {
        let text = render_with(&[
            (Outcome::Up, 1_000, None),
            (Outcome::Degraded, 1_000, None),
            (Outcome::Down, 1_000, None),
            (Outcome::Down, 1_000, None),
        ]);
        for (outcome, count) in [
            ("up", "1"),
            ("degraded", "1"),
            ("down", "2"),
            ("unknown", "0"),
        ] {
            let series = format!("upledger_checks_total{{probe=\"web\",outcome=\"{outcome}\"}}");
            assert_eq!(value(&text, &series).as_deref(), Some(count), "{series}");
        }
        assert!(!text.contains("upledger_checks_total{probe=\"web\"}"));
    }

    #[test]
    fn a_tls_probe_shows_its_leaf_expiry() {
        let text = render_with(&[(Outcome::Up, 1_000, None)]);
        assert!(!text.contains("upledger_cert_expiry_timestamp_seconds{"));
        let text = render_with(&[(Outcome::Up, 1_000, Some(1_900_000_123))]);
        let series = "upledger_cert_expiry_timestamp_seconds{probe=\"web\"}";
        assert_eq!(value(&text, series).as_deref(), Some("1900000123"));
    }

    #[test]
    fn the_build_is_named() {
        let text = render_with(&[]);
        let series = format!(
            "upledger_build_info{{version=\"{}\"}}",
            env!("CARGO_PKG_VERSION")
        );
        assert_eq!(value(&text, &series).as_deref(), Some("1"));
    }

    #[test]
    fn disabled_and_hidden_probes_are_absent() {
        let text = render_with(&[(Outcome::Up, 1_000, None)]);
        assert!(text.contains("probe=\"web\""));
        assert!(!text.contains("\"off\""), "{text}");
        assert!(!text.contains("\"hidden\""), "{text}");
    }

    #[test]
    fn ratios_print_without_rounding_noise() {
        let text = render_with(&[]);
        let target = "upledger_month_target_ratio{probe=\"web\"}";
        assert_eq!(value(&text, target).as_deref(), Some("0.999"));
        let mut scratch = String::new();
        for (percent, ratio) in [
            (99.9, "0.999"),
            (99.95, "0.9995"),
            (99.999961, "0.99999961"),
            (99.1234567, "0.991234567"),
            (100.0, "1"),
            (0.0, "0"),
            (33.333333, "0.33333333"),
        ] {
            let shown = ratio_of_percent(percent, &mut scratch).to_string();
            assert_eq!(shown, ratio, "{percent}");
        }
    }

    #[test]
    fn evidence_gauges_name_witnesses_and_logs() {
        let mut out = String::new();
        render_evidence(
            &mut out,
            &EvidenceGauges {
                checkpoint_size: 42,
                cosigned: vec![("http://w.example/".into(), 40)],
                witnessed: vec![("vendor.example/\"log\"".into(), 7, Some(1_700_000_000))],
                replication_backlog: Some(12),
            },
        );
        assert!(out.contains("upledger_checkpoint_size 42\n"), "{out}");
        assert!(
            out.contains("upledger_witness_cosigned_size{witness=\"http://w.example/\"} 40\n"),
            "{out}"
        );
        assert!(
            out.contains("upledger_witnessed_log_size{log=\"vendor.example/\\\"log\\\"\"} 7\n"),
            "{out}"
        );
        assert!(out.contains("_last_heard_seconds{log="), "{out}");
        assert!(out.contains("upledger_replication_backlog 12\n"), "{out}");
        let mut quiet = String::new();
        render_evidence(&mut quiet, &EvidenceGauges::default());
        assert_eq!(quiet.lines().count(), 3, "{quiet}");
    }

    #[test]
    fn integers_are_written_in_decimal() {
        for n in [0, 7, 10, 99, 1_000_000, u64::MAX] {
            let mut out = String::from("x");
            push_u64(&mut out, n);
            assert_eq!(out, format!("x{n}"));
        }
    }

    #[test]
    fn a_coordinator_shows_the_quorum_and_each_location() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("probes.d")).unwrap();
        let main = dir.path().join("upledger.toml");
        std::fs::write(
            &main,
            "[daemon]\nlocation = \"hq\"\n\n\
             [replication]\nnats = \"nats://127.0.0.1:4222\"\nrole = \"coordinator\"\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("probes.d/p.toml"),
            "[[probe]]\nname = \"web\"\nkind = \"tcp\"\naddress = \"127.0.0.1:9\"\n\
             locations = [\"a\", \"b\", \"c\"]\nquorum = 2\n\n\
             [[probe]]\nname = \"db\"\nkind = \"tcp\"\naddress = \"127.0.0.1:9\"\n",
        )
        .unwrap();
        let config = crate::config::load(&main).unwrap();
        let now = Timestamp::from_second(1_800_000_000).unwrap();
        // The recorder's entries: the quorum under `web`, a location under its series.
        let mut board = NameMap::default();
        for (name, state, checks) in [
            ("web", State::Down, 0),
            ("web@a", State::Up, 2),
            ("web@b", State::Down, 1),
            ("db", State::Up, 1),
        ] {
            let series = ProbeName::stored(name).unwrap();
            let probe = series.split_location().map_or(series.clone(), |(p, _)| p);
            let spec = config.probe_by_name(&probe).unwrap();
            let mut status = query::probe_status(spec, None, None, now);
            status.state = state;
            for _ in 0..checks {
                status
                    .tally
                    .record(Outcome::Up, Duration::from_millis(1), None);
            }
            board.insert(series, status);
        }
        let ledger = Ledger::open(&dir.path().join("ledger")).unwrap();
        let figures = super::super::figures::compute(&config, &ledger, now).unwrap();
        let text = render(
            &config,
            &board,
            &figures,
            &LagHistogram::default().snapshot(),
        );

        // The probe's own series keep their labels and carry the quorum's state.
        assert_eq!(
            value(&text, "upledger_probe_up{probe=\"web\"}").as_deref(),
            Some("0")
        );
        assert!(text.contains("upledger_probe_state{probe=\"web\",state=\"down\"} 1\n"));
        assert_eq!(
            value(&text, "upledger_probe_quorum{probe=\"web\"}").as_deref(),
            Some("2")
        );
        for (location, up, state, checks) in [
            ("a", "1", "up", "2"),
            ("b", "0", "down", "1"),
            // No result from c yet.
            ("c", "0", "unknown", "0"),
        ] {
            let labels = format!("{{probe=\"web\",location=\"{location}\"}}");
            let up_series = format!("upledger_probe_location_up{labels}");
            assert_eq!(value(&text, &up_series).as_deref(), Some(up), "{text}");
            let checks_series = format!("upledger_probe_location_checks_total{labels}");
            assert_eq!(
                value(&text, &checks_series).as_deref(),
                Some(checks),
                "{text}"
            );
            let state_series = format!(
                "upledger_probe_location_state{{probe=\"web\",location=\"{location}\",state=\"{state}\"}} 1\n"
            );
            assert!(text.contains(&state_series), "{state_series}\n{text}");
        }
        // A probe checked here has no location series.
        assert!(!text.contains("probe=\"db\",location="), "{text}");
        assert_eq!(
            text.matches("# TYPE upledger_probe_location_up gauge")
                .count(),
            1
        );

        // Without located probes, none of the families.
        let plain = render_with(&[(Outcome::Up, 1_000, None)]);
        assert!(!plain.contains("location"), "{plain}");
    }
}
