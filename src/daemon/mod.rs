//! The long-running daemon: scheduler, the single ledger writer, reload, lifecycle and systemd
//! notification. May use `model`, `config`, `probe`, `threshold`, `ledger`, `query`,
//! `render`, `alert` and `evidence`.
//!
//! Shape (after mini-redis): [`Daemon::start`] opens the ledger and arms every probe;
//! [`Daemon::run`] waits for signals — SIGHUP reloads, SIGTERM/SIGINT (or the shutdown token)
//! stop scheduling, let checks in flight finish, commit what is left and record a stop marker.
//!
//! A stop is bounded in every state ([`STOP_DEADLINE`]): each step has its share of it, and a
//! step that does not finish in time (a ledger that cannot write, a hung check) is left behind
//! with a log line saying what was not written.

pub mod clock;
mod closing;
pub mod cosigning;
pub mod lag;
pub mod memory;
mod quorum;
pub mod recorder;
pub mod schedule;
mod systemd;
pub mod witnessing;

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::{Arc, RwLock},
    time::Duration,
};

use jiff::Timestamp;
use tokio::sync::{Semaphore, mpsc, watch};
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use tracing::{debug, error, info, warn};

use crate::alert::deliver::Deliverer;
use crate::evidence::{keeper::Keeper, leaf::Leaf};

use self::{
    recorder::{Counts, Recorder, STOP_PATIENCE, Shared},
    schedule::{Plan, Scheduled},
};
use crate::{
    config::{self, Config, ConfigError, ProbeSpec},
    ledger::{
        DIGEST_SETTLE, Ledger, LedgerError, LedgerOptions, Marker, MarkerKind, NotedOutage,
        OutageNote, WriteOutage,
    },
    model::{ProbeName, State},
    probe::{Checker, SetupError, Toolkit},
};

/// Results waiting for the recorder before probe loops feel back-pressure.
const RESULT_QUEUE: usize = 65_536;

/// Longest [`Daemon::run`] takes from SIGTERM to its return, in any state. With the API's
/// [`API_STOP_PATIENCE`] after it, the process ends within 23 s, below the shipped unit's
/// `TimeoutStopSec=30s`.
pub const STOP_DEADLINE: Duration = Duration::from_secs(20);
/// Longest the HTTP and socket listeners get to finish their requests after the daemon
/// stopped (a client that sends half a request would hold them forever).
pub const API_STOP_PATIENCE: Duration = Duration::from_secs(2);
/// Share of the stop for checks in flight to finish.
const CHECKS_STOP_PATIENCE: Duration = Duration::from_secs(4);
/// Share of the stop for the stop marker and checkpoint, after the recorder.
const MARKER_STOP_PATIENCE: Duration = Duration::from_secs(3);

