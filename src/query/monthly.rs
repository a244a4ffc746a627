//! `upledger report` and `upledger incidents`: fetch a month of results, maintenance sightings
//! and exclusions from a [`MonthSource`] — the ledger, or an evidence bundle's records held in
//! memory — hand them to the pure [`crate::report`] layer, and shape the JSON of SPEC §4.1.
//! Both sources go through the same code, so a report recomputed from evidence is the report.
//!
//! Results are read a little beyond the month on both sides: before it, so a failure run that
//! began last month is judged whole; after it, so a run confirmed just after the month end is
//! back-dated into it (SPEC §3, closing a month).

use std::{collections::HashMap, time::Duration};

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use super::{
    QueryError,
    latency::LatencyObjectiveReport,
    locations::{Located, located, located_for_sla, raw_quorum, read_located},
    source::MonthSource,
    trend::{Previous, TrendMonth},
};
use crate::{
    config::{Config, DowntimeUnit, ProbeSpec, SlaSpec},
    ledger::{ClockStep, ExclusionEntry, HourDigest, ImportRecord, Ledger, ResultRecord},
    model::{
        ErrorClass, LatencyHistogram, LocationName, Outcome, ProbeName, Run, State, glob_match,
        push_run,
    },
    report::{
        Exclusion, Fraction, Interval, MaintenanceWindow, Month, MonthInput, MonthReport,
        SampleRules, Seconds, Segment, Terms, Timeline, honoured_windows, maintenance_windows,
    },
};

/// Which probes and SLAs a report covers.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// Only this probe (and no SLA).
    pub probe: Option<String>,
    /// Only this SLA (and its probes).
    pub sla: Option<String>,
}

/// Which maintenance windows a report lets count.
///
/// A report from the ledger trusts the configuration: every window counts for its probes, and
/// an SLA with `maintenance_notice` takes only windows seen that long before they start. A
/// report meant as evidence (SPEC §8: signed reports and `upledger verify`) counts only what
/// the log proves was announced in time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum MaintenanceRule {
    /// As configured (what `upledger report` has always shown).
    #[default]
    AsConfigured,
    /// A window counts — for a probe and for every SLA — only if it was first seen at or
    /// before its start, and with `maintenance_notice` at least that long before.
    Proven,
}

impl MaintenanceRule {
    /// The notice a window needs under this rule, given the one configured: `None` when any
    /// window counts, seen or not.
    pub fn notice(self, configured: Option<Duration>) -> Option<Duration> {
        match self {
            MaintenanceRule::AsConfigured => configured,
            MaintenanceRule::Proven => Some(configured.unwrap_or(Duration::ZERO)),
        }
    }
}

/// Latency percentiles of the month's checks, in milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    /// Median.
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
}

/// One probe's month (SPEC §4.1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeMonth {
    /// Probe name.
    pub name: String,
    /// Target in percent.
    pub target: f64,
    /// Availability in percent; `null` when nothing was eligible.
    pub availability: Option<f64>,
    /// Exact availability as a reduced fraction.
    pub availability_exact: Option<String>,
    /// Share of the time that counts that had evidence, in percent.
    pub coverage: Option<f64>,
    /// Seconds up.
    pub up_seconds: f64,
    /// Seconds degraded.
    pub degraded_seconds: f64,
    /// Seconds down.
    pub down_seconds: f64,
    /// Seconds inside maintenance windows.
    pub maintenance_seconds: f64,
    /// Seconds without evidence.
    pub unknown_seconds: f64,
    /// Seconds taken out by exclusions.
    pub excluded_seconds: f64,
    /// Seconds monitored.
    pub monitored_seconds: f64,
    /// The denominator.
    pub eligible_seconds: f64,
    /// Seconds counted against the target.
    pub downtime_seconds: f64,
    /// Error budget in seconds.
    pub budget_seconds: f64,
    /// Budget left (negative when overspent).
    pub budget_remaining_seconds: f64,
    /// Availability ≥ target, decided exactly.
    pub met: bool,
    /// Checks run in the month.
    pub checks: u64,
    /// Checks that failed.
    pub failed_checks: u64,
    /// Confirmed outages in the month.
    pub incidents: usize,
    /// Check latency percentiles.
    pub latency_ms: Latency,
    /// Maintenance windows touching the month.
    pub maintenance: Vec<WindowReport>,
    /// Exclusions touching the month.
    pub exclusions: Vec<ExclusionReport>,
    /// Exclusions touching the month that were revoked, and so not applied.
    #[serde(default)]
    pub revoked_exclusions: Vec<RevokedExclusionReport>,
    /// For the month in progress: where the current rate leads.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub forecast: Option<Forecast>,
    /// For a probe read over locations (SPEC §9): how many of them must see it down for it
    /// to be down. The figures above are the quorum's.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub quorum: Option<usize>,
    /// For a probe read over locations: each location's own figures, under the probe's
    /// maintenance, exclusions and target.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub locations: Vec<LocationMonth>,
    /// The month before (SPEC §10, trend); absent from signed reports.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub previous: Option<Previous>,
    /// With `report --months N`: the last N months, oldest first, ending with this one.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub trend: Vec<TrendMonth>,
}

/// One location's own month of a probe read over locations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LocationMonth {
    /// The location.
    pub location: String,
    /// Availability seen from there, in percent (as the probe's); `null` when nothing was
    /// eligible.
    pub availability: Option<f64>,
    /// Exact availability seen from there, as a reduced fraction.
    pub availability_exact: Option<String>,
    /// Seconds counted against the target from there.
    pub downtime_s: f64,
}

/// Where the month in progress is heading at the current rate of downtime.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Forecast {
    /// Month-end availability in percent if downtime keeps accruing at the rate so far.
    pub projected_availability: Option<f64>,
    /// When the error budget runs out at that rate, if before the month ends.
    pub budget_exhausted_at: Option<Timestamp>,
}

/// A maintenance window as reports list it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WindowReport {
    /// Start.
    pub start: Timestamp,
    /// End.
    pub end: Timestamp,
    /// Why.
    pub reason: String,
    /// When the daemon first saw the window, if ever.
    pub first_seen: Option<Timestamp>,
    /// True when it was first seen after it started (announced late).
    pub seen_late: bool,
}

/// An exclusion as reports list it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExclusionReport {
    /// The ledger's id of it.
    #[serde(default)]
    pub id: String,
    /// Start.
    pub from: Timestamp,
    /// End.
    pub to: Timestamp,
    /// Why.
    pub reason: String,
    /// Who entered it (`name (uid N)`); absent for records from before this was kept.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub recorded_by: Option<String>,
}

/// A revoked exclusion as reports list it: what it said, and when and why it was withdrawn.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RevokedExclusionReport {
    /// The ledger's id of it.
    pub id: String,
    /// Start.
    pub from: Timestamp,
    /// End.
    pub to: Timestamp,
    /// Why it was entered.
    pub reason: String,
    /// When it was revoked.
    pub revoked_at: Timestamp,
    /// Why it was revoked.
    pub revocation_reason: String,
}

impl From<&ExclusionEntry> for RevokedExclusionReport {
    fn from(entry: &ExclusionEntry) -> Self {
        let e = &entry.exclusion;
        RevokedExclusionReport {
            id: e.id.clone(),
            from: e.from,
            to: e.to,
            reason: e.reason.clone(),
            revoked_at: entry
                .revoked
                .as_ref()
                .map_or(e.recorded_at, |r| r.recorded_at),
            revocation_reason: entry
                .revoked
                .as_ref()
                .map(|r| r.reason.clone())
                .unwrap_or_default(),
        }
    }
}

/// One SLA's month (SPEC §4.1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SlaMonth {
    /// SLA name.
    pub name: String,
    /// Client.
    pub client: Option<String>,
    /// The probes it covers.
    pub probes: Vec<String>,
    /// `all` or `any`.
    pub mode: String,
    /// Target in percent.
    pub target: f64,
    /// Availability in percent.
    pub availability: Option<f64>,
    /// Exact availability.
    pub availability_exact: Option<String>,
    /// Coverage in percent.
    pub coverage: Option<f64>,
    /// Seconds counted against the target.
    pub downtime_seconds: f64,
    /// The denominator.
    pub eligible_seconds: f64,
    /// Error budget in seconds.
    pub budget_seconds: f64,
    /// Budget left.
    pub budget_remaining_seconds: f64,
    /// Target met, exactly.
    pub met: bool,
    /// Credit owed, in percent of the fee.
    pub credit_percent: f64,
    /// Credit owed, in the fee's currency.
    pub credit_amount: f64,
    /// Currency of the fee.
    pub currency: Option<String>,
    /// Maintenance windows honoured (after the notice rule).
    pub maintenance: Vec<WindowReport>,
    /// Exclusions applied to the SLA: its own (`upledger exclude --sla`) and those entered
    /// for every member probe.
    #[serde(default)]
    pub exclusions: Vec<ExclusionReport>,
    /// The SLA's own exclusions that were revoked, and so not applied.
    #[serde(default)]
    pub revoked_exclusions: Vec<RevokedExclusionReport>,
    /// For the month in progress: where the current rate leads.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub forecast: Option<Forecast>,
    /// `"minute"` when only whole clock minutes entirely down were counted (SPEC §10);
    /// absent when every down second counts.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub downtime_unit: Option<String>,
    /// With minutes: the shortest run of down minutes that counted.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub min_downtime_minutes: Option<u32>,
    /// The response-time objective and how the month did (SPEC §10); absent without one.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub latency_objective: Option<LatencyObjectiveReport>,
    /// The month before (SPEC §10, trend); absent from signed reports.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub previous: Option<Previous>,
    /// With `report --months N`: the last N months, oldest first, ending with this one.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub trend: Vec<TrendMonth>,
}

/// The whole `report` document (SPEC §4.1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MonthDocument {
    /// `YYYY-MM`.
    pub month: String,
    /// The IANA time zone months are measured in.
    pub timezone: String,
    /// First instant of the month (UTC).
    pub period_start: Timestamp,
    /// First instant after it (UTC).
    pub period_end: Timestamp,
    /// The month is not over yet.
    pub in_progress: bool,
    /// Figures are as of this instant.
    pub as_of: Timestamp,
    /// Every probe covered.
    pub probes: Vec<ProbeMonth>,
    /// Every SLA covered.
    pub slas: Vec<SlaMonth>,
    /// Steps of the daemon's wall clock whose ambiguous span touches the month: that time
    /// counts as unknown in every figure above.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub clock_steps: Vec<ClockStepReport>,
    /// Imports (`upledger import`) that brought results of a covered probe into the month,
    /// with who made them: those results were not checked by this daemon.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub imports: Vec<ImportRecord>,
    /// Damaged ranges of the ledger touching the month (results it lost, see `upledger
    /// fsck`): that time counts as unknown for the probe named.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub damage: Vec<DamageReport>,
    /// For a closed month with an SLA judging runs of down minutes across its end (SPEC §10):
    /// the instant results were read up to, past `as_of`. `upledger verify` recomputes as of
    /// this instant, so it reads as far past the month as the report did. Absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub read_until: Option<Timestamp>,
}

/// A damaged range of the ledger as reports list it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DamageReport {
    /// The probe whose results are lost.
    pub probe: String,
    /// First instant counted unknown.
    pub from: Timestamp,
    /// End of the range (exclusive).
    pub to: Timestamp,
    /// What happened.
    pub what: String,
}

/// A step of the wall clock as reports list it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClockStepReport {
    /// When the daemon noticed it (wall-clock time after the step).
    pub at: Timestamp,
    /// How far the clock jumped, in seconds: negative when set back.
    pub step_seconds: f64,
    /// The wall-clock span it made ambiguous, counted as unknown.
    pub unknown_from: Timestamp,
    /// End of that span (exclusive).
    pub unknown_to: Timestamp,
}

