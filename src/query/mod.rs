//! What the query commands answer — `status`, `history`, `export`, `import` — computed the same
//! way whether the daemon answers over its socket or the CLI opened the ledger itself.
//! May use `model`, `config`, `threshold`, `ledger` and `report`.

pub mod days;
pub mod latency;
pub mod locations;
pub mod monthly;
pub mod source;
pub mod tally;
pub mod trend;

use std::time::Duration;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::{
    config::{Config, ProbeSpec, SlaSpec},
    ledger::{
        ExclusionEntry, ExclusionRecord, ImportCommit, ImportRecord, ImportedCorrection, Ledger,
        LedgerError, MarkerKind, Requester, ResultRecord, RevocationRecord,
    },
    model::{ErrorClass, LocationName, Outcome, ProbeName, State},
    report,
    threshold::{self, Observation, Thresholds, Tracker},
};

/// Why a query could not be answered.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// The ledger failed.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// The probe named is not configured.
    #[error("no probe is named \"{0}\" in the configuration")]
    UnknownProbe(String),
    /// A probe, SLA or exclusion named on the command line does not exist.
    #[error("no {what} is named \"{name}\"{hint}")]
    Unknown {
        /// `probe`, `SLA`, `exclusion`.
        what: &'static str,
        /// The name as given.
        name: String,
        /// ` (did you mean "web"?)`, or nothing.
        hint: String,
    },
    /// A request names something that does not exist or cannot be computed.
    #[error("{0}")]
    BadRequest(String),
    /// An exclusion is malformed.
    #[error("{0}")]
    BadExclusion(String),
    /// An import line is not a valid result.
    #[error("line {line}: {message}")]
    BadLine {
        /// 1-based line number in the input.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// An import's input does not have the lines it was said to have (`--expect-lines`, or
    /// the bytes the CLI announced to the daemon): a pipe or a connection cut at a line
    /// boundary looks like a complete file otherwise.
    #[error(
        "import refused, nothing written: the input has {found} {unit}, {expected} expected \
         ({})",
        if found < expected { "it was cut short" } else { "it is longer than announced" }
    )]
    Incomplete {
        /// What arrived.
        found: u64,
        /// What was announced.
        expected: u64,
        /// `lines` or `bytes`.
        unit: &'static str,
    },
}

/// The oldest result an import accepts: upledger did not exist before, so an older time is a
/// unit or parsing mistake (year 1, seconds read as milliseconds).
pub const IMPORT_EARLIEST: &str = "2000-01-01T00:00:00Z";

/// How far after now an imported result may start: a few minutes of clock difference
/// between the host that recorded it and this one, no more.
pub const IMPORT_FUTURE_SLACK: jiff::SignedDuration = jiff::SignedDuration::from_mins(5);

/// The longest latency an import accepts: no check runs an hour (timeouts are seconds), so a
/// larger figure is a unit mistake (1e308 ms was stored once).
pub const IMPORT_MAX_LATENCY_MS: f64 = 3_600_000.0;

/// One result as a JSON line (SPEC §4): the `export` output and the `import` input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResultLine {
    /// Probe name.
    pub probe: String,
    /// Check start, RFC 3339 UTC.
    pub at: Timestamp,
    /// `up`, `degraded`, `down` or `unknown`.
    pub outcome: Outcome,
    /// Milliseconds, to the microsecond.
    pub latency_ms: f64,
    /// Error class of a failure.
    #[serde(default)]
    pub error_class: Option<ErrorClass>,
    /// Short explanation.
    #[serde(default)]
    pub detail: String,
    /// Where the check ran (SPEC §9), when known: `export` writes it, `import` stores a
    /// located probe's result under that location's series. Left out when unknown, so lines
    /// of a ledger from before locations read as they always did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<LocationName>,
}

/// The line of a stored result exactly as its name is stored (`web@fra1` for a location's
/// series), with no location: what evidence leaves and bundles hash, unchanged by SPEC §9.
/// `export` writes [`ResultLine::exported`] instead.
impl From<&ResultRecord> for ResultLine {
    fn from(record: &ResultRecord) -> Self {
        ResultLine {
            probe: record.probe.to_string(),
            at: record.at,
            outcome: record.outcome,
            latency_ms: micros_to_ms(record.latency),
            error_class: record.error_class,
            detail: record.detail.clone(),
            location: None,
        }
    }
}

/// A correction as a JSON line of `export` and `import`, told apart from a result by its
/// `record` field (results keep the SPEC §4 shape, which has none): an exclusion, the
/// revocation of one, or when the daemon first saw a maintenance window. Without them a ledger
/// restored from an export would give different reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "record", rename_all = "snake_case")]
pub enum CorrectionLine {
    /// `upledger exclude`.
    Exclusion(ExclusionRecord),
    /// `upledger exclude --revoke`.
    Revocation(RevocationRecord),
    /// The first sighting of a maintenance window (its identity in the configuration).
    MaintenanceSeen {
        /// The window's identity.
        window: String,
        /// When the daemon first saw it.
        first_seen: Timestamp,
    },
}

impl ResultLine {
    /// The `export` line of a stored result: a location's series (`web@fra1`) as its probe
    /// and location (`"probe":"web","location":"fra1"`), a plain name with `own` — the
    /// location this daemon recorded as its own when the check ran, if known.
    pub fn exported(record: &ResultRecord, own: Option<LocationName>) -> ResultLine {
        let mut line = ResultLine::from(record);
        match record.probe.split_location() {
            Some((probe, location)) => {
                line.probe = probe.to_string();
                line.location = Some(location);
            }
            None => line.location = own,
        }
        line
    }

    /// The result as the ledger stores it (latency in whole microseconds), for `probe` — the
    /// configured name the line's `probe` matched.
    pub fn into_record(self, probe: ProbeName) -> ResultRecord {
        let micros = (self.latency_ms * 1000.0).round() as u64;
        ResultRecord {
            probe,
            at: self.at,
            latency: Duration::from_micros(micros),
            outcome: self.outcome,
            error_class: self.error_class,
            detail: self.detail,
        }
    }
}

/// Milliseconds with microsecond digits, exact for every stored latency.
fn micros_to_ms(latency: Duration) -> f64 {
    latency.as_micros() as f64 / 1000.0
}

/// The last check of a probe, as status shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LastCheck {
    /// Check start.
    pub at: Timestamp,
    /// What it found.
    pub outcome: Outcome,
    /// Latency.
    pub latency_ms: f64,
    /// Error class of a failure.
    pub error_class: Option<ErrorClass>,
    /// Short explanation.
    pub detail: String,
}

impl From<&ResultRecord> for LastCheck {
    fn from(record: &ResultRecord) -> Self {
        LastCheck {
            at: record.at,
            outcome: record.outcome,
            latency_ms: micros_to_ms(record.latency),
            error_class: record.error_class,
            detail: record.detail.clone(),
        }
    }
}

/// One probe in `status`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProbeStatus {
    /// Probe name.
    pub name: String,
    /// The name clients read (`display_name`), when the probe has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// The status page's heading for it (`group`), when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// `http`, `tcp` or `dns`.
    pub kind: &'static str,
    /// Confirmed state; `unknown` when the last result is older than `stale_after`.
    pub state: State,
    /// When the state began, if known.
    pub since: Option<Timestamp>,
    /// Whether the probe is scheduled.
    pub enabled: bool,
    /// Seconds between checks.
    pub interval_s: f64,
    /// Consecutive failures not yet confirmed as an outage.
    pub pending_failures: u32,
    /// The newest result.
    pub last: Option<LastCheck>,
    /// Checks recorded since the daemon started (0 without a daemon).
    pub checks_since_start: u64,
    /// What `/metrics` counts of those checks; not part of the status document.
    #[serde(skip)]
    pub tally: tally::CheckTally,
    /// For a probe read over locations (SPEC §9): how many must see it down for it to be
    /// down; `state` is then their quorum's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quorum: Option<usize>,
    /// For a probe read over locations: each location's own state, in configured order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub locations: Vec<LocationStatus>,
}

/// One location's own state of a probe read over locations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LocationStatus {
    /// The location.
    pub location: LocationName,
    /// Its confirmed state; `unknown` once its newest result is older than `stale_after`.
    pub state: State,
    /// When that state began, if known.
    pub since: Option<Timestamp>,
}

/// The whole `status` document.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StatusReport {
    /// Whether the answer came from a running daemon.
    pub daemon_running: bool,
    /// When the answer was computed.
    pub at: Timestamp,
    /// Every enabled probe, in configuration order (a disabled one is not monitored, so it
    /// has no status; `validate` counts it).
    pub probes: Vec<ProbeStatus>,
    /// Probes per state.
    pub summary: Summary,
}