/// Why the daemon could not start.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The configuration is invalid or unreadable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The ledger could not be opened or written.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// A probe's checker could not be prepared.
    #[error(transparent)]
    Setup(#[from] SetupError),
    /// A signal handler could not be installed.
    #[error("cannot install signal handlers: {0}")]
    Signals(std::io::Error),
    /// The configured signing key cannot be used.
    #[error(transparent)]
    Key(#[from] crate::evidence::key::KeyError),
    /// The daemon stopped, but results checked could not be written.
    #[error("stopped with results not written: {lost}: the ledger could not write")]
    Unwritten {
        /// How many, and when they were checked.
        lost: recorder::Tally,
    },
    /// `[witness]` cannot be set up (its key cannot be read).
    #[error("{0}")]
    Witness(String),
}

/// A scheduled probe: a fingerprint of its spec (to notice changes on reload; keeping the spec
/// itself would double the configuration's memory) and its loop's token.
struct Running {
    fingerprint: u64,
    cancel: CancellationToken,
}

/// Batches of a coordinator's replicated results waiting for the recorder; the consumer
/// waits when it is full (the results are durable already).
const REPLICATED_QUEUE: usize = 64;

/// A started daemon.
pub struct Daemon {
    config_path: PathBuf,
    config: watch::Sender<Arc<Config>>,
    shared: Shared,
    counts: watch::Receiver<Counts>,
    permits: Arc<Semaphore>,
    /// The permits `permits` was sized for (`max_concurrency`).
    max_concurrency: usize,
    results: mpsc::Sender<Scheduled>,
    recorder: tokio::task::JoinHandle<()>,
    probes: HashMap<ProbeName, Running>,
    /// Every probe loop; waited for at shutdown so checks in flight are recorded.
    loops: TaskTracker,
    /// Parent of every probe loop's token.
    scheduling: CancellationToken,
    started_at: Timestamp,
    /// See `ledger::OutageNote`; `None` if it could not be created.
    note: Option<Arc<OutageNote>>,
    /// The replication publisher: stopped after the recorder, so it sends the last results.
    publisher: (CancellationToken, tokio::task::JoinHandle<()>),
    /// Reloads asked for through the socket (see [`Handle::reloads`]).
    reloads: (mpsc::Sender<ReloadRequest>, mpsc::Receiver<ReloadRequest>),
}

/// What a reload came to: the probes now scheduled, or every problem that made the daemon
/// keep its running configuration (`file:line:column: …` for configuration errors).
pub type ReloadOutcome = Result<usize, Vec<String>>;

/// Asks the daemon to reload, as SIGHUP does, and to say how it went (`upledger reload`).
pub type ReloadRequest = tokio::sync::oneshot::Sender<ReloadOutcome>;

/// What queries need from a running daemon (the unix socket's view).
#[derive(Clone)]
pub struct Handle {
    /// The live configuration.
    pub config: watch::Receiver<Arc<Config>>,
    /// Reload requests, answered by the daemon's main loop.
    pub reloads: mpsc::Sender<ReloadRequest>,
    /// Ledger, write gate and live status.
    pub shared: Shared,
    /// When the daemon started.
    pub started_at: Timestamp,
}

impl Daemon {
    /// Loads the configuration, opens the ledger, records a start marker and arms every
    /// enabled probe.
    pub async fn start(config_path: &Path) -> Result<Daemon, DaemonError> {
        let config = Arc::new(config::load(config_path)?);
        log_warnings(&config);
        let ledger = Arc::new(open_ledger(&config.daemon.ledger).await?);
        record_previous_outage(&ledger, &config.daemon.ledger)?;
        let note = match OutageNote::create(&config.daemon.ledger) {
            Ok(note) => Some(Arc::new(note)),
            Err(e) => {
                warn!(error = %e, "cannot create the outage note: a write outage that ends in a kill will show as \"daemon not running\"");
                None
            }
        };
        let evidence = Arc::new(Keeper::load(&config)?);
        let witness = Arc::new(witnessing::WitnessDesk::default());
        witness.reload(&config).map_err(DaemonError::Witness)?;
        let started_at = Timestamp::now();
        ledger.record_marker(Marker {
            at: started_at,
            kind: MarkerKind::DaemonStart,
        })?;
        ledger.note_location(&config.daemon.location, started_at)?;
        ledger.set_replicating(config.is_agent());
        let shared = Shared {
            ledger,
            gate: Arc::new(RwLock::new(())),
            board: Arc::default(),
            alerts: Arc::default(),
            lag: Arc::default(),
            writes: Arc::default(),
            evidence,
            checkpoints: Arc::default(),
            witness,
            written: Arc::default(),
        };
        let deliverer = Arc::new(Deliverer::new().map_err(LedgerError::sink)?);
        let (config_tx, config_rx) = watch::channel(Arc::clone(&config));
        let (counts_tx, counts_rx) = watch::channel(Counts::default());
        let recorder = Recorder::new(shared.clone(), config_rx, counts_tx, note.clone())?;
        let (results_tx, results_rx) = mpsc::channel(RESULT_QUEUE);
        let (observed_tx, observed_rx) = mpsc::channel(REPLICATED_QUEUE);
        let recorder = tokio::spawn(recorder.run(results_rx, observed_rx));
        let publishing = CancellationToken::new();
        let publisher = tokio::spawn(crate::replicate::agent::run(
            Arc::clone(&shared.ledger),
            config_tx.subscribe(),
            Arc::clone(&shared.written),
            publishing.clone(),
        ));
        let mut daemon = Daemon {
            config_path: config_path.to_owned(),
            config: config_tx,
            shared,
            counts: counts_rx,
            permits: Arc::new(Semaphore::new(config.daemon.max_concurrency)),
            max_concurrency: config.daemon.max_concurrency,
            results: results_tx,
            recorder,
            probes: HashMap::new(),
            loops: TaskTracker::new(),
            scheduling: CancellationToken::new(),
            started_at,
            note,
            publisher: (publishing, publisher),
            reloads: mpsc::channel(4),
        };
        daemon.apply(&config)?;
        note_maintenance(&daemon.shared.ledger, &config);
        // The start leaf goes in from the evidence task: catching the log up first may take a
        // while (a ledger from before the log existed) and must not delay READY.
        daemon.loops.spawn(evidence_forever(
            daemon.shared.clone(),
            daemon.config.subscribe(),
            daemon.scheduling.child_token(),
            Leaf::Start {
                at: started_at,
                version: env!("CARGO_PKG_VERSION").to_owned(),
            },
        ));
        daemon.loops.spawn(cosigning::run(
            daemon.shared.clone(),
            daemon.config.subscribe(),
            Arc::clone(&daemon.shared.checkpoints),
            daemon.scheduling.child_token(),
        ));
        if config.witness.is_some() {
            // Checked once before the listener opens, so a witness coming back after being
            // down longer than the silence says so before the first checkpoint arrives.
            witnessing::check_silence(&daemon.shared, &config, started_at).await;
        }
        daemon.loops.spawn(witnessing::silence_forever(
            daemon.shared.clone(),
            daemon.config.subscribe(),
            daemon.scheduling.child_token(),
            started_at,
        ));
        daemon.loops.spawn(crate::replicate::coordinator::run(
            Arc::clone(&daemon.shared.ledger),
            daemon.config.subscribe(),
            Arc::clone(&daemon.shared.gate),
            observed_tx,
            daemon.scheduling.child_token(),
        ));
        daemon.loops.spawn(prune_forever(
            daemon.shared.clone(),
            daemon.config.subscribe(),
            daemon.scheduling.child_token(),
        ));
        daemon.loops.spawn(digest_forever(
            daemon.shared.clone(),
            daemon.config.subscribe(),
            daemon.scheduling.child_token(),
        ));
        daemon.loops.spawn(watch_budgets(
            daemon.shared.clone(),
            daemon.config.subscribe(),
            daemon.scheduling.child_token(),
        ));
        daemon.loops.spawn(closing::report_closed_months(
            daemon.shared.clone(),
            daemon.config.subscribe(),
            daemon.scheduling.child_token(),
        ));
        daemon.loops.spawn(clock::watch_forever(
            daemon.shared.clone(),
            daemon.config.subscribe(),
            daemon.scheduling.child_token(),
        ));
        daemon.loops.spawn(crate::alert::dispatch::run(
            Arc::clone(&daemon.shared.ledger),
            daemon.config.subscribe(),
            Arc::clone(&daemon.shared.alerts),
            deliverer,
            daemon.scheduling.child_token(),
        ));
        info!(
            probes = daemon.probes.len(),
            ledger = %config.daemon.ledger.display(),
            "daemon started"
        );
        memory::release_free_memory();
        Ok(daemon)
    }

    /// The view queries need.
    pub fn handle(&self) -> Handle {
        Handle {
            config: self.config.subscribe(),
            reloads: self.reloads.0.clone(),
            shared: self.shared.clone(),
            started_at: self.started_at,
        }
    }

    /// The live configuration.
    pub fn config(&self) -> Arc<Config> {
        Arc::clone(&self.config.borrow())
    }

    /// Schedules `config`'s enabled probes that run here (see [`Config::runs_here`]):
    /// unchanged probes keep running (and their phase), changed ones restart, removed ones
    /// stop, new ones start.
    fn apply(&mut self, config: &Config) -> Result<(), DaemonError> {
        let wanted: HashMap<&ProbeName, &ProbeSpec> = config
            .probes
            .iter()
            .filter(|p| p.enabled && config.runs_here(p))
            .map(|p| (&p.name, p))
            .collect();
        // Prepare every new or changed checker first, so a setup failure changes nothing.
        let toolkit = Toolkit::new();
        let mut prepared = Vec::new();
        for (name, spec) in &wanted {
            let unchanged = self
                .probes
                .get(*name)
                .is_some_and(|running| running.fingerprint == fingerprint(spec));
            if !unchanged {
                prepared.push(((*spec).clone(), Checker::new(spec, &toolkit)?));
            }
        }
        let removed: Vec<ProbeName> = self
            .probes
            .keys()
            .filter(|name| !wanted.contains_key(name))
            .cloned()
            .collect();
        for name in removed {
            if let Some(running) = self.probes.remove(&name) {
                running.cancel.cancel();
                info!(probe = %name, "probe stopped");
            }
        }
        for (spec, checker) in prepared {
            if let Some(old) = self.probes.remove(&spec.name) {
                old.cancel.cancel();
            }
            let cancel = self.scheduling.child_token();
            let plan = Plan {
                interval: spec.interval,
                phase: schedule::phase_offset(
                    spec.name.as_str(),
                    spec.interval,
                    schedule::phase_slot(spec.kind()),
                ),
            };
            self.loops.spawn(schedule::run_probe(
                plan,
                Arc::new(checker),
                Arc::clone(&self.permits),
                self.results.clone(),
                cancel.clone(),
            ));
            let fingerprint = fingerprint(&spec);
            self.probes.insert(
                spec.name.clone(),
                Running {
                    fingerprint,
                    cancel,
                },
            );
        }
        Ok(())
    }

    /// Reloads the configuration file; on any error logs every problem, keeps the old one
    /// and returns the problems.
    fn reload(&mut self) -> ReloadOutcome {
        systemd::reloading();
        let outcome = self.reload_unannounced();
        systemd::ready(&self.status_line());
        outcome
    }

    fn reload_unannounced(&mut self) -> ReloadOutcome {
        match config::load(&self.config_path) {
            Ok(config) => {
                log_warnings(&config);
                let before = self.probes.len();
                match self.apply(&config) {
                    Ok(()) => {
                        self.resize_permits(config.daemon.max_concurrency);
                        note_maintenance(&self.shared.ledger, &config);
                        if let Err(e) = self.shared.evidence.reload(&config) {
                            error!(error = %e, "cannot read the new signing key; checkpoints stay signed with the old one");
                        }
                        if let Err(e) = self.shared.witness.reload(&config) {
                            error!(error = %e, "cannot set up the new [witness]; the old one stays");
                        }
                        self.shared.ledger.set_replicating(config.is_agent());
                        if let Err(e) = self
                            .shared
                            .ledger
                            .note_location(&config.daemon.location, Timestamp::now())
                        {
                            error!(error = %e, "cannot record the new location");
                        }
                        info!(probes = self.probes.len(), before, "configuration reloaded");
                        self.config.send_replace(Arc::new(config));
                        // New witnesses get the checkpoints now, not at the next one.
                        self.shared.checkpoints.notify_one();
                        memory::release_free_memory();
                        Ok(self.probes.len())
                    }
                    Err(e) => {
                        error!(error = %e, "reload rejected; keeping the running configuration");
                        Err(vec![e.to_string()])
                    }
                }
            }
            Err(ConfigError::Invalid(diagnostics)) => {
                for diagnostic in &diagnostics.0 {
                    error!("{diagnostic}");
                }
                error!(
                    problems = diagnostics.0.len(),
                    "reload rejected; keeping the running configuration"
                );
                Err(diagnostics.0.iter().map(ToString::to_string).collect())
            }
            Err(e) => {
                error!(error = %e, "reload rejected; keeping the running configuration");
                Err(vec![e.to_string()])
            }
        }
    }

    /// Changes the cap on checks in flight in place, so running loops see it too.
    fn resize_permits(&mut self, max_concurrency: usize) {
        if max_concurrency > self.max_concurrency {
            self.permits
                .add_permits(max_concurrency - self.max_concurrency);
        } else {
            // Permits in use now are forgotten as they come back, by later calls; the cap
            // shrinks as checks finish.
            let excess = self.max_concurrency - max_concurrency;
            let forgotten = self.permits.forget_permits(excess);
            if forgotten < excess {
                warn!(
                    requested = max_concurrency,
                    "max_concurrency shrinks fully once checks in flight finish"
                );
            }
        }
        self.max_concurrency = max_concurrency;
    }

    fn status_line(&self) -> String {
        let counts = *self.counts.borrow();
        format!("{} probes, {} down", self.probes.len(), counts.down)
    }

    /// Runs until SIGTERM, SIGINT or `shutdown`; SIGHUP reloads. Then stops scheduling, lets
    /// checks in flight finish, commits every result and records a stop marker.
    pub async fn run(mut self, shutdown: CancellationToken) -> Result<(), DaemonError> {
        use tokio::signal::unix::{SignalKind, signal};
        let mut hangup = signal(SignalKind::hangup()).map_err(DaemonError::Signals)?;
        let mut terminate = signal(SignalKind::terminate()).map_err(DaemonError::Signals)?;
        let mut interrupt = signal(SignalKind::interrupt()).map_err(DaemonError::Signals)?;
        systemd::ready(&self.status_line());
        let watchdog = systemd::watchdog_interval();
        let mut watchdog_tick =
            tokio::time::interval(watchdog.unwrap_or(Duration::from_secs(3600)));
        let mut status_tick = tokio::time::interval(Duration::from_secs(5));
        let mut pinging = true;
        loop {
            tokio::select! {
                _ = hangup.recv() => {
                    info!("SIGHUP: reloading configuration");
                    let _ = self.reload();
                }
                Some(answer) = self.reloads.1.recv() => {
                    info!("reload asked for through the socket: reloading configuration");
                    // The asker may have gone; the reload stands all the same.
                    let _ = answer.send(self.reload());
                }
                _ = terminate.recv() => { info!("SIGTERM: shutting down"); break; }
                _ = interrupt.recv() => { info!("SIGINT: shutting down"); break; }
                () = shutdown.cancelled() => { info!("shutting down"); break; }
                _ = watchdog_tick.tick(), if watchdog.is_some() => self.watchdog(&mut pinging),
                _ = status_tick.tick() => systemd::status(&self.status_line()),
            }
        }
        self.stop().await
    }

    /// Pings the systemd watchdog only while checks are being recorded (see
    /// `WriteHealth::recording`): a daemon whose ledger cannot write, or whose writer is stuck,
    /// is restarted by systemd after `WatchdogSec`. Logs when pings stop and resume.
    fn watchdog(&self, pinging: &mut bool) {
        let recording = self
            .shared
            .writes
            .read()
            .map(|health| health.recording(tokio::time::Instant::now()))
            .unwrap_or(false);
        if recording {
            systemd::watchdog();
        }
        if recording != *pinging {
            *pinging = recording;
            if recording {
                info!("results are recorded again: systemd watchdog pings resume");
            } else {
                warn!("results are not being recorded: systemd watchdog pings stop");
            }
        }
    }

    /// Stops within [`STOP_DEADLINE`]: checks in flight get [`CHECKS_STOP_PATIENCE`], the
    /// recorder [`STOP_PATIENCE`] to write what it holds (plus a moment), the stop marker and
    /// checkpoint [`MARKER_STOP_PATIENCE`]. What could not be written is logged (count and
    /// check times) and noted for the next start.
    async fn stop(mut self) -> Result<(), DaemonError> {
        let deadline = tokio::time::Instant::now() + STOP_DEADLINE;
        systemd::stopping();
        self.scheduling.cancel();
        self.loops.close();
        // Loops finish their check in flight (each bounded by its timeout) and send it; a
        // housekeeping task stuck in the ledger must not hold the stop.
        let checks_done = tokio::time::Instant::now() + CHECKS_STOP_PATIENCE;
        if tokio::time::timeout_at(checks_done, self.loops.wait())
            .await
            .is_err()
        {
            warn!(patience = ?CHECKS_STOP_PATIENCE, "tasks still running at stop are abandoned");
        }
        drop(self.results);
        let recorder_done = (deadline - MARKER_STOP_PATIENCE)
            .min(tokio::time::Instant::now() + STOP_PATIENCE + Duration::from_secs(2));
        match tokio::time::timeout_at(recorder_done, &mut self.recorder).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => error!(error = %e, "recorder task failed"),
            Err(_) => {
                error!("the recorder did not finish in time: a ledger write hangs");
                self.recorder.abort();
            }
        }
        // The last results are written: the publisher sends them, briefly.
        self.publisher.0.cancel();
        let publisher_done = (tokio::time::Instant::now()
            + crate::replicate::agent::DRAIN_AT_STOP
            + Duration::from_secs(1))
        .min(deadline - MARKER_STOP_PATIENCE);
        if tokio::time::timeout_at(publisher_done, &mut self.publisher.1)
            .await
            .is_err()
        {
            self.publisher.1.abort();
        }
        let health = self
            .shared
            .writes
            .read()
            .map(|h| h.clone())
            .unwrap_or_default();
        let recorder_done_cleanly = self.recorder.is_finished()
            && health.failing_since.is_none()
            && health.commit_since.is_none();
        if recorder_done_cleanly {
            let ledger = Arc::clone(&self.shared.ledger);
            let stop = Marker {
                at: Timestamp::now(),
                kind: MarkerKind::DaemonStop,
            };
            let keeper = Arc::clone(&self.shared.evidence);
            let config = Arc::clone(&self.config.borrow());
            let marked = tokio::task::spawn_blocking(move || {
                ledger.record_marker(stop)?;
                // The next start then has no journal to replay.
                ledger.checkpoint()?;
                let leaf = Leaf::Stop { at: stop.at };
                match keeper.record_now(&ledger, &config, &leaf, EVIDENCE_STOP_PATIENCE) {
                    Ok(Some(_)) => {}
                    Ok(None) => {
                        warn!("the evidence log is busy: the stop is not in it (the next start is)")
                    }
                    Err(e) => error!(error = %e, "cannot record the stop in the evidence log"),
                }
                Ok::<(), LedgerError>(())
            });
            match tokio::time::timeout_at(deadline, marked).await {
                Ok(Ok(Ok(()))) => {}
                Ok(Ok(Err(e))) => error!(error = %e, "cannot record the stop marker"),
                Ok(Err(e)) => error!(error = %e, "stop marker task failed"),
                Err(_) => error!("recording the stop marker hangs: stopping without it"),
            }
        } else {
            note_unwritten(self.note.clone(), &health, deadline).await;
        }
        let counts = *self.counts.borrow();
        let lost = health.unwritten;
        if lost.count == 0 && recorder_done_cleanly && counts.dropped == 0 {
            info!(written = counts.written, "stopped; every result is written");
            return Ok(());
        }
        error!(
            written = counts.written,
            lost = lost.count,
            first = ?lost.between.map(|(first, _)| first),
            last = ?lost.between.map(|(_, last)| last),
            "stopped; results not written: {lost}, cause: the ledger could not write"
        );
        Err(DaemonError::Unwritten { lost })
    }
}

