//! The unix admin socket: the query commands' way in while the daemon owns the ledger.
//!
//! Protocol: the client sends one JSON request line; the server answers with one JSON line
//! (`{"ok": …}` or `{"error": "…"}`), except `export`, which streams JSON lines of results and
//! ends with a `{"done": N}` line, and `import`, whose request line is followed by the JSON lines
//! to import and the client's end of writing; the request says how many bytes follow
//! (`"bytes"`), and a stream that ends before is refused, not imported. The socket is created
//! with mode 0660.

use std::{
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    sync::Arc,
};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader},
    net::{UnixListener, UnixStream},
};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::access::{self, Peer};
use crate::{
    daemon::Handle,
    query::{
        self, ExclusionSubject, QueryError, StatusReport, Summary,
        monthly::{self, Selection},
        trend,
    },
};

/// Largest import accepted over the socket (JSON lines), to bound memory.
const MAX_IMPORT_BYTES: u64 = 1 << 30;

/// A request line.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub enum Request {
    /// Current state of every probe.
    Status,
    /// Reload the configuration (as SIGHUP) and say whether it was taken.
    Reload,
    /// One probe's results since an instant.
    History {
        /// Probe name.
        probe: String,
        /// Window start.
        since: Timestamp,
    },
    /// Results as JSON lines.
    Export {
        /// Only this probe.
        probe: Option<String>,
        /// From this instant.
        since: Option<Timestamp>,
        /// Until this instant.
        until: Option<Timestamp>,
    },
    /// Import the JSON lines that follow.
    Import {
        /// How many bytes follow: the daemon refuses an import whose stream ends before
        /// (a client killed part-way), instead of importing what arrived. Absent from older
        /// clients: then whatever arrives before the end of the stream is the input.
        #[serde(default)]
        bytes: Option<u64>,
        /// `import --expect-lines`: how many non-blank lines the input must have.
        #[serde(default)]
        expect_lines: Option<u64>,
    },
    /// A month's availability report.
    Report {
        /// `YYYY-MM`.
        month: String,
        /// Only this probe.
        probe: Option<String>,
        /// Only this SLA.
        sla: Option<String>,
        /// The instant the report is computed for (`report --as-of`); now when absent.
        #[serde(default)]
        as_of: Option<Timestamp>,
        /// The trend's length in months (`report --months`, SPEC §10); 1 when absent.
        #[serde(default)]
        months: Option<u32>,
    },
    /// A month's report, signed (`report --sign`, SPEC §8).
    SignedReport {
        /// `YYYY-MM`.
        month: String,
        /// Only this probe.
        #[serde(default)]
        probe: Option<String>,
        /// Only this SLA.
        #[serde(default)]
        sla: Option<String>,
    },
    /// A month's evidence bundle (`upledger evidence`, SPEC §8).
    Evidence {
        /// `YYYY-MM`.
        month: String,
        /// Only this probe.
        #[serde(default)]
        probe: Option<String>,
        /// Only this SLA.
        #[serde(default)]
        sla: Option<String>,
    },
    /// Recent alert deliveries.
    Alerts {
        /// At most this many, newest first.
        limit: usize,
    },
    /// Queue a test alert for a channel.
    AlertTest {
        /// Channel name.
        channel: String,
    },
    /// A month's incidents.
    Incidents {
        /// `YYYY-MM`.
        month: String,
        /// The instant the incidents are listed for (`incidents --as-of`); now when absent.
        #[serde(default)]
        as_of: Option<Timestamp>,
    },
    /// Take a stretch of a probe's (or an SLA's) time out of its availability.
    Exclude {
        /// Probe name (or `sla`).
        #[serde(default)]
        probe: Option<String>,
        /// SLA name (or `probe`).
        #[serde(default)]
        sla: Option<String>,
        /// Start (inclusive).
        from: Timestamp,
        /// End (exclusive).
        to: Timestamp,
        /// Why.
        reason: String,
    },
    /// Revoke an exclusion (a recorded correction; the exclusion stays stored).
    Revoke {
        /// The exclusion's id.
        id: String,
        /// Why.
        reason: String,
    },
    /// Every exclusion (of a month), revoked or not.
    Exclusions {
        /// `YYYY-MM`, or every exclusion.
        month: Option<String>,
    },
    /// Which daemon answers: its ledger and process id (asked by a daemon starting on the
    /// same socket path, to say whom it found there).
    Identity,
}

