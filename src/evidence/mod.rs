//! Evidence a client can check (SPEC §8): the Merkle log over the ledger's record, signed
//! checkpoints, signed reports, evidence bundles and their offline verification.
//!
//! May use `model`, `config`, `ledger`, `report` and `query`; never `daemon` or `api`, so that
//! `upledger verify` runs with no ledger, no daemon and no network.

pub mod bundle;
pub mod cosign;
pub mod keeper;
pub mod key;
pub mod leaf;
pub mod log;
pub mod merkle;
pub mod note;
pub mod sshsig;
pub mod verify;
pub mod witness;

use crate::ledger::LedgerError;

/// How far long evidence work has got — building a bundle, verifying one — for a caller that
/// shows it (the CLI draws a progress line on a terminal). A trait the caller passes in, not a
/// progress bar here: the library draws nothing, knows no terminal and stays usable where
/// nobody watches (the daemon, the tests).
pub trait Progress {
    /// A new stage begins: `what` is done `total` times (0: an unknown number of times).
    fn stage(&mut self, what: &'static str, total: u64);
    /// `n` more of the current stage are done.
    fn advance(&mut self, n: u64);
}

/// Progress nobody watches.
#[derive(Debug, Default, Clone, Copy)]
pub struct Unwatched;

impl Progress for Unwatched {
    fn stage(&mut self, _what: &'static str, _total: u64) {}
    fn advance(&mut self, _n: u64) {}
}

/// Why evidence could not be kept, built or read.
#[derive(Debug, thiserror::Error)]
pub enum EvidenceError {
    /// The ledger failed.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// A node the log needs is not stored: the log is damaged.
    #[error("the evidence log has no node at level {level}, index {index}: the log is damaged")]
    MissingNode {
        /// Level of the perfect subtree.
        level: u8,
        /// Its index at that level.
        index: u64,
    },
    /// A stored checkpoint cannot be read, or a new one would not extend it.
    #[error("checkpoint: {0}")]
    Checkpoint(String),
    /// A signed note could not be made or read.
    #[error(transparent)]
    Note(#[from] note::NoteError),
    /// A key could not be read or used.
    #[error(transparent)]
    Key(#[from] key::KeyError),
    /// A stored leaf cannot be read.
    #[error("leaf {index} of the evidence log: {source}")]
    Leaf {
        /// Its index.
        index: u64,
        /// Why.
        source: leaf::LeafError,
    },
    /// Something asked of the log cannot be given (a size past its end, say).
    #[error("{0}")]
    Request(String),
    /// The configuration has no normalised form.
    #[error(transparent)]
    Config(#[from] crate::config::NormalisedError),
}

impl From<merkle::ProveError<EvidenceError>> for EvidenceError {
    fn from(error: merkle::ProveError<EvidenceError>) -> Self {
        match error {
            merkle::ProveError::Source(source) => source,
            other => EvidenceError::Request(other.to_string()),
        }
    }
}
