//! Where a month report's material comes from: the [`MonthSource`] trait names exactly what
//! [`super::monthly`] reads — results, maintenance sightings, exclusions, clock steps,
//! damage, imports and the stored figures of closed months — and nothing else.
//!
//! Two sources implement it. The [`Ledger`] reads its trees (with the digest shortcut for a
//! probe's evidence) and freezes closed months; a [`RecordedSource`] holds the same material
//! as plain data in memory — what an evidence bundle carries (SPEC §8) — so `upledger verify`
//! recomputes a report with no ledger, through the very code `upledger report` runs.
//! May use `model`, `config`, `ledger` and `report`.

use std::collections::HashMap;

use jiff::Timestamp;

use super::{
    QueryError,
    monthly::{DamageReport, Evidence, load_evidence, raw_evidence},
};
use crate::{
    config::ProbeSpec,
    ledger::{ClockStep, ExclusionEntry, ImportRecord, Ledger, ResultRecord},
    model::ProbeName,
    report::Interval,
};

/// What a month report reads. Every method answers for a span of time, so a source may hold
/// only the month (and the margins around it) it was made for.
pub trait MonthSource {
    /// The results of `probe` with `from <= at < to`, oldest first.
    fn results(
        &self,
        probe: &ProbeName,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<ResultRecord>, QueryError>;

    /// A probe's evidence for `period` as of `now`: its results around the period as runs,
    /// and the checks and latencies inside it. By default computed from
    /// [`MonthSource::results`]; a source with digests may take a shortcut, provided the
    /// evidence is the same.
    fn evidence(
        &self,
        spec: &ProbeSpec,
        period: Interval,
        now: Timestamp,
    ) -> Result<Evidence, QueryError> {
        raw_evidence(self, spec, period, now)
    }

    /// When the maintenance window with this identity was first seen, if ever.
    fn maintenance_seen(&self, identity: &str) -> Result<Option<Timestamp>, QueryError>;

    /// Exclusions overlapping `[from, to)` — of every probe and SLA — revoked or not, in the
    /// order entered.
    fn exclusion_entries(
        &self,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<ExclusionEntry>, QueryError>;

    /// The clock steps whose ambiguous span overlaps `[from, to)`, oldest first.
    fn clock_steps_touching(
        &self,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<ClockStep>, QueryError>;

    /// The spans of `probe`'s time overlapping `[from, to)` whose results are lost.
    fn damaged_spans(
        &self,
        probe: &ProbeName,
        from: Timestamp,
        to: Timestamp,
    ) -> Vec<(Timestamp, Timestamp)>;

    /// Every damaged range of a probe that overlaps `period`, as reports list it.
    fn damage_touching(&self, period: Interval) -> Vec<DamageReport>;

    /// Every import on record, oldest first.
    fn import_records(&self) -> Result<Vec<ImportRecord>, QueryError>;

    /// The stored figures of a closed period under `key`, if any.
    fn closed(&self, key: &str) -> Result<Option<Vec<u8>>, QueryError>;

    /// Stores the figures of a closed period under `key` (not flushed yet).
    fn store_closed(&self, key: &str, figures: &[u8]) -> Result<(), QueryError>;

    /// Makes the figures stored so far durable.
    fn flush_closed(&self) -> Result<(), QueryError>;
}

impl MonthSource for Ledger {
    fn results(
        &self,
        probe: &ProbeName,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<ResultRecord>, QueryError> {
        Ok(Ledger::results(self, probe, from, to)?)
    }

    /// Digested hours where the ledger has them (see [`load_evidence`]).
    fn evidence(
        &self,
        spec: &ProbeSpec,
        period: Interval,
        now: Timestamp,
    ) -> Result<Evidence, QueryError> {
        load_evidence(self, spec, period, now)
    }

    fn maintenance_seen(&self, identity: &str) -> Result<Option<Timestamp>, QueryError> {
        Ok(Ledger::maintenance_seen(self, identity)?)
    }

    fn exclusion_entries(
        &self,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<ExclusionEntry>, QueryError> {
        Ok(Ledger::exclusion_entries(self, from, to)?)
    }

    fn clock_steps_touching(
        &self,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<ClockStep>, QueryError> {
        Ok(Ledger::clock_steps_touching(self, from, to)?)
    }

    fn damaged_spans(
        &self,
        probe: &ProbeName,
        from: Timestamp,
        to: Timestamp,
    ) -> Vec<(Timestamp, Timestamp)> {
        Ledger::damaged_spans(self, probe, from, to)
    }

    fn damage_touching(&self, period: Interval) -> Vec<DamageReport> {
        // Damage not tied to a probe and a span (an unreadable seal) is in `fsck`, not in
        // reports: it says nothing about any probe's time.
        self.damage()
            .into_iter()
            .filter_map(|d| {
                let (probe, from, to) = (d.probe?, d.from?, d.to?);
                (from < period.end && to > period.start).then(|| DamageReport {
                    probe: probe.as_str().to_owned(),
                    from,
                    to,
                    what: d.what,
                })
            })
            .collect()
    }

    fn import_records(&self) -> Result<Vec<ImportRecord>, QueryError> {
        Ok(Ledger::import_records(self)?)
    }

    fn closed(&self, key: &str) -> Result<Option<Vec<u8>>, QueryError> {
        Ok(Ledger::closed(self, key)?)
    }

    fn store_closed(&self, key: &str, figures: &[u8]) -> Result<(), QueryError> {
        Ok(Ledger::store_closed(self, key, figures)?)
    }

    fn flush_closed(&self) -> Result<(), QueryError> {
        Ok(self.flush()?)
    }
}

/// A month's material held in memory, as an evidence bundle carries it: results (the
/// `export` lines, parsed), exclusions with their revocations, when each maintenance window
/// was first seen, clock steps, damaged ranges and imports.
///
/// It stores no figures: every month it is asked for is computed afresh, which is the point
/// of a verification. Built empty with [`RecordedSource::new`] and filled with the `with_*`
/// methods.
#[derive(Debug, Clone, Default)]
pub struct RecordedSource {
    /// Each probe's results, sorted by time.
    results: HashMap<ProbeName, Vec<ResultRecord>>,
    exclusions: Vec<ExclusionEntry>,
    sightings: HashMap<String, Timestamp>,
    clock_steps: Vec<ClockStep>,
    damage: Vec<DamageReport>,
    imports: Vec<ImportRecord>,
}

impl RecordedSource {
    /// A source holding `results` (of any probes, in any order) and nothing else yet.
    pub fn new(results: Vec<ResultRecord>) -> RecordedSource {
        RecordedSource::default().with_results(results)
    }

    /// Adds `results` (of any probes, in any order) to those held.
    pub fn with_results(mut self, results: Vec<ResultRecord>) -> RecordedSource {
        for record in results {
            self.results
                .entry(record.probe.clone())
                .or_default()
                .push(record);
        }
        // Stable, so results at the same instant keep the order they came in (the ledger's).
        for records in self.results.values_mut() {
            records.sort_by_key(|r| r.at);
        }
        self
    }

    /// Adds exclusions, each with the revocation that withdrew it if any, in the order they
    /// were entered (reports list them in that order).
    pub fn with_exclusions(mut self, entries: Vec<ExclusionEntry>) -> RecordedSource {
        self.exclusions.extend(entries);
        self
    }

    /// Adds when maintenance windows were first seen: `(identity, first seen)`, the identity
    /// being [`crate::config::MaintenanceSpec::identity`]. Of two sightings of one window the
    /// earlier counts.
    pub fn with_maintenance_seen(
        mut self,
        sightings: impl IntoIterator<Item = (String, Timestamp)>,
    ) -> RecordedSource {
        for (identity, at) in sightings {
            self.sightings
                .entry(identity)
                .and_modify(|seen| *seen = (*seen).min(at))
                .or_insert(at);
        }
        self
    }

    /// Adds clock steps.
    pub fn with_clock_steps(mut self, steps: Vec<ClockStep>) -> RecordedSource {
        self.clock_steps.extend(steps);
        self.clock_steps.sort_by_key(|step| step.at);
        self
    }

    /// Adds damaged ranges: a probe's results in `[from, to)` are lost, for `what` reason.
    pub fn with_damage(mut self, ranges: Vec<DamageReport>) -> RecordedSource {
        self.damage.extend(ranges);
        self
    }

    /// Adds import records, oldest first.
    pub fn with_imports(mut self, imports: Vec<ImportRecord>) -> RecordedSource {
        self.imports.extend(imports);
        self
    }
}

impl MonthSource for RecordedSource {
    fn results(
        &self,
        probe: &ProbeName,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<ResultRecord>, QueryError> {
        let Some(records) = self.results.get(probe) else {
            return Ok(Vec::new());
        };
        let first = records.partition_point(|r| r.at < from);
        let end = records.partition_point(|r| r.at < to).max(first);
        Ok(records[first..end].to_vec())
    }

    fn maintenance_seen(&self, identity: &str) -> Result<Option<Timestamp>, QueryError> {
        Ok(self.sightings.get(identity).copied())
    }

    fn exclusion_entries(
        &self,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<ExclusionEntry>, QueryError> {
        Ok(self
            .exclusions
            .iter()
            .filter(|entry| entry.exclusion.from < to && entry.exclusion.to > from)
            .cloned()
            .collect())
    }

    fn clock_steps_touching(
        &self,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<ClockStep>, QueryError> {
        Ok(self
            .clock_steps
            .iter()
            .filter(|step| {
                let (start, end) = step.ambiguous();
                start < to && end > from
            })
            .copied()
            .collect())
    }

    fn damaged_spans(
        &self,
        probe: &ProbeName,
        from: Timestamp,
        to: Timestamp,
    ) -> Vec<(Timestamp, Timestamp)> {
        self.damage
            .iter()
            .filter(|d| d.probe == probe.as_str() && d.from < to && d.to > from)
            .map(|d| (d.from, d.to))
            .collect()
    }

    fn damage_touching(&self, period: Interval) -> Vec<DamageReport> {
        self.damage
            .iter()
            .filter(|d| d.from < period.end && d.to > period.start)
            .cloned()
            .collect()
    }

    fn import_records(&self) -> Result<Vec<ImportRecord>, QueryError> {
        Ok(self.imports.clone())
    }

    /// Nothing is stored: a recorded month is always computed.
    fn closed(&self, _key: &str) -> Result<Option<Vec<u8>>, QueryError> {
        Ok(None)
    }

    /// Nothing is stored: the figures are dropped.
    fn store_closed(&self, _key: &str, _figures: &[u8]) -> Result<(), QueryError> {
        Ok(())
    }

    fn flush_closed(&self) -> Result<(), QueryError> {
        Ok(())
    }
}
