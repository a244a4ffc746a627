//! Incremental hourly and monthly rollups, maintained as results arrive, so reports of closed
//! periods never scan raw results (and survive retention).
//!
//! Time is classified exactly as SPEC §3 says: each result holds for
//! `[at, min(next, at + stale_after))`; a run of at least `failure_threshold` failures is down
//! from its first failure, a shorter run is up; a gap longer than `stale_after` is unknown and
//! breaks a run; `unknown` results neither count nor break a run. A failure run's time waits
//! in memory until the run is confirmed or broken, then lands in the rollups. Hours are UTC
//! hours; months are calendar months in the daemon's time zone.
//!
//! Crash safety: the deltas of a group commit are merged in the same flush as its results, and
//! after a restart the builder replays the newest stored results *silently* (nothing emitted),
//! which restores exactly the state it had after the last durable result.

use std::{collections::HashMap, time::Duration};

use jiff::{SignedDuration, Timestamp, tz::TimeZone};

use crate::{
    ledger::{ResultRecord, Rollup, RollupKind, RollupPeriod},
    model::{Outcome, ProbeName},
};

/// How time is counted in a rollup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Up,
    Degraded,
    Down,
    Unknown,
}

/// One probe's classification state.
#[derive(Debug, Clone)]
struct Accumulator {
    stale_after: Duration,
    failure_threshold: u32,
    /// The newest result: its time is not classified until the next one arrives.
    previous: Option<(Timestamp, Outcome)>,
    /// Consecutive failures in the current run.
    run: u32,
    /// Whether the current run reached `failure_threshold`.
    confirmed: bool,
    /// Time of an unconfirmed failure run, waiting for its verdict.
    pending: Vec<(Timestamp, Timestamp)>,
}

/// Builds rollup deltas from results, for every probe.
#[derive(Debug)]
pub struct RollupBuilder {
    months: Months,
    probes: HashMap<ProbeName, Accumulator>,
    deltas: HashMap<(ProbeName, RollupPeriod), Rollup>,
}

impl RollupBuilder {
    /// A builder whose months follow `timezone`.
    pub fn new(timezone: TimeZone) -> Self {
        RollupBuilder {
            months: Months {
                timezone,
                cached: std::cell::Cell::new((Timestamp::MAX, Timestamp::MIN)),
            },
            probes: HashMap::new(),
            deltas: HashMap::new(),
        }
    }

    /// Starts (or re-parameterises) a probe, silently replaying its newest stored results.
    pub fn track(
        &mut self,
        probe: &ProbeName,
        stale_after: Duration,
        failure_threshold: u32,
        newest: &[ResultRecord],
    ) {
        if let Some(accumulator) = self.probes.get_mut(probe) {
            accumulator.stale_after = stale_after;
            accumulator.failure_threshold = failure_threshold;
            return;
        }
        let mut accumulator = Accumulator {
            stale_after,
            failure_threshold,
            previous: None,
            run: 0,
            confirmed: false,
            pending: Vec::new(),
        };
        let mut silent = |_: Timestamp, _: Timestamp, _: Class| {};
        for record in newest {
            accumulator.observe(record.at, record.outcome, &mut silent);
        }
        self.probes.insert(probe.clone(), accumulator);
    }

    /// Forgets probes that are no longer scheduled.
    pub fn retain(&mut self, keep: impl Fn(&ProbeName) -> bool) {
        self.probes.retain(|name, _| keep(name));
    }

    /// Adds one result: its check counters, and whatever time it lets us classify.
    pub fn add(&mut self, record: &ResultRecord) {
        let Some(accumulator) = self.probes.get_mut(&record.probe) else {
            return;
        };
        let months = &self.months;
        let deltas = &mut self.deltas;
        let probe = &record.probe;
        for period in periods_of(months, record.at) {
            let rollup = deltas.entry((probe.clone(), period)).or_default();
            rollup.checks += 1;
            if record.outcome == Outcome::Down {
                rollup.failed_checks += 1;
            }
            rollup.record_latency(record.latency);
        }
        let mut emit = |from: Timestamp, to: Timestamp, class: Class| {
            add_time(deltas, months, probe, from, to, class);
        };
        accumulator.observe(record.at, record.outcome, &mut emit);
    }

