//! Storage for witnessing (c2sp.org/tlog-witness), both ways round, in the `witness` tree.
//!
//! - **Log side**: this daemon's evidence log sends its checkpoints to witnesses and keeps the
//!   cosignature lines they return beside the checkpoint (so bundles can carry them), and the
//!   size each witness last cosigned (the `old` of the next request, so a restart does not
//!   start every witness from a 409).
//! - **Witness side**: this daemon witnesses other logs. For each origin it keeps the latest
//!   checkpoint it cosigned (which every later request must extend: tlog-witness requires it
//!   to be durable before the answer), evidence of forks, when the log was last heard from and
//!   whether its silence was already alerted.
//!
//! The ledger only stores; what is accepted and what is a fork is `evidence::witness`'s call.
//!
//! Keys (`origin` below is `u32 BE length ‖ origin bytes`, so that no origin is a prefix of
//! another's key and a prefix scan stops exactly at one origin's entries):
//! - `c` ‖ size (u64 BE) ‖ witness name → a cosignature line of our checkpoint of that size
//!   (scanning `c` ‖ size gives them in name order);
//! - `a` ‖ witness URL → the size (u64 BE) that witness last cosigned for us;
//! - `h` ‖ origin → the [`WitnessedHead`];
//! - `f` ‖ origin ‖ sequence (u64 BE) → a [`ForkRecord`]; `n` ‖ origin → the number of fork
//!   records ever made (u64 BE), from which the next sequence and the one to drop come;
//! - `l` ‖ origin → last heard (i128 BE nanoseconds);
//! - `s` ‖ origin → present (value `1`) while the log's silence is alerted.
//!
//! Values that are structures start with a version byte, so a later layout can be told apart.
//! Every write is flushed before returning: a witness's answer, an alert's suppression and a
//! cosignature a witness gave are all promises that must survive a crash.

use jiff::Timestamp;
use sled::transaction::{ConflictableTransactionError, TransactionError};

use super::{Ledger, LedgerError};

const COSIGNATURE: u8 = b'c';
const ACKED: u8 = b'a';
const HEAD: u8 = b'h';
const FORK: u8 = b'f';
const FORK_COUNT: u8 = b'n';
const LAST_HEARD: u8 = b'l';
const SILENT: u8 = b's';

/// The layout version of [`WitnessedHead`] and [`ForkRecord`] values.
const VERSION: u8 = 1;

/// Fork records kept per origin: the first (the one that was alerted) and the latest others.
/// A log that forked once will usually keep sending forked checkpoints; keeping them all
/// would let it (or anyone replaying its checkpoints) grow the ledger without bound.
pub const MAX_FORKS: u64 = 16;

/// The latest checkpoint this daemon cosigned for a log it witnesses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WitnessedHead {
    /// The tree size.
    pub size: u64,
    /// The root hash.
    pub root: [u8; 32],
    /// The checkpoint as cosigned: the log-signed note with our cosignature line appended
    /// (what `GET <origin hash>/checkpoint` serves).
    pub note: String,
    /// When it was cosigned.
    pub at: Timestamp,
}

/// Evidence that a witnessed log forked: a checkpoint it signed that cannot be consistent
/// with the head we cosigned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForkRecord {
    /// When the checkpoint arrived.
    pub at: Timestamp,
    /// The old size of the request.
    pub old: u64,
    /// The size of the offending checkpoint.
    pub size: u64,
    /// Its root hash.
    pub root: [u8; 32],
    /// The offending signed note, as received.
    pub note: String,
    /// Why it is a fork (what it conflicts with).
    pub reason: String,
}

fn origin_key(prefix: u8, origin: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(5 + origin.len());
    key.push(prefix);
    // Origins are short lines; one of 4 GiB cannot be built in a 64 KiB request.
    key.extend_from_slice(&(origin.len() as u32).to_be_bytes());
    key.extend_from_slice(origin.as_bytes());
    key
}

fn fork_key(origin: &str, sequence: u64) -> Vec<u8> {
    let mut key = origin_key(FORK, origin);
    key.extend_from_slice(&sequence.to_be_bytes());
    key
}

fn cosignature_prefix(size: u64) -> [u8; 9] {
    let mut key = [0u8; 9];
    key[0] = COSIGNATURE;
    key[1..].copy_from_slice(&size.to_be_bytes());
    key
}