/// Why the socket could not be served.
#[derive(Debug, thiserror::Error)]
pub enum SocketError {
    /// Binding failed.
    #[error("cannot listen on {path}: {source}")]
    Bind {
        /// The socket path.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// Another daemon serves this socket path; taking it over would send its queries and
    /// corrections (`exclude`, `import`) to this daemon's ledger.
    #[error(
        "another upledger daemon already answers on {path} ({other}); give this one another \
         [daemon].socket, or stop that one first"
    )]
    InUse {
        /// The socket path.
        path: PathBuf,
        /// The other daemon, as it describes itself.
        other: String,
    },
}

/// Binds the socket (replacing a stale one) with mode 0660.
pub fn bind(path: &Path) -> Result<UnixListener, SocketError> {
    let bind_error = |source| SocketError::Bind {
        path: path.to_owned(),
        source,
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(bind_error)?;
    }
    // A socket file that nobody answers on was left by a daemon that died: replace it. One
    // that answers belongs to a live daemon (on another ledger, or its lock would have stopped
    // this one earlier): leave it alone.
    if path.exists() {
        if let Ok(stream) = std::os::unix::net::UnixStream::connect(path) {
            return Err(SocketError::InUse {
                path: path.to_owned(),
                other: identify(stream),
            });
        }
        std::fs::remove_file(path).map_err(bind_error)?;
    }
    let listener = UnixListener::bind(path).map_err(bind_error)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660)).map_err(bind_error)?;
    Ok(listener)
}

/// Gives the socket file to group `gid` (`[daemon].socket_group`), whose members may then
/// connect (mode 0660) and make read requests.
pub fn set_group(path: &Path, gid: u32) -> Result<(), SocketError> {
    std::os::unix::fs::chown(path, None, Some(gid)).map_err(|source| SocketError::Bind {
        path: path.to_owned(),
        source,
    })
}

/// How the daemon on the other end of `stream` describes itself ("ledger /var/lib/…, pid
/// 812"), or as much as is known when it does not say (an older daemon, or a busy one: the
/// question waits 2 s at most).
fn identify(stream: std::os::unix::net::UnixStream) -> String {
    use std::io::{BufRead, Write};
    const UNKNOWN: &str = "its ledger unknown";
    let wait = Some(std::time::Duration::from_secs(2));
    if stream.set_read_timeout(wait).is_err() || stream.set_write_timeout(wait).is_err() {
        return UNKNOWN.into();
    }
    let mut writer = &stream;
    if writer.write_all(b"{\"cmd\":\"identity\"}\n").is_err() {
        return UNKNOWN.into();
    }
    let mut line = String::new();
    if std::io::BufReader::new(&stream)
        .read_line(&mut line)
        .is_err()
    {
        return UNKNOWN.into();
    }
    let answer: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
    match (
        answer["ok"]["ledger"].as_str(),
        answer["ok"]["pid"].as_u64(),
    ) {
        (Some(ledger), Some(pid)) => format!("ledger {ledger}, pid {pid}"),
        _ => UNKNOWN.into(),
    }
}

/// Serves queries until `shutdown`, at most `max_connections` at once (see
/// [`super::limits`]; the accept loop is [`super::accept`]'s), then removes the socket file.
pub async fn serve(
    listener: UnixListener,
    path: PathBuf,
    handle: Handle,
    max_connections: usize,
    shutdown: CancellationToken,
) {
    info!(socket = %path.display(), max_connections, "admin socket listening");
    let handle = Arc::new(handle);
    super::accept::accept_until(
        &listener,
        "admin socket",
        max_connections,
        &shutdown,
        |stream, place| {
            let handle = Arc::clone(&handle);
            tokio::spawn(async move {
                let _place = place;
                if let Err(e) = answer(stream, &handle).await {
                    debug!(error = %e, "socket client went away");
                }
            });
        },
    )
    .await;
    let _ = std::fs::remove_file(&path);
}

/// Longest a client may take to send its request line.
const REQUEST_LINE_PATIENCE: std::time::Duration = std::time::Duration::from_secs(10);
/// Longest request line read (requests are a few hundred bytes; an import's data follows it).
const MAX_REQUEST_LINE: u64 = 64 * 1024;

