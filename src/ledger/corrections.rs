//! Records that change how results are read, never the results themselves (SPEC §3: nothing is
//! rewritten; corrections are new records): exclusions entered with `upledger exclude` and
//! their revocations, when the daemon first saw each maintenance window (an SLA may require
//! notice), and the figures of closed periods (a closed month is stored once and not
//! recomputed differently later).
//!
//! All are rare and small, so they are stored as JSON values: readable in a pinch, and easy to
//! extend without a format change. Exclusions and revocations share one tree, keyed by the
//! time they were recorded (plus a sequence number) so they read back in the order entered;
//! maintenance sightings are keyed by the window's identity.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::{Ledger, LedgerError, encoding::ms_floor, encoding::ordered_ms, hex};
use crate::model::ProbeName;

/// A stretch of a probe's (or a whole SLA's) time taken out of its availability, with the
/// reason (force majeure, the monitor's own fault). Listed in every report it touches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExclusionRecord {
    /// Stable identity ([`ExclusionRecord::content_id`]): what a revocation names, and how an
    /// import recognises an exclusion it holds already. Records stored before ids existed
    /// have none on disk and get theirs when read.
    #[serde(default)]
    pub id: String,
    /// The probe, for a probe's exclusion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probe: Option<ProbeName>,
    /// The SLA, for an exclusion of an SLA as a whole (applied to the SLA's figures only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sla: Option<String>,
    /// Start (inclusive).
    pub from: Timestamp,
    /// End (exclusive).
    pub to: Timestamp,
    /// Why, in the words of whoever entered it.
    pub reason: String,
    /// When it was entered.
    pub recorded_at: Timestamp,
    /// Who entered it; records from before this was kept have none ("unknown"). Not part of
    /// the id: the same exclusion is the same whoever typed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recorded_by: Option<Requester>,
}

/// The local user who asked for a change: the peer of the admin socket (its `SO_PEERCRED`
/// uid), or the user running the CLI when it opened the ledger itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Requester {
    /// The user id.
    pub uid: u32,
    /// The user name when the uid had one on the host that recorded it.
    pub name: Option<String>,
}

impl std::fmt::Display for Requester {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.name {
            Some(name) => write!(f, "{name} (uid {})", self.uid),
            None => write!(f, "uid {}", self.uid),
        }
    }
}

impl ExclusionRecord {
    /// An exclusion with its id filled in from its content.
    pub fn new(
        probe: Option<ProbeName>,
        sla: Option<String>,
        from: Timestamp,
        to: Timestamp,
        reason: String,
        recorded_at: Timestamp,
    ) -> ExclusionRecord {
        let mut record = ExclusionRecord {
            id: String::new(),
            probe,
            sla,
            from,
            to,
            reason,
            recorded_at,
            recorded_by: None,
        };
        record.id = record.content_id();
        record
    }

    /// 12 hex digits of a SHA-256 over what the exclusion says and when it was entered: the
    /// same on every ledger an export reaches, short enough to type after `--revoke`.
    pub fn content_id(&self) -> String {
        let text = format!(
            "{}\n{}\n{}\n{}\n{}\n{}",
            self.probe.as_ref().map_or("", |p| p.as_str()),
            self.sla.as_deref().unwrap_or(""),
            self.from,
            self.to,
            self.reason,
            self.recorded_at
        );
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, text.as_bytes());
        crate::model::hex(&digest.as_ref()[..6])
    }

    /// `probe web` or `sla acme`: what the exclusion applies to, for messages and listings.
    pub fn subject(&self) -> String {
        match (&self.probe, &self.sla) {
            (Some(probe), _) => format!("probe {probe}"),
            (None, Some(sla)) => format!("sla {sla}"),
            (None, None) => "nothing".to_owned(),
        }
    }
}

/// The withdrawal of an exclusion: itself a recorded correction, so the ledger keeps both the
/// exclusion and why it no longer applies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevocationRecord {
    /// The id of the exclusion withdrawn.
    pub revokes: String,
    /// Why, in the words of whoever entered it.
    pub reason: String,
    /// When it was entered.
    pub recorded_at: Timestamp,
    /// Who entered it (none on records from before this was kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recorded_by: Option<Requester>,
}