fn nanos(at: Timestamp) -> [u8; 16] {
    at.as_nanosecond().to_be_bytes()
}

/// A reader over a stored value; every `None` is a value too short or out of range.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, rest) = (self.0.get(..n)?, self.0.get(n..)?);
        self.0 = rest;
        Some(head)
    }

    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_be_bytes(self.take(8)?.try_into().ok()?))
    }

    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_be_bytes(self.take(4)?.try_into().ok()?))
    }

    fn hash(&mut self) -> Option<[u8; 32]> {
        self.take(32)?.try_into().ok()
    }

    fn timestamp(&mut self) -> Option<Timestamp> {
        let ns = i128::from_be_bytes(self.take(16)?.try_into().ok()?);
        Timestamp::from_nanosecond(ns).ok()
    }

    fn text(&mut self, n: usize) -> Option<String> {
        String::from_utf8(self.take(n)?.to_vec()).ok()
    }

    fn rest_text(&mut self) -> Option<String> {
        let n = self.0.len();
        self.text(n)
    }
}

impl WitnessedHead {
    /// `1 ‖ size ‖ root ‖ at (i128 ns) ‖ note`.
    fn encode(&self) -> Vec<u8> {
        let mut value = Vec::with_capacity(57 + self.note.len());
        value.push(VERSION);
        value.extend_from_slice(&self.size.to_be_bytes());
        value.extend_from_slice(&self.root);
        value.extend_from_slice(&nanos(self.at));
        value.extend_from_slice(self.note.as_bytes());
        value
    }

    fn decode(value: &[u8]) -> Option<Self> {
        let mut reader = Reader(value);
        if reader.take(1)? != [VERSION] {
            return None;
        }
        Some(WitnessedHead {
            size: reader.u64()?,
            root: reader.hash()?,
            at: reader.timestamp()?,
            note: reader.rest_text()?,
        })
    }
}

impl ForkRecord {
    /// `1 ‖ at (i128 ns) ‖ old ‖ size ‖ root ‖ u32 note length ‖ note ‖ reason`.
    fn encode(&self) -> Vec<u8> {
        let mut value = Vec::with_capacity(73 + self.note.len() + self.reason.len());
        value.push(VERSION);
        value.extend_from_slice(&nanos(self.at));
        value.extend_from_slice(&self.old.to_be_bytes());
        value.extend_from_slice(&self.size.to_be_bytes());
        value.extend_from_slice(&self.root);
        // A note is bounded by the request size (64 KiB), far below 4 GiB.
        value.extend_from_slice(&(self.note.len() as u32).to_be_bytes());
        value.extend_from_slice(self.note.as_bytes());
        value.extend_from_slice(self.reason.as_bytes());
        value
    }

    fn decode(value: &[u8]) -> Option<Self> {
        let mut reader = Reader(value);
        if reader.take(1)? != [VERSION] {
            return None;
        }
        let at = reader.timestamp()?;
        let old = reader.u64()?;
        let size = reader.u64()?;
        let root = reader.hash()?;
        let note_len = usize::try_from(reader.u32()?).ok()?;
        Some(ForkRecord {
            at,
            old,
            size,
            root,
            note: reader.text(note_len)?,
            reason: reader.rest_text()?,
        })
    }
}

impl Ledger {
    fn witness_get(&self, key: &[u8]) -> Result<Option<sled::IVec>, LedgerError> {
        self.store()?
            .witness
            .get(key)
            .map_err(|e| self.sled_error(e))
    }

    /// Inserts (or, with `None`, removes) one key and makes it durable.
    fn witness_put(&self, key: &[u8], value: Option<&[u8]>) -> Result<(), LedgerError> {
        let store = self.store()?;
        match value {
            Some(value) => store.witness.insert(key, value).map(drop),
            None => store.witness.remove(key).map(drop),
        }
        .map_err(|e| self.sled_error(e))?;
        store.db.flush().map_err(|e| self.sled_error(e))?;
        Ok(())
    }

    // ----- Log side -----

    /// Stores the cosignature line `line` that witness `witness_name` gave our checkpoint of
    /// `size`, durably (it cannot be asked for again: a witness cosigns only its latest head).
    /// A later line from the same witness for the same size replaces the earlier one.
    pub fn put_cosignature(
        &self,
        size: u64,
        witness_name: &str,
        line: &str,
    ) -> Result<(), LedgerError> {
        let mut key = cosignature_prefix(size).to_vec();
        key.extend_from_slice(witness_name.as_bytes());
        self.witness_put(&key, Some(line.as_bytes()))
    }

