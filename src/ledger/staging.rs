//! Imports, all or nothing: everything one import writes is staged in the `import_staging`
//! tree, made visible by one commit marker, then copied to where it belongs.
//!
//! Why: an import of 500,000 results is thousands of sled writes to several trees; a sled
//! batch is atomic only within one tree, and sled's multi-tree transactions are limited in
//! size. Written straight into place, a process killed part-way left part of the file stored,
//! and the re-run was then refused as duplicates.
//!
//! The steps, all under the writer's lock:
//! 1. **Stage.** Each new block (`b` ++ block key), correction (`x` ++ exclusions key, `m` ++
//!    window), stale closed-period prefix (`f` ++ prefix) and the import's record (`r` ++
//!    imports key, see `imports.rs`) goes to the staging tree, which no reader looks at.
//!    Flushed.
//! 2. **Commit.** One key, [`COMMIT_KEY`], inserted and flushed. Until it is durable the import
//!    did not happen; once it is, it did.
//! 3. **Apply.** The staged writes are copied to their trees (same keys, same values: doing it
//!    twice is harmless), the hours behind digest coverage are digested again. Flushed.
//! 4. **Clear.** The staging tree is emptied, the commit marker last. Flushed.
//!
//! Every opening (and every reopen after an I/O error) settles what a killed process left:
//! without a commit marker the staging tree is swept; with one, steps 3 and 4 are done. So
//! after a crash the ledger holds all of an import or none of it, before anything reads it.
//! While step 3 runs, readers *in the same process* (the daemon's status page) may briefly see
//! part of the import; the admin socket's queries wait for it (see `api::socket`).

use jiff::Timestamp;
use rustc_hash::FxHashMap;

use super::blocks::{NewBlock, WRITE_BATCH_OPS};
use super::encoding::{BlockKey, ms_floor, ordered_ms};
use super::{
    ExclusionRecord, ImportRecord, Ledger, LedgerError, ResultRecord, RevocationRecord, Writer, hex,
};
use crate::model::ProbeName;

/// The commit marker's key; sorts after every staged write (`~` follows the kind bytes), so a
/// clear in key order removes it last.
pub(super) const COMMIT_KEY: &[u8] = b"~commit";

/// Kind bytes of staged writes: which tree each goes to.
const BLOCK: u8 = b'b';
const EXCLUSION: u8 = b'x';
const SIGHTING: u8 = b'm';
const FORGET: u8 = b'f';
const RECORD: u8 = b'r';

/// A correction an import stores in the same commit as its results.
#[derive(Debug, Clone, PartialEq)]
pub enum ImportedCorrection {
    /// An exclusion ([`Ledger::add_exclusion`]).
    Exclusion(ExclusionRecord),
    /// A revocation ([`Ledger::add_revocation`]).
    Revocation(RevocationRecord),
    /// When a maintenance window was first seen, replacing what is stored
    /// ([`Ledger::set_maintenance_seen`]).
    MaintenanceSeen {
        /// The window's identity.
        window: String,
        /// When it was first seen.
        first_seen: Timestamp,
    },
}

/// Everything one import stores, made visible at once by [`Ledger::import_all`].
#[derive(Debug, Default, Clone, Copy)]
pub struct ImportCommit<'a> {
    /// The results.
    pub results: &'a [ResultRecord],
    /// The corrections, in the order entered.
    pub corrections: &'a [ImportedCorrection],
    /// Prefixes of closed-period figures ([`Ledger::store_closed`]) the corrections make
    /// stale: forgotten in the same commit.
    pub forget_closed: &'a [String],
    /// Who imported what, stored in the same commit (see `imports.rs`).
    pub record: Option<&'a ImportRecord>,
}

fn staged_key(kind: u8, key: &[u8]) -> Vec<u8> {
    let mut staged = Vec::with_capacity(1 + key.len());
    staged.push(kind);
    staged.extend_from_slice(key);
    staged
}

