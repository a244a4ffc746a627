//! The one error type of the ledger: every message is lowercase and names the ledger path.

use std::path::PathBuf;

use jiff::Timestamp;

use crate::model::ProbeName;

/// Why a ledger operation failed.
///
/// Storage problems are reported with the ledger path so a user can act on them without a
/// backtrace; sled's own error type never leaves this module.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// Another process holds sled's exclusive lock on the directory. In practice that is the
    /// running daemon, and queries should go through its socket instead.
    #[error(
        "ledger {path} is locked: another upledger process (the daemon) holds it; \
         query the running daemon, or stop it first"
    )]
    Locked {
        /// The ledger directory.
        path: PathBuf,
    },
    /// The directory was written by a different (older or newer) ledger format.
    #[error(
        "ledger {path} has format version {found}, this upledger reads version {expected}: \
         export it with the upledger that wrote it and import it into a fresh ledger"
    )]
    FormatVersion {
        /// The ledger directory.
        path: PathBuf,
        /// The version stored in the ledger.
        found: u32,
        /// The version this build writes and reads.
        expected: u32,
    },
    /// Stored bytes do not decode, or sled cannot read its own files (it reported corruption
    /// or panicked on them); `context` says which probe and key, or what was being done. The
    /// message says what to do, since nothing in upledger can repair a ledger.
    #[error(
        "ledger {path} is corrupt: {context}: {reason}; restore it from a backup or from an \
         `upledger export` (into a new ledger with `upledger import`), or move it aside to \
         start a new one"
    )]
    Corrupt {
        /// The ledger directory.
        path: PathBuf,
        /// What was being read (probe, block key).
        context: String,
        /// What is wrong with the bytes.
        reason: String,
    },
    /// sled failed (I/O error, unsupported operation, internal error).
    #[error("ledger {path}: storage error: {message}")]
    Storage {
        /// The ledger directory.
        path: PathBuf,
        /// What sled reported.
        message: String,
        /// Whether it was an I/O error (a full disk, a failing device): sled 0.34 then
        /// refuses every later write until the ledger is reopened ([`super::Ledger::recover`]).
        io: bool,
    },
    /// A file-system operation outside sled failed (creating the directory, measuring it).
    #[error("ledger {path}: {source}")]
    Io {
        /// The file or directory concerned.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// `import` refused its input because a result for this probe and instant exists already,
    /// or appears twice in the input. Nothing was written.
    #[error(
        "import refused, nothing written: probe {probe} has two results at {at} ({})",
        if *.existing { "one is already in the ledger" } else { "both in the input" }
    )]
    Duplicate {
        /// The probe.
        probe: ProbeName,
        /// The instant, at the ledger's millisecond precision.
        at: Timestamp,
        /// True when the clash is with a stored result, false when within the input.
        existing: bool,
    },
    /// The consumer given to [`super::Ledger::export`] failed (for example a closed stdout).
    #[error("export output failed: {source}")]
    Sink {
        /// What the consumer reported.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl LedgerError {
    /// Wraps an error raised by an `export` consumer.
    pub fn sink(source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        LedgerError::Sink {
            source: source.into(),
        }
    }

    /// Translates a sled error, recognising the lock conflict by its text: sled reports it as
    /// an `io::ErrorKind::Other` whose message is `could not acquire lock on "<path>"`.
    pub(super) fn from_sled(path: &std::path::Path, error: sled::Error) -> Self {
        let path = path.to_path_buf();
        match error {
            sled::Error::Io(io) if io.to_string().contains("could not acquire lock") => {
                LedgerError::Locked { path }
            }
            sled::Error::Corruption { at, .. } => LedgerError::Corrupt {
                path,
                context: "sled log".to_owned(),
                reason: match at {
                    Some(at) => format!("sled reports corruption at {at:?}"),
                    None => "sled reports corruption".to_owned(),
                },
            },
            sled::Error::Io(io) => LedgerError::Storage {
                path,
                message: io.to_string(),
                io: true,
            },
            other => LedgerError::Storage {
                path,
                message: other.to_string(),
                io: false,
            },
        }
    }
}
