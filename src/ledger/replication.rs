//! What an agent owes its coordinator (SPEC §9): every result, in order, from a cursor that
//! survives restarts, and the location it checked from.
//!
//! While replication is on ([`Ledger::set_replicating`]), each group commit's journal entry
//! is also stored in the `replication` tree, under the sequence number of its first result,
//! *in the same sled transaction* as the journal entry: a result that is durable is always
//! queued for the coordinator, and one that is not never is — `kill -9` at any moment
//! neither loses nor invents a replicated result. The publisher reads entries from the
//! cursor (the sequence number of the first result not yet acknowledged by JetStream),
//! advances the cursor once JetStream has them, and drops entries behind it. An outage of
//! the transport only makes the tree longer: about 4 bytes per result, as in the journal.
//!
//! The location history (`meta` keys `location/` ++ time) records each location the daemon
//! started with, so `export` can say where every result was checked from.

use jiff::Timestamp;
use sled::Transactional;

use super::encoding::{ms_floor, ordered_ms};
use super::journal::{checked_entry, decode_entry};
use super::{Ledger, LedgerError, ResultRecord, Writer, hex};
use crate::model::{LocationName, ProbeName};

/// `meta` key of the replication cursor.
const CURSOR_KEY: &[u8] = b"replication_cursor";
/// `meta` key prefix of the location history.
const LOCATION_PREFIX: &[u8] = b"location/";

/// Results published or stored from one entry that is not yet fully acknowledged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicationEntry {
    /// Sequence number of `records[0]`; the others follow one by one.
    pub first_seq: u64,
    /// The results, in the order they were written.
    pub records: Vec<ResultRecord>,
}

impl ReplicationEntry {
    /// The sequence number after the last record.
    pub fn end_seq(&self) -> u64 {
        self.first_seq + self.records.len() as u64
    }
}

impl Ledger {
    /// Turns replication on or off for the following group commits (an agent's
    /// `[replication]`). Results written while it was off are never replicated.
    pub fn set_replicating(&self, on: bool) {
        self.lock_writer().replicating = on;
    }

    /// Stores a group commit's journal entry, and with replication on its replication entry
    /// in the same transaction (not flushed: the caller flushes).
    pub(super) fn insert_journal_entry(
        &self,
        writer: &mut Writer,
        key: [u8; 8],
        bytes: Vec<u8>,
        records: u64,
    ) -> Result<(), LedgerError> {
        let store = self.store()?;
        if !writer.replicating {
            store
                .journal
                .insert(key, checked_entry(&key, bytes))
                .map_err(|e| self.sled_error(e))?;
            return Ok(());
        }
        let first_seq = self.next_replication_seq(writer)?;
        let replication_key = first_seq.to_be_bytes();
        let replication_value = checked_entry(&replication_key, bytes.clone());
        let journal_value = checked_entry(&key, bytes);
        (&store.journal, &store.replication)
            .transaction(|(journal, replication)| {
                journal.insert(&key, journal_value.as_slice())?;
                replication.insert(&replication_key, replication_value.as_slice())?;
                Ok::<(), sled::transaction::ConflictableTransactionError<()>>(())
            })
            .map_err(|e| match e {
                sled::transaction::TransactionError::Storage(e) => self.sled_error(e),
                sled::transaction::TransactionError::Abort(()) => {
                    self.corrupt("replication", "the journal transaction was aborted")
                }
            })?;
        writer.replication_next = Some(first_seq + records);
        Ok(())
    }

    /// The sequence number the next replicated result gets: after the newest entry, and
    /// never behind the cursor (entries behind it are dropped).
    fn next_replication_seq(&self, writer: &mut Writer) -> Result<u64, LedgerError> {
        if let Some(next) = writer.replication_next {
            return Ok(next);
        }
        let store = self.store()?;
        let after_last = match store.replication.last().map_err(|e| self.sled_error(e))? {
            None => 0,
            Some((key, value)) => self.entry_end(&key, &value)?,
        };
        let next = after_last.max(self.replication_cursor()?);
        writer.replication_next = Some(next);
        Ok(next)
    }

    /// The sequence number after the last result of the entry stored under `key`.
    fn entry_end(&self, key: &[u8], value: &[u8]) -> Result<u64, LedgerError> {
        let first = entry_seq(key)
            .ok_or_else(|| self.corrupt("replication", format!("key {}", hex(key))))?;
        let mut count = 0u64;
        decode_entry(key, value, &mut |_, _| {
            count += 1;
            Ok(())
        })
        .map_err(|reason| self.corrupt("replication", reason))?;
        Ok(first + count)
    }

    /// The sequence number of the first result JetStream has not acknowledged.
    pub fn replication_cursor(&self) -> Result<u64, LedgerError> {
        let stored = self
            .store()?
            .meta
            .get(CURSOR_KEY)
            .map_err(|e| self.sled_error(e))?;
        match stored {
            None => Ok(0),
            Some(bytes) => <[u8; 8]>::try_from(bytes.as_ref())
                .map(u64::from_be_bytes)
                .map_err(|_| self.corrupt("replication cursor", "not an 8-byte number")),
        }
    }