impl Ledger {
    /// Stores results for migration or restore: any probes, any order, any time range; see
    /// [`Ledger::import_all`].
    pub fn import(&self, records: &[ResultRecord]) -> Result<usize, LedgerError> {
        self.import_all(&ImportCommit {
            results: records,
            ..ImportCommit::default()
        })
    }

    /// Stores an import — results, corrections, stale closed figures to forget — all or
    /// nothing, also across `kill -9` (see the module docs). The results are checked first: if
    /// any repeats a stored (probe, millisecond) or another input record, nothing is written
    /// and [`LedgerError::Duplicate`] names it. Returns the number of results stored, once they
    /// are durable.
    ///
    /// A storage error after the commit marker is durable is returned as it is, but the
    /// import is committed: the next opening (or [`Ledger::recover`]) completes it.
    pub fn import_all(&self, import: &ImportCommit<'_>) -> Result<usize, LedgerError> {
        let mut writer = self.lock_writer();
        if writer.stale {
            self.replay_journal(&mut writer)?;
        }
        let blocks = self.import_blocks(&mut writer, import.results)?;
        // A failed import of this process normally clears its own staging; this makes sure.
        self.clear_staging()?;
        if let Err(e) = self.stage(&blocks, import) {
            let _ = self.clear_staging();
            return Err(e);
        }
        drop(blocks);
        if let Err(e) = self.commit_staged() {
            // Whether the marker reached the disk is unknown; the next opening settles it.
            let _ = self.clear_staging();
            return Err(e);
        }
        self.apply_staged()?;
        self.redigest_behind(&mut writer, import.results)?;
        // The seal (see `seal.rs`) learns of the import once it is durable.
        let flushed = self.bump_commit(&mut writer).and_then(|()| self.flush());
        if let Err(e) = flushed {
            self.tally_unsure(&mut writer);
            return Err(e);
        }
        self.tally_durable(&mut writer, import.results);
        self.write_seal(&mut writer);
        self.clear_staging()?;
        Ok(import.results.len())
    }

    /// Step 1: writes the import's blocks, corrections and prefixes to the staging tree,
    /// flushed.
    fn stage(&self, blocks: &[NewBlock], import: &ImportCommit<'_>) -> Result<(), LedgerError> {
        let staging = self.store()?.staging.clone();
        for chunk in blocks.chunks(WRITE_BATCH_OPS) {
            let mut writes = sled::Batch::default();
            for (key, block) in chunk {
                writes.insert(staged_key(BLOCK, key), &block[..]);
            }
            staging
                .apply_batch(writes)
                .map_err(|e| self.sled_error(e))?;
        }
        let mut writes = sled::Batch::default();
        let encode = |value: Result<Vec<u8>, serde_json::Error>| {
            value.map_err(|e| self.corrupt("exclusions", e.to_string()))
        };
        for correction in import.corrections {
            match correction {
                ImportedCorrection::Exclusion(exclusion) => {
                    let key = self.correction_key(exclusion.recorded_at)?;
                    let value = encode(serde_json::to_vec(exclusion))?;
                    writes.insert(staged_key(EXCLUSION, &key), value);
                }
                ImportedCorrection::Revocation(revocation) => {
                    let key = self.correction_key(revocation.recorded_at)?;
                    let value = encode(serde_json::to_vec(revocation))?;
                    writes.insert(staged_key(EXCLUSION, &key), value);
                }
                ImportedCorrection::MaintenanceSeen { window, first_seen } => {
                    let value = ordered_ms(ms_floor(*first_seen));
                    writes.insert(staged_key(SIGHTING, window.as_bytes()), &value[..]);
                }
            }
        }
        for prefix in import.forget_closed {
            writes.insert(staged_key(FORGET, prefix.as_bytes()), &[][..]);
        }
        if let Some(record) = import.record {
            let (key, value) = self.import_record_entry(record)?;
            writes.insert(staged_key(RECORD, &key), value);
        }
        staging
            .apply_batch(writes)
            .map_err(|e| self.sled_error(e))?;
        self.flush()
    }

