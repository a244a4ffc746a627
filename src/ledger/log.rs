//! Storage of the evidence log (SPEC §8): leaves, perfect-subtree hashes, the per-probe hour
//! cursor, which records already have their leaf, and signed checkpoints.
//!
//! The ledger only stores: hashing, what a leaf says and when one is due belong to
//! `evidence::log`. Everything one append writes — leaves, nodes, marks, the new size — goes
//! in one sled batch on one tree, which sled applies atomically, so a log read back after a
//! crash is always a whole number of appends. Checkpoints live in their own tree and are
//! written after the leaves they sign are durable.
//!
//! Keys of the `log` tree: `s` the size; `l`+index the leaf bytes; `n`+level+index a node
//! hash; `c`+probe the probe's hour cursor; `h`+probe+0+hour(ms) the leaf of a probe's hour;
//! `m`+kind+0+key a record (exclusion, sighting, import…) already leafed; `g`+name a value
//! (the last configuration or key leafed); `p`+size a checkpoint a signed report was
//! anchored in.

use jiff::Timestamp;

use super::{
    Ledger, LedgerError,
    encoding::{ms_from_ordered, ordered_ms, timestamp_from_ms},
};

/// Where a probe's hour leaves are: every leaf hour in `[first, next)` has one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HourCursor {
    /// Start of the first leaf hour on record.
    pub first: Timestamp,
    /// Start of the first leaf hour not yet on record.
    pub next: Timestamp,
}

/// The leaf of one probe's hour: its index in the log and the result count it committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HourMark {
    /// Index of the leaf.
    pub index: u64,
    /// Results it committed.
    pub count: u64,
    /// Length of its span in seconds (several hours for a run of empty ones).
    pub seconds: u64,
}

/// Everything one append to the log writes, applied atomically.
#[derive(Debug, Default)]
pub struct LogAppend {
    /// Size of the log before the append (checked against the stored size).
    pub size_before: u64,
    /// The new leaves, in order.
    pub leaves: Vec<Vec<u8>>,
    /// Node hashes completed by the new leaves.
    pub nodes: Vec<(u8, u64, [u8; 32])>,
    /// Hour marks: probe, hour start, mark.
    pub hours: Vec<(String, Timestamp, HourMark)>,
    /// Hour cursors: probe, cursor.
    pub cursors: Vec<(String, HourCursor)>,
    /// Records leafed: kind, key, leaf index.
    pub marks: Vec<(u8, Vec<u8>, u64)>,
    /// Named values: name, value.
    pub values: Vec<(String, Vec<u8>)>,
}

const SIZE: &[u8] = b"s";
const LEAF: u8 = b'l';
const NODE: u8 = b'n';
const CURSOR: u8 = b'c';
const HOUR: u8 = b'h';
const MARK: u8 = b'm';
const VALUE: u8 = b'g';
const PUBLISHED: u8 = b'p';

fn published_key(size: u64) -> [u8; 9] {
    let mut key = [0u8; 9];
    key[0] = PUBLISHED;
    key[1..].copy_from_slice(&size.to_be_bytes());
    key
}

fn leaf_key(index: u64) -> [u8; 9] {
    let mut key = [0u8; 9];
    key[0] = LEAF;
    key[1..].copy_from_slice(&index.to_be_bytes());
    key
}

fn node_key(level: u8, index: u64) -> [u8; 10] {
    let mut key = [0u8; 10];
    key[0] = NODE;
    key[1] = level;
    key[2..].copy_from_slice(&index.to_be_bytes());
    key
}

fn prefixed(prefix: u8, name: &[u8]) -> Vec<u8> {
    let mut key = Vec::with_capacity(name.len() + 1);
    key.push(prefix);
    key.extend_from_slice(name);
    key
}

fn hour_key(probe: &str, hour: Timestamp) -> Vec<u8> {
    let mut key = prefixed(HOUR, probe.as_bytes());
    key.push(0);
    key.extend_from_slice(&ordered_ms(hour.as_millisecond()));
    key
}

fn mark_key(kind: u8, record: &[u8]) -> Vec<u8> {
    let mut key = vec![MARK, kind, 0];
    key.extend_from_slice(record);
    key
}

fn u64_at(bytes: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_be_bytes(bytes.get(at..at + 8)?.try_into().ok()?))
}

fn ms_at(bytes: &[u8], at: usize) -> Option<Timestamp> {
    let ordered: [u8; 8] = bytes.get(at..at + 8)?.try_into().ok()?;
    timestamp_from_ms(ms_from_ordered(ordered))
}

impl Ledger {
    fn log_get(&self, key: &[u8]) -> Result<Option<sled::IVec>, LedgerError> {
        self.store()?.log.get(key).map_err(|e| self.sled_error(e))
    }

