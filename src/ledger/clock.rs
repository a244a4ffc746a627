//! Wall-clock steps the daemon noticed (an operator or NTP setting the clock, a resumed
//! suspend). Results are stamped with the wall clock, so a step makes a span of wall-clock
//! time *ambiguous*: stepped back, the span is read twice (results of two different moments
//! carry the same times); stepped forward, it was skipped (no check ran in it). Reports count
//! that span as unknown and list the step, so a figure never rests on times that cannot be
//! trusted.
//!
//! Tree `clock_steps`: ordered ms of the wall-clock time the step was noticed → the step,
//! then the start and end of the ambiguous span, each in ms (i64, big-endian). Steps are rare
//! (a handful in a ledger's life), so readers take them all.

use jiff::{SignedDuration, Timestamp};

use super::{
    Ledger, LedgerError,
    encoding::{ms_ceil, ms_floor, ms_from_ordered, ordered_ms, timestamp_from_ms},
    hex,
};

/// One step of the wall clock, as the daemon measured it against the monotonic clock.
/// Times are stored in whole milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClockStep {
    /// The wall-clock time when the step was noticed (after it).
    pub at: Timestamp,
    /// How far the wall clock jumped beyond the monotonic clock: negative when it was set
    /// back.
    pub step: SignedDuration,
    /// Start of the wall-clock span the step makes ambiguous: read twice when the clock went
    /// back, skipped when it went forward.
    pub unknown_from: Timestamp,
    /// End of that span (exclusive).
    pub unknown_to: Timestamp,
}

impl ClockStep {
    /// The step noticed at wall-clock time `at`, `elapsed` (monotonic) after a look at the
    /// clocks that found them agreeing at wall-clock time `before`. It happened somewhere in
    /// between, so the ambiguous span is widened to hold every place it could have been:
    /// `[at - elapsed, before + elapsed)` when set back, `[before, at)` when set forward.
    pub fn between(before: Timestamp, at: Timestamp, elapsed: SignedDuration) -> ClockStep {
        let step = at.duration_since(before) - elapsed;
        let after_earliest = at.checked_sub(elapsed).unwrap_or(at);
        let before_latest = before.checked_add(elapsed).unwrap_or(before);
        ClockStep {
            at,
            step,
            unknown_from: before.min(after_earliest),
            unknown_to: at.max(before_latest),
        }
    }

    /// The ambiguous span `[unknown_from, unknown_to)`.
    pub fn ambiguous(&self) -> (Timestamp, Timestamp) {
        (self.unknown_from, self.unknown_to)
    }
}

impl Ledger {
    /// Records a clock step, flushed.
    pub fn record_clock_step(&self, step: ClockStep) -> Result<(), LedgerError> {
        let step_ms = i64::try_from(step.step.as_millis()).unwrap_or(i64::MAX);
        let mut value = [0u8; 24];
        value[..8].copy_from_slice(&step_ms.to_be_bytes());
        value[8..16].copy_from_slice(&ms_floor(step.unknown_from).to_be_bytes());
        value[16..].copy_from_slice(&ms_ceil(step.unknown_to).to_be_bytes());
        self.store()?
            .clock_steps
            .insert(ordered_ms(ms_floor(step.at)), &value)
            .map_err(|e| self.sled_error(e))?;
        self.flush()
    }

    /// Every recorded clock step, oldest first.
    pub fn clock_steps(&self) -> Result<Vec<ClockStep>, LedgerError> {
        let mut steps = Vec::new();
        for item in self.store()?.clock_steps.iter() {
            let (key, value) = item.map_err(|e| self.sled_error(e))?;
            let parsed = <[u8; 8]>::try_from(key.as_ref())
                .ok()
                .zip(<[u8; 24]>::try_from(value.as_ref()).ok())
                .and_then(|(time, value)| {
                    let number = |range: std::ops::Range<usize>| {
                        value
                            .get(range)
                            .and_then(|b| <[u8; 8]>::try_from(b).ok())
                            .map(i64::from_be_bytes)
                    };
                    Some(ClockStep {
                        at: timestamp_from_ms(ms_from_ordered(time))?,
                        step: SignedDuration::from_millis(number(0..8)?),
                        unknown_from: timestamp_from_ms(number(8..16)?)?,
                        unknown_to: timestamp_from_ms(number(16..24)?)?,
                    })
                });
            steps.push(parsed.ok_or_else(|| {
                self.corrupt("clock steps", format!("bad clock step {}", hex(&key)))
            })?);
        }
        Ok(steps)
    }

    /// The recorded clock steps whose ambiguous span overlaps `[from, to)`, oldest first.
    pub fn clock_steps_touching(
        &self,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<ClockStep>, LedgerError> {
        let mut steps = self.clock_steps()?;
        steps.retain(|step| {
            let (start, end) = step.ambiguous();
            start < to && end > from
        });
        Ok(steps)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        text.parse().expect("a timestamp")
    }

    #[test]
    fn a_step_back_makes_the_span_read_twice_ambiguous() {
        // At 12:00:00 the clocks agreed; half a second later the wall clock read 11:00:00.5.
        let step = ClockStep::between(
            at("2027-01-05T12:00:00Z"),
            at("2027-01-05T11:00:00.5Z"),
            SignedDuration::from_millis(500),
        );
        assert_eq!(step.step, SignedDuration::from_hours(-1));
        // The step came somewhere in that half second: any time from 11:00:00 (landing
        // right after the look) to 12:00:00.5 (landing just before this one) was read twice.
        assert_eq!(
            step.ambiguous(),
            (at("2027-01-05T11:00:00Z"), at("2027-01-05T12:00:00.5Z"))
        );
    }

    #[test]
    fn a_step_forward_makes_the_skipped_span_ambiguous() {
        let step = ClockStep::between(
            at("2027-01-05T12:00:00Z"),
            at("2027-01-06T12:00:00.5Z"),
            SignedDuration::from_millis(500),
        );
        assert_eq!(step.step, SignedDuration::from_hours(24));
        assert_eq!(
            step.ambiguous(),
            (at("2027-01-05T12:00:00Z"), at("2027-01-06T12:00:00.5Z"))
        );
    }

    #[test]
    fn steps_are_stored_and_found_by_the_span_they_touch() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let ledger = Ledger::open(&dir.path().join("ledger")).expect("a ledger");
        let back = ClockStep::between(
            at("2027-01-05T12:00:00.250Z"),
            at("2027-01-05T11:00:00.500Z"),
            SignedDuration::from_millis(250),
        );
        let forward = ClockStep::between(
            at("2027-01-06T00:00:00Z"),
            at("2027-01-07T00:00:00Z"),
            SignedDuration::ZERO,
        );
        ledger.record_clock_step(back).expect("stored");
        ledger.record_clock_step(forward).expect("stored");
        assert_eq!(ledger.clock_steps().expect("read"), vec![back, forward]);
        let touching =
            |from: &str, to: &str| ledger.clock_steps_touching(at(from), at(to)).expect("read");
        assert_eq!(
            touching("2027-01-05T12:00:00Z", "2027-01-05T13:00:00Z"),
            vec![back],
            "the back step's span ends at 12:00:00.5"
        );
        assert_eq!(
            touching("2027-01-06T00:00:00Z", "2027-01-06T01:00:00Z"),
            vec![forward]
        );
        assert!(touching("2027-01-04T00:00:00Z", "2027-01-05T11:00:00.250Z").is_empty());
    }
}