/// Probe counts by state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// All probes.
    pub total: usize,
    /// Up.
    pub up: usize,
    /// Degraded.
    pub degraded: usize,
    /// Down.
    pub down: usize,
    /// Unknown (never checked, or stale).
    pub unknown: usize,
}

impl Summary {
    /// Counts the states of `probes`.
    pub fn of(probes: &[ProbeStatus]) -> Self {
        let mut summary = Summary {
            total: probes.len(),
            ..Summary::default()
        };
        for probe in probes {
            match probe.state {
                State::Up => summary.up += 1,
                State::Degraded => summary.degraded += 1,
                State::Down => summary.down += 1,
                State::Unknown | State::Maintenance => summary.unknown += 1,
            }
        }
        summary
    }
}

/// The thresholds of a configured probe.
pub fn thresholds(spec: &ProbeSpec) -> Thresholds {
    Thresholds {
        failure: spec.failure_threshold,
        success: spec.success_threshold,
        stale_after: spec.stale_after,
    }
}

/// How many checks back a resumed tracker first looks: enough for both thresholds to be
/// crossed, which decides most probes (see [`threshold::replay`]).
fn resume_depth(spec: &ProbeSpec) -> u32 {
    (spec.failure_threshold + spec.success_threshold)
        .saturating_mul(2)
        .saturating_add(1)
}

/// `spec`'s tracker as of `now`, rebuilt from the ledger exactly as a tracker fed every result
/// would hold it — state, `since` and the run in progress — so a restart (or a `status` without
/// the daemon) changes no verdict. Reads the newest stretch of the probe's history, as runs
/// (digests where the ledger has them), and looks four times further back each round until
/// the stretch decides the tracker: usually at once; a probe in one state for months reads
/// back to its last transition or gap.
pub fn resume(ledger: &Ledger, spec: &ProbeSpec, now: Timestamp) -> Result<Tracker, QueryError> {
    let thresholds = thresholds(spec);
    let Some(first) = ledger.first_result(&spec.name)? else {
        return Ok(Tracker::new(thresholds));
    };
    let mut reach = spec.interval.saturating_mul(resume_depth(spec));
    loop {
        let from = jiff::SignedDuration::try_from(reach)
            .ok()
            .and_then(|reach| now.checked_sub(reach).ok())
            .unwrap_or(first);
        let complete = from <= first;
        let window = report::Interval::new(from.max(first), now.max(first));
        let evidence = monthly::load_evidence(ledger, spec, window, now)?;
        if let Some(tracker) = threshold::replay(thresholds, &evidence.runs, complete) {
            return Ok(tracker);
        }
        reach = reach.saturating_mul(4);
    }
}

/// The state machine's view of a stored result.
pub fn observation(record: &ResultRecord) -> Observation<'_> {
    Observation {
        at: record.at,
        outcome: record.outcome,
        error_class: record.error_class,
        detail: &record.detail,
    }
}

/// Status of one probe from its tracker and newest result, judged at `now`.
pub fn probe_status(
    spec: &ProbeSpec,
    tracker: Option<&Tracker>,
    last: Option<LastCheck>,
    now: Timestamp,
) -> ProbeStatus {
    let (state, since) = match tracker {
        Some(tracker) if is_fresh(last.as_ref(), spec, now) => (tracker.state(), tracker.since()),
        _ => (State::Unknown, None),
    };
    ProbeStatus {
        name: spec.name.to_string(),
        display_name: spec.display_name.clone(),
        group: spec.group.clone(),
        kind: spec.kind().as_str(),
        state,
        since,
        enabled: spec.enabled,
        interval_s: spec.interval.as_secs_f64(),
        pending_failures: tracker.map_or(0, Tracker::pending_failures),
        last,
        checks_since_start: 0,
        tally: tally::CheckTally::default(),
        quorum: None,
        locations: Vec::new(),
    }
}

/// Updates a status with a fresh result (which is fresh by definition).
pub fn update_status(status: &mut ProbeStatus, tracker: Option<&Tracker>, last: LastCheck) {
    if let Some(tracker) = tracker {
        status.state = tracker.state();
        status.since = tracker.since();
        status.pending_failures = tracker.pending_failures();
    }
    status.last = Some(last);
    status.checks_since_start += 1;
}

/// A status computed earlier, judged again at `now`: `unknown` once its last check is older
/// than `stale_after` (a hung daemon or a probe whose checks stopped arriving).
pub fn restale(mut status: ProbeStatus, spec: &ProbeSpec, now: Timestamp) -> ProbeStatus {
    if !is_fresh(status.last.as_ref(), spec, now) {
        status.state = State::Unknown;
        status.since = None;
    }
    status
}

fn is_fresh(last: Option<&LastCheck>, spec: &ProbeSpec, now: Timestamp) -> bool {
    last.is_some_and(|check| {
        now.duration_since(check.at)
            .try_into()
            .is_ok_and(|age: Duration| age <= spec.stale_after)
    })
}

/// `status` from the ledger alone (no daemon running): every probe's state is replayed from
/// its newest results, and is `unknown` once those are stale.
pub fn status_from_ledger(config: &Config, ledger: &Ledger) -> Result<StatusReport, QueryError> {
    let now = Timestamp::now();
    let mut probes = Vec::with_capacity(config.probes.len());
    for spec in config.probes.iter().filter(|p| p.enabled) {
        if let Some(located) = locations::located(config, spec) {
            probes.push(locations::status_from_ledger(ledger, spec, &located, now)?);
            continue;
        }
        let tracker = resume(ledger, spec, now)?;
        let last = ledger.last_results(&spec.name, 1)?;
        let last = last.last().map(LastCheck::from);
        probes.push(probe_status(spec, Some(&tracker), last, now));
    }
    let summary = Summary::of(&probes);
    Ok(StatusReport {
        daemon_running: false,
        at: now,
        probes,
        summary,
    })
}

/// Why no result covers a stretch of time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GapReason {
    /// The daemon was not running: it started again inside the stretch.
    DaemonNotRunning,
    /// The daemon ran but no result covers the time (a probe created later, a stalled check).
    NoResult,
    /// The daemon ran and checked, but the ledger could not write: the results are lost (a
    /// [`MarkerKind::WritesFailed`] marker covers the stretch).
    WritesFailed,
}

impl std::fmt::Display for GapReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            GapReason::DaemonNotRunning => "daemon not running",
            GapReason::NoResult => "no result",
            GapReason::WritesFailed => "daemon running, ledger could not write",
        })
    }
}

/// A stretch of time no result covers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnknownSpan {
    /// Start (inclusive).
    pub from: Timestamp,
    /// End (exclusive).
    pub to: Timestamp,
    /// Why.
    pub reason: GapReason,
}

/// The `history` document of one probe.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct History {
    /// Probe name.
    pub probe: String,
    /// Window start.
    pub since: Timestamp,
    /// Window end (the time of the query).
    pub until: Timestamp,
    /// Checks in the window.
    pub checks: usize,
    /// Failed checks in the window.
    pub failed_checks: usize,
    /// Every result, oldest first.
    pub results: Vec<ResultLine>,
    /// Time in the window that no result covers (sample-and-hold with `stale_after`).
    pub unknown: Vec<UnknownSpan>,
    /// Exclusions (`upledger exclude`) overlapping the window.
    #[serde(default)]
    pub exclusions: Vec<ExclusionRecord>,
    /// Stretches overlapping the window while the daemon ran but the ledger could not write,
    /// with the results lost meanwhile (over all probes).
    #[serde(default)]
    pub write_failures: Vec<WriteFailure>,
    /// Imports (`upledger import`) that brought results of the probe inside the window: those
    /// results were not checked by this daemon.
    #[serde(default)]
    pub imports: Vec<ImportRecord>,
}

/// A stretch while the daemon ran but the ledger could not write (a
/// [`MarkerKind::WritesFailed`] marker).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WriteFailure {
    /// When writes started failing.
    pub from: Timestamp,
    /// When they worked again, or the last moment the daemon is known to have run.
    pub to: Timestamp,
    /// Results checked and never written, over all probes.
    pub lost: u64,
    /// Check time of the first lost result.
    pub first_lost: Option<Timestamp>,
    /// Check time of the last lost result.
    pub last_lost: Option<Timestamp>,
}

