//! The alert outbox: every alert is stored here before anyone tries to deliver it, and stays
//! until it is delivered or given up on, so neither a restart nor a dead receiver loses one.
//!
//! Tree `outbox`, key `sequence (u64 BE, from sled's id generator)`: entries sort in the order
//! they were created, across restarts. Values are JSON ([`OutboxEntry`]): alerts are rare, and
//! the payload is JSON already. The ledger does not know what an alert means; the `alert`
//! module builds payloads and decides retries.
//!
//! Tree `alert_marks` holds, by name, the alerts that may go out only once: a budget threshold
//! per month, a burn-rate rule while it keeps firing, a closed month's report per SLA
//! ([`Ledger::outbox_add_once`], which stores the mark and the entries in one transaction).

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use sled::Transactional;

use super::{Ledger, LedgerError, hex};

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Waiting for its (next) attempt.
    Pending,
    /// The channel accepted it.
    Delivered,
    /// Given up on after retrying for too long.
    Failed,
}

/// One alert for one channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxEntry {
    /// The delivery id: unique, the same on every attempt (receivers deduplicate with it).
    pub id: String,
    /// The channel it goes to.
    pub channel: String,
    /// The event name (`down`, `up`, …).
    pub event: String,
    /// The probe or SLA it is about, if any.
    pub subject: Option<String>,
    /// When the alert was raised.
    pub created: Timestamp,
    /// The event document (JSON); channels render it in their own form.
    pub payload: String,
    /// Attempts made so far.
    pub attempts: u32,
    /// When to try next (pending entries).
    pub next_attempt: Timestamp,
    /// Where it stands.
    pub status: DeliveryStatus,
    /// When it was delivered or given up on.
    pub settled: Option<Timestamp>,
    /// Why the last attempt failed; empty if none did.
    pub last_error: String,
}

/// A stored entry with its key, to update it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxItem {
    /// Position in the outbox.
    pub key: u64,
    /// The entry.
    pub entry: OutboxEntry,
}

impl Ledger {
    /// Stores new entries and flushes them: once this returns, the alerts survive a crash.
    pub fn outbox_add(&self, entries: &[OutboxEntry]) -> Result<Vec<u64>, LedgerError> {
        let mut keys = Vec::with_capacity(entries.len());
        let mut batch = sled::Batch::default();
        for entry in entries {
            let key = self
                .store()?
                .db
                .generate_id()
                .map_err(|e| self.sled_error(e))?;
            batch.insert(&key.to_be_bytes()[..], self.encode_entry(entry)?);
            keys.push(key);
        }
        self.store()?
            .outbox
            .apply_batch(batch)
            .map_err(|e| self.sled_error(e))?;
        self.flush()?;
        Ok(keys)
    }

    /// Stores `entries` and sets the once-only `mark` in one sled transaction, then flushes;
    /// returns `false`, storing nothing, when `mark` was set already. A crash leaves both or
    /// neither, so an alert that must be raised exactly once (a closed month's report, SPEC
    /// §10) is neither lost nor raised twice by a restart at the wrong moment.
    pub fn outbox_add_once(
        &self,
        mark: &str,
        entries: &[OutboxEntry],
    ) -> Result<bool, LedgerError> {
        let store = self.store()?;
        let mut encoded = Vec::with_capacity(entries.len());
        for entry in entries {
            // Ids are taken outside the transaction (a retried transaction must not take new
            // ones); an id left unused after an abort is only a gap in the order.
            let key = store.db.generate_id().map_err(|e| self.sled_error(e))?;
            encoded.push((key.to_be_bytes(), self.encode_entry(entry)?));
        }
        let stored = (&store.outbox, &store.alert_marks)
            .transaction(|(outbox, marks)| {
                if marks.get(mark.as_bytes())?.is_some() {
                    return Ok(false);
                }
                for (key, value) in &encoded {
                    outbox.insert(&key[..], value.as_slice())?;
                }
                marks.insert(mark.as_bytes(), &[][..])?;
                Ok::<bool, sled::transaction::ConflictableTransactionError<()>>(true)
            })
            .map_err(|e| match e {
                sled::transaction::TransactionError::Storage(e) => self.sled_error(e),
                sled::transaction::TransactionError::Abort(()) => {
                    self.corrupt("outbox", "the once-only transaction was aborted")
                }
            })?;
        if stored {
            self.flush()?;
        }
        Ok(stored)
    }

    /// Replaces a stored entry (after an attempt) and flushes.
    pub fn outbox_update(&self, item: &OutboxItem) -> Result<(), LedgerError> {
        self.store()?
            .outbox
            .insert(item.key.to_be_bytes(), self.encode_entry(&item.entry)?)
            .map_err(|e| self.sled_error(e))?;
        self.flush()
    }

    /// Pending entries, oldest first.
    pub fn outbox_pending(&self) -> Result<Vec<OutboxItem>, LedgerError> {
        let mut pending = Vec::new();
        self.outbox_visit(false, &mut |item| {
            if item.entry.status == DeliveryStatus::Pending {
                pending.push(item);
            }
            true
        })?;
        Ok(pending)
    }

    /// The newest `n` entries, newest first.
    pub fn outbox_recent(&self, n: usize) -> Result<Vec<OutboxItem>, LedgerError> {
        let mut recent = Vec::with_capacity(n.min(1024));
        self.outbox_visit(true, &mut |item| {
            recent.push(item);
            recent.len() < n
        })?;
        Ok(recent)
    }