    /// Step 2: the one write that makes the staged import happen, flushed.
    fn commit_staged(&self) -> Result<(), LedgerError> {
        self.store()?
            .staging
            .insert(COMMIT_KEY, &[][..])
            .map_err(|e| self.sled_error(e))?;
        self.flush()
    }

    /// Step 3 without the digests: copies every staged write to its tree (not flushed).
    /// Returns the staged blocks, for [`Self::settle_import`] to digest.
    fn apply_staged(&self) -> Result<Vec<(BlockKey, sled::IVec)>, LedgerError> {
        let store = self.store()?;
        let mut blocks = Vec::new();
        let mut results = sled::Batch::default();
        let mut pending = 0usize;
        let mut exclusions = sled::Batch::default();
        let mut sightings = sled::Batch::default();
        let mut records = sled::Batch::default();
        let mut forget = Vec::new();
        for item in store.staging.iter() {
            let (key, value) = item.map_err(|e| self.sled_error(e))?;
            if key == COMMIT_KEY {
                continue;
            }
            let context = || format!("staged import write (key {})", hex(&key));
            let (kind, target) = key
                .split_first()
                .ok_or_else(|| self.corrupt(context(), "empty key"))?;
            match *kind {
                BLOCK => {
                    let block_key = BlockKey::parse(target)
                        .ok_or_else(|| self.corrupt(context(), "bad block key"))?;
                    results.insert(target, value.clone());
                    blocks.push((block_key, value));
                    pending += 1;
                    if pending >= WRITE_BATCH_OPS {
                        let full = std::mem::take(&mut results);
                        store
                            .results
                            .apply_batch(full)
                            .map_err(|e| self.sled_error(e))?;
                        pending = 0;
                    }
                }
                EXCLUSION => exclusions.insert(target, value),
                SIGHTING => sightings.insert(target, value),
                RECORD => records.insert(target, value),
                FORGET => forget.push(
                    String::from_utf8(target.to_vec())
                        .map_err(|_| self.corrupt(context(), "prefix is not UTF-8"))?,
                ),
                _ => return Err(self.corrupt(context(), "unknown kind")),
            }
        }
        store
            .results
            .apply_batch(results)
            .map_err(|e| self.sled_error(e))?;
        store
            .exclusions
            .apply_batch(exclusions)
            .map_err(|e| self.sled_error(e))?;
        store
            .maintenance_seen
            .apply_batch(sightings)
            .map_err(|e| self.sled_error(e))?;
        store
            .imports
            .apply_batch(records)
            .map_err(|e| self.sled_error(e))?;
        for prefix in forget {
            self.forget_closed(&prefix)?;
        }
        Ok(blocks)
    }

    /// Step 4 (and the sweep of an uncommitted import): empties the staging tree, the commit
    /// marker last, flushed.
    fn clear_staging(&self) -> Result<(), LedgerError> {
        let staging = self.store()?.staging.clone();
        if staging.is_empty() {
            return Ok(());
        }
        let keys: Vec<sled::IVec> = staging
            .iter()
            .keys()
            .collect::<Result<_, _>>()
            .map_err(|e| self.sled_error(e))?;
        // Key order puts the commit marker last: a crash part-way leaves it, and the next
        // opening applies the remaining writes again (a no-op) before clearing.
        for chunk in keys.chunks(WRITE_BATCH_OPS) {
            let mut removals = sled::Batch::default();
            for key in chunk {
                removals.remove(key);
            }
            staging
                .apply_batch(removals)
                .map_err(|e| self.sled_error(e))?;
        }
        self.flush()
    }

    /// Settles what a killed import left, at open and after a reopen: a committed import is
    /// applied (blocks before the journal replay, so the replay's new blocks cannot take a
    /// staged block's key; digests after it, so they see every result), an uncommitted one
    /// is swept. Returns the staged blocks to digest once the journal is replayed.
    pub(super) fn apply_committed_import(
        &self,
    ) -> Result<Option<Vec<(BlockKey, sled::IVec)>>, LedgerError> {
        let staging = self.store()?.staging.clone();
        if staging.is_empty() {
            return Ok(None);
        }
        let committed = staging
            .contains_key(COMMIT_KEY)
            .map_err(|e| self.sled_error(e))?;
        if !committed {
            self.clear_staging()?;
            return Ok(None);
        }
        let blocks = self.apply_staged()?;
        self.flush()?;
        Ok(Some(blocks))
    }

