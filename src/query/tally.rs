//! What `/metrics` counts per probe since the daemon started: checks by outcome, a histogram of
//! check durations, and the expiry of the newest TLS leaf seen.
//!
//! A tally lives in the probe's entry of the daemon's status board and is updated under the
//! board's write lock, which the recorder already holds for each result: a check costs a
//! binary search over [`DURATION_BOUNDS_US`] and a few integer additions, with no atomics, no
//! map lookup and no allocation. Scrapes read it under the read lock, so the counts they see
//! are always consistent with each other (every bucket adds up to the count).

use std::time::Duration;

use crate::model::{CertStatus, Outcome};

/// Upper bounds of the check duration buckets, in microseconds, with their `le` label (the
/// last bucket, `+Inf`, is implicit): Prometheus' default buckets for network services
/// (5 ms to 10 s), plus 1 ms for loopback and LAN targets. Few, because every bucket is a
/// line per probe in each scrape.
pub const DURATION_BUCKETS: [(u64, &str); 12] = [
    (1_000, "0.001"),
    (5_000, "0.005"),
    (10_000, "0.01"),
    (25_000, "0.025"),
    (50_000, "0.05"),
    (100_000, "0.1"),
    (250_000, "0.25"),
    (500_000, "0.5"),
    (1_000_000, "1"),
    (2_500_000, "2.5"),
    (5_000_000, "5"),
    (10_000_000, "10"),
];

/// The bounds alone, for the bucket search.
pub const DURATION_BOUNDS_US: [u64; DURATION_BUCKETS.len()] = {
    let mut bounds = [0; DURATION_BUCKETS.len()];
    let mut i = 0;
    while i < bounds.len() {
        bounds[i] = DURATION_BUCKETS[i].0;
        i += 1;
    }
    bounds
};

/// Every outcome, in the order of [`CheckTally::outcomes`].
pub const OUTCOMES: [Outcome; 4] = [
    Outcome::Up,
    Outcome::Degraded,
    Outcome::Down,
    Outcome::Unknown,
];

/// One probe's counts since the daemon started (see the module documentation).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CheckTally {
    /// Checks per outcome, in the order of [`OUTCOMES`].
    pub outcomes: [u64; OUTCOMES.len()],
    /// Checks per duration bucket (not cumulative), in the order of [`DURATION_BUCKETS`],
    /// then `+Inf`.
    pub duration_buckets: [u64; DURATION_BUCKETS.len() + 1],
    /// Sum of all check durations, in microseconds (the ledger's precision): an integer, so
    /// the sum is exact however many checks it holds.
    pub duration_sum_us: u64,
    /// The `notAfter` (Unix seconds) of the leaf certificate the newest TLS handshake showed.
    pub cert_not_after: Option<i64>,
}

impl CheckTally {
    /// Counts one check: its outcome as recorded (after the sentinel rule), its duration and
    /// what it saw of a certificate.
    ///
    /// A failed check without a certificate keeps the expiry already known (a refused
    /// connection says nothing about the certificate); a successful one without a certificate
    /// clears it, since then the probe no longer speaks TLS (its configuration changed).
    pub fn record(&mut self, outcome: Outcome, duration: Duration, cert: Option<&CertStatus>) {
        self.outcomes[outcome_index(outcome)] += 1;
        let us = u64::try_from(duration.as_micros()).unwrap_or(u64::MAX);
        let bucket = DURATION_BOUNDS_US.partition_point(|&bound| bound < us);
        self.duration_buckets[bucket] += 1;
        self.duration_sum_us = self.duration_sum_us.saturating_add(us);
        match (cert, outcome) {
            (Some(cert), _) => self.cert_not_after = Some(cert.not_after),
            (None, Outcome::Up | Outcome::Degraded) => self.cert_not_after = None,
            (None, Outcome::Down | Outcome::Unknown) => {}
        }
    }

    /// All checks counted.
    pub fn checks(&self) -> u64 {
        self.outcomes.iter().sum()
    }
}

fn outcome_index(outcome: Outcome) -> usize {
    match outcome {
        Outcome::Up => 0,
        Outcome::Degraded => 1,
        Outcome::Down => 2,
        Outcome::Unknown => 3,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert(not_after: i64) -> CertStatus {
        CertStatus {
            days_left: 30,
            expiring: false,
            not_after,
        }
    }

    #[test]
    fn bounds_rise_and_labels_name_them_in_seconds() {
        assert!(DURATION_BOUNDS_US.windows(2).all(|w| w[0] < w[1]));
        for (us, label) in DURATION_BUCKETS {
            assert_eq!(label.parse::<f64>().unwrap(), us as f64 / 1e6, "{label}");
        }
    }

    #[test]
    fn checks_land_in_the_first_bucket_that_holds_them() {
        let mut tally = CheckTally::default();
        for us in [0, 1_000, 1_001, 60_000, 10_000_000, 30_000_000] {
            tally.record(Outcome::Up, Duration::from_micros(us), None);
        }
        assert_eq!(tally.duration_buckets[0], 2, "le is inclusive");
        assert_eq!(tally.duration_buckets[1], 1);
        assert_eq!(tally.duration_buckets[5], 1, "0.1 s");
        assert_eq!(
            tally.duration_buckets[DURATION_BUCKETS.len() - 1],
            1,
            "10 s"
        );
        assert_eq!(tally.duration_buckets[DURATION_BUCKETS.len()], 1, "+Inf");
        assert_eq!(
            tally.duration_sum_us,
            1_000 + 1_001 + 60_000 + 10_000_000 + 30_000_000
        );
        assert_eq!(tally.checks(), 6);
    }

    #[test]
    fn outcomes_are_counted_apart() {
        let mut tally = CheckTally::default();
        for outcome in [
            Outcome::Up,
            Outcome::Up,
            Outcome::Degraded,
            Outcome::Down,
            Outcome::Down,
            Outcome::Down,
            Outcome::Unknown,
        ] {
            tally.record(outcome, Duration::from_millis(1), None);
        }
        assert_eq!(tally.outcomes, [2, 1, 3, 1]);
        assert_eq!(OUTCOMES.map(outcome_index), [0, 1, 2, 3]);
    }

    #[test]
    fn a_failure_keeps_the_known_expiry_and_a_plain_success_clears_it() {
        let mut tally = CheckTally::default();
        let ms = Duration::from_millis(1);
        tally.record(Outcome::Up, ms, Some(&cert(1_900_000_000)));
        assert_eq!(tally.cert_not_after, Some(1_900_000_000));
        tally.record(Outcome::Down, ms, None);
        assert_eq!(tally.cert_not_after, Some(1_900_000_000));
        tally.record(Outcome::Down, ms, Some(&cert(1_700_000_000)));
        assert_eq!(tally.cert_not_after, Some(1_700_000_000), "an expired leaf");
        tally.record(Outcome::Up, ms, None);
        assert_eq!(tally.cert_not_after, None);
    }
}