    /// Up to `max_records` results from the cursor on, by entry (an entry already partly
    /// acknowledged starts at the cursor), oldest first. `names` caches probe names by id
    /// across calls (ids never change meaning): the publisher calls this after every group
    /// commit, and reading the whole probe index each time cost more than the rest.
    pub fn replication_pending(
        &self,
        max_records: usize,
        names: &mut ProbeNames,
    ) -> Result<Vec<ReplicationEntry>, LedgerError> {
        let cursor = self.replication_cursor()?;
        let store = self.store()?;
        let mut entries = Vec::new();
        let mut taken = 0usize;
        // The entry holding the cursor may start before it.
        let start = match store
            .replication
            .range(..=cursor.to_be_bytes())
            .next_back()
            .transpose()
            .map_err(|e| self.sled_error(e))?
        {
            Some((key, _)) => key,
            None => sled::IVec::from(&cursor.to_be_bytes()[..]),
        };
        for item in store.replication.range(start..) {
            if taken >= max_records {
                break;
            }
            let (key, value) = item.map_err(|e| self.sled_error(e))?;
            let first = entry_seq(&key)
                .ok_or_else(|| self.corrupt("replication", format!("key {}", hex(&key))))?;
            let mut records = Vec::new();
            let mut missing = None;
            decode_entry(&key, &value, &mut |id, record| {
                if !names.0.contains_key(&id)
                    && let Some(name) = self.probe_name(id)?
                {
                    names.0.insert(id, name);
                }
                match names
                    .0
                    .get(&id)
                    .and_then(|name| ResultRecord::from_ref(name, &record))
                {
                    Some(full) => records.push(full),
                    None => missing = Some(id),
                }
                Ok(())
            })
            .map_err(|reason| self.corrupt("replication", reason))?;
            if let Some(id) = missing {
                return Err(
                    self.corrupt("replication", format!("a record of unknown probe id {id}"))
                );
            }
            let skip = usize::try_from(cursor.saturating_sub(first)).unwrap_or(usize::MAX);
            if skip >= records.len() {
                continue;
            }
            records.drain(..skip);
            taken += records.len();
            entries.push(ReplicationEntry {
                first_seq: first.max(cursor),
                records,
            });
        }
        Ok(entries)
    }

    /// JetStream has every result before `cursor`: stores the cursor (flushed), then drops
    /// the entries wholly behind it. A cursor behind the stored one is ignored.
    pub fn advance_replication(&self, cursor: u64) -> Result<(), LedgerError> {
        if cursor <= self.replication_cursor()? {
            return Ok(());
        }
        let store = self.store()?;
        store
            .meta
            .insert(CURSOR_KEY, &cursor.to_be_bytes())
            .map_err(|e| self.sled_error(e))?;
        self.flush()?;
        // Entries follow one another: every entry before the last one starting behind the
        // cursor ends behind it; that last one may reach past it.
        let keys: Vec<sled::IVec> = store
            .replication
            .range(..cursor.to_be_bytes())
            .keys()
            .collect::<Result<_, _>>()
            .map_err(|e| self.sled_error(e))?;
        let Some((last, before)) = keys.split_last() else {
            return Ok(());
        };
        let mut removals = sled::Batch::default();
        for key in before {
            removals.remove(key);
        }
        let last_value = store
            .replication
            .get(last)
            .map_err(|e| self.sled_error(e))?;
        if let Some(value) = last_value
            && self.entry_end(last, &value)? <= cursor
        {
            removals.remove(last);
        }
        store
            .replication
            .apply_batch(removals)
            .map_err(|e| self.sled_error(e))?;
        Ok(())
    }

    /// Results written but not yet acknowledged, for `/metrics` and the log.
    pub fn replication_backlog(&self) -> Result<u64, LedgerError> {
        let cursor = self.replication_cursor()?;
        let next = {
            let mut writer = self.lock_writer();
            self.next_replication_seq(&mut writer)?
        };
        Ok(next.saturating_sub(cursor))
    }

    /// The name of probe `id`, if registered.
    fn probe_name(&self, id: u32) -> Result<Option<ProbeName>, LedgerError> {
        let stored = self
            .store()?
            .probes
            .get(super::id_key(id))
            .map_err(|e| self.sled_error(e))?;
        stored
            .map(|bytes| {
                std::str::from_utf8(&bytes)
                    .ok()
                    .and_then(|name| ProbeName::stored(name).ok())
                    .ok_or_else(|| self.corrupt("probe index", format!("name of id {id}")))
            })
            .transpose()
    }

    /// Records that results from `at` on are checked from `location`, unless that is already
    /// the newest location on record. Flushed.
    pub fn note_location(&self, location: &LocationName, at: Timestamp) -> Result<(), LedgerError> {
        if self.location_at(at)?.as_ref() == Some(location) {
            return Ok(());
        }
        let mut key = LOCATION_PREFIX.to_vec();
        key.extend_from_slice(&ordered_ms(ms_floor(at)));
        self.store()?
            .meta
            .insert(key, location.as_str().as_bytes())
            .map_err(|e| self.sled_error(e))?;
        self.flush()
    }

