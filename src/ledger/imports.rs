//! Who imported what: one record per import, stored in the same commit as the import itself
//! (see `staging.rs`), so results that entered the ledger by `upledger import` rather than by
//! a check can always be told apart, with the user who brought them in.
//!
//! Tree `imports`: ordered ms of the commit time ++ a sled-generated id (two imports in one
//! millisecond stay two) → the record as JSON. Imports are few, so readers take them all.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::{
    Ledger, LedgerError, Requester, ResultRecord,
    encoding::{ms_floor, ordered_ms},
};

/// One committed import.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportRecord {
    /// When it was committed.
    pub at: Timestamp,
    /// Who asked for it (the socket's peer, or the user running the CLI); `None` when not
    /// known.
    pub by: Option<Requester>,
    /// Results stored (of every probe in the import).
    pub results: u64,
    /// Correction records stored (exclusions, revocations, maintenance sightings).
    pub corrections: u64,
    /// The earliest and latest result start, when there were results.
    pub span: Option<(Timestamp, Timestamp)>,
    /// The probes with results in it, sorted.
    pub probes: Vec<String>,
    /// SHA-256 (hex) of the imported text as received: what the evidence log's import leaf
    /// commits to, so the holder of the file can match it. `None` on records from before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

impl ImportRecord {
    /// The record of importing `results` and `corrections` corrections at `at`, asked by `by`.
    pub fn new(
        at: Timestamp,
        by: Option<Requester>,
        results: &[ResultRecord],
        corrections: usize,
    ) -> ImportRecord {
        let span = results
            .iter()
            .map(|r| r.at)
            .min()
            .zip(results.iter().map(|r| r.at).max());
        let mut probes: Vec<String> = results.iter().map(|r| r.probe.to_string()).collect();
        probes.sort_unstable();
        probes.dedup();
        ImportRecord {
            at,
            by,
            results: results.len() as u64,
            corrections: corrections as u64,
            span,
            probes,
            sha256: None,
        }
    }

    /// Whether results of `probe` (any probe when `None`) in it start inside `[from, to)`, as
    /// far as its span tells.
    pub fn touches(&self, probe: Option<&str>, from: Timestamp, to: Timestamp) -> bool {
        let probe_in = probe.is_none_or(|p| self.probes.iter().any(|name| name == p));
        let span_in = self
            .span
            .is_some_and(|(first, last)| first < to && last >= from);
        probe_in && span_in
    }
}

impl Ledger {
    /// The key and value an import record is stored under.
    pub(super) fn import_record_entry(
        &self,
        record: &ImportRecord,
    ) -> Result<(Vec<u8>, Vec<u8>), LedgerError> {
        let id = self
            .store()?
            .db
            .generate_id()
            .map_err(|e| self.sled_error(e))?;
        let mut key = ordered_ms(ms_floor(record.at)).to_vec();
        key.extend_from_slice(&id.to_be_bytes());
        let value =
            serde_json::to_vec(record).map_err(|e| self.corrupt("imports", e.to_string()))?;
        Ok((key, value))
    }

    /// Every import on record, oldest first.
    pub fn import_records(&self) -> Result<Vec<ImportRecord>, LedgerError> {
        let mut records = Vec::new();
        for item in self.store()?.imports.iter() {
            let (key, value) = item.map_err(|e| self.sled_error(e))?;
            records.push(serde_json::from_slice(&value).map_err(|e| {
                self.corrupt(
                    "imports",
                    format!("bad import record {}: {e}", super::hex(&key)),
                )
            })?);
        }
        Ok(records)
    }
}