/// Notes the outage going on at stop in the outage note (the recorder does too when it
/// finishes; this covers a recorder that hung), so the next start records it.
async fn note_unwritten(
    note: Option<Arc<OutageNote>>,
    health: &recorder::WriteHealth,
    deadline: tokio::time::Instant,
) {
    let Some(note) = note else {
        return;
    };
    let lost = health.unwritten;
    let failing_since = health.failing_since.unwrap_or_else(Timestamp::now);
    let noted = NotedOutage {
        since: lost
            .between
            .map_or(failing_since, |(first, _)| first.min(failing_since)),
        outage: WriteOutage {
            until: Timestamp::now(),
            lost: lost.count,
            lost_between: lost.between,
        },
        stopped: true,
    };
    let written = tokio::task::spawn_blocking(move || note.write(&noted));
    match tokio::time::timeout_at(deadline, written).await {
        Ok(Ok(Ok(()))) => {}
        Ok(Ok(Err(e))) => error!(error = %e, "cannot note the write outage for the next start"),
        Ok(Err(e)) => error!(error = %e, "outage note task failed"),
        Err(_) => error!("writing the outage note hangs"),
    }
}

/// Records the write outage a previous run noted (see `ledger::OutageNote`) as a marker, so
/// history labels its gap "ledger could not write"; the note is blanked afterwards by
/// `OutageNote::create`. A note that cannot be read is logged and left alone.
fn record_previous_outage(ledger: &Ledger, dir: &Path) -> Result<(), DaemonError> {
    let noted = match OutageNote::read(dir) {
        Ok(Some(noted)) => noted,
        Ok(None) => return Ok(()),
        Err(e) => {
            warn!(error = %e, "cannot read the outage note of the previous run");
            return Ok(());
        }
    };
    ledger.record_marker(noted.marker())?;
    let outage = noted.outage;
    let lost = recorder::Tally {
        count: outage.lost,
        between: outage.lost_between,
    };
    warn!(
        since = %noted.since,
        until = %outage.until,
        lost = outage.lost,
        how = if noted.stopped { "stopped" } else { "killed or crashed" },
        "the previous run could not write its ledger: results lost: {lost}, cause: the ledger could not write"
    );
    Ok(())
}