impl WriteFailure {
    /// The write failures among `markers`.
    pub fn from_markers(markers: &[crate::ledger::Marker]) -> Vec<WriteFailure> {
        markers
            .iter()
            .filter_map(|m| match m.kind {
                MarkerKind::WritesFailed(outage) => Some(WriteFailure {
                    from: m.at,
                    to: outage.until.max(m.at),
                    lost: outage.lost,
                    first_lost: outage.lost_between.map(|(first, _)| first),
                    last_lost: outage.lost_between.map(|(_, last)| last),
                }),
                _ => None,
            })
            .collect()
    }
}

/// A probe's results from `since` until now, with the stretches no result covers.
pub fn history(
    config: &Config,
    ledger: &Ledger,
    probe: &str,
    since: Timestamp,
) -> Result<History, QueryError> {
    // One location's series of a located probe (`web@fra1`) reads as a probe of its own.
    let series = ProbeName::stored(probe)
        .ok()
        .and_then(|name| name.split_location())
        .and_then(|(base, location)| {
            let spec = config.probe_by_name(&base)?;
            spec.locations
                .contains(&location)
                .then(|| locations::series_spec(spec, &base.at_location(&location)))
        });
    let spec = match &series {
        Some(series) => series,
        None => probe_spec(config, probe)?,
    };
    let located = locations::located(config, spec);
    let until = Timestamp::now();
    // One result before the window tells whether its start is covered.
    let lookback = since
        .checked_sub(jiff::SignedDuration::try_from(spec.stale_after).unwrap_or_default())
        .unwrap_or(since);
    let records = match &located {
        None => ledger.results(&spec.name, lookback, until)?,
        Some(located) => {
            let mut records = Vec::new();
            for (_, series) in &located.series {
                records.extend(ledger.results(series, lookback, until)?);
            }
            // Stable: one location's results at one instant keep their order.
            records.sort_by_key(|r| r.at);
            records
        }
    };
    // A write outage that began before the lookback may still cover the window: markers are
    // few, so they are read from a day before.
    let markers = ledger.markers(
        lookback
            .checked_sub(jiff::SignedDuration::from_hours(24))
            .unwrap_or(lookback),
        until,
    )?;
    let starts: Vec<Timestamp> = markers
        .iter()
        .filter(|m| m.kind == MarkerKind::DaemonStart && m.at >= lookback)
        .map(|m| m.at)
        .collect();
    let write_failures: Vec<WriteFailure> = WriteFailure::from_markers(&markers)
        .into_iter()
        .filter(|f| f.to > since)
        .collect();
    let failing: Vec<(Timestamp, Timestamp)> =
        write_failures.iter().map(|f| (f.from, f.to)).collect();
    let unknown = match &located {
        None => uncovered(&records, spec.stale_after, since, until, &starts, &failing),
        // The agents' checks: this daemon's starts and write failures say nothing of them.
        Some(located) => quorum_unknown(ledger, spec, located, since, until)?,
    };
    let in_window: Vec<&ResultRecord> = records.iter().filter(|r| r.at >= since).collect();
    let touched = |record: &ImportRecord| {
        record.touches(Some(spec.name.as_str()), since, until)
            || located.as_ref().is_some_and(|l| {
                l.series
                    .iter()
                    .any(|(_, s)| record.touches(Some(s.as_str()), since, until))
            })
    };
    Ok(History {
        probe: spec.name.to_string(),
        since,
        until,
        checks: in_window.len(),
        failed_checks: in_window
            .iter()
            .filter(|r| r.outcome == Outcome::Down)
            .count(),
        results: in_window
            .into_iter()
            .map(|record| match located {
                None => ResultLine::from(record),
                Some(_) => ResultLine::exported(record, None),
            })
            .collect(),
        unknown,
        exclusions: ledger.exclusions(Some(&spec.name), since, until)?,
        write_failures,
        imports: ledger
            .import_records()?
            .into_iter()
            .filter(|record| touched(record))
            .collect(),
    })
}

/// The parts of `[since, until)` where a probe read over locations is unknown: no location
/// covers them, or too many locations are unknown for the quorum to decide (SPEC §9).
fn quorum_unknown(
    ledger: &Ledger,
    spec: &ProbeSpec,
    located: &locations::Located,
    since: Timestamp,
    until: Timestamp,
) -> Result<Vec<UnknownSpan>, QueryError> {
    let quorum = locations::raw_quorum(ledger, spec, located, since, until)?;
    let mut spans: Vec<UnknownSpan> = Vec::new();
    let mut push = |from: Timestamp, to: Timestamp| {
        if from >= to {
            return;
        }
        match spans.last_mut() {
            Some(last) if last.to == from => last.to = to,
            _ => spans.push(UnknownSpan {
                from,
                to,
                reason: GapReason::NoResult,
            }),
        }
    };
    let mut covered = since;
    for segment in quorum.segments() {
        push(covered, segment.start.max(covered));
        if segment.state == State::Unknown {
            push(segment.start.max(covered), segment.end);
        }
        covered = covered.max(segment.end);
    }
    push(covered, until);
    Ok(spans)
}

/// The parts of `[since, until)` that no result covers, each result standing for
/// `[at, min(next, at + stale_after))` (SPEC §3). A part inside one of `write_failures`
/// (`[from, to)`, while the daemon ran but could not write) is [`GapReason::WritesFailed`];
/// the rest of a gap is [`GapReason::DaemonNotRunning`] when the daemon started inside it,
/// else [`GapReason::NoResult`].
pub fn uncovered(
    records: &[ResultRecord],
    stale_after: Duration,
    since: Timestamp,
    until: Timestamp,
    daemon_starts: &[Timestamp],
    write_failures: &[(Timestamp, Timestamp)],
) -> Vec<UnknownSpan> {
    let stale = jiff::SignedDuration::try_from(stale_after).unwrap_or_default();
    let mut failing: Vec<(Timestamp, Timestamp)> = write_failures
        .iter()
        .copied()
        .filter(|(from, to)| from < to)
        .collect();
    failing.sort();
    let mut spans = Vec::new();
    let mut covered_until = since;
    let mut push = |from: Timestamp, to: Timestamp| {
        let from = from.max(since);
        let to = to.min(until);
        let mut rest = from;
        let other = |from: Timestamp, to: Timestamp, spans: &mut Vec<UnknownSpan>| {
            if from < to {
                let reason = if daemon_starts.iter().any(|s| *s > from && *s <= to) {
                    GapReason::DaemonNotRunning
                } else {
                    GapReason::NoResult
                };
                spans.push(UnknownSpan { from, to, reason });
            }
        };
        for &(fail_from, fail_to) in &failing {
            if fail_to <= rest || fail_from >= to {
                continue;
            }
            other(rest, fail_from.max(rest), &mut spans);
            let end = fail_to.min(to);
            spans.push(UnknownSpan {
                from: fail_from.max(rest),
                to: end,
                reason: GapReason::WritesFailed,
            });
            rest = end;
        }
        other(rest, to, &mut spans);
    };
    for record in records {
        if record.at > covered_until {
            push(covered_until, record.at);
        }
        let end = record.at.checked_add(stale).unwrap_or(record.at);
        covered_until = covered_until.max(end);
    }
    if covered_until < until {
        push(covered_until, until);
    }
    spans
}

/// Streams results as JSON lines to `out` (each with the location it was checked from when
/// known, see [`ResultLine::exported`]), ordered by probe then time, then the corrections
/// that go with them: the exclusions overlapping the range (of `probe` only, when given) with
/// their revocations, and every maintenance sighting (few, and not tied to a probe). Returns
/// the lines written.
pub fn export(
    ledger: &Ledger,
    probe: Option<&ProbeName>,
    since: Option<Timestamp>,
    until: Option<Timestamp>,
    out: &mut dyn std::io::Write,
) -> Result<u64, QueryError> {
    // A probe's results are also its locations' series (a coordinator has only those).
    let mut selected: Vec<Option<ProbeName>> = vec![probe.cloned()];
    if let Some(probe) = probe.filter(|p| p.split_location().is_none()) {
        selected.extend(
            ledger
                .probes()?
                .into_iter()
                .filter(|stored| stored.split_location().is_some_and(|(p, _)| &p == probe))
                .map(Some),
        );
    }
    let mut count = 0;
    for probe in &selected {
        count += export_results(ledger, probe.as_ref(), since, until, out)?;
    }
    let sink = |e: std::io::Error| QueryError::Ledger(LedgerError::sink(e));
    for line in corrections_to_export(ledger, probe, since, until)? {
        let text =
            serde_json::to_string(&line).map_err(|e| QueryError::Ledger(LedgerError::sink(e)))?;
        writeln!(out, "{text}").map_err(sink)?;
        count += 1;
    }
    out.flush().map_err(sink)?;
    Ok(count)
}

