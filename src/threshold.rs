//! The pure state machine that turns a probe's results into confirmed states (SPEC §2, §3).
//!
//! A probe is `down` only after `failure_threshold` consecutive failures, and the outage is
//! back-dated to the **first** failure of the run; it is resolved after `success_threshold`
//! consecutive good results, and the outage ends at the **first** of those. A gap longer than
//! `stale_after` breaks a run, and the confirmed state with it: the time in between is unknown
//! (as reports read it), so the state after the gap is confirmed anew, thresholds and all, as
//! for a new probe. `unknown` results (the monitor itself offline) neither count nor break a
//! run. No I/O and no clock: the caller feeds results and stores the transitions.
//!
//! Because nothing before a long gap matters, and a few results in a row fix the state whatever
//! came before, a tracker can be rebuilt exactly from the newest stretch of a probe's history
//! ([`replay`]): that is how a restarted daemon resumes, from the ledger alone.
//! May use `model`.

use std::time::Duration;

use jiff::Timestamp;

use crate::model::{ErrorClass, Outcome, Run, State};

/// The thresholds of one probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thresholds {
    /// Consecutive failures before the probe is down.
    pub failure: u32,
    /// Consecutive good results before an outage is resolved.
    pub success: u32,
    /// A result stands for this long; a longer gap breaks runs.
    pub stale_after: Duration,
}

/// What one result tells the state machine.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation<'a> {
    /// When the check started.
    pub at: Timestamp,
    /// What it found.
    pub outcome: Outcome,
    /// Why it failed.
    pub error_class: Option<ErrorClass>,
    /// Short explanation of a failure.
    pub detail: &'a str,
}

/// A confirmed change of state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    /// The state before.
    pub from: State,
    /// The state after.
    pub to: State,
    /// When the new state began: the first failure of a confirmed outage, the first good result
    /// of a recovery (back-dated, SPEC §3).
    pub since: Timestamp,
    /// When the change was confirmed: the result that crossed the threshold.
    pub confirmed_at: Timestamp,
    /// For `down`: the error class and detail of the first failure.
    pub cause: Option<(ErrorClass, String)>,
}

/// The first result of a run that has not yet crossed its threshold.
#[derive(Debug, Clone, PartialEq, Eq)]
struct RunStart {
    at: Timestamp,
    cause: Option<(ErrorClass, String)>,
}

/// The confirmed state of one probe and the run in progress.
#[derive(Debug, Clone)]
pub struct Tracker {
    thresholds: Thresholds,
    state: State,
    since: Option<Timestamp>,
    last_at: Option<Timestamp>,
    /// Consecutive results pointing away from `state`, and the first of them.
    run: u32,
    run_start: Option<RunStart>,
    /// The state the current run points to.
    run_target: Option<State>,
}

impl Tracker {
    /// A probe with no evidence yet: `unknown`.
    pub fn new(thresholds: Thresholds) -> Self {
        Tracker {
            thresholds,
            state: State::Unknown,
            since: None,
            last_at: None,
            run: 0,
            run_start: None,
            run_target: None,
        }
    }

    /// The confirmed state.
    pub fn state(&self) -> State {
        self.state
    }

    /// When the confirmed state began, if known.
    pub fn since(&self) -> Option<Timestamp> {
        self.since
    }

    /// Consecutive failures counted so far towards `down` (0 when not in a failure run).
    pub fn pending_failures(&self) -> u32 {
        if self.run_target == Some(State::Down) {
            self.run
        } else {
            0
        }
    }

    /// Applies new thresholds (after a reload) without losing the state or the run.
    pub fn set_thresholds(&mut self, thresholds: Thresholds) {
        self.thresholds = thresholds;
    }