/// Records when each configured maintenance window was first seen (kept if seen before).
fn note_maintenance(ledger: &Ledger, config: &Config) {
    let now = Timestamp::now();
    for window in &config.maintenance {
        let identity = window.identity();
        match ledger.note_maintenance_seen(&identity, now) {
            Ok(first_seen) if first_seen == now => {
                info!(window = %identity, reason = %window.reason, "new maintenance window")
            }
            Ok(_) => {}
            Err(e) => warn!(window = %identity, error = %e, "cannot record a maintenance window"),
        }
    }
}

/// How long a stop waits for a catch-up in progress before leaving its stop leaf out.
const EVIDENCE_STOP_PATIENCE: Duration = Duration::from_secs(1);

/// How often the evidence log catches up, at most: finished leaf hours are sealed within this
/// of becoming due (and sooner with the short hours tests use).
const EVIDENCE_EVERY: Duration = Duration::from_secs(10);

/// Keeps the evidence log up to date: the daemon's start leaf first, then hour leaves as
/// hours finish, control leaves as the ledger gains records, a signed checkpoint whenever it
/// grew (see `evidence::log`). A failure is logged and retried, never fatal: the results
/// themselves are in the ledger, and the next catch-up puts them under leaves.
async fn evidence_forever(
    shared: Shared,
    config: watch::Receiver<Arc<Config>>,
    cancel: CancellationToken,
    start: Leaf,
) {
    let every = {
        let hour = config.borrow().evidence.hour;
        EVIDENCE_EVERY.min(hour / 4).max(Duration::from_millis(100))
    };
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    let mut start = Some(start);
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        let keeper = Arc::clone(&shared.evidence);
        let ledger = Arc::clone(&shared.ledger);
        let config = Arc::clone(&config.borrow());
        let leaf = start.clone();
        let stopping = cancel.clone();
        let caught_up = tokio::task::spawn_blocking(move || match leaf {
            Some(leaf) => keeper.record(&ledger, &config, Timestamp::now(), &leaf),
            None => keeper.catch_up(&ledger, &config, Timestamp::now(), &|| {
                !stopping.is_cancelled()
            }),
        })
        .await;
        if matches!(caught_up, Ok(Ok(_))) {
            start = None;
        }
        match caught_up {
            Ok(Ok(done)) => {
                if failing {
                    info!(size = done.size, "the evidence log is written again");
                    failing = false;
                }
                if done.appended > 0 {
                    debug!(appended = done.appended, size = done.size, checkpoint = ?done.checkpoint, "evidence log appended");
                }
                if done.checkpoint.is_some() {
                    shared.checkpoints.notify_one();
                }
                // An hour's leaves for thousands of probes are built in one append: give the
                // heap it took back, as after a month computation.
                if done.appended >= 1000 {
                    memory::release_free_memory();
                }
            }
            Ok(Err(e)) => {
                if !failing {
                    error!(error = %e, "cannot append to the evidence log; retrying");
                    failing = true;
                }
            }
            Err(e) => warn!(error = %e, "evidence log task failed"),
        }
    }
}

