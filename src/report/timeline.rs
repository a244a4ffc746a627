//! Timelines: what state a probe (or a service) was in, instant by instant, as ordered,
//! non-overlapping half-open segments.
//!
//! A timeline is built from explicit intervals over a baseline, or from check results read
//! sample-and-hold with back-dated confirmation (SPEC §3); the status page's day rollups are
//! classified by it too (`query::days`), so bars and reports agree. Maintenance is laid over it afterwards by precedence. Time outside every
//! segment was not monitored at all (before a probe's first result). Resolution is the
//! ledger's: whole milliseconds. May use `model`, `config` and the plain
//! [`ResultRecord`] data of `ledger`.

use std::time::Duration;

use jiff::Timestamp;

use super::{
    exact::Seconds,
    interval::{Interval, from_millis, merge_spans, split_by_windows, to_millis},
};
use crate::{
    config::ProbeSpec,
    ledger::ResultRecord,
    model::{CheckResult, Outcome, Run, State},
};

/// States from the weakest to the strongest evidence: where evidence overlaps the stronger
/// wins (SPEC §3: maintenance > down > degraded > up > unknown).
const BY_PRECEDENCE: [State; 5] = [
    State::Unknown,
    State::Up,
    State::Degraded,
    State::Down,
    State::Maintenance,
];

/// The rank of `state` where evidence overlaps: higher wins (SPEC §3).
pub fn precedence(state: State) -> u8 {
    match state {
        State::Unknown => 0,
        State::Up => 1,
        State::Degraded => 2,
        State::Down => 3,
        State::Maintenance => 4,
    }
}

/// `[start, end)` in one state: an input interval, or a piece of a [`Timeline`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    /// The first instant in this state.
    pub start: Timestamp,
    /// The first instant after (exclusive).
    pub end: Timestamp,
    /// The state throughout.
    pub state: State,
}

impl Segment {
    /// `[start, end)` in `state`.
    pub fn new(start: Timestamp, end: Timestamp, state: State) -> Segment {
        Segment { start, end, state }
    }

    /// The span, without the state.
    pub fn interval(&self) -> Interval {
        Interval::new(self.start, self.end)
    }
}

/// One check result as a timeline needs it: when it started and what it found.
///
/// A separate type so that ledger records, live results and test data feed the same code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    /// When the check started.
    pub at: Timestamp,
    /// What it found.
    pub outcome: Outcome,
}

impl From<&ResultRecord> for Sample {
    fn from(record: &ResultRecord) -> Sample {
        Sample {
            at: record.at,
            outcome: record.outcome,
        }
    }
}

impl From<&CheckResult> for Sample {
    fn from(result: &CheckResult) -> Sample {
        Sample {
            at: result.at,
            outcome: result.outcome,
        }
    }
}

/// How results are read into time (SPEC §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SampleRules {
    /// How long one result stands; a longer gap is unknown and breaks a failure run.
    pub stale_after: Duration,
    /// Consecutive failures that confirm an outage (back-dated to the first); 0 acts as 1.
    pub failure_threshold: u32,
}

impl SampleRules {
    /// The rules of a configured probe.
    pub fn for_probe(probe: &ProbeSpec) -> SampleRules {
        SampleRules {
            stale_after: probe.stale_after,
            failure_threshold: probe.failure_threshold,
        }
    }
}

/// A segment in milliseconds, the form the computations use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Piece {
    pub(super) start: i64,
    pub(super) end: i64,
    pub(super) state: State,
}

/// What state a probe was in over time: ordered, non-overlapping, non-empty half-open
/// segments, adjacent segments in different states. Gaps between segments were not
/// monitored (as opposed to `unknown`, which was monitored without evidence).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Timeline {
    pieces: Vec<Piece>,
}

