//! UTC-day rollups (the status page's 90-day bars), recomputed from digests whenever the
//! digest pass moves on, instead of being merged into the ledger result by result: that
//! merge was the dearest part of recording a check (a sled merge per probe per group commit,
//! a quarter of the daemon's CPU per check). The days are classified exactly as reports
//! classify months, from the same evidence. The stored days trail the digests (by about an
//! hour: `DIGEST_SETTLE` plus the daemon's digest period), so the days the digests have not
//! finished — today, and yesterday shortly after midnight — are completed live for the page
//! ([`live_days`]): the stored part, plus the raw results after it.

use std::collections::BTreeSet;

use jiff::{SignedDuration, Timestamp};

use super::{
    QueryError,
    locations::{Located, located, read_located},
    monthly::load_evidence,
};
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
        before.push(coverage(ledger, spec, located(config, spec).as_ref())?);
    }
    let hours = ledger.digest_until(until, keep_going)?;
    if hours == 0 {
        return Ok(0);
    }
    for (spec, was) in config.probes.iter().zip(before) {
        let located = located(config, spec);
        let Some(covered) = coverage(ledger, spec, located.as_ref())? else {
            continue;
        };
        if was == Some(covered) {
            continue;
        }
        let from = match was {
            Some(was) => was,
            None => match first_result(ledger, spec, located.as_ref())? {
                Some(first) => first,
                None => continue,
            },
        };
        rewrite(ledger, spec, located.as_ref(), from, covered, covered)?;
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
    // A location's series rolls up into its probe's days, as their quorum.
    let days: BTreeSet<(ProbeName, Timestamp)> = days
        .into_iter()
        .map(|(probe, day)| match probe.split_location() {
            Some((base, _)) => (base, day),
            None => (probe.clone(), day),
        })
        .collect();
    for (probe, day) in days {
        let Some(spec) = config.probe_by_name(&probe) else {
            continue;
        };
        let located = located(config, spec);
        let Some(covered) = coverage(ledger, spec, located.as_ref())? else {
            continue;
        };
        let end = day.checked_add(DAY).unwrap_or(Timestamp::MAX).min(covered);
        rewrite(ledger, spec, located.as_ref(), day, end, end)?;
    }
    ledger.flush()?;
    Ok(())
}

/// Rewrites the day rollups every probe of `config` has for the days `[from, to)` touches,
/// as far as its digests reach: for a clock step recorded after those days were rolled up.
pub fn rewrite_span(
    config: &Config,
    ledger: &Ledger,
    from: Timestamp,
    to: Timestamp,
) -> Result<(), QueryError> {
    for spec in config.probes.iter().filter(|p| p.enabled) {
        let located = located(config, spec);
        let Some(covered) = coverage(ledger, spec, located.as_ref())? else {
            continue;
        };
        rewrite(ledger, spec, located.as_ref(), from, to, covered)?;
    }
    ledger.flush()?;
    Ok(())
}

/// The rollups of the UTC days the digests of `spec` have not finished, up to `now`: today,
/// and yesterday while its digests are unfinished (nothing older: a digest backlog of days is
/// the digest pass's to catch up on). Each is the stored rollup of the day, which reaches as
/// far as the digests did when it was written, plus the rest of the day up to `now` computed
/// the same way from the raw results (and any digests since), so today's bar shows the checks
/// of the last minutes rather than waiting an hour for its first digest. Only the undigested
/// tail (about an hour of results) is read: the stored part tells how far it reaches, so a
/// digest pass running meanwhile neither doubles nor drops any time. Days whose stored
/// rollups are complete are not returned; nor is anything for a probe without results.
pub fn live_days(
    config: &Config,
    ledger: &Ledger,
    spec: &ProbeSpec,
    now: Timestamp,
) -> Result<Vec<(Timestamp, Rollup)>, QueryError> {
    let located = located(config, spec);
    let Some(first) = first_result(ledger, spec, located.as_ref())? else {
        return Ok(Vec::new());
    };
    let today = day_start(now);
    let yesterday = today.checked_sub(DAY).unwrap_or(today);
    let stored = ledger.rollups(&spec.name, RollupKind::Day, yesterday, now)?;
    let mut days = Vec::with_capacity(2);
    let mut day = yesterday.max(day_start(first));
    while day <= today {
        let end = day.checked_add(DAY).unwrap_or(Timestamp::MAX);
        // A stored day spans [its start or the first result, the digests' reach then).
        let start = day.max(first);
        let (mut rollup, reach) = match stored.iter().find(|(stored_day, _)| *stored_day == day) {
            Some((_, rollup)) => {
                let reach = start.checked_add(rollup_span(rollup)).unwrap_or(end);
                (rollup.clone(), reach)
            }
            None => (Rollup::default(), start),
        };
        if reach < end.min(now) {
            let rest = Interval::new(reach, end);
            rollup.add(&day_rollup(
                ledger,
                spec,
                located.as_ref(),
                rest,
                first,
                now,
            )?);
            days.push((day, rollup));
        }
        day = end;
    }
    Ok(days)
}

