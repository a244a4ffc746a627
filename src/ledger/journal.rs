//! The journal: one sled value per group commit, so that a result costs an encoding instead of
//! a B-tree update.
//!
//! Without it, every group commit rewrote the open block of every probe it touched: one sled
//! insert per result, the largest single cost of a check (callgrind: ~7,500 instructions of
//! ~25,000 per result at 10,000 probes). Now a commit writes its records once, into the
//! `journal` tree under a sequence number, and the open blocks only in memory. A *checkpoint*
//! stores the open blocks that changed and then drops the journal entries they hold; it runs
//! when the journal is [`LedgerOptions::checkpoint_every`] old or holds
//! [`CHECKPOINT_RECORDS`] records, before pruning, and at a clean stop.
//!
//! A block that is created or sealed is still stored at once, with the commit: a probe's open
//! block then always exists on disk under its start, and only its newest records may live in
//! the journal alone. Readers in this process see those through the writer's in-memory copy
//! (`visit_blocks`); another process never does, because sled lets only one process open the
//! ledger, and opening it replays the journal first.
//!
//! Replay (at open, and after a failed write) seals the open blocks found on disk, then
//! appends every journal record that no stored block holds — a result is identified by
//! (probe, millisecond), as `import` does — and checkpoints. A crash at any point of a
//! checkpoint or replay therefore loses nothing and stores nothing twice.
//!
//! [`LedgerOptions::checkpoint_every`]: super::LedgerOptions::checkpoint_every

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use super::encoding::{
    BlockDecoder, BlockEncoder, BlockKey, RecordRef, get_varint, put_varint, unzigzag, zigzag,
};
use super::{Ledger, LedgerError, ResultRecord, Writer, hex};
use crate::model::ProbeName;

/// A checkpoint runs once the journal holds this many records, whatever its age: it bounds
/// the work of a replay (and the memory it needs) after a crash.
pub const CHECKPOINT_RECORDS: u64 = 131_072;

/// First byte of a journal value written before checksums: read unchecked.
const JOURNAL_ENCODING_V1: u8 = 1;

/// First byte of every journal value this build writes: version 1's records, then a CRC-32
/// of `sequence key ++ everything before it` (see `checksum.rs`).
const JOURNAL_ENCODING_V2: u8 = 2;

/// Journal entries removed per sled batch at a checkpoint.
const REMOVE_BATCH: usize = 512;

/// What the writer knows of the journal.
#[derive(Debug, Default)]
pub(super) struct JournalState {
    /// Sequence number of the next entry.
    next_seq: u64,
    /// Records in entries not yet checkpointed.
    records: u64,
    /// When the oldest entry not yet checkpointed was written.
    since: Option<Instant>,
}

/// Encodes the records of one group commit: per record, its probe id, its time (as the
/// difference from the previous record's, so a few bytes) and a one-record block (the block
/// format, so the record encoding has one implementation).
pub(super) struct EntryEncoder {
    bytes: Vec<u8>,
    records: u64,
    prev_ms: i64,
}

impl EntryEncoder {
    pub(super) fn new(capacity: usize) -> EntryEncoder {
        let mut bytes = Vec::with_capacity(1 + capacity * 16);
        bytes.push(JOURNAL_ENCODING_V1);
        EntryEncoder {
            bytes,
            records: 0,
            prev_ms: 0,
        }
    }

    pub(super) fn push(&mut self, id: u32, record: &RecordRef<'_>) {
        put_varint(&mut self.bytes, u64::from(id));
        put_varint(
            &mut self.bytes,
            zigzag(record.at_ms.wrapping_sub(self.prev_ms)),
        );
        self.prev_ms = record.at_ms;
        let len_at = self.bytes.len();
        self.bytes.push(0); // the block's length, patched below; one-record blocks are short
        let key = BlockKey {
            probe_id: id,
            start_ms: record.at_ms,
        };
        let mut encoder = BlockEncoder::start(key, record.at_ms, &mut self.bytes);
        encoder.push(record, &mut self.bytes);
        let len = self.bytes.len() - len_at - 1;
        match u8::try_from(len) {
            Ok(short) if short < 0x80 => self.bytes[len_at] = short,
            _ => {
                // A long detail: redo the length as a full varint.
                let block = self.bytes.split_off(len_at + 1);
                self.bytes.truncate(len_at);
                put_varint(&mut self.bytes, block.len() as u64);
                self.bytes.extend_from_slice(&block);
            }
        }
        self.records += 1;
    }
}