    /// The cosignature lines stored for our checkpoint of `size`, in witness name order.
    pub fn cosignatures(&self, size: u64) -> Result<Vec<String>, LedgerError> {
        let mut lines = Vec::new();
        for item in self
            .store()?
            .witness
            .scan_prefix(cosignature_prefix(size))
            .values()
        {
            let value = item.map_err(|e| self.sled_error(e))?;
            let line = String::from_utf8(value.to_vec()).map_err(|_| {
                self.corrupt(
                    "witness",
                    format!("a cosignature line of checkpoint {size} is not UTF-8"),
                )
            })?;
            lines.push(line);
        }
        Ok(lines)
    }

    /// The size the witness at `url` last cosigned for our log, if it ever did.
    pub fn witness_acked(&self, url: &str) -> Result<Option<u64>, LedgerError> {
        let mut key = vec![ACKED];
        key.extend_from_slice(url.as_bytes());
        match self.witness_get(&key)? {
            None => Ok(None),
            Some(value) => <[u8; 8]>::try_from(value.as_ref())
                .map(|bytes| Some(u64::from_be_bytes(bytes)))
                .map_err(|_| {
                    self.corrupt("witness", format!("the acked size of {url} is not 8 bytes"))
                }),
        }
    }

    /// Records that the witness at `url` cosigned our checkpoint of `size`, durably.
    pub fn set_witness_acked(&self, url: &str, size: u64) -> Result<(), LedgerError> {
        let mut key = vec![ACKED];
        key.extend_from_slice(url.as_bytes());
        self.witness_put(&key, Some(&size.to_be_bytes()))
    }

    // ----- Witness side -----

    /// The latest checkpoint cosigned for `origin`, if any.
    pub fn witnessed_head(&self, origin: &str) -> Result<Option<WitnessedHead>, LedgerError> {
        match self.witness_get(&origin_key(HEAD, origin))? {
            None => Ok(None),
            Some(value) => WitnessedHead::decode(&value).map(Some).ok_or_else(|| {
                self.corrupt(
                    "witness",
                    format!("the witnessed head of {origin:?} cannot be read"),
                )
            }),
        }
    }

    /// Replaces the latest cosigned checkpoint of `origin`, durably: the witness must not
    /// hand out a cosignature for a head it could forget.
    pub fn put_witnessed_head(
        &self,
        origin: &str,
        head: &WitnessedHead,
    ) -> Result<(), LedgerError> {
        self.witness_put(&origin_key(HEAD, origin), Some(&head.encode()))
    }

    /// Records a fork of `origin`, durably. Returns true only if it is the first fork ever
    /// recorded for that origin, so the alert is raised once, and not again after a restart.
    ///
    /// Keeps at most [`MAX_FORKS`] records per origin: the first one always (it is the one
    /// that was alerted) and the latest others. Read, insert and drop happen in one sled
    /// transaction, so two concurrent calls cannot both be "first".
    pub fn record_fork(&self, origin: &str, fork: &ForkRecord) -> Result<bool, LedgerError> {
        let store = self.store()?;
        let count_key = origin_key(FORK_COUNT, origin);
        let value = fork.encode();
        let result = store.witness.transaction(|tree| {
            let count = match tree.get(&count_key)? {
                None => 0,
                Some(bytes) => match <[u8; 8]>::try_from(bytes.as_ref()) {
                    Ok(bytes) => u64::from_be_bytes(bytes),
                    Err(_) => return Err(ConflictableTransactionError::Abort(())),
                },
            };
            tree.insert(fork_key(origin, count), value.as_slice())?;
            // Records 0 and count-14..=count stay: MAX_FORKS in all.
            if count >= MAX_FORKS {
                tree.remove(fork_key(origin, count - (MAX_FORKS - 1)))?;
            }
            tree.insert(count_key.as_slice(), &(count + 1).to_be_bytes())?;
            Ok(count == 0)
        });
        let first = match result {
            Ok(first) => first,
            Err(TransactionError::Storage(e)) => return Err(self.sled_error(e)),
            Err(TransactionError::Abort(())) => {
                return Err(self.corrupt(
                    "witness",
                    format!("the fork count of {origin:?} is not 8 bytes"),
                ));
            }
        };
        store.db.flush().map_err(|e| self.sled_error(e))?;
        Ok(first)
    }