    /// The second half of [`Self::apply_committed_import`]: digests the hours the applied
    /// blocks touched, then clears the staging tree.
    pub(super) fn settle_import(
        &self,
        writer: &mut Writer,
        blocks: Vec<(BlockKey, sled::IVec)>,
    ) -> Result<(), LedgerError> {
        let names: FxHashMap<u32, ProbeName> = self
            .all_probes()?
            .into_iter()
            .map(|(name, id)| (id, name))
            .collect();
        let mut records = Vec::new();
        for (key, block) in &blocks {
            let name = names.get(&key.probe_id).ok_or_else(|| {
                self.corrupt(
                    "staged import",
                    format!("a block of unknown probe id {}", key.probe_id),
                )
            })?;
            self.probe_id_for_write(writer, name)?;
            self.decode_block(name, *key, block, &mut |_, record| {
                records.push(record);
                Ok(())
            })?;
        }
        self.redigest_behind(writer, &records)?;
        self.flush()?;
        self.clear_staging()
    }
}

#[cfg(test)]
mod tests {
    use super::super::HourDigest;
    use super::super::tests::{all, at, name, reopen, series};
    use super::*;

    const HOUR: i64 = 3_600_000;

    fn exclusion() -> ExclusionRecord {
        ExclusionRecord::new(
            Some(name("api")),
            None,
            at(0),
            at(HOUR),
            "uplink".to_owned(),
            at(2 * HOUR),
        )
    }

    /// Steps 1 (and 2 when `commit`) of an import, as a process killed right after them left
    /// them: the ledger is dropped without applying anything.
    fn stage_and_drop(ledger: Ledger, records: &[ResultRecord], commit: bool) {
        let corrections = [ImportedCorrection::Exclusion(exclusion())];
        let record = ImportRecord::new(at(9 * HOUR), None, records, corrections.len());
        let import = ImportCommit {
            results: records,
            corrections: &corrections,
            forget_closed: &[],
            record: Some(&record),
        };
        {
            let mut writer = ledger.lock_writer();
            let blocks = ledger.import_blocks(&mut writer, records).unwrap();
            ledger.stage(&blocks, &import).unwrap();
            if commit {
                ledger.commit_staged().unwrap();
            }
        }
        drop(ledger);
    }

    /// Live results in hours 0..2, digested; the import fills hour 0's gaps and adds hour 5.
    fn live_and_import(dir: &std::path::Path) -> (Ledger, Vec<ResultRecord>, Vec<ResultRecord>) {
        let ledger = Ledger::open(dir).unwrap();
        let live = series("api", 720, 0);
        ledger.append(&live).unwrap();
        ledger.digest_until(at(2 * HOUR), &|| true).unwrap();
        let mut imported: Vec<ResultRecord> = series("api", 360, 5_000)
            .into_iter()
            .filter(|r| !live.iter().any(|l| l.at_ms() == r.at_ms()))
            .collect();
        imported.extend(series("db", 200, 5 * HOUR));
        (ledger, live, imported)
    }

    fn sorted(records: impl IntoIterator<Item = ResultRecord>) -> Vec<ResultRecord> {
        let mut records: Vec<_> = records.into_iter().collect();
        records.sort_by(|a, b| a.probe.cmp(&b.probe).then(a.at.cmp(&b.at)));
        records
    }

    fn checks_in_hour_zero(ledger: &Ledger) -> u64 {
        let digests = ledger.digests(&name("api"), at(0), at(HOUR)).unwrap();
        digests.iter().map(HourDigest::checks).sum()
    }

