//! Result blocks in the `results` tree: appending, sealing, importing, scanning, pruning.
//!
//! Each probe has at most one *open* block, stored under `0xFFFFFFFF ++ probe_id` (so all open
//! blocks sit together at the end of the tree) with value `start (ordered ms) ++ block`. Each group
//! commit stores the open blocks it touched whole, in one batch. When it is full, spans too
//! long, or a result arrives out of order, it is *sealed*: moved, in one atomic batch, to
//! `probe_id ++ start` — a key that is never written again.
//!
//! Why not append in place under `probe_id ++ start`: sled writes the whole new value on every
//! merge and rewrites a whole leaf (up to 16 keys) every 10 changes. In place, a probe's
//! current block shares its leaf with that probe's older, full blocks, and every consolidation
//! rewrites them again. Keeping the open blocks in their own leaves means a leaf rewrite only
//! copies small, still-growing blocks; measured with `cargo bench --bench ledger`, this halves
//! the bytes on disk per result.

use std::collections::{HashMap, HashSet};

use jiff::Timestamp;

use super::encoding::{
    BlockDecoder, BlockEncoder, BlockKey, MAX_BLOCK_SPAN_MS, RecordRef, checked_block, ms_ceil,
    ms_from_ordered, ordered_ms,
};
use super::journal::EntryEncoder;
use super::{Ledger, LedgerError, LedgerStats, ResultRecord, Writer, describe_ms, hex};
use crate::model::ProbeName;
use rustc_hash::{FxHashMap, FxHashSet};

/// First four bytes of every open-block key; probe ids stay below it.
const OPEN_PREFIX: [u8; 4] = [0xff; 4];

/// Open blocks sealed per sled batch when sealing them all, and writes per batch otherwise:
/// one sled batch of tens of thousands of writes costs tens of MB of memory that the process
/// then keeps.
const SEAL_BATCH_BLOCKS: usize = 256;
pub(super) const WRITE_BATCH_OPS: usize = 512;

/// The largest probe id: `u32::MAX` would make a sealed block key look like an open one.
pub(super) const MAX_PROBE_ID: u32 = u32::MAX - 1;

/// A sealed block an import made: its stored key and bytes.
pub(super) type NewBlock = ([u8; 12], Vec<u8>);

/// What [`Ledger::visit_blocks`] calls: `(key, block bytes, is_open)`, returning whether to go
/// on.
type BlockVisitor<'a> = dyn FnMut(BlockKey, &[u8], bool) -> Result<bool, LedgerError> + 'a;

/// The writer's copy of a probe's open block: the encoder state to append without reading,
/// and the bytes to seal it without reading. Readers of this process use the bytes too while
/// they are newer than the stored copy (`changed`): the newest records may be in the
/// journal alone.
#[derive(Debug)]
pub(super) struct OpenBlock {
    encoder: BlockEncoder,
    pub(super) bytes: Vec<u8>,
    /// Holds records that the stored copy lacks.
    pub(super) changed: bool,
}

impl OpenBlock {
    fn start(&self) -> i64 {
        self.encoder.key().start_ms
    }

    /// The value stored under the probe's open key: the start and the checksummed block.
    fn stored_value(&self) -> Vec<u8> {
        open_value(
            self.start(),
            &checked_block(self.encoder.key(), &self.bytes),
        )
    }
}

/// What one write did to the open blocks, and so what it must store.
#[derive(Default)]
struct BlockChanges {
    /// Probes whose open block was created (and perhaps sealed) by this write.
    renewed: FxHashSet<u32>,
    /// Blocks sealed by this write, per probe, to store with the probe's new open block.
    sealed: FxHashMap<u32, Vec<(BlockKey, Vec<u8>)>>,
    /// Keys of the blocks this write created, so no two get the same key.
    created: FxHashSet<BlockKey>,
}

pub(super) fn open_key(id: u32) -> [u8; 8] {
    let mut key = [0u8; 8];
    key[..4].copy_from_slice(&OPEN_PREFIX);
    key[4..].copy_from_slice(&id.to_be_bytes());
    key
}

fn parse_open_key(key: &[u8]) -> Option<u32> {
    let id: [u8; 4] = key.strip_prefix(&OPEN_PREFIX)?.try_into().ok()?;
    Some(u32::from_be_bytes(id))
}

fn open_value(start_ms: i64, block: &[u8]) -> Vec<u8> {
    let mut value = Vec::with_capacity(8 + block.len());
    value.extend_from_slice(&ordered_ms(start_ms));
    value.extend_from_slice(block);
    value
}

fn split_open_value(value: &[u8]) -> Option<(i64, &[u8])> {
    let start: [u8; 8] = value.get(..8)?.try_into().ok()?;
    Some((ms_from_ordered(start), &value[8..]))
}

