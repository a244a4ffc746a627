//! The result of one check: what the probe layer produces and the ledger stores.

use std::time::Duration;

use jiff::Timestamp;

use super::{ErrorClass, Outcome, ProbeName};

/// Facts about the leaf certificate a TLS check saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CertStatus {
    /// Whole days until the leaf certificate's `notAfter`; negative once expired.
    pub days_left: i64,
    /// True when the certificate expires sooner than the probe's `cert_expiry_warn`.
    pub expiring: bool,
    /// The leaf's `notAfter` as Unix seconds, exported by `/metrics` so a dashboard can count
    /// down to the instant rather than to a whole day.
    pub not_after: i64,
}

/// One check of one probe. A failed check is a normal value, never an `Err`.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckResult {
    /// The probe that ran.
    pub probe: ProbeName,
    /// When the check started; availability is measured from this instant (SPEC §3).
    pub at: Timestamp,
    /// How long the check took, up to the point it succeeded or failed.
    pub latency: Duration,
    /// Up, degraded or down.
    pub outcome: Outcome,
    /// Why the check failed; `None` when it did not (`up`, `degraded`, and `unknown` recorded
    /// for a sentinel's outage keeps the class of the failure it replaced).
    pub error_class: Option<ErrorClass>,
    /// A short human explanation ("HTTP 503", "connection refused"); empty when up.
    pub detail: String,
    /// The leaf certificate's expiry, for checks that completed a TLS handshake.
    pub cert: Option<CertStatus>,
}

impl CheckResult {
    /// A successful (or degraded) result.
    pub fn success(probe: ProbeName, at: Timestamp, latency: Duration, outcome: Outcome) -> Self {
        CheckResult {
            probe,
            at,
            latency,
            outcome,
            error_class: None,
            detail: String::new(),
            cert: None,
        }
    }

    /// A failed result of the given class.
    pub fn failure(
        probe: ProbeName,
        at: Timestamp,
        latency: Duration,
        class: ErrorClass,
        detail: impl Into<String>,
    ) -> Self {
        CheckResult {
            probe,
            at,
            latency,
            outcome: Outcome::Down,
            error_class: Some(class),
            detail: detail.into(),
            cert: None,
        }
    }

    /// A check that failed for a reason of this host's (no file descriptor left), which says
    /// nothing about the target: `unknown`, with the class and detail of what happened.
    pub fn local_failure(
        probe: ProbeName,
        at: Timestamp,
        latency: Duration,
        class: ErrorClass,
        detail: impl Into<String>,
    ) -> Self {
        CheckResult {
            outcome: Outcome::Unknown,
            ..CheckResult::failure(probe, at, latency, class, detail)
        }
    }

    /// Latency in milliseconds, as JSON and tables show it.
    pub fn latency_ms(&self) -> f64 {
        self.latency.as_secs_f64() * 1000.0
    }
}