/// An exclusion and, when it was withdrawn, the revocation that did it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExclusionEntry {
    /// The exclusion as entered.
    pub exclusion: ExclusionRecord,
    /// The (first) revocation of it.
    pub revoked: Option<RevocationRecord>,
}

/// A value of the exclusions tree. A revocation is tried first: an exclusion has no `revokes`.
#[derive(Deserialize)]
#[serde(untagged)]
enum StoredCorrection {
    Revocation(RevocationRecord),
    Exclusion(ExclusionRecord),
}

impl Ledger {
    /// Stores an exclusion and flushes it.
    pub fn add_exclusion(&self, exclusion: &ExclusionRecord) -> Result<(), LedgerError> {
        let value =
            serde_json::to_vec(exclusion).map_err(|e| self.corrupt("exclusions", e.to_string()))?;
        self.add_correction(exclusion.recorded_at, &value)
    }

    /// Stores a revocation and flushes it; the exclusion it names stays stored.
    pub fn add_revocation(&self, revocation: &RevocationRecord) -> Result<(), LedgerError> {
        let value = serde_json::to_vec(revocation)
            .map_err(|e| self.corrupt("exclusions", e.to_string()))?;
        self.add_correction(revocation.recorded_at, &value)
    }

    fn add_correction(&self, recorded_at: Timestamp, value: &[u8]) -> Result<(), LedgerError> {
        let key = self.correction_key(recorded_at)?;
        self.store()?
            .exclusions
            .insert(key, value)
            .map_err(|e| self.sled_error(e))?;
        self.flush()
    }

    /// A fresh key of the exclusions tree: the time entered, then a sequence number that
    /// keeps corrections entered in the same millisecond in the order entered.
    pub(super) fn correction_key(&self, recorded_at: Timestamp) -> Result<Vec<u8>, LedgerError> {
        let sequence = self
            .store()?
            .db
            .generate_id()
            .map_err(|e| self.sled_error(e))?;
        let mut key = Vec::with_capacity(16);
        key.extend_from_slice(&ordered_ms(ms_floor(recorded_at)));
        key.extend_from_slice(&sequence.to_be_bytes());
        Ok(key)
    }

    /// Every exclusion and every revocation, each in the order entered.
    pub fn corrections(
        &self,
    ) -> Result<(Vec<ExclusionRecord>, Vec<RevocationRecord>), LedgerError> {
        let mut exclusions = Vec::new();
        let mut revocations = Vec::new();
        for item in self.store()?.exclusions.iter() {
            let (key, value) = item.map_err(|e| self.sled_error(e))?;
            let stored: StoredCorrection = serde_json::from_slice(&value)
                .map_err(|e| self.corrupt("exclusions", format!("key {}: {e}", hex(&key))))?;
            match stored {
                StoredCorrection::Revocation(revocation) => revocations.push(revocation),
                StoredCorrection::Exclusion(mut exclusion) => {
                    if exclusion.id.is_empty() {
                        exclusion.id = exclusion.content_id();
                    }
                    exclusions.push(exclusion);
                }
            }
        }
        Ok((exclusions, revocations))
    }