impl Ledger {
    /// Appends results and flushes: one call is one group commit. When it returns `Ok`,
    /// every result in `batch` is durable. Results of a probe should arrive in time order; one
    /// older than the probe's previous result is kept too, in a new block. On `Err` some of
    /// the batch may be stored; later calls still work (they start new blocks).
    ///
    /// The records go to the journal (one sled value) and to the writer's open blocks in
    /// memory; only blocks created or sealed by this call are stored now. See `journal.rs`.
    ///
    /// After a failed append (or a [`Ledger::recover`]), the next append first drops the
    /// results of its batch that are stored already — a result is identified by (probe,
    /// millisecond), as `import` does — so retrying a failed batch stores each result once.
    pub fn append(&self, batch: &[ResultRecord]) -> Result<(), LedgerError> {
        let mut writer = self.lock_writer();
        let outcome = self.append_unsure(&mut writer, batch);
        match outcome {
            Ok(()) => writer.unsure = false,
            Err(_) => {
                self.tally_unsure(&mut writer);
                // The writer's copies may be ahead of what reached sled: the next write
                // starts over from disk. They stay for readers meanwhile — they hold results
                // written earlier that only the journal has — with perhaps some of this
                // batch, which its caller writes again (see `Ledger::recover`).
                writer.stale = true;
                writer.unsure = true;
            }
        }
        outcome
    }

    /// Appends the results of `batch` not stored yet — a result is identified by (probe,
    /// millisecond), as `import` does — and returns them; flushed like [`Ledger::append`].
    /// A coordinator takes results from a transport that may deliver one twice (a message
    /// redelivered after a crash, an agent replaying after a lost acknowledgement): stored
    /// once all the same.
    pub fn append_new(&self, batch: &[ResultRecord]) -> Result<Vec<ResultRecord>, LedgerError> {
        let mut writer = self.lock_writer();
        if writer.stale {
            self.replay_journal(&mut writer)?;
        }
        let fresh = match self.unstored(batch)? {
            None => batch.to_vec(),
            Some(fresh) => fresh,
        };
        // Twice in one batch counts once too.
        let mut seen = HashSet::new();
        let fresh: Vec<ResultRecord> = fresh
            .into_iter()
            .filter(|r| seen.insert((r.probe.clone(), r.at_ms())))
            .collect();
        if fresh.is_empty() {
            return Ok(fresh);
        }
        match self.append_locked(&mut writer, &fresh) {
            Ok(()) => Ok(fresh),
            Err(e) => {
                self.tally_unsure(&mut writer);
                writer.stale = true;
                writer.unsure = true;
                Err(e)
            }
        }
    }

    /// Appends `batch`, or only its results not stored yet when an earlier write failed.
    fn append_unsure(
        &self,
        writer: &mut Writer,
        batch: &[ResultRecord],
    ) -> Result<(), LedgerError> {
        if !writer.unsure {
            return self.append_locked(writer, batch);
        }
        if writer.stale {
            // The journal's records go to their blocks first, where the check below sees them.
            self.replay_journal(writer)?;
        }
        match self.unstored(batch)? {
            None => self.append_locked(writer, batch),
            Some(fresh) => self.append_locked(writer, &fresh),
        }
    }

    /// The results of `batch` not stored yet, or `None` when that is all of them.
    fn unstored(&self, batch: &[ResultRecord]) -> Result<Option<Vec<ResultRecord>>, LedgerError> {
        let mut spans: HashMap<&ProbeName, (i64, i64)> = HashMap::new();
        for record in batch {
            let at_ms = record.at_ms();
            let span = spans.entry(&record.probe).or_insert((at_ms, at_ms));
            *span = (span.0.min(at_ms), span.1.max(at_ms));
        }
        let mut stored: HashSet<(&ProbeName, i64)> = HashSet::new();
        for (probe, (first, last)) in spans {
            let Some(id) = self.probe_id(probe)? else {
                continue;
            };
            self.scan(id, probe, first, last.saturating_add(1), &mut |at_ms, _| {
                stored.insert((probe, at_ms));
                Ok(())
            })?;
        }
        if stored.is_empty() {
            return Ok(None);
        }
        Ok(Some(
            batch
                .iter()
                .filter(|record| !stored.contains(&(&record.probe, record.at_ms())))
                .cloned()
                .collect(),
        ))
    }

