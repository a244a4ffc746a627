//! What the ledger stores: one result per check, and daemon markers (start, stop, write
//! outages).

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
    /// From the marker's instant the daemon ran and checked, but the ledger could not write:
    /// time it left without results was monitored, and its results were lost, not absent.
    WritesFailed(WriteOutage),
}

/// What a [`MarkerKind::WritesFailed`] marker says: until when writes failed, and which results
/// were lost (never written) meanwhile, over all probes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WriteOutage {
    /// When writes worked again, or the last moment the daemon is known to have run (its
    /// stop, or the last time it noted the outage before it was killed).
    pub until: Timestamp,
    /// Results checked and never written.
    pub lost: u64,
    /// The check times of the first and last of them; `None` when none was lost.
    pub lost_between: Option<(Timestamp, Timestamp)>,
}

/// Version byte of a [`WriteOutage`]'s stored form.
const OUTAGE_VERSION: u8 = 1;
/// A stored [`WriteOutage`]: version, `until`, `lost`, first and last lost (ms, big-endian;
/// `i64::MIN` for none).
const OUTAGE_BYTES: usize = 1 + 8 + 8 + 8 + 8;

impl WriteOutage {
    /// The stored form (the value of its marker's key).
    pub(super) fn encode(&self) -> Vec<u8> {
        let (first, last) = self
            .lost_between
            .map_or((i64::MIN, i64::MIN), |(a, b)| (ms_floor(a), ms_floor(b)));
        let mut bytes = Vec::with_capacity(OUTAGE_BYTES);
        bytes.push(OUTAGE_VERSION);
        bytes.extend_from_slice(&ms_floor(self.until).to_be_bytes());
        bytes.extend_from_slice(&self.lost.to_be_bytes());
        bytes.extend_from_slice(&first.to_be_bytes());
        bytes.extend_from_slice(&last.to_be_bytes());
        bytes
    }

    /// Reads [`Self::encode`]'s form; `None` if it is not one.
    pub(super) fn decode(bytes: &[u8]) -> Option<WriteOutage> {
        if bytes.len() != OUTAGE_BYTES || bytes[0] != OUTAGE_VERSION {
            return None;
        }
        let word =
            |i: usize| -> Option<[u8; 8]> { bytes.get(1 + 8 * i..9 + 8 * i)?.try_into().ok() };
        let until = timestamp_from_ms(i64::from_be_bytes(word(0)?))?;
        let lost = u64::from_be_bytes(word(1)?);
        let (first, last) = (i64::from_be_bytes(word(2)?), i64::from_be_bytes(word(3)?));
        let lost_between = if first == i64::MIN {
            None
        } else {
            Some((timestamp_from_ms(first)?, timestamp_from_ms(last)?))
        };
        Some(WriteOutage {
            until,
            lost,
            lost_between,
        })
    }
}

impl MarkerKind {
    pub(super) fn code(self) -> u8 {
        match self {
            MarkerKind::DaemonStart => 1,
            MarkerKind::DaemonStop => 2,
            MarkerKind::WritesFailed(_) => 3,
        }
    }

    /// What the marker's value holds (nothing for starts and stops).
    pub(super) fn value(self) -> Vec<u8> {
        match self {
            MarkerKind::WritesFailed(outage) => outage.encode(),
            MarkerKind::DaemonStart | MarkerKind::DaemonStop => Vec::new(),
        }
    }

    /// The kind stored under `code` with `value`; `None` if unknown or malformed. Starts and
    /// stops ignore their value (written empty by every version).
    pub(super) fn decode(code: u8, value: &[u8]) -> Option<MarkerKind> {
        match code {
            1 => Some(MarkerKind::DaemonStart),
            2 => Some(MarkerKind::DaemonStop),
            3 => WriteOutage::decode(value).map(MarkerKind::WritesFailed),
            _ => None,
        }
    }
}

/// A daemon lifecycle event, kept so reports can tell "not monitored" from "no result".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Marker {
    /// When it happened (stored at millisecond precision).
    pub at: Timestamp,
    /// Start, stop or a write outage.
    pub kind: MarkerKind,
}
