//! What the ledger stores: one result per check, and daemon start/stop markers.

use std::time::Duration;

use jiff::Timestamp;

use super::encoding::{RecordRef, ms_floor, timestamp_from_ms};
use crate::model::{CheckResult, ErrorClass, Outcome, ProbeName};

/// One check as the ledger stores it: the `CheckResult` minus what only matters live
/// (certificate status), at the ledger's precision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResultRecord {
    /// The probe that ran.
    pub probe: ProbeName,
    /// When the check started. Stored in whole milliseconds (rounded down): finer digits are
    /// noise next to network latency, and the coarser unit keeps records small.
    pub at: Timestamp,
    /// How long the check took; stored in whole microseconds (rounded down).
    pub latency: Duration,
    /// Up, degraded, down or unknown.
    pub outcome: Outcome,
    /// Why the check failed, if it did.
    pub error_class: Option<ErrorClass>,
    /// A short explanation; empty when there is none. Stored once per run of equal details.
    pub detail: String,
}

impl From<&CheckResult> for ResultRecord {
    /// Keeps what the ledger stores, already rounded to its precision, so that a record read
    /// back compares equal to the record written.
    fn from(result: &CheckResult) -> Self {
        ResultRecord {
            probe: result.probe.clone(),
            at: truncate_to_ms(result.at),
            latency: truncate_to_us(result.latency),
            outcome: result.outcome,
            error_class: result.error_class,
            detail: result.detail.clone(),
        }
    }
}

impl ResultRecord {
    /// The start time in stored milliseconds.
    pub(super) fn at_ms(&self) -> i64 {
        ms_floor(self.at)
    }

    /// The borrowed form the block encoder takes.
    pub(super) fn as_ref(&self) -> RecordRef<'_> {
        RecordRef {
            at_ms: self.at_ms(),
            latency_us: u64::try_from(self.latency.as_micros()).unwrap_or(u64::MAX),
            outcome: self.outcome,
            error_class: self.error_class,
            detail: &self.detail,
        }
    }

    /// Rebuilds a record read from a block (whose decoder already checked the time range).
    pub(super) fn from_ref(probe: &ProbeName, record: &RecordRef<'_>) -> Option<ResultRecord> {
        Some(ResultRecord {
            probe: probe.clone(),
            at: timestamp_from_ms(record.at_ms)?,
            latency: Duration::from_micros(record.latency_us),
            outcome: record.outcome,
            error_class: record.error_class,
            detail: record.detail.to_owned(),
        })
    }
}

/// Rounds a timestamp down to the millisecond, as the ledger stores it.
fn truncate_to_ms(at: Timestamp) -> Timestamp {
    timestamp_from_ms(ms_floor(at)).unwrap_or(at)
}

/// Rounds a duration down to the microsecond, as the ledger stores it.
fn truncate_to_us(latency: Duration) -> Duration {
    Duration::from_micros(u64::try_from(latency.as_micros()).unwrap_or(u64::MAX))
}

/// What happened to the daemon at a marker's instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MarkerKind {
    /// The daemon started checking: time before it, since the last stop, was not monitored.
    DaemonStart,
    /// The daemon stopped cleanly: time after it is unknown, not down.
    DaemonStop,
}

impl MarkerKind {
    pub(super) fn code(self) -> u8 {
        match self {
            MarkerKind::DaemonStart => 1,
            MarkerKind::DaemonStop => 2,
        }
    }

    pub(super) fn from_code(code: u8) -> Option<MarkerKind> {
        match code {
            1 => Some(MarkerKind::DaemonStart),
            2 => Some(MarkerKind::DaemonStop),
            _ => None,
        }
    }
}

/// A daemon lifecycle event, kept so reports can tell "not monitored" from "no result".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Marker {
    /// When it happened (stored at millisecond precision).
    pub at: Timestamp,
    /// Start or stop.
    pub kind: MarkerKind,
}