/// The stored form of an entry under sequence key `key`: version 2, with its checksum.
pub(super) fn checked_entry(key: &[u8], mut bytes: Vec<u8>) -> Vec<u8> {
    if let Some(version) = bytes.first_mut() {
        *version = JOURNAL_ENCODING_V2;
    }
    super::checksum::append_checksum(key, &mut bytes);
    bytes
}

/// Calls `each(probe id, record)` for every record of the journal value stored under `key`.
pub(super) fn decode_entry(
    key: &[u8],
    value: &[u8],
    each: &mut dyn FnMut(u32, RecordRef<'_>) -> Result<(), LedgerError>,
) -> Result<(), String> {
    let value = match value.first() {
        Some(&JOURNAL_ENCODING_V1) => value,
        Some(&JOURNAL_ENCODING_V2) => super::checksum::strip_checksum(key, value)?,
        Some(&other) => return Err(format!("unknown journal encoding version {other}")),
        None => return Err("empty journal entry".to_owned()),
    };
    let mut pos = 1;
    let mut prev_ms = 0i64;
    while pos < value.len() {
        let id = get_varint(value, &mut pos)?;
        let id = u32::try_from(id).map_err(|_| format!("probe id {id} out of range"))?;
        let at_ms = prev_ms.wrapping_add(unzigzag(get_varint(value, &mut pos)?));
        prev_ms = at_ms;
        let len = usize::try_from(get_varint(value, &mut pos)?).map_err(|e| e.to_string())?;
        let block = value
            .get(pos..pos.saturating_add(len))
            .ok_or("record runs past the entry")?;
        pos += len;
        let key = BlockKey {
            probe_id: id,
            start_ms: at_ms,
        };
        let mut records = BlockDecoder::new(key, block)?;
        let record = records.next().ok_or("record block holds no record")??;
        if records.next().is_some() {
            return Err("record block holds more than one record".to_owned());
        }
        each(id, record).map_err(|e| e.to_string())?;
    }
    Ok(())
}

impl Ledger {
    /// Stores one group commit's journal entry (not flushed: the caller flushes).
    pub(super) fn write_journal(
        &self,
        writer: &mut Writer,
        entry: EntryEncoder,
    ) -> Result<(), LedgerError> {
        if entry.records == 0 {
            return Ok(());
        }
        let seq = writer.journal.next_seq;
        // With the replication entry when replication is on (see `replication.rs`).
        self.insert_journal_entry(writer, seq.to_be_bytes(), entry.bytes, entry.records)?;
        writer.journal.next_seq += 1;
        writer.journal.records += entry.records;
        writer.journal.since.get_or_insert_with(Instant::now);
        Ok(())
    }

    /// Whether the journal is old or big enough to checkpoint.
    pub(super) fn checkpoint_due(&self, writer: &Writer) -> bool {
        writer.journal.records >= CHECKPOINT_RECORDS
            || writer
                .journal
                .since
                .is_some_and(|since| since.elapsed() >= self.checkpoint_every)
    }

    /// Stores every open block that changed since it was last stored, then drops the journal
    /// entries: afterwards the blocks alone hold every result. Flushed. A clean stop calls
    /// it so the next start has nothing to replay.
    pub fn checkpoint(&self) -> Result<(), LedgerError> {
        let mut writer = self.lock_writer();
        if writer.stale {
            return self.replay_journal(&mut writer);
        }
        self.checkpoint_locked(&mut writer)
    }

    pub(super) fn checkpoint_locked(&self, writer: &mut Writer) -> Result<(), LedgerError> {
        let stored = self.store_changed_open_blocks();
        if let Err(e) = stored {
            writer.stale = true;
            return Err(e);
        }
        self.flush()?;
        // Only now may the journal go: the blocks holding its records are durable.
        self.clear_journal(writer)
    }

    /// Drops every journal entry (flushed).
    fn clear_journal(&self, writer: &mut Writer) -> Result<(), LedgerError> {
        let keys: Vec<sled::IVec> = self
            .store()?
            .journal
            .iter()
            .keys()
            .collect::<Result<_, _>>()
            .map_err(|e| self.sled_error(e))?;
        for chunk in keys.chunks(REMOVE_BATCH) {
            let mut removals = sled::Batch::default();
            for key in chunk {
                removals.remove(key);
            }
            self.store()?
                .journal
                .apply_batch(removals)
                .map_err(|e| self.sled_error(e))?;
        }
        if !keys.is_empty() {
            self.flush()?;
        }
        writer.journal.records = 0;
        writer.journal.since = None;
        Ok(())
    }

    /// Brings disk and the writer's memory together after a restart or a failed write:
    /// seals the open blocks on disk (the writer forgets its copies), stores the journal's
    /// records that no block holds, and clears the journal.
    pub(super) fn replay_journal(&self, writer: &mut Writer) -> Result<(), LedgerError> {
        self.seal_open_blocks(writer)?;
        writer.journal.next_seq = match self
            .store()?
            .journal
            .last()
            .map_err(|e| self.sled_error(e))?
        {
            Some((key, _)) => self.journal_seq(&key)? + 1,
            None => 0,
        };
        if self.store()?.journal.is_empty() {
            writer.journal.records = 0;
            writer.journal.since = None;
            return Ok(());
        }
        // First pass: the times each probe has in the journal, to find which are stored.
        let mut times: HashMap<u32, Vec<i64>> = HashMap::new();
        self.visit_journal(&mut |id, record| {
            times.entry(id).or_default().push(record.at_ms);
            Ok(())
        })?;
        let names: HashMap<u32, ProbeName> = self
            .all_probes()?
            .into_iter()
            .map(|(n, id)| (id, n))
            .collect();
        let mut stored: HashSet<(u32, i64)> = HashSet::new();
        for (id, list) in &times {
            let name = names.get(id).ok_or_else(|| {
                self.corrupt("journal", format!("a record of unknown probe id {id}"))
            })?;
            let (Some(first), Some(last)) = (list.iter().min(), list.iter().max()) else {
                continue;
            };
            self.scan(*id, name, *first, last + 1, &mut |at_ms, _| {
                stored.insert((*id, at_ms));
                Ok(())
            })?;
        }
        drop(times);
        // Second pass: append the rest, one entry at a time, straight into blocks.
        let mut missing = Vec::new();
        let mut failure = None;
        self.visit_journal(&mut |id, record| {
            if stored.contains(&(id, record.at_ms)) {
                return Ok(());
            }
            match names
                .get(&id)
                .and_then(|n| ResultRecord::from_ref(n, &record))
            {
                Some(full) => missing.push(full),
                None => failure = Some(format!("record of probe id {id} out of range")),
            }
            Ok(())
        })?;
        if let Some(reason) = failure {
            return Err(self.corrupt("journal", reason));
        }
        self.store_directly(writer, &missing)?;
        self.flush()?;
        self.clear_journal(writer)
    }

    /// Calls `each` for every record in the journal, in commit order.
    fn visit_journal(
        &self,
        each: &mut dyn FnMut(u32, RecordRef<'_>) -> Result<(), LedgerError>,
    ) -> Result<(), LedgerError> {
        for item in self.store()?.journal.iter() {
            let (key, value) = item.map_err(|e| self.sled_error(e))?;
            if let Err(reason) = decode_entry(&key, &value, each) {
                // Skipped, not fatal: the ledger still opens, and the seal check names the
                // probes and times whose results this entry alone held.
                self.note_damage(super::Damage {
                    probe: None,
                    from: None,
                    to: None,
                    what: format!("journal entry {} is unreadable: {reason}", hex(&key)),
                });
            }
        }
        Ok(())
    }

    fn journal_seq(&self, key: &[u8]) -> Result<u64, LedgerError> {
        <[u8; 8]>::try_from(key)
            .map(u64::from_be_bytes)
            .map_err(|_| self.corrupt("journal", format!("bad entry key {}", hex(key))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ErrorClass, Outcome};

    fn decode(bytes: &[u8]) -> Vec<(u32, i64, u64, Outcome, Option<ErrorClass>, String)> {
        let mut out = Vec::new();
        decode_entry(b"k", bytes, &mut |id, r| {
            out.push((
                id,
                r.at_ms,
                r.latency_us,
                r.outcome,
                r.error_class,
                r.detail.to_owned(),
            ));
            Ok(())
        })
        .unwrap();
        out
    }

    #[test]
    fn entries_round_trip_short_and_long_details() {
        let long = "x".repeat(300);
        let records = [
            (7, 1_764_000_000_123, 1_234, Outcome::Up, None, ""),
            (
                7,
                1_764_000_000_100, // out of order: each record stands alone
                5,
                Outcome::Down,
                Some(ErrorClass::Connect),
                "connection refused",
            ),
            (
                1_000_000,
                -5,
                u64::MAX,
                Outcome::Degraded,
                None,
                long.as_str(),
            ),
        ];
        let mut entry = EntryEncoder::new(records.len());
        for (id, at_ms, latency_us, outcome, error_class, detail) in records {
            entry.push(
                id,
                &RecordRef {
                    at_ms,
                    latency_us,
                    outcome,
                    error_class,
                    detail,
                },
            );
        }
        assert_eq!(entry.records, 3);
        let mut steady = EntryEncoder::new(2);
        for at_ms in [1_764_000_000_000, 1_764_000_000_020] {
            let record = RecordRef {
                at_ms,
                latency_us: 900,
                outcome: Outcome::Up,
                error_class: None,
                detail: "",
            };
            steady.push(12, &record);
        }
        assert!(
            steady.bytes.len() - 1 <= 16 + 8,
            "a later record's time costs a byte or two, not seven: {} bytes",
            steady.bytes.len()
        );
        let decoded = decode(&entry.bytes);
        let expected: Vec<_> = records
            .iter()
            .map(|(id, at, lat, o, c, d)| (*id, *at, *lat, *o, *c, (*d).to_owned()))
            .collect();
        assert_eq!(decoded, expected);
    }

    #[test]
    fn damaged_entries_are_errors_not_panics() {
        let mut entry = EntryEncoder::new(1);
        entry.push(
            3,
            &RecordRef {
                at_ms: 1_764_000_000_000,
                latency_us: 900,
                outcome: Outcome::Up,
                error_class: None,
                detail: "fine",
            },
        );
        let good = entry.bytes;
        for cut in 0..good.len() {
            let _ = decode_entry(b"k", &good[..cut], &mut |_, _| Ok(()));
        }
        let mut bad = good.clone();
        bad[0] = 9;
        assert!(decode_entry(b"k", &bad, &mut |_, _| Ok(())).is_err());
        assert!(decode_entry(b"k", &[], &mut |_, _| Ok(())).is_err());
        // Stored with its checksum: any changed byte or a wrong key is an error.
        let checked = checked_entry(b"k", good.clone());
        assert!(decode_entry(b"k", &checked, &mut |_, _| Ok(())).is_ok());
        assert!(decode_entry(b"j", &checked, &mut |_, _| Ok(())).is_err());
        for i in 0..checked.len() {
            let mut flipped = checked.clone();
            flipped[i] ^= 0x10;
            assert!(
                decode_entry(b"k", &flipped, &mut |_, _| Ok(())).is_err(),
                "byte {i}"
            );
        }
    }
}
