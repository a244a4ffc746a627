//! The one task that owns ledger writes: it applies the sentinel rule, feeds each probe's state
//! machine, publishes live status, and appends results in group commits.
//!
//! A result is *written* only once the group commit holding it has been flushed; only then is
//! it logged as written and visible to queries (they take the read side of [`WriteGate`], the
//! commit holds the write side), so nothing a user saw is lost by `kill -9`.
//!
//! While the ledger refuses writes (a full disk), checks go on: results wait in a
//! [`HoldBuffer`] of at most [`MAX_HELD_RESULTS`] results or [`MAX_HELD_BYTES`], and the
//! recorder retries with backoff, each retry first asking the ledger to recover (reopen; see
//! `Ledger::recover`). Results that arrive while the buffer is full are *dropped* and counted.
//! Once a commit succeeds the held results are written first, oldest first. [`WriteHealth`]
//! tells `/healthz` how writes are going; the log says when writes start failing, how many
//! results were dropped (at most once per [`FAILURE_LOG_EVERY`]) and when writes resume.

use std::{
    collections::VecDeque,
    sync::{Arc, RwLock},
    time::Duration,
};

use jiff::Timestamp;
use serde::Serialize;
use tokio::{
    sync::{mpsc, watch},
    time::Instant,
};
use tracing::{debug, error, info, warn};

use super::{
    lag::LagHistogram,
    quorum::{LocationState, Quorums},
    schedule::Scheduled,
};
use crate::{
    alert::{self, Alerter, Event, Seen},
    config::Config,
    ledger::{
        Ledger, LedgerError, Marker, MarkerKind, NotedOutage, OutageNote, Recovery, ResultRecord,
        WriteOutage,
    },
    model::{NameMap, Outcome, ProbeName, State},
    query::{self, LastCheck, ProbeStatus, QueryError},
    threshold::Tracker,
};

/// How far one location's results may lag another's on a coordinator before the laggard
/// counts as unknown (beyond its probe's `stale_after`): agents publish in group commits
/// and NATS delivers in batches, so live results of different locations arrive seconds
/// apart. Reports judge each location's timeline on its own and need no slack.
const REPLICATION_SLACK: Duration = Duration::from_secs(60);

/// Longest a result waits for its group commit.
const COMMIT_WINDOW: Duration = Duration::from_millis(250);
/// Most results in one group commit.
const MAX_BATCH: usize = 4096;
/// Most results taken from the queue at once.
const RECEIVE_AT_ONCE: usize = 256;
/// First delay before retrying a failed commit; doubles up to [`MAX_RETRY_DELAY`].
const FIRST_RETRY_DELAY: Duration = Duration::from_millis(100);
const MAX_RETRY_DELAY: Duration = Duration::from_secs(10);

/// Most results held in memory while the ledger refuses writes; later ones are dropped. A
/// held result takes about 100 bytes plus its detail, so this is ~10–30 MB, and it covers
/// 50 minutes of 1,000 probes checked every 30 s (days for a few dozen probes).
pub const MAX_HELD_RESULTS: usize = 100_000;
/// Most bytes (as [`held_size`] estimates them) held in memory, whichever bound comes
/// first: long details must not make the bound on results a bound on nothing.
pub const MAX_HELD_BYTES: usize = 32 * 1024 * 1024;
/// While writes fail, the log repeats the state (held and dropped results) at most this
/// often.
pub const FAILURE_LOG_EVERY: Duration = Duration::from_secs(60);
/// How long a stop keeps retrying to write held results before giving up on them.
pub const STOP_PATIENCE: Duration = Duration::from_secs(10);
/// A group commit in flight longer than this counts as stuck: the watchdog is no longer
/// pinged (see [`WriteHealth::recording`]).
pub const COMMIT_STALL: Duration = Duration::from_secs(10);
/// While writes fail, the outage note is rewritten at most this often (and at each retry).
const NOTE_EVERY: Duration = Duration::from_secs(1);

/// Readers take the read side to see only flushed results; a group commit holds the write side
/// from its first write until its flush returns.
pub type WriteGate = Arc<RwLock<()>>;

/// Live status of every scheduled probe, for the socket and `status`.
pub type StatusBoard = Arc<RwLock<NameMap<ProbeStatus>>>;

/// Counters the daemon reports (systemd STATUS, logs).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    /// Results durably written since start.
    pub written: u64,
    /// Probes currently down.
    pub down: usize,
    /// Results dropped since start because the hold buffer was full (see [`HoldBuffer`]).
    pub dropped: u64,
    /// Results still held when the recorder stopped: the ledger refused them to the end.
    pub unwritten: u64,
}

/// How the recorder's writes are going, for `/healthz`: shared, updated by the recorder.
pub type WriteStatus = Arc<RwLock<WriteHealth>>;

/// A count of results and the check times of the first and last of them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Tally {
    /// How many.
    pub count: u64,
    /// Earliest and latest check time; `None` when `count` is 0.
    pub between: Option<(Timestamp, Timestamp)>,
}

impl Tally {
    /// Counts one result checked at `at`.
    pub fn add(&mut self, at: Timestamp) {
        self.count += 1;
        self.between = Some(match self.between {
            None => (at, at),
            Some((first, last)) => (first.min(at), last.max(at)),
        });
    }

    /// Both tallies in one.
    pub fn merged(self, other: Tally) -> Tally {
        let between = match (self.between, other.between) {
            (Some((a, b)), Some((c, d))) => Some((a.min(c), b.max(d))),
            (one, other) => one.or(other),
        };
        Tally {
            count: self.count + other.count,
            between,
        }
    }
}

