//! The evidence log's keeper in a running process: the signing key the configuration names,
//! and the one lock every writer of the log takes, so the daemon's own catch-up, a daemon
//! start or stop leaf and a query asking for fresh evidence never append at the same time.
//!
//! May use `config`, `ledger` and the other `evidence` modules.

use std::sync::{Arc, Mutex, PoisonError, RwLock};

use jiff::Timestamp;

use super::{
    EvidenceError, Progress, Unwatched,
    bundle::{self, Bundle, SignedDocument, SignedReport},
    key::{KeyError, SigningKey},
    leaf::Leaf,
    log::{self, CatchUp, Signing},
};
use crate::{config::Config, ledger::Ledger, query::monthly::Selection, report::Month};

/// See the module doc.
#[derive(Debug, Default)]
pub struct Keeper {
    key: RwLock<Option<Arc<SigningKey>>>,
    writing: Mutex<()>,
}

impl Keeper {
    /// A keeper with the key `config` names (none when it names none).
    pub fn load(config: &Config) -> Result<Keeper, KeyError> {
        let keeper = Keeper::default();
        keeper.reload(config)?;
        Ok(keeper)
    }

    /// Reads the key `config` names again (after a reload); on error the old key stays.
    pub fn reload(&self, config: &Config) -> Result<(), KeyError> {
        let key = match &config.evidence.signing_key {
            Some(path) => Some(Arc::new(SigningKey::read_openssh(path)?)),
            None => None,
        };
        *self.key.write().unwrap_or_else(PoisonError::into_inner) = key;
        Ok(())
    }

    /// The signing key, when one is configured.
    pub fn key(&self) -> Option<Arc<SigningKey>> {
        self.key
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Runs `f` under the writers' lock after catching the log up as of `now`, with the
    /// signing key and origin `config` names.
    fn caught_up<T>(
        &self,
        ledger: &Ledger,
        config: &Config,
        now: Timestamp,
        f: impl FnOnce(&Signing<'_>, CatchUp) -> Result<T, EvidenceError>,
    ) -> Result<T, EvidenceError> {
        self.caught_up_while(ledger, config, now, &|| true, f)
    }

    fn caught_up_while<T>(
        &self,
        ledger: &Ledger,
        config: &Config,
        now: Timestamp,
        keep_going: &dyn Fn() -> bool,
        f: impl FnOnce(&Signing<'_>, CatchUp) -> Result<T, EvidenceError>,
    ) -> Result<T, EvidenceError> {
        let _writing = self.writing.lock().unwrap_or_else(PoisonError::into_inner);
        let key = self.key();
        let signing = Signing {
            key: key.as_deref(),
            origin: &config.evidence.origin,
        };
        let done = log::catch_up(ledger, config, &signing, now, keep_going)?;
        f(&signing, done)
    }

    /// [`log::catch_up`] under the writers' lock, sealing hours while `keep_going` says so.
    pub fn catch_up(
        &self,
        ledger: &Ledger,
        config: &Config,
        now: Timestamp,
        keep_going: &dyn Fn() -> bool,
    ) -> Result<CatchUp, EvidenceError> {
        self.caught_up_while(ledger, config, now, keep_going, |_, done| Ok(done))
    }

    /// Appends a lifecycle leaf (after catching up, so it lands after what came before it)
    /// under the writers' lock.
    pub fn record(
        &self,
        ledger: &Ledger,
        config: &Config,
        now: Timestamp,
        leaf: &Leaf,
    ) -> Result<CatchUp, EvidenceError> {
        self.caught_up(ledger, config, now, |signing, _| {
            log::append_event(ledger, signing, leaf)
        })
    }

    /// Appends a lifecycle leaf without catching up first, waiting at most `patience` for
    /// another writer (a catch-up in progress) to finish: what the daemon's stop does, within
    /// its bounded time; the next start catches up.
    pub fn record_now(
        &self,
        ledger: &Ledger,
        config: &Config,
        leaf: &Leaf,
        patience: std::time::Duration,
    ) -> Result<Option<CatchUp>, EvidenceError> {
        let deadline = std::time::Instant::now() + patience;
        let _writing = loop {
            match self.writing.try_lock() {
                Ok(guard) => break guard,
                Err(std::sync::TryLockError::Poisoned(poisoned)) => break poisoned.into_inner(),
                Err(std::sync::TryLockError::WouldBlock) => {
                    if std::time::Instant::now() >= deadline {
                        return Ok(None);
                    }
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
            }
        };
        let key = self.key();
        let signing = Signing {
            key: key.as_deref(),
            origin: &config.evidence.origin,
        };
        log::append_event(ledger, &signing, leaf).map(Some)
    }

    /// Catches the log up and signs the report of `month` against its newest checkpoint, under
    /// the writers' lock (so no append lands between the two).
    pub fn signed_report(
        &self,
        ledger: &Ledger,
        config: &Config,
        month: Month,
        selection: &Selection,
        now: Timestamp,
    ) -> Result<(SignedReport, SignedDocument), EvidenceError> {
        self.caught_up(ledger, config, now, |signing, _| {
            bundle::signed_report(ledger, config, signing.key, month, selection, now)
        })
    }

    /// Catches the log up and builds the evidence bundle of `month`, under the writers' lock.
    pub fn bundle(
        &self,
        ledger: &Ledger,
        config: &Config,
        month: Month,
        selection: &Selection,
        now: Timestamp,
    ) -> Result<Bundle, EvidenceError> {
        self.bundle_watched(ledger, config, month, selection, now, &mut Unwatched)
    }

    /// [`Keeper::bundle`], telling `progress` how far it got (a large month takes a while).
    pub fn bundle_watched(
        &self,
        ledger: &Ledger,
        config: &Config,
        month: Month,
        selection: &Selection,
        now: Timestamp,
        progress: &mut dyn Progress,
    ) -> Result<Bundle, EvidenceError> {
        progress.stage("catching up the evidence log", 0);
        self.caught_up(ledger, config, now, |signing, _| {
            bundle::build(ledger, config, signing.key, month, selection, now, progress)
        })
    }
}
