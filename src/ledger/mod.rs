//! The ledger: every check result, daemon start/stop markers and rollups, in a sled database
//! that nothing outside this module sees. May use `model` only.
//!
//! # Layout
//!
//! sled trees: `meta` (format version), `probes` (`n` ++ name → id, `i` ++ id → name: a
//! probe's name is stored once, results carry a 4-byte id), `results` (per-probe blocks, see
//! `encoding.rs`), `journal` (each group commit's results until a checkpoint, see
//! `journal.rs`), `rollups` (see `rollup.rs`), `digests` (per-hour runs that month reports
//! read instead of raw results, see `digest.rs`), `outbox` (alerts until delivered, see
//! `outbox.rs`), `markers` (time ++ kind), `clock_steps` (see `clock.rs`), the corrections of
//! `corrections.rs`, `import_staging` (an import's writes until its commit has been
//! applied, see `staging.rs`), `imports` (who imported what, see `imports.rs`), and
//! `replication` (an agent's results not yet in JetStream, see `replication.rs`).
//!
//! Results are not one sled entry each — that costs ~165 bytes per result on disk. A probe's
//! results go into *blocks* of up to [`LedgerOptions::block_records`] results spanning at most
//! 6 h, compactly encoded (delta-of-delta times, varint latencies, a shared tag for runs of
//! equal outcomes, details stored once per run): about 3.6 bytes per result. A probe's open
//! block grows in the writer's memory, is stored whole when it starts and at checkpoints, and
//! is sealed under `probe_id ++ start` when full; see `blocks.rs` for why open blocks live
//! apart. Each group commit stores its results once, in the `journal` tree, until a checkpoint
//! has stored the blocks that hold them (see `journal.rs`). The writer remembers each open
//! block, so appending never reads a block back; after a restart it seals the old open blocks,
//! stores what only the journal held, and starts new blocks. Measured before the journal:
//! ≈ 9–10 bytes per result on disk in total, ≥ 200,000 results/s in group commits of 1,000.
//!
//! # Durability
//!
//! [`Ledger::append`], [`Ledger::import`], [`Ledger::record_marker`] and
//! [`Ledger::prune_before`] return only after `flush`. In sled 0.34 a flush writes the log and
//! calls `sync_file_range`, not `fsync`; sled's background flusher fsyncs every 500 ms. So
//! once a call returns `Ok`, its data survives `kill -9` of the daemon, and a power loss can
//! cost at most the last ~500 ms. A batch is not atomic: after a crash during `append`, some
//! of its unacknowledged results may be stored. An import is: after a crash the ledger holds
//! all of it or none of it (see `staging.rs`).
//!
//! # Concurrency
//!
//! [`Ledger`] is `Send + Sync` and meant to be shared in an `Arc`: one writer (the daemon's
//! writer task, through `spawn_blocking`) and any number of readers. Writes are serialised by
//! an internal mutex; reads never take it. sled holds an exclusive lock on the directory, so a
//! second process — the CLI while the daemon runs — gets [`LedgerError::Locked`].
//!
//! The sled handles sit in one swappable cell: after an I/O error (a full disk) sled 0.34
//! refuses every write until it is opened again, and [`Ledger::recover`] does that in process.
//! Every operation clones the current handles at its start, so readers never wait for a
//! reopen (they get an error while it is under way), and every holder of the `Ledger` — the
//! writer, queries, the alert outbox — sees the new opening.

mod blocks;
mod checksum;
mod clock;
mod corrections;
mod damage;
mod digest;
mod encoding;
mod error;
mod fsck;
mod guard;
mod imports;
mod journal;
mod log;
mod outage_note;
mod outbox;
mod record;
mod replication;
mod rollup;
mod seal;
mod staging;
#[cfg(test)]
mod tests;
mod witness;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use jiff::Timestamp;

use crate::model::{NameMap, ProbeName};
// The ledger's modules name keys in messages with it.
use crate::model::hex;
use blocks::OpenBlock;
use encoding::{ms_ceil, ms_floor, ms_from_ordered, ordered_ms, timestamp_from_ms};
use rustc_hash::FxHashMap;

