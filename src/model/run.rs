//! Runs: consecutive check results of one probe with the same outcome, kept as one value.
//!
//! A month of 30-second checks is 86,400 results per probe, but reading them sample-and-hold
//! (SPEC §3) only needs where each outcome starts and ends, how many checks it spans (failure
//! thresholds count checks) and how far apart they were (a gap longer than `stale_after` is
//! unknown time). A run keeps exactly that, so a report can be computed from a few runs per
//! hour instead of every result — and gives the same figures, whenever no gap inside a run is
//! longer than the probe's `stale_after` ([`Run::max_gap`] says).

use std::time::Duration;

use jiff::Timestamp;

use super::{ErrorClass, Outcome};

/// Results of one probe in time order, all with the same outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    /// When the first check of the run started.
    pub first: Timestamp,
    /// When the last check of the run started.
    pub last: Timestamp,
    /// The outcome every check of the run had.
    pub outcome: Outcome,
    /// How many checks the run spans (at least 1).
    pub count: u32,
    /// The longest time between two consecutive checks inside the run; zero for one check.
    pub max_gap: Duration,
    /// The first check's error class (kept for `down` runs: incidents name their cause).
    pub error_class: Option<ErrorClass>,
    /// The first check's detail (kept for `down` runs, empty otherwise).
    pub detail: String,
}

impl Run {
    /// A run of one check.
    pub fn single(
        at: Timestamp,
        outcome: Outcome,
        error_class: Option<ErrorClass>,
        detail: &str,
    ) -> Run {
        let down = outcome == Outcome::Down;
        Run {
            first: at,
            last: at,
            outcome,
            count: 1,
            max_gap: Duration::ZERO,
            error_class: if down { error_class } else { None },
            detail: if down {
                detail.to_owned()
            } else {
                String::new()
            },
        }
    }

    /// Adds a check that started at `at` (not before [`Run::last`]) with this run's outcome.
    pub fn extend(&mut self, at: Timestamp) {
        let gap = at.duration_since(self.last).unsigned_abs();
        self.max_gap = self.max_gap.max(gap);
        self.last = at;
        self.count = self.count.saturating_add(1);
    }
}

/// Appends a check to `runs` (results in time order): extends the last run when the outcome
/// is the same and the check follows within `split_after`, starts a new run otherwise.
pub fn push_run(
    runs: &mut Vec<Run>,
    split_after: Duration,
    at: Timestamp,
    outcome: Outcome,
    error_class: Option<ErrorClass>,
    detail: &str,
) {
    match runs.last_mut() {
        Some(run)
            if run.outcome == outcome
                && at >= run.last
                && at.duration_since(run.last).unsigned_abs() <= split_after =>
        {
            run.extend(at)
        }
        _ => runs.push(Run::single(at, outcome, error_class, detail)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: i64) -> Timestamp {
        Timestamp::from_second(1_790_000_000 + s).unwrap()
    }

    #[test]
    fn equal_outcomes_join_and_record_their_longest_gap() {
        let mut runs = Vec::new();
        let never = Duration::MAX;
        push_run(&mut runs, never, at(0), Outcome::Up, None, "");
        push_run(&mut runs, never, at(30), Outcome::Up, None, "");
        push_run(&mut runs, never, at(100), Outcome::Up, None, "");
        let refused = Some(ErrorClass::Connect);
        push_run(&mut runs, never, at(130), Outcome::Down, refused, "refused");
        let late = Some(ErrorClass::Timeout);
        push_run(&mut runs, never, at(160), Outcome::Down, late, "late");
        assert_eq!(runs.len(), 2);
        assert_eq!(runs[0].count, 3);
        assert_eq!(runs[0].max_gap, Duration::from_secs(70));
        assert_eq!((runs[0].first, runs[0].last), (at(0), at(100)));
        assert_eq!(runs[1].count, 2);
        assert_eq!(
            runs[1].error_class,
            Some(ErrorClass::Connect),
            "the first cause"
        );
        assert_eq!(runs[1].detail, "refused");
    }

    #[test]
    fn a_longer_gap_than_allowed_starts_a_new_run() {
        let mut runs = Vec::new();
        let minute = Duration::from_secs(60);
        for s in [0, 30, 90, 200, 230] {
            push_run(&mut runs, minute, at(s), Outcome::Up, None, "");
        }
        let counts: Vec<u32> = runs.iter().map(|r| r.count).collect();
        assert_eq!(counts, [3, 2]);
    }

    #[test]
    fn only_down_runs_keep_a_cause() {
        let run = Run::single(at(0), Outcome::Degraded, None, "slow: 900 ms");
        assert_eq!(run.detail, "");
    }
}