/// How often finished hours are digested for reports.
const DIGEST_EVERY: Duration = Duration::from_secs(300);

/// Digests finished hours at start (catching up on any backlog) and then every few minutes,
/// so month reports read per-hour runs instead of raw results (see `ledger::digest`), and
/// rewrites the day rollups the status page's bars read (see `query::days`).
async fn digest_forever(
    shared: Shared,
    config: watch::Receiver<Arc<Config>>,
    cancel: CancellationToken,
) {
    let mut tick = tokio::time::interval(DIGEST_EVERY);
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        let Ok(until) = Timestamp::now().checked_sub(DIGEST_SETTLE) else {
            continue;
        };
        let digesting = shared.clone();
        let config = Arc::clone(&config.borrow());
        let stop = cancel.clone();
        let digested = tokio::task::spawn_blocking(move || {
            crate::query::days::digest(&config, &digesting.ledger, until, &|| !stop.is_cancelled())
        })
        .await;
        match digested {
            Ok(Ok(0)) => {}
            Ok(Ok(hours)) => debug!(hours, "digested finished hours"),
            Ok(Err(e)) => warn!(error = %e, "cannot digest results for reports"),
            Err(e) => warn!(error = %e, "digest task failed"),
        }
    }
}

/// How often budgets and burn rates are evaluated.
const BUDGET_EVERY: Duration = Duration::from_secs(5);