pub use clock::ClockStep;
pub use corrections::{ExclusionEntry, ExclusionRecord, Requester, RevocationRecord};
pub use damage::Damage;
pub use digest::{DIGEST_SETTLE, DayDigest, HourDigest};
pub use error::LedgerError;
pub use fsck::FsckReport;
pub use guard::panic_is_caught;
pub use imports::ImportRecord;
pub use journal::CHECKPOINT_RECORDS;
pub use log::{HourCursor, HourMark, LogAppend};
pub use outage_note::{NotedOutage, OutageNote};
pub use outbox::{DeliveryStatus, OutboxEntry, OutboxItem};
pub use record::{Marker, MarkerKind, ResultRecord, WriteOutage};
pub use replication::{ProbeNames, ReplicationEntry};
pub use rollup::{LATENCY_BUCKETS, Rollup, RollupKind, RollupPeriod};
pub use staging::{ImportCommit, ImportedCorrection};
pub use witness::{ForkRecord, MAX_FORKS, WitnessedHead};

/// The on-disk format this build writes and reads; stored in the `meta` tree. A ledger with
/// another version is refused with [`LedgerError::FormatVersion`] rather than misread.
pub const FORMAT_VERSION: u32 = 1;

/// Results per block unless [`LedgerOptions`] says otherwise. Measured with
/// `cargo bench --bench ledger` (1M results, 1,000 probes, commits of 1,000): 64 gave
/// 8.9–10.0 bytes/result on disk, 32 gave 12.1, 128 gave 10.5–11.2, 256 gave 15.2 and 512
/// gave 16.8. sled rewrites a whole value on every write, so bigger open blocks cost more;
/// smaller ones cost more keys.
pub const DEFAULT_BLOCK_RECORDS: u32 = 64;

/// sled's page cache size unless [`LedgerOptions`] says otherwise. sled's default (1 GiB)
/// lets a long-running daemon grow to hundreds of MB; the ledger's working set is the open
/// block of each probe, which is small.
pub const DEFAULT_CACHE_BYTES: u64 = 8 * 1024 * 1024;

/// Pause between attempts while waiting for the lock ([`LedgerOptions::lock_wait`]).
const LOCK_RETRY: Duration = Duration::from_millis(50);

/// Longest [`Ledger::recover`] waits for sled's lock on the directory: the spent opening
/// lets go of it only when the last reader holding it has finished and sled's threads have
/// stopped (a few ms when measured on tmpfs).
pub const REOPEN_LOCK_WAIT: Duration = Duration::from_secs(5);

/// Bytes [`Ledger::recover`] writes (and removes) to see whether the disk has room again
/// before it reopens: two of sled's 512 KiB log segments.
pub const SPACE_CHECK_BYTES: usize = 1024 * 1024;

/// The file of that check, in the ledger directory; sled ignores files it does not know.
const SPACE_CHECK_FILE: &str = "space-check.tmp";

/// A file upledger writes beside sled's once the ledger has its format version. sled
/// recovers a log cut short at the start (no snapshot yet) as an *empty* database, which
/// would otherwise pass for a new ledger: with this file present, an empty database is a
/// ledger that lost its data.
const CREATED_FILE: &str = "upledger-ledger";