impl Timeline {
    /// `span` filled with explicit `intervals`, and `baseline` wherever none applies.
    ///
    /// Intervals may overlap; where they do, the state of higher [`precedence`] wins. Parts
    /// outside `span` are cut off (an outage crossing the month boundary is split).
    pub fn from_intervals(
        span: Interval,
        baseline: State,
        intervals: impl IntoIterator<Item = Segment>,
    ) -> Timeline {
        let (span_start, span_end) = span.millis();
        if span_start >= span_end {
            return Timeline::default();
        }
        let mut events: Vec<(i64, bool, usize)> = Vec::new();
        for segment in intervals {
            let (start, end) = segment.interval().millis();
            let (start, end) = (start.max(span_start), end.min(span_end));
            if start < end {
                let rank = usize::from(precedence(segment.state));
                events.push((start, true, rank));
                events.push((end, false, rank));
            }
        }
        events.sort_unstable_by_key(|&(at, _, _)| at);
        let mut active = [0usize; BY_PRECEDENCE.len()];
        let current = |active: &[usize; 5]| {
            BY_PRECEDENCE
                .iter()
                .zip(active)
                .rev()
                .find(|(_, count)| **count > 0)
                .map_or(baseline, |(state, _)| *state)
        };
        let mut pieces = Vec::new();
        let mut cursor = span_start;
        for (at, opens, rank) in events {
            if at > cursor {
                pieces.push(Piece {
                    start: cursor,
                    end: at,
                    state: current(&active),
                });
                cursor = at;
            }
            if let Some(count) = active.get_mut(rank) {
                if opens {
                    *count += 1;
                } else {
                    *count = count.saturating_sub(1);
                }
            }
        }
        pieces.push(Piece {
            start: cursor,
            end: span_end,
            state: current(&active),
        });
        Timeline::normalized(pieces)
    }

    /// Check results read sample-and-hold (SPEC §3), from the first result up to `until`.
    ///
    /// Each result at `t` covers `[t, min(t_next, t + stale_after))`; a longer gap is
    /// `unknown` and breaks a failure run. A run of at least `failure_threshold` consecutive
    /// failures is `down` from its first failure until the next successful check; a shorter
    /// run counts as `up`. `unknown` results hold unknown time and neither count nor break a
    /// run. After the last result's hold the time up to `until` is `unknown` (the daemon
    /// stopped). A run still unconfirmed when the results end counts as `up`, as the live
    /// state does; feed results past the period end so that back-dating reaches into it.
    /// Results at or after `until` still decide runs; only their time is cut off.
    ///
    /// Results may come in any order (they are sorted by time, stably).
    pub fn from_samples(
        samples: impl IntoIterator<Item = Sample>,
        rules: SampleRules,
        until: Timestamp,
    ) -> Timeline {
        let runs = samples
            .into_iter()
            .map(|sample| Run::single(sample.at, sample.outcome, None, ""));
        Timeline::from_runs(runs, rules, until)
    }

    /// [`Timeline::from_samples`] for results already folded into [`Run`]s: the same
    /// timeline as from the results themselves, provided no run has a gap longer than
    /// `stale_after` inside ([`Run::max_gap`]); the caller reads such runs' results instead.
    ///
    /// Inside a run every check holds until the next, and failures are only counted, so the
    /// run's checks can be counted at once: confirmation back-dates to the first failure all
    /// the same.
    pub fn from_runs(
        runs: impl IntoIterator<Item = Run>,
        rules: SampleRules,
        until: Timestamp,
    ) -> Timeline {
        let mut runs: Vec<Run> = runs.into_iter().collect();
        runs.sort_by_key(|run| run.first);
        let until = to_millis(until);
        let stale_after = i64::try_from(rules.stale_after.as_millis()).unwrap_or(i64::MAX);
        let mut reader = HoldReader::new(rules.failure_threshold.max(1));
        let mut previous: Option<(i64, Outcome)> = None;
        for run in runs {
            let first = to_millis(run.first);
            let last = to_millis(run.last).max(first);
            if let Some((previous_at, previous_outcome)) = previous {
                let hold_end = previous_at.saturating_add(stale_after);
                reader.hold(previous_at, hold_end.min(first), previous_outcome);
                if first > hold_end {
                    reader.settle(State::Up);
                    reader.emit(hold_end, first, State::Unknown);
                }
            }
            reader.observe(run.outcome, 1);
            if run.count > 1 {
                reader.hold(first, last, run.outcome);
                reader.observe(run.outcome, run.count - 1);
            }
            previous = Some((last, run.outcome));
        }
        if let Some((last_at, last_outcome)) = previous {
            let hold_end = last_at.saturating_add(stale_after);
            reader.hold(last_at, hold_end, last_outcome);
            reader.settle(State::Up);
            reader.emit(hold_end, until, State::Unknown);
        }
        let pieces = reader
            .pieces
            .into_iter()
            .filter(|piece| piece.start < until)
            .map(|piece| Piece {
                end: piece.end.min(until),
                ..piece
            })
            .collect();
        Timeline::normalized(pieces)
    }