    /// Leaves in the log.
    pub fn log_size(&self) -> Result<u64, LedgerError> {
        Ok(self.log_get(SIZE)?.and_then(|v| u64_at(&v, 0)).unwrap_or(0))
    }

    /// The bytes of leaf `index`.
    pub fn log_leaf(&self, index: u64) -> Result<Option<Vec<u8>>, LedgerError> {
        Ok(self.log_get(&leaf_key(index))?.map(|v| v.to_vec()))
    }

    /// Leaves `[from, to)` with their indexes, in order.
    pub fn log_leaves(&self, from: u64, to: u64) -> Result<Vec<(u64, Vec<u8>)>, LedgerError> {
        let mut leaves = Vec::new();
        if from >= to {
            return Ok(leaves);
        }
        for item in self.store()?.log.range(leaf_key(from)..leaf_key(to)) {
            let (key, value) = item.map_err(|e| self.sled_error(e))?;
            if let Some(index) = u64_at(&key, 1) {
                leaves.push((index, value.to_vec()));
            }
        }
        Ok(leaves)
    }

    /// The stored hash of the perfect subtree `(level, index)`.
    pub fn log_node(&self, level: u8, index: u64) -> Result<Option<[u8; 32]>, LedgerError> {
        Ok(self
            .log_get(&node_key(level, index))?
            .and_then(|v| <[u8; 32]>::try_from(v.as_ref()).ok()))
    }

    /// A probe's hour cursor, when it has hour leaves.
    pub fn log_cursor(&self, probe: &str) -> Result<Option<HourCursor>, LedgerError> {
        Ok(self
            .log_get(&prefixed(CURSOR, probe.as_bytes()))?
            .and_then(|v| {
                Some(HourCursor {
                    first: ms_at(&v, 0)?,
                    next: ms_at(&v, 8)?,
                })
            }))
    }

    /// The leaf of a probe's hour, when it has one (the latest, if amended).
    pub fn log_hour(&self, probe: &str, hour: Timestamp) -> Result<Option<HourMark>, LedgerError> {
        Ok(self.log_get(&hour_key(probe, hour))?.and_then(|v| {
            Some(HourMark {
                index: u64_at(&v, 0)?,
                count: u64_at(&v, 8)?,
                seconds: u64_at(&v, 16)?,
            })
        }))
    }

    /// The latest leaf of a probe whose span starts at or before `at`, with its start, when
    /// that span reaches past `at`.
    pub fn log_hour_covering(
        &self,
        probe: &str,
        at: Timestamp,
    ) -> Result<Option<(Timestamp, HourMark)>, LedgerError> {
        let start = hour_key(probe, Timestamp::MIN);
        let mut end = hour_key(probe, at);
        end.push(0);
        let found = self
            .store()?
            .log
            .range(start..end)
            .next_back()
            .transpose()
            .map_err(|e| self.sled_error(e))?;
        Ok(found.and_then(|(key, value)| {
            let hour = ms_at(&key, key.len().saturating_sub(8))?;
            let mark = HourMark {
                index: u64_at(&value, 0)?,
                count: u64_at(&value, 8)?,
                seconds: u64_at(&value, 16)?,
            };
            let seconds = i64::try_from(mark.seconds).ok()?;
            let end = hour
                .checked_add(jiff::SignedDuration::from_secs(seconds))
                .ok()?;
            (end > at).then_some((hour, mark))
        }))
    }