    /// The fork records kept for `origin`, oldest first.
    pub fn forks(&self, origin: &str) -> Result<Vec<ForkRecord>, LedgerError> {
        let mut forks = Vec::new();
        for item in self
            .store()?
            .witness
            .scan_prefix(origin_key(FORK, origin))
            .values()
        {
            let value = item.map_err(|e| self.sled_error(e))?;
            forks.push(ForkRecord::decode(&value).ok_or_else(|| {
                self.corrupt(
                    "witness",
                    format!("a fork record of {origin:?} cannot be read"),
                )
            })?);
        }
        Ok(forks)
    }

    /// The last time a validly signed checkpoint of `origin` arrived, accepted or not.
    pub fn last_heard(&self, origin: &str) -> Result<Option<Timestamp>, LedgerError> {
        match self.witness_get(&origin_key(LAST_HEARD, origin))? {
            None => Ok(None),
            Some(value) => Reader(&value).timestamp().map(Some).ok_or_else(|| {
                self.corrupt(
                    "witness",
                    format!("the last-heard time of {origin:?} cannot be read"),
                )
            }),
        }
    }

    /// Records that a validly signed checkpoint of `origin` arrived at `at`, durably (the
    /// silence alert reads it after a restart).
    pub fn set_last_heard(&self, origin: &str, at: Timestamp) -> Result<(), LedgerError> {
        self.witness_put(&origin_key(LAST_HEARD, origin), Some(&nanos(at)))
    }

    /// Whether the silence of `origin` was alerted and not yet cleared.
    pub fn silent_alerted(&self, origin: &str) -> Result<bool, LedgerError> {
        Ok(self.witness_get(&origin_key(SILENT, origin))?.is_some())
    }

    /// Sets or clears the silence alert mark of `origin`, durably, so a restart neither
    /// raises the alert again nor forgets to clear it.
    pub fn set_silent_alerted(&self, origin: &str, alerted: bool) -> Result<(), LedgerError> {
        let key = origin_key(SILENT, origin);
        self.witness_put(&key, alerted.then_some(&[1u8][..]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::tests::reopen;

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(1_793_491_200 + seconds).unwrap()
    }

    fn fork(n: u64) -> ForkRecord {
        ForkRecord {
            at: at(n as i64),
            old: n,
            size: n + 1,
            root: [n as u8; 32],
            note: format!("note {n}\n\n\u{2014} x y\n"),
            reason: format!("reason {n}"),
        }
    }

    #[test]
    fn cosignatures_are_kept_per_size_in_name_order() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::open(dir.path()).unwrap();
        assert!(ledger.cosignatures(5).unwrap().is_empty());
        ledger
            .put_cosignature(5, "w2.example", "\u{2014} w2 B\n")
            .unwrap();
        ledger
            .put_cosignature(5, "w1.example", "\u{2014} w1 A\n")
            .unwrap();
        ledger
            .put_cosignature(6, "w1.example", "\u{2014} w1 C\n")
            .unwrap();
        // Size 5's prefix must not reach size 5·256+… keys: sizes are fixed-width.
        ledger
            .put_cosignature(1280, "w1.example", "\u{2014} w1 D\n")
            .unwrap();
        assert_eq!(
            ledger.cosignatures(5).unwrap(),
            vec!["\u{2014} w1 A\n", "\u{2014} w2 B\n"]
        );
        ledger
            .put_cosignature(5, "w1.example", "\u{2014} w1 E\n")
            .unwrap();
        assert_eq!(
            ledger.cosignatures(5).unwrap(),
            vec!["\u{2014} w1 E\n", "\u{2014} w2 B\n"]
        );
        assert_eq!(ledger.cosignatures(6).unwrap(), vec!["\u{2014} w1 C\n"]);

        assert_eq!(ledger.witness_acked("https://w1/").unwrap(), None);
        ledger.set_witness_acked("https://w1/", 5).unwrap();
        ledger.set_witness_acked("https://w1/", 6).unwrap();
        assert_eq!(ledger.witness_acked("https://w1/").unwrap(), Some(6));
        assert_eq!(ledger.witness_acked("https://w1").unwrap(), None);
    }

    #[test]
    fn witness_state_survives_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let head = WitnessedHead {
            size: 42,
            root: [9; 32],
            note: "o\n42\nroot\n\n\u{2014} o sig\n\u{2014} w cosig\n".to_owned(),
            at: Timestamp::from_nanosecond(1_793_491_200_123_456_789).unwrap(),
        };
        {
            let ledger = Ledger::open(dir.path()).unwrap();
            assert_eq!(ledger.witnessed_head("o").unwrap(), None);
            assert_eq!(ledger.last_heard("o").unwrap(), None);
            assert!(!ledger.silent_alerted("o").unwrap());
            ledger.put_witnessed_head("o", &head).unwrap();
            ledger.set_last_heard("o", at(7)).unwrap();
            ledger.set_silent_alerted("o", true).unwrap();
            ledger.set_witness_acked("https://w/", 3).unwrap();
            ledger.put_cosignature(3, "w", "\u{2014} w X\n").unwrap();
            assert!(ledger.record_fork("o", &fork(1)).unwrap());
        }
        let ledger = reopen(dir.path());
        assert_eq!(ledger.witnessed_head("o").unwrap(), Some(head));
        // Another origin, and one whose name extends it, see nothing of it.
        assert_eq!(ledger.witnessed_head("o2").unwrap(), None);
        assert_eq!(ledger.last_heard("o").unwrap(), Some(at(7)));
        assert!(ledger.silent_alerted("o").unwrap());
        assert!(!ledger.silent_alerted("o2").unwrap());
        assert_eq!(ledger.witness_acked("https://w/").unwrap(), Some(3));
        assert_eq!(ledger.cosignatures(3).unwrap(), vec!["\u{2014} w X\n"]);
        // The first fork is remembered: a restart does not make the next one "first".
        assert!(!ledger.record_fork("o", &fork(2)).unwrap());
        assert_eq!(ledger.forks("o").unwrap(), vec![fork(1), fork(2)]);
        ledger.set_silent_alerted("o", false).unwrap();
        assert!(!ledger.silent_alerted("o").unwrap());
    }