/// Evaluates budget and burn-rate alerts every few seconds for probes that are (or were
/// recently) down, stores what they raise in the outbox, and wakes delivery.
async fn watch_budgets(
    shared: Shared,
    config: watch::Receiver<Arc<Config>>,
    cancel: CancellationToken,
) {
    let mut tick = tokio::time::interval(BUDGET_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut watcher = Some(crate::alert::watch::BudgetWatcher::default());
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        let down: Vec<ProbeName> = shared
            .board
            .read()
            .map(|board| {
                board
                    .iter()
                    .filter(|(_, status)| status.state == State::Down)
                    .map(|(name, _)| name.clone())
                    .collect()
            })
            .unwrap_or_default();
        let Some(mut moved) = watcher.take() else {
            return;
        };
        let current = Arc::clone(&config.borrow());
        let ledger = Arc::clone(&shared.ledger);
        let evaluated = tokio::task::spawn_blocking(move || {
            let now = Timestamp::now();
            let outcome = moved
                .evaluate(&current, &ledger, &down, now)
                .map_err(|e| e.to_string())
                .and_then(|mut evaluation| {
                    if evaluation.events.is_empty() && evaluation.unmarks.is_empty() {
                        return Ok(0);
                    }
                    crate::alert::queue(&current, &ledger, &mut evaluation.events, now)
                        .and_then(|_| ledger.mark_alerted(&evaluation.marks, &evaluation.unmarks))
                        .map(|()| evaluation.events.len())
                        .map_err(|e| e.to_string())
                });
            (moved, outcome)
        })
        .await;
        match evaluated {
            Ok((back, outcome)) => {
                watcher = Some(back);
                match outcome {
                    Ok(0) => {}
                    Ok(n) => {
                        info!(alerts = n, "budget or burn-rate alerts raised");
                        shared.alerts.notify_one();
                    }
                    Err(e) => warn!(error = %e, "cannot evaluate budgets"),
                }
            }
            Err(e) => {
                error!(error = %e, "budget evaluation failed");
                watcher = Some(crate::alert::watch::BudgetWatcher::default());
            }
        }
    }
}