    /// Feeds one result; returns the transition it confirms, if any.
    pub fn observe(&mut self, observation: &Observation<'_>) -> Option<Transition> {
        let stale = self.last_at.is_some_and(|last| {
            observation
                .at
                .duration_since(last)
                .try_into()
                .is_ok_and(|gap: Duration| gap > self.thresholds.stale_after)
        });
        if stale {
            // The gap is unknown time: what was confirmed before it no longer holds, and the
            // state is confirmed again from the results after it (SPEC §3: the gap breaks the
            // run). Reports read the same results the same way.
            self.state = State::Unknown;
            self.since = None;
            self.reset_run();
        }
        // Every result, unknown ones too, counts for measuring gaps (as the ledger's timeline
        // does), so live states and reports agree on which runs a gap broke.
        self.last_at = Some(observation.at);
        let target = match observation.outcome {
            // The monitor's own outage is no evidence about the target.
            Outcome::Unknown => return None,
            Outcome::Up => State::Up,
            Outcome::Degraded => State::Degraded,
            Outcome::Down => State::Down,
        };

        if target == self.state {
            self.reset_run();
            return None;
        }
        // Up and degraded are both "available": switching between them, or leaving `unknown`
        // for either, needs no confirmation beyond the result itself, except that leaving `down`
        // needs `success` good results.
        let needed = match (self.state, target) {
            (_, State::Down) => self.thresholds.failure,
            (State::Down, _) => self.thresholds.success,
            _ => 1,
        };
        let continues_run = match (self.run_target, target) {
            (Some(State::Down), State::Down) => true,
            (Some(State::Down), _) | (_, State::Down) => false,
            (Some(_), _) => true,
            (None, _) => false,
        };
        if !continues_run {
            self.run = 0;
            self.run_start = Some(RunStart {
                at: observation.at,
                cause: observation
                    .error_class
                    .map(|class| (class, observation.detail.to_owned())),
            });
        }
        self.run += 1;
        self.run_target = Some(target);
        if self.run < needed {
            return None;
        }
        let start = self.run_start.take().unwrap_or(RunStart {
            at: observation.at,
            cause: None,
        });
        let transition = Transition {
            from: self.state,
            to: target,
            since: start.at,
            confirmed_at: observation.at,
            cause: if target == State::Down {
                start.cause
            } else {
                None
            },
        };
        self.state = target;
        self.since = Some(start.at);
        self.reset_run();
        Some(transition)
    }

    /// Feeds a [`Run`]: its `count` checks, the first at `run.first`, the last at `run.last`;
    /// returns the transition it confirms, if any (at most one: the outcome does not change
    /// inside a run). Only the checks' number matters between the first and the last, so a
    /// threshold crossed inside the run is dated `confirmed_at = run.last`; every `since` is
    /// exact. No two checks inside the run may be more than `stale_after` apart
    /// ([`Run::max_gap`]).
    pub fn observe_run(&mut self, run: &Run) -> Option<Transition> {
        let mut transition = self.observe(&Observation {
            at: run.first,
            outcome: run.outcome,
            error_class: run.error_class,
            detail: &run.detail,
        });
        if run.count > 1 {
            // The gap rule only concerns the time between runs.
            self.last_at = Some(run.last);
            for _ in 1..run.count {
                let settled = confirmed(run.outcome)
                    .is_none_or(|target| self.run == 0 && target == self.state);
                if settled {
                    // Settled: more of the same changes nothing.
                    break;
                }
                let crossed = self.observe(&Observation {
                    at: run.last,
                    outcome: run.outcome,
                    error_class: run.error_class,
                    detail: &run.detail,
                });
                transition = transition.or(crossed);
            }
        }
        transition
    }

    fn reset_run(&mut self) {
        self.run = 0;
        self.run_start = None;
        self.run_target = None;
    }
}

/// The state a result points to (`None`: no evidence).
fn confirmed(outcome: Outcome) -> Option<State> {
    match outcome {
        Outcome::Up => Some(State::Up),
        Outcome::Degraded => Some(State::Degraded),
        Outcome::Down => Some(State::Down),
        Outcome::Unknown => None,
    }
}

