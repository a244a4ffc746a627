//! A coordinator's live verdict on probes checked from several locations (SPEC §9): each
//! location's results go through their own state machine (thresholds and back-dating as for
//! any probe), and the probe's state is the quorum rule over the locations' states — the
//! same rule reports apply to whole months (`report::quorum`).

use jiff::Timestamp;

use crate::config::ProbeSpec;
use crate::model::{NameMap, ProbeName, State};
use crate::report::quorum_state;
use crate::threshold::Transition;

/// One location's state as the quorum counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocationState {
    /// Its confirmed state (`unknown` once its results stop arriving).
    pub state: State,
    /// Since when (back-dated as the state machine back-dates).
    pub since: Option<Timestamp>,
}

/// Each located probe's quorum state, and since when.
#[derive(Debug, Default)]
pub struct Quorums {
    probes: NameMap<(State, Option<Timestamp>)>,
}

impl Quorums {
    /// Sets a probe's state without a transition: at start and after a reload.
    pub fn resume(&mut self, probe: &ProbeName, locations: &[LocationState], quorum: usize) {
        let (state, since) = verdict(locations, quorum, None);
        self.probes.insert(probe.clone(), (state, since));
    }

    /// The probe's state and since when, if it is located.
    pub fn state(&self, probe: &ProbeName) -> Option<(State, Option<Timestamp>)> {
        self.probes.get(probe).copied()
    }

    /// Forgets probes `keep` says no.
    pub fn retain(&mut self, keep: impl Fn(&ProbeName) -> bool) {
        self.probes.retain(|name, _| keep(name));
    }

    /// Evaluates `spec` after one of its locations saw a result (`trigger`: the transition
    /// that result confirmed there, if any); returns the probe's own transition, if the
    /// quorum verdict changed.
    pub fn evaluate(
        &mut self,
        spec: &ProbeSpec,
        locations: &[LocationState],
        trigger: Option<&Transition>,
        at: Timestamp,
    ) -> Option<Transition> {
        let (to, since) = verdict(locations, spec.quorum, trigger);
        let (from, _) = self
            .probes
            .insert(spec.name.clone(), (to, since))
            .unwrap_or((State::Unknown, None));
        if from == to {
            // Unchanged: keep the since of when it began.
            if let Some(entry) = self.probes.get_mut(&spec.name) {
                entry.1 = entry.1.or(since);
            }
            return None;
        }
        Some(Transition {
            from,
            to,
            since: since.unwrap_or(at),
            confirmed_at: at,
            cause: trigger.and_then(|t| t.cause.clone()),
        })
    }
}

/// The quorum state and when it began: for `down`, when the quorum-th location went down
/// (its state machine's back-dated start); otherwise when the change that made it began.
fn verdict(
    locations: &[LocationState],
    quorum: usize,
    trigger: Option<&Transition>,
) -> (State, Option<Timestamp>) {
    let states: Vec<State> = locations.iter().map(|l| l.state).collect();
    let state = quorum_state(&states, quorum);
    let since = if state == State::Down {
        let mut down: Vec<Timestamp> = locations
            .iter()
            .filter(|l| l.state == State::Down)
            .filter_map(|l| l.since)
            .collect();
        down.sort();
        down.get(quorum.max(1) - 1).copied()
    } else {
        trigger.map(|t| t.since)
    };
    (state, since)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(second: i64) -> Timestamp {
        Timestamp::from_second(1_764_547_200 + second).expect("time")
    }

    fn located(state: State, since: i64) -> LocationState {
        LocationState {
            state,
            since: Some(at(since)),
        }
    }

    #[test]
    fn down_waits_for_the_quorum_and_dates_from_the_quorum_th_location() {
        let a = located(State::Down, 100);
        let b = located(State::Down, 40);
        let c = located(State::Up, 0);
        let (state, since) = verdict(&[a, c, c], 2, None);
        assert_eq!(state, State::Up, "one of three down is not down");
        let (state, since_2) = verdict(&[a, b, c], 2, None);
        assert_eq!(state, State::Down);
        assert_eq!(since_2, Some(at(100)), "down once the second location was");
        let unknown = located(State::Unknown, 50);
        assert_eq!(verdict(&[a, unknown, c], 2, None).0, State::Unknown);
        assert_eq!(verdict(&[a, c, c], 1, None).0, State::Down);
        assert!(since.is_none());
    }
}
