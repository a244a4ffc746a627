//! The ledger: every check result, daemon start/stop markers and rollups, in a sled database
//! that nothing outside this module sees. May use `model` only.
//!
//! # Layout
//!
//! sled trees: `meta` (format version), `probes` (`n` ++ name → id, `i` ++ id → name: a
//! probe's name is stored once, results carry a 4-byte id), `results` (per-probe blocks, see
//! [`encoding`]), `rollups` (see [`rollup`]) and `markers` (time ++ kind).
//!
//! Results are not one sled entry each — that costs ~165 bytes per result on disk. A probe's
//! results go into *blocks*: one key per run of up to [`LedgerOptions::block_records`]
//! results spanning at most 6 h, whose value grows by concatenation (a sled merge operator).
//! The writer remembers where each probe's open block left off, so appending never reads a
//! block back; after a restart it simply opens new blocks.
//!
//! # Durability
//!
//! [`Ledger::append`], [`Ledger::import`], [`Ledger::record_marker`] and
//! [`Ledger::prune_before`] return only after `flush`. In sled 0.34 a flush writes the log and
//! calls `sync_file_range`, not `fsync`; sled's background flusher fsyncs every 500 ms. So
//! once a call returns `Ok`, its data survives `kill -9` of the daemon, and a power loss can
//! cost at most the last ~500 ms. A batch is not atomic: after a crash during `append`, a
//! prefix of its unacknowledged results may be stored.
//!
//! # Concurrency
//!
//! [`Ledger`] is `Send + Sync` and meant to be shared in an `Arc`: one writer (the daemon's
//! writer task, through `spawn_blocking`) and any number of readers. Writes are serialised by
//! an internal mutex; reads never take it. sled holds an exclusive lock on the directory, so a
//! second process — the CLI while the daemon runs — gets [`LedgerError::Locked`].

mod encoding;
mod error;
mod record;
mod rollup;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use jiff::Timestamp;

use crate::model::ProbeName;
use encoding::{
    BlockDecoder, BlockEncoder, BlockKey, MAX_BLOCK_SPAN_MS, ms_ceil, ms_floor, ms_from_ordered,
    ordered_ms, timestamp_from_ms,
};

pub use error::LedgerError;
pub use record::{Marker, MarkerKind, ResultRecord};
pub use rollup::{LATENCY_BUCKETS, Rollup, RollupDelta, RollupKind, RollupPeriod};

/// The on-disk format this build writes and reads; stored in the `meta` tree. A ledger with
/// another version is refused with [`LedgerError::FormatVersion`] rather than misread.
pub const FORMAT_VERSION: u32 = 1;

/// Results per block unless [`LedgerOptions`] says otherwise. Measured with
/// `cargo bench --bench ledger`: smaller blocks cost less disk (sled rewrites a whole value on
/// every merge and whole leaves on consolidation), larger ones fewer keys.
pub const DEFAULT_BLOCK_RECORDS: u32 = 128;

/// sled's page cache size unless [`LedgerOptions`] says otherwise. sled's default (1 GiB)
/// lets a long-running daemon grow to hundreds of MB; the ledger's working set is the open
/// block of each probe, which is small.
pub const DEFAULT_CACHE_BYTES: u64 = 8 * 1024 * 1024;

const META_TREE: &str = "meta";
const PROBES_TREE: &str = "probes";
const RESULTS_TREE: &str = "results";
const ROLLUPS_TREE: &str = "rollups";
const MARKERS_TREE: &str = "markers";
const FORMAT_KEY: &[u8] = b"format_version";
const NAME_PREFIX: u8 = b'n';
const ID_PREFIX: u8 = b'i';

/// Tuning knobs; the defaults suit a daemon, tests use tiny blocks to exercise rollover.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerOptions {
    /// Results per block before a new block key starts (clamped to 1..=65,535). Only affects
    /// new blocks, so it may change between runs.
    pub block_records: u32,
    /// sled page cache, in bytes.
    pub cache_capacity: u64,
}

