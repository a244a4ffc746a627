//! Damage the ledger knows of: results it once held and can no longer read. Reports count a
//! damaged range of a probe as unknown (it has no results: neither up nor down) and list it;
//! `fsck` and `/healthz` name every one.
//!
//! Records come from the seal check at open (see `seal.rs`: the ledger recovered fewer results
//! than it had made durable) and are kept in the seal file, outside sled, so that a later cut
//! of sled's log cannot take them along. They stay on record for good: the results are gone.

use jiff::Timestamp;

use super::Ledger;
use crate::model::ProbeName;

/// One damaged range of the ledger.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Damage {
    /// The probe whose results are affected; `None` when the damage cannot be tied to one (an
    /// unreadable seal file).
    pub probe: Option<ProbeName>,
    /// First instant of the range whose results are lost or unreadable, when known.
    pub from: Option<Timestamp>,
    /// End of that range (exclusive), when known.
    pub to: Option<Timestamp>,
    /// What is wrong, for a person.
    pub what: String,
}

impl std::fmt::Display for Damage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.probe {
            Some(probe) => write!(f, "probe {probe}")?,
            None => write!(f, "ledger")?,
        }
        if let (Some(from), Some(to)) = (self.from, self.to) {
            write!(f, " from {from} to {to}")?;
        }
        write!(f, ": {}", self.what)
    }
}

impl Ledger {
    /// Every damage on record, oldest first.
    pub fn damage(&self) -> Vec<Damage> {
        self.lock_damage().clone()
    }

    /// The spans of `probe`'s time in `[from, to)` that damage makes unknown.
    pub fn damaged_spans(
        &self,
        probe: &ProbeName,
        from: Timestamp,
        to: Timestamp,
    ) -> Vec<(Timestamp, Timestamp)> {
        self.lock_damage()
            .iter()
            .filter(|d| d.probe.as_ref() == Some(probe))
            .filter_map(|d| Some((d.from?, d.to?)))
            .filter(|(start, end)| *start < to && *end > from)
            .collect()
    }

    /// Puts `damage` on record (once) and logs it; the next seal write stores it. Returns
    /// whether it was new.
    pub(super) fn note_damage(&self, damage: Damage) -> bool {
        let mut known = self.lock_damage();
        if known.contains(&damage) {
            return false;
        }
        tracing::error!(ledger = %self.path.display(), "ledger damage: {damage}");
        known.push(damage);
        true
    }

    fn lock_damage(&self) -> std::sync::MutexGuard<'_, Vec<Damage>> {
        self.damage
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