impl std::fmt::Display for Tally {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.between {
            Some((first, last)) => write!(f, "{} (checked {first} → {last})", self.count),
            None => write!(f, "{}", self.count),
        }
    }
}

/// See [`WriteStatus`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct WriteHealth {
    /// Since when group commits fail; `None` while they succeed.
    pub failing_since: Option<Timestamp>,
    /// Why the last group commit failed, if the last one did.
    pub last_error: Option<String>,
    /// Results checked but not written yet (held in memory).
    pub pending_results: u64,
    /// Results dropped since start because the ledger refused writes for too long.
    pub dropped_results: u64,
    /// Times the ledger was reopened to recover from an I/O error, since start.
    pub reopened: u64,
    /// Results of the current write outage not written (yet): the held ones and those
    /// dropped since writes started failing. What a stop now would lose.
    pub unwritten: Tally,
    /// Since when the group commit under way runs; `None` between commits.
    #[serde(skip)]
    pub commit_since: Option<Instant>,
}

impl WriteHealth {
    /// Whether checks are being recorded: no commit is stuck (in flight for [`COMMIT_STALL`]
    /// or longer), and either writes work or, while the ledger refuses them, every result is
    /// still held for writing (none dropped yet). Only then is the systemd watchdog pinged, so
    /// that systemd restarts a daemon that can no longer record. A daemon holding results
    /// through a full disk is not stuck: restarting it would throw away what it holds.
    pub fn recording(&self, now: Instant) -> bool {
        let commits_finish = self
            .commit_since
            .is_none_or(|since| now.saturating_duration_since(since) < COMMIT_STALL);
        let nothing_dropped = self.unwritten.count <= self.pending_results;
        commits_finish && (self.failing_since.is_none() || nothing_dropped)
    }
}

/// Results checked and not yet written, oldest first, bounded by a number of results and an
/// estimate of their bytes. Beyond either bound new results are refused and counted as
/// dropped: the held ones stay in order, and keep the start of an outage, which reports and
/// incident reviews look at first.
#[derive(Debug)]
pub struct HoldBuffer {
    held: VecDeque<ResultRecord>,
    bytes: usize,
    max_results: usize,
    max_bytes: usize,
    dropped: u64,
}

/// What a held result costs in memory, roughly: the record and its detail (a probe's name is
/// shared).
pub fn held_size(record: &ResultRecord) -> usize {
    std::mem::size_of::<ResultRecord>() + record.detail.len()
}

impl HoldBuffer {
    /// An empty buffer holding at most `max_results` results and `max_bytes` bytes.
    pub fn new(max_results: usize, max_bytes: usize) -> HoldBuffer {
        HoldBuffer {
            held: VecDeque::new(),
            bytes: 0,
            max_results,
            max_bytes,
            dropped: 0,
        }
    }

    /// Holds `record` after the others, or drops it (and counts it) when full; returns
    /// whether it is held.
    pub fn push(&mut self, record: ResultRecord) -> bool {
        let size = held_size(&record);
        if self.held.len() >= self.max_results || self.bytes + size > self.max_bytes {
            self.dropped += 1;
            return false;
        }
        self.bytes += size;
        self.held.push_back(record);
        true
    }

    /// Takes the oldest `n` results (or all there are) out, oldest first, to write them.
    pub fn take(&mut self, n: usize) -> Vec<ResultRecord> {
        let n = n.min(self.held.len());
        let taken: Vec<ResultRecord> = self.held.drain(..n).collect();
        self.bytes -= taken.iter().map(held_size).sum::<usize>();
        taken
    }

    /// Puts results taken by [`Self::take`] and not written back in front, in their order;
    /// they were held before, so the bounds do not apply to them.
    pub fn put_back(&mut self, batch: Vec<ResultRecord>) {
        self.bytes += batch.iter().map(held_size).sum::<usize>();
        for record in batch.into_iter().rev() {
            self.held.push_front(record);
        }
    }

    /// Results held.
    pub fn len(&self) -> usize {
        self.held.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
    }

    /// Results dropped since the buffer was made.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// The held results as a [`Tally`].
    pub fn tally(&self) -> Tally {
        let mut tally = Tally::default();
        if let (Some(first), Some(last)) = (
            self.held.iter().map(|r| r.at).min(),
            self.held.iter().map(|r| r.at).max(),
        ) {
            tally.count = self.held.len() as u64;
            tally.between = Some((first, last));
        }
        tally
    }
}

/// Why writes fail, while they do: for the backoff and for a log that says enough without
/// flooding.
struct Failing {
    since: Timestamp,
    /// The next retry.
    retry_at: Instant,
    delay: Duration,
    /// When the state was last logged, and the dropped count then.
    logged_at: Instant,
    dropped_logged: u64,
    /// When the outage note was last written.
    noted_at: Option<Instant>,
}

/// State the recorder shares with the rest of the daemon.
#[derive(Clone)]
pub struct Shared {
    /// The ledger.
    pub ledger: Arc<Ledger>,
    /// See [`WriteGate`].
    pub gate: WriteGate,
    /// See [`StatusBoard`].
    pub board: StatusBoard,
    /// Notified when alerts are stored in the outbox, to wake their delivery.
    pub alerts: Arc<tokio::sync::Notify>,
    /// How late checks started, for `/metrics`.
    pub lag: Arc<LagHistogram>,
    /// See [`WriteStatus`].
    pub writes: WriteStatus,
    /// The evidence log's signing key and writers' lock.
    pub evidence: Arc<crate::evidence::keeper::Keeper>,
    /// Notified when a checkpoint was signed, to send it to the witnesses (see `cosigning`).
    pub checkpoints: Arc<tokio::sync::Notify>,
    /// The cosigner of `[witness]` (see `witnessing`).
    pub witness: Arc<super::witnessing::WitnessDesk>,
    /// Notified after each group commit, to wake the replication publisher.
    pub written: Arc<tokio::sync::Notify>,
}