impl Default for LedgerOptions {
    fn default() -> Self {
        LedgerOptions {
            block_records: DEFAULT_BLOCK_RECORDS,
            cache_capacity: DEFAULT_CACHE_BYTES,
        }
    }
}

/// The durable store of results, markers and rollups. See the module docs for layout,
/// durability and concurrency.
pub struct Ledger {
    path: PathBuf,
    db: sled::Db,
    probes: sled::Tree,
    results: sled::Tree,
    rollups: sled::Tree,
    markers: sled::Tree,
    block_records: u32,
    writer: Mutex<Writer>,
}

/// What only the writer needs: probe ids and where each probe's open block left off.
#[derive(Debug, Default)]
struct Writer {
    ids: HashMap<ProbeName, u32>,
    next_id: u32,
    open: HashMap<u32, BlockEncoder>,
}

impl std::fmt::Debug for Ledger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ledger")
            .field("path", &self.path)
            .field("block_records", &self.block_records)
            .finish_non_exhaustive()
    }
}

/// sled merge operator of the results tree: a block grows by concatenation.
fn concat_merge(_key: &[u8], old: Option<&[u8]>, appended: &[u8]) -> Option<Vec<u8>> {
    let old = old.unwrap_or_default();
    let mut value = Vec::with_capacity(old.len() + appended.len());
    value.extend_from_slice(old);
    value.extend_from_slice(appended);
    Some(value)
}

fn name_key(probe: &ProbeName) -> Vec<u8> {
    let mut key = Vec::with_capacity(1 + probe.as_str().len());
    key.push(NAME_PREFIX);
    key.extend_from_slice(probe.as_str().as_bytes());
    key
}

