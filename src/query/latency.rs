//! An SLA's latency objective for a month (SPEC §10): its members' successful checks read
//! from the source — raw results, so the verdict is exact, and the same from the ledger and
//! from an evidence bundle — and judged by [`crate::report::judge_latency`].
//!
//! Checks inside the SLA's honoured maintenance windows and applied exclusions are not
//! judged: that time is taken out of the agreement, for response times as for availability.
//! Only `up` and `degraded` checks count (a failed check has no response time to speak of).

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use super::{QueryError, locations::located_for_sla, monthly::SlaMonth, source::MonthSource};
use crate::{
    config::{Config, LatencyRule, ProbeSpec, SlaSpec},
    model::{Outcome, ProbeName},
    report::{Fraction, Interval, judge_latency},
};

/// An SLA's latency objective as reports show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LatencyObjectiveReport {
    /// `percentile` or `share`.
    pub kind: String,
    /// The percentile's rank, or the share of checks that must be under the bound, in percent.
    pub percent: f64,
    /// The bound, in milliseconds; a check exactly at it is not under it.
    pub bound_ms: f64,
    /// What the month achieved: the percentile in milliseconds (percentile form) or the share
    /// of checks under the bound in percent (share form); `null` without a successful check.
    pub achieved: Option<f64>,
    /// The objective was kept (false without a successful check: nothing shows it was).
    pub met: bool,
    /// Successful checks judged.
    pub checks: u64,
    /// Of those, the checks under the bound.
    pub checks_under: u64,
    /// Credit added to the SLA's for missing it, in percent of the fee.
    pub credit_percent: f64,
}

/// Judges `sla`'s latency objective, if it has one, on the month of `entry` and folds the
/// verdict into it: `met` needs both objectives, and a missed latency objective adds
/// `latency_credit` (the credit stays at most 100 %).
pub(super) fn apply<S: MonthSource + ?Sized>(
    config: &Config,
    source: &S,
    sla: &SlaSpec,
    members: &[&ProbeSpec],
    entry: &mut SlaMonth,
    period: Interval,
    now: Timestamp,
) -> Result<(), QueryError> {
    let Some(objective) = sla.latency else {
        return Ok(());
    };
    let until = now.min(period.end);
    let left_out: Vec<Interval> = entry
        .maintenance
        .iter()
        .map(|w| Interval::new(w.start, w.end))
        .chain(entry.exclusions.iter().map(|e| Interval::new(e.from, e.to)))
        .collect();
    let mut latencies: Vec<Duration> = Vec::new();
    for spec in members {
        let series: Vec<ProbeName> = match located_for_sla(config, sla, spec)? {
            Some(located) => located.series.into_iter().map(|(_, s)| s).collect(),
            None => vec![spec.name.clone()],
        };
        for name in &series {
            successful_latencies(source, name, period.start, until, &left_out, &mut latencies)?;
        }
    }
    let verdict = judge_latency(&objective, &mut latencies);
    let credit = match sla.latency_credit {
        Some(credit) if verdict.missed() => credit.as_f64(),
        _ => 0.0,
    };
    let achieved = match objective.rule {
        LatencyRule::Percentile(_) => verdict.percentile.map(millis),
        LatencyRule::Share(_) => verdict
            .share()
            .and_then(|(under, checks)| Fraction::new(u128::from(under), u128::from(checks)))
            .and_then(|f| f.percent_text(6).parse().ok()),
    };
    entry.latency_objective = Some(LatencyObjectiveReport {
        kind: match objective.rule {
            LatencyRule::Percentile(_) => "percentile",
            LatencyRule::Share(_) => "share",
        }
        .to_owned(),
        percent: objective.rule.percent().as_f64(),
        bound_ms: millis(objective.below),
        achieved,
        met: verdict.met,
        checks: verdict.checks,
        checks_under: verdict.under,
        credit_percent: credit,
    });
    entry.met = entry.met && verdict.met;
    if credit > 0.0 {
        entry.credit_percent = (entry.credit_percent + credit).min(100.0);
        entry.credit_amount = sla.monthly_fee.map_or(0.0, |fee| {
            (fee * entry.credit_percent / 100.0 * 100.0).round() / 100.0
        });
    }
    Ok(())
}

/// Adds the latencies of `series`' successful checks in `[from, to)` outside `left_out`
/// to `out`, a day at a time: a month of a probe checked every second is
/// 2.6 million results, too many to hold as records at once.
fn successful_latencies<S: MonthSource + ?Sized>(
    source: &S,
    series: &ProbeName,
    from: Timestamp,
    to: Timestamp,
    left_out: &[Interval],
    out: &mut Vec<Duration>,
) -> Result<(), QueryError> {
    const DAY: SignedDuration = SignedDuration::from_hours(24);
    let mut start = from;
    while start < to {
        let end = start.checked_add(DAY).map_or(to, |e| e.min(to));
        for record in source.results(series, start, end)? {
            let successful = matches!(record.outcome, Outcome::Up | Outcome::Degraded);
            if successful && !left_out.iter().any(|i| i.contains(record.at)) {
                out.push(record.latency);
            }
        }
        start = end;
    }
    Ok(())
}

fn millis(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}