/// Rebuilds the tracker of a probe from the newest stretch of its history, `runs` in time
/// order up to its newest result: `Some` only when that stretch decides the state, its `since`
/// and the run in progress exactly as a tracker fed the whole history would have them;
/// `None` when the caller must look further back. `complete` says the stretch begins with
/// the probe's first result. No run may have a gap longer than `stale_after` inside.
///
/// A stretch decides the tracker when
/// - it begins with the probe's first result, or holds a gap longer than `stale_after`
///   (nothing before the gap matters), or
/// - after `failure` failures in a row, or `success` good results in a row, a transition
///   follows: those results bring every tracker, whatever it held before, to the same state
///   with no run in progress (only `since` may differ), so the trackers agree from then on,
///   and a transition after that point sets `since` for all of them alike.
///
/// Otherwise the state is right but `since` may lie further back: a probe up for months is up
/// since its last transition or gap, however far back that is.
pub fn replay(thresholds: Thresholds, runs: &[Run], complete: bool) -> Option<Tracker> {
    let stale_after = thresholds.stale_after;
    let broken = |pair: &[Run]| {
        pair[1]
            .first
            .duration_since(pair[0].last)
            .try_into()
            .is_ok_and(|gap: Duration| gap > stale_after)
    };
    let after_gap = runs
        .windows(2)
        .rposition(broken)
        .map(|before_gap| before_gap + 1);
    let start = after_gap.unwrap_or(0);
    let mut decided = complete || after_gap.is_some();
    let mut tracker = Tracker::new(thresholds);
    let (mut failures, mut successes) = (0u32, 0u32);
    let mut aligned = decided;
    for run in &runs[start..] {
        if tracker.observe_run(run).is_some() && aligned {
            decided = true;
        }
        match run.outcome {
            Outcome::Down => {
                failures = failures.saturating_add(run.count);
                successes = 0;
            }
            Outcome::Up | Outcome::Degraded => {
                successes = successes.saturating_add(run.count);
                failures = 0;
            }
            Outcome::Unknown => {}
        }
        if failures >= thresholds.failure.max(1) || successes >= thresholds.success.max(1) {
            aligned = true;
        }
    }
    decided.then_some(tracker)
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_700_000_000;

    fn tracker(failure: u32, success: u32) -> Tracker {
        Tracker::new(Thresholds {
            failure,
            success,
            stale_after: Duration::from_secs(120),
        })
    }

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(T0 + seconds).unwrap()
    }

    fn feed(tracker: &mut Tracker, seconds: i64, outcome: Outcome) -> Option<Transition> {
        let class = (outcome == Outcome::Down).then_some(ErrorClass::Connect);
        tracker.observe(&Observation {
            at: at(seconds),
            outcome,
            error_class: class,
            detail: if class.is_some() { "refused" } else { "" },
        })
    }

    use Outcome::{Degraded, Down, Unknown, Up};

    #[test]
    fn first_good_result_confirms_up() {
        let mut t = tracker(3, 2);
        assert_eq!(t.state(), State::Unknown);
        let tr = feed(&mut t, 0, Up).unwrap();
        assert_eq!(
            (tr.from, tr.to, tr.since),
            (State::Unknown, State::Up, at(0))
        );
        assert_eq!(feed(&mut t, 60, Up), None);
    }

    #[test]
    fn outage_is_back_dated_to_the_first_failure() {
        let mut t = tracker(3, 2);
        feed(&mut t, 0, Up);
        assert_eq!(feed(&mut t, 60, Down), None);
        assert_eq!(t.pending_failures(), 1);
        assert_eq!(feed(&mut t, 120, Down), None);
        let tr = feed(&mut t, 180, Down).unwrap();
        assert_eq!((tr.from, tr.to), (State::Up, State::Down));
        assert_eq!(tr.since, at(60), "back-dated to the first failure");
        assert_eq!(tr.confirmed_at, at(180));
        assert_eq!(tr.cause, Some((ErrorClass::Connect, "refused".into())));
        assert_eq!(t.state(), State::Down);
    }

    #[test]
    fn a_short_failure_run_is_transient() {
        let mut t = tracker(3, 2);
        feed(&mut t, 0, Up);
        feed(&mut t, 60, Down);
        feed(&mut t, 120, Down);
        assert_eq!(feed(&mut t, 180, Up), None);
        assert_eq!(t.pending_failures(), 0);
        // The next run starts from scratch.
        feed(&mut t, 240, Down);
        feed(&mut t, 300, Down);
        assert_eq!(t.state(), State::Up);
    }

    #[test]
    fn recovery_needs_success_threshold_and_ends_at_the_first_success() {
        let mut t = tracker(1, 3);
        feed(&mut t, 0, Down).unwrap();
        assert_eq!(feed(&mut t, 60, Up), None);
        assert_eq!(feed(&mut t, 120, Up), None);
        let tr = feed(&mut t, 180, Up).unwrap();
        assert_eq!((tr.from, tr.to), (State::Down, State::Up));
        assert_eq!(
            tr.since,
            at(60),
            "downtime ends at the first successful check"
        );
        assert_eq!(tr.confirmed_at, at(180));
    }

    #[test]
    fn a_failure_during_recovery_restarts_it() {
        let mut t = tracker(1, 2);
        feed(&mut t, 0, Down).unwrap();
        feed(&mut t, 60, Up);
        feed(&mut t, 120, Down);
        assert_eq!(feed(&mut t, 180, Up), None);
        let tr = feed(&mut t, 240, Up).unwrap();
        assert_eq!(tr.since, at(180));
    }

    #[test]
    fn a_gap_longer_than_stale_after_breaks_a_run() {
        let mut t = tracker(3, 2);
        feed(&mut t, 0, Up);
        feed(&mut t, 60, Down);
        feed(&mut t, 120, Down);
        // 121 s later: the run is broken, this failure starts a new one.
        assert_eq!(feed(&mut t, 241, Down), None);
        assert_eq!(t.pending_failures(), 1);
        feed(&mut t, 301, Down);
        let tr = feed(&mut t, 361, Down).unwrap();
        assert_eq!(tr.since, at(241));
    }

    #[test]
    fn unknown_results_neither_count_nor_break() {
        let mut t = tracker(3, 2);
        feed(&mut t, 0, Up);
        feed(&mut t, 60, Down);
        assert_eq!(feed(&mut t, 90, Unknown), None);
        feed(&mut t, 120, Down);
        let tr = feed(&mut t, 180, Down).unwrap();
        assert_eq!(tr.since, at(60));
    }

    #[test]
    fn gaps_are_measured_from_unknown_results_too() {
        let mut t = tracker(3, 2);
        feed(&mut t, 0, Up);
        feed(&mut t, 60, Down);
        // 100 s after the failure an unknown result, 100 s after that another failure: no gap
        // longer than stale_after (120 s) between results, so the run goes on.
        feed(&mut t, 160, Unknown);
        feed(&mut t, 260, Down);
        let tr = feed(&mut t, 320, Down).unwrap();
        assert_eq!(tr.since, at(60));
    }

    #[test]
    fn degraded_and_up_switch_immediately() {
        let mut t = tracker(3, 2);
        feed(&mut t, 0, Up);
        let tr = feed(&mut t, 60, Degraded).unwrap();
        assert_eq!((tr.from, tr.to), (State::Up, State::Degraded));
        let tr = feed(&mut t, 120, Up).unwrap();
        assert_eq!((tr.from, tr.to), (State::Degraded, State::Up));
    }

    #[test]
    fn recovery_into_degraded_counts_as_recovery() {
        let mut t = tracker(1, 2);
        feed(&mut t, 0, Down).unwrap();
        feed(&mut t, 60, Degraded);
        let tr = feed(&mut t, 120, Up).unwrap();
        assert_eq!((tr.from, tr.to, tr.since), (State::Down, State::Up, at(60)));
    }

    #[test]
    fn threshold_one_is_immediate() {
        let mut t = tracker(1, 1);
        let tr = feed(&mut t, 0, Down).unwrap();
        assert_eq!(
            (tr.from, tr.to, tr.since),
            (State::Unknown, State::Down, at(0))
        );
        let tr = feed(&mut t, 60, Up).unwrap();
        assert_eq!((tr.from, tr.to), (State::Down, State::Up));
    }

    #[test]
    fn a_gap_longer_than_stale_after_lapses_a_confirmed_outage() {
        let mut t = tracker(3, 2);
        feed(&mut t, 0, Down);
        feed(&mut t, 60, Down);
        feed(&mut t, 120, Down).unwrap();
        // The daemon was away for 121 s: the outage is not known to go on; the failures after
        // the gap must cross the threshold again, as reports count them.
        assert_eq!(feed(&mut t, 241, Down), None);
        assert_eq!((t.state(), t.since()), (State::Unknown, None));
        assert_eq!(t.pending_failures(), 1);
        assert_eq!(feed(&mut t, 301, Down), None);
        let tr = feed(&mut t, 361, Down).unwrap();
        assert_eq!(
            (tr.from, tr.to, tr.since),
            (State::Unknown, State::Down, at(241))
        );
        // Likewise an up probe is up again from the first result after a gap.
        assert_eq!(feed(&mut t, 362, Up), None);
        let tr = feed(&mut t, 363, Up).unwrap();
        assert_eq!(
            (tr.from, tr.to, tr.since),
            (State::Down, State::Up, at(362))
        );
        let tr = feed(&mut t, 484, Up).unwrap();
        assert_eq!(
            (tr.from, tr.to, tr.since),
            (State::Unknown, State::Up, at(484))
        );
    }

    #[test]
    fn a_gap_of_stale_after_keeps_the_outage_and_its_start() {
        let mut t = tracker(3, 2);
        feed(&mut t, 0, Up);
        feed(&mut t, 60, Down);
        feed(&mut t, 120, Down);
        feed(&mut t, 180, Down).unwrap();
        // A restart of exactly stale_after: no gap, the outage goes on from its first failure.
        assert_eq!(feed(&mut t, 300, Down), None);
        assert_eq!((t.state(), t.since()), (State::Down, Some(at(60))));
    }

    /// Random results of one probe: every outcome, gaps now and then longer than 120 s.
    fn history(rng: &mut crate::testing::Rng) -> Vec<(Timestamp, Outcome)> {
        let mut seconds = 0;
        (0..rng.below(80))
            .map(|_| {
                let longest = if rng.below(10) == 0 { 300 } else { 70 };
                seconds += 1 + rng.below(longest) as i64;
                let outcome =
                    [Up, Up, Up, Down, Down, Down, Degraded, Unknown][rng.below(8) as usize];
                (at(seconds), outcome)
            })
            .collect()
    }

    fn observation(at: Timestamp, outcome: Outcome) -> Observation<'static> {
        let class = (outcome == Outcome::Down).then_some(ErrorClass::Connect);
        Observation {
            at,
            outcome,
            error_class: class,
            detail: if class.is_some() { "refused" } else { "" },
        }
    }

    /// The results folded into runs as the ledger's digests fold them.
    fn runs_of(results: &[(Timestamp, Outcome)], stale_after: Duration) -> Vec<Run> {
        let mut runs = Vec::new();
        for &(at, outcome) in results {
            let o = observation(at, outcome);
            crate::model::push_run(&mut runs, stale_after, at, outcome, o.error_class, o.detail);
        }
        runs
    }

    /// Everything a tracker holds, to compare two of them.
    fn held(t: &Tracker) -> impl PartialEq + std::fmt::Debug {
        (
            t.state,
            t.since,
            t.last_at,
            t.run,
            t.run_start.clone(),
            t.run_target,
        )
    }

    #[test]
    fn runs_move_a_tracker_as_their_checks_do() {
        let mut rng = crate::testing::Rng::new(5);
        for case in 0..300 {
            let thresholds = Thresholds {
                failure: 1 + rng.below(4) as u32,
                success: 1 + rng.below(3) as u32,
                stale_after: Duration::from_secs(120),
            };
            let results = history(&mut rng);
            let mut by_check = Tracker::new(thresholds);
            let mut downs = Vec::new();
            for &(at, outcome) in &results {
                if let Some(t) = by_check.observe(&observation(at, outcome)) {
                    downs.push((t.from, t.to, t.since));
                }
            }
            let mut by_run = Tracker::new(thresholds);
            let mut run_downs = Vec::new();
            for run in runs_of(&results, thresholds.stale_after) {
                if let Some(t) = by_run.observe_run(&run) {
                    run_downs.push((t.from, t.to, t.since));
                }
            }
            assert_eq!(held(&by_run), held(&by_check), "case {case}");
            assert_eq!(run_downs, downs, "case {case}");
        }
    }

    /// What a restarted daemon relies on: whenever a stretch of the newest history decides
    /// the tracker, it is the tracker fed the whole history — state, since and run.
    #[test]
    fn a_replayed_stretch_is_the_whole_history_or_undecided() {
        let mut rng = crate::testing::Rng::new(13);
        let (mut decided, mut undecided) = (0, 0);
        for case in 0..400 {
            let thresholds = Thresholds {
                failure: 1 + rng.below(4) as u32,
                success: 1 + rng.below(3) as u32,
                stale_after: Duration::from_secs(120),
            };
            let results = history(&mut rng);
            let mut whole = Tracker::new(thresholds);
            for &(at, outcome) in &results {
                whole.observe(&observation(at, outcome));
            }
            let runs = runs_of(&results, thresholds.stale_after);
            assert_eq!(
                replay(thresholds, &runs, true).as_ref().map(held),
                Some(held(&whole)),
                "case {case}: the whole history"
            );
            for from in 1..runs.len() {
                match replay(thresholds, &runs[from..], false) {
                    Some(replayed) => {
                        decided += 1;
                        assert_eq!(held(&replayed), held(&whole), "case {case} from run {from}");
                    }
                    None => undecided += 1,
                }
            }
        }
        // Both answers occur, so the comparison above means something.
        assert!(
            decided > 1_000 && undecided > 1_000,
            "{decided} {undecided}"
        );
    }

    #[test]
    fn a_long_outage_is_replayed_from_its_first_failure() {
        let thresholds = Thresholds {
            failure: 3,
            success: 1,
            stale_after: Duration::from_secs(120),
        };
        let mut results = vec![(at(0), Up)];
        results.extend((1..=20).map(|n| (at(60 * n), Down)));
        let runs = runs_of(&results, thresholds.stale_after);
        // The newest failures alone say down, but not since when.
        let failures = Run {
            first: at(60 * 12),
            count: 9,
            ..runs[1].clone()
        };
        assert!(replay(thresholds, &[failures], false).is_none());
        // The result before them does.
        let replayed = replay(thresholds, &runs, false).unwrap();
        assert_eq!(
            (replayed.state(), replayed.since()),
            (State::Down, Some(at(60)))
        );
        // So does a gap: what came before it does not matter.
        let mut after_gap = results.clone();
        after_gap.extend((0..4).map(|n| (at(1_500 + 60 * n), Down)));
        let runs = runs_of(&after_gap, thresholds.stale_after);
        let replayed = replay(thresholds, &runs[runs.len() - 2..], false).unwrap();
        assert_eq!(
            (replayed.state(), replayed.since()),
            (State::Down, Some(at(1_500)))
        );
    }
}