const META_TREE: &str = "meta";
const PROBES_TREE: &str = "probes";
const RESULTS_TREE: &str = "results";
const ROLLUPS_TREE: &str = "rollups";
const MARKERS_TREE: &str = "markers";
const EXCLUSIONS_TREE: &str = "exclusions";
const MAINTENANCE_TREE: &str = "maintenance_seen";
const CLOSED_TREE: &str = "closed_periods";
const DIGESTS_TREE: &str = "digests";
const OUTBOX_TREE: &str = "outbox";
const JOURNAL_TREE: &str = "journal";
const ALERT_MARKS_TREE: &str = "alert_marks";
const CLOCK_STEPS_TREE: &str = "clock_steps";
const STAGING_TREE: &str = "import_staging";
const IMPORTS_TREE: &str = "imports";
const LOG_TREE: &str = "log";
const CHECKPOINTS_TREE: &str = "checkpoints";
const WITNESS_TREE: &str = "witness";
const REPLICATION_TREE: &str = "replication";
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
    /// How long to keep trying while another holder has the ledger locked. sled lets go of
    /// its lock only when its last background thread has finished, a moment *after* the
    /// handle is dropped, so whoever reopens a ledger it just closed — the daemon after a
    /// query command, a restart in the same process — needs a little patience. Zero (the
    /// default) fails at once with [`LedgerError::Locked`], which is what a query command
    /// wants when the daemon runs.
    pub lock_wait: Duration,
    /// Longest the journal keeps results before a checkpoint stores them in their blocks
    /// (see `journal.rs`); also bounds what a replay after a crash has to do.
    pub checkpoint_every: Duration,
}

/// [`LedgerOptions::checkpoint_every`] unless said otherwise: at 1,000 probes every second,
/// a checkpoint stores 1,000 open blocks where per-commit writes stored 120,000.
pub const DEFAULT_CHECKPOINT_EVERY: Duration = Duration::from_secs(120);

impl Default for LedgerOptions {
    fn default() -> Self {
        LedgerOptions {
            block_records: DEFAULT_BLOCK_RECORDS,
            cache_capacity: DEFAULT_CACHE_BYTES,
            lock_wait: Duration::ZERO,
            checkpoint_every: DEFAULT_CHECKPOINT_EVERY,
        }
    }
}

/// What [`Ledger::recover`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recovery {
    /// No I/O error had spent the opening: nothing to do.
    NotNeeded,
    /// The ledger was opened again and takes writes.
    Reopened,
}

/// Sizes of what the ledger holds; see [`Ledger::stats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LedgerStats {
    /// Probes that ever had a result or rollup.
    pub probes: u64,
    /// Result blocks.
    pub blocks: u64,
    /// Of which open (still growing).
    pub open_blocks: u64,
    /// Bytes of all result blocks (keys excluded).
    pub block_bytes: u64,
    /// Stored rollups.
    pub rollups: u64,
}

/// The durable store of results, markers and rollups. See the module docs for layout,
/// durability and concurrency.
pub struct Ledger {
    path: PathBuf,
    /// sled's page cache, kept to reopen with the same options.
    cache_capacity: u64,
    /// How long an opening waits for sled's lock (see [`LedgerOptions::lock_wait`]).
    lock_wait: Duration,
    /// The sled handles of the current opening. Swapped whole by [`Ledger::recover`]: every
    /// user of the ledger (writer, queries, alert outbox) goes through this cell, so a reopen
    /// is seen by all of them. `None` only while a reopen is under way or after it failed.
    /// Held only long enough to clone the `Arc`, so a reopen never waits for a reader.
    store: RwLock<Option<Arc<Store>>>,
    /// The last sled I/O error, set where it is mapped ([`Ledger::sled_error`]). sled 0.34
    /// keeps refusing every write once one has failed, even after the cause went away, so
    /// this says that the current opening is spent and [`Ledger::recover`] must reopen.
    io_failure: Mutex<Option<String>>,
    /// Set when sled panicked inside [`Ledger::guard`]: its handles were dropped and this
    /// says why every later call fails (see `guard.rs`).
    spoiled: Mutex<Option<String>>,
    block_records: u32,
    checkpoint_every: Duration,
    writer: Mutex<Writer>,
    /// The writer's open blocks, by probe id: written under the writer's lock, read by
    /// readers too (see `blocks.rs`). Lock order: `writer`, then this.
    open: RwLock<FxHashMap<u32, OpenBlock>>,
    /// Damage on record (see `damage.rs`), kept in the seal file.
    damage: Mutex<Vec<damage::Damage>>,
}