    /// This timeline with `state` laid over `windows` wherever it outranks what is there
    /// ([`precedence`]); only monitored time is affected. How maintenance is applied.
    pub fn overlay(&self, windows: impl IntoIterator<Item = Interval>, state: State) -> Timeline {
        let windows = merge_spans(windows.into_iter().map(|w| w.millis()).collect());
        let mut pieces = Vec::with_capacity(self.pieces.len());
        for piece in &self.pieces {
            split_by_windows(&windows, piece.start, piece.end, |start, end, inside| {
                let state = if inside && precedence(state) > precedence(piece.state) {
                    state
                } else {
                    piece.state
                };
                pieces.push(Piece { start, end, state });
            });
        }
        Timeline::normalized(pieces)
    }

    /// This timeline with every monitored instant inside `windows` made unknown, whatever the
    /// evidence said: for wall-clock time whose results cannot be trusted (a clock step made
    /// it ambiguous). Unmonitored time stays unmonitored.
    pub fn unknown_over(&self, windows: impl IntoIterator<Item = Interval>) -> Timeline {
        let windows = merge_spans(windows.into_iter().map(|w| w.millis()).collect());
        let mut pieces = Vec::with_capacity(self.pieces.len());
        for piece in &self.pieces {
            split_by_windows(&windows, piece.start, piece.end, |start, end, inside| {
                let state = if inside { State::Unknown } else { piece.state };
                pieces.push(Piece { start, end, state });
            });
        }
        Timeline::normalized(pieces)
    }

    /// This timeline with every instant inside `windows` monitored and unknown, where it was
    /// not monitored too: for ranges whose results the ledger lost (damage found by the
    /// ledger's seal or `fsck`). The probe was monitored then; nothing says how it fared.
    pub fn lost_over(&self, windows: impl IntoIterator<Item = Interval>) -> Timeline {
        let windows: Vec<Interval> = windows.into_iter().collect();
        let unknown = self.unknown_over(windows.iter().copied());
        let mut pieces = unknown.pieces.clone();
        for (start, end) in merge_spans(windows.iter().map(|w| w.millis()).collect()) {
            // The parts of the window no piece covers.
            let mut at = start;
            for piece in unknown
                .pieces
                .iter()
                .filter(|p| p.end > start && p.start < end)
            {
                if piece.start > at {
                    pieces.push(Piece {
                        start: at,
                        end: piece.start,
                        state: State::Unknown,
                    });
                }
                at = at.max(piece.end);
            }
            if at < end {
                pieces.push(Piece {
                    start: at,
                    end,
                    state: State::Unknown,
                });
            }
        }
        Timeline::normalized(pieces)
    }

    /// The part of this timeline inside `span`.
    pub fn clip(&self, span: Interval) -> Timeline {
        let (start, end) = span.millis();
        let pieces = self
            .pieces
            .iter()
            .filter(|piece| piece.end > start && piece.start < end)
            .map(|piece| Piece {
                start: piece.start.max(start),
                end: piece.end.min(end),
                state: piece.state,
            })
            .collect();
        Timeline::normalized(pieces)
    }