impl From<&ClockStep> for ClockStepReport {
    fn from(step: &ClockStep) -> Self {
        ClockStepReport {
            at: step.at,
            step_seconds: step.step.as_secs_f64(),
            unknown_from: step.unknown_from,
            unknown_to: step.unknown_to,
        }
    }
}

/// A confirmed outage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    /// The probe.
    pub probe: String,
    /// First failure (back-dated start).
    pub start: Timestamp,
    /// First successful check after it; `null` while ongoing.
    pub end: Option<Timestamp>,
    /// No result has come after its failures yet: it has no end so far.
    #[serde(default)]
    pub ongoing: bool,
    /// Length in seconds (so far, while ongoing).
    pub duration_seconds: f64,
    /// Error class of the first failure.
    pub error_class: Option<ErrorClass>,
    /// Detail of the first failure.
    pub detail: String,
}

/// A probe's month timeline with the raw material reports list.
struct ProbeTimeline<'a> {
    spec: &'a ProbeSpec,
    timeline: Timeline,
    evidence: Evidence,
    /// For a probe read over locations: how, and each location's own timeline (the
    /// `timeline` above is their quorum).
    located: Option<(Located, Vec<(LocationName, Timeline)>)>,
    windows: Vec<MaintenanceWindow>,
    exclusions: Vec<Exclusion>,
    /// The probe's revoked exclusions, listed but not applied.
    revoked: Vec<ExclusionEntry>,
}

/// What a source says about one probe around a period: its results as runs, and the counts
/// and latencies of the checks inside the period (up to `as_of`). Opaque outside `query`:
/// only [`MonthSource::evidence`] makes one.
#[derive(Debug, Default)]
pub struct Evidence {
    pub(super) runs: Vec<Run>,
    pub(super) checks: u64,
    pub(super) failed_checks: u64,
    latency: LatencyHistogram,
}

impl Evidence {
    /// Adds raw results (in time order), counting those in `counted` — their latencies too,
    /// unless a day's histogram has them already.
    fn add_results(
        &mut self,
        records: &[ResultRecord],
        split_after: Duration,
        counted: Interval,
        latencies: bool,
    ) {
        for record in records {
            push_run(
                &mut self.runs,
                split_after,
                record.at,
                record.outcome,
                record.error_class,
                &record.detail,
            );
            if counted.contains(record.at) {
                self.checks += 1;
                if record.outcome == Outcome::Down {
                    self.failed_checks += 1;
                }
                if latencies {
                    self.latency.add(record.latency);
                }
            }
        }
    }

    /// Adds another series' evidence (another location of the same probe): checks and
    /// latencies add up, runs stay in time order.
    pub(super) fn absorb(&mut self, other: Evidence) {
        self.checks += other.checks;
        self.failed_checks += other.failed_checks;
        self.latency.merge(&other.latency);
        self.runs.extend(other.runs);
        self.runs.sort_by_key(|run| run.first);
    }

    /// Adds a digested hour lying inside the counted span (its histogram may be empty when
    /// its day's is added instead).
    fn add_digest(&mut self, digest: HourDigest) {
        self.checks += digest.checks();
        self.failed_checks += digest.failed_checks();
        self.latency.merge(&digest.latency);
        self.runs.extend(digest.runs);
    }
}

/// How far around the month results are read: long enough to judge runs crossing an edge.
pub fn margin(spec: &ProbeSpec) -> SignedDuration {
    let reach = spec.interval.saturating_mul(spec.failure_threshold) + spec.stale_after;
    SignedDuration::try_from(reach).unwrap_or(SignedDuration::from_hours(24))
}

/// How far beyond the month an SLA's timeline is read to judge a run of down minutes that
/// crosses one of its edges whole (SPEC §10, `min_downtime_period`): a run that needs `n`
/// minutes reaches at most `n` minutes past the edge (one more for the minute the edge may
/// cut). Zero when every second or every single minute counts on its own.
pub fn downtime_reach(sla: &SlaSpec) -> SignedDuration {
    match sla.downtime_unit {
        DowntimeUnit::Minute { min_run } if min_run > 1 => {
            SignedDuration::from_mins(i64::from(min_run) + 1)
        }
        _ => SignedDuration::ZERO,
    }
}

/// How far around the month `spec`'s results are read for any report: its own [`margin`],
/// plus the longest [`downtime_reach`] of the SLAs covering it. An evidence bundle carries
/// results this far around the month, so `verify` can read what the report read.
pub fn reach(config: &Config, spec: &ProbeSpec) -> SignedDuration {
    let sla_reach = config
        .slas
        .iter()
        .filter(|sla| covers(sla, &spec.name))
        .map(downtime_reach)
        .max()
        .unwrap_or(SignedDuration::ZERO);
    margin(spec).saturating_add(sla_reach)
}

/// `period` widened by `by` on both sides.
fn widened(period: Interval, by: SignedDuration) -> Interval {
    Interval::new(
        period.start.checked_sub(by).unwrap_or(period.start),
        period.end.checked_add(by).unwrap_or(period.end),
    )
}

const HOUR: SignedDuration = SignedDuration::from_hours(1);

/// `at` rounded to a whole UTC hour, down or up.
fn whole_hour(at: Timestamp, up: bool) -> Timestamp {
    let down = at
        .round(
            jiff::TimestampRound::new()
                .smallest(jiff::Unit::Hour)
                .mode(jiff::RoundMode::Floor),
        )
        .unwrap_or(at);
    if up && down < at {
        down.checked_add(HOUR).unwrap_or(at)
    } else {
        down
    }
}

/// Reads a probe's evidence for `period` as of `now`: digested hours inside the period where
/// the ledger has them, raw results for the margins, the hours not digested yet, and any
/// digested hour holding a gap longer than the probe's `stale_after` (its runs would hide an
/// unknown stretch). A month report thus reads a few runs per hour, not every result.
pub(super) fn load_evidence(
    ledger: &Ledger,
    spec: &ProbeSpec,
    period: Interval,
    now: Timestamp,
) -> Result<Evidence, QueryError> {
    let (from, to, counted) = evidence_span(spec, period, now);
    let split_after = spec.stale_after;
    let mut evidence = Evidence::default();
    let raw = |evidence: &mut Evidence, a: Timestamp, b: Timestamp, latencies: bool| {
        if a < b {
            let records = ledger.results(&spec.name, a, b)?;
            evidence.add_results(&records, split_after, counted, latencies);
        }
        Ok::<(), QueryError>(())
    };
    let first_hour = whole_hour(counted.start, true);
    let mut last_hour = whole_hour(counted.end, false);
    if let Some(coverage) = ledger.digest_coverage(&spec.name)? {
        last_hour = last_hour.min(coverage);
    } else {
        last_hour = first_hour;
    }
    if first_hour >= last_hour {
        raw(&mut evidence, from, to, true)?;
        return Ok(evidence);
    }
    raw(&mut evidence, from, first_hour, true)?;
    for day in ledger.digest_days(&spec.name, first_hour, last_hour)? {
        // A whole day's histogram already holds the latencies of all its hours.
        let day_latency = !day.latency.is_empty();
        evidence.latency.merge(&day.latency);
        for digest in day.hours {
            if digest.runs.iter().any(|run| run.max_gap > split_after) {
                let end = digest.hour.checked_add(HOUR).unwrap_or(digest.hour);
                raw(&mut evidence, digest.hour, end, !day_latency)?;
            } else {
                evidence.add_digest(digest);
            }
        }
    }
    raw(&mut evidence, last_hour, to, true)?;
    Ok(evidence)
}

/// Reads a probe's evidence for `period` as of `now` from raw results alone: the margins and
/// the period in one read. What [`load_evidence`] computes with the ledger's digests.
pub(super) fn raw_evidence<S: MonthSource + ?Sized>(
    source: &S,
    spec: &ProbeSpec,
    period: Interval,
    now: Timestamp,
) -> Result<Evidence, QueryError> {
    let (from, to, counted) = evidence_span(spec, period, now);
    let mut evidence = Evidence::default();
    if from < to {
        let records = source.results(&spec.name, from, to)?;
        evidence.add_results(&records, spec.stale_after, counted, true);
    }
    Ok(evidence)
}

/// The span results are read from for `period` as of `now` (the period with a margin on both
/// sides, but nothing after `now`), and the span whose checks are counted.
fn evidence_span(
    spec: &ProbeSpec,
    period: Interval,
    now: Timestamp,
) -> (Timestamp, Timestamp, Interval) {
    let margin = margin(spec);
    let from = period.start.checked_sub(margin).unwrap_or(period.start);
    let to = period
        .end
        .checked_add(margin)
        .unwrap_or(period.end)
        .min(now.max(period.start))
        .max(from);
    let counted = Interval::new(period.start, now.min(period.end).max(period.start));
    (from, to, counted)
}

/// The wall-clock spans `steps` make ambiguous.
fn ambiguous_spans(steps: &[ClockStep]) -> Vec<Interval> {
    steps
        .iter()
        .map(|step| {
            let (start, end) = step.ambiguous();
            Interval::new(start, end)
        })
        .collect()
}

/// One series' timeline for `period` from its evidence; time inside `ambiguous` (clock steps)
/// and the source's damaged ranges of the series is unknown.
fn series_timeline<S: MonthSource + ?Sized>(
    source: &S,
    spec: &ProbeSpec,
    evidence: &Evidence,
    period: Interval,
    now: Timestamp,
    ambiguous: &[Interval],
) -> Timeline {
    let until = now.min(period.end);
    let mut timeline = Timeline::from_runs(
        evidence.runs.iter().cloned(),
        SampleRules::for_probe(spec),
        until,
    );
    if !ambiguous.is_empty() {
        timeline = timeline.unknown_over(ambiguous.iter().copied());
    }
    // Damaged ranges (results the ledger lost) are unknown like clock steps, and monitored
    // even where no result is left to say so: the probe was checked then.
    let measured = Interval::new(period.start, until.max(period.start));
    let damaged: Vec<Interval> = source
        .damaged_spans(&spec.name, period.start, period.end)
        .into_iter()
        .filter_map(|(start, end)| Interval::new(start, end).intersect(&measured))
        .collect();
    if !damaged.is_empty() {
        timeline = timeline.lost_over(damaged);
    }
    timeline
}

/// Loads a probe's timeline for `period`: from its own results, or, when `located` says so,
/// as the quorum of its locations' series (SPEC §9). Its maintenance windows are those
/// `rule` lets count.
#[allow(clippy::too_many_arguments)]
fn load_probe<'a, S: MonthSource + ?Sized>(
    config: &Config,
    source: &S,
    spec: &'a ProbeSpec,
    period: Interval,
    now: Timestamp,
    ambiguous: &[Interval],
    rule: MaintenanceRule,
    located: Option<Located>,
) -> Result<ProbeTimeline<'a>, QueryError> {
    let (timeline, evidence, located) = match located {
        None => {
            let evidence = source.evidence(spec, period, now)?;
            let timeline = series_timeline(source, spec, &evidence, period, now, ambiguous);
            (timeline, evidence, None)
        }
        Some(located) => {
            let read = read_located(source, spec, &located, period, now, |series, evidence| {
                series_timeline(source, series, evidence, period, now, ambiguous)
            })?;
            (
                read.timeline,
                read.evidence,
                Some((located, read.locations)),
            )
        }
    };
    let windows = maintenance_windows(
        &config.maintenance,
        &spec.name,
        &config.daemon.timezone,
        period,
    );
    let windows = match rule.notice(None) {
        None => windows,
        notice => honoured_windows(&windows, notice, |window: &MaintenanceWindow| {
            first_seen(source, window)
        }),
    };
    let (revoked, in_force): (Vec<ExclusionEntry>, Vec<ExclusionEntry>) = source
        .exclusion_entries(period.start, period.end)?
        .into_iter()
        .filter(|entry| entry.exclusion.probe.as_ref() == Some(&spec.name))
        .partition(|entry| entry.revoked.is_some());
    let exclusions = in_force
        .iter()
        .map(|entry| Exclusion::from(&entry.exclusion))
        .collect();
    Ok(ProbeTimeline {
        spec,
        timeline,
        evidence,
        located,
        windows,
        exclusions,
        revoked,
    })
}