    /// The deltas gathered since the last call.
    pub fn take(&mut self) -> Vec<(ProbeName, RollupPeriod, Rollup)> {
        // Taken, not drained: a burst's capacity is not worth keeping between commits.
        std::mem::take(&mut self.deltas)
            .into_iter()
            .map(|((probe, period), rollup)| (probe, period, rollup))
            .collect()
    }
}

impl Accumulator {
    fn observe(
        &mut self,
        at: Timestamp,
        outcome: Outcome,
        emit: &mut dyn FnMut(Timestamp, Timestamp, Class),
    ) {
        if let Some((previous_at, previous_outcome)) = self.previous.take() {
            let stale = SignedDuration::try_from(self.stale_after).unwrap_or(SignedDuration::MAX);
            let hold_end = previous_at.checked_add(stale).unwrap_or(Timestamp::MAX);
            self.close(previous_at, hold_end.min(at), previous_outcome, emit);
            if at > hold_end {
                // No evidence between: unknown, and the run is broken (a transient).
                self.settle(Class::Up, emit);
                emit(hold_end, at, Class::Unknown);
            }
        }
        match outcome {
            Outcome::Down => {
                self.run += 1;
                if !self.confirmed && self.run >= self.failure_threshold {
                    self.confirmed = true;
                    self.settle(Class::Down, emit);
                }
            }
            Outcome::Up | Outcome::Degraded => self.settle(Class::Up, emit),
            Outcome::Unknown => {}
        }
        self.previous = Some((at, outcome));
    }

    /// Classifies the time one result held.
    fn close(
        &mut self,
        from: Timestamp,
        to: Timestamp,
        outcome: Outcome,
        emit: &mut dyn FnMut(Timestamp, Timestamp, Class),
    ) {
        if from >= to {
            return;
        }
        match outcome {
            Outcome::Up => emit(from, to, Class::Up),
            Outcome::Degraded => emit(from, to, Class::Degraded),
            Outcome::Unknown => emit(from, to, Class::Unknown),
            Outcome::Down if self.confirmed => emit(from, to, Class::Down),
            Outcome::Down => self.pending.push((from, to)),
        }
    }

    /// Ends the current failure run: its waiting time becomes `class` (down when confirmed,
    /// up when the run was too short), and counting starts over.
    fn settle(&mut self, class: Class, emit: &mut dyn FnMut(Timestamp, Timestamp, Class)) {
        for (from, to) in self.pending.drain(..) {
            emit(from, to, class);
        }
        if class == Class::Up {
            self.run = 0;
            self.confirmed = false;
        }
    }
}

/// The hour, UTC day and month periods that contain `at`.
fn periods_of(months: &Months, at: Timestamp) -> [RollupPeriod; 3] {
    [
        RollupPeriod {
            kind: RollupKind::Hour,
            start: hour_start(at),
        },
        RollupPeriod {
            kind: RollupKind::Day,
            start: day_start(at),
        },
        RollupPeriod {
            kind: RollupKind::Month,
            start: months.bounds(at).0,
        },
    ]
}

fn hour_start(at: Timestamp) -> Timestamp {
    let second = at.as_second().div_euclid(3600) * 3600;
    Timestamp::from_second(second).unwrap_or(at)
}

fn day_start(at: Timestamp) -> Timestamp {
    let second = at.as_second().div_euclid(86_400) * 86_400;
    Timestamp::from_second(second).unwrap_or(at)
}

/// Calendar months in the daemon's time zone, with the last one asked for remembered: nearly
/// every result falls in the same month, and time zone arithmetic per result is waste.
#[derive(Debug)]
struct Months {
    timezone: TimeZone,
    cached: std::cell::Cell<(Timestamp, Timestamp)>,
}

