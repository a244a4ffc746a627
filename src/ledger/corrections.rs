//! Records that change how results are read, never the results themselves (SPEC §3: nothing is
//! rewritten; corrections are new records): exclusions entered with `upledger exclude`, when
//! the daemon first saw each maintenance window (an SLA may require notice), and the figures
//! of closed periods (a closed month is stored once and not recomputed differently later).
//!
//! Both are rare and small, so they are stored as JSON values: readable in a pinch, and easy to
//! extend without a format change. Exclusions are keyed by the time they were recorded (plus a
//! sequence number), maintenance sightings by the window's identity.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::{Ledger, LedgerError, encoding::ms_floor, encoding::ordered_ms, hex};
use crate::model::ProbeName;

/// A stretch of a probe's time taken out of its availability, with the reason (force majeure,
/// the monitor's own fault). Listed in every report it touches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExclusionRecord {
    /// The probe.
    pub probe: ProbeName,
    /// Start (inclusive).
    pub from: Timestamp,
    /// End (exclusive).
    pub to: Timestamp,
    /// Why, in the words of whoever entered it.
    pub reason: String,
    /// When it was entered.
    pub recorded_at: Timestamp,
}

impl Ledger {
    /// Stores an exclusion and flushes it.
    pub fn add_exclusion(&self, exclusion: &ExclusionRecord) -> Result<(), LedgerError> {
        let value =
            serde_json::to_vec(exclusion).map_err(|e| self.corrupt("exclusions", e.to_string()))?;
        let sequence = self
            .store()?
            .db
            .generate_id()
            .map_err(|e| self.sled_error(e))?;
        let mut key = Vec::with_capacity(16);
        key.extend_from_slice(&ordered_ms(ms_floor(exclusion.recorded_at)));
        key.extend_from_slice(&sequence.to_be_bytes());
        self.store()?
            .exclusions
            .insert(key, value)
            .map_err(|e| self.sled_error(e))?;
        self.flush()
    }