/// When `window` was first seen; a source that cannot tell is taken as never having seen it
/// (the window then proves no notice).
fn first_seen<S: MonthSource + ?Sized>(
    source: &S,
    window: &MaintenanceWindow,
) -> Option<Timestamp> {
    source.maintenance_seen(&window.identity).ok().flatten()
}

/// Computes the month document for `month` as of `now` from the ledger, with the maintenance
/// rules as configured (what `upledger report` shows). Closed months are stored in the
/// ledger and read back from it.
pub fn month_document(
    config: &Config,
    ledger: &Ledger,
    month: Month,
    now: Timestamp,
    selection: &Selection,
) -> Result<MonthDocument, QueryError> {
    month_document_from(
        config,
        ledger,
        month,
        now,
        selection,
        MaintenanceRule::AsConfigured,
    )
}

/// Computes the month document for `month` as of `now` from `source`, counting maintenance
/// windows as `rule` says: the one computation behind `upledger report` (from the ledger)
/// and `upledger verify` (from an evidence bundle's [`super::source::RecordedSource`]).
pub fn month_document_from<S: MonthSource + ?Sized>(
    config: &Config,
    source: &S,
    month: Month,
    now: Timestamp,
    selection: &Selection,
    rule: MaintenanceRule,
) -> Result<MonthDocument, QueryError> {
    let timezone = &config.daemon.timezone;
    let period = month
        .bounds(timezone)
        .map_err(|e| QueryError::BadRequest(e.to_string()))?;
    let slas: Vec<&SlaSpec> = match (&selection.sla, &selection.probe) {
        (Some(name), _) => vec![super::sla_spec(config, name)?],
        (None, Some(_)) => Vec::new(),
        (None, None) => config.slas.iter().collect(),
    };
    // Disabled probes are in no report: they are not measured, and an SLA naming one is
    // judged on its enabled members.
    let enabled = || config.probes.iter().filter(|p| p.enabled);
    let probes: Vec<&ProbeSpec> = match (&selection.probe, &selection.sla) {
        (Some(name), _) => {
            let spec = super::probe_spec(config, name)?;
            if !spec.enabled {
                return Err(QueryError::BadRequest(format!(
                    "probe \"{name}\" is disabled (enabled = false): it has no report"
                )));
            }
            vec![spec]
        }
        (None, Some(_)) => enabled()
            .filter(|p| slas.iter().any(|sla| covers(sla, &p.name)))
            .collect(),
        (None, None) => enabled().collect(),
    };
    let first_seen = |window: &MaintenanceWindow| first_seen(source, window);
    let zone = &config.daemon.timezone_name;

    let steps = source.clock_steps_touching(period.start, period.end)?;
    let ambiguous = ambiguous_spans(&steps);
    // Timelines are loaded only for what is not stored yet, and once.
    let mut loaded: HashMap<ProbeName, ProbeTimeline<'_>> = HashMap::new();
    let mut stored_any = false;
    let mut probe_months = Vec::with_capacity(probes.len());
    for spec in probes {
        let key = closed_key(month, zone, rule, "probe", spec.name.as_str());
        let closed = is_closed(period, now, [spec]);
        if let Some(stored) = stored::<ProbeMonth, S>(source, &key, closed)? {
            probe_months.push(stored);
            continue;
        }
        let probe = load_probe(
            config,
            source,
            spec,
            period,
            now,
            &ambiguous,
            rule,
            located(config, spec),
        )?;
        let terms = Terms::for_probe(spec);
        let figures = MonthReport::compute(&MonthInput {
            period,
            now,
            timeline: &probe.timeline,
            maintenance: &probe.windows,
            exclusions: &probe.exclusions,
            terms: &terms,
        });
        let mut entry = probe_month(&probe, &figures, period, &first_seen);
        if let Some((located, locations)) = &probe.located {
            entry.quorum = Some(located.quorum);
            entry.locations = location_months(&probe, locations, period, now, &terms);
        }
        // A month with no result for the probe has nothing to freeze.
        if closed && entry.checks > 0 {
            store(source, &key, &entry)?;
            stored_any = true;
        }
        probe_months.push(entry);
        // Only SLA members are needed again; keeping every probe's evidence would hold a
        // month of runs for all of them at once.
        if slas.iter().any(|sla| covers(sla, &spec.name)) {
            loaded.insert(spec.name.clone(), probe);
        }
    }

    let reads_past_the_end =
        now > period.end && slas.iter().any(|sla| !downtime_reach(sla).is_zero());
    let mut sla_months = Vec::with_capacity(slas.len());
    for sla in slas {
        let member_specs: Vec<&ProbeSpec> = enabled().filter(|p| covers(sla, &p.name)).collect();
        let key = closed_key(month, zone, rule, "sla", &sla.name);
        // A run of down minutes crossing the month's end is judged whole (SPEC §10): the
        // month is final only once the run's longest reach past the end is known too.
        let sla_reach = downtime_reach(sla);
        let closed = is_closed(
            widened(period, sla_reach),
            now,
            member_specs.iter().copied(),
        );
        // Figures stored before the SLA had (or lost) a latency objective are made again.
        let stored_month = stored::<SlaMonth, S>(source, &key, closed)?
            .filter(|s| s.latency_objective.is_some() == sla.latency.is_some());
        if let Some(stored) = stored_month {
            sla_months.push(stored);
            continue;
        }
        // A member the SLA reads over other locations or another quorum than the probe's own
        // is read again for this SLA alone.
        let mut own_reading: HashMap<ProbeName, ProbeTimeline<'_>> = HashMap::new();
        for spec in &member_specs {
            let reading = located_for_sla(config, sla, spec)?;
            if !sla_reach.is_zero() {
                // Read around the month as far as a run of down minutes may reach.
                let wide = widened(period, sla_reach);
                let probe = load_probe(config, source, spec, wide, now, &ambiguous, rule, reading)?;
                own_reading.insert(spec.name.clone(), probe);
            } else if reading != located(config, spec) {
                let probe =
                    load_probe(config, source, spec, period, now, &ambiguous, rule, reading)?;
                own_reading.insert(spec.name.clone(), probe);
            } else if !loaded.contains_key(&spec.name) {
                let probe =
                    load_probe(config, source, spec, period, now, &ambiguous, rule, reading)?;
                loaded.insert(spec.name.clone(), probe);
            }
        }
        let members: Vec<&ProbeTimeline<'_>> = member_specs
            .iter()
            .filter_map(|spec| {
                own_reading
                    .get(&spec.name)
                    .or_else(|| loaded.get(&spec.name))
            })
            .collect();
        let span = widened(period, sla_reach);
        let own: Vec<ExclusionEntry> = source
            .exclusion_entries(span.start, span.end)?
            .into_iter()
            .filter(|entry| entry.exclusion.sla.as_ref() == Some(&sla.name))
            .collect();
        let mut entry = sla_month(sla, &members, &own, period, span, now, rule, &first_seen)?;
        super::latency::apply(config, source, sla, &member_specs, &mut entry, period, now)?;
        if closed && entry.eligible_seconds > 0.0 {
            store(source, &key, &entry)?;
            stored_any = true;
        }
        sla_months.push(entry);
    }

    if stored_any {
        source.flush_closed()?;
    }
    // Each with only the probes this report covers: a disabled or unselected probe is in no
    // report, also not by name.
    let imports = source
        .import_records()?
        .into_iter()
        .filter_map(|mut record| {
            let touches = |name: &str| record.touches(Some(name), period.start, period.end);
            // A probe read over locations was imported as its locations' series.
            let covered: Vec<String> = probe_months
                .iter()
                .filter(|p| {
                    touches(&p.name)
                        || p.locations
                            .iter()
                            .any(|l| touches(&format!("{}@{}", p.name, l.location)))
                })
                .map(|p| p.name.clone())
                .collect();
            record.probes = covered;
            (!record.probes.is_empty()).then_some(record)
        })
        .collect();
    Ok(MonthDocument {
        month: month.to_string(),
        timezone: config.daemon.timezone_name.clone(),
        period_start: period.start,
        period_end: period.end,
        in_progress: now < period.end,
        as_of: now.min(period.end),
        probes: probe_months,
        slas: sla_months,
        clock_steps: steps.iter().map(ClockStepReport::from).collect(),
        imports,
        damage: source.damage_touching(period),
        read_until: reads_past_the_end.then_some(now),
    })
}

/// The forecast of a month in progress: downtime keeps accruing at the rate so far (per
/// eligible second) over the rest of the month. Display figures only; decisions stay exact.
fn forecast(figures: &MonthReport) -> Option<Forecast> {
    if !figures.in_progress {
        return None;
    }
    let eligible = figures.eligible.as_f64();
    let downtime = figures.downtime.as_f64();
    let rest = figures
        .period
        .end
        .duration_since(figures.as_of)
        .as_secs_f64()
        .max(0.0);
    if eligible <= 0.0 {
        return Some(Forecast {
            projected_availability: None,
            budget_exhausted_at: None,
        });
    }
    let rate = downtime / eligible;
    let projected = 100.0 * (1.0 - rate);
    let left = figures.budget_remaining.as_f64();
    let budget_exhausted_at = if left <= 0.0 {
        Some(figures.as_of)
    } else if rate > 0.0 && left / rate < rest {
        SignedDuration::try_from_secs_f64(left / rate)
            .ok()
            .and_then(|d| figures.as_of.checked_add(d).ok())
    } else {
        None
    };
    Some(Forecast {
        projected_availability: Some((projected * 1e6).round() / 1e6),
        budget_exhausted_at,
    })
}

/// Where a closed period's figures are stored: figures under the proven rule apart, since
/// they may differ. Both under `month/{month}/`, which forgetting a month clears.
fn closed_key(month: Month, zone: &str, rule: MaintenanceRule, kind: &str, name: &str) -> String {
    match rule {
        MaintenanceRule::AsConfigured => format!("month/{month}/{zone}/{kind}/{name}"),
        MaintenanceRule::Proven => format!("month/{month}/{zone}/proven/{kind}/{name}"),
    }
}

/// Whether the month is final for these probes: `failure_threshold × interval + stale_after`
/// after its end nothing can be back-dated into it any more (SPEC §3, closing a month).
fn is_closed<'a>(
    period: Interval,
    now: Timestamp,
    probes: impl IntoIterator<Item = &'a ProbeSpec>,
) -> bool {
    let settle = probes
        .into_iter()
        .map(margin)
        .max()
        .unwrap_or(SignedDuration::ZERO);
    period
        .end
        .checked_add(settle)
        .is_ok_and(|closes| now >= closes)
}

/// When `sla`'s figures for `period` become final and are stored, as [`month_document`]
/// decides it: the period's end, widened by the SLA's [`downtime_reach`], plus the longest
/// [`margin`] of its enabled members. `None` when that lies beyond what a timestamp holds.
/// The daemon sends a closed month's `report` from this instant on (SPEC §10).
pub fn sla_closes_at(config: &Config, sla: &SlaSpec, period: Interval) -> Option<Timestamp> {
    let settle = config
        .probes
        .iter()
        .filter(|p| p.enabled && covers(sla, &p.name))
        .map(margin)
        .max()
        .unwrap_or(SignedDuration::ZERO);
    widened(period, downtime_reach(sla))
        .end
        .checked_add(settle)
        .ok()
}