/// The recorder task's state.
pub struct Recorder {
    shared: Shared,
    config: watch::Receiver<Arc<Config>>,
    counts: watch::Sender<Counts>,
    trackers: NameMap<Tracker>,
    /// A coordinator's located probes' quorum states (see `quorum`).
    quorums: Quorums,
    /// When each location series last had a result: a location whose results stop
    /// arriving counts as unknown once it lags by `stale_after` and [`REPLICATION_SLACK`].
    last_seen: NameMap<Timestamp>,
    /// A coordinator's location series, by series name (`web@fra1` → `web`, `fra1`), and
    /// each located probe's series in the order of its `locations`: made at each
    /// configuration, so a result costs lookups, not names built anew.
    series: NameMap<(ProbeName, crate::model::LocationName)>,
    located: NameMap<Vec<ProbeName>>,
    /// Whether the sentinel's newest result was a failure.
    monitor_offline: bool,
    alerter: Alerter,
    /// Alerts raised by results not written yet; stored with the next commit, before them.
    events: Vec<Event>,
    /// Results not written yet.
    held: HoldBuffer,
    /// Set while group commits fail.
    failing: Option<Failing>,
    /// Whether the first dropped result of this outage was logged.
    drop_warned: bool,
    /// Times the ledger was reopened.
    reopened: u64,
    /// Results dropped since writes started failing (reset when the outage is recorded).
    outage_dropped: Tally,
    /// A write outage over, to record as a marker after the next commit that works.
    outage_over: Option<Marker>,
    /// Where outages are noted while the ledger cannot write (see `ledger::OutageNote`);
    /// `None` if it could not be created.
    note: Option<Arc<OutageNote>>,
}

impl Recorder {
    /// A recorder whose state machines are rebuilt from the ledger ([`query::resume`]), exactly
    /// as they stood, so a restart neither forgets an outage, nor moves its start, nor invents
    /// a new one.
    pub fn new(
        shared: Shared,
        config: watch::Receiver<Arc<Config>>,
        counts: watch::Sender<Counts>,
        note: Option<Arc<OutageNote>>,
    ) -> Result<Self, LedgerError> {
        let mut recorder = Recorder {
            shared,
            config,
            counts,
            trackers: NameMap::default(),
            quorums: Quorums::default(),
            last_seen: NameMap::default(),
            series: NameMap::default(),
            located: NameMap::default(),
            monitor_offline: false,
            alerter: Alerter::default(),
            events: Vec::new(),
            held: HoldBuffer::new(MAX_HELD_RESULTS, MAX_HELD_BYTES),
            failing: None,
            drop_warned: false,
            reopened: 0,
            outage_dropped: Tally::default(),
            outage_over: None,
            note,
        };
        let config = Arc::clone(&recorder.config.borrow());
        recorder.sync_with(&config)?;
        Ok(recorder)
    }

    /// Adds trackers for new probes (replayed from the ledger), updates thresholds of kept
    /// ones and forgets removed ones.
    fn sync_with(&mut self, config: &Config) -> Result<(), LedgerError> {
        let now = Timestamp::now();
        self.trackers.retain(|name, _| match name.split_location() {
            None => config.probe_by_name(name).is_some_and(|p| p.enabled),
            Some((probe, location)) => located_spec(config, &probe, &location).is_some(),
        });
        self.series.clear();
        self.located.clear();
        self.quorums.retain(|name| {
            config.is_coordinator()
                && config
                    .probe_by_name(name)
                    .is_some_and(|p| p.enabled && !p.locations.is_empty())
        });
        let previous = self
            .shared
            .board
            .write()
            .map(|mut board| std::mem::take(&mut *board))
            .unwrap_or_default();
        let mut board = NameMap::with_capacity_and_hasher(config.probes.len(), Default::default());
        for spec in config.probes.iter().filter(|p| p.enabled) {
            if config.is_coordinator() && !spec.locations.is_empty() {
                self.sync_located(spec, &previous, &mut board, now)?;
                continue;
            }
            match self.trackers.get_mut(&spec.name) {
                Some(tracker) => tracker.set_thresholds(query::thresholds(spec)),
                None => {
                    let tracker =
                        query::resume(&self.shared.ledger, spec, now).map_err(|e| match e {
                            QueryError::Ledger(e) => e,
                            other => LedgerError::sink(other.to_string()),
                        })?;
                    if config.daemon.sentinel.as_ref() != Some(&spec.name) {
                        self.alerter.resume(&spec.name, tracker.state(), now);
                    }
                    self.trackers.insert(spec.name.clone(), tracker);
                    let records = self.shared.ledger.last_results(&spec.name, 1)?;
                    let last = records.last().map(LastCheck::from);
                    let status =
                        query::probe_status(spec, self.trackers.get(&spec.name), last, now);
                    board.insert(spec.name.clone(), status);
                    continue;
                }
            }
            let kept = previous.get(&spec.name);
            let last = kept.and_then(|status| status.last.clone());
            let mut status = query::probe_status(spec, self.trackers.get(&spec.name), last, now);
            carry_counts(&mut status, kept);
            board.insert(spec.name.clone(), status);
        }
        if let Ok(mut shared) = self.shared.board.write() {
            *shared = board;
        }
        Ok(())
    }