    /// The location this ledger's daemon checked from at `at`; `None` before the first one
    /// on record (ledgers from before locations).
    pub fn location_at(&self, at: Timestamp) -> Result<Option<LocationName>, LedgerError> {
        let mut until = LOCATION_PREFIX.to_vec();
        until.extend_from_slice(&ordered_ms(ms_floor(at)));
        let store = self.store()?;
        let found = store
            .meta
            .range(LOCATION_PREFIX.to_vec()..=until)
            .next_back()
            .transpose()
            .map_err(|e| self.sled_error(e))?;
        let Some((key, value)) = found else {
            return Ok(None);
        };
        std::str::from_utf8(&value)
            .ok()
            .and_then(|name| LocationName::new(name).ok())
            .map(Some)
            .ok_or_else(|| self.corrupt("location history", format!("entry {}", hex(&key))))
    }
}

/// Probe names by id, as [`Ledger::replication_pending`] looks them up.
#[derive(Debug, Default)]
pub struct ProbeNames(rustc_hash::FxHashMap<u32, ProbeName>);

fn entry_seq(key: &[u8]) -> Option<u64> {
    <[u8; 8]>::try_from(key).ok().map(u64::from_be_bytes)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::model::Outcome;

    fn record(probe: &str, second: i64) -> ResultRecord {
        ResultRecord {
            probe: ProbeName::new(probe).expect("name"),
            at: Timestamp::from_second(1_764_547_200 + second).expect("time"),
            latency: Duration::from_micros(1_500),
            outcome: Outcome::Up,
            error_class: None,
            detail: String::new(),
        }
    }

    fn seqs(entries: &[ReplicationEntry]) -> Vec<(u64, usize)> {
        entries
            .iter()
            .map(|e| (e.first_seq, e.records.len()))
            .collect()
    }

    #[test]
    fn results_queue_from_a_cursor_that_survives_reopening() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("ledger");
        let first = [record("web", 0), record("api", 0)];
        {
            let ledger = Ledger::open(&path).expect("open");
            ledger
                .append(&[record("web", -10)])
                .expect("before replication");
            ledger.set_replicating(true);
            ledger.append(&first).expect("append");
            ledger.append(&[record("web", 1)]).expect("append");
            let pending = ledger
                .replication_pending(100, &mut ProbeNames::default())
                .expect("pending");
            assert_eq!(seqs(&pending), vec![(0, 2), (2, 1)]);
            assert_eq!(pending[0].records, first.to_vec());
            // Half of the first entry is acknowledged.
            ledger.advance_replication(1).expect("advance");
            assert_eq!(
                seqs(
                    &ledger
                        .replication_pending(100, &mut ProbeNames::default())
                        .expect("p")
                ),
                vec![(1, 1), (2, 1)]
            );
            assert_eq!(ledger.replication_backlog().expect("backlog"), 2);
        }
        // Reopened (as after kill -9: nothing was checkpointed): the cursor and the queue stay,
        // and new results continue the sequence.
        let ledger = Ledger::open(&path).expect("reopen");
        ledger.set_replicating(true);
        ledger.append(&[record("web", 2)]).expect("append");
        assert_eq!(
            seqs(
                &ledger
                    .replication_pending(100, &mut ProbeNames::default())
                    .expect("p")
            ),
            vec![(1, 1), (2, 1), (3, 1)]
        );
        assert_eq!(
            seqs(
                &ledger
                    .replication_pending(1, &mut ProbeNames::default())
                    .expect("p")
            ),
            vec![(1, 1)]
        );
        ledger.advance_replication(4).expect("advance");
        assert!(
            ledger
                .replication_pending(100, &mut ProbeNames::default())
                .expect("p")
                .is_empty()
        );
        ledger
            .advance_replication(2)
            .expect("a cursor behind is ignored");
        assert_eq!(ledger.replication_cursor().expect("cursor"), 4);
        ledger.append(&[record("web", 3)]).expect("append");
        assert_eq!(
            seqs(
                &ledger
                    .replication_pending(100, &mut ProbeNames::default())
                    .expect("p")
            ),
            vec![(4, 1)]
        );
    }

    #[test]
    fn the_location_history_answers_for_any_time() {
        let dir = tempfile::tempdir().expect("dir");
        let ledger = Ledger::open(&dir.path().join("ledger")).expect("open");
        let at = |s: i64| Timestamp::from_second(1_764_547_200 + s).expect("time");
        let fra = LocationName::new("fra1").expect("name");
        let nyc = LocationName::new("nyc1").expect("name");
        assert_eq!(ledger.location_at(at(0)).expect("read"), None);
        ledger.note_location(&fra, at(0)).expect("note");
        ledger
            .note_location(&fra, at(50))
            .expect("same again: kept once");
        ledger.note_location(&nyc, at(100)).expect("note");
        assert_eq!(ledger.location_at(at(-1)).expect("read"), None);
        assert_eq!(ledger.location_at(at(0)).expect("read"), Some(fra.clone()));
        assert_eq!(ledger.location_at(at(99)).expect("read"), Some(fra));
        assert_eq!(ledger.location_at(at(100)).expect("read"), Some(nyc));
    }
}
