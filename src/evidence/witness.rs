//! The witness's decision on an `add-checkpoint` request (c2sp.org/tlog-witness), apart from
//! HTTP: the server hands over the body and sends back [`Answer::status`] and
//! [`Answer::body`]; the daemon raises `log_fork` from [`Outcome::fork`].
//!
//! A witness keeps, per log it witnesses, the latest checkpoint it cosigned, and cosigns a new
//! one only with a proof that it extends that one. Clients that require cosignatures from
//! enough independent witnesses then know they see the same log as everyone else: a log that
//! shows two histories cannot get both cosigned by one honest witness.
//!
//! **What counts as a fork.** Requests are not authenticated beyond the log's signature on the
//! checkpoint, and logs publish their signed checkpoints, so anyone can submit one with any
//! `old` and any proof. A failed consistency proof therefore proves nothing by itself: it may
//! be garbage attached to a perfectly good checkpoint. Recording it as a fork would let anyone
//! raise `log_fork`, and, since only the first fork of an origin is alerted, spend that alert
//! before a real fork. So a fork is recorded only on evidence the log itself signed:
//! - a checkpoint of the size of the cosigned head with another root (two signed roots for one
//!   size), whatever the request's `old`; or
//! - a proof that verifies from *some* root at the cosigned head's size to the new checkpoint's
//!   signed root, where that root is not the cosigned one: the proof then shows (barring a
//!   SHA-256 collision) that the signed tree's prefix differs from what was cosigned. A proof
//!   from a power-of-two size carries no copy of the old root, so a fork seen through one is
//!   refused (422) but cannot be told from a bad proof and is not recorded.
//!
//! Uses `note`, `cosign`, `merkle`, `key` and the ledger's witness storage.

use std::sync::{Mutex, PoisonError};

use aws_lc_rs::digest::{SHA256, digest};
use jiff::Timestamp;

use super::cosign::{self, AddCheckpoint, MAX_REQUEST_BYTES};
use super::key::{PublicKey, SigningKey};
use super::merkle::{self, Hash, ProofError};
use super::note::{self, Checkpoint, Note, NoteError};
use crate::ledger::{ForkRecord, Ledger, LedgerError, WitnessedHead};

/// A log this witness cosigns for: its origin (which is also the key name of its signature
/// lines) and one of its keys. A log with several keys is listed once per key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WitnessedLog {
    /// The checkpoint origin line.
    pub origin: String,
    /// A key the log signs its checkpoints with.
    pub key: PublicKey,
}

/// A witness: its cosigner name and key, and the logs it cosigns for.
#[derive(Debug)]
pub struct Witness {
    name: String,
    key: SigningKey,
    logs: Vec<WitnessedLog>,
    /// Held from reading the stored head to storing the new one, so that two requests cannot
    /// both be checked against one head and then store in the wrong order (the race the spec
    /// describes, which would roll the head back).
    lock: Mutex<()>,
}

/// What the witness answers to a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// 200: the cosignature line(s).
    Cosigned(String),
    /// 409: the old size is not the size of the cosigned head, which is given.
    Conflict(u64),
    /// 400: the request is malformed.
    BadRequest(String),
    /// 404: the origin is not a log this witness cosigns for.
    UnknownOrigin(String),
    /// 403: no valid signature by a trusted key of the log.
    Forbidden(String),
    /// 422: the checkpoint is signed but not consistent with the cosigned head.
    Unprocessable(String),
    /// 500: the ledger failed; nothing was cosigned.
    Failed(String),
}

impl Answer {
    /// The HTTP status code.
    pub fn status(&self) -> u16 {
        match self {
            Answer::Cosigned(_) => 200,
            Answer::Conflict(_) => 409,
            Answer::BadRequest(_) => 400,
            Answer::UnknownOrigin(_) => 404,
            Answer::Forbidden(_) => 403,
            Answer::Unprocessable(_) => 422,
            Answer::Failed(_) => 500,
        }
    }

    /// The response body: the signature lines (200), the cosigned size and a newline (409,
    /// as the spec requires), or one line saying why.
    pub fn body(&self) -> String {
        match self {
            Answer::Cosigned(lines) => lines.clone(),
            Answer::Conflict(size) => format!("{size}\n"),
            Answer::BadRequest(reason)
            | Answer::UnknownOrigin(reason)
            | Answer::Forbidden(reason)
            | Answer::Unprocessable(reason)
            | Answer::Failed(reason) => format!("{}\n", reason.replace(['\n', '\r'], " ")),
        }
    }