    fn append_locked(
        &self,
        writer: &mut Writer,
        batch: &[ResultRecord],
    ) -> Result<(), LedgerError> {
        if writer.stale {
            self.replay_journal(writer)?;
        }
        let mut entry = EntryEncoder::new(batch.len());
        let mut changes = BlockChanges::default();
        {
            // Held until the sealed blocks are stored: a reader then finds a sealed block's
            // records in memory or on disk, never in between.
            let mut open = self.open_blocks_mut();
            for record in batch {
                let id = self.probe_id_for_write(writer, &record.probe)?;
                let record = record.as_ref();
                entry.push(id, &record);
                self.push_open(&mut open, id, &record, &mut changes)?;
            }
            let renewed = std::mem::take(&mut changes.renewed);
            self.store_changes(&mut open, changes, &renewed)?;
        }
        self.write_journal(writer, entry)?;
        self.redigest_behind(writer, batch)?;
        self.bump_commit(writer)?;
        self.flush()?;
        self.tally_durable(writer, batch);
        self.write_seal(writer);
        if self.checkpoint_due(writer) && self.checkpoint_locked(writer).is_err() {
            // The results are durable in the journal all the same: the next write replays
            // it and so checkpoints again. The open blocks stay for readers: they hold
            // exactly what was written.
            writer.stale = true;
        }
        Ok(())
    }

    /// Appends results straight into stored blocks, without the journal: what a replay does
    /// with the journal's records. Not flushed.
    pub(super) fn store_directly(
        &self,
        writer: &mut Writer,
        batch: &[ResultRecord],
    ) -> Result<(), LedgerError> {
        let mut changes = BlockChanges::default();
        let mut touched = FxHashSet::default();
        let mut open = self.open_blocks_mut();
        for record in batch {
            let id = self.probe_id_for_write(writer, &record.probe)?;
            self.push_open(&mut open, id, &record.as_ref(), &mut changes)?;
            touched.insert(id);
        }
        self.store_changes(&mut open, changes, &touched)
    }

    /// Appends `record` to probe `id`'s open block in memory, sealing it first when it cannot
    /// take the record, and notes what must be stored.
    fn push_open(
        &self,
        open: &mut FxHashMap<u32, OpenBlock>,
        id: u32,
        record: &RecordRef<'_>,
        changes: &mut BlockChanges,
    ) -> Result<(), LedgerError> {
        let continues = open
            .get(&id)
            .is_some_and(|block| block.encoder.accepts(record.at_ms, self.block_records));
        if !continues {
            if let Some(full) = open.remove(&id) {
                let key = full.encoder.key();
                changes.created.insert(key);
                changes
                    .sealed
                    .entry(id)
                    .or_default()
                    .push((key, full.bytes));
            }
            let key = self.free_block_key(id, record.at_ms, &changes.created, None)?;
            changes.created.insert(key);
            changes.renewed.insert(id);
            let mut bytes = Vec::with_capacity(self.block_records as usize * 4 + 8);
            let encoder = BlockEncoder::start(key, record.at_ms, &mut bytes);
            open.insert(
                id,
                OpenBlock {
                    encoder,
                    bytes,
                    changed: false,
                },
            );
        }
        if let Some(block) = open.get_mut(&id) {
            block.encoder.push(record, &mut block.bytes);
            block.changed = true;
        }
        Ok(())
    }

    /// Stores the open blocks of probes `ids` (which must include every probe that sealed a
    /// block in [`Self::push_open`]) with the blocks they sealed, each probe's in one atomic
    /// batch: a crash must not leave a sealed copy that disagrees with the open block it came
    /// from.
    fn store_changes(
        &self,
        open: &mut FxHashMap<u32, OpenBlock>,
        mut changes: BlockChanges,
        ids: &FxHashSet<u32>,
    ) -> Result<(), LedgerError> {
        let results = self.store()?.results.clone();
        let mut writes = sled::Batch::default();
        // Marked unchanged only once stored: until then readers must use the writer's copy.
        let mut stored = Vec::new();
        let mut ops = 0usize;
        for id in ids {
            let Some(block) = open.get(id) else {
                continue;
            };
            let value = block.stored_value();
            for (key, block) in changes.sealed.remove(id).unwrap_or_default() {
                writes.insert(&key.to_bytes()[..], checked_block(key, &block));
                ops += 1;
            }
            writes.insert(&open_key(*id)[..], value);
            stored.push(*id);
            ops += 1;
            if ops >= WRITE_BATCH_OPS {
                let full = std::mem::take(&mut writes);
                results.apply_batch(full).map_err(|e| self.sled_error(e))?;
                mark_stored(open, &mut stored);
                ops = 0;
            }
        }
        if ops > 0 {
            results
                .apply_batch(writes)
                .map_err(|e| self.sled_error(e))?;
            mark_stored(open, &mut stored);
        }
        Ok(())
    }

