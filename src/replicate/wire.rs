//! What travels through JetStream: a run of one agent's consecutive results as JSON, one
//! message per run, named for deduplication by the sequence number of its first result.
//!
//! JSON, not the ledger's compact encoding: anyone with the `nats` CLI can read the stream,
//! and a message from another version or another program is told apart by its fields, not
//! misread. It costs ~120 bytes a result on the wire, for a stream that JetStream keeps
//! only until the coordinators have it.

use serde::{Deserialize, Serialize};

use crate::ledger::{ReplicationEntry, ResultRecord};
use crate::model::{ErrorClass, LocationName, Outcome, ProbeName};

/// The wire format's version; a message with another is refused, not guessed at.
pub const WIRE_VERSION: u32 = 1;

/// Most results in one message: deterministic cuts of each stored entry, so a replay sends
/// the same messages under the same ids (and NATS's deduplication drops the repeats), and
/// well under NATS's default 1 MiB payload limit even with long details.
pub const RESULTS_PER_MESSAGE: usize = 512;

/// Longest detail sent (bytes, cut at a character boundary): the message bound above holds.
const MAX_DETAIL_BYTES: usize = 1024;

/// The header NATS deduplicates published messages by.
pub const MSG_ID_HEADER: &str = "Nats-Msg-Id";

/// Subject of `location`'s results in `stream`.
pub fn results_subject(stream: &str, location: &LocationName) -> String {
    format!("{stream}.results.{location}")
}

/// Subject of `location`'s signed checkpoints in `stream`.
pub fn checkpoints_subject(stream: &str, location: &LocationName) -> String {
    format!("{stream}.checkpoints.{location}")
}

/// Every subject the stream holds.
pub fn stream_subjects(stream: &str) -> String {
    format!("{stream}.>")
}

/// The subjects a coordinator consumes.
pub fn all_results(stream: &str) -> String {
    format!("{stream}.results.>")
}

/// SPEC §9's message id: `<location>:<sequence>`.
pub fn message_id(location: &LocationName, first_seq: u64) -> String {
    format!("{location}:{first_seq}")
}

/// One message: results `first_seq ..` of `location`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResultsMessage {
    /// [`WIRE_VERSION`].
    pub v: u32,
    /// Where the checks ran.
    pub location: LocationName,
    /// The agent's sequence number of `results[0]`.
    pub first_seq: u64,
    /// The results, in the order the agent wrote them.
    pub results: Vec<WireResult>,
}

/// One result on the wire.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WireResult {
    /// The probe, as configured (never a location series name).
    pub probe: ProbeName,
    /// Start of the check, Unix milliseconds.
    pub at_ms: i64,
    /// Duration of the check, microseconds.
    pub latency_us: u64,
    /// Up, degraded, down or unknown.
    pub outcome: Outcome,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_class: Option<ErrorClass>,
    /// A short explanation.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

