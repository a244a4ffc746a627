//! UTC-day rollups (the status page's 90-day bars), recomputed from digests whenever the
//! digest pass moves on, instead of being merged into the ledger result by result: that
//! merge was the dearest part of recording a check (a sled merge per probe per group commit,
//! a quarter of the daemon's CPU per check). The days are classified exactly as reports
//! classify months, from the same evidence. The cost: today's bar trails the digests, so it
//! is at most about an hour old (`DIGEST_SETTLE` plus the daemon's digest period).

use std::collections::BTreeSet;

use jiff::{SignedDuration, Timestamp};

use super::{QueryError, monthly::load_evidence};
use crate::{
    config::{Config, ProbeSpec},
    ledger::{Ledger, ResultRecord, Rollup, RollupKind, RollupPeriod},
    model::{ProbeName, State},
    report::{Interval, SampleRules, Timeline},
};

const DAY: SignedDuration = SignedDuration::from_hours(24);

/// Digests every probe's finished hours up to `until` ([`Ledger::digest_until`]) and rewrites
/// the day rollups of every UTC day the pass reached, for the probes of `config`. Stops early
/// (consistent, to go on next time) once `keep_going` says no. Returns the hours digested.
pub fn digest(
    config: &Config,
    ledger: &Ledger,
    until: Timestamp,
    keep_going: &dyn Fn() -> bool,
) -> Result<u64, QueryError> {
    let mut before = Vec::with_capacity(config.probes.len());
    for spec in &config.probes {
        before.push(ledger.digest_coverage(&spec.name)?);
    }
    let hours = ledger.digest_until(until, keep_going)?;
    if hours == 0 {
        return Ok(0);
    }
    for (spec, was) in config.probes.iter().zip(before) {
        let Some(covered) = ledger.digest_coverage(&spec.name)? else {
            continue;
        };
        if was == Some(covered) {
            continue;
        }
        let from = match was {
            Some(was) => was,
            None => match ledger.first_result(&spec.name)? {
                Some(first) => first,
                None => continue,
            },
        };
        rewrite(ledger, spec, from, covered)?;
    }
    ledger.flush()?;
    Ok(hours)
}

/// Rewrites the day rollups of the days of `records` that the digests already cover: an
/// import into digested hours re-digests them without moving the coverage.
pub fn rewrite_days_of(
    config: &Config,
    ledger: &Ledger,
    records: &[ResultRecord],
) -> Result<(), QueryError> {
    let days: BTreeSet<(&ProbeName, Timestamp)> = records
        .iter()
        .map(|record| (&record.probe, day_start(record.at)))
        .collect();
    for (probe, day) in days {
        let Some(spec) = config.probe_by_name(probe) else {
            continue;
        };
        let Some(covered) = ledger.digest_coverage(probe)? else {
            continue;
        };
        let end = day.checked_add(DAY).unwrap_or(Timestamp::MAX).min(covered);
        rewrite(ledger, spec, day, end)?;
    }
    ledger.flush()?;
    Ok(())
}

/// Rewrites the rollups of the UTC days from the one holding `from` up to `covered`.
fn rewrite(
    ledger: &Ledger,
    spec: &ProbeSpec,
    from: Timestamp,
    covered: Timestamp,
) -> Result<(), QueryError> {
    let Some(first) = ledger.first_result(&spec.name)? else {
        return Ok(());
    };
    let mut day = day_start(from.max(first));
    while day < covered {
        let period = Interval::new(day, day.checked_add(DAY).unwrap_or(Timestamp::MAX));
        let rollup = day_rollup(ledger, spec, period, first, covered)?;
        let key = RollupPeriod {
            kind: RollupKind::Day,
            start: day,
        };
        ledger.put_rollup(&spec.name, key, &rollup)?;
        day = period.end;
    }
    Ok(())
}