    /// Stores every open block that changed since it was last stored (not flushed): the
    /// first half of a checkpoint.
    pub(super) fn store_changed_open_blocks(&self) -> Result<(), LedgerError> {
        let changed: Vec<u32> = self
            .open_blocks()
            .iter()
            .filter(|(_, block)| block.changed)
            .map(|(id, _)| *id)
            .collect();
        for chunk in changed.chunks(WRITE_BATCH_OPS) {
            let mut writes = sled::Batch::default();
            {
                let open = self.open_blocks();
                for id in chunk {
                    if let Some(block) = open.get(id) {
                        writes.insert(&open_key(*id)[..], block.stored_value());
                    }
                }
            }
            self.store()?
                .results
                .apply_batch(writes)
                .map_err(|e| self.sled_error(e))?;
            let mut open = self.open_blocks_mut();
            for id in chunk {
                if let Some(block) = open.get_mut(id) {
                    block.changed = false;
                }
            }
        }
        Ok(())
    }

    /// Seals every open block found on disk (at open, and after a failed write), so the
    /// writer's memory and the tree agree again: new results then go to new blocks.
    pub(super) fn seal_open_blocks(&self, writer: &mut Writer) -> Result<(), LedgerError> {
        let open: Vec<(sled::IVec, sled::IVec)> = self
            .store()?
            .results
            .scan_prefix(OPEN_PREFIX)
            .collect::<Result<_, _>>()
            .map_err(|e| self.sled_error(e))?;
        // Moderate batches (see SEAL_BATCH_BLOCKS); each block still moves atomically.
        for chunk in open.chunks(SEAL_BATCH_BLOCKS) {
            let mut writes = sled::Batch::default();
            for (key, value) in chunk {
                let context = || format!("open block (key {})", hex(key));
                let id = parse_open_key(key).ok_or_else(|| self.corrupt(context(), "bad key"))?;
                let (start_ms, block) = split_open_value(value)
                    .ok_or_else(|| self.corrupt(context(), "no start time"))?;
                let sealed = BlockKey {
                    probe_id: id,
                    start_ms,
                }
                .to_bytes();
                match self
                    .store()?
                    .results
                    .get(sealed)
                    .map_err(|e| self.sled_error(e))?
                {
                    None => writes.insert(&sealed[..], block),
                    Some(existing) if existing == block => {}
                    Some(_) => {
                        return Err(self.corrupt(
                            context(),
                            format!("a different sealed block has the same key {}", hex(&sealed)),
                        ));
                    }
                }
                writes.remove(key);
            }
            self.store()?
                .results
                .apply_batch(writes)
                .map_err(|e| self.sled_error(e))?;
        }
        if !open.is_empty() {
            self.flush()?;
        }
        self.open_blocks_mut().clear();
        writer.stale = false;
        Ok(())
    }

    /// A key for a new block of probe `id` whose first record is at `at_ms`: normally that
    /// instant, or a few ms earlier if a block already starts there (a rare clash after
    /// out-of-order results or imports), so that no two blocks ever share a key.
    fn free_block_key(
        &self,
        id: u32,
        at_ms: i64,
        created: &FxHashSet<BlockKey>,
        reserved_start: Option<i64>,
    ) -> Result<BlockKey, LedgerError> {
        for back in 0..=1_000 {
            let key = BlockKey {
                probe_id: id,
                start_ms: at_ms - back,
            };
            if created.contains(&key) || reserved_start == Some(key.start_ms) {
                continue;
            }
            let taken = self
                .store()?
                .results
                .contains_key(key.to_bytes())
                .map_err(|e| self.sled_error(e))?;
            if !taken {
                return Ok(key);
            }
        }
        Err(LedgerError::Storage {
            path: self.path.clone(),
            message: format!(
                "no free block key near {} for probe id {id}: more than 1,000 blocks start in one second",
                describe_ms(at_ms)
            ),
            io: false,
        })
    }

