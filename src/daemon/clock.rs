//! Notices steps of the wall clock. Results are stamped with the wall clock (reports are in
//! wall-clock time), while checks are scheduled on the monotonic clock, which no one can set.
//! Comparing how far each moved between two looks tells a step (an operator or NTP setting
//! the clock, a suspend) from the slow slew NTP applies; a step is logged and recorded in the
//! ledger, and reports count the wall-clock time it makes ambiguous as unknown (see
//! `ledger::ClockStep`).

use std::{sync::Arc, time::Duration};

use jiff::{SignedDuration, Timestamp};
use tokio::{sync::watch, time::Instant};
use tokio_util::sync::CancellationToken;
use tracing::{error, warn};

use super::recorder::Shared;
use crate::{config::Config, ledger::ClockStep};

/// How often the clocks are compared. Short, so that few results are stamped with the new
/// time before the step is on record; each look costs two clock reads.
pub const LOOK_EVERY: Duration = Duration::from_millis(500);

/// The two clocks as last read together.
#[derive(Debug, Clone, Copy)]
pub struct ClockWatch {
    wall: Timestamp,
    monotonic: Instant,
}

impl ClockWatch {
    /// Starts watching from these readings.
    pub fn new(wall: Timestamp, monotonic: Instant) -> ClockWatch {
        ClockWatch { wall, monotonic }
    }

    /// Compares new readings with the last ones and keeps the new ones. Returns the step when
    /// the wall clock moved more than `threshold` further (or less far) than the monotonic
    /// clock: comparing consecutive looks, not the first one, keeps NTP's slew from adding
    /// up to a false step over days.
    pub fn look(
        &mut self,
        wall: Timestamp,
        monotonic: Instant,
        threshold: Duration,
    ) -> Option<ClockStep> {
        let elapsed = SignedDuration::try_from(monotonic.duration_since(self.monotonic))
            .unwrap_or(SignedDuration::MAX);
        let step = ClockStep::between(self.wall, wall, elapsed);
        self.wall = wall;
        self.monotonic = monotonic;
        let threshold = SignedDuration::try_from(threshold).unwrap_or(SignedDuration::MAX);
        (step.step.abs() > threshold).then_some(step)
    }
}

/// Looks at the clocks every [`LOOK_EVERY`] until `cancel`, recording each step.
pub async fn watch_forever(
    shared: Shared,
    config: watch::Receiver<Arc<Config>>,
    cancel: CancellationToken,
) {
    let mut tick = tokio::time::interval(LOOK_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut watch = ClockWatch::new(Timestamp::now(), Instant::now());
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        let threshold = config.borrow().daemon.clock_step_threshold;
        let Some(step) = watch.look(Timestamp::now(), Instant::now(), threshold) else {
            continue;
        };
        let (from, to) = step.ambiguous();
        warn!(
            step = %step.step,
            ambiguous_from = %from,
            ambiguous_to = %to,
            "the wall clock was stepped; results in that span count as unknown in reports"
        );
        let ledger = Arc::clone(&shared.ledger);
        let current = Arc::clone(&config.borrow());
        let recorded = tokio::task::spawn_blocking(move || -> Result<(), String> {
            ledger.record_clock_step(step).map_err(|e| e.to_string())?;
            // Figures already stored for the span did not know: a closed month it reaches
            // into, and the status page's day bars.
            let zone = &current.daemon.timezone;
            crate::query::monthly::forget_months_touching(zone, &ledger, from, to)
                .and_then(|()| crate::query::days::rewrite_span(&current, &ledger, from, to))
                .map_err(|e| e.to_string())
        })
        .await;
        match recorded {
            Ok(Ok(())) => {}
            Ok(Err(e)) => error!(error = %e, "cannot record a clock step"),
            Err(e) => error!(error = %e, "clock step task failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const THRESHOLD: Duration = Duration::from_secs(2);

    #[test]
    fn a_slewing_clock_never_adds_up_to_a_step() {
        // NTP's fastest slew, 500 ppm, for a day of looks: 43 s in all, never a step.
        let start = Instant::now();
        let wall = Timestamp::from_second(1_800_000_000).expect("a time");
        let mut watch = ClockWatch::new(wall, start);
        for look in 1..=172_800u32 {
            let elapsed = LOOK_EVERY * look;
            let slewed = elapsed + elapsed / 2000;
            let wall = wall + SignedDuration::try_from(slewed).expect("short");
            assert_eq!(watch.look(wall, start + elapsed, THRESHOLD), None);
        }
    }

    #[test]
    fn steps_beyond_the_threshold_are_noticed_both_ways() {
        let start = Instant::now();
        let wall = Timestamp::from_second(1_800_000_000).expect("a time");
        let mut watch = ClockWatch::new(wall, start);
        let half = SignedDuration::from_millis(500);
        // 1.5 s forward: under the threshold.
        assert_eq!(
            watch.look(
                wall + half + SignedDuration::from_millis(1500),
                start + LOOK_EVERY,
                THRESHOLD
            ),
            None
        );
        let wall = wall + half + SignedDuration::from_millis(1500);
        let back = watch
            .look(
                wall + half - SignedDuration::from_hours(1),
                start + LOOK_EVERY * 2,
                THRESHOLD,
            )
            .expect("a step back");
        assert_eq!(back.step, SignedDuration::from_hours(-1));
        let wall = wall + half - SignedDuration::from_hours(1);
        let forward = watch
            .look(
                wall + half + SignedDuration::from_secs(3),
                start + LOOK_EVERY * 3,
                THRESHOLD,
            )
            .expect("a step forward");
        assert_eq!(forward.step, SignedDuration::from_secs(3));
    }
}
