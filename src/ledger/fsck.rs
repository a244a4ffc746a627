//! The whole-ledger check behind `upledger fsck`: every block and digest is read and its
//! checksum checked (journal entries were, by the replay of the opening), every digested hour is compared with the results it was
//! made from, and every probe's count with what the seal says it made durable. Nothing is
//! repaired; everything found is named (probe, time range, what) and put on record as damage,
//! so reports count it as unknown from then on.

use std::collections::BTreeSet;

use super::damage::Damage;
use super::digest::{HOUR_MS, floor_to};
use super::encoding::{MAX_BLOCK_SPAN_MS, timestamp_from_ms};
use super::{Ledger, LedgerError};
use crate::model::ProbeName;

/// What [`Ledger::fsck`] found.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FsckReport {
    /// Probes checked.
    pub probes: u64,
    /// Results read back.
    pub results: u64,
    /// Blocks read (sealed and open).
    pub blocks: u64,
    /// Digested hours compared with their results.
    pub hours_compared: u64,
    /// Every damage on record, including what this check found.
    pub damage: Vec<Damage>,
}

impl Ledger {
    /// Reads and checks everything the ledger holds (see the module docs). `Err` only when
    /// storage fails; damage is in the report.
    pub fn fsck(&self) -> Result<FsckReport, LedgerError> {
        let mut report = FsckReport::default();
        let probes = self.all_probes()?;
        report.probes = probes.len() as u64;
        for (probe, id) in &probes {
            self.fsck_blocks(probe, *id, &mut report)?;
            report.hours_compared += self.fsck_digests(probe, *id)?;
        }
        self.fsck_counts(&probes)?;
        // What this check put on record is kept in the seal, for reports and the next check.
        let mut writer = self.lock_writer();
        self.write_seal(&mut writer);
        drop(writer);
        report.damage = self.damage();
        Ok(report)
    }

    /// Decodes every block of probe `id`, putting each that fails on record.
    fn fsck_blocks(
        &self,
        probe: &ProbeName,
        id: u32,
        report: &mut FsckReport,
    ) -> Result<(), LedgerError> {
        let mut damaged = Vec::new();
        self.visit_blocks(id, i64::MIN, i64::MAX, false, &mut |key, block, _| {
            report.blocks += 1;
            let mut count = 0;
            match self.decode_block_raw(probe, key, block, &mut |_| count += 1) {
                Ok(()) => report.results += count,
                Err(e) => damaged.push((key.start_ms, e.to_string())),
            }
            Ok(true)
        })?;
        for (start, reason) in damaged {
            self.note_damage(Damage {
                probe: Some(probe.clone()),
                from: timestamp_from_ms(start),
                to: timestamp_from_ms(start.saturating_add(MAX_BLOCK_SPAN_MS)),
                what: format!("a result block is unreadable: {reason}"),
            });
        }
        Ok(())
    }

    /// Compares every digested hour of probe `id` that still has its raw results with a
    /// digest made from them now. Returns how many hours were compared.
    fn fsck_digests(&self, probe: &ProbeName, id: u32) -> Result<u64, LedgerError> {
        let Some(coverage) = self.coverage_ms(id)? else {
            return Ok(0);
        };
        // Hours before the oldest block may have been pruned: their digests stand alone.
        let Some(first) = self.first_result_ms(id)? else {
            return Ok(0);
        };
        let from = floor_to(first, HOUR_MS) + HOUR_MS;
        let mut compared = 0;
        let (Some(from_at), Some(to_at)) = (timestamp_from_ms(from), timestamp_from_ms(coverage))
        else {
            return Ok(0);
        };
        if from >= coverage {
            return Ok(0);
        }
        let stored = match self.checked_digests(probe, from_at, to_at) {
            Ok(stored) => stored,
            Err(e @ LedgerError::Corrupt { .. }) => {
                self.note_damage(Damage {
                    probe: Some(probe.clone()),
                    from: Some(from_at),
                    to: Some(to_at),
                    what: format!("its digests are unreadable: {e}"),
                });
                return Ok(0);
            }
            Err(e) => return Err(e),
        };
        let mut by_hour = std::collections::BTreeMap::new();
        self.scan(id, probe, from, coverage, &mut |at_ms, record| {
            by_hour
                .entry(floor_to(at_ms, HOUR_MS))
                .or_insert_with(Vec::new)
                .push(record);
            Ok(())
        })?;
        let hours: BTreeSet<i64> = stored.keys().chain(by_hour.keys()).copied().collect();
        for hour_ms in hours {
            compared += 1;
            let made = by_hour
                .get(&hour_ms)
                .map(|records| super::digest::chunk_of(hour_ms, records));
            if made.as_ref() != stored.get(&hour_ms) {
                self.note_damage(Damage {
                    probe: Some(probe.clone()),
                    from: timestamp_from_ms(hour_ms),
                    to: timestamp_from_ms(hour_ms + HOUR_MS),
                    what: "the hour's digest does not match its results".to_owned(),
                });
            }
        }
        Ok(compared)
    }

    /// Compares each probe's results with what the seal says was made durable.
    fn fsck_counts(&self, probes: &[(ProbeName, u32)]) -> Result<(), LedgerError> {
        let counted = self.tally_all()?;
        let sealed = self.sealed_tallies();
        for (probe, id) in probes {
            let have = counted.get(id).map_or(0, |t| t.count);
            let Some(want) = sealed.get(id) else {
                continue;
            };
            if have < want.count {
                self.note_damage(Damage {
                    probe: Some(probe.clone()),
                    from: timestamp_from_ms(want.oldest),
                    to: timestamp_from_ms(want.newest + 1),
                    what: format!(
                        "{} results can be read of the {} the seal counts",
                        have, want.count
                    ),
                });
            }
        }
        Ok(())
    }
}