    /// The response's content type: the spec names `text/x.tlog.size` for 409.
    pub fn content_type(&self) -> &'static str {
        match self {
            Answer::Conflict(_) => "text/x.tlog.size",
            _ => "text/plain; charset=utf-8",
        }
    }
}

/// The answer to a request and what the daemon should know about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// What to answer.
    pub answer: Answer,
    /// The origin of the checkpoint, when it is one this witness cosigns for (so from the
    /// signature check on; `None` for malformed requests and unknown origins, whose origin
    /// is whatever the sender wrote).
    pub origin: Option<String>,
    /// The fork this request recorded, only when it is the first recorded for the origin:
    /// the caller raises `log_fork` for it (later forks are stored, not alerted).
    pub fork: Option<ForkRecord>,
}

/// The origin as shown in an answer: quoted, and cut short, since it comes from the sender.
fn shown(origin: &str) -> String {
    const SHOWN_CHARS: usize = 100;
    let short: String = origin.chars().take(SHOWN_CHARS).collect();
    format!("{short:?}")
}

/// The lowercase hex SHA-256 of `origin`: the path segment of the monitoring endpoint
/// `GET <prefix>/<origin hash>/checkpoint`.
pub fn origin_hash(origin: &str) -> String {
    let hash = digest(&SHA256, origin.as_bytes());
    let mut bytes = [0u8; 32];
    bytes.copy_from_slice(hash.as_ref());
    merkle::to_hex(&bytes)
}

impl Witness {
    /// A witness named `name` (its cosigner name, checked as a note key name since it goes in
    /// signature lines) with `key`, cosigning for `logs` (whose origins must be key names for
    /// the same reason: they name the log's signature lines).
    pub fn new(name: &str, key: SigningKey, logs: Vec<WitnessedLog>) -> Result<Witness, NoteError> {
        note::check_name(name)?;
        for log in &logs {
            note::check_name(&log.origin)?;
        }
        Ok(Witness {
            name: name.to_owned(),
            key,
            logs,
            lock: Mutex::new(()),
        })
    }

    /// The cosigner name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The cosigner public key.
    pub fn public(&self) -> PublicKey {
        self.key.public()
    }

    /// The logs cosigned for.
    pub fn logs(&self) -> &[WitnessedLog] {
        &self.logs
    }

    /// The origin of a witnessed log whose [`origin_hash`] is `hash` (lowercase hex).
    pub fn origin_for_hash(&self, hash: &str) -> Option<&str> {
        self.logs
            .iter()
            .map(|log| log.origin.as_str())
            .find(|origin| origin_hash(origin) == hash)
    }

    /// The latest checkpoint cosigned for `origin`, with the log's verified signature lines
    /// and our cosignature: what the monitoring endpoint serves (404 when `None`).
    pub fn latest(&self, ledger: &Ledger, origin: &str) -> Result<Option<String>, LedgerError> {
        Ok(ledger.witnessed_head(origin)?.map(|head| head.note))
    }