    /// Exclusions overlapping `[from, to)` — of every probe and SLA — revoked or not, in the
    /// order entered.
    pub fn exclusion_entries(
        &self,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<ExclusionEntry>, LedgerError> {
        let (exclusions, revocations) = self.corrections()?;
        Ok(exclusions
            .into_iter()
            .filter(|e| e.from < to && e.to > from)
            .map(|exclusion| ExclusionEntry {
                revoked: revocations
                    .iter()
                    .find(|r| r.revokes == exclusion.id)
                    .cloned(),
                exclusion,
            })
            .collect())
    }

    /// Exclusions in force (not revoked) overlapping `[from, to)`, of one probe or of every
    /// probe and SLA, in the order entered.
    pub fn exclusions(
        &self,
        probe: Option<&ProbeName>,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<ExclusionRecord>, LedgerError> {
        Ok(self
            .exclusion_entries(from, to)?
            .into_iter()
            .filter(|entry| entry.revoked.is_none())
            .map(|entry| entry.exclusion)
            .filter(|e| probe.is_none_or(|p| e.probe.as_ref() == Some(p)))
            .collect())
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

    /// Every maintenance window ever seen, with when it was first seen, by identity.
    pub fn maintenance_sightings(&self) -> Result<Vec<(String, Timestamp)>, LedgerError> {
        let mut found = Vec::new();
        for item in self.store()?.maintenance_seen.iter() {
            let (key, value) = item.map_err(|e| self.sled_error(e))?;
            let window = String::from_utf8_lossy(&key).into_owned();
            let at = self.decode_seen(&window, &value)?;
            found.push((window, at));
        }
        Ok(found)
    }

    /// Sets when `window` was first seen, replacing what was stored: for a restore, whose
    /// sighting predates the one a freshly started daemon noted. Flushed.
    pub fn set_maintenance_seen(&self, window: &str, at: Timestamp) -> Result<(), LedgerError> {
        self.store()?
            .maintenance_seen
            .insert(window.as_bytes(), &ordered_ms(ms_floor(at))[..])
            .map_err(|e| self.sled_error(e))?;
        self.flush()
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
        let make = |probe: &ProbeName, from, to| {
            ExclusionRecord::new(
                Some(probe.clone()),
                None,
                ts(from),
                ts(to),
                "provider outage".into(),
                ts(5_000),
            )
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
    fn a_revoked_exclusion_is_kept_but_no_longer_in_force() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::open(&dir.path().join("l")).unwrap();
        let a = ProbeName::new("a").unwrap();
        let probe = ExclusionRecord::new(
            Some(a.clone()),
            None,
            ts(100),
            ts(200),
            "uplink".into(),
            ts(1_000),
        );
        let sla = ExclusionRecord::new(
            None,
            Some("acme".into()),
            ts(100),
            ts(200),
            "contract pause".into(),
            ts(1_001),
        );
        assert_ne!(probe.id, sla.id);
        ledger.add_exclusion(&probe).unwrap();
        ledger.add_exclusion(&sla).unwrap();
        let revocation = RevocationRecord {
            revokes: probe.id.clone(),
            reason: "entered by mistake".into(),
            recorded_at: ts(2_000),
            recorded_by: None,
        };
        ledger.add_revocation(&revocation).unwrap();
        assert_eq!(ledger.exclusions(Some(&a), ts(0), ts(500)).unwrap(), vec![]);
        assert_eq!(
            ledger.exclusions(None, ts(0), ts(500)).unwrap(),
            vec![sla.clone()],
            "the SLA's exclusion is still in force"
        );
        let entries = ledger.exclusion_entries(ts(0), ts(500)).unwrap();
        assert_eq!(entries.len(), 2, "nothing is deleted");
        assert_eq!(entries[0].exclusion, probe);
        assert_eq!(entries[0].revoked, Some(revocation));
        assert_eq!(entries[1].revoked, None);
    }

    #[test]
    fn an_exclusion_stored_before_ids_existed_gets_its_id_when_read() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::open(&dir.path().join("l")).unwrap();
        let old = br#"{"probe":"a","from":"1970-01-01T00:01:40Z","to":"1970-01-01T00:03:20Z","reason":"uplink","recorded_at":"1970-01-01T00:16:40Z"}"#;
        ledger.add_correction(ts(1_000), old).unwrap();
        let found = ledger.exclusions(None, ts(0), ts(500)).unwrap();
        let expected = ExclusionRecord::new(
            Some(ProbeName::new("a").unwrap()),
            None,
            ts(100),
            ts(200),
            "uplink".into(),
            ts(1_000),
        );
        assert_eq!(found, vec![expected]);
    }

    #[test]
    fn maintenance_sightings_are_listed_and_can_be_set() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::open(&dir.path().join("l")).unwrap();
        ledger.note_maintenance_seen("w1", ts(900)).unwrap();
        ledger.set_maintenance_seen("w1", ts(100)).unwrap();
        ledger.set_maintenance_seen("w2", ts(300)).unwrap();
        assert_eq!(
            ledger.maintenance_sightings().unwrap(),
            vec![("w1".to_owned(), ts(100)), ("w2".to_owned(), ts(300))]
        );
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