/// The time a stored day rollup spans: every millisecond of it is up, degraded, down or
/// unknown.
fn rollup_span(rollup: &Rollup) -> SignedDuration {
    let ms = [rollup.degraded_ms, rollup.down_ms, rollup.unknown_ms]
        .into_iter()
        .fold(rollup.up_ms, u64::saturating_add);
    SignedDuration::from_millis(i64::try_from(ms).unwrap_or(i64::MAX))
}

/// How far the digests of `spec` reach: of its own results, or for a probe read over
/// locations, of the least of its locations' series that have any (one location that never
/// reported holds no day back).
fn coverage(
    ledger: &Ledger,
    spec: &ProbeSpec,
    located: Option<&Located>,
) -> Result<Option<Timestamp>, QueryError> {
    let Some(located) = located else {
        return Ok(ledger.digest_coverage(&spec.name)?);
    };
    let mut least: Option<Timestamp> = None;
    for (_, series) in &located.series {
        if let Some(covered) = ledger.digest_coverage(series)? {
            least = Some(least.map_or(covered, |l| l.min(covered)));
        }
    }
    Ok(least)
}

/// The first result of `spec`: its own, or the earliest of its locations'.
fn first_result(
    ledger: &Ledger,
    spec: &ProbeSpec,
    located: Option<&Located>,
) -> Result<Option<Timestamp>, QueryError> {
    let Some(located) = located else {
        return Ok(ledger.first_result(&spec.name)?);
    };
    let mut first: Option<Timestamp> = None;
    for (_, series) in &located.series {
        if let Some(at) = ledger.first_result(series)? {
            first = Some(first.map_or(at, |f| f.min(at)));
        }
    }
    Ok(first)
}