    /// The segments, in order.
    pub fn segments(&self) -> impl Iterator<Item = Segment> + '_ {
        self.pieces.iter().map(|piece| Segment {
            start: from_millis(piece.start),
            end: from_millis(piece.end),
            state: piece.state,
        })
    }

    /// Whether nothing was monitored.
    pub fn is_empty(&self) -> bool {
        self.pieces.is_empty()
    }

    /// The state at `at`, or `None` where nothing was monitored.
    pub fn state_at(&self, at: Timestamp) -> Option<State> {
        let at = to_millis(at);
        let index = self.pieces.partition_point(|piece| piece.end <= at);
        self.pieces
            .get(index)
            .filter(|piece| piece.start <= at)
            .map(|piece| piece.state)
    }

    /// Total time in `state`.
    pub fn time_in(&self, state: State) -> Seconds {
        self.pieces
            .iter()
            .filter(|piece| piece.state == state)
            .map(|piece| Seconds::from_millis(piece.end - piece.start))
            .sum()
    }

    /// Total monitored time, whatever the state.
    pub fn monitored(&self) -> Seconds {
        self.pieces
            .iter()
            .map(|piece| Seconds::from_millis(piece.end - piece.start))
            .sum()
    }

    pub(super) fn pieces(&self) -> &[Piece] {
        &self.pieces
    }

    /// Sorts disjoint pieces, drops empty ones and joins touching ones in the same state.
    fn normalized(mut pieces: Vec<Piece>) -> Timeline {
        pieces.retain(|piece| piece.start < piece.end);
        pieces.sort_unstable_by_key(|piece| piece.start);
        let mut joined: Vec<Piece> = Vec::with_capacity(pieces.len());
        for piece in pieces {
            match joined.last_mut() {
                Some(last) if last.end == piece.start && last.state == piece.state => {
                    last.end = piece.end;
                }
                _ => joined.push(piece),
            }
        }
        Timeline { pieces: joined }
    }
}

/// The failure-run bookkeeping of [`Timeline::from_samples`]: failure time waits until its
/// run is confirmed (then it is down) or broken (then it was a transient, up).
struct HoldReader {
    failure_threshold: u32,
    run: u32,
    confirmed: bool,
    pending: Vec<(i64, i64)>,
    pieces: Vec<Piece>,
}

impl HoldReader {
    fn new(failure_threshold: u32) -> HoldReader {
        HoldReader {
            failure_threshold,
            run: 0,
            confirmed: false,
            pending: Vec::new(),
            pieces: Vec::new(),
        }
    }

    fn emit(&mut self, start: i64, end: i64, state: State) {
        if start < end {
            self.pieces.push(Piece { start, end, state });
        }
    }

    /// Classifies the time one result held.
    fn hold(&mut self, start: i64, end: i64, outcome: Outcome) {
        match outcome {
            Outcome::Up => self.emit(start, end, State::Up),
            Outcome::Degraded => self.emit(start, end, State::Degraded),
            Outcome::Unknown => self.emit(start, end, State::Unknown),
            Outcome::Down if self.confirmed => self.emit(start, end, State::Down),
            Outcome::Down if start < end => self.pending.push((start, end)),
            Outcome::Down => {}
        }
    }

    /// Counts `checks` new results with `outcome` into the failure run.
    fn observe(&mut self, outcome: Outcome, checks: u32) {
        match outcome {
            Outcome::Down => {
                self.run = self.run.saturating_add(checks);
                if !self.confirmed && self.run >= self.failure_threshold {
                    self.confirmed = true;
                    self.settle(State::Down);
                }
            }
            Outcome::Up | Outcome::Degraded => self.settle(State::Up),
            // The monitor's own outage says nothing about the target.
            Outcome::Unknown => {}
        }
    }