impl Months {
    /// Start and end of the month containing `at`.
    fn bounds(&self, at: Timestamp) -> (Timestamp, Timestamp) {
        let (start, end) = self.cached.get();
        if start <= at && at < end {
            return (start, end);
        }
        let bounds = month_bounds(&self.timezone, at);
        self.cached.set(bounds);
        bounds
    }
}

/// Start and end of the calendar month containing `at` in `timezone`.
fn month_bounds(timezone: &TimeZone, at: Timestamp) -> (Timestamp, Timestamp) {
    let zoned = at.to_zoned_datetime(timezone.clone());
    let start = zoned
        .first_of_month()
        .and_then(|first| first.start_of_day())
        .map(|z| z.timestamp())
        .unwrap_or(at);
    let end = zoned
        .first_of_month()
        .and_then(|first| first.checked_add(jiff::Span::new().months(1)))
        .and_then(|next| next.start_of_day())
        .map(|z| z.timestamp())
        .unwrap_or(Timestamp::MAX);
    (start, end)
}

/// Adds `[from, to)` as `class` to every hour, day and month rollup it overlaps.
fn add_time(
    deltas: &mut HashMap<(ProbeName, RollupPeriod), Rollup>,
    months: &Months,
    probe: &ProbeName,
    from: Timestamp,
    to: Timestamp,
    class: Class,
) {
    for kind in [RollupKind::Hour, RollupKind::Day, RollupKind::Month] {
        let mut cursor = from;
        while cursor < to {
            let fixed = |start: Timestamp, hours: i64| {
                let end = start
                    .checked_add(SignedDuration::from_hours(hours))
                    .unwrap_or(Timestamp::MAX);
                (start, end)
            };
            let (start, end) = match kind {
                RollupKind::Hour => fixed(hour_start(cursor), 1),
                RollupKind::Day => fixed(day_start(cursor), 24),
                RollupKind::Month => months.bounds(cursor),
            };
            let piece_end = end.min(to);
            let ms = u64::try_from(piece_end.duration_since(cursor).as_millis()).unwrap_or(0);
            let rollup = deltas
                .entry((probe.clone(), RollupPeriod { kind, start }))
                .or_default();
            match class {
                Class::Up => rollup.up_ms += ms,
                Class::Degraded => rollup.degraded_ms += ms,
                Class::Down => rollup.down_ms += ms,
                Class::Unknown => rollup.unknown_ms += ms,
            }
            cursor = piece_end;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_793_491_200; // 2026-11-01T00:00:00Z

    fn record(offset_s: i64, outcome: Outcome) -> ResultRecord {
        ResultRecord {
            probe: ProbeName::new("p").unwrap(),
            at: Timestamp::from_second(T0 + offset_s).unwrap(),
            latency: Duration::from_millis(10),
            outcome,
            error_class: (outcome == Outcome::Down).then_some(crate::model::ErrorClass::Connect),
            detail: String::new(),
        }
    }

    fn month(builder: &mut RollupBuilder) -> Rollup {
        let mut total = Rollup::default();
        for (_, period, rollup) in builder.take() {
            if period.kind == RollupKind::Month {
                total.add(&rollup);
            }
        }
        total
    }

    fn builder(threshold: u32) -> RollupBuilder {
        let mut b = RollupBuilder::new(TimeZone::UTC);
        b.track(
            &ProbeName::new("p").unwrap(),
            Duration::from_secs(120),
            threshold,
            &[],
        );
        b
    }

    use Outcome::{Degraded, Down, Unknown, Up};

    #[test]
    fn sample_and_hold_until_the_next_result() {
        let mut b = builder(3);
        for (t, o) in [(0, Up), (60, Up), (120, Degraded), (180, Up)] {
            b.add(&record(t, o));
        }
        let m = month(&mut b);
        assert_eq!((m.up_ms, m.degraded_ms), (120_000, 60_000));
        assert_eq!(m.checks, 4);
    }

    #[test]
    fn a_confirmed_run_is_down_from_its_first_failure() {
        let mut b = builder(3);
        for (t, o) in [
            (0, Up),
            (60, Down),
            (120, Down),
            (180, Down),
            (240, Down),
            (300, Up),
            (360, Up),
        ] {
            b.add(&record(t, o));
        }
        let m = month(&mut b);
        assert_eq!(
            m.down_ms, 240_000,
            "60 → 300: down from the first failure to the first success"
        );
        assert_eq!(m.up_ms, 60_000 + 60_000);
        assert_eq!(m.failed_checks, 4);
    }

    #[test]
    fn a_short_run_counts_as_up() {
        let mut b = builder(3);
        for (t, o) in [(0, Up), (60, Down), (120, Down), (180, Up), (240, Up)] {
            b.add(&record(t, o));
        }
        let m = month(&mut b);
        assert_eq!((m.up_ms, m.down_ms), (240_000, 0));
    }

    #[test]
    fn gaps_are_unknown_and_break_runs() {
        let mut b = builder(2);
        // Held 120 s (stale_after), then unknown until 400; the failure before the gap and the
        // one after it are separate runs of one: both transient.
        for (t, o) in [(0, Down), (400, Down), (460, Up), (520, Up)] {
            b.add(&record(t, o));
        }
        let m = month(&mut b);
        assert_eq!(m.unknown_ms, 280_000);
        assert_eq!(m.down_ms, 0);
        assert_eq!(m.up_ms, 120_000 + 60_000 + 60_000);
    }

    #[test]
    fn unknown_results_hold_unknown_time_without_breaking_the_run() {
        let mut b = builder(2);
        for (t, o) in [(0, Up), (60, Down), (120, Unknown), (180, Down), (240, Up)] {
            b.add(&record(t, o));
        }
        let m = month(&mut b);
        assert_eq!(m.unknown_ms, 60_000);
        assert_eq!(m.down_ms, 120_000);
        assert_eq!(m.up_ms, 60_000);
    }

    #[test]
    fn time_is_split_at_hour_and_month_boundaries() {
        let mut b = RollupBuilder::new(TimeZone::get("Europe/Berlin").unwrap());
        let p = ProbeName::new("p").unwrap();
        b.track(&p, Duration::from_secs(7200), 1, &[]);
        // 2026-10-31T22:30Z = 23:30 Berlin (CET): the Berlin month ends at 23:00Z.
        let start = T0 - 5400;
        for offset in [0, 3600, 7200] {
            let mut r = record(0, Up);
            r.at = Timestamp::from_second(start + offset).unwrap();
            b.add(&r);
        }
        let deltas = b.take();
        let months: HashMap<String, u64> = deltas
            .iter()
            .filter(|(_, p, _)| p.kind == RollupKind::Month)
            .map(|(_, p, r)| (p.start.to_string(), r.up_ms))
            .collect();
        assert_eq!(
            months["2026-09-30T22:00:00Z"], 1_800_000,
            "October in Berlin (CEST start)"
        );
        assert_eq!(months["2026-10-31T23:00:00Z"], 5_400_000);
        let hours: u64 = deltas
            .iter()
            .filter(|(_, p, _)| p.kind == RollupKind::Hour)
            .map(|(_, _, r)| r.up_ms)
            .sum();
        assert_eq!(hours, 7_200_000);
    }

    #[test]
    fn silent_replay_restores_a_pending_run() {
        let p = ProbeName::new("p").unwrap();
        let mut b = RollupBuilder::new(TimeZone::UTC);
        let stored = [record(0, Up), record(60, Down), record(120, Down)];
        b.track(&p, Duration::from_secs(120), 3, &stored);
        assert!(b.take().is_empty(), "replay emits nothing");
        b.add(&record(180, Down));
        let m = month(&mut b);
        // The run 60..180 was confirmed by the third failure: 120 s of waiting time is down now.
        assert_eq!(m.down_ms, 120_000);
        assert_eq!(
            m.up_ms, 0,
            "the up time before the crash was already counted then"
        );
    }
}
