//! Half-open time intervals `[start, end)`, and the millisecond resolution every report
//! computation works at. May use `model` only.

use jiff::Timestamp;

use super::exact::Seconds;

/// A half-open span of time `[start, end)`: a month, a maintenance window, an exclusion.
///
/// Half-open so that adjacent spans (consecutive months, a result and the next one) share a
/// boundary without counting it twice. An interval whose end is not after its start is empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Interval {
    /// The first instant inside.
    pub start: Timestamp,
    /// The first instant after (exclusive).
    pub end: Timestamp,
}

impl Interval {
    /// `[start, end)`.
    pub fn new(start: Timestamp, end: Timestamp) -> Interval {
        Interval { start, end }
    }

    /// Whether no instant is inside.
    pub fn is_empty(&self) -> bool {
        self.end <= self.start
    }

    /// Whether `at` is inside.
    pub fn contains(&self, at: Timestamp) -> bool {
        self.start <= at && at < self.end
    }

    /// The part of both intervals, if any.
    pub fn intersect(&self, other: &Interval) -> Option<Interval> {
        let both = Interval::new(self.start.max(other.start), self.end.min(other.end));
        (!both.is_empty()).then_some(both)
    }

    /// The length in real seconds, at millisecond resolution (zero when empty).
    pub fn duration(&self) -> Seconds {
        let (start, end) = self.millis();
        Seconds::from_millis((end - start).max(0))
    }

    /// The bounds in milliseconds since the Unix epoch.
    pub(super) fn millis(&self) -> (i64, i64) {
        (to_millis(self.start), to_millis(self.end))
    }
}

/// Milliseconds since the Unix epoch: the resolution of the ledger, and so of reports.
pub(super) fn to_millis(at: Timestamp) -> i64 {
    at.as_millisecond()
}

/// The instant `millis` milliseconds after the Unix epoch, clamped to jiff's range.
pub(super) fn from_millis(millis: i64) -> Timestamp {
    Timestamp::from_millisecond(millis).unwrap_or(if millis < 0 {
        Timestamp::MIN
    } else {
        Timestamp::MAX
    })
}

/// Sorts `spans` and merges overlapping or touching ones into disjoint `[start, end)` pairs,
/// dropping empty ones.
pub(super) fn merge_spans(mut spans: Vec<(i64, i64)>) -> Vec<(i64, i64)> {
    spans.retain(|(start, end)| start < end);
    spans.sort_unstable();
    let mut merged: Vec<(i64, i64)> = Vec::with_capacity(spans.len());
    for (start, end) in spans {
        match merged.last_mut() {
            Some(last) if start <= last.1 => last.1 = last.1.max(end),
            _ => merged.push((start, end)),
        }
    }
    merged
}

/// Walks `[start, end)` against disjoint sorted `windows`, calling `piece` for each part with
/// whether it lies inside a window.
pub(super) fn split_by_windows(
    windows: &[(i64, i64)],
    start: i64,
    end: i64,
    mut piece: impl FnMut(i64, i64, bool),
) {
    let first = windows.partition_point(|&(_, window_end)| window_end <= start);
    let mut cursor = start;
    for &(window_start, window_end) in &windows[first..] {
        if window_start >= end {
            break;
        }
        if window_start > cursor {
            piece(cursor, window_start, false);
        }
        let inside_end = window_end.min(end);
        let inside_start = window_start.max(cursor);
        if inside_start < inside_end {
            piece(inside_start, inside_end, true);
        }
        cursor = cursor.max(inside_end);
    }
    if cursor < end {
        piece(cursor, end, false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn intersection_and_length() {
        let month = Interval::new(at("2024-04-01T00:00:00Z"), at("2024-05-01T00:00:00Z"));
        let outage = Interval::new(at("2024-03-31T23:30:00Z"), at("2024-04-01T00:45:00Z"));
        let inside = month.intersect(&outage).unwrap();
        assert_eq!(inside.start, month.start);
        assert_eq!(inside.duration(), Seconds::from_secs(2700));
        assert_eq!(month.duration(), Seconds::from_secs(2_592_000));
        let before = Interval::new(at("2024-03-01T00:00:00Z"), month.start);
        assert_eq!(
            month.intersect(&before),
            None,
            "half-open: touching is disjoint"
        );
        assert!(Interval::new(month.end, month.start).is_empty());
        assert!(month.contains(month.start) && !month.contains(month.end));
    }

    #[test]
    fn spans_merge_and_split() {
        let merged = merge_spans(vec![(5, 8), (0, 2), (2, 3), (7, 10), (12, 12)]);
        assert_eq!(merged, [(0, 3), (5, 10)]);
        let mut pieces = Vec::new();
        split_by_windows(&merged, 1, 12, |a, b, inside| pieces.push((a, b, inside)));
        assert_eq!(
            pieces,
            [(1, 3, true), (3, 5, false), (5, 10, true), (10, 12, false)]
        );
        pieces.clear();
        split_by_windows(&merged, 3, 5, |a, b, inside| pieces.push((a, b, inside)));
        assert_eq!(pieces, [(3, 5, false)]);
    }
}