    /// Encodes results for an import (see `staging.rs`) into new sealed blocks, keyed so that
    /// no stored block, no open block and no other new block has the same key. The whole input
    /// is checked first: if any record repeats a stored (probe, millisecond) or another input
    /// record, nothing is returned and [`LedgerError::Duplicate`] names it. Writes only the
    /// probe index (a new probe's id, harmless if the import goes no further).
    pub(super) fn import_blocks(
        &self,
        writer: &mut Writer,
        records: &[ResultRecord],
    ) -> Result<Vec<NewBlock>, LedgerError> {
        let mut by_probe: HashMap<&ProbeName, Vec<&ResultRecord>> = HashMap::new();
        for record in records {
            by_probe.entry(&record.probe).or_default().push(record);
        }
        let mut probes: Vec<_> = by_probe.into_iter().collect();
        probes.sort_by(|a, b| a.0.cmp(b.0));
        for (probe, list) in &mut probes {
            list.sort_by_key(|r| r.at_ms());
            if let Some(pair) = list.windows(2).find(|w| w[0].at_ms() == w[1].at_ms()) {
                return Err(self.duplicate(probe, pair[0].at_ms(), false));
            }
            self.refuse_existing(probe, list)?;
        }

        let mut blocks: Vec<NewBlock> = Vec::new();
        let mut created = FxHashSet::default();
        for (probe, list) in &probes {
            let id = self.probe_id_for_write(writer, probe)?;
            let reserved = self.open_blocks().get(&id).map(OpenBlock::start);
            let mut block: Option<(BlockEncoder, Vec<u8>)> = None;
            for record in list {
                let record = record.as_ref();
                if block
                    .as_ref()
                    .is_some_and(|(encoder, _)| !encoder.accepts(record.at_ms, self.block_records))
                    && let Some((encoder, bytes)) = block.take()
                {
                    blocks.push((
                        encoder.key().to_bytes(),
                        checked_block(encoder.key(), &bytes),
                    ));
                }
                let (encoder, bytes) = match &mut block {
                    Some(open) => open,
                    None => {
                        let key = self.free_block_key(id, record.at_ms, &created, reserved)?;
                        created.insert(key);
                        let mut bytes = Vec::new();
                        let encoder = BlockEncoder::start(key, record.at_ms, &mut bytes);
                        block.insert((encoder, bytes))
                    }
                };
                encoder.push(&record, bytes);
            }
            if let Some((encoder, bytes)) = block {
                blocks.push((
                    encoder.key().to_bytes(),
                    checked_block(encoder.key(), &bytes),
                ));
            }
        }
        Ok(blocks)
    }

    /// Fails with `Duplicate` if a stored result of `probe` has the time of one in `sorted`.
    fn refuse_existing(
        &self,
        probe: &ProbeName,
        sorted: &[&ResultRecord],
    ) -> Result<(), LedgerError> {
        let Some(id) = self.probe_id(probe)? else {
            return Ok(());
        };
        let (Some(first), Some(last)) = (sorted.first(), sorted.last()) else {
            return Ok(());
        };
        let times: Vec<i64> = sorted.iter().map(|r| r.at_ms()).collect();
        self.scan(
            id,
            probe,
            first.at_ms(),
            last.at_ms() + 1,
            &mut |at_ms, _| {
                if times.binary_search(&at_ms).is_ok() {
                    Err(self.duplicate(probe, at_ms, true))
                } else {
                    Ok(())
                }
            },
        )
    }