    #[test]
    fn an_uncommitted_import_is_swept_at_open_and_a_rerun_succeeds() {
        let dir = tempfile::tempdir().unwrap();
        let (ledger, live, imported) = live_and_import(dir.path());
        stage_and_drop(ledger, &imported, false);

        let ledger = reopen(dir.path());
        assert_eq!(all(&ledger), live, "nothing of the import is visible");
        assert!(ledger.corrections().unwrap().0.is_empty());
        assert!(ledger.store().unwrap().staging.is_empty(), "swept");
        assert!(
            ledger.import_records().unwrap().is_empty(),
            "no record either"
        );

        let corrections = [ImportedCorrection::Exclusion(exclusion())];
        let import = ImportCommit {
            results: &imported,
            corrections: &corrections,
            forget_closed: &[],
            record: None,
        };
        assert_eq!(ledger.import_all(&import).unwrap(), imported.len());
        assert_eq!(all(&ledger), sorted(live.iter().chain(&imported).cloned()));
        assert_eq!(ledger.corrections().unwrap().0, vec![exclusion()]);
        assert!(ledger.store().unwrap().staging.is_empty());
    }

    #[test]
    fn a_committed_import_is_applied_at_open_with_its_digests() {
        let dir = tempfile::tempdir().unwrap();
        let (ledger, live, imported) = live_and_import(dir.path());
        let live_hour_zero = checks_in_hour_zero(&ledger);
        stage_and_drop(ledger, &imported, true);

        let ledger = reopen(dir.path());
        let expected = sorted(live.iter().chain(&imported).cloned());
        assert_eq!(all(&ledger), expected, "all of the import is visible");
        assert_eq!(ledger.corrections().unwrap().0, vec![exclusion()]);
        assert!(ledger.store().unwrap().staging.is_empty(), "settled");
        let imported_hour_zero = imported
            .iter()
            .filter(|r| r.probe == name("api") && r.at < at(HOUR))
            .count() as u64;
        assert!(imported_hour_zero > 0);
        assert_eq!(
            checks_in_hour_zero(&ledger),
            live_hour_zero + imported_hour_zero,
            "the digested hour was digested again with the import"
        );
        // A completed import is refused when run again, as before.
        assert!(matches!(
            ledger.import(&imported).unwrap_err(),
            LedgerError::Duplicate { existing: true, .. }
        ));
        drop(ledger);
        let ledger = reopen(dir.path());
        assert_eq!(all(&ledger), expected, "settling happens once");
        assert_eq!(ledger.corrections().unwrap().0.len(), 1);
        let records = ledger.import_records().unwrap();
        assert_eq!(records.len(), 1, "its record with it, once");
        assert_eq!(records[0].results, imported.len() as u64);
        assert_eq!(records[0].probes, ["api", "db"]);
    }

    #[test]
    fn an_import_applied_but_not_cleared_is_not_applied_twice() {
        let dir = tempfile::tempdir().unwrap();
        let (ledger, live, imported) = live_and_import(dir.path());
        let ledger = {
            let corrections = [ImportedCorrection::Exclusion(exclusion())];
            let import = ImportCommit {
                results: &imported,
                corrections: &corrections,
                forget_closed: &["month/".to_owned()],
                record: None,
            };
            ledger.store_closed("month/2026-11/x", b"figures").unwrap();
            let mut writer = ledger.lock_writer();
            let blocks = ledger.import_blocks(&mut writer, &imported).unwrap();
            ledger.stage(&blocks, &import).unwrap();
            ledger.commit_staged().unwrap();
            ledger.apply_staged().unwrap();
            ledger.flush().unwrap();
            drop(writer);
            ledger
        };
        drop(ledger);
        let ledger = reopen(dir.path());
        assert_eq!(all(&ledger), sorted(live.iter().chain(&imported).cloned()));
        assert_eq!(ledger.corrections().unwrap().0.len(), 1, "one exclusion");
        assert_eq!(ledger.closed("month/2026-11/x").unwrap(), None, "forgotten");
        assert!(ledger.store().unwrap().staging.is_empty());
    }
}