    /// Gives the waiting failure time its verdict; a verdict of up also ends the run.
    fn settle(&mut self, verdict: State) {
        for (start, end) in std::mem::take(&mut self.pending) {
            self.emit(start, end, verdict);
        }
        if verdict == State::Up {
            self.run = 0;
            self.confirmed = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Outcome::{Degraded, Down, Unknown, Up};

    const T0: i64 = 1_711_929_600; // 2024-04-01T00:00:00Z

    fn at(offset_s: i64) -> Timestamp {
        Timestamp::from_second(T0 + offset_s).unwrap()
    }

    fn samples(list: &[(i64, Outcome)]) -> Vec<Sample> {
        list.iter()
            .map(|&(offset, outcome)| Sample {
                at: at(offset),
                outcome,
            })
            .collect()
    }

    fn rules(failure_threshold: u32) -> SampleRules {
        SampleRules {
            stale_after: Duration::from_secs(120),
            failure_threshold,
        }
    }

    /// The timeline as `(start offset, end offset, state)` triples.
    fn shape(timeline: &Timeline) -> Vec<(i64, i64, State)> {
        timeline
            .segments()
            .map(|s| (s.start.as_second() - T0, s.end.as_second() - T0, s.state))
            .collect()
    }

    #[test]
    fn results_hold_until_the_next_one_or_stale_after() {
        let t = Timeline::from_samples(
            samples(&[(0, Up), (60, Up), (120, Degraded), (180, Up)]),
            rules(3),
            at(600),
        );
        assert_eq!(
            shape(&t),
            [
                (0, 120, State::Up),
                (120, 180, State::Degraded),
                (180, 300, State::Up),
                (300, 600, State::Unknown),
            ]
        );
    }

    #[test]
    fn a_confirmed_run_is_down_from_its_first_failure_to_the_first_success() {
        let t = Timeline::from_samples(
            samples(&[
                (0, Up),
                (60, Down),
                (120, Down),
                (180, Down),
                (240, Down),
                (300, Up),
            ]),
            rules(3),
            at(360),
        );
        assert_eq!(
            shape(&t),
            [
                (0, 60, State::Up),
                (60, 300, State::Down),
                (300, 360, State::Up)
            ]
        );
    }

    #[test]
    fn a_short_run_is_a_transient_and_counts_as_up() {
        let t = Timeline::from_samples(
            samples(&[(0, Up), (60, Down), (120, Down), (180, Up)]),
            rules(3),
            at(240),
        );
        assert_eq!(shape(&t), [(0, 240, State::Up)]);
    }

    #[test]
    fn a_gap_longer_than_stale_after_is_unknown_and_breaks_the_run() {
        // Two failures, a gap, two failures: with a threshold of three, neither half is
        // confirmed, although four failures were seen in a row.
        let t = Timeline::from_samples(
            samples(&[(0, Down), (60, Down), (400, Down), (460, Down), (520, Up)]),
            rules(3),
            at(580),
        );
        assert_eq!(
            shape(&t),
            [
                (0, 180, State::Up),
                (180, 400, State::Unknown),
                (400, 580, State::Up)
            ]
        );
        // A gap of exactly stale_after is no gap: the run goes on and is confirmed.
        let t = Timeline::from_samples(
            samples(&[(0, Down), (120, Down), (240, Down), (300, Up)]),
            rules(3),
            at(360),
        );
        assert_eq!(shape(&t), [(0, 300, State::Down), (300, 360, State::Up)]);
    }

    #[test]
    fn unknown_results_hold_unknown_time_inside_a_run_without_breaking_it() {
        let t = Timeline::from_samples(
            samples(&[
                (0, Up),
                (60, Down),
                (120, Unknown),
                (180, Unknown),
                (240, Down),
                (300, Up),
            ]),
            rules(2),
            at(360),
        );
        assert_eq!(
            shape(&t),
            [
                (0, 60, State::Up),
                (60, 120, State::Down),
                (120, 240, State::Unknown),
                (240, 300, State::Down),
                (300, 360, State::Up),
            ]
        );
        // Nor do they count: one failure among unknowns stays a transient.
        let t = Timeline::from_samples(
            samples(&[(0, Down), (60, Unknown), (120, Unknown), (180, Up)]),
            rules(2),
            at(240),
        );
        assert_eq!(
            shape(&t),
            [
                (0, 60, State::Up),
                (60, 180, State::Unknown),
                (180, 240, State::Up)
            ]
        );
    }

    #[test]
    fn a_run_is_confirmed_by_results_past_until() {
        // The month ends at 120 s; the third failure at 150 s back-dates the outage into it.
        let t = Timeline::from_samples(
            samples(&[(0, Up), (60, Down), (90, Down), (150, Down), (200, Up)]),
            rules(3),
            at(120),
        );
        assert_eq!(shape(&t), [(0, 60, State::Up), (60, 120, State::Down)]);
    }

    #[test]
    fn an_unfinished_run_counts_as_up_for_now() {
        let t = Timeline::from_samples(
            samples(&[(0, Up), (60, Down), (120, Down)]),
            rules(3),
            at(150),
        );
        assert_eq!(shape(&t), [(0, 150, State::Up)]);
    }

    #[test]
    fn results_in_any_order_and_none_at_all() {
        let mut list = samples(&[(60, Down), (0, Up), (120, Up)]);
        list.reverse();
        let t = Timeline::from_samples(list, rules(1), at(180));
        assert_eq!(
            shape(&t),
            [
                (0, 60, State::Up),
                (60, 120, State::Down),
                (120, 180, State::Up)
            ]
        );
        assert!(Timeline::from_samples(Vec::new(), rules(1), at(180)).is_empty());
    }

    #[test]
    fn explicit_intervals_over_a_baseline_resolve_overlaps_by_precedence() {
        let span = Interval::new(at(0), at(1000));
        let t = Timeline::from_intervals(
            span,
            State::Up,
            [
                Segment::new(at(-50), at(100), State::Down),
                Segment::new(at(200), at(400), State::Degraded),
                Segment::new(at(300), at(350), State::Down),
                Segment::new(at(320), at(500), State::Unknown),
                Segment::new(at(900), at(2000), State::Maintenance),
            ],
        );
        assert_eq!(
            shape(&t),
            [
                (0, 100, State::Down),
                (100, 200, State::Up),
                (200, 300, State::Degraded),
                (300, 350, State::Down),
                (350, 400, State::Degraded),
                (400, 500, State::Unknown),
                (500, 900, State::Up),
                (900, 1000, State::Maintenance),
            ]
        );
        assert_eq!(t.monitored(), Seconds::from_secs(1000));
        assert_eq!(t.time_in(State::Up), Seconds::from_secs(500));
        assert_eq!(t.state_at(at(350)), Some(State::Degraded));
        assert_eq!(t.state_at(at(1000)), None);
    }

    #[test]
    fn lost_over_makes_its_whole_window_monitored_and_unknown() {
        let piece = |start: i64, end: i64, state| Piece {
            start: at(start).as_millisecond(),
            end: at(end).as_millisecond(),
            state,
        };
        // Monitored 100–200 (up) and 300–400 (down); 200–300 and after 400 unmonitored.
        let t = Timeline::normalized(vec![
            piece(100, 200, State::Up),
            piece(300, 400, State::Down),
        ]);
        let lost = t.lost_over([
            Interval::new(at(150), at(350)),
            Interval::new(at(500), at(600)),
        ]);
        assert_eq!(
            shape(&lost),
            [
                (100, 150, State::Up),
                (150, 350, State::Unknown),
                (350, 400, State::Down),
                (500, 600, State::Unknown),
            ]
        );
        // Where `unknown_over` keeps the unmonitored gaps unmonitored.
        assert_eq!(
            shape(&t.unknown_over([Interval::new(at(150), at(350))])),
            [
                (100, 150, State::Up),
                (150, 200, State::Unknown),
                (300, 350, State::Unknown),
                (350, 400, State::Down),
            ]
        );
    }

    #[test]
    fn unknown_over_erases_any_evidence_but_adds_no_monitored_time() {
        let span = Interval::new(at(0), at(100));
        let t =
            Timeline::from_intervals(span, State::Up, [Segment::new(at(10), at(20), State::Down)])
                .clip(Interval::new(at(0), at(90)));
        let u = t.unknown_over([
            Interval::new(at(15), at(30)),
            Interval::new(at(80), at(120)),
        ]);
        assert_eq!(
            shape(&u),
            [
                (0, 10, State::Up),
                (10, 15, State::Down),
                (15, 30, State::Unknown),
                (30, 80, State::Up),
                (80, 90, State::Unknown)
            ]
        );
        assert_eq!(u.monitored(), t.monitored());
    }

    #[test]
    fn overlay_raises_only_what_it_outranks() {
        let span = Interval::new(at(0), at(100));
        let t =
            Timeline::from_intervals(span, State::Up, [Segment::new(at(10), at(20), State::Down)]);
        let m = t.overlay([Interval::new(at(15), at(30))], State::Maintenance);
        assert_eq!(
            shape(&m),
            [
                (0, 10, State::Up),
                (10, 15, State::Down),
                (15, 30, State::Maintenance),
                (30, 100, State::Up)
            ]
        );
        let d = t.overlay([Interval::new(at(5), at(25))], State::Degraded);
        assert_eq!(
            shape(&d),
            [
                (0, 5, State::Up),
                (5, 10, State::Degraded),
                (10, 20, State::Down),
                (20, 25, State::Degraded),
                (25, 100, State::Up)
            ]
        );
        // Unmonitored time stays unmonitored.
        let c = t.clip(Interval::new(at(50), at(200)));
        let c = c.overlay([Interval::new(at(0), at(60))], State::Maintenance);
        assert_eq!(
            shape(&c),
            [(50, 60, State::Maintenance), (60, 100, State::Up)]
        );
    }

    /// Folding results into runs changes nothing, as long as runs end at gaps longer than
    /// `stale_after` (the report reads such runs' results instead).
    #[test]
    fn runs_give_the_timeline_of_their_results() {
        let mut rng = crate::testing::Rng::new(7);
        for case in 0..300 {
            let rules = SampleRules {
                stale_after: Duration::from_secs(1 + rng.below(90)),
                failure_threshold: 1 + rng.below(4) as u32,
            };
            let stale_ms = rules.stale_after.as_millis() as i64;
            let mut samples = Vec::new();
            let mut ms = 0i64;
            for _ in 0..rng.below(60) {
                let long_gap = rng.below(8) == 0;
                ms += 1 + rng.below(if long_gap { 200_000 } else { 40_000 }) as i64;
                let outcome = [Up, Up, Down, Down, Degraded, Unknown][rng.below(6) as usize];
                samples.push(Sample {
                    at: Timestamp::from_millisecond(T0 * 1000 + ms).unwrap(),
                    outcome,
                });
            }
            let mut runs: Vec<Run> = Vec::new();
            for sample in &samples {
                match runs.last_mut() {
                    Some(run)
                        if run.outcome == sample.outcome
                            && to_millis(sample.at) - to_millis(run.last) <= stale_ms =>
                    {
                        run.extend(sample.at)
                    }
                    _ => runs.push(Run::single(sample.at, sample.outcome, None, "")),
                }
            }
            let until =
                Timestamp::from_millisecond(T0 * 1000 + ms + rng.below(100_000) as i64).unwrap();
            assert_eq!(
                Timeline::from_runs(runs, rules, until),
                Timeline::from_samples(samples, rules, until),
                "case {case}"
            );
        }
    }

    #[test]
    fn a_restart_inside_stale_after_neither_splits_an_outage_nor_restarts_its_count() {
        // Confirmed at 180 s; the daemon stopped after the check at 240 s and its first check
        // after the restart came 100 s later, inside stale_after (120 s): the failures after
        // the restart continue the outage, which is down from its first failure throughout.
        let t = Timeline::from_samples(
            samples(&[
                (0, Up),
                (60, Down),
                (120, Down),
                (180, Down),
                (240, Down),
                (340, Down),
                (400, Down),
                (460, Up),
            ]),
            rules(3),
            at(500),
        );
        assert_eq!(
            shape(&t),
            [
                (0, 60, State::Up),
                (60, 460, State::Down),
                (460, 500, State::Up)
            ]
        );
        // Even when the run was not confirmed before the restart: three failures in a row.
        let t = Timeline::from_samples(
            samples(&[(0, Up), (60, Down), (180, Down), (300, Down), (360, Up)]),
            rules(3),
            at(400),
        );
        assert_eq!(
            shape(&t),
            [
                (0, 60, State::Up),
                (60, 360, State::Down),
                (360, 400, State::Up)
            ]
        );
    }

    #[test]
    fn after_a_restart_longer_than_stale_after_an_outage_is_confirmed_anew() {
        // Confirmed before the restart; 200 s without results; two failures after it are a
        // transient (threshold 3), however long the probe had been down before.
        let t = Timeline::from_samples(
            samples(&[
                (0, Down),
                (60, Down),
                (120, Down),
                (320, Down),
                (380, Down),
                (440, Up),
            ]),
            rules(3),
            at(500),
        );
        assert_eq!(
            shape(&t),
            [
                (0, 240, State::Down),
                (240, 320, State::Unknown),
                (320, 500, State::Up)
            ]
        );
    }

    /// The report and the live state read results alike: with `success_threshold = 1` the
    /// down time of a timeline is exactly the time a [`crate::threshold::Tracker`] fed the
    /// same results holds `down`, each result standing for at most `stale_after`.
    #[test]
    fn timelines_are_down_exactly_while_the_live_state_is() {
        use crate::threshold::{Observation, Thresholds, Tracker};
        let mut rng = crate::testing::Rng::new(29);
        let stale_ms = 120_000;
        for case in 0..300 {
            let threshold = 1 + rng.below(4) as u32;
            let mut list = Vec::new();
            let mut ms = 0i64;
            for _ in 0..rng.below(60) {
                let longest = if rng.below(8) == 0 { 300_000 } else { 70_000 };
                ms += 1 + rng.below(longest) as i64;
                list.push(Sample {
                    at: Timestamp::from_millisecond(T0 * 1000 + ms).unwrap(),
                    outcome: [Up, Down, Down, Degraded][rng.below(4) as usize],
                });
            }
            let until = Timestamp::from_millisecond(T0 * 1000 + ms + 1 + rng.below(200_000) as i64)
                .unwrap();
            let timeline = Timeline::from_samples(list.clone(), rules(threshold), until);
            let reported: Vec<(i64, i64)> = timeline
                .pieces()
                .iter()
                .filter(|piece| piece.state == State::Down)
                .map(|piece| (piece.start, piece.end))
                .collect();

            let mut tracker = Tracker::new(Thresholds {
                failure: threshold,
                success: 1,
                stale_after: Duration::from_millis(stale_ms as u64),
            });
            let mut live = Vec::new();
            let mut open: Option<i64> = None;
            let mut previous: Option<i64> = None;
            for sample in &list {
                let now = to_millis(sample.at);
                if let (Some(start), Some(previous)) = (open, previous)
                    && now - previous > stale_ms
                {
                    live.push((start, previous + stale_ms));
                    open = None;
                }
                let down = sample.outcome == Down;
                let transition = tracker.observe(&Observation {
                    at: sample.at,
                    outcome: sample.outcome,
                    error_class: down.then_some(crate::model::ErrorClass::Connect),
                    detail: "",
                });
                match transition {
                    Some(t) if t.to == State::Down => open = Some(to_millis(t.since)),
                    Some(t) if t.from == State::Down => {
                        if let Some(start) = open.take() {
                            live.push((start, to_millis(t.since)));
                        }
                    }
                    _ => {}
                }
                previous = Some(now);
            }
            if let (Some(start), Some(previous)) = (open, previous) {
                live.push((start, (previous + stale_ms).min(to_millis(until))));
            }
            assert_eq!(reported, live, "case {case}: {list:?}");
        }
    }
}