    /// The results of `probe` with `from <= at < to`, oldest first. Reads only that probe's
    /// blocks that can hold such results.
    pub fn results(
        &self,
        probe: &ProbeName,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<ResultRecord>, LedgerError> {
        let mut found = Vec::new();
        if let Some(id) = self.probe_id(probe)? {
            self.scan(id, probe, ms_ceil(from), ms_ceil(to), &mut |_, record| {
                found.push(record);
                Ok(())
            })?;
        }
        Ok(found)
    }

    /// When probe `id`'s oldest stored result started, at the latest (its first block's
    /// start).
    pub(super) fn first_result_ms(&self, id: u32) -> Result<Option<i64>, LedgerError> {
        let mut first = None;
        self.visit_blocks(id, i64::MIN, i64::MAX, false, &mut |key, _, _| {
            first = Some(key.start_ms);
            Ok(false)
        })?;
        Ok(first)
    }

    /// Where probe `id`'s first block that can hold results at or after `from_ms` starts
    /// (it may start earlier), or `None` if no block can.
    pub(super) fn next_block_start(
        &self,
        id: u32,
        from_ms: i64,
    ) -> Result<Option<i64>, LedgerError> {
        let mut next = None;
        let lo = from_ms.saturating_sub(MAX_BLOCK_SPAN_MS);
        // A block starting before `from_ms` may reach past it: then nothing can be skipped.
        self.visit_blocks(id, lo, i64::MAX, false, &mut |key, _, _| {
            next = Some(key.start_ms.max(from_ms));
            Ok(false)
        })?;
        Ok(next)
    }

    /// The newest `n` results of `probe`, oldest first: what a status page or `history`
    /// shows without knowing the probe's interval.
    pub fn last_results(
        &self,
        probe: &ProbeName,
        n: usize,
    ) -> Result<Vec<ResultRecord>, LedgerError> {
        let Some(id) = self.probe_id(probe)? else {
            return Ok(Vec::new());
        };
        if n == 0 {
            return Ok(Vec::new());
        }
        // (time, block start, position): the order a forward scan yields equal times in.
        let mut found: Vec<(i64, i64, u32, ResultRecord)> = Vec::new();
        let mut threshold = i64::MIN;
        self.visit_blocks(id, i64::MIN, i64::MAX, true, &mut |key, block, _| {
            // A block holds records up to start + span: once that is older than the n-th
            // newest record found, no older block can contribute.
            if found.len() >= n && key.start_ms.saturating_add(MAX_BLOCK_SPAN_MS) < threshold {
                return Ok(false);
            }
            let mut position = 0;
            self.decode_block(probe, key, block, &mut |at_ms, record| {
                found.push((at_ms, key.start_ms, position, record));
                position += 1;
                Ok(())
            })?;
            if found.len() >= n {
                let mut times: Vec<i64> = found.iter().map(|f| f.0).collect();
                let (_, nth, _) = times.select_nth_unstable_by(n - 1, |a, b| b.cmp(a));
                threshold = *nth;
            }
            Ok(true)
        })?;
        found.sort_by_key(|f| (f.0, f.1, f.2));
        let skip = found.len().saturating_sub(n);
        Ok(found.into_iter().skip(skip).map(|f| f.3).collect())
    }

    /// Every probe with at least one stored result, by name.
    pub fn probes(&self) -> Result<Vec<ProbeName>, LedgerError> {
        let mut names = Vec::new();
        for (probe, id) in self.all_probes()? {
            let has_open = self
                .store()?
                .results
                .contains_key(open_key(id))
                .map_err(|e| self.sled_error(e))?;
            let has_sealed = || {
                self.store()?
                    .results
                    .scan_prefix(id.to_be_bytes())
                    .next()
                    .transpose()
                    .map(|first| first.is_some())
                    .map_err(|e| self.sled_error(e))
            };
            if has_open || has_sealed()? {
                names.push(probe);
            }
        }
        Ok(names)
    }

    /// Streams results to `out` — ordered by probe name, then time — without holding them
    /// all in memory: the backup and migration path. `probe` restricts to one probe,
    /// `from`/`to` to `from <= at < to`. Returns how many records were passed to `out`;
    /// stops at the first error `out` returns.
    pub fn export(
        &self,
        probe: Option<&ProbeName>,
        from: Option<Timestamp>,
        to: Option<Timestamp>,
        out: &mut dyn FnMut(&ResultRecord) -> Result<(), LedgerError>,
    ) -> Result<u64, LedgerError> {
        let from_ms = from.map_or(i64::MIN, ms_ceil);
        let to_ms = to.map_or(i64::MAX, ms_ceil);
        let selected = match probe {
            Some(probe) => match self.probe_id(probe)? {
                Some(id) => vec![(probe.clone(), id)],
                None => Vec::new(),
            },
            None => self.all_probes()?,
        };
        let mut count = 0u64;
        for (name, id) in selected {
            self.scan(id, &name, from_ms, to_ms, &mut |_, record| {
                count += 1;
                out(&record)
            })?;
        }
        Ok(count)
    }

    /// Drops raw results older than `cutoff`, a whole block at a time: a block goes only when
    /// its newest result is older, so a few results before `cutoff` may remain. Rollups and
    /// markers are kept. Flushed; returns how many results were dropped.
    pub fn prune_before(&self, cutoff: Timestamp) -> Result<u64, LedgerError> {
        let cutoff_ms = ms_ceil(cutoff);
        let mut writer = self.lock_writer();
        // Pruned results must not come back from the journal in a replay.
        if writer.stale {
            self.replay_journal(&mut writer)?;
        } else {
            self.checkpoint_locked(&mut writer)?;
        }
        let mut doomed: Vec<Vec<u8>> = Vec::new();
        let mut dropped = 0u64;
        let mut closed = Vec::new();
        let mut dropped_by_probe: Vec<(u32, u64)> = Vec::new();
        for (probe, id) in self.all_probes()? {
            let before = dropped;
            self.visit_blocks(id, i64::MIN, cutoff_ms, false, &mut |key, block, open| {
                let (mut count, mut newest) = (0u64, i64::MIN);
                self.decode_block_raw(&probe, key, block, &mut |record| {
                    count += 1;
                    newest = newest.max(record.at_ms);
                })?;
                if newest < cutoff_ms {
                    dropped += count;
                    if open {
                        doomed.push(open_key(id).to_vec());
                        closed.push(id);
                    } else {
                        doomed.push(key.to_bytes().to_vec());
                    }
                }
                Ok(true)
            })?;
            dropped_by_probe.push((id, dropped - before));
        }
        let results = self.store()?.results.clone();
        let removed = doomed.chunks(WRITE_BATCH_OPS).try_for_each(|chunk| {
            let mut writes = sled::Batch::default();
            for key in chunk {
                writes.remove(&key[..]);
            }
            results.apply_batch(writes)
        });
        drop(results);
        if let Err(e) = removed {
            // Some open blocks may be gone, others not: re-read them before the next write.
            self.open_blocks_mut().clear();
            writer.stale = true;
            self.tally_unsure(&mut writer);
            return Err(self.sled_error(e));
        }
        for id in closed {
            // Its block is gone: the next result starts a new one.
            self.open_blocks_mut().remove(&id);
        }
        let flushed = self.bump_commit(&mut writer).and_then(|()| self.flush());
        if let Err(e) = flushed {
            self.tally_unsure(&mut writer);
            return Err(e);
        }
        for (id, count) in dropped_by_probe {
            self.tally_pruned(&mut writer, id, count);
        }
        self.write_seal(&mut writer);
        Ok(dropped)
    }

    /// Counts without decoding: probes, blocks and the bytes their values hold (the payload
    /// before sled's own overhead), for `/metrics` and for tuning the block size.
    pub fn stats(&self) -> Result<LedgerStats, LedgerError> {
        let mut stats = LedgerStats {
            probes: self.all_probes()?.len() as u64,
            rollups: self.store()?.rollups.len() as u64,
            ..LedgerStats::default()
        };
        for item in self.store()?.results.iter() {
            let (key, value) = item.map_err(|e| self.sled_error(e))?;
            stats.blocks += 1;
            stats.block_bytes += value.len() as u64;
            if parse_open_key(&key).is_some() {
                stats.open_blocks += 1;
                stats.block_bytes = stats.block_bytes.saturating_sub(8);
            }
        }
        Ok(stats)
    }

    /// Decodes every stored block and rollup, returning the number of results: a full
    /// consistency check to run after an abrupt stop or before trusting a backup.
    pub fn verify(&self) -> Result<u64, LedgerError> {
        let mut total = 0u64;
        let probes = self.all_probes()?;
        for (probe, id) in &probes {
            self.visit_blocks(*id, i64::MIN, i64::MAX, false, &mut |key, block, _| {
                self.decode_block_raw(probe, key, block, &mut |_| total += 1)?;
                Ok(true)
            })?;
        }
        // Blocks of ids without a name would be invisible to every query: report them.
        let known: HashSet<u32> = probes.iter().map(|(_, id)| *id).collect();
        for item in self.store()?.results.iter() {
            let (key, _) = item.map_err(|e| self.sled_error(e))?;
            let id = parse_open_key(&key).or_else(|| BlockKey::parse(&key).map(|k| k.probe_id));
            if !id.is_some_and(|id| known.contains(&id)) {
                return Err(self.corrupt("results", format!("block {} has no probe", hex(&key))));
            }
        }
        for item in self.store()?.rollups.iter() {
            let (key, value) = item.map_err(|e| self.sled_error(e))?;
            super::Rollup::decode(&value)
                .map_err(|reason| self.corrupt(format!("rollup (key {})", hex(&key)), reason))?;
        }
        Ok(total)
    }

    /// Calls `each(key, block, is_open)` for probe `id`'s blocks starting in `[lo, hi)` —
    /// sealed ones and the open one — in start order (newest first when `reverse`), until it
    /// returns `false`.
    ///
    /// The open block is read first: if the writer seals it while the scan runs, the sealed
    /// copy (a superset) is met under the same start and replaces it, so no record is lost
    /// or seen twice.
    pub(super) fn visit_blocks(
        &self,
        id: u32,
        lo: i64,
        hi: i64,
        reverse: bool,
        each: &mut BlockVisitor<'_>,
    ) -> Result<(), LedgerError> {
        // The writer's copy first: once it is stored, the stored copy is as new.
        let newer = self
            .open_blocks()
            .get(&id)
            .filter(|block| block.changed)
            .map(|block| sled::IVec::from(open_value(block.start(), &block.bytes)));
        let open_bytes = match newer {
            Some(bytes) => Some(bytes),
            None => self
                .store()?
                .results
                .get(open_key(id))
                .map_err(|e| self.sled_error(e))?,
        };
        let mut open = match &open_bytes {
            None => None,
            Some(value) => {
                let (start_ms, block) = split_open_value(value).ok_or_else(|| {
                    self.corrupt(format!("open block of probe id {id}"), "no start time")
                })?;
                (lo..hi).contains(&start_ms).then_some((
                    BlockKey {
                        probe_id: id,
                        start_ms,
                    },
                    block,
                ))
            }
        };
        let lo_key = BlockKey {
            probe_id: id,
            start_ms: lo,
        };
        let hi_key = BlockKey {
            probe_id: id,
            start_ms: hi,
        };
        let range = self
            .store()?
            .results
            .range(lo_key.to_bytes()..hi_key.to_bytes());
        let sealed: Box<dyn Iterator<Item = sled::Result<(sled::IVec, sled::IVec)>>> = if reverse {
            Box::new(range.rev())
        } else {
            Box::new(range)
        };
        for item in sealed {
            let (key, value) = item.map_err(|e| self.sled_error(e))?;
            let key = self.block_key(&key)?;
            if let Some((open_key, block)) = open {
                if open_key == key {
                    open = None; // sealed during this scan
                } else if (open_key.start_ms < key.start_ms) != reverse {
                    open = None;
                    if !each(open_key, block, true)? {
                        return Ok(());
                    }
                }
            }
            if !each(key, &value, false)? {
                return Ok(());
            }
        }
        if let Some((key, block)) = open {
            each(key, block, true)?;
        }
        Ok(())
    }

    /// Streams probe `id`'s records with `from_ms <= at < to_ms` to `out` in time order.
    ///
    /// Blocks normally follow each other, but imports and out-of-order results can make them
    /// overlap, so records are held back until no later block can precede them: a block
    /// starting at `s` holds nothing older than `s`.
    pub(super) fn scan(
        &self,
        id: u32,
        probe: &ProbeName,
        from_ms: i64,
        to_ms: i64,
        out: &mut dyn FnMut(i64, ResultRecord) -> Result<(), LedgerError>,
    ) -> Result<(), LedgerError> {
        if from_ms >= to_ms {
            return Ok(());
        }
        let mut pending: Vec<(i64, ResultRecord)> = Vec::new();
        let lo = from_ms.saturating_sub(MAX_BLOCK_SPAN_MS);
        self.visit_blocks(id, lo, to_ms, false, &mut |key, block, _| {
            release(&mut pending, key.start_ms, out)?;
            self.decode_block(probe, key, block, &mut |at_ms, record| {
                if (from_ms..to_ms).contains(&at_ms) {
                    pending.push((at_ms, record));
                }
                Ok(())
            })?;
            Ok(true)
        })?;
        release(&mut pending, i64::MAX, out)
    }

    /// Decodes one block into records, or `Corrupt` naming the probe and key.
    pub(super) fn decode_block(
        &self,
        probe: &ProbeName,
        key: BlockKey,
        block: &[u8],
        each: &mut dyn FnMut(i64, ResultRecord) -> Result<(), LedgerError>,
    ) -> Result<(), LedgerError> {
        let decoder = BlockDecoder::new(key, block)
            .map_err(|reason| self.block_corrupt(probe, key, reason))?;
        for record in decoder {
            let record = record.map_err(|reason| self.block_corrupt(probe, key, reason))?;
            let Some(full) = ResultRecord::from_ref(probe, &record) else {
                return Err(self.block_corrupt(probe, key, "time out of range".to_owned()));
            };
            each(record.at_ms, full)?;
        }
        Ok(())
    }

    /// Like [`Self::decode_block`] without building records (pruning, verification).
    pub(super) fn decode_block_raw(
        &self,
        probe: &ProbeName,
        key: BlockKey,
        block: &[u8],
        each: &mut dyn FnMut(&RecordRef<'_>),
    ) -> Result<(), LedgerError> {
        let decoder = BlockDecoder::new(key, block)
            .map_err(|reason| self.block_corrupt(probe, key, reason))?;
        for record in decoder {
            each(&record.map_err(|reason| self.block_corrupt(probe, key, reason))?);
        }
        Ok(())
    }

    fn block_key(&self, bytes: &[u8]) -> Result<BlockKey, LedgerError> {
        BlockKey::parse(bytes)
            .ok_or_else(|| self.corrupt("results", format!("bad block key {}", hex(bytes))))
    }

    fn block_corrupt(&self, probe: &ProbeName, key: BlockKey, reason: String) -> LedgerError {
        self.corrupt(
            format!(
                "block of probe {probe} starting {} (key {})",
                describe_ms(key.start_ms),
                hex(&key.to_bytes())
            ),
            reason,
        )
    }
}

/// Notes that the open blocks of `ids` are stored as they are, and empties `ids`.
fn mark_stored(open: &mut FxHashMap<u32, OpenBlock>, ids: &mut Vec<u32>) {
    for id in ids.drain(..) {
        if let Some(block) = open.get_mut(&id) {
            block.changed = false;
        }
    }
}

/// Passes on, in time order, the held-back records older than `before_ms`.
fn release(
    pending: &mut Vec<(i64, ResultRecord)>,
    before_ms: i64,
    out: &mut dyn FnMut(i64, ResultRecord) -> Result<(), LedgerError>,
) -> Result<(), LedgerError> {
    if pending.is_empty() {
        return Ok(());
    }
    // Stable: equal times keep block order. Already sorted in the common case, so cheap.
    pending.sort_by_key(|p| p.0);
    let ready = pending.partition_point(|p| p.0 < before_ms);
    for (at_ms, record) in pending.drain(..ready) {
        out(at_ms, record)?;
    }
    Ok(())
}