async fn answer(stream: UnixStream, handle: &Handle) -> std::io::Result<()> {
    let peer = Peer::of(&stream)?;
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    let mut line = String::new();
    // A client that connects and says nothing must not hold one of the few connection slots
    // (see `accept`): the request line comes within REQUEST_LINE_PATIENCE, bounded in size.
    match tokio::time::timeout(
        REQUEST_LINE_PATIENCE,
        (&mut reader).take(MAX_REQUEST_LINE).read_line(&mut line),
    )
    .await
    {
        Ok(read) => {
            read?;
        }
        Err(_) => {
            return reply(&mut write, &Err("no request line within 10 s".to_owned())).await;
        }
    }
    let request: Request = match serde_json::from_str(&line) {
        Ok(request) => request,
        Err(e) => return reply(&mut write, &Err(format!("bad request: {e}"))).await,
    };
    let class = access::Class::of(&request);
    let allowed = {
        let config = Arc::clone(&handle.config.borrow());
        access::authorize(
            class,
            &peer,
            &config.daemon,
            nix::unistd::geteuid().as_raw(),
        )
    };
    if let Err(refused) = allowed {
        warn!(uid = peer.uid, ?class, "admin socket request refused");
        return reply(&mut write, &Err(refused)).await;
    }
    let requester = peer.requester();
    match request {
        Request::Export {
            probe,
            since,
            until,
        } => {
            let handle = handle.clone();
            let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<u8>>(16);
            let producer = tokio::task::spawn_blocking(move || {
                let config = Arc::clone(&handle.config.borrow());
                let probe = probe
                    .map(|p| query::export_probe(&config, &handle.shared.ledger, &p))
                    .transpose()
                    .map_err(|e| e.to_string())?;
                let _flushed_only = handle.shared.gate.read().unwrap_or_else(|p| p.into_inner());
                let mut sink = ChannelWriter {
                    tx,
                    buffer: Vec::with_capacity(64 * 1024),
                };
                query::export(
                    &handle.shared.ledger,
                    probe.as_ref(),
                    since,
                    until,
                    &mut sink,
                )
                .map_err(|e| e.to_string())
            });
            while let Some(chunk) = rx.recv().await {
                write.write_all(&chunk).await?;
            }
            let done = match producer.await {
                Ok(Ok(count)) => serde_json::json!({ "done": count }),
                Ok(Err(e)) => serde_json::json!({ "error": e }),
                Err(e) => serde_json::json!({ "error": e.to_string() }),
            };
            write.write_all(format!("{done}\n").as_bytes()).await?;
            write.shutdown().await
        }
        Request::Import {
            bytes,
            expect_lines,
        } => {
            let mut input = Vec::new();
            reader
                .take(bytes.unwrap_or(MAX_IMPORT_BYTES).min(MAX_IMPORT_BYTES))
                .read_to_end(&mut input)
                .await?;
            let received = input.len() as u64;
            info!(by = %requester, bytes = received, "import requested");
            let outcome = match (bytes, String::from_utf8(input)) {
                (Some(expected), _) if expected != received => Err(QueryError::Incomplete {
                    found: received,
                    expected,
                    unit: "bytes",
                }
                .to_string()),
                (_, Err(e)) => Err(format!("the import is not UTF-8: {e}")),
                (_, Ok(text)) => {
                    on_ledger(handle, Access::Write, move |config, ledger| {
                        query::import(
                            config,
                            ledger,
                            &text,
                            Timestamp::now(),
                            expect_lines,
                            Some(requester),
                        )
                    })
                    .await
                }
            };
            reply(&mut write, &outcome).await
        }
        Request::Exclude {
            probe,
            sla,
            from,
            to,
            reason,
        } => {
            let outcome = on_ledger(handle, Access::Write, move |config, ledger| {
                let subject = match (probe, sla) {
                    (Some(probe), None) => ExclusionSubject::Probe(probe),
                    (None, Some(sla)) => ExclusionSubject::Sla(sla),
                    _ => {
                        return Err(QueryError::BadExclusion(
                            "an exclusion names exactly one of --probe and --sla".into(),
                        ));
                    }
                };
                let mut exclusion = query::exclusion(config, &subject, from, to, &reason)?;
                exclusion.recorded_by = Some(requester);
                monthly::record_exclusion(config, ledger, &exclusion)?;
                Ok(exclusion)
            })
            .await;
            reply(&mut write, &outcome).await
        }
        Request::Revoke { id, reason } => {
            let outcome = on_ledger(handle, Access::Write, move |config, ledger| {
                query::revoke(config, ledger, &id, &reason, requester)
            })
            .await;
            reply(&mut write, &outcome).await
        }
        Request::Exclusions { month } => {
            let outcome = on_ledger(handle, Access::Read, move |config, ledger| {
                let month = month.as_deref().map(parse_month).transpose()?;
                query::exclusion_list(config, ledger, month)
            })
            .await;
            reply(&mut write, &outcome).await
        }
        Request::Report {
            month,
            probe,
            sla,
            as_of,
            months,
        } => {
            let outcome = on_ledger(handle, Access::Read, move |config, ledger| {
                let month = parse_month(&month)?;
                let selection = Selection { probe, sla };
                let as_of = as_of.unwrap_or_else(Timestamp::now);
                let mut document =
                    monthly::month_document(config, ledger, month, as_of, &selection)?;
                let months = months.unwrap_or(1);
                trend::add_trend(
                    config,
                    ledger,
                    &mut document,
                    month,
                    as_of,
                    &selection,
                    months,
                )?;
                Ok(document)
            })
            .await;
            reply(&mut write, &outcome).await
        }
        Request::SignedReport { month, probe, sla } => {
            let keeper = Arc::clone(&handle.shared.evidence);
            info!(by = %requester, %month, "signed report requested");
            let outcome = on_ledger(handle, Access::Read, move |config, ledger| {
                let month = parse_month(&month)?;
                let selection = Selection { probe, sla };
                keeper
                    .signed_report(ledger, config, month, &selection, Timestamp::now())
                    .map(|(report, _)| report)
                    .map_err(|e| QueryError::BadRequest(e.to_string()))
            })
            .await;
            reply(&mut write, &outcome).await
        }
        Request::Evidence { month, probe, sla } => {
            let keeper = Arc::clone(&handle.shared.evidence);
            info!(by = %requester, %month, "evidence bundle requested");
            let outcome = on_ledger(handle, Access::Read, move |config, ledger| {
                let month = parse_month(&month)?;
                let selection = Selection { probe, sla };
                keeper
                    .bundle(ledger, config, month, &selection, Timestamp::now())
                    .map_err(|e| QueryError::BadRequest(e.to_string()))
            })
            .await;
            // With witnesses, the answer waits (briefly) for them to cosign its checkpoint.
            let config = Arc::clone(&handle.config.borrow());
            let outcome = match outcome {
                Ok(value) if !config.evidence.witnesses.is_empty() => {
                    match serde_json::from_value(value) {
                        Ok(bundle) => serde_json::to_value(
                            crate::daemon::cosigning::await_cosignatures(
                                &handle.shared,
                                &config,
                                bundle,
                            )
                            .await,
                        )
                        .map_err(|e| e.to_string()),
                        Err(e) => Err(e.to_string()),
                    }
                }
                other => other,
            };
            reply(&mut write, &outcome).await
        }
        Request::Alerts { limit } => {
            let outcome = on_ledger(handle, Access::Read, move |_, ledger| {
                query::alerts(ledger, limit)
            })
            .await;
            reply(&mut write, &outcome).await
        }
        Request::AlertTest { channel } => {
            let wake = std::sync::Arc::clone(&handle.shared.alerts);
            // The outbox is not under the write gate: it never holds results.
            let outcome = on_ledger(handle, Access::Read, move |config, ledger| {
                crate::alert::queue_test(config, ledger, &channel, Timestamp::now())
                    .map_err(QueryError::BadRequest)
            })
            .await;
            wake.notify_one();
            reply(&mut write, &outcome).await
        }
        Request::Incidents { month, as_of } => {
            let outcome = on_ledger(handle, Access::Read, move |config, ledger| {
                let as_of = as_of.unwrap_or_else(Timestamp::now);
                monthly::incidents(config, ledger, parse_month(&month)?, as_of)
            })
            .await;
            reply(&mut write, &outcome).await
        }
        Request::History { probe, since } => {
            let outcome = on_ledger(handle, Access::Read, move |config, ledger| {
                query::history(config, ledger, &probe, since)
            })
            .await;
            reply(&mut write, &outcome).await
        }
        Request::Status => {
            let outcome = status(handle);
            reply(&mut write, &outcome).await
        }
        Request::Reload => {
            let outcome = reload(handle).await;
            reply(&mut write, &outcome).await
        }
        Request::Identity => {
            let config = Arc::clone(&handle.config.borrow());
            let identity = serde_json::json!({
                "ledger": config.daemon.ledger.display().to_string(),
                "pid": std::process::id(),
                "started_at": handle.started_at,
            });
            reply(&mut write, &Ok(identity)).await
        }
    }
}