    /// Exclusions overlapping `[from, to)`, of one probe or of all, in the order entered.
    pub fn exclusions(
        &self,
        probe: Option<&ProbeName>,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<ExclusionRecord>, LedgerError> {
        let mut found = Vec::new();
        for item in self.store()?.exclusions.iter() {
            let (key, value) = item.map_err(|e| self.sled_error(e))?;
            let exclusion: ExclusionRecord = serde_json::from_slice(&value)
                .map_err(|e| self.corrupt("exclusions", format!("key {}: {e}", hex(&key))))?;
            let overlaps = exclusion.from < to && exclusion.to > from;
            if overlaps && probe.is_none_or(|p| *p == exclusion.probe) {
                found.push(exclusion);
            }
        }
        Ok(found)
    }

    /// Records that the daemon saw the maintenance window `window` (a caller-chosen identity)
    /// at `at`, unless it was seen before; returns when it was first seen.
    pub fn note_maintenance_seen(
        &self,
        window: &str,
        at: Timestamp,
    ) -> Result<Timestamp, LedgerError> {
        let value = ordered_ms(ms_floor(at));
        let outcome = self
            .store()?
            .maintenance_seen
            .compare_and_swap(window.as_bytes(), None as Option<&[u8]>, Some(&value[..]))
            .map_err(|e| self.sled_error(e))?;
        match outcome {
            Ok(()) => {
                self.flush()?;
                Ok(at)
            }
            Err(existing) => match existing.current {
                Some(bytes) => self.decode_seen(window, &bytes),
                None => Ok(at),
            },
        }
    }

    /// When the daemon first saw the maintenance window `window`, if ever.
    pub fn maintenance_seen(&self, window: &str) -> Result<Option<Timestamp>, LedgerError> {
        match self
            .store()?
            .maintenance_seen
            .get(window.as_bytes())
            .map_err(|e| self.sled_error(e))?
        {
            Some(bytes) => self.decode_seen(window, &bytes).map(Some),
            None => Ok(None),
        }
    }

    /// Stores the figures of a closed period under `key` (the caller's naming, e.g.
    /// `month/2026-10/UTC/probe/web`), replacing what was there. Not flushed by itself: a
    /// month closes hundreds of entries at once, then calls [`Ledger::flush`].
    pub fn store_closed(&self, key: &str, figures: &[u8]) -> Result<(), LedgerError> {
        self.store()?
            .closed
            .insert(key.as_bytes(), figures)
            .map_err(|e| self.sled_error(e))?;
        Ok(())
    }

    /// The stored figures of a closed period, if any.
    pub fn closed(&self, key: &str) -> Result<Option<Vec<u8>>, LedgerError> {
        Ok(self
            .store()?
            .closed
            .get(key.as_bytes())
            .map_err(|e| self.sled_error(e))?
            .map(|bytes| bytes.to_vec()))
    }

    /// Forgets every stored period whose key starts with `prefix` (a correction such as a new
    /// exclusion touched it); returns how many.
    pub fn forget_closed(&self, prefix: &str) -> Result<usize, LedgerError> {
        let mut forgotten = 0;
        for item in self.store()?.closed.scan_prefix(prefix.as_bytes()) {
            let (key, _) = item.map_err(|e| self.sled_error(e))?;
            self.store()?
                .closed
                .remove(key)
                .map_err(|e| self.sled_error(e))?;
            forgotten += 1;
        }
        self.flush()?;
        Ok(forgotten)
    }

    fn decode_seen(&self, window: &str, bytes: &[u8]) -> Result<Timestamp, LedgerError> {
        <[u8; 8]>::try_from(bytes)
            .ok()
            .and_then(|ordered| {
                super::encoding::timestamp_from_ms(super::encoding::ms_from_ordered(ordered))
            })
            .ok_or_else(|| self.corrupt("maintenance_seen", format!("window {window}: bad time")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: i64) -> Timestamp {
        Timestamp::from_second(s).unwrap()
    }

    #[test]
    fn exclusions_are_stored_and_found_by_overlap_and_probe() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::open(&dir.path().join("l")).unwrap();
        let a = ProbeName::new("a").unwrap();
        let b = ProbeName::new("b").unwrap();
        let make = |probe: &ProbeName, from, to| ExclusionRecord {
            probe: probe.clone(),
            from: ts(from),
            to: ts(to),
            reason: "provider outage".into(),
            recorded_at: ts(5_000),
        };
        ledger.add_exclusion(&make(&a, 100, 200)).unwrap();
        ledger.add_exclusion(&make(&b, 150, 300)).unwrap();
        ledger.add_exclusion(&make(&a, 1_000, 2_000)).unwrap();
        assert_eq!(ledger.exclusions(None, ts(0), ts(500)).unwrap().len(), 2);
        assert_eq!(
            ledger.exclusions(Some(&a), ts(0), ts(5_000)).unwrap().len(),
            2
        );
        assert_eq!(
            ledger
                .exclusions(Some(&a), ts(200), ts(1_000))
                .unwrap()
                .len(),
            0,
            "half-open"
        );
        drop(ledger);
        let ledger = crate::ledger::tests::reopen(&dir.path().join("l"));
        let found = ledger.exclusions(Some(&b), ts(0), ts(5_000)).unwrap();
        assert_eq!(found, vec![make(&b, 150, 300)], "survives reopen");
    }

    #[test]
    fn closed_periods_are_stored_and_forgotten_by_prefix() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::open(&dir.path().join("l")).unwrap();
        ledger
            .store_closed("month/2026-10/UTC/probe/a", b"{\"x\":1}")
            .unwrap();
        ledger
            .store_closed("month/2026-10/UTC/sla/s", b"{}")
            .unwrap();
        ledger
            .store_closed("month/2026-09/UTC/probe/a", b"{}")
            .unwrap();
        assert_eq!(
            ledger.closed("month/2026-10/UTC/probe/a").unwrap().unwrap(),
            b"{\"x\":1}"
        );
        assert_eq!(ledger.forget_closed("month/2026-10/").unwrap(), 2);
        assert_eq!(ledger.closed("month/2026-10/UTC/probe/a").unwrap(), None);
        assert!(
            ledger
                .closed("month/2026-09/UTC/probe/a")
                .unwrap()
                .is_some()
        );
    }

    #[test]
    fn the_first_sighting_of_a_maintenance_window_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::open(&dir.path().join("l")).unwrap();
        assert_eq!(ledger.maintenance_seen("w1").unwrap(), None);
        assert_eq!(
            ledger.note_maintenance_seen("w1", ts(100)).unwrap(),
            ts(100)
        );
        assert_eq!(
            ledger.note_maintenance_seen("w1", ts(900)).unwrap(),
            ts(100)
        );
        assert_eq!(ledger.maintenance_seen("w1").unwrap(), Some(ts(100)));
    }
}