/// One opening of the sled database and its trees.
struct Store {
    db: sled::Db,
    meta: sled::Tree,
    probes: sled::Tree,
    results: sled::Tree,
    rollups: sled::Tree,
    markers: sled::Tree,
    exclusions: sled::Tree,
    maintenance_seen: sled::Tree,
    closed: sled::Tree,
    digests: sled::Tree,
    outbox: sled::Tree,
    alert_marks: sled::Tree,
    journal: sled::Tree,
    clock_steps: sled::Tree,
    /// An import's writes until they are applied (see `staging.rs`).
    staging: sled::Tree,
    /// Who imported what (see `imports.rs`).
    imports: sled::Tree,
    /// The evidence log (see `log.rs`).
    log: sled::Tree,
    /// Signed checkpoints of the evidence log, by size.
    checkpoints: sled::Tree,
    /// Cosignatures of our checkpoints and the state of the logs we witness (see
    /// `witness.rs`).
    witness: sled::Tree,
    /// Results an agent has not yet handed to JetStream (see `replication.rs`).
    replication: sled::Tree,
}

impl Store {
    /// Opens sled at `path`, retrying for up to `lock_wait` while another holder has it.
    ///
    /// A panic of sled (some damaged files make it panic instead of failing) becomes
    /// [`LedgerError::Corrupt`]; see `guard.rs`.
    fn open(path: &Path, cache_capacity: u64, lock_wait: Duration) -> Result<Store, LedgerError> {
        guard::catch(path, "opening it", || {
            Store::open_unguarded(path, cache_capacity, lock_wait)
        })?
    }

    fn open_unguarded(
        path: &Path,
        cache_capacity: u64,
        lock_wait: Duration,
    ) -> Result<Store, LedgerError> {
        let sled_error = |e| LedgerError::from_sled(path, e);
        let deadline = Instant::now() + lock_wait;
        let db = loop {
            let opened = sled::Config::new()
                .path(path)
                .cache_capacity(cache_capacity)
                .open()
                .map_err(sled_error);
            match opened {
                Err(LedgerError::Locked { .. }) if Instant::now() < deadline => {
                    std::thread::sleep(LOCK_RETRY);
                }
                other => break other?,
            }
        };
        let tree = |name: &str| db.open_tree(name).map_err(sled_error);
        Ok(Store {
            meta: tree(META_TREE)?,
            probes: tree(PROBES_TREE)?,
            results: tree(RESULTS_TREE)?,
            rollups: tree(ROLLUPS_TREE)?,
            markers: tree(MARKERS_TREE)?,
            exclusions: tree(EXCLUSIONS_TREE)?,
            maintenance_seen: tree(MAINTENANCE_TREE)?,
            closed: tree(CLOSED_TREE)?,
            digests: tree(DIGESTS_TREE)?,
            outbox: tree(OUTBOX_TREE)?,
            alert_marks: tree(ALERT_MARKS_TREE)?,
            journal: tree(JOURNAL_TREE)?,
            clock_steps: tree(CLOCK_STEPS_TREE)?,
            staging: tree(STAGING_TREE)?,
            imports: tree(IMPORTS_TREE)?,
            log: tree(LOG_TREE)?,
            checkpoints: tree(CHECKPOINTS_TREE)?,
            witness: tree(WITNESS_TREE)?,
            replication: tree(REPLICATION_TREE)?,
            db,
        })
    }
}

/// What only the writer needs: probe ids and each probe's open block.
#[derive(Debug, Default)]
struct Writer {
    ids: NameMap<u32>,
    next_id: u32,
    journal: journal::JournalState,
    /// Each probe's digest coverage (ms), as far as looked up: see `digest.rs`.
    coverage: FxHashMap<u32, Option<i64>>,
    /// A write failed part-way: the open blocks on disk may not match `open`, so they are
    /// sealed before the next write.
    stale: bool,
    /// An append failed, and its caller may retry it: part of it may be stored, so the next
    /// append skips results already stored (see `blocks.rs`).
    unsure: bool,
    /// What the seal file says (see `seal.rs`).
    seal: seal::SealState,
    /// Whether group commits are queued for replication (see `replication.rs`).
    replicating: bool,
    /// The sequence number of the next replicated result, once looked up.
    replication_next: Option<u64>,
}

