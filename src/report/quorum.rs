//! Several locations' timelines of one probe read as one (SPEC §9): with n locations and
//! quorum q, at each instant the probe is **down** when at least q locations are down, **up**
//! when fewer than q are down or unknown, and **unknown** otherwise — one location's network
//! trouble never makes the target down, and locations that cannot see it never make it up.
//!
//! States beyond the three of SPEC §9 follow the same spirit: a location in `degraded`
//! counts as up for the verdict, and the probe reads `degraded` when a quorum of locations
//! does not see it fully up; `maintenance` (applied later per probe, but possible in a
//! member's timeline) counts as up for the quorum of down and unknown, and the probe reads
//! `maintenance` only when a quorum of locations is in it.

use jiff::Timestamp;

use super::{Interval, Segment, Timeline};
use crate::model::State;

/// The quorum verdict at one instant, from the locations' states there (a location with no
/// timeline at that instant counts as unknown).
pub fn quorum_state(states: &[State], quorum: usize) -> State {
    let count = |wanted: State| states.iter().filter(|s| **s == wanted).count();
    let down = count(State::Down);
    let unknown = count(State::Unknown);
    let quorum = quorum.max(1);
    if down >= quorum {
        State::Down
    } else if down + unknown >= quorum {
        State::Unknown
    } else if count(State::Maintenance) >= quorum {
        State::Maintenance
    } else if down + unknown + count(State::Degraded) >= quorum {
        State::Degraded
    } else {
        State::Up
    }
}

/// The probe's timeline over `span` from its locations' timelines (see the module doc):
/// instants where no location has a timeline are left out (unmonitored), as they are for
/// one location.
pub fn combine_locations(locations: &[&Timeline], quorum: usize, span: Interval) -> Timeline {
    let mut cuts: Vec<Timestamp> = vec![span.start, span.end];
    for location in locations {
        for segment in location.segments() {
            cuts.push(segment.start.clamp(span.start, span.end));
            cuts.push(segment.end.clamp(span.start, span.end));
        }
    }
    cuts.sort();
    cuts.dedup();
    let mut segments: Vec<Segment> = Vec::new();
    let mut states: Vec<State> = Vec::with_capacity(locations.len());
    for pair in cuts.windows(2) {
        let (start, end) = (pair[0], pair[1]);
        states.clear();
        let mut monitored = false;
        for location in locations {
            let state = location.state_at(start);
            monitored |= state.is_some();
            states.push(state.unwrap_or(State::Unknown));
        }
        if monitored {
            segments.push(Segment::new(start, end, quorum_state(&states, quorum)));
        }
    }
    let (Some(first), Some(last)) = (segments.first(), segments.last()) else {
        return Timeline::default();
    };
    let covered = Interval::new(first.start, last.end);
    Timeline::from_intervals(covered, State::Unknown, segments)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        text.parse().expect("timestamp")
    }

    #[test]
    fn the_spec_rule_decides_down_up_and_unknown() {
        use State::{Degraded, Down, Maintenance, Unknown, Up};
        // Three locations, quorum 2.
        assert_eq!(quorum_state(&[Down, Down, Up], 2), Down);
        assert_eq!(
            quorum_state(&[Down, Up, Up], 2),
            Up,
            "one location's trouble"
        );
        assert_eq!(quorum_state(&[Down, Unknown, Up], 2), Unknown);
        assert_eq!(quorum_state(&[Unknown, Unknown, Up], 2), Unknown);
        assert_eq!(quorum_state(&[Unknown, Up, Up], 2), Up);
        assert_eq!(quorum_state(&[Degraded, Degraded, Up], 2), Degraded);
        assert_eq!(quorum_state(&[Degraded, Up, Up], 2), Up);
        assert_eq!(
            quorum_state(&[Maintenance, Maintenance, Down], 2),
            Maintenance
        );
        // Quorum 1 is "any location down"; quorum n is "every location down".
        assert_eq!(quorum_state(&[Down, Up, Up], 1), Down);
        assert_eq!(quorum_state(&[Down, Down, Up], 3), Up);
        assert_eq!(quorum_state(&[Down, Down, Unknown], 3), Unknown);
        assert_eq!(quorum_state(&[Down, Down, Down], 3), Down);
    }

    #[test]
    fn timelines_combine_instant_by_instant() {
        let span = Interval::new(at("2024-04-05T10:00:00Z"), at("2024-04-05T11:00:00Z"));
        let a = Timeline::from_intervals(
            span,
            State::Up,
            [Segment::new(
                at("2024-04-05T10:00:00Z"),
                at("2024-04-05T10:30:00Z"),
                State::Down,
            )],
        );
        let b = Timeline::from_intervals(
            span,
            State::Up,
            [Segment::new(
                at("2024-04-05T10:20:00Z"),
                at("2024-04-05T10:50:00Z"),
                State::Down,
            )],
        );
        let c = Timeline::from_intervals(span, State::Up, []);
        let combined = combine_locations(&[&a, &b, &c], 2, span);
        assert_eq!(combined.time_in(State::Down).to_string(), "600");
        assert_eq!(
            combined.state_at(at("2024-04-05T10:25:00Z")),
            Some(State::Down)
        );
        assert_eq!(
            combined.state_at(at("2024-04-05T10:35:00Z")),
            Some(State::Up)
        );
        assert_eq!(
            combine_locations(&[&a, &b, &c], 1, span)
                .time_in(State::Down)
                .to_string(),
            "3000"
        );
        assert_eq!(
            combine_locations(&[&a, &b, &c], 3, span)
                .time_in(State::Down)
                .to_string(),
            "0"
        );
        // A location that was not monitoring counts as unknown, not up: with quorum 1 the
        // probe is unknown while it is missing.
        let late = Timeline::from_intervals(
            Interval::new(at("2024-04-05T10:40:00Z"), span.end),
            State::Up,
            [],
        );
        let with_gap = combine_locations(&[&a, &late], 1, span);
        assert_eq!(
            with_gap.state_at(at("2024-04-05T10:35:00Z")),
            Some(State::Unknown)
        );
        assert_eq!(combine_locations(&[], 2, span).monitored().to_string(), "0");
    }
}