    /// Decides on an `add-checkpoint` request body received at `now`, following the checks of
    /// tlog-witness in its order. A cosignature is returned only after the new head is durable;
    /// every refusal leaves the head as it was. Every request with a valid log signature
    /// updates the origin's last-heard time, accepted or not: the log is alive either way.
    pub fn add_checkpoint(&self, ledger: &Ledger, body: &[u8], now: Timestamp) -> Outcome {
        let refuse = |answer| Outcome {
            answer,
            origin: None,
            fork: None,
        };
        if body.len() > MAX_REQUEST_BYTES {
            return refuse(Answer::BadRequest(format!(
                "the request is {} bytes, more than the {MAX_REQUEST_BYTES} a request may have",
                body.len()
            )));
        }
        let request = match AddCheckpoint::parse(body) {
            Ok(request) => request,
            Err(error) => return refuse(Answer::BadRequest(error.to_string())),
        };
        let note = match Note::parse(&request.note) {
            Ok(note) => note,
            Err(error) => return refuse(Answer::BadRequest(error.to_string())),
        };
        // The origin picks the keys, so it is read before any signature is checked.
        let origin = note
            .unverified_body()
            .split('\n')
            .next()
            .unwrap_or_default()
            .to_owned();
        let keys: Vec<&PublicKey> = self
            .logs
            .iter()
            .filter(|log| log.origin == origin)
            .map(|log| &log.key)
            .collect();
        if keys.is_empty() {
            return refuse(Answer::UnknownOrigin(format!(
                "this witness does not cosign for the log {}",
                shown(&origin)
            )));
        }

        let mut trusted = Vec::with_capacity(keys.len());
        for key in keys {
            match note.verify(&origin, key) {
                Ok(_) => trusted.push(note::key_id(&origin, key)),
                Err(NoteError::NotSigned(_)) => {}
                // A line that names a trusted key and fails makes the note malformed.
                Err(error) => return self.answer(&origin, Answer::Forbidden(error.to_string())),
            }
        }
        if trusted.is_empty() {
            return self.answer(
                &origin,
                Answer::Forbidden(format!(
                    "the checkpoint carries no signature by a trusted key of {}",
                    shown(&origin)
                )),
            );
        }
        if let Err(error) = ledger.set_last_heard(&origin, now) {
            return self.answer(&origin, Answer::Failed(error.to_string()));
        }

        let body = note.unverified_body();
        let checkpoint = match Checkpoint::parse(body) {
            Ok(checkpoint) => checkpoint,
            Err(error) => return self.answer(&origin, Answer::BadRequest(error.to_string())),
        };
        if request.old > checkpoint.size {
            return self.answer(
                &origin,
                Answer::BadRequest(format!(
                    "the old size {} is larger than the checkpoint's size {}",
                    request.old, checkpoint.size
                )),
            );
        }
        if checkpoint.size == 0 && checkpoint.root != merkle::empty_root() {
            return self.answer(
                &origin,
                Answer::Unprocessable(
                    "a checkpoint of size 0 must have the empty tree's root hash".to_owned(),
                ),
            );
        }

        // The log's verified lines, to keep with the head (unknown keys' lines are dropped:
        // the monitoring endpoint serves what this witness vouches for).
        let log_lines: String = note
            .signatures()
            .iter()
            .filter(|line| line.name == origin && trusted.contains(&line.key_id))
            .map(cosign::signature_line)
            .collect();
        let _guard = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
        self.decide(ledger, &request, &checkpoint, body, &log_lines, now)
    }

    /// The checks against the cosigned head, and the cosignature; called under `lock`.
    fn decide(
        &self,
        ledger: &Ledger,
        request: &AddCheckpoint,
        checkpoint: &Checkpoint,
        body: &str,
        log_lines: &str,
        now: Timestamp,
    ) -> Outcome {
        let origin = &checkpoint.origin;
        let stored = match ledger.witnessed_head(origin) {
            Ok(stored) => stored,
            Err(error) => return self.answer(origin, Answer::Failed(error.to_string())),
        };
        let (stored_size, stored_root) = stored
            .as_ref()
            .map_or((0, merkle::empty_root()), |head| (head.size, head.root));

        // Two signed roots for one size are a fork whatever `old` says; the answer is still
        // the one the spec gives for `old` (409 if it is stale, else 422).
        if stored.is_some() && checkpoint.size == stored_size && checkpoint.root != stored_root {
            let reason = format!(
                "the log signed root {} for size {}, where root {} was cosigned",
                merkle::to_hex(&checkpoint.root),
                checkpoint.size,
                merkle::to_hex(&stored_root)
            );
            let answer = if request.old == stored_size {
                Answer::Unprocessable(reason.clone())
            } else {
                Answer::Conflict(stored_size)
            };
            return self.fork(ledger, request, checkpoint, reason, answer, now);
        }
        if request.old != stored_size {
            return self.answer(origin, Answer::Conflict(stored_size));
        }
        if request.old == 0 && !request.proof.is_empty() {
            return self.answer(
                origin,
                Answer::Unprocessable(
                    "from old size 0 the consistency proof must be empty".to_owned(),
                ),
            );
        }
        if let Err(error) = merkle::verify_consistency(
            stored_size,
            checkpoint.size,
            &stored_root,
            &checkpoint.root,
            &request.proof,
        ) {
            let reason = format!(
                "the consistency proof from the cosigned size {stored_size} does not hold: {error}"
            );
            if let Some(other_root) = proven_other_root(
                stored_size,
                checkpoint.size,
                &checkpoint.root,
                &request.proof,
                &error,
            ) {
                let reason = format!(
                    "{reason}; it proves the signed tree of size {} has root {} at size \
                     {stored_size}, where root {} was cosigned",
                    checkpoint.size,
                    merkle::to_hex(&other_root),
                    merkle::to_hex(&stored_root)
                );
                let answer = Answer::Unprocessable(reason.clone());
                return self.fork(ledger, request, checkpoint, reason, answer, now);
            }
            return self.answer(origin, Answer::Unprocessable(reason));
        }

        let Some(timestamp) = u64::try_from(now.as_second()).ok().filter(|&t| t > 0) else {
            return self.answer(
                origin,
                Answer::Failed(format!("the clock says {now}: no cosignature before 1970")),
            );
        };
        let line = match cosign::cosign(body, &self.name, &self.key, timestamp) {
            Ok(line) => line,
            Err(error) => return self.answer(origin, Answer::Failed(error.to_string())),
        };
        // A resubmission of the cosigned head is cosigned again (the log may have lost our
        // answer) and the stored head, the first cosigning of that tree, stays.
        if stored.is_none() || checkpoint.size != stored_size {
            let head = WitnessedHead {
                size: checkpoint.size,
                root: checkpoint.root,
                note: format!("{body}\n{log_lines}{line}"),
                at: now,
            };
            if let Err(error) = ledger.put_witnessed_head(origin, &head) {
                return self.answer(origin, Answer::Failed(error.to_string()));
            }
        }
        self.answer(origin, Answer::Cosigned(line))
    }