/// How often raw results older than `[daemon].retention` are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// Housekeeping at start and then hourly: drops raw results older than the retention (rollups
/// and closed months stay) and closes last month.
async fn prune_forever(
    shared: Shared,
    config: watch::Receiver<Arc<Config>>,
    cancel: CancellationToken,
) {
    let mut tick = tokio::time::interval(PRUNE_EVERY);
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        let retention = config.borrow().daemon.retention;
        let Ok(retention) = jiff::SignedDuration::try_from(retention) else {
            continue;
        };
        let Ok(cutoff) = Timestamp::now().checked_sub(retention) else {
            continue;
        };
        let pruning = shared.clone();
        let pruned = tokio::task::spawn_blocking(move || {
            let _exclusive = pruning.gate.write().unwrap_or_else(|p| p.into_inner());
            pruning.ledger.prune_before(cutoff)
        })
        .await;
        match pruned {
            Ok(Ok(0)) => {}
            Ok(Ok(n)) => info!(results = n, before = %cutoff, "pruned raw results past retention"),
            Ok(Err(e)) => warn!(error = %e, "cannot prune old results"),
            Err(e) => warn!(error = %e, "pruning task failed"),
        }
        let current = Arc::clone(&config.borrow());
        close_last_month(&shared, &current).await;
    }
}