    /// A coordinator's located probe: a tracker per location series (resumed from the
    /// ledger like any probe's), the quorum state from them, and board entries for both.
    fn sync_located(
        &mut self,
        spec: &crate::config::ProbeSpec,
        previous: &NameMap<ProbeStatus>,
        board: &mut NameMap<ProbeStatus>,
        now: Timestamp,
    ) -> Result<(), LedgerError> {
        let mut newest: Option<LastCheck> = None;
        let mut all_series = Vec::with_capacity(spec.locations.len());
        for location in &spec.locations {
            let series = spec.name.at_location(location);
            self.series
                .insert(series.clone(), (spec.name.clone(), location.clone()));
            all_series.push(series.clone());
            let series_spec = query::locations::series_spec(spec, &series);
            if let Some(tracker) = self.trackers.get_mut(&series) {
                tracker.set_thresholds(query::thresholds(spec));
            } else {
                let tracker =
                    query::resume(&self.shared.ledger, &series_spec, now).map_err(|e| match e {
                        QueryError::Ledger(e) => e,
                        other => LedgerError::sink(other.to_string()),
                    })?;
                self.trackers.insert(series.clone(), tracker);
            }
            let last = match previous.get(&series).and_then(|s| s.last.clone()) {
                Some(last) => Some(last),
                None => self
                    .shared
                    .ledger
                    .last_results(&series, 1)?
                    .last()
                    .map(LastCheck::from),
            };
            if let Some(last) = &last {
                self.last_seen.insert(series.clone(), last.at);
                if newest.as_ref().is_none_or(|n| n.at < last.at) {
                    newest = Some(last.clone());
                }
            }
            let mut status =
                query::probe_status(&series_spec, self.trackers.get(&series), last, now);
            carry_counts(&mut status, previous.get(&series));
            board.insert(series, status);
        }
        self.located.insert(spec.name.clone(), all_series);
        if self.quorums.state(&spec.name).is_none() {
            // New here (a start, or a probe added by a reload): its state as the ledger
            // leaves it, without alerting what was alerted before.
            let states = self.location_states(spec, now);
            self.quorums.resume(&spec.name, &states, spec.quorum);
            if let Some((state, _)) = self.quorums.state(&spec.name) {
                self.alerter.resume(&spec.name, state, now);
            }
        }
        let mut status = query::probe_status(spec, None, newest, now);
        if let Some((state, since)) = self.quorums.state(&spec.name) {
            status.state = state;
            status.since = since;
        }
        carry_counts(&mut status, previous.get(&spec.name));
        board.insert(spec.name.clone(), status);
        Ok(())
    }

    /// Each of `spec`'s locations' states as the quorum counts them at `now`.
    fn location_states(
        &self,
        spec: &crate::config::ProbeSpec,
        now: Timestamp,
    ) -> Vec<LocationState> {
        let series_names = self.located.get(&spec.name).map_or(&[][..], Vec::as_slice);
        series_names
            .iter()
            .map(|series| {
                // Locations' results arrive in batches, one location's ahead of another's:
                // a location is behind, not gone, until it lags by more than the slack.
                let fresh = self.last_seen.get(series).is_some_and(|at| {
                    Duration::try_from(now.duration_since(*at))
                        .map_or(true, |age| age <= spec.stale_after + REPLICATION_SLACK)
                });
                match self.trackers.get(series) {
                    Some(tracker) if fresh => LocationState {
                        state: tracker.state(),
                        since: tracker.since(),
                    },
                    _ => LocationState {
                        state: State::Unknown,
                        since: None,
                    },
                }
            })
            .collect()
    }

    /// A coordinator's results from its agents, already durable in the ledger: each goes
    /// through its location's state machine, then its probe's quorum is evaluated, and the
    /// alerts that raises are stored at once (no group commit of this daemon's own may
    /// follow soon).
    async fn observe_replicated(&mut self, records: Vec<ResultRecord>) {
        let config = Arc::clone(&self.config.borrow());
        for record in &records {
            let Some((probe, location)) = self.series.get(&record.probe).cloned() else {
                continue;
            };
            let Some(spec) = located_spec(&config, &probe, &location) else {
                continue;
            };
            let transition = self
                .trackers
                .get_mut(&record.probe)
                .and_then(|tracker| tracker.observe(&query::observation(record)));
            if let Some(t) = &transition {
                info!(probe = %probe, %location, from = %t.from, to = %t.to, since = %t.since, "location state changed");
            }
            let seen_at = self
                .last_seen
                .entry(record.probe.clone())
                .or_insert(record.at);
            *seen_at = (*seen_at).max(record.at);
            let last = LastCheck::from(record);
            // Judged at the result's own time: a backlog drained late is judged as it
            // happened, not as stale.
            let states = self.location_states(spec, record.at);
            let verdict = self
                .quorums
                .evaluate(spec, &states, transition.as_ref(), record.at);
            if let Some(t) = &verdict {
                warn!(probe = %probe, from = %t.from, to = %t.to, since = %t.since, quorum = spec.quorum, locations = spec.locations.len(), "quorum state changed");
            }
            let (state, since) = self.quorums.state(&probe).unwrap_or((State::Unknown, None));
            let result = crate::model::CheckResult {
                probe: probe.clone(),
                at: record.at,
                latency: record.latency,
                outcome: record.outcome,
                error_class: record.error_class,
                detail: record.detail.clone(),
                cert: None,
            };
            let seen = Seen {
                spec,
                is_sentinel: false,
                result: &result,
                transition: verdict.as_ref(),
                state: (state, since),
            };
            let raised = self.alerter.observe(seen, Timestamp::now());
            self.events.extend(raised);
            if let Ok(mut board) = self.shared.board.write() {
                if let Some(status) = board.get_mut(&record.probe) {
                    query::update_status(status, self.trackers.get(&record.probe), last.clone());
                    status.tally.record(record.outcome, record.latency, None);
                }
                if let Some(status) = board.get_mut(&probe) {
                    status.state = state;
                    status.since = since;
                    status.last = Some(last);
                    status.checks_since_start += 1;
                }
            }
        }
        if self.events.is_empty() {
            return;
        }
        let mut events = std::mem::take(&mut self.events);
        let shared = self.shared.clone();
        let queued = tokio::task::spawn_blocking(move || {
            alert::queue(&config, &shared.ledger, &mut events, Timestamp::now())
                .map_err(|e| (e, events))
        })
        .await;
        match queued {
            Ok(Ok(_)) => self.shared.alerts.notify_one(),
            Ok(Err((e, events))) => {
                warn!(error = %e, "cannot store alerts yet; they go with the next commit");
                self.events.splice(0..0, events);
            }
            Err(e) => error!(error = %e, "alert writer failed"),
        }
    }