/// Streams the results of `probe` (every series when `None`) as export lines.
fn export_results(
    ledger: &Ledger,
    probe: Option<&ProbeName>,
    since: Option<Timestamp>,
    until: Option<Timestamp>,
    out: &mut dyn std::io::Write,
) -> Result<u64, QueryError> {
    let count = ledger.export(probe, since, until, &mut |record| {
        let own = match record.probe.split_location() {
            Some(_) => None,
            None => locations::own_location(ledger, record.at)?,
        };
        let line =
            serde_json::to_string(&ResultLine::exported(record, own)).map_err(LedgerError::sink)?;
        writeln!(out, "{line}").map_err(LedgerError::sink)
    })?;
    Ok(count)
}

fn corrections_to_export(
    ledger: &Ledger,
    probe: Option<&ProbeName>,
    since: Option<Timestamp>,
    until: Option<Timestamp>,
) -> Result<Vec<CorrectionLine>, QueryError> {
    let entries = ledger.exclusion_entries(
        since.unwrap_or(Timestamp::MIN),
        until.unwrap_or(Timestamp::MAX),
    )?;
    let mut lines = Vec::new();
    let mut revocations = Vec::new();
    for entry in entries {
        if probe.is_some_and(|p| entry.exclusion.probe.as_ref() != Some(p)) {
            continue;
        }
        revocations.extend(entry.revoked.map(CorrectionLine::Revocation));
        lines.push(CorrectionLine::Exclusion(entry.exclusion));
    }
    // After every exclusion, so an import meets each exclusion before its revocation.
    lines.extend(revocations);
    for (window, first_seen) in ledger.maintenance_sightings()? {
        lines.push(CorrectionLine::MaintenanceSeen { window, first_seen });
    }
    Ok(lines)
}

/// The configured probe named `name`, or an error naming it with the closest configured name.
pub fn probe_spec<'c>(config: &'c Config, name: &str) -> Result<&'c ProbeSpec, QueryError> {
    config.probe(name).ok_or_else(|| {
        let names: Vec<&str> = config.probes.iter().map(|p| p.name.as_str()).collect();
        unknown("probe", name, &names)
    })
}

/// The configured SLA named `name`, or an error naming it with the closest configured name.
pub fn sla_spec<'c>(config: &'c Config, name: &str) -> Result<&'c SlaSpec, QueryError> {
    config.slas.iter().find(|s| s.name == name).ok_or_else(|| {
        let names: Vec<&str> = config.slas.iter().map(|s| s.name.as_str()).collect();
        unknown("SLA", name, &names)
    })
}

/// The probe `export --probe` names: configured, or with results in the ledger (a probe
/// removed from the configuration can still be backed up).
pub fn export_probe(config: &Config, ledger: &Ledger, name: &str) -> Result<ProbeName, QueryError> {
    if let Some(spec) = config.probe(name) {
        return Ok(spec.name.clone());
    }
    let stored = ledger.probes()?;
    if let Some(found) = stored.iter().find(|p| p.as_str() == name) {
        return Ok(found.clone());
    }
    let mut names: Vec<&str> = config.probes.iter().map(|p| p.name.as_str()).collect();
    names.extend(stored.iter().map(ProbeName::as_str));
    Err(unknown("probe", name, &names))
}

/// The error for an unknown `what` named `name`, suggesting the closest of `known` when it
/// is plausibly a typo.
fn unknown(what: &'static str, name: &str, known: &[&str]) -> QueryError {
    let hint = known
        .iter()
        .map(|candidate| (strsim::damerau_levenshtein(name, candidate), *candidate))
        .filter(|(distance, candidate)| *distance <= (candidate.chars().count() / 3).max(1))
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, near)| format!(" (did you mean \"{near}\"?)"))
        .unwrap_or_default();
    QueryError::Unknown {
        what,
        name: name.to_owned(),
        hint,
    }
}

/// What an exclusion applies to, as given on the command line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExclusionSubject {
    /// One probe's availability.
    Probe(String),
    /// An SLA's figures as a whole.
    Sla(String),
}

/// Validates an exclusion of `subject` over `[from, to)`; nothing is written here.
pub fn exclusion(
    config: &Config,
    subject: &ExclusionSubject,
    from: Timestamp,
    to: Timestamp,
    reason: &str,
) -> Result<ExclusionRecord, QueryError> {
    let (probe, sla) = match subject {
        ExclusionSubject::Probe(name) => (Some(probe_spec(config, name)?.name.clone()), None),
        ExclusionSubject::Sla(name) => (None, Some(sla_spec(config, name)?.name.clone())),
    };
    if from >= to {
        return Err(QueryError::BadExclusion(format!(
            "--from ({from}) must be before --to ({to})"
        )));
    }
    if reason.trim().is_empty() {
        return Err(QueryError::BadExclusion(
            "--reason must say why (it is shown in every report the exclusion touches)".into(),
        ));
    }
    Ok(ExclusionRecord::new(
        probe,
        sla,
        from,
        to,
        reason.trim().to_owned(),
        Timestamp::now(),
    ))
}

/// Validates the revocation of exclusion `id` and records it (forgetting the stored figures
/// of the months it touched); returns the exclusion with its revocation.
pub fn revoke(
    config: &Config,
    ledger: &Ledger,
    id: &str,
    reason: &str,
    by: Requester,
) -> Result<ExclusionListing, QueryError> {
    if reason.trim().is_empty() {
        return Err(QueryError::BadExclusion(
            "--reason must say why the exclusion is revoked (reports list it)".into(),
        ));
    }
    let entries = ledger.exclusion_entries(Timestamp::MIN, Timestamp::MAX)?;
    let Some(entry) = entries.into_iter().find(|e| e.exclusion.id == id) else {
        let ids: Vec<String> = ledger
            .exclusion_entries(Timestamp::MIN, Timestamp::MAX)?
            .into_iter()
            .map(|e| e.exclusion.id)
            .collect();
        let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
        return Err(unknown("exclusion", id, &ids));
    };
    if let Some(earlier) = &entry.revoked {
        return Err(QueryError::BadExclusion(format!(
            "exclusion {id} was revoked already at {} ({})",
            earlier.recorded_at, earlier.reason
        )));
    }
    let revocation = RevocationRecord {
        revokes: entry.exclusion.id.clone(),
        reason: reason.trim().to_owned(),
        recorded_at: Timestamp::now(),
        recorded_by: Some(by),
    };
    monthly::record_revocation(config, ledger, &entry.exclusion, &revocation)?;
    Ok(ExclusionListing::from(ExclusionEntry {
        exclusion: entry.exclusion,
        revoked: Some(revocation),
    }))
}

/// One line of `upledger exclusions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExclusionListing {
    /// The id (what `exclude --revoke` names).
    pub id: String,
    /// The probe, for a probe's exclusion.
    pub probe: Option<String>,
    /// The SLA, for an SLA's exclusion.
    pub sla: Option<String>,
    /// Start (inclusive).
    pub from: Timestamp,
    /// End (exclusive).
    pub to: Timestamp,
    /// Why it was entered.
    pub reason: String,
    /// When it was entered.
    pub recorded_at: Timestamp,
    /// Who entered it: `name (uid N)`, or `unknown` for records from before this was kept.
    #[serde(default = "unknown_requester")]
    pub recorded_by: String,
    /// Whether it was revoked (and so is no longer applied).
    pub revoked: bool,
    /// When it was revoked.
    pub revoked_at: Option<Timestamp>,
    /// Why it was revoked.
    pub revocation_reason: Option<String>,
    /// Who revoked it (`unknown` for revocations from before this was kept).
    #[serde(default)]
    pub revoked_by: Option<String>,
}

fn unknown_requester() -> String {
    "unknown".to_owned()
}

fn requester_text(by: Option<&Requester>) -> String {
    by.map_or_else(unknown_requester, Requester::to_string)
}

impl From<ExclusionEntry> for ExclusionListing {
    fn from(entry: ExclusionEntry) -> Self {
        let e = entry.exclusion;
        ExclusionListing {
            id: e.id,
            probe: e.probe.map(|p| p.to_string()),
            sla: e.sla,
            from: e.from,
            to: e.to,
            reason: e.reason,
            recorded_at: e.recorded_at,
            recorded_by: requester_text(e.recorded_by.as_ref()),
            revoked: entry.revoked.is_some(),
            revoked_at: entry.revoked.as_ref().map(|r| r.recorded_at),
            revoked_by: entry
                .revoked
                .as_ref()
                .map(|r| requester_text(r.recorded_by.as_ref())),
            revocation_reason: entry.revoked.map(|r| r.reason),
        }
    }
}