/// Has the daemon reload and answers `{accepted, probes}` or `{accepted: false, problems}`
/// (a rejected configuration is an answer, not an error of the request).
async fn reload(handle: &Handle) -> Result<serde_json::Value, String> {
    let (answer, reloaded) = tokio::sync::oneshot::channel();
    handle
        .reloads
        .send(answer)
        .await
        .map_err(|_| "the daemon is stopping".to_owned())?;
    match tokio::time::timeout(std::time::Duration::from_secs(60), reloaded).await {
        Ok(Ok(Ok(probes))) => Ok(serde_json::json!({ "accepted": true, "probes": probes })),
        Ok(Ok(Err(problems))) => Ok(serde_json::json!({ "accepted": false, "problems": problems })),
        Ok(Err(_)) => Err("the daemon stopped before reloading".to_owned()),
        Err(_) => Err("the reload did not finish within 60 s".to_owned()),
    }
}

/// Live status from the board (no ledger access: it answers instantly).
fn status(handle: &Handle) -> Result<serde_json::Value, String> {
    let config = Arc::clone(&handle.config.borrow());
    let now = Timestamp::now();
    let board = handle.shared.board.read().map_err(|e| e.to_string())?;
    let probes: Vec<_> = config
        .probes
        .iter()
        // A disabled probe is not monitored: no status (see `StatusReport::probes`).
        .filter(|spec| spec.enabled)
        .map(|spec| query::locations::live_status(&config, spec, |n| board.get(n), now))
        .collect();
    let summary = Summary::of(&probes);
    let report = StatusReport {
        daemon_running: true,
        at: now,
        probes,
        summary,
    };
    serde_json::to_value(report).map_err(|e| e.to_string())
}