    /// Runs until every sender of `results` is gone, then commits what is left. `observed`
    /// brings a coordinator's results from its agents (see `replicate::coordinator`).
    pub async fn run(
        mut self,
        mut results: mpsc::Receiver<Scheduled>,
        mut observed: mpsc::Receiver<Vec<ResultRecord>>,
    ) {
        // Results are taken from the queue as many as are there, not one per wakeup: checks
        // finish in bursts (see `schedule::PHASE_SLOT`).
        let mut received: Vec<Scheduled> = Vec::with_capacity(RECEIVE_AT_ONCE);
        let mut open = true;
        while open {
            open = match &self.failing {
                None => {
                    self.gather(&mut results, &mut observed, &mut received)
                        .await
                }
                Some(failing) => {
                    let retry_at = failing.retry_at;
                    self.hold_until(retry_at, &mut results, &mut observed, &mut received)
                        .await
                }
            };
            self.write_held().await;
        }
        self.write_before_stop().await;
    }

    /// Waits for results and gathers them for a group commit: for [`COMMIT_WINDOW`] after
    /// the first, or until [`MAX_BATCH`] are held. Returns whether more results can come.
    async fn gather(
        &mut self,
        results: &mut mpsc::Receiver<Scheduled>,
        observed: &mut mpsc::Receiver<Vec<ResultRecord>>,
        received: &mut Vec<Scheduled>,
    ) -> bool {
        loop {
            tokio::select! {
                count = results.recv_many(received, RECEIVE_AT_ONCE) => {
                    if count == 0 {
                        return false;
                    }
                    break;
                }
                Some(records) = observed.recv() => self.observe_replicated(records).await,
                changed = self.config.changed() => self.reload(changed.is_ok()),
            }
        }
        self.process_all(received);
        let window = tokio::time::sleep(COMMIT_WINDOW);
        tokio::pin!(window);
        while self.held.len() < MAX_BATCH {
            let room = (MAX_BATCH - self.held.len()).min(RECEIVE_AT_ONCE);
            tokio::select! {
                count = results.recv_many(received, room) => {
                    if count == 0 {
                        return false;
                    }
                    self.process_all(received);
                }
                () = &mut window => break,
            }
        }
        true
    }

    /// While writes fail: takes results into the hold buffer until `retry_at`. Returns
    /// whether more results can come.
    async fn hold_until(
        &mut self,
        retry_at: Instant,
        results: &mut mpsc::Receiver<Scheduled>,
        observed: &mut mpsc::Receiver<Vec<ResultRecord>>,
        received: &mut Vec<Scheduled>,
    ) -> bool {
        let retry = tokio::time::sleep_until(retry_at);
        tokio::pin!(retry);
        loop {
            tokio::select! {
                count = results.recv_many(received, RECEIVE_AT_ONCE) => {
                    if count == 0 {
                        return false;
                    }
                    self.process_all(received);
                    self.log_failing();
                }
                Some(records) = observed.recv() => self.observe_replicated(records).await,
                changed = self.config.changed() => self.reload(changed.is_ok()),
                () = &mut retry => return true,
            }
        }
    }

    /// Rebuilds the probe states after a configuration change.
    fn reload(&mut self, changed: bool) {
        if changed {
            let config = Arc::clone(&self.config.borrow_and_update());
            if let Err(e) = self.sync_with(&config) {
                error!(error = %e, "cannot rebuild probe states after reload");
            }
        }
    }

    /// Writes held results in group commits, oldest first, until none is left or a commit
    /// fails (then the next attempt is scheduled).
    async fn write_held(&mut self) {
        while !self.held.is_empty() {
            if !self.commit().await {
                break;
            }
        }
        if self.failing.is_none() {
            self.record_outage_over().await;
        }
        self.publish();
    }

    /// Records the write outage that just ended as a marker (with the results it lost), and
    /// blanks the outage note; if the marker cannot be written, tries after the next commit.
    async fn record_outage_over(&mut self) {
        let Some(marker) = self.outage_over else {
            return;
        };
        let ledger = Arc::clone(&self.shared.ledger);
        let note = self.note.clone();
        let recorded = tokio::task::spawn_blocking(move || {
            ledger.record_marker(marker)?;
            note.map_or(Ok(()), |note| note.clear())
        })
        .await;
        match recorded {
            Ok(Ok(())) => self.outage_over = None,
            Ok(Err(e)) => warn!(error = %e, "cannot record the write outage yet"),
            Err(e) => warn!(error = %e, "cannot record the write outage yet"),
        }
    }