/// Computes and stores last month's figures once it is closed, so reports of closed months
/// read stored figures instead of a month of raw results (and are final).
async fn close_last_month(shared: &Shared, config: &Arc<Config>) {
    let now = Timestamp::now();
    let this_month = crate::report::Month::containing(now, &config.daemon.timezone);
    let Some(last_month) = this_month.previous() else {
        return;
    };
    // Nothing to close if the daemon never ran before last month ended (a new install).
    let ran_before = last_month
        .bounds(&config.daemon.timezone)
        .ok()
        .and_then(|period| shared.ledger.markers(Timestamp::MIN, period.end).ok())
        .is_some_and(|markers| !markers.is_empty());
    if !ran_before {
        return;
    }
    let shared = shared.clone();
    let config = Arc::clone(config);
    // No write gate: last month's results are long flushed, and the recorder must not wait
    // for a month of results to be read.
    let closed = tokio::task::spawn_blocking(move || {
        crate::query::monthly::month_document(
            &config,
            &shared.ledger,
            last_month,
            now,
            &crate::query::monthly::Selection::default(),
        )
    })
    .await;
    match closed {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => warn!(month = %last_month, error = %e, "cannot close the month"),
        Err(e) => warn!(month = %last_month, error = %e, "closing task failed"),
    }
}

/// How long the daemon waits for a CLI command that has the ledger open to let go of it.
const LEDGER_LOCK_PATIENCE: Duration = Duration::from_secs(10);

/// Opens the ledger, waiting while another process holds it: a query command run without a
/// daemon opens the ledger for a moment, and must not keep the daemon from starting.
async fn open_ledger(path: &Path) -> Result<Ledger, LedgerError> {
    let owned = path.to_owned();
    let options = LedgerOptions {
        lock_wait: LEDGER_LOCK_PATIENCE,
        ..LedgerOptions::default()
    };
    tokio::task::spawn_blocking(move || Ledger::open_with(&owned, &options))
        .await
        .map_err(|e| LedgerError::Storage {
            path: path.to_owned(),
            message: format!("opening it failed: {e}"),
            io: false,
        })?
}

/// A fingerprint of what a probe does, to tell on reload whether it changed (then its loop
/// restarts) or not (then it keeps running, phase and all).
///
/// Specs hold compiled regexes, which have no equality; their `Debug` form spells out every
/// field, including the regex source, so equal text means an equal probe. Where the probe is
/// written (file and line) does not matter.
fn fingerprint(spec: &ProbeSpec) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut spec = spec.clone();
    spec.origin = crate::config::Origin {
        file: PathBuf::new(),
        line: 0,
    };
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    format!("{spec:?}").hash(&mut hasher);
    hasher.finish()
}

/// Logs what the configuration allows but probably does not mean (SPEC §10: a credit table
/// with a gap), once per load: the daemon runs with it, as `validate` passes it.
fn log_warnings(config: &Config) {
    for warning in config.warnings() {
        warn!("{warning}");
    }
}