/// Every exclusion, revoked or not, overlapping `month` (all of them without one), in the
/// order entered: what `upledger exclusions` lists.
pub fn exclusion_list(
    config: &Config,
    ledger: &Ledger,
    month: Option<crate::report::Month>,
) -> Result<Vec<ExclusionListing>, QueryError> {
    let (from, to) = match month {
        Some(month) => {
            let bounds = month
                .bounds(&config.daemon.timezone)
                .map_err(|e| QueryError::BadRequest(e.to_string()))?;
            (bounds.start, bounds.end)
        }
        None => (Timestamp::MIN, Timestamp::MAX),
    };
    Ok(ledger
        .exclusion_entries(from, to)?
        .into_iter()
        .map(ExclusionListing::from)
        .collect())
}

/// `spec`'s confirmed outages overlapping `[since, now)`, clipped to it, oldest first — the
/// same reading of results as reports make (back-dated to the first failure).
pub fn recent_outages(
    ledger: &Ledger,
    spec: &ProbeSpec,
    since: Timestamp,
    now: Timestamp,
) -> Result<Vec<(Timestamp, Option<Timestamp>)>, QueryError> {
    let reach = spec.interval.saturating_mul(spec.failure_threshold) + spec.stale_after;
    let lookback = jiff::SignedDuration::try_from(reach)
        .ok()
        .and_then(|reach| since.checked_sub(reach).ok())
        .unwrap_or(since);
    let records = ledger.results(&spec.name, lookback, now)?;
    let timeline = crate::report::Timeline::from_samples(
        records.iter().map(Into::into),
        crate::report::SampleRules::for_probe(spec),
        now,
    );
    Ok(timeline
        .segments()
        .filter(|s| s.state == State::Down && s.end > since)
        .map(|s| (s.start.max(since), Some(s.end)))
        .collect())
}

/// [`recent_outages`] of `spec` as `config` reads it: for a probe read over locations, the
/// outages of their quorum (SPEC §9), from the locations' raw results.
pub fn recent_outages_of(
    config: &Config,
    ledger: &Ledger,
    spec: &ProbeSpec,
    since: Timestamp,
    now: Timestamp,
) -> Result<Vec<(Timestamp, Option<Timestamp>)>, QueryError> {
    let Some(located) = locations::located(config, spec) else {
        return recent_outages(ledger, spec, since, now);
    };
    let quorum = locations::raw_quorum(ledger, spec, &located, since, now)?;
    Ok(quorum
        .segments()
        .filter(|s| s.state == State::Down && s.end > since)
        .map(|s| (s.start.max(since), Some(s.end)))
        .collect())
}

/// `24h` (that long before `now`) or an RFC 3339 instant: how `--since` and `?since=` read.
pub fn parse_instant(text: &str, now: Timestamp) -> Result<Timestamp, String> {
    if let Ok(at) = text.parse::<Timestamp>() {
        return Ok(at);
    }
    let ago = humantime::parse_duration(text)
        .map_err(|_| format!("\"{text}\" is neither a duration like 24h nor an RFC 3339 time"))?;
    let ago = jiff::SignedDuration::try_from(ago).map_err(|e| e.to_string())?;
    now.checked_sub(ago).map_err(|e| e.to_string())
}

/// One line of `upledger alerts`: a delivery and where it stands.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AlertLine {
    /// Delivery id (`X-Upledger-Delivery`).
    pub id: String,
    /// Event name.
    pub event: String,
    /// Probe (or SLA) concerned.
    pub subject: Option<String>,
    /// Channel.
    pub channel: String,
    /// When it was raised.
    pub created: Timestamp,
    /// `pending`, `delivered` or `failed`.
    pub status: crate::ledger::DeliveryStatus,
    /// Attempts so far.
    pub attempts: u32,
    /// Next attempt, while pending.
    pub next_attempt: Option<Timestamp>,
    /// When delivered or given up.
    pub settled: Option<Timestamp>,
    /// Why the last attempt failed.
    pub last_error: String,
    /// The event document.
    pub alert: serde_json::Value,
}

/// The newest `limit` alert deliveries, newest first.
pub fn alerts(ledger: &Ledger, limit: usize) -> Result<Vec<AlertLine>, QueryError> {
    Ok(ledger
        .outbox_recent(limit)?
        .into_iter()
        .map(|item| {
            let e = item.entry;
            let pending = e.status == crate::ledger::DeliveryStatus::Pending;
            AlertLine {
                alert: serde_json::from_str(&e.payload).unwrap_or(serde_json::Value::Null),
                id: e.id,
                event: e.event,
                subject: e.subject,
                channel: e.channel,
                created: e.created,
                status: e.status,
                attempts: e.attempts,
                next_attempt: pending.then_some(e.next_attempt),
                settled: e.settled,
                last_error: e.last_error,
            }
        })
        .collect())
}

/// What an import stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Imported {
    /// Results.
    pub imported: usize,
    /// Correction records (exclusions, revocations, maintenance sightings).
    #[serde(default)]
    pub corrections: usize,
}

/// An import file, parsed and checked against the configuration and the ledger.
#[derive(Debug, Default)]
pub struct ImportBatch {
    /// The results.
    pub results: Vec<ResultRecord>,
    /// The corrections with their (1-based) line numbers, in file order.
    pub corrections: Vec<(usize, CorrectionLine)>,
    /// Lines that are not blank: what `--expect-lines` counts (an export's line count).
    pub lines: u64,
}

/// Imports JSON lines into the ledger, all or nothing, then digests the finished hours (as of
/// `now`) so that reports of the imported months read digests at once, and the status page's
/// day bars show them. Nothing is written when a line is refused (an unknown probe, an
/// impossible time or latency, a duplicate result or correction), when `expected_lines` is
/// given and the input has another number of lines, or when the process is killed before the
/// ledger's commit (see `ledger::staging`).
pub fn import(
    config: &Config,
    ledger: &Ledger,
    text: &str,
    now: Timestamp,
    expected_lines: Option<u64>,
    by: Option<Requester>,
) -> Result<Imported, QueryError> {
    import_with_location(config, ledger, text, now, expected_lines, by, None)
}

/// [`import`], with `location` standing for the `"location"` of every result line that has
/// none (`upledger import --location`): see [`parse_import_with_location`].
pub fn import_with_location(
    config: &Config,
    ledger: &Ledger,
    text: &str,
    now: Timestamp,
    expected_lines: Option<u64>,
    by: Option<Requester>,
    location: Option<&LocationName>,
) -> Result<Imported, QueryError> {
    let batch = parse_import_with_location(config, text, now, location)?;
    if let Some(expected) = expected_lines
        && expected != batch.lines
    {
        return Err(QueryError::Incomplete {
            found: batch.lines,
            expected,
            unit: "lines",
        });
    }
    check_corrections(ledger, &batch.corrections)?;
    let (corrections, forget_closed) = staged_corrections(config, ledger, &batch.corrections)?;
    let mut record = ImportRecord::new(now, by, &batch.results, batch.corrections.len());
    record.sha256 = Some(text_sha256(text));
    let imported = ledger.import_all(&ImportCommit {
        results: &batch.results,
        corrections: &corrections,
        forget_closed: &forget_closed,
        record: Some(&record),
    })?;
    if let Ok(until) = now.checked_sub(crate::ledger::DIGEST_SETTLE) {
        days::digest(config, ledger, until, &|| true)?;
        days::rewrite_days_of(config, ledger, &batch.results)?;
    }
    Ok(Imported {
        imported,
        corrections: batch.corrections.len(),
    })
}

/// `text` with `"location"` added to every result line that has none: what `import
/// --location` sends a daemon, whose import request has no location of its own. Other lines
/// (corrections, blank or unparsable ones) are left as they are, for the import to judge.
pub fn with_location(text: &str, location: &LocationName) -> String {
    let mut out = String::with_capacity(text.len());
    for raw in text.split_inclusive('\n') {
        let body = raw.trim_end();
        let lacks_location =
            serde_json::from_str::<ResultLine>(body).is_ok_and(|line| line.location.is_none());
        match body.strip_suffix('}') {
            Some(open) if lacks_location => {
                // A location name needs no JSON escaping (its alphabet is a-z0-9._-).
                out.push_str(open);
                out.push_str(&format!(",\"location\":\"{location}\"}}"));
                out.push_str(&raw[body.len()..]);
            }
            _ => out.push_str(raw),
        }
    }
    out
}