    /// Notes the current outage in the outage note (what a kill now would lose), at most
    /// once per [`NOTE_EVERY`] unless `stopped`.
    async fn note_outage(&mut self, stopped: bool) {
        let Some(note) = self.note.clone() else {
            return;
        };
        let unwritten = self.unwritten();
        let Some(failing) = &mut self.failing else {
            return;
        };
        let now = Instant::now();
        if !stopped && failing.noted_at.is_some_and(|at| now - at < NOTE_EVERY) {
            return;
        }
        failing.noted_at = Some(now);
        let noted = NotedOutage {
            since: unwritten
                .between
                .map_or(failing.since, |(first, _)| first.min(failing.since)),
            outage: WriteOutage {
                until: Timestamp::now(),
                lost: unwritten.count,
                lost_between: unwritten.between,
            },
            stopped,
        };
        let written = tokio::task::spawn_blocking(move || note.write(&noted)).await;
        match written {
            Ok(Ok(())) => {}
            Ok(Err(e)) => debug!(error = %e, "cannot note the write outage"),
            Err(e) => debug!(error = %e, "cannot note the write outage"),
        }
    }

    /// What a stop now would lose: held results and those dropped in this outage.
    fn unwritten(&self) -> Tally {
        self.outage_dropped.merged(self.held.tally())
    }

    /// At the end: writes what is held, retrying for up to [`STOP_PATIENCE`] if writes fail.
    async fn write_before_stop(&mut self) {
        let give_up = Instant::now() + STOP_PATIENCE;
        self.write_held().await;
        while !self.held.is_empty() {
            let Some(retry_at) = self.failing.as_ref().map(|f| f.retry_at) else {
                break;
            };
            if retry_at > give_up {
                break;
            }
            tokio::time::sleep_until(retry_at).await;
            self.write_held().await;
        }
        if self.failing.is_some() {
            let lost = self.unwritten();
            self.note_outage(true).await;
            error!(
                lost = lost.count,
                first = ?lost.between.map(|(first, _)| first),
                last = ?lost.between.map(|(_, last)| last),
                "stopping while the ledger refuses writes: results lost: {lost}"
            );
        }
        self.publish();
        let unwritten = self.held.len() as u64;
        self.counts.send_modify(|c| c.unwritten = unwritten);
    }

    fn process_all(&mut self, received: &mut Vec<Scheduled>) {
        for scheduled in received.drain(..) {
            let record = self.process(scheduled);
            let at = record.at;
            let held = self.held.push(record);
            if !held {
                self.outage_dropped.add(at);
            }
            if !held && !self.drop_warned {
                // The first drop of an outage is logged at once; later ones by `log_failing`.
                self.drop_warned = true;
                warn!(
                    held = self.held.len(),
                    max_results = MAX_HELD_RESULTS,
                    max_bytes = MAX_HELD_BYTES,
                    "the ledger refuses writes and the hold buffer is full: dropping new results"
                );
            }
        }
        self.publish();
    }

    /// Applies the sentinel rule, feeds the state machine and the status board.
    fn process(&mut self, scheduled: Scheduled) -> ResultRecord {
        let mut record = ResultRecord::from(&scheduled.result);
        let config = Arc::clone(&self.config.borrow());
        let sentinel = config.daemon.sentinel.as_ref();
        if sentinel == Some(&record.probe) {
            let offline = record.outcome == Outcome::Down;
            if offline != self.monitor_offline {
                if offline {
                    warn!(sentinel = %record.probe, detail = %record.detail, "monitor offline: failures of other probes are recorded as unknown");
                } else {
                    info!(sentinel = %record.probe, "monitor back online");
                }
            }
            self.monitor_offline = offline;
        } else if self.monitor_offline && record.outcome == Outcome::Down {
            // The monitor's own outage must not be billed to the target (SPEC §3).
            record.outcome = Outcome::Unknown;
            record.detail = format!(
                "monitor offline (sentinel {} down): {}",
                sentinel.map(ProbeName::as_str).unwrap_or("?"),
                record.detail
            );
        }
        let lag = scheduled
            .started
            .saturating_duration_since(scheduled.planned);
        self.shared.lag.record(lag);
        if lag > Duration::from_secs(1) {
            debug!(probe = %record.probe, lag_ms = lag.as_millis() as u64, "check started late");
        }
        let transition = self
            .trackers
            .get_mut(&record.probe)
            .and_then(|tracker| tracker.observe(&query::observation(&record)));
        if let Some(t) = &transition {
            match &t.cause {
                Some((class, detail)) => warn!(
                    probe = %record.probe, from = %t.from, to = %t.to, since = %t.since,
                    class = %class, detail = %detail, "state changed"
                ),
                None => info!(
                    probe = %record.probe, from = %t.from, to = %t.to, since = %t.since,
                    "state changed"
                ),
            }
        }
        if let Some(spec) = config.probe_by_name(&record.probe) {
            let tracker = self.trackers.get(&record.probe);
            let seen = Seen {
                spec,
                is_sentinel: sentinel == Some(&record.probe),
                result: &scheduled.result,
                transition: transition.as_ref(),
                state: tracker.map_or((State::Unknown, None), |t| (t.state(), t.since())),
            };
            let raised = self.alerter.observe(seen, Timestamp::now());
            self.events.extend(raised);
            let last = LastCheck::from(&record);
            let cert = scheduled.result.cert.as_ref();
            if let Ok(mut board) = self.shared.board.write() {
                match board.get_mut(&record.probe) {
                    // In place: no new name strings per result.
                    Some(status) => {
                        query::update_status(status, tracker, last);
                        status.tally.record(record.outcome, record.latency, cert);
                    }
                    None => {
                        let mut status =
                            query::probe_status(spec, tracker, Some(last), Timestamp::now());
                        status.tally.record(record.outcome, record.latency, cert);
                        board.insert(record.probe.clone(), status);
                    }
                }
            }
        }
        record
    }