/// Rewrites the rollups of the UTC days from the one holding `from` up to `to`, as far as the
/// digests reach (`covered`). A probe read over locations is rolled up as their quorum,
/// under its own name.
fn rewrite(
    ledger: &Ledger,
    spec: &ProbeSpec,
    located: Option<&Located>,
    from: Timestamp,
    to: Timestamp,
    covered: Timestamp,
) -> Result<(), QueryError> {
    let Some(first) = first_result(ledger, spec, located)? else {
        return Ok(());
    };
    let mut day = day_start(from.max(first));
    while day < covered && day < to {
        let period = Interval::new(day, day.checked_add(DAY).unwrap_or(Timestamp::MAX));
        let rollup = day_rollup(ledger, spec, located, period, first, covered)?;
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
    located: Option<&Located>,
    day: Interval,
    first: Timestamp,
    covered: Timestamp,
) -> Result<Rollup, QueryError> {
    let until = covered.min(day.end);
    // As in reports: wall-clock time a clock step made ambiguous is unknown.
    let steps = ledger.clock_steps_touching(day.start, day.end)?;
    let timeline_of = |spec: &ProbeSpec, evidence: &super::monthly::Evidence| {
        let timeline = Timeline::from_runs(
            evidence.runs.iter().cloned(),
            SampleRules::for_probe(spec),
            until,
        );
        if steps.is_empty() {
            timeline
        } else {
            timeline.unknown_over(steps.iter().map(|step| {
                let (start, end) = step.ambiguous();
                Interval::new(start, end)
            }))
        }
    };
    let (timeline, evidence) = match located {
        None => {
            let evidence = load_evidence(ledger, spec, day, until)?;
            (timeline_of(spec, &evidence), evidence)
        }
        Some(located) => {
            let read = read_located(ledger, spec, located, day, until, timeline_of)?;
            (read.timeline, read.evidence)
        }
    };
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
            let expected = state_split(&raw, span);
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

    /// The state time of `records` over `[from, to)` by the raw timeline, as a rollup's
    /// `[up, degraded, down, unknown]`.
    fn raw_split(
        config: &Config,
        records: &[ResultRecord],
        from: Timestamp,
        to: Timestamp,
    ) -> [u64; 4] {
        let spec = config.probe("web").unwrap();
        let raw = Timeline::from_samples(
            records.iter().filter(|r| r.at < to).map(Sample::from),
            SampleRules::for_probe(spec),
            to,
        );
        state_split(&raw, Interval::new(from, to))
    }

    /// The state time of `timeline` over `span`, as a rollup's `[up, degraded, down, unknown]`.
    fn state_split(timeline: &Timeline, span: Interval) -> [u64; 4] {
        let mut split = [0u64; 4];
        for segment in timeline.clip(span).segments() {
            let ms = segment.end.duration_since(segment.start).as_millis() as u64;
            let slot = match segment.state {
                State::Up => 0,
                State::Degraded => 1,
                State::Down => 2,
                _ => 3,
            };
            split[slot] += ms;
        }
        split
    }

    fn split_of(rollup: &Rollup) -> [u64; 4] {
        [
            rollup.up_ms,
            rollup.degraded_ms,
            rollup.down_ms,
            rollup.unknown_ms,
        ]
    }

    /// Today's bar before its first digest (and with the digests hours behind): computed live
    /// from the results so far, as the raw timeline up to now has it; yesterday too while its
    /// digests are unfinished, and nothing older.
    #[test]
    fn the_days_the_digests_have_not_finished_are_computed_live() {
        let (_dir, config, ledger, records) = web_with_ten_days("[daemon]\nledger = \"ledger\"\n");
        let spec = config.probe("web").unwrap();
        // Day five, 05:17:20: nothing digested at all.
        let day_five = ts(5 * 86_400);
        let now = ts(5 * 86_400 + 5 * 3600 + 1040);
        let live = live_days(&config, &ledger, spec, now).unwrap();
        let days: Vec<Timestamp> = live.iter().map(|(day, _)| *day).collect();
        assert_eq!(days, [ts(4 * 86_400), day_five], "yesterday and today");
        assert_eq!(
            split_of(&live[1].1),
            raw_split(&config, &records, day_five, now)
        );
        assert_eq!(
            live[1].1.checks,
            records
                .iter()
                .filter(|r| r.at >= day_five && r.at < now)
                .count() as u64
        );
        assert!(live[1].1.up_ms > 0, "{:?}", live[1].1);
        // Digested up to 03:00 of day five: today alone, the same figures.
        digest(&config, &ledger, ts(5 * 86_400 + 3 * 3600), &|| true).unwrap();
        let live = live_days(&config, &ledger, spec, now).unwrap();
        assert_eq!(live.len(), 1, "yesterday is finished");
        assert_eq!(live[0].0, day_five);
        assert_eq!(
            split_of(&live[0].1),
            raw_split(&config, &records, day_five, now)
        );
        // A probe without results has no live day.
        let elsewhere = tempfile::tempdir().unwrap();
        let fresh = Ledger::open(&elsewhere.path().join("ledger")).unwrap();
        assert!(live_days(&config, &fresh, spec, now).unwrap().is_empty());
    }

    /// A clock step recorded after the days were rolled up makes its span unknown in them.
    #[test]
    fn a_clock_step_makes_its_span_unknown_in_the_day_bars() {
        let (_dir, config, ledger, records) = web_with_ten_days("[daemon]\nledger = \"ledger\"\n");
        let until = ts(12 * 86_400);
        digest(&config, &ledger, until, &|| true).unwrap();
        let web = ProbeName::new("web").unwrap();
        let day_two = |ledger: &Ledger| {
            let (_, rollup) = ledger
                .rollups(&web, RollupKind::Day, ts(86_400), ts(2 * 86_400))
                .unwrap()
                .remove(0);
            rollup
        };
        let before = day_two(&ledger);
        // Set back by two hours at 06:00 of day two: 04:00–06:00 was read twice.
        let step = crate::ledger::ClockStep::between(
            ts(86_400 + 6 * 3600),
            ts(86_400 + 4 * 3600),
            SignedDuration::ZERO,
        );
        ledger.record_clock_step(step).unwrap();
        rewrite_span(&config, &ledger, step.unknown_from, step.unknown_to).unwrap();
        let after = day_two(&ledger);
        // What the raw timeline knew inside the span is what the bar loses.
        let spec = config.probe("web").unwrap();
        let raw = Timeline::from_samples(
            records.iter().map(Sample::from),
            SampleRules::for_probe(spec),
            until,
        );
        let known_in_span: u64 = raw
            .clip(Interval::new(step.unknown_from, step.unknown_to))
            .segments()
            .filter(|s| matches!(s.state, State::Up | State::Degraded | State::Down))
            .map(|s| s.end.duration_since(s.start).as_millis() as u64)
            .sum();
        assert!(known_in_span > 3_600_000, "the span was mostly measured");
        let known = |r: &Rollup| r.up_ms + r.degraded_ms + r.down_ms;
        assert_eq!(
            known(&before) - known(&after),
            known_in_span,
            "{before:?} → {after:?}"
        );
        assert_eq!(after.unknown_ms - before.unknown_ms, known_in_span);
        assert_eq!(
            after.checks, before.checks,
            "the results are all still there"
        );
    }
}