    /// Records a fork and answers `answer`, with the record when it is the origin's first.
    fn fork(
        &self,
        ledger: &Ledger,
        request: &AddCheckpoint,
        checkpoint: &Checkpoint,
        reason: String,
        answer: Answer,
        now: Timestamp,
    ) -> Outcome {
        let record = ForkRecord {
            at: now,
            old: request.old,
            size: checkpoint.size,
            root: checkpoint.root,
            note: request.note.clone(),
            reason,
        };
        match ledger.record_fork(&checkpoint.origin, &record) {
            Ok(first) => Outcome {
                answer,
                origin: Some(checkpoint.origin.clone()),
                fork: first.then_some(record),
            },
            Err(error) => self.answer(&checkpoint.origin, Answer::Failed(error.to_string())),
        }
    }

    fn answer(&self, origin: &str, answer: Answer) -> Outcome {
        Outcome {
            answer,
            origin: Some(origin.to_owned()),
            fork: None,
        }
    }
}

/// When a consistency proof from `old_size` failed only because the old root it rebuilds is
/// not the cosigned one, and it does lead from that other root to the signed `new_root`: that
/// other root, which the log's own tree has at `old_size` (see the module docs).
fn proven_other_root(
    old_size: u64,
    new_size: u64,
    new_root: &Hash,
    proof: &[Hash],
    error: &ProofError,
) -> Option<Hash> {
    match error {
        ProofError::RootMismatch { size, computed, .. }
            if *size == old_size
                && old_size > 0
                && merkle::verify_consistency(old_size, new_size, computed, new_root, proof)
                    .is_ok() =>
        {
            Some(*computed)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evidence::cosign::cosignatures_by;
    use crate::evidence::merkle::{MemoryTree, consistency_proof};
    use crate::evidence::note::sign_note;
    use base64ct::{Base64, Encoding};

    const ORIGIN: &str = "example.org/log";
    const NAME: &str = "witness.example/w1";

    fn log_key() -> SigningKey {
        SigningKey::from_seed(&[1; 32], "log").expect("key")
    }

    fn witness_key() -> SigningKey {
        SigningKey::from_seed(&[2; 32], "witness").expect("key")
    }

    fn witness() -> Witness {
        Witness::new(
            NAME,
            witness_key(),
            vec![WitnessedLog {
                origin: ORIGIN.to_owned(),
                key: log_key().public(),
            }],
        )
        .expect("witness")
    }

    fn ledger() -> (tempfile::TempDir, Ledger) {
        let dir = tempfile::tempdir().expect("tempdir");
        let ledger = Ledger::open(&dir.path().join("ledger")).expect("ledger");
        (dir, ledger)
    }

    fn now(seconds: i64) -> Timestamp {
        Timestamp::from_second(1_793_491_200 + seconds).expect("time")
    }

    /// A tree of `size` leaves, the leaf at `fork_at` (if any) changed.
    fn tree(size: u64, fork_at: Option<u64>) -> MemoryTree {
        let mut tree = MemoryTree::new();
        for i in 0..size {
            let leaf = if Some(i) == fork_at {
                format!("forked leaf {i}")
            } else {
                format!("leaf {i}")
            };
            tree.push(leaf.as_bytes());
        }
        tree
    }

    fn signed(size: u64, root: Hash, key: &SigningKey) -> String {
        let body = Checkpoint {
            origin: ORIGIN.to_owned(),
            size,
            root,
            extensions: Vec::new(),
        }
        .body();
        sign_note(&body, ORIGIN, key).expect("sign")
    }

    fn request(old: u64, proof: Vec<Hash>, note: String) -> Vec<u8> {
        AddCheckpoint { old, proof, note }.render().into_bytes()
    }

    /// The request extending from `old` leaves to all of `tree`, signed by the log.
    fn extend(tree: &MemoryTree, old: u64) -> Vec<u8> {
        let proof = consistency_proof(old, tree.size(), tree).expect("proof");
        request(old, proof, signed(tree.size(), tree.root(), &log_key()))
    }

    fn head(ledger: &Ledger) -> Option<WitnessedHead> {
        ledger.witnessed_head(ORIGIN).expect("head")
    }

    #[test]
    fn the_first_checkpoint_is_cosigned_and_stored() {
        let (_dir, ledger) = ledger();
        let witness = witness();
        let tree = tree(5, None);
        let outcome = witness.add_checkpoint(&ledger, &extend(&tree, 0), now(10));
        let Answer::Cosigned(line) = &outcome.answer else {
            panic!("not cosigned: {outcome:?}");
        };
        assert_eq!(outcome.answer.status(), 200);
        assert_eq!(outcome.answer.body(), *line);
        assert_eq!(outcome.origin.as_deref(), Some(ORIGIN));
        assert_eq!(outcome.fork, None);

        let note = signed(5, tree.root(), &log_key());
        let cosigned = Note::parse(&format!("{note}{line}")).expect("parse");
        let expected_time = u64::try_from(now(10).as_second()).expect("positive");
        assert_eq!(
            cosignatures_by(&cosigned, &witness.public()),
            vec![cosign::Cosignature {
                name: NAME.to_owned(),
                timestamp: expected_time
            }]
        );

        let stored = head(&ledger).expect("stored");
        assert_eq!(
            (stored.size, stored.root, stored.at),
            (5, tree.root(), now(10))
        );
        // What the monitoring endpoint serves: the log's signature and ours, both valid.
        let latest = witness
            .latest(&ledger, ORIGIN)
            .expect("latest")
            .expect("some");
        assert_eq!(latest, stored.note);
        let served = Note::parse(&latest).expect("parse");
        assert!(served.verify(ORIGIN, &log_key().public()).is_ok());
        assert_eq!(cosignatures_by(&served, &witness.public()).len(), 1);
        assert_eq!(witness.origin_for_hash(&origin_hash(ORIGIN)), Some(ORIGIN));
        assert_eq!(witness.origin_for_hash(&origin_hash("other")), None);
        assert_eq!(ledger.last_heard(ORIGIN).expect("heard"), Some(now(10)));
    }

    #[test]
    fn an_extension_with_a_correct_proof_is_cosigned_and_a_resubmission_again() {
        let (_dir, ledger) = ledger();
        let witness = witness();
        let small = tree(5, None);
        assert_eq!(
            witness
                .add_checkpoint(&ledger, &extend(&small, 0), now(1))
                .answer
                .status(),
            200
        );
        let big = tree(13, None);
        let outcome = witness.add_checkpoint(&ledger, &extend(&big, 5), now(2));
        assert_eq!(outcome.answer.status(), 200, "{outcome:?}");
        let stored = head(&ledger).expect("stored");
        assert_eq!(
            (stored.size, stored.root, stored.at),
            (13, big.root(), now(2))
        );

        // The same head again, old = size: cosigned anew, the head kept as it was.
        let outcome = witness.add_checkpoint(&ledger, &extend(&big, 13), now(3));
        let Answer::Cosigned(line) = &outcome.answer else {
            panic!("not cosigned: {outcome:?}");
        };
        let note =
            Note::parse(&format!("{}{line}", signed(13, big.root(), &log_key()))).expect("parse");
        let times: Vec<u64> = cosignatures_by(&note, &witness.public())
            .iter()
            .map(|c| c.timestamp)
            .collect();
        assert_eq!(
            times,
            vec![u64::try_from(now(3).as_second()).expect("time")]
        );
        assert_eq!(head(&ledger), Some(stored));
        assert_eq!(ledger.last_heard(ORIGIN).expect("heard"), Some(now(3)));
    }

    #[test]
    fn a_stale_old_size_is_a_conflict_with_the_cosigned_size() {
        let (_dir, ledger) = ledger();
        let witness = witness();
        let t9 = tree(9, None);
        assert_eq!(
            witness
                .add_checkpoint(&ledger, &extend(&t9, 0), now(1))
                .answer
                .status(),
            200
        );
        let before = head(&ledger);
        let t12 = tree(12, None);
        for old in [0, 5, 10] {
            let outcome = witness.add_checkpoint(&ledger, &extend(&t12, old), now(2));
            assert_eq!(outcome.answer, Answer::Conflict(9));
            assert_eq!(outcome.answer.status(), 409);
            assert_eq!(outcome.answer.body(), "9\n");
            assert_eq!(outcome.answer.content_type(), "text/x.tlog.size");
            assert_eq!(outcome.fork, None);
        }
        assert_eq!(head(&ledger), before);
        // Refused, but heard from.
        assert_eq!(ledger.last_heard(ORIGIN).expect("heard"), Some(now(2)));
    }

    #[test]
    fn a_forked_tree_is_unprocessable_and_its_first_fork_raised_once() {
        let (_dir, ledger) = ledger();
        let witness = witness();
        let honest = tree(5, None);
        assert_eq!(
            witness
                .add_checkpoint(&ledger, &extend(&honest, 0), now(1))
                .answer
                .status(),
            200
        );
        let before = head(&ledger);

        // Same first three leaves, a different fourth, then grown: its proof from 5 is valid
        // for its own tree, so it shows the signed tree's size-5 root is not the cosigned one.
        let forked = tree(7, Some(3));
        let outcome = witness.add_checkpoint(&ledger, &extend(&forked, 5), now(2));
        assert_eq!(outcome.answer.status(), 422, "{outcome:?}");
        let fork = outcome.fork.expect("first fork");
        assert_eq!((fork.old, fork.size, fork.root), (5, 7, forked.root()));
        assert_eq!(fork.at, now(2));
        assert!(
            fork.reason
                .contains(&merkle::to_hex(&tree(5, Some(3)).root())),
            "{}",
            fork.reason
        );

        // The forked log goes on: refused again, recorded, not raised again.
        let forked = tree(11, Some(3));
        let outcome = witness.add_checkpoint(&ledger, &extend(&forked, 5), now(3));
        assert_eq!(outcome.answer.status(), 422);
        assert_eq!(outcome.fork, None);
        assert_eq!(ledger.forks(ORIGIN).expect("forks").len(), 2);
        assert_eq!(head(&ledger), before);
    }

    #[test]
    fn a_bad_proof_is_refused_but_proves_no_fork() {
        let (_dir, ledger) = ledger();
        let witness = witness();
        let honest = tree(5, None);
        witness.add_checkpoint(&ledger, &extend(&honest, 0), now(1));
        let before = head(&ledger);
        // A good checkpoint of the honest log with a garbage proof: anyone can send that.
        let bigger = tree(9, None);
        let mut proof = consistency_proof(5, 9, &bigger).expect("proof");
        proof[0][0] ^= 1;
        let body = request(5, proof, signed(9, bigger.root(), &log_key()));
        let outcome = witness.add_checkpoint(&ledger, &body, now(2));
        assert_eq!(outcome.answer.status(), 422);
        // Too short a proof.
        let body = request(5, vec![[0; 32]], signed(9, bigger.root(), &log_key()));
        assert_eq!(
            witness
                .add_checkpoint(&ledger, &body, now(2))
                .answer
                .status(),
            422
        );
        assert!(ledger.forks(ORIGIN).expect("forks").is_empty());
        assert_eq!(head(&ledger), before);

        // From a power-of-two size the proof holds no copy of the old root: a fork seen
        // through it is refused, and cannot be told from a bad proof.
        let (_dir, ledger) = self::ledger();
        witness.add_checkpoint(&ledger, &extend(&tree(4, None), 0), now(1));
        let outcome = witness.add_checkpoint(&ledger, &extend(&tree(7, Some(1)), 4), now(2));
        assert_eq!(outcome.answer.status(), 422);
        assert_eq!(outcome.fork, None);
        assert_eq!(head(&ledger).expect("head").size, 4);
    }

    #[test]
    fn the_same_size_with_another_root_is_a_fork_whatever_old_says() {
        let (_dir, ledger) = ledger();
        let witness = witness();
        let honest = tree(5, None);
        witness.add_checkpoint(&ledger, &extend(&honest, 0), now(1));
        let before = head(&ledger);
        let forked = tree(5, Some(4));

        let outcome = witness.add_checkpoint(&ledger, &extend(&forked, 5), now(2));
        assert_eq!(outcome.answer.status(), 422, "{outcome:?}");
        let fork = outcome.fork.expect("first fork");
        assert_eq!((fork.old, fork.size, fork.root), (5, 5, forked.root()));

        // With a stale old size: 409 as the spec says, and the fork still recorded.
        let outcome = witness.add_checkpoint(&ledger, &extend(&forked, 0), now(3));
        assert_eq!(outcome.answer, Answer::Conflict(5));
        assert_eq!(outcome.fork, None);
        let forks = ledger.forks(ORIGIN).expect("forks");
        assert_eq!(forks.len(), 2);
        assert_eq!(forks[1].old, 0);
        assert_eq!(head(&ledger), before);
    }

    #[test]
    fn unknown_origins_and_untrusted_signatures_are_refused() {
        let (_dir, ledger) = ledger();
        let witness = witness();
        let t = tree(3, None);

        // Unknown origin: 404, nothing heard.
        let body = Checkpoint {
            origin: "other.example/log".to_owned(),
            size: 3,
            root: t.root(),
            extensions: Vec::new(),
        }
        .body();
        let note = sign_note(&body, "other.example/log", &log_key()).expect("sign");
        let outcome = witness.add_checkpoint(&ledger, &request(0, vec![], note), now(1));
        assert_eq!(outcome.answer.status(), 404, "{outcome:?}");
        assert_eq!(outcome.origin, None);
        assert_eq!(ledger.last_heard("other.example/log").expect("heard"), None);

        // Signed by another key under the log's name: 403.
        let other = SigningKey::from_seed(&[9; 32], "other").expect("key");
        let body = request(0, vec![], signed(3, t.root(), &other));
        let outcome = witness.add_checkpoint(&ledger, &body, now(1));
        assert_eq!(outcome.answer.status(), 403, "{outcome:?}");
        assert_eq!(outcome.origin.as_deref(), Some(ORIGIN));

        // The log's own line, with a flipped signature bit: 403.
        let note = signed(3, t.root(), &log_key());
        let (text, line) = note.rsplit_once("\n\n").expect("split");
        let encoded = line.trim_end().rsplit_once(' ').expect("line").1;
        let mut blob = Base64::decode_vec(encoded).expect("base64");
        blob[10] ^= 1;
        let tampered = format!(
            "{text}\n\n\u{2014} {ORIGIN} {}\n",
            Base64::encode_string(&blob)
        );
        let outcome = witness.add_checkpoint(&ledger, &request(0, vec![], tampered), now(1));
        assert_eq!(outcome.answer.status(), 403, "{outcome:?}");

        // A valid line beside a bad one by the same trusted key is still refused.
        let mut bad = signed(3, t.root(), &log_key());
        bad.push_str(&format!(
            "\u{2014} {ORIGIN} {}\n",
            Base64::encode_string(&[&blob[..4], &[0u8; 64][..]].concat())
        ));
        // (Same name and id twice is malformed for the note parser: 400 before 403.)
        assert_eq!(
            witness
                .add_checkpoint(&ledger, &request(0, vec![], bad), now(1))
                .answer
                .status(),
            400
        );

        // A body changed after signing: 403.
        let changed = signed(3, t.root(), &log_key()).replacen("\n3\n", "\n4\n", 1);
        let outcome = witness.add_checkpoint(&ledger, &request(0, vec![], changed), now(1));
        assert_eq!(outcome.answer.status(), 403);

        assert_eq!(head(&ledger), None);
        assert_eq!(ledger.last_heard(ORIGIN).expect("heard"), None);
    }

    #[test]
    fn malformed_requests_are_bad_requests() {
        let (_dir, ledger) = ledger();
        let witness = witness();
        let t = tree(3, None);
        let good = signed(3, t.root(), &log_key());

        let mut oversized = request(0, vec![], good.clone());
        oversized.resize(MAX_REQUEST_BYTES + 1, b'\n');
        let mut cases = vec![
            (oversized, "oversized"),
            (b"garbage".to_vec(), "garbage"),
            (vec![0xff; 20], "not UTF-8"),
            (request(4, vec![[0; 32]], good.clone()), "old > size"),
        ];
        // Validly signed, but not a checkpoint: heard from, refused.
        let not_checkpoint =
            sign_note(&format!("{ORIGIN}\nthree\nroot\n"), ORIGIN, &log_key()).expect("sign");
        cases.push((request(0, vec![], not_checkpoint), "not a checkpoint"));
        for (body, why) in cases {
            let outcome = witness.add_checkpoint(&ledger, &body, now(5));
            assert_eq!(outcome.answer.status(), 400, "{why}: {outcome:?}");
            assert_eq!(outcome.fork, None);
            assert!(outcome.answer.body().ends_with('\n'));
            assert_eq!(outcome.answer.body().lines().count(), 1, "{why}");
        }
        assert_eq!(head(&ledger), None);
        assert_eq!(ledger.last_heard(ORIGIN).expect("heard"), Some(now(5)));
    }

    #[test]
    fn empty_trees_and_proofs_from_zero_follow_the_spec() {
        let (_dir, ledger) = ledger();
        let witness = witness();
        // Size 0 with another root than the empty tree's.
        let body = request(0, vec![], signed(0, [1; 32], &log_key()));
        assert_eq!(
            witness
                .add_checkpoint(&ledger, &body, now(1))
                .answer
                .status(),
            422
        );
        // From old size 0 with a proof.
        let t = tree(3, None);
        let body = request(0, vec![t.root()], signed(3, t.root(), &log_key()));
        assert_eq!(
            witness
                .add_checkpoint(&ledger, &body, now(1))
                .answer
                .status(),
            422
        );
        assert_eq!(head(&ledger), None);
        assert!(ledger.forks(ORIGIN).expect("forks").is_empty());

        // The empty tree itself is cosigned, and then extended from 0.
        let body = request(0, vec![], signed(0, merkle::empty_root(), &log_key()));
        assert_eq!(
            witness
                .add_checkpoint(&ledger, &body, now(2))
                .answer
                .status(),
            200
        );
        assert_eq!(head(&ledger).expect("head").size, 0);
        assert_eq!(
            witness
                .add_checkpoint(&ledger, &extend(&t, 0), now(3))
                .answer
                .status(),
            200
        );
        assert_eq!(head(&ledger).expect("head").size, 3);
    }

    #[test]
    fn a_clock_before_1970_cosigns_nothing() {
        let (_dir, ledger) = ledger();
        let witness = witness();
        let body = extend(&tree(2, None), 0);
        let outcome = witness.add_checkpoint(&ledger, &body, Timestamp::UNIX_EPOCH);
        assert_eq!(outcome.answer.status(), 500);
        assert_eq!(head(&ledger), None);
    }

    #[test]
    fn names_are_checked_and_answers_map_to_statuses() {
        assert!(Witness::new("bad name", witness_key(), Vec::new()).is_err());
        let log = WitnessedLog {
            origin: "a+b".to_owned(),
            key: log_key().public(),
        };
        assert!(Witness::new(NAME, witness_key(), vec![log]).is_err());
        for (answer, status) in [
            (Answer::Cosigned("\u{2014} w x\n".to_owned()), 200),
            (Answer::Conflict(3), 409),
            (Answer::BadRequest("a\nb".to_owned()), 400),
            (Answer::UnknownOrigin("x".to_owned()), 404),
            (Answer::Forbidden("x".to_owned()), 403),
            (Answer::Unprocessable("x".to_owned()), 422),
            (Answer::Failed("x".to_owned()), 500),
        ] {
            assert_eq!(answer.status(), status);
        }
        assert_eq!(Answer::BadRequest("a\nb".to_owned()).body(), "a b\n");
        assert_eq!(
            origin_hash(""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