/// The stored figures of a closed period; `None` for an open one or one not stored yet (or
/// stored by an older, incompatible build: then it is recomputed and stored again).
fn stored<T: for<'de> Deserialize<'de>, S: MonthSource + ?Sized>(
    source: &S,
    key: &str,
    closed: bool,
) -> Result<Option<T>, QueryError> {
    if !closed {
        return Ok(None);
    }
    Ok(source
        .closed(key)?
        .and_then(|bytes| serde_json::from_slice(&bytes).ok()))
}

fn store<T: Serialize, S: MonthSource + ?Sized>(
    source: &S,
    key: &str,
    figures: &T,
) -> Result<(), QueryError> {
    let bytes = serde_json::to_vec(figures)
        .map_err(|e| QueryError::BadRequest(format!("cannot store {key}: {e}")))?;
    source.store_closed(key, &bytes)
}

/// Records an exclusion and forgets the stored figures of every month it touches, so the
/// correction shows in the next report (stored months are otherwise final).
pub fn record_exclusion(
    config: &Config,
    ledger: &Ledger,
    exclusion: &crate::ledger::ExclusionRecord,
) -> Result<(), QueryError> {
    ledger.add_exclusion(exclusion)?;
    forget_months(config, ledger, exclusion)
}

/// Records the revocation of `exclusion` and forgets the stored figures of every month it
/// touches, so the next report no longer applies it.
pub fn record_revocation(
    config: &Config,
    ledger: &Ledger,
    exclusion: &crate::ledger::ExclusionRecord,
    revocation: &crate::ledger::RevocationRecord,
) -> Result<(), QueryError> {
    ledger.add_revocation(revocation)?;
    forget_months(config, ledger, exclusion)
}

/// Forgets the stored figures of every month `exclusion` touches.
fn forget_months(
    config: &Config,
    ledger: &Ledger,
    exclusion: &crate::ledger::ExclusionRecord,
) -> Result<(), QueryError> {
    for prefix in closed_prefixes(config, exclusion) {
        ledger.forget_closed(&prefix)?;
    }
    Ok(())
}

/// The prefixes of the stored figures ([`Ledger::store_closed`]) of every month `exclusion`
/// touches: what recording it (or its revocation) makes stale.
pub fn closed_prefixes(config: &Config, exclusion: &crate::ledger::ExclusionRecord) -> Vec<String> {
    months_touching(&config.daemon.timezone, exclusion.from, exclusion.to)
}

/// Forgets the stored figures of every month (in `timezone`) that `[from, to)` touches: they
/// were computed without what was recorded since.
pub fn forget_months_touching(
    timezone: &jiff::tz::TimeZone,
    ledger: &Ledger,
    from: Timestamp,
    to: Timestamp,
) -> Result<(), QueryError> {
    for prefix in months_touching(timezone, from, to) {
        ledger.forget_closed(&prefix)?;
    }
    Ok(())
}

/// The stored-figure prefixes of every month (in `timezone`) that `[from, to)` touches.
fn months_touching(timezone: &jiff::tz::TimeZone, from: Timestamp, to: Timestamp) -> Vec<String> {
    let mut month = Month::containing(from, timezone);
    let mut prefixes = Vec::new();
    loop {
        prefixes.push(format!("month/{month}/"));
        let Ok(bounds) = month.bounds(timezone) else {
            break;
        };
        if bounds.end >= to {
            break;
        }
        match month.next() {
            Some(next) => month = next,
            None => break,
        }
    }
    prefixes
}

/// Whether `sla` covers `probe` (its patterns match the name).
pub fn covers(sla: &SlaSpec, probe: &ProbeName) -> bool {
    sla.probes
        .iter()
        .any(|pattern| glob_match(pattern, probe.as_str()))
}

fn seconds(value: Seconds) -> f64 {
    value.as_f64()
}

fn percent(fraction: Option<Fraction>) -> Option<f64> {
    fraction.map(|f| {
        f.percent_text(6)
            .parse::<f64>()
            .unwrap_or_else(|_| f.as_f64() * 100.0)
    })
}

fn window_reports(
    windows: &[MaintenanceWindow],
    first_seen: &impl Fn(&MaintenanceWindow) -> Option<Timestamp>,
) -> Vec<WindowReport> {
    windows
        .iter()
        .map(|w| {
            let seen = first_seen(w);
            WindowReport {
                start: w.interval.start,
                end: w.interval.end,
                reason: w.reason.clone(),
                first_seen: seen,
                seen_late: seen.is_some_and(|s| s > w.interval.start),
            }
        })
        .collect()
}

fn exclusion_report(exclusion: &Exclusion) -> ExclusionReport {
    ExclusionReport {
        id: exclusion.id.clone(),
        from: exclusion.interval.start,
        to: exclusion.interval.end,
        reason: exclusion.reason.clone(),
        recorded_by: exclusion.recorded_by.clone(),
    }
}

fn probe_month(
    probe: &ProbeTimeline<'_>,
    figures: &MonthReport,
    period: Interval,
    first_seen: &impl Fn(&MaintenanceWindow) -> Option<Timestamp>,
) -> ProbeMonth {
    ProbeMonth {
        name: probe.spec.name.to_string(),
        target: probe.spec.target.as_f64(),
        availability: percent(figures.availability),
        availability_exact: figures.availability.map(|f| f.to_string()),
        coverage: percent(figures.coverage),
        up_seconds: seconds(figures.up),
        degraded_seconds: seconds(figures.degraded),
        down_seconds: seconds(figures.down),
        maintenance_seconds: seconds(figures.maintenance),
        unknown_seconds: seconds(figures.unknown),
        excluded_seconds: seconds(figures.excluded),
        monitored_seconds: seconds(figures.monitored),
        eligible_seconds: seconds(figures.eligible),
        downtime_seconds: seconds(figures.downtime),
        budget_seconds: seconds(figures.budget),
        budget_remaining_seconds: seconds(figures.budget_remaining),
        met: figures.met,
        checks: probe.evidence.checks,
        failed_checks: probe.evidence.failed_checks,
        incidents: outages(
            &probe
                .timeline
                .clip(Interval::new(period.start, figures.as_of.max(period.start))),
        )
        .len(),
        latency_ms: latency(&probe.evidence.latency),
        maintenance: window_reports(&probe.windows, first_seen),
        exclusions: probe.exclusions.iter().map(exclusion_report).collect(),
        revoked_exclusions: probe
            .revoked
            .iter()
            .map(RevokedExclusionReport::from)
            .collect(),
        forecast: forecast(figures),
        quorum: None,
        locations: Vec::new(),
        previous: None,
        trend: Vec::new(),
    }
}

/// Each location's own month of a probe read over locations: its timeline under the probe's
/// maintenance windows, exclusions and terms.
fn location_months(
    probe: &ProbeTimeline<'_>,
    locations: &[(LocationName, Timeline)],
    period: Interval,
    now: Timestamp,
    terms: &Terms,
) -> Vec<LocationMonth> {
    locations
        .iter()
        .map(|(location, timeline)| {
            let figures = MonthReport::compute(&MonthInput {
                period,
                now,
                timeline,
                maintenance: &probe.windows,
                exclusions: &probe.exclusions,
                terms,
            });
            LocationMonth {
                location: location.to_string(),
                availability: percent(figures.availability),
                availability_exact: figures.availability.map(|f| f.to_string()),
                downtime_s: seconds(figures.downtime),
            }
        })
        .collect()
}

/// Percentiles of the month's check latencies (nearest rank, to the histogram's precision).
fn latency(histogram: &LatencyHistogram) -> Latency {
    let ms = |q: f64| {
        histogram
            .quantile(q)
            .map_or(0.0, |d| (d.as_secs_f64() * 1e6).round() / 1e3)
    };
    Latency {
        p50: ms(0.50),
        p95: ms(0.95),
        p99: ms(0.99),
    }
}

/// The down segments of a timeline, merged where adjacent.
fn outages(timeline: &Timeline) -> Vec<Interval> {
    let mut outages: Vec<Interval> = Vec::new();
    for segment in timeline.segments().filter(|s| s.state == State::Down) {
        match outages.last_mut() {
            Some(last) if last.end == segment.start => last.end = segment.end,
            _ => outages.push(Interval::new(segment.start, segment.end)),
        }
    }
    outages
}

/// The SLA's combined timeline: at each instant, `all` is down when any member is down,
/// `any` only when every member is; time a member did not monitor counts as unknown for it.
fn combine(members: &[&Timeline], all: bool, span: Interval) -> Timeline {
    let mut cuts: Vec<Timestamp> = vec![span.start, span.end];
    for member in members {
        for segment in member.segments() {
            cuts.push(segment.start.clamp(span.start, span.end));
            cuts.push(segment.end.clamp(span.start, span.end));
        }
    }
    cuts.sort();
    cuts.dedup();
    let mut segments = Vec::new();
    let mut monitored_start: Option<Timestamp> = None;
    for pair in cuts.windows(2) {
        let (start, end) = (pair[0], pair[1]);
        let states: Vec<Option<State>> = members.iter().map(|m| m.state_at(start)).collect();
        if states.iter().all(Option::is_none) {
            continue;
        }
        monitored_start.get_or_insert(start);
        let states: Vec<State> = states
            .into_iter()
            .map(|s| s.unwrap_or(State::Unknown))
            .collect();
        segments.push(Segment::new(start, end, combined_state(&states, all)));
    }
    let Some(start) = monitored_start else {
        return Timeline::default();
    };
    let end = segments.last().map_or(start, |s: &Segment| s.end);
    Timeline::from_intervals(Interval::new(start, end), State::Unknown, segments)
}

fn combined_state(states: &[State], all: bool) -> State {
    if all {
        // The service is only as good as its worst part.
        states
            .iter()
            .copied()
            .max_by_key(|s| match s {
                State::Maintenance => 4,
                State::Down => 3,
                State::Unknown => 2,
                State::Degraded => 1,
                State::Up => 0,
            })
            .unwrap_or(State::Unknown)
    } else {
        // The service is as good as its best part.
        states
            .iter()
            .copied()
            .max_by_key(|s| match s {
                State::Up => 4,
                State::Degraded => 3,
                State::Maintenance => 2,
                State::Unknown => 1,
                State::Down => 0,
            })
            .unwrap_or(State::Unknown)
    }
}