impl std::fmt::Debug for Ledger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ledger")
            .field("path", &self.path)
            .field("block_records", &self.block_records)
            .finish_non_exhaustive()
    }
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
        let store = Store::open(path, options.cache_capacity, options.lock_wait)?;
        make_private(path)?;
        let ledger = Ledger {
            path: path.to_path_buf(),
            cache_capacity: options.cache_capacity,
            lock_wait: options.lock_wait,
            store: RwLock::new(Some(Arc::new(store))),
            io_failure: Mutex::new(None),
            spoiled: Mutex::new(None),
            block_records: options.block_records.clamp(1, 65_535),
            checkpoint_every: options.checkpoint_every,
            writer: Mutex::new(Writer::default()),
            open: RwLock::default(),
            damage: Mutex::default(),
        };
        {
            let mut writer = ledger.lock_writer();
            ledger.start_writer(&mut writer)?;
        }
        Ok(ledger)
    }

    /// Checks the format and brings the writer's state in line with what is stored: at open
    /// and after a reopen.
    fn start_writer(&self, writer: &mut Writer) -> Result<(), LedgerError> {
        self.check_format()?;
        *writer = Writer {
            next_id: self.next_probe_id()?,
            // A reopen keeps replicating; the next sequence number is looked up again.
            replicating: writer.replicating,
            // Until the replay below has finished, every write must replay first.
            stale: true,
            ..Writer::default()
        };
        self.open_blocks_mut().clear();
        // An import the previous run (or opening) committed is applied, or one it did not
        // commit swept, before anything reads (see `staging.rs`).
        let imported = self.apply_committed_import()?;
        // Open blocks of the previous run (or opening) are sealed, with whatever its journal
        // held beyond them: this one starts new ones.
        self.replay_journal(writer)?;
        let settled = match imported {
            Some(blocks) => {
                self.settle_import(writer, blocks)?;
                true
            }
            None => false,
        };
        // Only now is everything the ledger holds in its blocks, to compare with the seal.
        self.load_seal(writer)?;
        if settled {
            // The import completed here was never counted in the seal: count again.
            self.tally_unsure(writer);
            self.write_seal(writer);
        }
        Ok(())
    }

    fn check_format(&self) -> Result<(), LedgerError> {
        let store = self.store()?;
        match store.meta.get(FORMAT_KEY).map_err(|e| self.sled_error(e))? {
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
                // Ledgers made before the file existed get it now.
                self.mark_created()
            }
            None => {
                let has_data = [
                    &store.probes,
                    &store.results,
                    &store.rollups,
                    &store.markers,
                ]
                .iter()
                .any(|tree| !tree.is_empty());
                if has_data {
                    return Err(self.corrupt("format version", "missing, but the ledger has data"));
                }
                if self.path.join(CREATED_FILE).exists() {
                    return Err(self.corrupt(
                        "its database",
                        "sled finds nothing in it although it was created before: \
                         its files are truncated or damaged",
                    ));
                }
                store
                    .meta
                    .insert(FORMAT_KEY, &FORMAT_VERSION.to_be_bytes()[..])
                    .map_err(|e| self.sled_error(e))?;
                self.flush()?;
                self.mark_created()
            }
        }
    }

    /// Writes [`CREATED_FILE`] unless it is there: from now on, an empty database in this
    /// directory is a damaged ledger, not a new one.
    fn mark_created(&self) -> Result<(), LedgerError> {
        let file = self.path.join(CREATED_FILE);
        if file.exists() {
            return Ok(());
        }
        use std::{io::Write, os::unix::fs::OpenOptionsExt};
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&file)
            .and_then(|mut out| {
                writeln!(
                    out,
                    "upledger ledger, format {FORMAT_VERSION}: sled's files in this directory \
                     hold results; do not remove this file while they are here"
                )
            })
            .map_err(|source| LedgerError::Io { path: file, source })
    }

    fn next_probe_id(&self) -> Result<u32, LedgerError> {
        let last = self
            .store()?
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

    /// Records a daemon start, stop or write outage, flushed: reports use markers to tell a
    /// stopped monitor, or one that could not write, from a silent probe.
    pub fn record_marker(&self, marker: Marker) -> Result<(), LedgerError> {
        let mut key = [0u8; 9];
        key[..8].copy_from_slice(&ordered_ms(ms_floor(marker.at)));
        key[8] = marker.kind.code();
        self.store()?
            .markers
            .insert(key, marker.kind.value())
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
        for item in self
            .store()?
            .markers
            .range(ordered_ms(from_ms)..ordered_ms(to_ms))
        {
            let (key, value) = item.map_err(|e| self.sled_error(e))?;
            let parsed = <[u8; 9]>::try_from(key.as_ref()).ok().and_then(|key| {
                let mut time = [0u8; 8];
                time.copy_from_slice(&key[..8]);
                Some(Marker {
                    at: timestamp_from_ms(ms_from_ordered(time))?,
                    kind: MarkerKind::decode(key[8], &value)?,
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

    /// Stores `rollup` as the whole rollup of `probe` for `period`, replacing any stored one:
    /// for rollups recomputed from digests (`query::days`), which a retry may write twice.
    /// Not flushed by itself.
    pub fn put_rollup(
        &self,
        probe: &ProbeName,
        period: RollupPeriod,
        rollup: &Rollup,
    ) -> Result<(), LedgerError> {
        let mut writer = self.lock_writer();
        let id = self.probe_id_for_write(&mut writer, probe)?;
        let key = rollup::rollup_key(id, period.kind, ms_floor(period.start));
        self.store()?
            .rollups
            .insert(key, rollup.encode())
            .map_err(|e| self.sled_error(e))?;
        Ok(())
    }

    /// Where `probe`'s oldest stored block starts (its first result, unless pruned), if it
    /// has any result.
    pub fn first_result(&self, probe: &ProbeName) -> Result<Option<Timestamp>, LedgerError> {
        let Some(id) = self.probe_id(probe)? else {
            return Ok(None);
        };
        Ok(self.first_result_ms(id)?.and_then(timestamp_from_ms))
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
        for item in self.store()?.rollups.range(lo..hi) {
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

    /// Proves the ledger takes writes: stores the time in `meta` and flushes (`/healthz`).
    pub fn health_check(&self) -> Result<(), LedgerError> {
        let now = Timestamp::now().as_millisecond();
        self.store()?
            .meta
            .insert(b"health_check", &now.to_be_bytes()[..])
            .map_err(|e| self.sled_error(e))?;
        self.flush()
    }

    /// Whether a storage I/O error has spent the current opening, and what it was: then every
    /// write fails until [`Ledger::recover`] has reopened the ledger.
    pub fn io_failure(&self) -> Option<String> {
        let failure = self.lock_io_failure().clone();
        failure.or_else(|| {
            self.store()
                .err()
                .map(|_| "the ledger is not open: a reopen failed".to_owned())
        })
    }

    /// Makes the ledger writable again after a storage I/O error (a full disk), in process.
    ///
    /// sled 0.34 remembers the first I/O error of an opening and refuses every later write
    /// with it, even once space has returned; only a new opening forgets it. So this checks
    /// first that the ledger's file system takes [`SPACE_CHECK_BYTES`] (while it does not,
    /// the spent opening stays in place for readers and this fails with
    /// [`LedgerError::Io`]), then drops the opening, opens the ledger again — waiting up to
    /// [`REOPEN_LOCK_WAIT`] for readers still holding the old one to finish — and replays
    /// the journal, as a start would. Every handle to the ledger sees the new opening; while
    /// it is under way, operations fail with [`LedgerError::Storage`] instead of waiting.
    ///
    /// What a write reported as flushed before the error is on disk and survives; what it
    /// had not flushed is gone, and the writer's caller is expected to write it again (the
    /// next [`Ledger::append`] skips results that are stored after all).
    pub fn recover(&self) -> Result<Recovery, LedgerError> {
        let mut writer = self.lock_writer();
        if let Some(corrupt) = self.spoiled_error() {
            return Err(corrupt);
        }
        if self.lock_io_failure().is_none() && self.store().is_ok() {
            return Ok(Recovery::NotNeeded);
        }
        self.check_space()?;
        if let Some(spent) = self.set_store(None) {
            // The last handle of this opening (unless a reader still has one): sled lets go
            // of its directory lock once its background threads have finished.
            drop(spent);
        }
        *self.lock_io_failure() = None;
        let store = Store::open(
            &self.path,
            self.cache_capacity,
            self.lock_wait.max(REOPEN_LOCK_WAIT),
        )?;
        self.set_store(Some(Arc::new(store)));
        self.start_writer(&mut writer)?;
        // A failed append may have stored part of its batch; its retry must not store it twice.
        writer.unsure = true;
        Ok(Recovery::Reopened)
    }

    /// Writes, syncs and removes a file of [`SPACE_CHECK_BYTES`] in the ledger directory: a
    /// cheap test that a reopen has room to work with.
    fn check_space(&self) -> Result<(), LedgerError> {
        use std::io::Write;
        let file = self.path.join(SPACE_CHECK_FILE);
        let io_error = |source| LedgerError::Io {
            path: file.clone(),
            source,
        };
        let written = std::fs::File::create(&file).and_then(|mut out| {
            let chunk = vec![0u8; 64 * 1024];
            let mut left = SPACE_CHECK_BYTES;
            while left > 0 {
                let n = left.min(chunk.len());
                out.write_all(&chunk[..n])?;
                left -= n;
            }
            out.sync_all()
        });
        let removed = std::fs::remove_file(&file);
        written.map_err(io_error)?;
        removed.map_err(io_error)
    }

    /// Makes everything written so far durable (see the module docs for what that means).
    pub fn flush(&self) -> Result<(), LedgerError> {
        self.store()?.db.flush().map_err(|e| self.sled_error(e))?;
        Ok(())
    }

    /// Bytes the ledger directory takes (sum of its files' lengths), for `/metrics` and the
    /// retention advice in reports.
    pub fn size_on_disk(&self) -> Result<u64, LedgerError> {
        directory_size(&self.path)
    }

    /// Runs `f` on the ledger, turning a panic of sled inside it — damaged files can make
    /// sled panic instead of returning an error — into [`LedgerError::Corrupt`] naming the
    /// ledger. After such a panic the ledger is unusable: its sled handles are dropped, since
    /// sled may have left them half-updated, and every later call fails with that error.
    pub fn guard<T, E>(&self, f: impl FnOnce(&Ledger) -> Result<T, E>) -> Result<T, E>
    where
        E: From<LedgerError>,
    {
        match guard::catch(&self.path, "reading it", || f(self)) {
            Ok(outcome) => outcome,
            Err(corrupt) => {
                if let LedgerError::Corrupt { reason, .. } = &corrupt {
                    *self.lock_spoiled() = Some(reason.clone());
                }
                // Dropping the handles runs sled's own clean-up, which may panic as well.
                let _ = guard::catch(&self.path, "closing it", || self.set_store(None));
                Err(corrupt.into())
            }
        }
    }

    // ---- internals ----

    /// The writer state; a panic in another writer (poisoned lock) only costs the open blocks.
    fn lock_writer(&self) -> MutexGuard<'_, Writer> {
        self.writer.lock().unwrap_or_else(|poisoned| {
            let mut writer = poisoned.into_inner();
            self.open_blocks_mut().clear();
            writer.stale = true;
            writer
        })
    }

    /// The open blocks, for reading. A panic while they were written (poisoned lock) leaves
    /// them as they were; the writer that panicked marked itself stale, so they are
    /// replaced before the next write.
    fn open_blocks(&self) -> RwLockReadGuard<'_, FxHashMap<u32, OpenBlock>> {
        self.open
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn open_blocks_mut(&self) -> RwLockWriteGuard<'_, FxHashMap<u32, OpenBlock>> {
        self.open
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
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
                if id > blocks::MAX_PROBE_ID {
                    return Err(LedgerError::Storage {
                        path: self.path.clone(),
                        message: "probe ids exhausted".to_owned(),
                        io: false,
                    });
                }
                writer.next_id = id + 1;
                // The id → name entry first: a name never points to an id without a name.
                self.store()?
                    .probes
                    .insert(id_key(id), probe.as_str().as_bytes())
                    .map_err(|e| self.sled_error(e))?;
                self.store()?
                    .probes
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
            .store()?
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
        for item in self.store()?.probes.scan_prefix([NAME_PREFIX]) {
            let (key, value) = item.map_err(|e| self.sled_error(e))?;
            let parsed = std::str::from_utf8(&key[1..])
                .ok()
                .and_then(|name| ProbeName::stored(name).ok())
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

    /// Translates a sled error; an I/O error also marks the current opening as spent (see
    /// [`Ledger::io_failure`]).
    fn sled_error(&self, error: sled::Error) -> LedgerError {
        let error = LedgerError::from_sled(&self.path, error);
        if let LedgerError::Storage {
            io: true, message, ..
        } = &error
        {
            *self.lock_io_failure() = Some(message.clone());
        }
        error
    }

    fn lock_io_failure(&self) -> MutexGuard<'_, Option<String>> {
        self.io_failure
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn lock_spoiled(&self) -> MutexGuard<'_, Option<String>> {
        self.spoiled
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The error every call returns once sled has panicked on this ledger.
    fn spoiled_error(&self) -> Option<LedgerError> {
        let spoiled = self.lock_spoiled();
        spoiled
            .as_ref()
            .map(|reason| self.corrupt("reading it", reason.clone()))
    }

    /// The sled handles of the current opening, or an error while there is none (a reopen is
    /// under way or failed).
    fn store(&self) -> Result<Arc<Store>, LedgerError> {
        if let Some(corrupt) = self.spoiled_error() {
            return Err(corrupt);
        }
        let current = self
            .store
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        current
            .as_ref()
            .map(Arc::clone)
            .ok_or_else(|| LedgerError::Storage {
                path: self.path.clone(),
                message: "the ledger is being reopened after a write error".to_owned(),
                io: false,
            })
    }

    fn set_store(&self, store: Option<Arc<Store>>) -> Option<Arc<Store>> {
        let mut current = self
            .store
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        std::mem::replace(&mut *current, store)
    }
}

impl Drop for Ledger {
    fn drop(&mut self) {
        // Best effort: sled flushes on its own too, and a failure here has no one to tell.
        if let Ok(store) = self.store() {
            let _ = store.db.flush();
        }
    }
}

/// Gives the ledger directory mode 0700 and everything in it 0600 (folders 0700), whatever
/// the umask: results, exclusions and who entered them are for the daemon's user only.
/// sled creates its files with the process's umask (world-readable under the usual 022),
/// and files it creates later sit in the 0700 directory, out of others' reach.
fn make_private(dir: &Path) -> Result<(), LedgerError> {
    use std::os::unix::fs::PermissionsExt;
    let io_error = |path: &Path| {
        let path = path.to_path_buf();
        move |source| LedgerError::Io { path, source }
    };
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(io_error(dir))?;
    for entry in std::fs::read_dir(dir).map_err(io_error(dir))? {
        let entry = entry.map_err(io_error(dir))?;
        let path = entry.path();
        if entry.file_type().map_err(io_error(&path))?.is_dir() {
            make_private(&path)?;
        } else {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
                .map_err(io_error(&path))?;
        }
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