    /// Every probe's hour leaves in `[from, to)`: hour start and mark, in time order.
    pub fn log_hours(
        &self,
        probe: &str,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<(Timestamp, HourMark)>, LedgerError> {
        let mut found = Vec::new();
        let start = hour_key(probe, from);
        let end = hour_key(probe, to);
        for item in self.store()?.log.range(start..end) {
            let (key, value) = item.map_err(|e| self.sled_error(e))?;
            let at = key.len().saturating_sub(8);
            if let (Some(hour), Some(index), Some(count), Some(seconds)) = (
                ms_at(&key, at),
                u64_at(&value, 0),
                u64_at(&value, 8),
                u64_at(&value, 16),
            ) {
                found.push((
                    hour,
                    HourMark {
                        index,
                        count,
                        seconds,
                    },
                ));
            }
        }
        Ok(found)
    }

    /// The leaf index of a record already leafed (`kind` tells which sort of record).
    pub fn log_mark(&self, kind: u8, record: &[u8]) -> Result<Option<u64>, LedgerError> {
        Ok(self
            .log_get(&mark_key(kind, record))?
            .and_then(|v| u64_at(&v, 0)))
    }

    /// A named value of the log (the last configuration or key leafed).
    pub fn log_value(&self, name: &str) -> Result<Option<Vec<u8>>, LedgerError> {
        Ok(self
            .log_get(&prefixed(VALUE, name.as_bytes()))?
            .map(|v| v.to_vec()))
    }

    /// Applies `append` atomically and makes it durable. Refused when the log's size is not
    /// `append.size_before` (someone else appended in between).
    pub fn log_append(&self, append: &LogAppend) -> Result<u64, LedgerError> {
        let size = self.log_size()?;
        if size != append.size_before {
            return Err(self.corrupt(
                "log",
                format!(
                    "the evidence log has {size} leaves, an append expected {}",
                    append.size_before
                ),
            ));
        }
        let mut batch = sled::Batch::default();
        let mut index = size;
        for leaf in &append.leaves {
            batch.insert(&leaf_key(index), leaf.as_slice());
            index += 1;
        }
        for (level, at, hash) in &append.nodes {
            batch.insert(&node_key(*level, *at), &hash[..]);
        }
        for (probe, hour, mark) in &append.hours {
            let mut value = mark.index.to_be_bytes().to_vec();
            value.extend_from_slice(&mark.count.to_be_bytes());
            value.extend_from_slice(&mark.seconds.to_be_bytes());
            batch.insert(hour_key(probe, *hour), value);
        }
        for (probe, cursor) in &append.cursors {
            let mut value = ordered_ms(cursor.first.as_millisecond()).to_vec();
            value.extend_from_slice(&ordered_ms(cursor.next.as_millisecond()));
            batch.insert(prefixed(CURSOR, probe.as_bytes()), value);
        }
        for (kind, record, leaf) in &append.marks {
            batch.insert(mark_key(*kind, record), &leaf.to_be_bytes());
        }
        for (name, value) in &append.values {
            batch.insert(prefixed(VALUE, name.as_bytes()), value.as_slice());
        }
        batch.insert(SIZE, &index.to_be_bytes());
        let store = self.store()?;
        store
            .log
            .apply_batch(batch)
            .map_err(|e| self.sled_error(e))?;
        store.db.flush().map_err(|e| self.sled_error(e))?;
        Ok(index)
    }

    /// Stores a signed checkpoint of the log at `size` (kept forever) and makes it durable.
    pub fn put_checkpoint(&self, size: u64, note: &str) -> Result<(), LedgerError> {
        let store = self.store()?;
        store
            .checkpoints
            .insert(size.to_be_bytes(), note.as_bytes())
            .map_err(|e| self.sled_error(e))?;
        store.db.flush().map_err(|e| self.sled_error(e))?;
        Ok(())
    }

    /// The checkpoint of the largest size at or below `size` (the latest with `u64::MAX`).
    pub fn checkpoint_at_or_before(&self, size: u64) -> Result<Option<(u64, String)>, LedgerError> {
        let found = self
            .store()?
            .checkpoints
            .range(..=size.to_be_bytes())
            .next_back();
        self.checkpoint_entry(found)
    }

    /// The checkpoint of the smallest size at or above `size`.
    pub fn checkpoint_at_or_after(&self, size: u64) -> Result<Option<(u64, String)>, LedgerError> {
        let found = self.store()?.checkpoints.range(size.to_be_bytes()..).next();
        self.checkpoint_entry(found)
    }

    /// A stored checkpoint as size and note.
    fn checkpoint_entry(
        &self,
        found: Option<sled::Result<(sled::IVec, sled::IVec)>>,
    ) -> Result<Option<(u64, String)>, LedgerError> {
        let found = found.transpose().map_err(|e| self.sled_error(e))?;
        Ok(found.and_then(|(key, value)| {
            Some((
                u64_at(&key, 0)?,
                String::from_utf8_lossy(&value).into_owned(),
            ))
        }))
    }

    /// Notes that a signed report or bundle was anchored in the checkpoint of `size`: later
    /// bundles prove the log extends it.
    pub fn publish_checkpoint(&self, size: u64) -> Result<(), LedgerError> {
        let store = self.store()?;
        store
            .log
            .insert(published_key(size), &[])
            .map_err(|e| self.sled_error(e))?;
        store.db.flush().map_err(|e| self.sled_error(e))?;
        Ok(())
    }

    /// The sizes of every published checkpoint, in order.
    pub fn published_sizes(&self) -> Result<Vec<u64>, LedgerError> {
        let mut sizes = Vec::new();
        for item in self.store()?.log.scan_prefix([PUBLISHED]).keys() {
            let key = item.map_err(|e| self.sled_error(e))?;
            sizes.extend(u64_at(&key, 1));
        }
        Ok(sizes)
    }

    /// Every stored checkpoint's size, in order.
    pub fn checkpoint_sizes(&self) -> Result<Vec<u64>, LedgerError> {
        let mut sizes = Vec::new();
        for item in self.store()?.checkpoints.iter().keys() {
            let key = item.map_err(|e| self.sled_error(e))?;
            sizes.extend(u64_at(&key, 0));
        }
        Ok(sizes)
    }
}