/// One SLA's month over its members' timelines, read over `span`: the period itself, or
/// wider when runs of down minutes are judged across its edges ([`downtime_reach`]). Only
/// what touches the period is listed.
#[allow(clippy::too_many_arguments)]
fn sla_month(
    sla: &SlaSpec,
    members: &[&ProbeTimeline<'_>],
    own_exclusions: &[ExclusionEntry],
    period: Interval,
    span: Interval,
    now: Timestamp,
    rule: MaintenanceRule,
    first_seen: &impl Fn(&MaintenanceWindow) -> Option<Timestamp>,
) -> Result<SlaMonth, QueryError> {
    let terms = Terms::for_sla(sla)
        .map_err(|e| QueryError::BadRequest(format!("sla {}: {e}", sla.name)))?;
    let timelines: Vec<&Timeline> = members.iter().map(|m| &m.timeline).collect();
    let timeline = combine(&timelines, sla.all, span);
    // The SLA honours a window when every member it names is covered by it (a window that
    // covers only some members leaves the others' downtime counting).
    let mut windows: Vec<MaintenanceWindow> = Vec::new();
    for member in members {
        for window in &member.windows {
            let everyone = members.iter().all(|m| {
                m.windows
                    .iter()
                    .any(|w| w.identity == window.identity && w.interval == window.interval)
            });
            if everyone
                && !windows
                    .iter()
                    .any(|w| w.identity == window.identity && w.interval == window.interval)
            {
                windows.push(window.clone());
            }
        }
    }
    let honoured = honoured_windows(&windows, rule.notice(sla.maintenance_notice), first_seen);
    let mut exclusions: Vec<Exclusion> = Vec::new();
    // An exclusion entered for every member applies to the service as a whole.
    if let Some(first) = members.first() {
        for exclusion in &first.exclusions {
            if members.iter().all(|m| {
                m.exclusions
                    .iter()
                    .any(|e| e.interval == exclusion.interval)
            }) {
                exclusions.push(exclusion.clone());
            }
        }
    }
    // The SLA's own exclusions apply to its figures only, not to its members'.
    exclusions.extend(
        own_exclusions
            .iter()
            .filter(|entry| entry.revoked.is_none())
            .map(|entry| Exclusion::from(&entry.exclusion)),
    );
    let figures = MonthReport::compute(&MonthInput {
        period,
        now,
        timeline: &timeline,
        maintenance: &honoured,
        exclusions: &exclusions,
        terms: &terms,
    });
    let credit = figures
        .credit
        .as_ref()
        .map_or(0.0, |tier| tier.credit.as_f64());
    Ok(SlaMonth {
        name: sla.name.clone(),
        client: sla.client.clone(),
        probes: members.iter().map(|m| m.spec.name.to_string()).collect(),
        mode: if sla.all { "all" } else { "any" }.to_owned(),
        target: sla.target.as_f64(),
        availability: percent(figures.availability),
        availability_exact: figures.availability.map(|f| f.to_string()),
        coverage: percent(figures.coverage),
        downtime_seconds: seconds(figures.downtime),
        eligible_seconds: seconds(figures.eligible),
        budget_seconds: seconds(figures.budget),
        budget_remaining_seconds: seconds(figures.budget_remaining),
        met: figures.met,
        credit_percent: credit,
        credit_amount: sla
            .monthly_fee
            .map_or(0.0, |fee| (fee * credit / 100.0 * 100.0).round() / 100.0),
        currency: sla.currency.clone(),
        maintenance: window_reports(
            &touching(&honoured, period, span, |w| w.interval),
            first_seen,
        ),
        exclusions: touching(&exclusions, period, span, |e| e.interval)
            .iter()
            .map(exclusion_report)
            .collect(),
        revoked_exclusions: own_exclusions
            .iter()
            .filter(|entry| entry.revoked.is_some())
            .filter(|entry| {
                span == period
                    || Interval::new(entry.exclusion.from, entry.exclusion.to)
                        .intersect(&period)
                        .is_some()
            })
            .map(RevokedExclusionReport::from)
            .collect(),
        forecast: forecast(&figures),
        downtime_unit: match sla.downtime_unit {
            DowntimeUnit::Second => None,
            DowntimeUnit::Minute { .. } => Some("minute".to_owned()),
        },
        min_downtime_minutes: match sla.downtime_unit {
            DowntimeUnit::Minute { min_run } => Some(min_run),
            DowntimeUnit::Second => None,
        },
        latency_objective: None,
        previous: None,
        trend: Vec::new(),
    })
}

/// The items of `items` whose interval touches `period`: what a month lists of what was read
/// around it.
fn touching<T: Clone>(
    items: &[T],
    period: Interval,
    span: Interval,
    interval: impl Fn(&T) -> Interval,
) -> Vec<T> {
    if span == period {
        // Read over the period alone: everything read touches it, as it always has.
        return items.to_vec();
    }
    items
        .iter()
        .filter(|item| interval(item).intersect(&period).is_some())
        .cloned()
        .collect()
}

/// Confirmed outages overlapping the month, with the first failure's class and detail, as of
/// `now`. Disabled probes are left out, like everywhere but `validate`.
///
/// An outage is shown with its own start and end even where they lie outside the month. Its
/// end is the first successful check after it (or, when the results stop for longer than
/// `stale_after` first, where its last failure stops counting, as the timeline has it); with
/// no result at all after its failures it is *ongoing*: `end` is `null` and the duration runs
/// until `now`. The month's timeline alone cannot tell, since it stops at the month's end or
/// at `now`, and showing that instant as the end would make an outage look resolved.
pub fn incidents(
    config: &Config,
    ledger: &Ledger,
    month: Month,
    now: Timestamp,
) -> Result<Vec<Incident>, QueryError> {
    incidents_from(config, ledger, month, now)
}

/// [`incidents`] from any [`MonthSource`].
pub fn incidents_from<S: MonthSource + ?Sized>(
    config: &Config,
    source: &S,
    month: Month,
    now: Timestamp,
) -> Result<Vec<Incident>, QueryError> {
    let period = month
        .bounds(&config.daemon.timezone)
        .map_err(|e| QueryError::BadRequest(e.to_string()))?;
    let measured = Interval::new(period.start, now.min(period.end).max(period.start));
    let ambiguous = ambiguous_spans(&source.clock_steps_touching(period.start, period.end)?);
    let mut found = Vec::new();
    for spec in config.probes.iter().filter(|p| p.enabled) {
        // Outages are the same whichever windows count: maintenance is not applied to them.
        let rule = MaintenanceRule::AsConfigured;
        let reading = located(config, spec);
        let probe = load_probe(
            config,
            source,
            spec,
            period,
            now,
            &ambiguous,
            rule,
            reading.clone(),
        )?;
        // Time after the last evidence the timeline has is unknown: an outage reaching it
        // has no end the timeline knows of.
        let evidence_end = probe
            .timeline
            .segments()
            .filter(|s| s.state != State::Unknown)
            .map(|s| s.end)
            .max();
        for outage in outages(&probe.timeline) {
            if outage.intersect(&measured).is_none() {
                continue;
            }
            let first = probe
                .evidence
                .runs
                .iter()
                .find(|r| r.first >= outage.start && r.outcome == Outcome::Down);
            let end = if evidence_end.is_some_and(|end| outage.end >= end) {
                match &reading {
                    None => outage_end(
                        source,
                        spec,
                        &probe.evidence.runs,
                        outage.start,
                        period,
                        now,
                    )?,
                    Some(located) => quorum_outage_end(source, spec, located, outage.start, now)?,
                }
            } else {
                Some(outage.end)
            };
            let until = end.unwrap_or(now).max(outage.start);
            found.push(Incident {
                probe: spec.name.to_string(),
                start: outage.start,
                end,
                ongoing: end.is_none(),
                // Milliseconds, like the timeline's figures.
                duration_seconds: until.duration_since(outage.start).as_millis().max(0) as f64
                    / 1e3,
                error_class: first.and_then(|r| r.error_class),
                detail: first.map(|r| r.detail.clone()).unwrap_or_default(),
            });
        }
    }
    found.sort_by_key(|i| i.start);
    Ok(found)
}

/// Follows an outage's failures past the month's timeline: `Some(end)` once a result ends it
/// (see [`OutageEnd`]), `None` while no result came after its failures up to `now`. Reads the
/// evidence already loaded, then, for a past month whose outage outlasted the margin read
/// around it, the ledger a day at a time.
fn outage_end<S: MonthSource + ?Sized>(
    source: &S,
    spec: &ProbeSpec,
    runs: &[Run],
    start: Timestamp,
    period: Interval,
    now: Timestamp,
) -> Result<Option<Timestamp>, QueryError> {
    let mut follow = OutageEnd::new(spec.stale_after);
    for run in runs.iter().filter(|r| r.last >= start) {
        if let Some(end) = follow.result(run.first, run.outcome) {
            return Ok(Some(end));
        }
        if run.outcome == Outcome::Down {
            // Inside a run no gap is longer than `stale_after` (runs split there).
            follow.last_failure = Some(run.last);
        }
    }
    // The evidence was read up to the month's end plus the margin, or up to `now`.
    let mut from = period
        .end
        .checked_add(margin(spec))
        .unwrap_or(period.end)
        .min(now);
    const DAY: SignedDuration = SignedDuration::from_hours(24);
    while from < now {
        let to = from.checked_add(DAY).unwrap_or(now).min(now);
        for record in source.results(&spec.name, from, to)? {
            if let Some(end) = follow.result(record.at, record.outcome) {
                return Ok(Some(end));
            }
        }
        from = to;
    }
    Ok(None)
}

/// Follows an outage of a probe read over locations past the month's timeline, from the
/// locations' results a day at a time from its start: it ends where the quorum is up (or
/// degraded, or in maintenance) again, or where it became unknown once something is known
/// after that — as one location's outage ends `stale_after` after its last failure once a
/// later result comes (see [`OutageEnd`]). `None` while nothing after it is known at `now`.
fn quorum_outage_end<S: MonthSource + ?Sized>(
    source: &S,
    spec: &ProbeSpec,
    located: &Located,
    start: Timestamp,
    now: Timestamp,
) -> Result<Option<Timestamp>, QueryError> {
    const DAY: SignedDuration = SignedDuration::from_hours(24);
    let mut from = start;
    // Where the quorum stopped being known, while nothing known came after it.
    let mut unknown_since: Option<Timestamp> = None;
    while from < now {
        let to = from.checked_add(DAY).unwrap_or(now).min(now);
        let quorum = raw_quorum(source, spec, located, from, to)?;
        let mut covered = from;
        for segment in quorum.segments().filter(|s| s.end > from) {
            if segment.start > covered {
                // No location had results here: unknown.
                unknown_since.get_or_insert(covered);
            }
            covered = segment.end;
            match segment.state {
                State::Unknown => {
                    unknown_since.get_or_insert(segment.start.max(from));
                }
                State::Down => {
                    if let Some(end) = unknown_since {
                        return Ok(Some(end));
                    }
                }
                State::Up | State::Degraded | State::Maintenance => {
                    return Ok(Some(unknown_since.unwrap_or(segment.start.max(from))));
                }
            }
        }
        if covered < to {
            unknown_since.get_or_insert(covered);
        }
        from = to;
    }
    Ok(None)
}

/// Where an outage ends, fed the results after its first failure in time order: at the first
/// result that is not a failure, or `stale_after` after its last failure when the next result
/// comes later than that (the time between is unknown, not down: SPEC §3).
struct OutageEnd {
    stale_after: SignedDuration,
    last_failure: Option<Timestamp>,
}

impl OutageEnd {
    fn new(stale_after: Duration) -> OutageEnd {
        OutageEnd {
            stale_after: SignedDuration::try_from(stale_after).unwrap_or(SignedDuration::MAX),
            last_failure: None,
        }
    }

    /// The outage's end if the result at `at` ends it.
    fn result(&mut self, at: Timestamp, outcome: Outcome) -> Option<Timestamp> {
        let held_until = self
            .last_failure
            .map(|last| last.checked_add(self.stale_after).unwrap_or(Timestamp::MAX));
        if let Some(held_until) = held_until
            && at > held_until
        {
            return Some(held_until);
        }
        if outcome == Outcome::Down {
            self.last_failure = Some(at);
            None
        } else if self.last_failure.is_some() {
            Some(at)
        } else {
            // A success before the outage's first failure (ms rounding of its start).
            None
        }
    }
}

/// A duration to the minute, the way people say it: `2h 10m`, `3d 4h 0m`, `0m`.
pub fn minutes_text(seconds: f64) -> String {
    let minutes = (seconds.max(0.0) / 60.0).floor() as u64;
    let (days, hours, minutes) = (minutes / 1_440, minutes / 60 % 24, minutes % 60);
    match (days, hours) {
        (0, 0) => format!("{minutes}m"),
        (0, _) => format!("{hours}h {minutes}m"),
        _ => format!("{days}d {hours}h {minutes}m"),
    }
}

/// `at` as people read it in `zone`, to the minute, with the zone's abbreviation:
/// `2026-11-03 14:05 CET`. For text a client reads (Markdown reports, the status page).
pub fn local_time_text(at: Timestamp, zone: &jiff::tz::TimeZone) -> String {
    at.to_zoned_datetime(zone.clone())
        .strftime("%Y-%m-%d %H:%M %Z")
        .to_string()
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    pub(in crate::query) fn ts(offset: i64) -> Timestamp {
        Timestamp::from_second(1_790_812_800 + offset).unwrap()
    }

    fn timeline(segments: &[(i64, i64, State)]) -> Timeline {
        let span = Interval::new(ts(segments[0].0), ts(segments[segments.len() - 1].1));
        Timeline::from_intervals(
            span,
            State::Unknown,
            segments
                .iter()
                .map(|(a, b, state)| Segment::new(ts(*a), ts(*b), *state)),
        )
    }

    #[test]
    fn all_mode_is_down_while_any_member_is_down() {
        let a = timeline(&[
            (0, 100, State::Up),
            (100, 200, State::Down),
            (200, 400, State::Up),
        ]);
        let b = timeline(&[
            (0, 150, State::Up),
            (150, 300, State::Down),
            (300, 400, State::Up),
        ]);
        let all = combine(&[&a, &b], true, Interval::new(ts(0), ts(400)));
        assert_eq!(
            all.time_in(State::Down),
            Seconds::from_secs(200),
            "100..300"
        );
        let any = combine(&[&a, &b], false, Interval::new(ts(0), ts(400)));
        assert_eq!(any.time_in(State::Down), Seconds::from_secs(50), "150..200");
    }

    #[test]
    fn a_member_without_evidence_makes_all_mode_unknown_but_not_any_mode() {
        let a = timeline(&[(0, 100, State::Up), (100, 200, State::Unknown)]);
        let b = timeline(&[(0, 200, State::Up)]);
        let span = Interval::new(ts(0), ts(200));
        assert_eq!(
            combine(&[&a, &b], true, span).time_in(State::Unknown),
            Seconds::from_secs(100)
        );
        assert_eq!(
            combine(&[&a, &b], false, span).time_in(State::Up),
            Seconds::from_secs(200)
        );
    }

    #[test]
    fn degraded_counts_below_down_and_above_up() {
        assert_eq!(
            combined_state(&[State::Up, State::Degraded], true),
            State::Degraded
        );
        assert_eq!(
            combined_state(&[State::Down, State::Degraded], true),
            State::Down
        );
        assert_eq!(
            combined_state(&[State::Down, State::Degraded], false),
            State::Degraded
        );
        assert_eq!(
            combined_state(&[State::Down, State::Down], false),
            State::Down
        );
    }

    /// Results of probe `web` for ten days of October 2026 at 30 s: outages that cross hour
    /// and day edges, transients, unknowns, gaps longer than `stale_after` inside a run of
    /// equal outcomes (a restart), latencies that vary.
    fn ten_days() -> Vec<ResultRecord> {
        let web = ProbeName::new("web").unwrap();
        let mut records = Vec::new();
        let mut rng = crate::testing::Rng::new(11);
        let mut t = 0i64;
        while t < 10 * 86_400 {
            let roll = rng.below(1_000);
            let outcome = match (t / 1_800) % 7 {
                3 if roll < 400 => Outcome::Down,
                5 if roll < 30 => Outcome::Unknown,
                _ if roll < 5 => Outcome::Down,
                _ if roll < 40 => Outcome::Degraded,
                _ => Outcome::Up,
            };
            let down = outcome == Outcome::Down;
            records.push(ResultRecord {
                probe: web.clone(),
                at: ts(t) + SignedDuration::from_millis(rng.below(900) as i64),
                latency: Duration::from_micros(2_000 + rng.below(40_000)),
                outcome,
                error_class: down.then_some(ErrorClass::Timeout),
                detail: if down {
                    format!("timed out at {t}")
                } else {
                    String::new()
                },
            });
            // Now and then the daemon was away for a while (a gap of up to 20 min).
            t += if rng.below(500) == 0 {
                30 + rng.below(1_200) as i64
            } else {
                30
            };
        }
        records
    }

    /// A configuration with `main` as its main file and probe `web` (TCP every 30 s,
    /// `failure_threshold = 3`), and a ledger holding [`ten_days`] of its results.
    pub(in crate::query) fn web_with_ten_days(
        main: &str,
    ) -> (tempfile::TempDir, Config, Ledger, Vec<ResultRecord>) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("probes.d")).unwrap();
        let main_path = dir.path().join("upledger.toml");
        std::fs::write(&main_path, main).unwrap();
        std::fs::write(
            dir.path().join("probes.d/web.toml"),
            "[[probe]]\nname = \"web\"\nkind = \"tcp\"\naddress = \"127.0.0.1:9\"\n\
             interval = \"30s\"\ntimeout = \"5s\"\nfailure_threshold = 3\n",
        )
        .unwrap();
        let config = crate::config::load(&main_path).unwrap();
        let ledger = Ledger::open(&dir.path().join("ledger")).unwrap();
        let records = ten_days();
        ledger.append(&records).unwrap();
        (dir, config, ledger, records)
    }

    #[test]
    fn an_sla_closes_after_its_enabled_members_longest_margin_and_its_own_reach() {
        let main = "[[sla]]\nname = \"seconds\"\nprobes = [\"a\", \"b\", \"off\"]\ntarget = \"99.9%\"\n\n\
                    [[sla]]\nname = \"minutes\"\nprobes = [\"b\"]\ntarget = \"99.9%\"\n\
                    downtime_unit = \"minute\"\nmin_downtime_period = \"5m\"\n";
        let probe = |name: &str, extra: &str| {
            format!(
                "[[probe]]\nname = \"{name}\"\nkind = \"tcp\"\naddress = \"127.0.0.1:9\"\n{extra}"
            )
        };
        let probes = probe(
            "a",
            "interval = \"30s\"\nfailure_threshold = 3\nstale_after = \"60s\"\n",
        ) + &probe(
            "b",
            "interval = \"10s\"\ntimeout = \"5s\"\nfailure_threshold = 2\nstale_after = \"20s\"\n",
        ) + &probe("off", "enabled = false\ninterval = \"1h\"\n");
        let (_dir, config, _ledger) = ledger_with(main, &probes, &[]);
        let month: Month = "2026-10".parse().unwrap();
        let period = month.bounds(&config.daemon.timezone).unwrap();
        let closes = |name: &str| {
            let sla = config.slas.iter().find(|s| s.name == name).unwrap();
            sla_closes_at(&config, sla, period).unwrap()
        };
        // a: 3 × 30 s + 60 s; the disabled probe's hour does not count.
        assert_eq!(
            closes("seconds"),
            period.end + SignedDuration::from_secs(150)
        );
        // b: 2 × 10 s + 20 s, after a run of 5 down minutes' reach of 6 minutes.
        assert_eq!(
            closes("minutes"),
            period.end + SignedDuration::from_secs(6 * 60 + 40)
        );
    }

    /// A configuration (`main` plus `probes`) in a temporary folder and a ledger holding
    /// `records`.
    fn ledger_with(
        main: &str,
        probes: &str,
        records: &[ResultRecord],
    ) -> (tempfile::TempDir, Config, Ledger) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("probes.d")).unwrap();
        std::fs::write(dir.path().join("upledger.toml"), main).unwrap();
        std::fs::write(dir.path().join("probes.d/p.toml"), probes).unwrap();
        let config = crate::config::load(&dir.path().join("upledger.toml")).unwrap();
        let ledger = Ledger::open(&dir.path().join("ledger")).unwrap();
        ledger.append(records).unwrap();
        (dir, config, ledger)
    }

    /// Results of `probe` every 30 s over `[from, to)` (offsets from 1 Oct 2026 00:00Z),
    /// down inside `down`.
    fn every_30s(probe: &str, from: i64, to: i64, down: (i64, i64)) -> Vec<ResultRecord> {
        let name = ProbeName::new(probe).unwrap();
        (from..to)
            .step_by(30)
            .map(|t| {
                let failed = (down.0..down.1).contains(&t);
                ResultRecord {
                    probe: name.clone(),
                    at: ts(t),
                    latency: Duration::from_millis(3),
                    outcome: if failed { Outcome::Down } else { Outcome::Up },
                    error_class: failed.then_some(ErrorClass::Connect),
                    detail: if failed {
                        "connection refused".to_owned()
                    } else {
                        String::new()
                    },
                }
            })
            .collect()
    }

    const MAIN: &str = "[daemon]\nledger = \"ledger\"\n";
    /// `web`: every 30 s, confirmed after 3 failures, `stale_after` 60 s.
    const WEB: &str = "[[probe]]\nname = \"web\"\nkind = \"tcp\"\naddress = \"127.0.0.1:9\"\n\
                       interval = \"30s\"\ntimeout = \"5s\"\nfailure_threshold = 3\n";
    const HOUR_S: i64 = 3_600;

    fn october() -> Month {
        "2026-10".parse().unwrap()
    }

    #[test]
    fn an_outage_with_no_result_after_it_is_ongoing_not_ended_now() {
        // Up for two hours, then down until the last result, 10 s before `now`.
        let records = every_30s("web", 0, 3 * HOUR_S, (2 * HOUR_S, 3 * HOUR_S));
        let (_dir, config, ledger) = ledger_with(MAIN, WEB, &records);
        let now = ts(3 * HOUR_S - 20) + SignedDuration::from_nanos(123_456_789);
        let found = incidents(&config, &ledger, october(), now).unwrap();
        assert_eq!(found.len(), 1, "{found:?}");
        let outage = &found[0];
        assert_eq!(outage.start, ts(2 * HOUR_S));
        assert_eq!(outage.end, None, "not resolved: {outage:?}");
        assert!(outage.ongoing);
        assert_eq!(outage.duration_seconds, 3_580.123, "so far");
        let json = serde_json::to_value(outage).unwrap();
        assert_eq!(json["end"], serde_json::Value::Null);
        assert_eq!(json["ongoing"], true);

        // Results that stopped (the daemon was stopped) end nothing either.
        let later = ts(5 * HOUR_S);
        let found = incidents(&config, &ledger, october(), later).unwrap();
        assert_eq!((found[0].end, found[0].ongoing), (None, true));
        assert_eq!(found[0].duration_seconds, 3.0 * 3_600.0);

        // The first successful check ends it.
        ledger
            .append(&every_30s("web", 3 * HOUR_S, 3 * HOUR_S + 30, (0, 0)))
            .unwrap();
        let found = incidents(&config, &ledger, october(), later).unwrap();
        assert_eq!(found[0].end, Some(ts(3 * HOUR_S)));
        assert!(!found[0].ongoing);
        assert_eq!(found[0].duration_seconds, 3_600.0);
    }

    #[test]
    fn an_outage_across_the_month_end_keeps_its_own_end() {
        let oct_31_2200 = 30 * 86_400 + 22 * HOUR_S;
        let nov_1 = 31 * 86_400;
        // Down 23:50–00:10 across the month end, then from 01:00 on 1 November for two days.
        let mut records = every_30s(
            "web",
            oct_31_2200,
            nov_1 + HOUR_S,
            (nov_1 - 600, nov_1 + 600),
        );
        records.extend(every_30s(
            "web",
            nov_1 + HOUR_S,
            nov_1 + 3 * 86_400,
            (nov_1 + HOUR_S, nov_1 + 2 * 86_400 + HOUR_S),
        ));
        let (_dir, config, ledger) = ledger_with(MAIN, WEB, &records);
        let now = ts(nov_1 + 10 * 86_400);
        let found = incidents(&config, &ledger, october(), now).unwrap();
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].start, ts(nov_1 - 600));
        assert_eq!(found[0].end, Some(ts(nov_1 + 600)), "not the month's end");
        assert_eq!(found[0].duration_seconds, 1_200.0);

        // A month in progress sees only results up to `now`: ongoing as of then…
        let found = incidents(&config, &ledger, october(), ts(nov_1 - 60)).unwrap();
        assert_eq!((found[0].end, found[0].ongoing), (None, true));
        // …and November's own incidents: the same one, then the long one read past the
        // margin, which ended on 3 November.
        let november: Month = "2026-11".parse().unwrap();
        let found = incidents(&config, &ledger, november, now).unwrap();
        assert_eq!(found.len(), 2, "{found:?}");
        assert_eq!(found[0].end, Some(ts(nov_1 + 600)));
        assert_eq!(found[1].start, ts(nov_1 + HOUR_S));
        assert_eq!(found[1].end, Some(ts(nov_1 + 2 * 86_400 + HOUR_S)));
    }

    /// SPEC §10 end to end: a run of down minutes across the month end is judged whole
    /// (each month counts its own minutes of it), read from the ledger past the month.
    #[test]
    fn a_run_of_down_minutes_across_the_month_end_counts_in_both_months() {
        let nov_1 = 31 * 86_400;
        // Down 23:57:00–00:04:00 (failures from 23:57, back-dated; up again at 00:04):
        // 3 whole minutes in October, 4 in November, one run of 7.
        let records = every_30s(
            "web",
            nov_1 - 2 * HOUR_S,
            nov_1 + 2 * HOUR_S,
            (nov_1 - 180, nov_1 + 240),
        );
        let sla = |name: &str, period: &str| {
            format!(
                "\n[[sla]]\nname = \"{name}\"\nprobes = [\"web\"]\ntarget = \"99.9%\"\n\
                 downtime_unit = \"minute\"\nmin_downtime_period = \"{period}\"\n"
            )
        };
        let main = format!(
            "{MAIN}{}{}{}",
            sla("five", "5m"),
            sla("seven", "7m"),
            sla("eight", "8m")
        );
        let (_dir, config, ledger) = ledger_with(&main, WEB, &records);
        let now = ts(nov_1 + 3 * HOUR_S);
        let downtime = |month: Month| -> Vec<(String, f64, Option<u32>)> {
            month_document(&config, &ledger, month, now, &Selection::default())
                .unwrap()
                .slas
                .into_iter()
                .map(|s| (s.name, s.downtime_seconds, s.min_downtime_minutes))
                .collect()
        };
        let runs = |figures: [f64; 3]| {
            vec![
                ("five".to_owned(), figures[0], Some(5)),
                ("seven".to_owned(), figures[1], Some(7)),
                ("eight".to_owned(), figures[2], Some(8)),
            ]
        };
        assert_eq!(downtime(october()), runs([180.0, 180.0, 0.0]));
        assert_eq!(
            downtime("2026-11".parse().unwrap()),
            runs([240.0, 240.0, 0.0])
        );
        // The probe's own month still counts every down second of October.
        let document =
            month_document(&config, &ledger, october(), now, &Selection::default()).unwrap();
        assert_eq!(document.probes[0].downtime_seconds, 180.0);
        assert_eq!(document.slas[0].downtime_unit.as_deref(), Some("minute"));
    }

    #[test]
    fn disabled_probes_are_in_no_report_and_in_no_sla() {
        let main = "[daemon]\nledger = \"ledger\"\n\n\
                    [[sla]]\nname = \"acme\"\nprobes = [\"*\"]\ntarget = \"99%\"\n";
        let probes = format!(
            "{WEB}\n[[probe]]\nname = \"retired\"\nkind = \"tcp\"\naddress = \"127.0.0.1:9\"\n\
             interval = \"30s\"\ntimeout = \"5s\"\nenabled = false\n"
        );
        // Both have a day of results (the disabled one from before it was disabled), down
        // at different times: web for 10 minutes, retired for an hour.
        let mut records = every_30s("web", 0, 86_400, (HOUR_S, HOUR_S + 600));
        records.extend(every_30s("retired", 0, 86_400, (5 * HOUR_S, 6 * HOUR_S)));
        let (_dir, config, ledger) = ledger_with(main, &probes, &records);
        let now = ts(20 * 86_400);
        let doc = month_document(&config, &ledger, october(), now, &Selection::default()).unwrap();
        let names: Vec<&str> = doc.probes.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["web"]);
        let acme = &doc.slas[0];
        assert_eq!(acme.probes, ["web"]);
        assert_eq!(
            acme.downtime_seconds, 600.0,
            "the disabled probe's hour is not counted"
        );
        assert_eq!(acme.availability, doc.probes[0].availability);

        let found = incidents(&config, &ledger, october(), now).unwrap();
        let names: Vec<&str> = found.iter().map(|i| i.probe.as_str()).collect();
        assert_eq!(names, ["web"]);

        let only = Selection {
            probe: Some("retired".to_owned()),
            sla: None,
        };
        let refused = month_document(&config, &ledger, october(), now, &only).unwrap_err();
        assert!(refused.to_string().contains("disabled"), "{refused}");
    }

    #[test]
    fn durations_read_to_the_minute_and_times_in_the_zone() {
        assert_eq!(minutes_text(0.0), "0m");
        assert_eq!(minutes_text(59.9), "0m");
        assert_eq!(minutes_text(7_800.0 + 59.0), "2h 10m");
        assert_eq!(minutes_text(86_400.0 * 3.0 + 4.0 * 3_600.0), "3d 4h 0m");
        let berlin = jiff::tz::TimeZone::get("Europe/Berlin").unwrap();
        let winter: Timestamp = "2026-11-03T13:05:59.123456789Z".parse().unwrap();
        assert_eq!(local_time_text(winter, &berlin), "2026-11-03 14:05 CET");
        let summer: Timestamp = "2026-07-03T13:05:00Z".parse().unwrap();
        assert_eq!(local_time_text(summer, &berlin), "2026-07-03 15:05 CEST");
        assert_eq!(
            local_time_text(winter, &jiff::tz::TimeZone::UTC),
            "2026-11-03 13:05 UTC"
        );
    }

    #[test]
    fn reports_from_digests_equal_reports_from_raw_results() {
        let (_dir, config, ledger, _) = web_with_ten_days(
            "[daemon]\nledger = \"ledger\"\ntimezone = \"Europe/Berlin\"\n\n\
             [[sla]]\nname = \"acme\"\nprobes = [\"web\"]\ntarget = \"99.5%\"\n",
        );
        let month: Month = "2026-10".parse().unwrap();
        let everything = Selection::default();
        let document = |now: Timestamp| {
            let doc = month_document(&config, &ledger, month, now, &everything).unwrap();
            let incidents = incidents(&config, &ledger, month, now).unwrap();
            (
                serde_json::to_value(doc).unwrap(),
                serde_json::to_value(incidents).unwrap(),
            )
        };
        // Mid-hour, mid-outage and past the last result.
        let moments = [
            ts(3 * 86_400 + 5_432),
            ts(6 * 86_400 + 3 * 1_800 + 700),
            ts(12 * 86_400),
        ];
        let spec = config.probe("web").unwrap();
        let period = month.bounds(&config.daemon.timezone).unwrap();
        // Every latency counted once: the histograms themselves, not only their percentiles.
        let latencies = |now: Timestamp| {
            let evidence = load_evidence(&ledger, spec, period, now).unwrap();
            (evidence.checks, evidence.failed_checks, evidence.latency)
        };
        let from_raw: Vec<_> = moments.iter().map(|&now| document(now)).collect();
        let raw_latencies: Vec<_> = moments.iter().map(|&now| latencies(now)).collect();
        ledger.digest_until(ts(12 * 86_400), &|| true).unwrap();
        assert!(
            !ledger
                .digests(&ProbeName::new("web").unwrap(), ts(0), ts(86_400))
                .unwrap()
                .is_empty()
        );
        for (now, raw) in moments.iter().zip(from_raw) {
            assert_eq!(document(*now), raw, "as of {now}");
        }
        for (now, raw) in moments.iter().zip(raw_latencies) {
            assert_eq!(latencies(*now), raw, "as of {now}");
        }
    }

    /// A ledger's material as a [`super::super::source::RecordedSource`]: every result of
    /// every configured probe, every exclusion, sighting, clock step, damaged range and
    /// import — what an evidence bundle carries.
    fn recorded(config: &Config, ledger: &Ledger) -> super::super::source::RecordedSource {
        let mut results = Vec::new();
        for spec in &config.probes {
            results.extend(
                ledger
                    .results(&spec.name, Timestamp::MIN, Timestamp::MAX)
                    .unwrap(),
            );
        }
        let damage = ledger
            .damage()
            .into_iter()
            .filter_map(|d| {
                Some(DamageReport {
                    probe: d.probe?.to_string(),
                    from: d.from?,
                    to: d.to?,
                    what: d.what,
                })
            })
            .collect();
        super::super::source::RecordedSource::new(results)
            .with_exclusions(
                ledger
                    .exclusion_entries(Timestamp::MIN, Timestamp::MAX)
                    .unwrap(),
            )
            .with_maintenance_seen(ledger.maintenance_sightings().unwrap())
            .with_clock_steps(ledger.clock_steps().unwrap())
            .with_damage(damage)
            .with_imports(ledger.import_records().unwrap())
    }

    /// Appends `records` to the ledger at `dir`, closing it again.
    fn append_to(dir: &std::path::Path, records: &[ResultRecord]) {
        let ledger = Ledger::open(dir).unwrap();
        ledger.append(records).unwrap();
    }

    /// Two probes and two SLAs over the first days of October 2026, with every kind of
    /// control record a month can have: an exclusion, a revoked exclusion, an SLA's own
    /// exclusion, a window seen early and one seen late, a clock step, a damaged range of
    /// `web` (a ledger cut short after a crash) and an import of `api` results.
    fn eventful_october() -> (tempfile::TempDir, Config, Ledger) {
        let day = 86_400;
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("probes.d")).unwrap();
        let main = format!(
            "[daemon]\nledger = \"ledger\"\n\n\
             [[sla]]\nname = \"acme\"\nprobes = [\"web\", \"api\"]\ntarget = \"99.5%\"\n\
             maintenance_notice = \"12h\"\n\
             credits = [ {{ below = \"99.5%\", credit = \"10%\" }} ]\nmonthly_fee = 100.0\n\n\
             [[sla]]\nname = \"either\"\nprobes = [\"*\"]\nmode = \"any\"\ntarget = \"99%\"\n\n\
             [[maintenance]]\nprobes = [\"*\"]\nstart = \"{}\"\nduration = \"1h\"\n\
             reason = \"announced early\"\n\n\
             [[maintenance]]\nprobes = [\"api\"]\nstart = \"{}\"\nduration = \"2h\"\n\
             reason = \"announced late\"\n",
            ts(day + 10 * HOUR_S),
            ts(2 * day + 4 * HOUR_S),
        );
        std::fs::write(dir.path().join("upledger.toml"), main).unwrap();
        let api = WEB.replace("\"web\"", "\"api\"");
        std::fs::write(dir.path().join("probes.d/p.toml"), format!("{WEB}\n{api}")).unwrap();
        let config = crate::config::load(&dir.path().join("upledger.toml")).unwrap();

        // `web`'s last two days are lost: its ledger is put back to before they were
        // written, under the seal that knew them.
        let path = dir.path().join("ledger");
        let mut early = every_30s("web", 0, 3 * day, (2 * HOUR_S, 2 * HOUR_S + 600));
        early.extend(every_30s("api", 0, 4 * day, (5 * HOUR_S, 5 * HOUR_S + 900)));
        append_to(&path, &early);
        let kept = dir.path().join("kept");
        std::fs::create_dir_all(&kept).unwrap();
        for entry in std::fs::read_dir(&path).unwrap() {
            let entry = entry.unwrap();
            copy_tree(&entry.path(), &kept.join(entry.file_name()));
        }
        append_to(&path, &every_30s("web", 3 * day, 5 * day, (0, 0)));
        std::fs::copy(path.join("seal"), kept.join("seal")).unwrap();
        std::fs::remove_dir_all(&path).unwrap();
        std::fs::rename(&kept, &path).unwrap();
        let ledger = Ledger::open(&path).unwrap();
        assert!(
            ledger.damage().iter().any(|d| d.probe.is_some()),
            "{:?}",
            ledger.damage()
        );

        ledger
            .append(&every_30s(
                "web",
                5 * day,
                8 * day,
                (6 * day, 6 * day + 300),
            ))
            .unwrap();
        let imported = every_30s("api", 4 * day, 8 * day, (7 * day, 7 * day + 3_000));
        let record = crate::ledger::ImportRecord::new(ts(9 * day), None, &imported, 0);
        ledger
            .import_all(&crate::ledger::ImportCommit {
                results: &imported,
                record: Some(&record),
                ..Default::default()
            })
            .unwrap();

        let web = ProbeName::new("web").unwrap();
        let api = ProbeName::new("api").unwrap();
        let exclusion = |probe: Option<&ProbeName>, sla: Option<&str>, from: i64, to: i64| {
            let mut record = crate::ledger::ExclusionRecord {
                id: String::new(),
                probe: probe.cloned(),
                sla: sla.map(str::to_owned),
                from: ts(from),
                to: ts(to),
                reason: format!("exclusion {from}"),
                recorded_at: ts(to + 60),
                recorded_by: None,
            };
            record.id = record.content_id();
            ledger.add_exclusion(&record).unwrap();
            record
        };
        exclusion(Some(&web), None, 2 * HOUR_S, 2 * HOUR_S + 300);
        let revoked = exclusion(Some(&api), None, 5 * HOUR_S, 5 * HOUR_S + 900);
        ledger
            .add_revocation(&crate::ledger::RevocationRecord {
                revokes: revoked.id.clone(),
                reason: "not ours to excuse".to_owned(),
                recorded_at: ts(day),
                recorded_by: None,
            })
            .unwrap();
        exclusion(None, Some("acme"), 7 * day, 7 * day + 600);

        let early = config.maintenance[0].identity();
        let late = config.maintenance[1].identity();
        ledger.note_maintenance_seen(&early, ts(0)).unwrap();
        ledger
            .note_maintenance_seen(&late, ts(2 * day + 5 * HOUR_S))
            .unwrap();
        // Set back by ten minutes on day 6, noticed a second later.
        ledger
            .record_clock_step(crate::ledger::ClockStep::between(
                ts(6 * day + 12 * HOUR_S),
                ts(6 * day + 12 * HOUR_S - 599),
                SignedDuration::from_secs(1),
            ))
            .unwrap();
        (dir, config, ledger)
    }

    fn copy_tree(from: &std::path::Path, to: &std::path::Path) {
        if from.is_dir() {
            std::fs::create_dir_all(to).unwrap();
            for entry in std::fs::read_dir(from).unwrap() {
                let entry = entry.unwrap();
                copy_tree(&entry.path(), &to.join(entry.file_name()));
            }
        } else {
            std::fs::copy(from, to).unwrap();
        }
    }

    #[test]
    fn a_recorded_source_gives_the_ledgers_document_field_for_field() {
        let (_dir, config, ledger) = eventful_october();
        let source = recorded(&config, &ledger);
        let day = 86_400;
        let selections = [
            Selection::default(),
            Selection {
                probe: Some("api".to_owned()),
                sla: None,
            },
            Selection {
                probe: None,
                sla: Some("acme".to_owned()),
            },
        ];
        // Mid-month, mid-outage, and long after the month closed (twice: the second time the
        // ledger answers from the figures it stored).
        let moments = [
            ts(6 * day + 5_432),
            ts(7 * day + 1_000),
            ts(60 * day),
            ts(60 * day),
        ];
        let document = |source: &dyn MonthSource, now, selection, rule| {
            let doc =
                month_document_from(&config, source, october(), now, selection, rule).unwrap();
            serde_json::to_value(doc).unwrap()
        };
        let mut checked = 0;
        for rule in [MaintenanceRule::AsConfigured, MaintenanceRule::Proven] {
            for now in moments {
                for selection in &selections {
                    let from_ledger = document(&ledger, now, selection, rule);
                    let from_memory = document(&source, now, selection, rule);
                    assert_eq!(
                        from_ledger, from_memory,
                        "{rule:?} as of {now}, {selection:?}"
                    );
                    checked += 1;
                }
            }
            let from_ledger = incidents_from(&config, &ledger, october(), ts(60 * day)).unwrap();
            let from_memory = incidents_from(&config, &source, october(), ts(60 * day)).unwrap();
            assert_eq!(from_ledger, from_memory);
        }
        assert_eq!(checked, 24);

        // What the month holds is in the document, so the comparison above compared it.
        let doc =
            month_document(&config, &ledger, october(), ts(60 * day), &selections[0]).unwrap();
        assert_eq!(doc.damage.len(), 1, "{:?}", doc.damage);
        assert_eq!(doc.damage[0].probe, "web");
        assert_eq!(doc.clock_steps.len(), 1);
        assert_eq!(doc.imports.len(), 1);
        let api = &doc.probes[1];
        assert_eq!(api.revoked_exclusions.len(), 1);
        assert_eq!(api.maintenance.len(), 2);
        assert!(api.maintenance[1].seen_late);
        assert_eq!(doc.probes[0].exclusions.len(), 1);
        assert_eq!(doc.slas[0].exclusions.len(), 1);

        // And the same after the ledger digested its hours (its shortcut for the results).
        let before = document(
            &source,
            ts(20 * day),
            &selections[0],
            MaintenanceRule::Proven,
        );
        ledger.digest_until(ts(20 * day), &|| true).unwrap();
        let digested = document(
            &ledger,
            ts(20 * day),
            &selections[0],
            MaintenanceRule::Proven,
        );
        assert_eq!(digested, before);
    }

    /// `web` with windows seen a day early, an hour early, late and never, and two SLAs over
    /// it: one with 12 h notice, one without.
    fn four_windows() -> (tempfile::TempDir, Config, Ledger) {
        let day = 86_400;
        let windows: String = [
            (1, "a day early"),
            (2, "an hour early"),
            (3, "late"),
            (4, "never"),
        ]
        .iter()
        .map(|(d, reason)| {
            format!(
                "[[maintenance]]\nprobes = [\"web\"]\nstart = \"{}\"\nduration = \"1h\"\n\
                     reason = \"{reason}\"\n\n",
                ts(d * day)
            )
        })
        .collect();
        let main = format!(
            "{MAIN}\n[[sla]]\nname = \"noticed\"\nprobes = [\"web\"]\ntarget = \"99%\"\n\
             maintenance_notice = \"12h\"\n\n\
             [[sla]]\nname = \"plain\"\nprobes = [\"web\"]\ntarget = \"99%\"\n\n{windows}"
        );
        let records = every_30s("web", 0, 6 * day, (0, 0));
        let (dir, config, ledger) = ledger_with(&main, WEB, &records);
        let seen = [(1, -day), (2, -HOUR_S), (3, 60)];
        for (i, (d, offset)) in seen.iter().enumerate() {
            ledger
                .note_maintenance_seen(&config.maintenance[i].identity(), ts(d * day + offset))
                .unwrap();
        }
        (dir, config, ledger)
    }

    #[test]
    fn proven_maintenance_counts_only_windows_seen_by_their_start() {
        let (_dir, config, ledger) = four_windows();
        let now = ts(40 * 86_400);
        let everything = Selection::default();
        let reasons = |windows: &[WindowReport]| -> Vec<String> {
            windows.iter().map(|w| w.reason.clone()).collect()
        };
        let configured = month_document(&config, &ledger, october(), now, &everything).unwrap();
        let proven = month_document_from(
            &config,
            &ledger,
            october(),
            now,
            &everything,
            MaintenanceRule::Proven,
        )
        .unwrap();

        // As configured, the probe and the SLA without notice take every window; the SLA
        // with notice only the one seen a day early.
        let (probe, noticed, plain) = (
            &configured.probes[0],
            &configured.slas[0],
            &configured.slas[1],
        );
        assert_eq!(probe.maintenance_seconds, 4.0 * 3_600.0);
        assert_eq!(
            reasons(&probe.maintenance),
            ["a day early", "an hour early", "late", "never"]
        );
        assert_eq!(reasons(&noticed.maintenance), ["a day early"]);
        assert_eq!(reasons(&plain.maintenance).len(), 4);

        // Proven, a window seen after its start (or never) counts nowhere; notice still holds.
        let (probe, noticed, plain) = (&proven.probes[0], &proven.slas[0], &proven.slas[1]);
        assert_eq!(probe.maintenance_seconds, 2.0 * 3_600.0);
        assert_eq!(
            reasons(&probe.maintenance),
            ["a day early", "an hour early"]
        );
        assert_eq!(reasons(&noticed.maintenance), ["a day early"]);
        assert_eq!(
            reasons(&plain.maintenance),
            ["a day early", "an hour early"]
        );
        assert_eq!(
            plain.eligible_seconds,
            configured.slas[1].eligible_seconds + 2.0 * 3_600.0
        );
        assert_eq!(
            noticed.eligible_seconds,
            configured.slas[0].eligible_seconds
        );

        // The two are stored apart once the month is closed: neither is read for the other.
        let again = month_document(&config, &ledger, october(), now, &everything).unwrap();
        assert_eq!(again, configured);
    }

    #[test]
    fn a_window_seen_exactly_at_its_start_is_proven() {
        assert_eq!(MaintenanceRule::AsConfigured.notice(None), None);
        let hour = Duration::from_secs(3_600);
        assert_eq!(MaintenanceRule::AsConfigured.notice(Some(hour)), Some(hour));
        assert_eq!(MaintenanceRule::Proven.notice(None), Some(Duration::ZERO));
        assert_eq!(MaintenanceRule::Proven.notice(Some(hour)), Some(hour));
        let window = MaintenanceWindow {
            interval: Interval::new(ts(3_600), ts(7_200)),
            reason: String::new(),
            identity: "w".to_owned(),
        };
        let at = |seen: i64| {
            honoured_windows(
                std::slice::from_ref(&window),
                MaintenanceRule::Proven.notice(None),
                |_| Some(ts(seen)),
            )
            .len()
        };
        assert_eq!((at(3_599), at(3_600), at(3_601)), (1, 1, 0));
    }

    #[test]
    fn a_normalised_configuration_computes_the_same_month() {
        let dir = tempfile::tempdir().unwrap();
        let config = crate::config::rich_config(dir.path());
        let json = crate::config::NormalisedConfig::from_config(&config)
            .unwrap()
            .to_json();
        let rebuilt = crate::config::NormalisedConfig::from_json(&json)
            .unwrap()
            .into_config()
            .unwrap();
        let day = 86_400;
        let mut records = every_30s("web", 0, 20 * day, (2 * day, 2 * day + 900));
        for record in records.iter_mut().filter(|r| r.at.as_second() % 600 == 0) {
            record.latency = Duration::from_millis(900);
            record.outcome = Outcome::Degraded;
        }
        records.extend(
            every_30s("db-port", 0, 20 * day, (9 * day, 9 * day + 7_200))
                .into_iter()
                .step_by(2),
        );
        let ledger = Ledger::open(&dir.path().join("ledger")).unwrap();
        ledger.append(&records).unwrap();
        for window in &config.maintenance {
            ledger
                .note_maintenance_seen(&window.identity(), ts(0))
                .unwrap();
        }
        let source = recorded(&config, &ledger);
        let selections = [
            Selection::default(),
            Selection {
                probe: None,
                sla: Some("acme".to_owned()),
            },
        ];
        for rule in [MaintenanceRule::AsConfigured, MaintenanceRule::Proven] {
            for selection in &selections {
                // In progress from the ledger (nothing stored), closed from memory.
                for (source, now) in [
                    (&ledger as &dyn MonthSource, ts(15 * day + 77)),
                    (&source, ts(60 * day)),
                ] {
                    let document = |config: &Config| {
                        let doc =
                            month_document_from(config, source, october(), now, selection, rule)
                                .unwrap();
                        serde_json::to_value(doc).unwrap()
                    };
                    let original = document(&config);
                    assert_eq!(document(&rebuilt), original, "{rule:?} {selection:?} {now}");
                    assert_ne!(original["slas"][0]["maintenance"], serde_json::json!([]));
                }
            }
        }
    }
}