/// The rollup of `probe` over `day` as far as the digests reach (`covered`): time per state
/// from the same timeline a report builds, checks and failed checks. Every instant from the
/// probe's first result (`first`) on that is neither up, degraded nor down is unknown, also
/// when the evidence read for the day starts after midnight (a gap across it). Latency stays
/// in the digests' histograms (a rollup's half-octave buckets are left empty).
fn day_rollup(
    ledger: &Ledger,
    spec: &ProbeSpec,
    day: Interval,
    first: Timestamp,
    covered: Timestamp,
) -> Result<Rollup, QueryError> {
    let until = covered.min(day.end);
    let evidence = load_evidence(ledger, spec, day, until)?;
    let timeline = Timeline::from_runs(
        evidence.runs.iter().cloned(),
        SampleRules::for_probe(spec),
        until,
    );
    let mut rollup = Rollup {
        checks: evidence.checks,
        failed_checks: evidence.failed_checks,
        ..Rollup::default()
    };
    let span = Interval::new(day.start.max(first), until.max(first));
    let millis = |from: Timestamp, to: Timestamp| {
        u64::try_from(to.duration_since(from).as_millis()).unwrap_or(0)
    };
    for segment in timeline.clip(span).segments() {
        let ms = millis(segment.start, segment.end);
        match segment.state {
            State::Up => rollup.up_ms += ms,
            State::Degraded => rollup.degraded_ms += ms,
            State::Down => rollup.down_ms += ms,
            State::Unknown | State::Maintenance => {}
        }
    }
    let known = rollup.up_ms + rollup.degraded_ms + rollup.down_ms;
    rollup.unknown_ms = millis(span.start, span.end).saturating_sub(known);
    Ok(rollup)
}

fn day_start(at: Timestamp) -> Timestamp {
    Timestamp::from_second(at.as_second().div_euclid(86_400) * 86_400).unwrap_or(at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        model::Outcome,
        query::monthly::tests::{ts, web_with_ten_days},
        report::Sample,
    };

    /// Ten noisy days (outages across hour and day edges, unknowns, long gaps) digested in
    /// one pass: each day's rollup holds the time per state of the timeline built from the
    /// raw results, clipped to that day, and the day's checks.
    #[test]
    fn day_rollups_from_digests_match_the_raw_timeline() {
        let (_dir, config, ledger, records) = web_with_ten_days("[daemon]\nledger = \"ledger\"\n");
        let until = ts(12 * 86_400);
        assert!(digest(&config, &ledger, until, &|| true).unwrap() > 0);

        let spec = config.probe("web").unwrap();
        let raw = Timeline::from_samples(
            records.iter().map(Sample::from),
            SampleRules::for_probe(spec),
            until,
        );
        let web = ProbeName::new("web").unwrap();
        let stored = ledger
            .rollups(&web, RollupKind::Day, ts(-86_400), until)
            .unwrap();
        // Ten days of results, then two days of nothing up to `until` (all unknown).
        assert_eq!(stored.len(), 12, "every day the digests reached");
        for (day, rollup) in stored {
            let span = Interval::new(day, day.checked_add(DAY).unwrap().min(until));
            let mut expected = [0u64; 4];
            for segment in raw.clip(span).segments() {
                let ms = segment.end.duration_since(segment.start).as_millis() as u64;
                let slot = match segment.state {
                    State::Up => 0,
                    State::Degraded => 1,
                    State::Down => 2,
                    _ => 3,
                };
                expected[slot] += ms;
            }
            let got = [
                rollup.up_ms,
                rollup.degraded_ms,
                rollup.down_ms,
                rollup.unknown_ms,
            ];
            assert_eq!(got, expected, "day {day}");
            let checks = records.iter().filter(|r| span.contains(r.at)).count() as u64;
            let failed = records
                .iter()
                .filter(|r| span.contains(r.at) && r.outcome == Outcome::Down)
                .count() as u64;
            assert_eq!(
                (rollup.checks, rollup.failed_checks),
                (checks, failed),
                "day {day}"
            );
        }
        // Nothing new to digest: nothing rewritten, and the rollups stay as they are.
        assert_eq!(digest(&config, &ledger, until, &|| true).unwrap(), 0);
    }
}