/// Why a message is not one this build takes.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// Not JSON of the message's shape.
    #[error("not a results message: {0}")]
    Shape(#[from] serde_json::Error),
    /// Another wire version.
    #[error("wire version {0} (this build reads {WIRE_VERSION})")]
    Version(u32),
    /// A probe name that is a location series name, or a time out of range.
    #[error("result {index}: {reason}")]
    Result {
        /// Its position in the message.
        index: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// More results than a message may hold.
    #[error("{0} results in one message (at most {RESULTS_PER_MESSAGE})")]
    TooMany(usize),
}

/// The messages of one stored entry, cut every [`RESULTS_PER_MESSAGE`] results counted from
/// the entry's own first result (so a cursor inside it lands on a cut).
pub fn messages_of(entry: &ReplicationEntry, location: &LocationName) -> Vec<ResultsMessage> {
    entry
        .records
        .chunks(RESULTS_PER_MESSAGE)
        .enumerate()
        .map(|(i, chunk)| ResultsMessage {
            v: WIRE_VERSION,
            location: location.clone(),
            first_seq: entry.first_seq + (i * RESULTS_PER_MESSAGE) as u64,
            results: chunk.iter().map(WireResult::from).collect(),
        })
        .collect()
}

impl From<&ResultRecord> for WireResult {
    fn from(record: &ResultRecord) -> Self {
        let mut detail = record.detail.clone();
        if detail.len() > MAX_DETAIL_BYTES {
            let mut cut = MAX_DETAIL_BYTES;
            while !detail.is_char_boundary(cut) {
                cut -= 1;
            }
            detail.truncate(cut);
        }
        WireResult {
            probe: record.probe.clone(),
            at_ms: record.at.as_millisecond(),
            latency_us: u64::try_from(record.latency.as_micros()).unwrap_or(u64::MAX),
            outcome: record.outcome,
            error_class: record.error_class,
            detail,
        }
    }
}

impl ResultsMessage {
    /// Parses and checks a message body.
    pub fn parse(body: &[u8]) -> Result<ResultsMessage, WireError> {
        let message: ResultsMessage = serde_json::from_slice(body)?;
        if message.v != WIRE_VERSION {
            return Err(WireError::Version(message.v));
        }
        if message.results.len() > RESULTS_PER_MESSAGE {
            return Err(WireError::TooMany(message.results.len()));
        }
        for (index, result) in message.results.iter().enumerate() {
            if result.probe.split_location().is_some() {
                return Err(WireError::Result {
                    index,
                    reason: format!("\"{}\" is not a probe name", result.probe),
                });
            }
            if jiff::Timestamp::from_millisecond(result.at_ms).is_err() {
                return Err(WireError::Result {
                    index,
                    reason: format!("time {} ms is out of range", result.at_ms),
                });
            }
        }
        Ok(message)
    }

    /// The results as the coordinator stores them: under each probe's series name for this
    /// message's location.
    pub fn records(&self) -> Vec<ResultRecord> {
        self.results
            .iter()
            .filter_map(|r| {
                Some(ResultRecord {
                    probe: r.probe.at_location(&self.location),
                    at: jiff::Timestamp::from_millisecond(r.at_ms).ok()?,
                    latency: std::time::Duration::from_micros(r.latency_us),
                    outcome: r.outcome,
                    error_class: r.error_class,
                    detail: r.detail.clone(),
                })
            })
            .collect()
    }

    /// The body as published.
    pub fn to_bytes(&self) -> Vec<u8> {
        // Serialising plain data with string keys cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use jiff::Timestamp;

    use super::*;

    fn record(second: i64, detail: &str) -> ResultRecord {
        ResultRecord {
            probe: ProbeName::new("web").expect("name"),
            at: Timestamp::from_second(1_764_547_200 + second).expect("time"),
            latency: Duration::from_micros(2_345),
            outcome: Outcome::Down,
            error_class: Some(ErrorClass::Connect),
            detail: detail.to_owned(),
        }
    }

    #[test]
    fn entries_cut_into_the_same_messages_every_time_and_read_back_per_location() {
        let fra = LocationName::new("fra1").expect("name");
        let entry = ReplicationEntry {
            first_seq: 40,
            records: (0..1_100).map(|s| record(s, "refused")).collect(),
        };
        let messages = messages_of(&entry, &fra);
        let cuts: Vec<(u64, usize)> = messages
            .iter()
            .map(|m| (m.first_seq, m.results.len()))
            .collect();
        assert_eq!(cuts, vec![(40, 512), (552, 512), (1064, 76)]);
        let parsed = ResultsMessage::parse(&messages[2].to_bytes()).expect("parse");
        assert_eq!(parsed, messages[2]);
        let records = parsed.records();
        assert_eq!(records[0].probe.as_str(), "web@fra1");
        assert_eq!(records[0].at, entry.records[1024].at);
        assert_eq!(records[0].latency, entry.records[1024].latency);
        assert_eq!(message_id(&fra, 552), "fra1:552");
    }

    #[test]
    fn what_is_not_a_results_message_is_an_error_not_a_panic() {
        for body in [
            &b""[..],
            b"hello",
            b"{}",
            b"{\"v\":2,\"location\":\"a\",\"first_seq\":0,\"results\":[]}",
            b"{\"v\":1,\"location\":\"A B\",\"first_seq\":0,\"results\":[]}",
            b"{\"v\":1,\"location\":\"a\",\"first_seq\":0,\"results\":[{\"probe\":\"web@b\",\"at_ms\":0,\"latency_us\":0,\"outcome\":\"up\"}]}",
            b"{\"v\":1,\"location\":\"a\",\"first_seq\":0,\"results\":[{\"probe\":\"web\",\"at_ms\":99999999999999999,\"latency_us\":0,\"outcome\":\"up\"}]}",
            b"{\"v\":1,\"location\":\"a\",\"first_seq\":0,\"results\":[],\"extra\":1}",
        ] {
            assert!(ResultsMessage::parse(body).is_err(), "{}", String::from_utf8_lossy(body));
        }
        let long = "é".repeat(2_000);
        let wire = WireResult::from(&record(0, &long));
        assert!(wire.detail.len() <= MAX_DETAIL_BYTES && long.starts_with(&wire.detail));
    }
}