    #[test]
    fn forks_keep_the_first_and_the_latest() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::open(dir.path()).unwrap();
        assert!(ledger.forks("log.example").unwrap().is_empty());
        assert!(ledger.record_fork("log.example", &fork(0)).unwrap());
        for n in 1..40 {
            assert!(!ledger.record_fork("log.example", &fork(n)).unwrap());
        }
        let kept = ledger.forks("log.example").unwrap();
        assert_eq!(kept.len() as u64, MAX_FORKS);
        assert_eq!(kept[0], fork(0));
        let expected: Vec<ForkRecord> = (40 - (MAX_FORKS - 1)..40).map(fork).collect();
        assert_eq!(kept[1..], expected[..]);
        // Other origins are separate, and their first fork is theirs.
        assert!(ledger.forks("log.example/2").unwrap().is_empty());
        assert!(ledger.record_fork("log.example/2", &fork(5)).unwrap());
        assert_eq!(ledger.forks("log.example/2").unwrap(), vec![fork(5)]);
        assert_eq!(ledger.forks("log.example").unwrap().len() as u64, MAX_FORKS);
    }

    #[test]
    fn unreadable_values_are_reported_as_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::open(dir.path()).unwrap();
        let store = ledger.store().unwrap();
        store
            .witness
            .insert(origin_key(HEAD, "o"), &[2u8, 0][..])
            .unwrap();
        store
            .witness
            .insert(origin_key(LAST_HEARD, "o"), &[1u8][..])
            .unwrap();
        store
            .witness
            .insert(fork_key("o", 0), &[1u8; 10][..])
            .unwrap();
        store
            .witness
            .insert(origin_key(FORK_COUNT, "p"), &[1u8][..])
            .unwrap();
        assert!(matches!(
            ledger.witnessed_head("o"),
            Err(LedgerError::Corrupt { .. })
        ));
        assert!(matches!(
            ledger.last_heard("o"),
            Err(LedgerError::Corrupt { .. })
        ));
        assert!(matches!(
            ledger.forks("o"),
            Err(LedgerError::Corrupt { .. })
        ));
        assert!(matches!(
            ledger.record_fork("p", &fork(1)),
            Err(LedgerError::Corrupt { .. })
        ));
    }
}
