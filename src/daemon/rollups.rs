//! Incremental UTC-day rollups, maintained as results arrive: the status page's 90-day bars
//! read them instead of scanning raw results (and they survive retention).
//!
//! Only the day kind is kept live: reports read digests (`ledger::digest`), and each rollup
//! kept live costs a sled merge per probe per group commit, the dearest part of writing a
//! result. (Ledgers written before keep their hour and month rollups; nothing reads them.)
//!
//! Time is classified exactly as SPEC §3 says: each result holds for
//! `[at, min(next, at + stale_after))`; a run of at least `failure_threshold` failures is down
//! from its first failure, a shorter run is up; a gap longer than `stale_after` is unknown and
//! breaks a run; `unknown` results neither count nor break a run. A failure run's time waits
//! in memory until the run is confirmed or broken, then lands in the rollups.
//!
//! Crash safety: the deltas of a group commit are merged in the same flush as its results, and
//! after a restart the builder replays the newest stored results *silently* (nothing emitted),
//! which restores exactly the state it had after the last durable result.

use std::{collections::HashMap, time::Duration};

use jiff::{SignedDuration, Timestamp};

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
#[derive(Debug, Default)]
pub struct RollupBuilder {
    probes: HashMap<ProbeName, Accumulator>,
    deltas: HashMap<(ProbeName, RollupPeriod), Rollup>,
}

impl RollupBuilder {
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
        let deltas = &mut self.deltas;
        let probe = &record.probe;
        let period = RollupPeriod {
            kind: RollupKind::Day,
            start: day_start(record.at),
        };
        let rollup = deltas.entry((probe.clone(), period)).or_default();
        rollup.checks += 1;
        if record.outcome == Outcome::Down {
            rollup.failed_checks += 1;
        }
        rollup.record_latency(record.latency);
        let mut emit = |from: Timestamp, to: Timestamp, class: Class| {
            add_time(deltas, probe, from, to, class);
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

fn day_start(at: Timestamp) -> Timestamp {
    let second = at.as_second().div_euclid(86_400) * 86_400;
    Timestamp::from_second(second).unwrap_or(at)
}

/// Adds `[from, to)` as `class` to every UTC-day rollup it overlaps.
fn add_time(
    deltas: &mut HashMap<(ProbeName, RollupPeriod), Rollup>,
    probe: &ProbeName,
    from: Timestamp,
    to: Timestamp,
    class: Class,
) {
    let mut cursor = from;
    while cursor < to {
        let start = day_start(cursor);
        let end = start
            .checked_add(SignedDuration::from_hours(24))
            .unwrap_or(Timestamp::MAX);
        let piece_end = end.min(to);
        let ms = u64::try_from(piece_end.duration_since(cursor).as_millis()).unwrap_or(0);
        let period = RollupPeriod {
            kind: RollupKind::Day,
            start,
        };
        let rollup = deltas.entry((probe.clone(), period)).or_default();
        match class {
            Class::Up => rollup.up_ms += ms,
            Class::Degraded => rollup.degraded_ms += ms,
            Class::Down => rollup.down_ms += ms,
            Class::Unknown => rollup.unknown_ms += ms,
        }
        cursor = piece_end;
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

    fn total(builder: &mut RollupBuilder) -> Rollup {
        let mut total = Rollup::default();
        for (_, period, rollup) in builder.take() {
            assert_eq!(period.kind, RollupKind::Day);
            total.add(&rollup);
        }
        total
    }

    fn builder(threshold: u32) -> RollupBuilder {
        let mut b = RollupBuilder::default();
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
        let m = total(&mut b);
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
        let m = total(&mut b);
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
        let m = total(&mut b);
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
        let m = total(&mut b);
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
        let m = total(&mut b);
        assert_eq!(m.unknown_ms, 60_000);
        assert_eq!(m.down_ms, 120_000);
        assert_eq!(m.up_ms, 60_000);
    }

    #[test]
    fn time_is_split_at_utc_day_boundaries() {
        let mut b = RollupBuilder::default();
        let p = ProbeName::new("p").unwrap();
        b.track(&p, Duration::from_secs(7200), 1, &[]);
        // 22:30Z on Oct 31, then hourly: 1.5 h fall in October's last day, 0.5 h in Nov 1.
        let start = T0 - 5400;
        for offset in [0, 3600, 7200] {
            let mut r = record(0, Up);
            r.at = Timestamp::from_second(start + offset).unwrap();
            b.add(&r);
        }
        let days: HashMap<String, (u64, u64)> = b
            .take()
            .iter()
            .map(|(_, p, r)| {
                assert_eq!(p.kind, RollupKind::Day);
                (p.start.to_string(), (r.up_ms, r.checks))
            })
            .collect();
        assert_eq!(days["2026-10-31T00:00:00Z"], (5_400_000, 2));
        assert_eq!(days["2026-11-01T00:00:00Z"], (1_800_000, 1));
    }

    #[test]
    fn silent_replay_restores_a_pending_run() {
        let p = ProbeName::new("p").unwrap();
        let mut b = RollupBuilder::default();
        let stored = [record(0, Up), record(60, Down), record(120, Down)];
        b.track(&p, Duration::from_secs(120), 3, &stored);
        assert!(b.take().is_empty(), "replay emits nothing");
        b.add(&record(180, Down));
        let m = total(&mut b);
        // The run 60..180 was confirmed by the third failure: 120 s of waiting time is down now.
        assert_eq!(m.down_ms, 120_000);
        assert_eq!(
            m.up_ms, 0,
            "the up time before the crash was already counted then"
        );
    }
}