    /// One group commit of the oldest held results (with the alerts not stored yet, first).
    /// Returns whether it succeeded; on failure the results stay held, in order, and the
    /// next attempt is scheduled with backoff.
    async fn commit(&mut self) -> bool {
        let records = Arc::new(self.held.take(MAX_BATCH));
        // Alerts are stored before the results that raised them: once the results are
        // written, a restart replays the state and would not raise them again.
        let mut to_queue = std::mem::take(&mut self.events);
        let alerting = !to_queue.is_empty();
        let retrying = self.failing.is_some();
        let shared = self.shared.clone();
        let to_write = Arc::clone(&records);
        let config = Arc::clone(&self.config.borrow());
        if let Ok(mut health) = self.shared.writes.write() {
            health.commit_since = Some(Instant::now());
        }
        let written = tokio::task::spawn_blocking(move || {
            let mut reopened = false;
            if retrying {
                // No query runs meanwhile: none holds on to the spent opening.
                let _exclusive = shared.gate.write().unwrap_or_else(|p| p.into_inner());
                reopened = shared
                    .ledger
                    .recover()
                    .map_err(|e| (e, std::mem::take(&mut to_queue)))?
                    == Recovery::Reopened;
            }
            if !to_queue.is_empty() {
                alert::queue(&config, &shared.ledger, &mut to_queue, Timestamp::now())
                    .map_err(|e| (e, std::mem::take(&mut to_queue)))?;
            }
            let _exclusive = shared.gate.write().unwrap_or_else(|p| p.into_inner());
            shared
                .ledger
                .append(&to_write)
                .map(|()| reopened)
                .map_err(|e| (e, Vec::new()))
        })
        .await;
        if let Ok(mut health) = self.shared.writes.write() {
            health.commit_since = None;
        }
        let records = Arc::try_unwrap(records).unwrap_or_else(|shared| (*shared).clone());
        let failure = match written {
            Ok(Ok(reopened)) => {
                if reopened {
                    self.reopened += 1;
                    info!("ledger reopened after a write error");
                }
                None
            }
            Ok(Err((e, unqueued))) => {
                // Alerts not stored yet go with the retry; stored ones never twice.
                self.events.splice(0..0, unqueued);
                Some(e.to_string())
            }
            Err(e) => Some(format!("ledger writer failed: {e}")),
        };
        if let Some(reason) = failure {
            self.held.put_back(records);
            self.failed(reason);
            self.note_outage(false).await;
            return false;
        }
        if alerting {
            self.shared.alerts.notify_one();
        }
        self.shared.written.notify_one();
        if let Some(failing) = self.failing.take() {
            // Writes resume: this was the first commit that worked.
            self.drop_warned = false;
            info!(
                since = %failing.since,
                still_held = self.held.len(),
                dropped = self.held.dropped(),
                "the ledger takes writes again; writing held results first"
            );
            if let Ok(mut health) = self.shared.writes.write() {
                health.failing_since = None;
                health.last_error = None;
            }
            let lost = std::mem::take(&mut self.outage_dropped);
            let since = lost
                .between
                .map_or(failing.since, |(first, _)| first.min(failing.since));
            if lost.count > 0 {
                warn!(
                    lost = lost.count,
                    since = %since,
                    "results lost: {lost}, cause: the ledger could not write"
                );
            }
            self.outage_over = Some(Marker {
                at: since,
                kind: MarkerKind::WritesFailed(WriteOutage {
                    until: Timestamp::now(),
                    lost: lost.count,
                    lost_between: lost.between,
                }),
            });
        }
        let newest = records.iter().map(|r| r.at).max();
        debug!(results = records.len(), newest = ?newest, "written");
        let down = self
            .trackers
            .values()
            .filter(|t| t.state() == crate::model::State::Down)
            .count();
        let dropped = self.held.dropped();
        self.counts.send_modify(|c| {
            c.written += records.len() as u64;
            c.down = down;
            c.dropped = dropped;
        });
        true
    }

    /// Notes a failed commit: schedules the retry, logs when writes start failing.
    fn failed(&mut self, reason: String) {
        let now = Instant::now();
        match &mut self.failing {
            None => {
                warn!(
                    error = %reason,
                    held = self.held.len(),
                    retry_in = ?FIRST_RETRY_DELAY,
                    "cannot write results; holding them in memory and retrying"
                );
                self.failing = Some(Failing {
                    since: Timestamp::now(),
                    retry_at: now + FIRST_RETRY_DELAY,
                    delay: FIRST_RETRY_DELAY,
                    logged_at: now,
                    dropped_logged: self.held.dropped(),
                    noted_at: None,
                });
            }
            Some(failing) => {
                failing.delay = (failing.delay * 2).min(MAX_RETRY_DELAY);
                failing.retry_at = now + failing.delay;
                debug!(error = %reason, retry_in = ?failing.delay, "cannot write results yet");
            }
        }
        if let Ok(mut health) = self.shared.writes.write() {
            health.failing_since = self.failing.as_ref().map(|f| f.since);
            health.last_error = Some(reason);
        }
        self.log_failing();
    }

    /// While writes fail, says so again with the held and dropped counts, at most once per
    /// [`FAILURE_LOG_EVERY`].
    fn log_failing(&mut self) {
        let dropped = self.held.dropped();
        let held = self.held.len();
        let Some(failing) = &mut self.failing else {
            return;
        };
        if failing.logged_at.elapsed() < FAILURE_LOG_EVERY {
            return;
        }
        warn!(
            since = %failing.since,
            held,
            dropped_since_last = dropped - failing.dropped_logged,
            dropped,
            "the ledger still refuses writes"
        );
        failing.logged_at = Instant::now();
        failing.dropped_logged = dropped;
    }