    /// Drops settled entries settled before `cutoff`; returns how many.
    pub fn outbox_prune(&self, cutoff: Timestamp) -> Result<u64, LedgerError> {
        let mut old = Vec::new();
        self.outbox_visit(false, &mut |item| {
            if item.entry.settled.is_some_and(|at| at < cutoff) {
                old.push(item.key);
            }
            true
        })?;
        let mut batch = sled::Batch::default();
        for key in &old {
            batch.remove(&key.to_be_bytes()[..]);
        }
        self.store()?
            .outbox
            .apply_batch(batch)
            .map_err(|e| self.sled_error(e))?;
        Ok(old.len() as u64)
    }

    /// Whether the once-only alert `mark` (say `budget/2026-11/UTC/probe/api/75`) was set.
    pub fn alert_marked(&self, mark: &str) -> Result<bool, LedgerError> {
        self.store()?
            .alert_marks
            .contains_key(mark.as_bytes())
            .map_err(|e| self.sled_error(e))
    }

    /// Sets alert marks (after their alerts are in the outbox), clears `unmarks`, and flushes.
    pub fn mark_alerted(&self, marks: &[String], unmarks: &[String]) -> Result<(), LedgerError> {
        let mut batch = sled::Batch::default();
        for mark in unmarks {
            batch.remove(mark.as_bytes());
        }
        for mark in marks {
            batch.insert(mark.as_bytes(), &[][..]);
        }
        self.store()?
            .alert_marks
            .apply_batch(batch)
            .map_err(|e| self.sled_error(e))?;
        self.flush()
    }

    fn outbox_visit(
        &self,
        newest_first: bool,
        each: &mut dyn FnMut(OutboxItem) -> bool,
    ) -> Result<(), LedgerError> {
        let iter: Box<dyn Iterator<Item = sled::Result<(sled::IVec, sled::IVec)>>> = if newest_first
        {
            Box::new(self.store()?.outbox.iter().rev())
        } else {
            Box::new(self.store()?.outbox.iter())
        };
        for item in iter {
            let (key, value) = item.map_err(|e| self.sled_error(e))?;
            let key_bytes = <[u8; 8]>::try_from(key.as_ref())
                .map_err(|_| self.corrupt("outbox", format!("bad key {}", hex(&key))))?;
            let entry: OutboxEntry = serde_json::from_slice(&value)
                .map_err(|e| self.corrupt("outbox", format!("key {}: {e}", hex(&key))))?;
            if !each(OutboxItem {
                key: u64::from_be_bytes(key_bytes),
                entry,
            }) {
                break;
            }
        }
        Ok(())
    }

    fn encode_entry(&self, entry: &OutboxEntry) -> Result<Vec<u8>, LedgerError> {
        serde_json::to_vec(entry).map_err(|e| self.corrupt("outbox", e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: &str, created_s: i64) -> OutboxEntry {
        let at = Timestamp::from_second(1_790_000_000 + created_s).unwrap();
        OutboxEntry {
            id: id.to_owned(),
            channel: "ops".to_owned(),
            event: "down".to_owned(),
            subject: Some("api".to_owned()),
            created: at,
            payload: "{}".to_owned(),
            attempts: 0,
            next_attempt: at,
            status: DeliveryStatus::Pending,
            settled: None,
            last_error: String::new(),
        }
    }

    #[test]
    fn entries_keep_their_order_and_updates_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::open(dir.path()).unwrap();
        let keys = ledger
            .outbox_add(&[entry("a", 0), entry("b", 1), entry("c", 2)])
            .unwrap();
        assert!(keys.windows(2).all(|w| w[0] < w[1]));
        let mut first = ledger.outbox_pending().unwrap().remove(0);
        assert_eq!(first.entry.id, "a");
        first.entry.status = DeliveryStatus::Delivered;
        first.entry.attempts = 2;
        first.entry.settled = Some(first.entry.created);
        ledger.outbox_update(&first).unwrap();
        drop(ledger);

        let ledger = crate::ledger::tests::reopen(dir.path());
        let pending: Vec<String> = ledger
            .outbox_pending()
            .unwrap()
            .into_iter()
            .map(|i| i.entry.id)
            .collect();
        assert_eq!(pending, ["b", "c"]);
        let recent: Vec<String> = ledger
            .outbox_recent(2)
            .unwrap()
            .into_iter()
            .map(|i| i.entry.id)
            .collect();
        assert_eq!(recent, ["c", "b"]);
        // New ids after a reopen still sort after the old ones.
        let later = ledger.outbox_add(&[entry("d", 3)]).unwrap();
        assert!(later[0] > keys[2]);
        assert_eq!(
            ledger
                .outbox_prune(Timestamp::from_second(1_790_000_001).unwrap())
                .unwrap(),
            1
        );
        assert_eq!(ledger.outbox_recent(10).unwrap().len(), 3);
    }

    #[test]
    fn a_once_only_mark_stores_its_entries_once_across_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::open(dir.path()).unwrap();
        let mark = "report/2027-01/UTC/acme";
        assert!(!ledger.alert_marked(mark).unwrap());
        assert!(
            ledger
                .outbox_add_once(mark, &[entry("r-ops", 0), entry("r-desk", 0)])
                .unwrap()
        );
        assert!(ledger.alert_marked(mark).unwrap());
        assert!(!ledger.outbox_add_once(mark, &[entry("again", 1)]).unwrap());
        drop(ledger);

        let ledger = crate::ledger::tests::reopen(dir.path());
        assert!(!ledger.outbox_add_once(mark, &[entry("again", 2)]).unwrap());
        let ids: Vec<String> = ledger
            .outbox_pending()
            .unwrap()
            .into_iter()
            .map(|i| i.entry.id)
            .collect();
        assert_eq!(ids, ["r-ops", "r-desk"]);
        assert!(
            ledger
                .outbox_add_once("report/2027-01/UTC/other", &[entry("o", 3)])
                .unwrap()
        );
    }
}