/// Whether a query only reads the ledger or also writes to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    /// Sees only flushed results: holds the gate's read side.
    Read,
    /// Writes outside the recorder (import, exclusions): holds the gate's write side, so no
    /// group commit interleaves.
    Write,
}

/// Runs a ledger query off the async threads, under the write gate, with the live config.
async fn on_ledger<T, F>(
    handle: &Handle,
    access: Access,
    query: F,
) -> Result<serde_json::Value, String>
where
    T: serde::Serialize,
    F: FnOnce(&crate::config::Config, &crate::ledger::Ledger) -> Result<T, QueryError>
        + Send
        + 'static,
{
    let handle = handle.clone();
    tokio::task::spawn_blocking(move || {
        let config = Arc::clone(&handle.config.borrow());
        let gate = &handle.shared.gate;
        let value = match access {
            Access::Read => {
                let _flushed_only = gate.read().unwrap_or_else(|p| p.into_inner());
                query(&config, &handle.shared.ledger)
            }
            Access::Write => {
                let _exclusive = gate.write().unwrap_or_else(|p| p.into_inner());
                query(&config, &handle.shared.ledger)
            }
        }
        .map_err(|e| e.to_string())?;
        serde_json::to_value(value).map_err(|e| e.to_string())
    })
    .await
    .unwrap_or_else(|e| Err(e.to_string()))
}

fn parse_month(text: &str) -> Result<crate::report::Month, QueryError> {
    text.parse()
        .map_err(|e: crate::report::ReportError| QueryError::BadRequest(e.to_string()))
}

async fn reply(
    write: &mut tokio::net::unix::OwnedWriteHalf,
    outcome: &Result<serde_json::Value, String>,
) -> std::io::Result<()> {
    let line = match outcome {
        Ok(value) => serde_json::json!({ "ok": value }),
        Err(message) => serde_json::json!({ "error": message }),
    };
    write.write_all(format!("{line}\n").as_bytes()).await?;
    write.shutdown().await
}

/// A `Write` that ships 64 KiB chunks to the async side, so export streams with bounded memory.
struct ChannelWriter {
    tx: tokio::sync::mpsc::Sender<Vec<u8>>,
    buffer: Vec<u8>,
}

impl std::io::Write for ChannelWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.buffer.extend_from_slice(bytes);
        if self.buffer.len() >= 64 * 1024 {
            self.flush()?;
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buffer, Vec::with_capacity(64 * 1024));
        self.tx
            .blocking_send(chunk)
            .map_err(|_| std::io::Error::other("socket client went away"))
    }
}
