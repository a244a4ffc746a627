//! Schedule lag: how late each check started against its planned start, as a fixed-bucket
//! histogram that `/metrics` publishes (`upledger_schedule_lag_seconds`). A lag that grows
//! means the host (or the concurrency cap) cannot keep up with the configured probes.

use std::{
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

/// Upper bounds of the buckets, in microseconds (the last bucket, `+Inf`, is implicit).
pub const BOUNDS_US: [u64; 14] = [
    500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000,
    2_500_000, 5_000_000, 10_000_000,
];

/// Lock-free counts, written by the recorder and read by scrapes.
#[derive(Debug, Default)]
pub struct LagHistogram {
    /// Per bucket (not cumulative); the last one is `+Inf`.
    buckets: [AtomicU64; BOUNDS_US.len() + 1],
    sum_us: AtomicU64,
}

/// A consistent-enough copy for rendering: cumulative counts per bound, then `+Inf`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LagSnapshot {
    /// Cumulative count at or below each of [`BOUNDS_US`], then the total.
    pub cumulative: Vec<u64>,
    /// Sum of all lags, in microseconds.
    pub sum_us: u64,
}

impl LagHistogram {
    /// Counts one check that started `lag` after it was due.
    pub fn record(&self, lag: Duration) {
        let us = u64::try_from(lag.as_micros()).unwrap_or(u64::MAX);
        let bucket = BOUNDS_US.partition_point(|&bound| bound < us);
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        self.sum_us.fetch_add(us, Ordering::Relaxed);
    }

    /// The counts so far.
    pub fn snapshot(&self) -> LagSnapshot {
        let mut total = 0;
        let cumulative = self
            .buckets
            .iter()
            .map(|bucket| {
                total += bucket.load(Ordering::Relaxed);
                total
            })
            .collect();
        LagSnapshot {
            cumulative,
            sum_us: self.sum_us.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lags_land_in_the_first_bucket_that_holds_them() {
        let lags = LagHistogram::default();
        lags.record(Duration::ZERO);
        lags.record(Duration::from_micros(500)); // on a bound: that bucket (le is inclusive)
        lags.record(Duration::from_micros(501));
        lags.record(Duration::from_millis(60));
        lags.record(Duration::from_secs(60));
        let snapshot = lags.snapshot();
        assert_eq!(snapshot.cumulative.len(), BOUNDS_US.len() + 1);
        assert_eq!(snapshot.cumulative[0], 2);
        assert_eq!(snapshot.cumulative[1], 3);
        assert_eq!(snapshot.cumulative[6], 3, "50 ms bound");
        assert_eq!(snapshot.cumulative[7], 4, "100 ms bound");
        assert_eq!(snapshot.cumulative[BOUNDS_US.len()], 5, "+Inf holds all");
        assert_eq!(snapshot.sum_us, 500 + 501 + 60_000 + 60_000_000);
    }
}