/// SHA-256 of `text`, lowercase hex.
fn text_sha256(text: &str) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, text.as_bytes());
    crate::model::hex(digest.as_ref())
}

/// Parses JSON lines into results and corrections, refusing unknown probes and SLAs, and
/// results that cannot be true as of `now`: starting after `now` + [`IMPORT_FUTURE_SLACK`]
/// or before [`IMPORT_EARLIEST`], or taking longer than [`IMPORT_MAX_LATENCY_MS`]. Nothing is
/// written here.
pub fn parse_import(
    config: &Config,
    text: &str,
    now: Timestamp,
) -> Result<ImportBatch, QueryError> {
    parse_import_with_location(config, text, now, None)
}

/// [`parse_import`], where a result's location decides the series it is stored under (SPEC
/// §9): see [`import_series`]. `location` stands for the `"location"` of lines without one.
pub fn parse_import_with_location(
    config: &Config,
    text: &str,
    now: Timestamp,
    location: Option<&LocationName>,
) -> Result<ImportBatch, QueryError> {
    let earliest: Timestamp = IMPORT_EARLIEST
        .parse()
        .map_err(|e| QueryError::BadRequest(format!("bad IMPORT_EARLIEST: {e}")))?;
    let latest = now.saturating_add(IMPORT_FUTURE_SLACK).unwrap_or(now);
    let mut batch = ImportBatch::default();
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        if raw.trim().is_empty() {
            continue;
        }
        batch.lines += 1;
        let bad = |message: String| QueryError::BadLine { line, message };
        let parsed: ResultLine = match serde_json::from_str(raw) {
            Ok(parsed) => parsed,
            // Results are the bulk: a correction is only tried when a line is no result.
            Err(not_a_result) => match serde_json::from_str::<CorrectionLine>(raw) {
                Ok(correction) => {
                    let correction = check_correction(config, correction).map_err(bad)?;
                    batch.corrections.push((line, correction));
                    continue;
                }
                Err(not_a_correction) => {
                    let is_correction = serde_json::from_str::<serde_json::Value>(raw)
                        .is_ok_and(|value| value.get("record").is_some());
                    return Err(bad(if is_correction {
                        not_a_correction.to_string()
                    } else {
                        not_a_result.to_string()
                    }));
                }
            },
        };
        // A location's series as the ledger names it (`web@fra1`) reads as its probe and
        // location.
        let (probe_text, named_location) = match parsed.probe.split_once('@') {
            Some((probe, at)) => (
                probe.to_owned(),
                Some(LocationName::new(at).map_err(|e| bad(e.to_string()))?),
            ),
            None => (parsed.probe.clone(), None),
        };
        let spec = config.probe(&probe_text).ok_or_else(|| {
            bad(format!(
                "unknown probe \"{probe_text}\": import only accepts probes of the configuration"
            ))
        })?;
        let line_location = match (named_location, parsed.location.clone()) {
            (Some(named), Some(field)) if named != field => {
                return Err(bad(format!(
                    "probe \"{}\" names location {named}, but \"location\" is {field}",
                    parsed.probe
                )));
            }
            (named, field) => field.or(named),
        };
        let series =
            import_series(config, spec, line_location.as_ref().or(location)).map_err(bad)?;
        if parsed.at > latest {
            return Err(bad(format!(
                "at {} is in the future: after now ({now}) plus {} minutes",
                parsed.at,
                IMPORT_FUTURE_SLACK.as_mins()
            )));
        }
        if parsed.at < earliest {
            return Err(bad(format!(
                "at {} is before {IMPORT_EARLIEST}: no upledger result is that old",
                parsed.at
            )));
        }
        if !(parsed.latency_ms.is_finite() && parsed.latency_ms >= 0.0) {
            return Err(bad(format!("invalid latency_ms {}", parsed.latency_ms)));
        }
        if parsed.latency_ms > IMPORT_MAX_LATENCY_MS {
            return Err(bad(format!(
                "latency_ms {} is over one hour ({IMPORT_MAX_LATENCY_MS} ms): no check takes \
                 that long",
                // serde_json's shortest form (1e308), as the line had it; `{}` writes 309 digits.
                serde_json::to_string(&parsed.latency_ms).unwrap_or_default()
            )));
        }
        let failed = matches!(parsed.outcome, Outcome::Down);
        if failed && parsed.error_class.is_none() {
            return Err(bad("a down result needs an error_class".into()));
        }
        batch.results.push(parsed.into_record(series));
    }
    Ok(batch)
}

/// The series an imported result of `spec` checked from `location` is stored under: a
/// probe read over locations here (see [`locations::located`]) keeps each location's results
/// under `probe@location`, and a location it does not list is refused. A probe this daemon
/// checks itself keeps its own location's results under its name (what `export` wrote them
/// from), and a probe without `locations` is stored as it always was, wherever it ran.
pub fn import_series(
    config: &Config,
    spec: &ProbeSpec,
    location: Option<&LocationName>,
) -> Result<ProbeName, String> {
    if spec.locations.is_empty() {
        return Ok(spec.name.clone());
    }
    let listed = || {
        spec.locations
            .iter()
            .map(LocationName::as_str)
            .collect::<Vec<_>>()
            .join(", ")
    };
    match location {
        None if config.runs_here(spec) => Ok(spec.name.clone()),
        None => Err(format!(
            "probe \"{}\" is read from its locations ({}): the result needs a \"location\" \
             (or import --location)",
            spec.name,
            listed()
        )),
        Some(location) if !spec.locations.contains(location) => Err(format!(
            "location \"{location}\" is not one of probe \"{}\"'s locations ({})",
            spec.name,
            listed()
        )),
        Some(location) if config.runs_here(spec) && *location == config.daemon.location => {
            Ok(spec.name.clone())
        }
        Some(location) => Ok(spec.name.at_location(location)),
    }
}

/// One correction line checked on its own: an exclusion names a configured probe or SLA (one
/// of them) and a span; its id is filled in when the line has none.
fn check_correction(config: &Config, correction: CorrectionLine) -> Result<CorrectionLine, String> {
    let CorrectionLine::Exclusion(mut exclusion) = correction else {
        return Ok(correction);
    };
    match (&exclusion.probe, &exclusion.sla) {
        (Some(probe), None) => {
            let spec = config.probe(probe.as_str()).ok_or_else(|| {
                format!(
                    "unknown probe \"{probe}\": import only accepts probes of the configuration"
                )
            })?;
            exclusion.probe = Some(spec.name.clone());
        }
        (None, Some(sla)) => {
            if !config.slas.iter().any(|s| &s.name == sla) {
                return Err(format!(
                    "unknown SLA \"{sla}\": import only accepts SLAs of the configuration"
                ));
            }
        }
        _ => return Err("an exclusion names exactly one of probe and sla".into()),
    }
    if exclusion.from >= exclusion.to {
        return Err(format!(
            "exclusion from ({}) must be before to ({})",
            exclusion.from, exclusion.to
        ));
    }
    if exclusion.id.is_empty() {
        exclusion.id = exclusion.content_id();
    }
    Ok(CorrectionLine::Exclusion(exclusion))
}

/// Refuses corrections the ledger holds already, or that the input holds twice, and
/// revocations of exclusions neither has; nothing is written here. A maintenance window the
/// ledger saw *later* than the input says is no duplicate: a daemon started on a fresh
/// ledger notes every window at its start, and the restored, earlier sighting replaces it.
fn check_corrections(
    ledger: &Ledger,
    corrections: &[(usize, CorrectionLine)],
) -> Result<(), QueryError> {
    if corrections.is_empty() {
        return Ok(());
    }
    let (stored, revoked) = ledger.corrections()?;
    let mut exclusions: Vec<&str> = Vec::new();
    let mut revocations: Vec<&str> = Vec::new();
    let mut windows: Vec<&str> = Vec::new();
    for (line, correction) in corrections {
        let line = *line;
        let bad = |message: String| QueryError::BadLine {
            line,
            message: format!("import refused, nothing written: {message}"),
        };
        match correction {
            CorrectionLine::Exclusion(e) => {
                if stored.iter().any(|s| s.id == e.id) {
                    return Err(bad(format!("exclusion {} is already in the ledger", e.id)));
                }
                if exclusions.contains(&e.id.as_str()) {
                    return Err(bad(format!("exclusion {} appears twice", e.id)));
                }
                exclusions.push(&e.id);
            }
            CorrectionLine::Revocation(r) => {
                if revoked.iter().any(|s| s.revokes == r.revokes)
                    || revocations.contains(&r.revokes.as_str())
                {
                    return Err(bad(format!("exclusion {} is revoked twice", r.revokes)));
                }
                if !stored.iter().any(|s| s.id == r.revokes)
                    && !exclusions.contains(&r.revokes.as_str())
                {
                    return Err(bad(format!(
                        "the revocation names exclusion {}, which is neither in the ledger nor \
                         earlier in the input",
                        r.revokes
                    )));
                }
                revocations.push(&r.revokes);
            }
            CorrectionLine::MaintenanceSeen { window, first_seen } => {
                if windows.contains(&window.as_str()) {
                    return Err(bad(format!("maintenance window {window} appears twice")));
                }
                if let Some(seen) = ledger.maintenance_seen(window)?
                    && seen <= *first_seen
                {
                    return Err(bad(format!(
                        "maintenance window {window} is already in the ledger, first seen at {seen}"
                    )));
                }
                windows.push(window);
            }
        }
    }
    Ok(())
}