fn id_key(id: u32) -> [u8; 5] {
    let mut key = [ID_PREFIX; 5];
    key[1..].copy_from_slice(&id.to_be_bytes());
    key
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn describe_ms(ms: i64) -> String {
    timestamp_from_ms(ms).map_or_else(|| format!("{ms} ms"), |at| at.to_string())
}

impl Ledger {
    /// Opens (creating if needed) the ledger directory at `path` with default options.
    pub fn open(path: &Path) -> Result<Ledger, LedgerError> {
        Ledger::open_with(path, &LedgerOptions::default())
    }

    /// Opens (creating if needed) the ledger at `path`, checking its format version.
    pub fn open_with(path: &Path, options: &LedgerOptions) -> Result<Ledger, LedgerError> {
        std::fs::create_dir_all(path).map_err(|source| LedgerError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let sled_error = |e| LedgerError::from_sled(path, e);
        let db = sled::Config::new()
            .path(path)
            .cache_capacity(options.cache_capacity)
            .open()
            .map_err(sled_error)?;
        let meta = db.open_tree(META_TREE).map_err(sled_error)?;
        let probes = db.open_tree(PROBES_TREE).map_err(sled_error)?;
        let results = db.open_tree(RESULTS_TREE).map_err(sled_error)?;
        let rollups = db.open_tree(ROLLUPS_TREE).map_err(sled_error)?;
        let markers = db.open_tree(MARKERS_TREE).map_err(sled_error)?;
        // Merge operators live in memory only: set them before anything can merge.
        results.set_merge_operator(concat_merge);
        rollups.set_merge_operator(rollup::merge_rollup);

        let ledger = Ledger {
            path: path.to_path_buf(),
            db,
            probes,
            results,
            rollups,
            markers,
            block_records: options.block_records.clamp(1, 65_535),
            writer: Mutex::new(Writer::default()),
        };
        ledger.check_format(&meta)?;
        let next_id = ledger.next_probe_id()?;
        ledger.lock_writer().next_id = next_id;
        Ok(ledger)
    }

    fn check_format(&self, meta: &sled::Tree) -> Result<(), LedgerError> {
        match meta.get(FORMAT_KEY).map_err(|e| self.sled_error(e))? {
            Some(stored) => {
                let found = <[u8; 4]>::try_from(stored.as_ref())
                    .map(u32::from_be_bytes)
                    .map_err(|_| self.corrupt("format version", "not a 4-byte number"))?;
                if found != FORMAT_VERSION {
                    return Err(LedgerError::FormatVersion {
                        path: self.path.clone(),
                        found,
                        expected: FORMAT_VERSION,
                    });
                }
                Ok(())
            }
            None => {
                let has_data = [&self.probes, &self.results, &self.rollups, &self.markers]
                    .iter()
                    .any(|tree| !tree.is_empty());
                if has_data {
                    return Err(self.corrupt("format version", "missing, but the ledger has data"));
                }
                meta.insert(FORMAT_KEY, &FORMAT_VERSION.to_be_bytes()[..])
                    .map_err(|e| self.sled_error(e))?;
                self.flush()
            }
        }
    }

    fn next_probe_id(&self) -> Result<u32, LedgerError> {
        let last = self
            .probes
            .scan_prefix([ID_PREFIX])
            .next_back()
            .transpose()
            .map_err(|e| self.sled_error(e))?;
        let Some((key, _)) = last else {
            return Ok(1);
        };
        let id = key
            .get(1..)
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
            .map(u32::from_be_bytes)
            .ok_or_else(|| self.corrupt("probe index", format!("bad id key {}", hex(&key))))?;
        id.checked_add(1)
            .ok_or_else(|| self.corrupt("probe index", "probe ids exhausted"))
    }

    /// Appends results and flushes: one call is one group commit. When it returns `Ok`,
    /// every result in `batch` is durable. Results of a probe should arrive in time order; one
    /// older than the probe's previous result is kept too, in a new block. On `Err` some of
    /// the batch may be stored (the writer then starts fresh blocks for every probe).
    pub fn append(&self, batch: &[ResultRecord]) -> Result<(), LedgerError> {
        let mut writer = self.lock_writer();
        let outcome = self.append_locked(&mut writer, batch);
        if outcome.is_err() {
            // The open-block state may be ahead of what reached sled; never continue it.
            writer.open.clear();
        }
        outcome
    }

    fn append_locked(
        &self,
        writer: &mut Writer,
        batch: &[ResultRecord],
    ) -> Result<(), LedgerError> {
        // One chunk of encoded records per block touched, written with one merge each.
        let mut chunks: Vec<(BlockKey, Vec<u8>)> = Vec::new();
        let mut chunk_of: HashMap<u32, usize> = HashMap::new();
        let mut created: HashSet<BlockKey> = HashSet::new();
        for record in batch {
            let id = self.probe_id_for_write(writer, &record.probe)?;
            let record = record.as_ref();
            let continues = writer
                .open
                .get(&id)
                .is_some_and(|open| open.accepts(record.at_ms, self.block_records));
            if !continues {
                let key = self.free_block_key(id, record.at_ms, &created)?;
                created.insert(key);
                let mut bytes = Vec::with_capacity(64);
                writer
                    .open
                    .insert(id, BlockEncoder::start(key, record.at_ms, &mut bytes));
                chunk_of.insert(id, chunks.len());
                chunks.push((key, bytes));
            }
            let Some(encoder) = writer.open.get_mut(&id) else {
                continue; // inserted just above
            };
            let index = *chunk_of.entry(id).or_insert_with(|| {
                chunks.push((encoder.key(), Vec::with_capacity(16)));
                chunks.len() - 1
            });
            encoder.push(&record, &mut chunks[index].1);
        }
        for (key, bytes) in chunks {
            self.results
                .merge(key.to_bytes(), bytes)
                .map_err(|e| self.sled_error(e))?;
        }
        self.flush()
    }

    /// A block key for a new block of probe `id` whose first record is at `at_ms`: normally
    /// that instant, or a few ms earlier if a block already starts there (a rare clash after
    /// out-of-order results), so that a new block never merges onto an old one.
    fn free_block_key(
        &self,
        id: u32,
        at_ms: i64,
        created: &HashSet<BlockKey>,
    ) -> Result<BlockKey, LedgerError> {
        for back in 0..=1_000 {
            let key = BlockKey {
                probe_id: id,
                start_ms: at_ms - back,
            };
            if created.contains(&key) {
                continue;
            }
            let taken = self
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
        })
    }

    /// Stores results for migration or restore: any probes, any order, any time range. The
    /// whole input is checked first; if any record repeats a stored (probe, millisecond) or
    /// another input record, nothing is written and [`LedgerError::Duplicate`] names it.
    /// Otherwise the records go into fresh blocks, written atomically, then flushed. Returns
    /// the number of records stored.
    pub fn import(&self, records: &[ResultRecord]) -> Result<usize, LedgerError> {
        let mut writer = self.lock_writer();

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

        let mut batch = sled::Batch::default();
        let mut created = HashSet::new();
        for (probe, list) in &probes {
            let id = self.probe_id_for_write(&mut writer, probe)?;
            let mut block: Option<(BlockEncoder, Vec<u8>)> = None;
            for record in list {
                let record = record.as_ref();
                if let Some((encoder, _)) = &block
                    && !encoder.accepts(record.at_ms, self.block_records)
                    && let Some((encoder, bytes)) = block.take()
                {
                    batch.insert(&encoder.key().to_bytes()[..], bytes);
                }
                let (encoder, bytes) = match &mut block {
                    Some(open) => open,
                    None => {
                        let key = self.free_block_key(id, record.at_ms, &created)?;
                        created.insert(key);
                        let mut bytes = Vec::new();
                        let encoder = BlockEncoder::start(key, record.at_ms, &mut bytes);
                        block.insert((encoder, bytes))
                    }
                };
                encoder.push(&record, bytes);
            }
            if let Some((encoder, bytes)) = block {
                batch.insert(&encoder.key().to_bytes()[..], bytes);
            }
        }
        self.results
            .apply_batch(batch)
            .map_err(|e| self.sled_error(e))?;
        self.flush()?;
        Ok(records.len())
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
        let lo = BlockKey {
            probe_id: id,
            start_ms: i64::MIN,
        };
        let hi = BlockKey {
            probe_id: id,
            start_ms: i64::MAX,
        };
        // (time, block start, position): the order a forward scan yields equal times in.
        let mut found: Vec<(i64, i64, u32, ResultRecord)> = Vec::new();
        let mut threshold = i64::MIN;
        for item in self.results.range(lo.to_bytes()..=hi.to_bytes()).rev() {
            let (key, value) = item.map_err(|e| self.sled_error(e))?;
            let key = self.block_key(&key)?;
            // Blocks hold records up to start + span: once that is older than the n-th newest
            // record found, no older block can contribute.
            if found.len() >= n && key.start_ms.saturating_add(MAX_BLOCK_SPAN_MS) < threshold {
                break;
            }
            let mut position = 0;
            self.decode_block(probe, key, &value, &mut |at_ms, record| {
                found.push((at_ms, key.start_ms, position, record));
                position += 1;
                Ok(())
            })?;
            if found.len() >= n {
                let mut times: Vec<i64> = found.iter().map(|f| f.0).collect();
                let (_, nth, _) = times.select_nth_unstable_by(n - 1, |a, b| b.cmp(a));
                threshold = *nth;
            }
        }
        found.sort_by_key(|f| (f.0, f.1, f.2));
        let skip = found.len().saturating_sub(n);
        Ok(found.into_iter().skip(skip).map(|f| f.3).collect())
    }

    /// Every probe with at least one stored result, by name.
    pub fn probes(&self) -> Result<Vec<ProbeName>, LedgerError> {
        let mut names = Vec::new();
        for (probe, id) in self.all_probes()? {
            let has_results = self
                .results
                .scan_prefix(id.to_be_bytes())
                .next()
                .transpose()
                .map_err(|e| self.sled_error(e))?
                .is_some();
            if has_results {
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

    /// Records a daemon start or stop, flushed: reports use markers to tell a stopped
    /// monitor from a silent probe.
    pub fn record_marker(&self, marker: Marker) -> Result<(), LedgerError> {
        let mut key = [0u8; 9];
        key[..8].copy_from_slice(&ordered_ms(ms_floor(marker.at)));
        key[8] = marker.kind.code();
        self.markers
            .insert(key, Vec::new())
            .map_err(|e| self.sled_error(e))?;
        self.flush()
    }

    /// The markers with `from <= at < to`, oldest first.
    pub fn markers(&self, from: Timestamp, to: Timestamp) -> Result<Vec<Marker>, LedgerError> {
        let (from_ms, to_ms) = (ms_ceil(from), ms_ceil(to));
        if from_ms >= to_ms {
            return Ok(Vec::new());
        }
        let mut markers = Vec::new();
        for item in self.markers.range(ordered_ms(from_ms)..ordered_ms(to_ms)) {
            let (key, _) = item.map_err(|e| self.sled_error(e))?;
            let parsed = <[u8; 9]>::try_from(key.as_ref()).ok().and_then(|key| {
                let mut time = [0u8; 8];
                time.copy_from_slice(&key[..8]);
                Some(Marker {
                    at: timestamp_from_ms(ms_from_ordered(time))?,
                    kind: MarkerKind::from_code(key[8])?,
                })
            });
            markers.push(
                parsed.ok_or_else(|| {
                    self.corrupt("markers", format!("bad marker key {}", hex(&key)))
                })?,
            );
        }
        Ok(markers)
    }

    /// Adds each delta to its stored rollup (creating it). Not flushed by itself: call it
    /// just before [`Ledger::append`] so the rollups join the same group commit, or call
    /// [`Ledger::flush`] when no append follows. Rollups are never pruned.
    pub fn add_rollups(
        &self,
        deltas: &[(ProbeName, RollupPeriod, RollupDelta)],
    ) -> Result<(), LedgerError> {
        let mut writer = self.lock_writer();
        for (probe, period, delta) in deltas {
            let id = self.probe_id_for_write(&mut writer, probe)?;
            let key = rollup::rollup_key(id, period.kind, ms_floor(period.start));
            self.rollups
                .merge(key, delta.encode())
                .map_err(|e| self.sled_error(e))?;
        }
        Ok(())
    }

    /// The stored rollups of `probe` of one kind whose period starts in `[from, to)`, in
    /// time order, each with its period start.
    pub fn rollups(
        &self,
        probe: &ProbeName,
        kind: RollupKind,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<(Timestamp, Rollup)>, LedgerError> {
        let Some(id) = self.probe_id(probe)? else {
            return Ok(Vec::new());
        };
        let (from_ms, to_ms) = (ms_ceil(from), ms_ceil(to));
        if from_ms >= to_ms {
            return Ok(Vec::new());
        }
        let lo = rollup::rollup_key(id, kind, from_ms);
        let hi = rollup::rollup_key(id, kind, to_ms);
        let mut found = Vec::new();
        for item in self.rollups.range(lo..hi) {
            let (key, value) = item.map_err(|e| self.sled_error(e))?;
            let context = || format!("rollup of probe {probe} (key {})", hex(&key));
            let start = key
                .get(5..)
                .and_then(|b| <[u8; 8]>::try_from(b).ok())
                .and_then(|b| timestamp_from_ms(ms_from_ordered(b)))
                .ok_or_else(|| self.corrupt(context(), "bad key"))?;
            let rollup =
                Rollup::decode(&value).map_err(|reason| self.corrupt(context(), reason))?;
            found.push((start, rollup));
        }
        Ok(found)
    }

    /// Drops raw results older than `cutoff`, a whole block at a time: a block goes only when
    /// its newest result is older, so a few results before `cutoff` may remain. Rollups and
    /// markers are kept. Flushed; returns how many results were dropped.
    pub fn prune_before(&self, cutoff: Timestamp) -> Result<u64, LedgerError> {
        let cutoff_ms = ms_ceil(cutoff);
        let mut writer = self.lock_writer();
        let mut batch = sled::Batch::default();
        let mut dropped = 0u64;
        for (probe, id) in self.all_probes()? {
            let lo = BlockKey {
                probe_id: id,
                start_ms: i64::MIN,
            };
            let hi = BlockKey {
                probe_id: id,
                start_ms: cutoff_ms,
            };
            for item in self.results.range(lo.to_bytes()..hi.to_bytes()) {
                let (key_bytes, value) = item.map_err(|e| self.sled_error(e))?;
                let key = self.block_key(&key_bytes)?;
                let (mut count, mut newest) = (0u64, i64::MIN);
                self.decode_block_raw(&probe, key, &value, &mut |record| {
                    count += 1;
                    newest = newest.max(record.at_ms);
                })?;
                if newest < cutoff_ms {
                    batch.remove(key_bytes);
                    dropped += count;
                    if writer.open.get(&id).is_some_and(|open| open.key() == key) {
                        // Appending to a deleted block would create one without a header.
                        writer.open.remove(&id);
                    }
                }
            }
        }
        self.results
            .apply_batch(batch)
            .map_err(|e| self.sled_error(e))?;
        self.flush()?;
        Ok(dropped)
    }

    /// Makes everything written so far durable (see the module docs for what that means).
    pub fn flush(&self) -> Result<(), LedgerError> {
        self.db.flush().map_err(|e| self.sled_error(e))?;
        Ok(())
    }

    /// Bytes the ledger directory takes (sum of its files' lengths), for `/metrics` and the
    /// retention advice in reports.
    pub fn size_on_disk(&self) -> Result<u64, LedgerError> {
        directory_size(&self.path)
    }

    /// Decodes every stored block and rollup, returning the number of results: a full
    /// consistency check to run after an abrupt stop or before trusting a backup.
    pub fn verify(&self) -> Result<u64, LedgerError> {
        let mut total = 0u64;
        for (probe, id) in self.all_probes()? {
            for item in self.results.scan_prefix(id.to_be_bytes()) {
                let (key, value) = item.map_err(|e| self.sled_error(e))?;
                let key = self.block_key(&key)?;
                self.decode_block_raw(&probe, key, &value, &mut |_| total += 1)?;
            }
        }
        for item in self.rollups.iter() {
            let (key, value) = item.map_err(|e| self.sled_error(e))?;
            Rollup::decode(&value)
                .map_err(|reason| self.corrupt(format!("rollup (key {})", hex(&key)), reason))?;
        }
        Ok(total)
    }

    // ---- internals ----

    /// The writer state; a panic in another writer (poisoned lock) only costs the open blocks.
    fn lock_writer(&self) -> MutexGuard<'_, Writer> {
        self.writer.lock().unwrap_or_else(|poisoned| {
            let mut writer = poisoned.into_inner();
            writer.open.clear();
            writer
        })
    }

    /// The id of a probe, registering it (not yet flushed) when it is new.
    fn probe_id_for_write(
        &self,
        writer: &mut Writer,
        probe: &ProbeName,
    ) -> Result<u32, LedgerError> {
        if let Some(id) = writer.ids.get(probe) {
            return Ok(*id);
        }
        let id = match self.probe_id(probe)? {
            Some(id) => id,
            None => {
                let id = writer.next_id;
                writer.next_id = id.checked_add(1).ok_or_else(|| LedgerError::Storage {
                    path: self.path.clone(),
                    message: "probe ids exhausted".to_owned(),
                })?;
                // The id → name entry first: a name never points to an id without a name.
                self.probes
                    .insert(id_key(id), probe.as_str().as_bytes())
                    .map_err(|e| self.sled_error(e))?;
                self.probes
                    .insert(name_key(probe), &id.to_be_bytes()[..])
                    .map_err(|e| self.sled_error(e))?;
                id
            }
        };
        writer.ids.insert(probe.clone(), id);
        Ok(id)
    }

    /// The id of a stored probe, if it has one.
    fn probe_id(&self, probe: &ProbeName) -> Result<Option<u32>, LedgerError> {
        let Some(value) = self
            .probes
            .get(name_key(probe))
            .map_err(|e| self.sled_error(e))?
        else {
            return Ok(None);
        };
        <[u8; 4]>::try_from(value.as_ref())
            .map(|b| Some(u32::from_be_bytes(b)))
            .map_err(|_| self.corrupt(format!("probe index of {probe}"), "id is not 4 bytes"))
    }

    /// Every registered probe with its id, by name.
    fn all_probes(&self) -> Result<Vec<(ProbeName, u32)>, LedgerError> {
        let mut all = Vec::new();
        for item in self.probes.scan_prefix([NAME_PREFIX]) {
            let (key, value) = item.map_err(|e| self.sled_error(e))?;
            let parsed = std::str::from_utf8(&key[1..])
                .ok()
                .and_then(|name| ProbeName::new(name).ok())
                .zip(
                    <[u8; 4]>::try_from(value.as_ref())
                        .ok()
                        .map(u32::from_be_bytes),
                );
            all.push(
                parsed.ok_or_else(|| {
                    self.corrupt("probe index", format!("bad entry {}", hex(&key)))
                })?,
            );
        }
        Ok(all)
    }

    /// Streams probe `id`'s records with `from_ms <= at < to_ms` to `out` in time order.
    ///
    /// Blocks normally follow each other, but import and out-of-order results can make them
    /// overlap, so records are held back until no later block can precede them: a block
    /// starting at `s` holds nothing older than `s`.
    fn scan(
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
        let lo = BlockKey {
            probe_id: id,
            start_ms: from_ms.saturating_sub(MAX_BLOCK_SPAN_MS),
        };
        let hi = BlockKey {
            probe_id: id,
            start_ms: to_ms,
        };
        let mut pending: Vec<(i64, ResultRecord)> = Vec::new();
        for item in self.results.range(lo.to_bytes()..hi.to_bytes()) {
            let (key, value) = item.map_err(|e| self.sled_error(e))?;
            let key = self.block_key(&key)?;
            release(&mut pending, key.start_ms, out)?;
            self.decode_block(probe, key, &value, &mut |at_ms, record| {
                if (from_ms..to_ms).contains(&at_ms) {
                    pending.push((at_ms, record));
                }
                Ok(())
            })?;
        }
        release(&mut pending, i64::MAX, out)
    }

    /// Decodes one block into records, or `Corrupt` naming the probe and key.
    fn decode_block(
        &self,
        probe: &ProbeName,
        key: BlockKey,
        value: &[u8],
        each: &mut dyn FnMut(i64, ResultRecord) -> Result<(), LedgerError>,
    ) -> Result<(), LedgerError> {
        let decoder = BlockDecoder::new(key, value)
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
    fn decode_block_raw(
        &self,
        probe: &ProbeName,
        key: BlockKey,
        value: &[u8],
        each: &mut dyn FnMut(&encoding::RecordRef<'_>),
    ) -> Result<(), LedgerError> {
        let decoder = BlockDecoder::new(key, value)
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

    fn corrupt(&self, context: impl Into<String>, reason: impl Into<String>) -> LedgerError {
        LedgerError::Corrupt {
            path: self.path.clone(),
            context: context.into(),
            reason: reason.into(),
        }
    }

    fn duplicate(&self, probe: &ProbeName, at_ms: i64, existing: bool) -> LedgerError {
        LedgerError::Duplicate {
            probe: probe.clone(),
            at: timestamp_from_ms(at_ms).unwrap_or(Timestamp::UNIX_EPOCH),
            existing,
        }
    }

    fn sled_error(&self, error: sled::Error) -> LedgerError {
        LedgerError::from_sled(&self.path, error)
    }
}

impl Drop for Ledger {
    fn drop(&mut self) {
        // Best effort: sled flushes on its own too, and a failure here has no one to tell.
        let _ = self.db.flush();
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

/// Sum of the lengths of the files under `dir`.
fn directory_size(dir: &Path) -> Result<u64, LedgerError> {
    let io_error = |source| LedgerError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut total = 0;
    for entry in std::fs::read_dir(dir).map_err(io_error)? {
        let entry = entry.map_err(io_error)?;
        let meta = entry.metadata().map_err(io_error)?;
        total += if meta.is_dir() {
            directory_size(&entry.path())?
        } else {
            meta.len()
        };
    }
    Ok(total)
}