    /// Tells `/healthz` how many results are held and dropped.
    fn publish(&self) {
        let unwritten = if self.failing.is_some() || self.outage_dropped.count > 0 {
            self.unwritten()
        } else {
            Tally::default()
        };
        if let Ok(mut health) = self.shared.writes.write() {
            health.pending_results = self.held.len() as u64;
            health.dropped_results = self.held.dropped();
            health.reopened = self.reopened;
            health.unwritten = unwritten;
        }
    }
}

/// Keeps the counts a status gathered since the start across a rebuild of the board.
fn carry_counts(status: &mut ProbeStatus, kept: Option<&ProbeStatus>) {
    status.checks_since_start = kept.map_or(0, |kept| kept.checks_since_start);
    status.tally = kept.map(|kept| kept.tally).unwrap_or_default();
}

/// The probe whose location series `probe@location` is, when this daemon evaluates it: a
/// coordinator's enabled probe that lists the location.
fn located_spec<'c>(
    config: &'c Config,
    probe: &ProbeName,
    location: &crate::model::LocationName,
) -> Option<&'c crate::config::ProbeSpec> {
    config
        .probe_by_name(probe)
        .filter(|spec| config.is_coordinator() && spec.enabled && spec.locations.contains(location))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Outcome;

    fn record(n: i64, detail: &str) -> ResultRecord {
        ResultRecord {
            probe: ProbeName::new("api").unwrap(),
            at: Timestamp::from_second(1_793_491_200 + n).unwrap(),
            latency: Duration::from_millis(3),
            outcome: Outcome::Up,
            error_class: None,
            detail: detail.to_owned(),
        }
    }

    fn seconds(records: &[ResultRecord]) -> Vec<i64> {
        records
            .iter()
            .map(|r| r.at.as_second() - 1_793_491_200)
            .collect()
    }

    #[test]
    fn the_hold_buffer_keeps_the_oldest_results_and_counts_what_it_drops() {
        let mut held = HoldBuffer::new(3, usize::MAX);
        let pushed: Vec<bool> = (0..5).map(|n| held.push(record(n, ""))).collect();
        assert_eq!(pushed, [true, true, true, false, false]);
        assert_eq!((held.len(), held.dropped()), (3, 2));
        assert_eq!(seconds(&held.take(10)), [0, 1, 2]);
        assert!(held.is_empty());
        // Room again once written.
        assert!(held.push(record(5, "")));
        assert_eq!(held.dropped(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn the_watchdog_counts_as_recording_only_while_results_are_kept_and_commits_finish() {
        let mut health = WriteHealth::default();
        assert!(health.recording(Instant::now()), "idle, nothing to write");
        health.commit_since = Some(Instant::now());
        tokio::time::advance(COMMIT_STALL - Duration::from_millis(1)).await;
        assert!(health.recording(Instant::now()), "a commit under way");
        tokio::time::advance(Duration::from_millis(1)).await;
        assert!(!health.recording(Instant::now()), "a commit stuck");
        health.commit_since = None;
        health.failing_since = Some(Timestamp::now());
        health.pending_results = 2;
        health.unwritten.add(Timestamp::now());
        health.unwritten.add(Timestamp::now());
        assert!(
            health.recording(Instant::now()),
            "writes failing, every result held"
        );
        health.unwritten.add(Timestamp::now());
        assert!(
            !health.recording(Instant::now()),
            "writes failing, a result dropped"
        );
    }

    #[test]
    fn lost_results_are_counted_with_their_first_and_last_check_time() {
        let mut dropped = Tally::default();
        dropped.add(record(50, "").at);
        dropped.add(record(40, "").at);
        let mut held = HoldBuffer::new(10, usize::MAX);
        for n in [60, 55, 70] {
            held.push(record(n, ""));
        }
        let lost = dropped.merged(held.tally());
        assert_eq!(lost.count, 5);
        assert_eq!(lost.between, Some((record(40, "").at, record(70, "").at)));
        assert_eq!(Tally::default().merged(Tally::default()), Tally::default());
    }

    #[test]
    fn the_hold_buffer_is_bounded_by_bytes_too() {
        let long = "x".repeat(1_000);
        let size = held_size(&record(0, &long));
        let mut held = HoldBuffer::new(100, 2 * size + size / 2);
        assert!(held.push(record(0, &long)));
        assert!(held.push(record(1, &long)));
        assert!(
            !held.push(record(2, &long)),
            "a third long result is too much"
        );
        assert!(held.push(record(3, "")), "a short one still fits");
        assert_eq!((held.len(), held.dropped()), (3, 1));
        assert_eq!(held.bytes, 2 * size + held_size(&record(3, "")));
    }

    #[test]
    fn results_put_back_after_a_failed_commit_stay_first_and_in_order() {
        let mut held = HoldBuffer::new(5, usize::MAX);
        for n in 0..5 {
            held.push(record(n, "detail"));
        }
        let bytes = held.bytes;
        let batch = held.take(3);
        assert_eq!(seconds(&batch), [0, 1, 2]);
        // Meanwhile the freed room takes new results.
        for n in 5..8 {
            assert!(held.push(record(n, "detail")));
        }
        assert!(!held.push(record(8, "detail")));
        held.put_back(batch);
        // Beyond the bound now, but nothing held is ever dropped.
        assert_eq!(held.len(), 8);
        assert_eq!(held.bytes, bytes + 3 * held_size(&record(5, "detail")));
        assert_eq!(seconds(&held.take(100)), [0, 1, 2, 3, 4, 5, 6, 7]);
        assert_eq!((held.bytes, held.dropped()), (0, 1));
    }
}