/// Checked corrections as the ledger stores them with the import's results, and the prefixes
/// of the stored month figures they make stale.
fn staged_corrections(
    config: &Config,
    ledger: &Ledger,
    corrections: &[(usize, CorrectionLine)],
) -> Result<(Vec<ImportedCorrection>, Vec<String>), QueryError> {
    let mut staged = Vec::with_capacity(corrections.len());
    let mut prefixes = Vec::new();
    if corrections.is_empty() {
        return Ok((staged, prefixes));
    }
    let (stored, _) = ledger.corrections()?;
    for (_, correction) in corrections {
        match correction {
            CorrectionLine::Exclusion(exclusion) => {
                prefixes.extend(monthly::closed_prefixes(config, exclusion));
                staged.push(ImportedCorrection::Exclusion(exclusion.clone()));
            }
            CorrectionLine::Revocation(revocation) => {
                // `check_corrections` made sure the exclusion is stored or earlier in the input.
                let earlier = corrections.iter().find_map(|(_, c)| match c {
                    CorrectionLine::Exclusion(e) if e.id == revocation.revokes => Some(e),
                    _ => None,
                });
                let revoked = stored
                    .iter()
                    .find(|e| e.id == revocation.revokes)
                    .or(earlier);
                if let Some(exclusion) = revoked {
                    prefixes.extend(monthly::closed_prefixes(config, exclusion));
                }
                staged.push(ImportedCorrection::Revocation(revocation.clone()));
            }
            CorrectionLine::MaintenanceSeen { window, first_seen } => {
                // Which months a window identity touches is the configuration's business;
                // sightings are imported rarely, so every stored month is recomputed instead.
                prefixes.push("month/".to_owned());
                staged.push(ImportedCorrection::MaintenanceSeen {
                    window: window.clone(),
                    first_seen: *first_seen,
                });
            }
        }
    }
    prefixes.sort();
    prefixes.dedup();
    Ok((staged, prefixes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(seconds: i64, outcome: Outcome) -> ResultRecord {
        ResultRecord {
            probe: ProbeName::new("p").unwrap(),
            at: Timestamp::from_second(seconds).unwrap(),
            latency: Duration::from_micros(12_500),
            outcome,
            error_class: None,
            detail: String::new(),
        }
    }

    fn ts(seconds: i64) -> Timestamp {
        Timestamp::from_second(seconds).unwrap()
    }

    #[test]
    fn uncovered_time_is_between_stale_results() {
        let records = [
            record(100, Outcome::Up),
            record(160, Outcome::Up),
            record(500, Outcome::Up),
        ];
        let spans = uncovered(
            &records,
            Duration::from_secs(120),
            ts(0),
            ts(700),
            &[ts(450)],
            &[],
        );
        assert_eq!(spans.len(), 3);
        assert_eq!((spans[0].from, spans[0].to), (ts(0), ts(100)));
        assert_eq!(
            (spans[1].from, spans[1].to, spans[1].reason),
            (ts(280), ts(500), GapReason::DaemonNotRunning)
        );
        assert_eq!(
            (spans[2].from, spans[2].to, spans[2].reason),
            (ts(620), ts(700), GapReason::NoResult)
        );
    }

    #[test]
    fn a_gap_while_writes_failed_is_labelled_so_and_only_that_part() {
        // Results until 100 (standing 20 s), writes fail 110..400, the daemon is killed
        // at 400 and starts again at 600.
        let records = [record(100, Outcome::Up), record(600, Outcome::Up)];
        let spans = uncovered(
            &records,
            Duration::from_secs(20),
            ts(100),
            ts(620),
            &[ts(600)],
            &[(ts(110), ts(400))],
        );
        let got: Vec<_> = spans.iter().map(|s| (s.from, s.to, s.reason)).collect();
        assert_eq!(
            got,
            [
                (ts(120), ts(400), GapReason::WritesFailed),
                (ts(400), ts(600), GapReason::DaemonNotRunning),
            ]
        );
        // Writes failed the whole gap (a stop that could not write, started again at once).
        let spans = uncovered(
            &records,
            Duration::from_secs(20),
            ts(100),
            ts(620),
            &[ts(600)],
            &[(ts(90), ts(600))],
        );
        let got: Vec<_> = spans.iter().map(|s| (s.from, s.to, s.reason)).collect();
        assert_eq!(got, [(ts(120), ts(600), GapReason::WritesFailed)]);
        // Without the marker, the same gap is "not running": what history said before.
        let spans = uncovered(
            &records,
            Duration::from_secs(20),
            ts(100),
            ts(620),
            &[ts(600)],
            &[],
        );
        assert_eq!(spans.len(), 1);
        assert_eq!(spans[0].reason, GapReason::DaemonNotRunning);
    }

    #[test]
    fn fully_covered_windows_have_no_unknown() {
        let records = [
            record(0, Outcome::Up),
            record(60, Outcome::Down),
            record(120, Outcome::Up),
        ];
        assert!(
            uncovered(
                &records,
                Duration::from_secs(120),
                ts(30),
                ts(200),
                &[],
                &[]
            )
            .is_empty()
        );
    }

    #[test]
    fn an_import_refuses_a_revocation_of_an_unknown_exclusion_and_writes_nothing() {
        let (_dir, config, ledger, _) =
            monthly::tests::web_with_ten_days("[daemon]\nledger = \"ledger\"\n");
        let result = r#"{"probe":"web","at":"2027-01-01T00:00:00Z","outcome":"up","latency_ms":1.0,"error_class":null,"detail":""}"#;
        let exclusion = r#"{"record":"exclusion","probe":"web","from":"2026-10-02T00:00:00Z","to":"2026-10-02T01:00:00Z","reason":"uplink","recorded_at":"2026-11-01T00:00:00Z"}"#;
        let stray = r#"{"record":"revocation","revokes":"0123456789ab","reason":"x","recorded_at":"2026-11-02T00:00:00Z"}"#;
        let text = format!("{result}\n{exclusion}\n{stray}\n");
        let now: Timestamp = "2027-01-02T00:00:00Z".parse().unwrap();
        let refused = import(&config, &ledger, &text, now, None, None).unwrap_err();
        assert!(
            matches!(refused, QueryError::BadLine { line: 3, .. }),
            "{refused}"
        );
        assert!(
            ledger.corrections().unwrap().0.is_empty(),
            "nothing written"
        );
        let web = ProbeName::new("web").unwrap();
        assert!(
            ledger
                .results(
                    &web,
                    "2027-01-01T00:00:00Z".parse().unwrap(),
                    Timestamp::MAX
                )
                .unwrap()
                .is_empty()
        );
        // Without the stray line: stored, the exclusion with the id its content gives.
        let text = format!("{result}\n{exclusion}\n");
        let imported = import(&config, &ledger, &text, now, None, None).unwrap();
        assert_eq!(
            imported,
            Imported {
                imported: 1,
                corrections: 1
            }
        );
        let stored = ledger.corrections().unwrap().0;
        assert_eq!(stored.len(), 1);
        assert_eq!(stored[0].id, stored[0].content_id());
        assert!(matches!(
            import(&config, &ledger, exclusion, now, None, None),
            Err(QueryError::BadLine { line: 1, .. })
        ));
    }

    /// Issue 19: results that cannot be true are refused with their line, nothing written.
    #[test]
    fn an_import_refuses_impossible_times_and_latencies() {
        let (_dir, config, ledger, _) =
            monthly::tests::web_with_ten_days("[daemon]\nledger = \"ledger\"\n");
        let now: Timestamp = "2027-01-02T00:00:00Z".parse().unwrap();
        let line = |at: &str, latency: &str| {
            format!(
                r#"{{"probe":"web","at":"{at}","outcome":"up","latency_ms":{latency},"error_class":null,"detail":""}}"#
            )
        };
        let fine = line("2027-01-01T00:00:00Z", "12.5");
        let refused = |bad: String, what: &str| {
            let text = format!("{fine}\n\n{bad}\n");
            match parse_import(&config, &text, now) {
                Err(QueryError::BadLine { line: 3, message }) => {
                    assert!(message.contains(what), "{message}");
                }
                other => panic!("{bad}: {other:?}"),
            }
        };
        refused(line("2030-01-01T00:00:00Z", "1"), "in the future");
        refused(line("2027-01-02T00:05:00.001Z", "1"), "in the future");
        refused(line("0001-01-01T00:00:00Z", "1"), "before 2000-01-01");
        refused(line("1999-12-31T23:59:59Z", "1"), "before 2000-01-01");
        refused(line("2027-01-01T00:00:00Z", "1e308"), "over one hour");
        refused(line("2027-01-01T00:00:00Z", "3600000.001"), "over one hour");
        // The limits themselves are accepted.
        let limits = [
            line("2027-01-02T00:05:00Z", "3600000"),
            line("2000-01-01T00:00:00Z", "0"),
        ]
        .join("\n");
        assert_eq!(
            parse_import(&config, &limits, now).unwrap().results.len(),
            2
        );
        assert!(matches!(
            import(
                &config,
                &ledger,
                &format!("{fine}\n{}", line("2030-01-01T00:00:00Z", "1")),
                now,
                None,
                None
            ),
            Err(QueryError::BadLine { line: 2, .. })
        ));
        let web = ProbeName::new("web").unwrap();
        let stored = |ledger: &Ledger| {
            ledger
                .results(
                    &web,
                    "2027-01-01T00:00:00Z".parse().unwrap(),
                    Timestamp::MAX,
                )
                .unwrap()
                .len()
        };
        assert_eq!(stored(&ledger), 0, "nothing written");
    }

    /// Issue 20: an input cut at a line boundary passes for complete unless its length is
    /// announced.
    #[test]
    fn expect_lines_refuses_an_input_of_another_length() {
        let (_dir, config, ledger, _) =
            monthly::tests::web_with_ten_days("[daemon]\nledger = \"ledger\"\n");
        let now: Timestamp = "2027-01-02T00:00:00Z".parse().unwrap();
        let text: String = (0..3)
            .map(|n| {
                format!(
                    "{{\"probe\":\"web\",\"at\":\"2027-01-01T00:00:0{n}Z\",\"outcome\":\"up\",\"latency_ms\":1.0}}\n"
                )
            })
            .collect();
        let cut: String = text.lines().take(2).map(|l| format!("{l}\n")).collect();
        let refused = import(&config, &ledger, &cut, now, Some(3), None).unwrap_err();
        assert!(
            matches!(
                refused,
                QueryError::Incomplete {
                    found: 2,
                    expected: 3,
                    ..
                }
            ),
            "{refused}"
        );
        assert!(refused.to_string().contains("cut short"), "{refused}");
        assert!(matches!(
            import(&config, &ledger, &format!("{text}\n\n"), now, Some(2), None),
            Err(QueryError::Incomplete { found: 3, .. })
        ));
        let web = ProbeName::new("web").unwrap();
        let from: Timestamp = "2027-01-01T00:00:00Z".parse().unwrap();
        assert!(
            ledger
                .results(&web, from, Timestamp::MAX)
                .unwrap()
                .is_empty()
        );
        // Blank lines do not count.
        let imported =
            import(&config, &ledger, &format!("\n{text}\n"), now, Some(3), None).unwrap();
        assert_eq!(imported.imported, 3);
        assert_eq!(ledger.results(&web, from, Timestamp::MAX).unwrap().len(), 3);
    }

    #[test]
    fn import_location_fills_result_lines_without_one_and_nothing_else() {
        let fra = LocationName::new("fra1").unwrap();
        let text = "{\"probe\":\"web\",\"at\":\"2026-10-01T00:00:00Z\",\"outcome\":\"up\",\"latency_ms\":1.0}\n\
                    \n\
                    {\"probe\":\"web\",\"at\":\"2026-10-01T00:00:30Z\",\"outcome\":\"up\",\"latency_ms\":1.0,\"location\":\"nyc1\"}\r\n\
                    {\"record\":\"maintenance_seen\",\"window\":\"w\",\"first_seen\":\"2026-10-01T00:00:00Z\"}\n\
                    not json";
        let filled = with_location(text, &fra);
        let lines: Vec<&str> = filled.split_inclusive('\n').collect();
        assert_eq!(
            lines[0],
            "{\"probe\":\"web\",\"at\":\"2026-10-01T00:00:00Z\",\"outcome\":\"up\",\"latency_ms\":1.0,\"location\":\"fra1\"}\n"
        );
        let parsed: ResultLine = serde_json::from_str(lines[0].trim_end()).unwrap();
        assert_eq!(parsed.location, Some(fra));
        // The line with its own location, the correction, the blank and the broken line
        // are left as they were, line ends too.
        let rest: String = lines[1..].concat();
        let original: String = text.split_inclusive('\n').skip(1).collect();
        assert_eq!(rest, original);
    }

    #[test]
    fn export_lines_split_a_series_name_into_probe_and_location() {
        let mut stored = record(0, Outcome::Up);
        stored.probe = ProbeName::stored("p@fra1").unwrap();
        let line = ResultLine::exported(&stored, LocationName::new("hq").ok());
        assert_eq!(
            (
                line.probe.as_str(),
                line.location.as_ref().map(LocationName::as_str)
            ),
            ("p", Some("fra1"))
        );
        let own = ResultLine::exported(&record(0, Outcome::Up), LocationName::new("hq").ok());
        assert_eq!(
            (
                own.probe.as_str(),
                own.location.as_ref().map(LocationName::as_str)
            ),
            ("p", Some("hq"))
        );
        let text = serde_json::to_string(&own).unwrap();
        assert!(text.ends_with(",\"location\":\"hq\"}"), "{text}");
        // Unknown: no field at all, as lines always were (evidence hashes them).
        let plain =
            serde_json::to_string(&ResultLine::exported(&record(0, Outcome::Up), None)).unwrap();
        assert!(!plain.contains("location"), "{plain}");
        assert_eq!(
            plain,
            serde_json::to_string(&ResultLine::from(&record(0, Outcome::Up))).unwrap()
        );
    }

    #[test]
    fn result_lines_serialize_in_the_spec_shape() {
        let line = ResultLine::from(&record(1_700_000_000, Outcome::Up));
        let text = serde_json::to_string(&line).unwrap();
        assert_eq!(
            text,
            r#"{"probe":"p","at":"2023-11-14T22:13:20Z","outcome":"up","latency_ms":12.5,"error_class":null,"detail":""}"#
        );
        let back: ResultLine = serde_json::from_str(&text).unwrap();
        assert_eq!(back, line);
    }

    /// A restarted daemon's trackers are those it held: rebuilt from ten days of results, raw
    /// or digested, at moments inside outages, transients and gaps, they equal a tracker fed
    /// every result.
    #[test]
    fn resumed_trackers_equal_trackers_fed_every_result() {
        let (_dir, config, ledger, records) =
            monthly::tests::web_with_ten_days("[daemon]\nledger = \"ledger\"\n");
        let spec = config.probe("web").unwrap();
        let moments: Vec<Timestamp> = (0..430)
            .map(|n| monthly::tests::ts(n * 2_003 + 17))
            .chain([monthly::tests::ts(12 * 86_400)])
            .collect();
        let expected = |now: Timestamp| {
            let mut tracker = Tracker::new(thresholds(spec));
            for record in records.iter().filter(|r| r.at <= now) {
                tracker.observe(&observation(record));
            }
            (tracker.state(), tracker.since(), tracker.pending_failures())
        };
        let resumed = |now: Timestamp| {
            let tracker = resume(&ledger, spec, now).unwrap();
            (tracker.state(), tracker.since(), tracker.pending_failures())
        };
        let mut states = std::collections::HashSet::new();
        for &now in &moments {
            assert_eq!(resumed(now), expected(now), "raw, as of {now}");
            states.insert(expected(now).0);
        }
        assert!(states.contains(&State::Down) && states.contains(&State::Up));
        ledger
            .digest_until(monthly::tests::ts(12 * 86_400), &|| true)
            .unwrap();
        for &now in &moments {
            assert_eq!(resumed(now), expected(now), "digested, as of {now}");
        }
    }
}
