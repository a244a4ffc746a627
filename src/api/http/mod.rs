//! The read-only HTTP listener (`[daemon].listen`, SPEC §5): a status page, badges, a JSON API
//! and Prometheus metrics.
//!
//! Everything here is public: probes with `public = false` do not exist on this listener (nor
//! do disabled ones, `enabled = false`: they are not monitored), and
//! unless `[daemon].show_details = true` nothing shows a check's detail (which can hold
//! addresses or answers). Probe targets (URLs, addresses, headers) are never shown at all.
//! Month figures and the 90-day bars come from a cache refreshed in the background while
//! someone looks ([`REFRESH_EVERY`]), so a page view or a scrape never computes a month itself;
//! only the first view after start (or after a long quiet spell) waits for one.

mod badge;
mod connection;
mod evidence;
mod figures;
mod metrics;
mod page;
mod rendered;

use std::{net::SocketAddr, sync::Arc, time::Duration};

use axum::{
    Json, Router,
    extract::{Path, Query, State as AxumState},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use jiff::Timestamp;
use serde::Deserialize;
use tokio::{
    net::TcpListener,
    sync::{OwnedSemaphorePermit, Semaphore},
};
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use tracing::{info, warn};

pub use figures::{FigureCache, Figures, REFRESH_EVERY, compute};
pub use rendered::{PageCache, PagePace, RenderedPage};

use crate::{
    config::Config,
    daemon::Handle,
    ledger::Ledger,
    query::{self, ProbeStatus, QueryError, StatusReport, Summary, monthly, trend},
    report::Month,
};

/// How many expensive requests (a metrics scrape, the status JSON, a query of the ledger)
/// run at once; more wait (up to [`EXPENSIVE_WAIT`]) so that readers cannot take the cores
/// from the checks.
const EXPENSIVE_AT_ONCE: usize = 2;
/// Longest an expensive request waits for its turn; then it gets `503` and `Retry-After`.
const EXPENSIVE_WAIT: Duration = Duration::from_secs(5);

/// Full status pages sent per second at most (see [`PagePace`]): at 10,000 probes a page is
/// ~400 KiB compressed, and a human reader needs one a minute.
const PAGES_PER_SECOND: u32 = 20;

/// What every request handler shares.
#[derive(Clone)]
pub struct HttpState {
    handle: Handle,
    figures: Arc<FigureCache>,
    page: Arc<PageCache>,
    page_pace: Arc<PagePace>,
    expensive: Arc<Semaphore>,
}

impl HttpState {
    /// State over a running daemon, with an empty figure cache (see [`FigureCache`]) and no
    /// page rendered yet (see [`PageCache`]).
    pub fn new(handle: Handle) -> HttpState {
        HttpState {
            handle,
            figures: Arc::default(),
            page: Arc::default(),
            page_pace: Arc::new(PagePace::per_second(PAGES_PER_SECOND)),
            expensive: Arc::new(Semaphore::new(EXPENSIVE_AT_ONCE)),
        }
    }

    /// A turn for an expensive request, or the `503` to answer when none comes in time.
    async fn expensive_turn(&self) -> Result<OwnedSemaphorePermit, Response> {
        let turn = Arc::clone(&self.expensive).acquire_owned();
        match tokio::time::timeout(EXPENSIVE_WAIT, turn).await {
            Ok(Ok(permit)) => Ok(permit),
            _ => Err((
                StatusCode::SERVICE_UNAVAILABLE,
                [(header::RETRY_AFTER, "1")],
                Json(serde_json::json!({ "error": "busy; try again" })),
            )
                .into_response()),
        }
    }

    /// Replaces the cached figures (the refresher does this; so can a benchmark).
    pub fn set_figures(&self, figures: Figures) {
        self.figures.set(figures);
    }

    fn config(&self) -> Arc<Config> {
        Arc::clone(&self.handle.config.borrow())
    }

    /// The figures, telling the refresher someone looks (see [`FigureCache::view`]).
    async fn figures(&self) -> Arc<Figures> {
        self.figures.view().await
    }

    /// The figures as last computed (perhaps none), without asking for new ones.
    fn cached_figures(&self) -> Arc<Figures> {
        self.figures.cached()
    }
}

/// Binds `addr`; the daemon goes on without the listener when that fails (a port taken).
pub async fn bind(addr: SocketAddr) -> Option<TcpListener> {
    match TcpListener::bind(addr).await {
        Ok(listener) => Some(listener),
        Err(e) => {
            warn!(listen = %addr, error = %e, "cannot listen for HTTP; status page, badges and metrics are off");
            None
        }
    }
}

/// Serves until `shutdown`, at most `max_connections` at once (see [`super::limits`]), and
/// keeps the figure cache fresh meanwhile. Returns once every connection has ended, which
/// takes at most [`connection::CLOSE_GRACE`] after `shutdown`.
pub async fn serve(
    listener: TcpListener,
    state: HttpState,
    max_connections: usize,
    shutdown: CancellationToken,
) {
    if let Ok(addr) = listener.local_addr() {
        info!(listen = %addr, max_connections, "HTTP listening (status page, badges, API, metrics)");
    }
    let refresher = {
        let cache = Arc::clone(&state.figures);
        let handle = state.handle.clone();
        let cancel = shutdown.child_token();
        tokio::spawn(async move {
            let compute = move || figures::compute_for(&handle);
            cache.refresh_forever(compute, cancel).await;
        })
    };
    let renderer = {
        let state = state.clone();
        let cancel = shutdown.child_token();
        tokio::spawn(async move {
            let prepare = || async {
                let figures = state.figures().await;
                let state = state.clone();
                move || {
                    let status = public_status(&state);
                    page::render(&state.config(), &status, &figures)
                }
            };
            state.page.render_forever(prepare, cancel).await;
        })
    };
    let app = router(state);
    let connections = TaskTracker::new();
    super::accept::accept_until(
        &listener,
        "HTTP",
        max_connections,
        &shutdown,
        |stream, place| {
            let _ = stream.set_nodelay(true);
            connections.spawn(connection::serve(
                stream,
                app.clone(),
                shutdown.clone(),
                place,
            ));
        },
    )
    .await;
    drop(listener);
    connections.close();
    connections.wait().await;
    let _ = refresher.await;
    let _ = renderer.await;
}

/// The routes of SPEC §5.
pub fn router(state: HttpState) -> Router {
    Router::new()
        .route("/", get(status_page))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics_text))
        .route("/api/v1/status", get(status_json))
        .route("/api/v1/report", get(report_json))
        .route("/api/v1/incidents", get(incidents_json))
        .route("/api/v1/probes/{name}/history", get(history_json))
        .route("/badge/{file}", get(availability_badge))
        .route("/badge/{name}/state.svg", get(state_badge))
        .route("/checkpoint", get(evidence::checkpoint))
        .route("/log/consistency", get(evidence::consistency))
        .route("/log/checkpoints", get(evidence::checkpoints))
        .route(
            "/add-checkpoint",
            axum::routing::post(evidence::add_checkpoint),
        )
        .route(
            "/{origin_hash}/checkpoint",
            get(evidence::witnessed_checkpoint),
        )
        .with_state(state)
}

/// A JSON error body with a status code.
fn error(code: StatusCode, message: impl Into<String>) -> Response {
    (code, Json(serde_json::json!({ "error": message.into() }))).into_response()
}

/// Whether the listener shows this probe at all: public and enabled.
fn shown(spec: &crate::config::ProbeSpec) -> bool {
    spec.public && spec.enabled
}

/// The shown probe of that name (see [`shown`]), if there is one.
fn public_probe<'a>(config: &'a Config, name: &str) -> Option<&'a crate::config::ProbeSpec> {
    config.probe(name).filter(|spec| shown(spec))
}

/// Live status of the public probes, details hidden unless `show_details`.
fn public_status(state: &HttpState) -> StatusReport {
    let config = state.config();
    let now = Timestamp::now();
    let board = state
        .handle
        .shared
        .board
        .read()
        .map(|board| board.clone())
        .unwrap_or_default();
    let probes: Vec<ProbeStatus> = config
        .probes
        .iter()
        .filter(|spec| shown(spec))
        .map(|spec| {
            let mut status = query::locations::live_status(&config, spec, |n| board.get(n), now);
            if !config.daemon.show_details
                && let Some(last) = &mut status.last
            {
                last.detail.clear();
            }
            status
        })
        .collect();
    let summary = Summary::of(&probes);
    StatusReport {
        daemon_running: true,
        at: now,
        probes,
        summary,
    }
}

/// `GET /`: the latest rendering (see [`rendered`]), gzip-compressed when the client takes it,
/// `304` when the client has it already, paced (see [`PagePace`]) when it does not.
async fn status_page(AxumState(state): AxumState<HttpState>, headers: HeaderMap) -> Response {
    let Some(page) = state.page.view().await else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, "5")],
            "the status page is being rendered; try again in a moment",
        )
            .into_response();
    };
    let gzip = accepts_gzip(&headers);
    let etag = if gzip {
        page.gzip_etag()
    } else {
        page.etag.clone()
    };
    let cached = [
        (header::CACHE_CONTROL, "no-cache".to_owned()),
        (header::VARY, "accept-encoding".to_owned()),
        (header::ETAG, etag.clone()),
    ];
    if has_tag(&headers, &etag) {
        return (StatusCode::NOT_MODIFIED, cached).into_response();
    }
    if !state.page_pace.turn().await {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, "2")],
            "many readers at once; try again in a moment",
        )
            .into_response();
    }
    let html = [(header::CONTENT_TYPE, "text/html; charset=utf-8")];
    if gzip {
        let encoding = [(header::CONTENT_ENCODING, "gzip")];
        (html, encoding, cached, page.gzip.clone()).into_response()
    } else {
        (html, cached, page.html.clone()).into_response()
    }
}

/// Whether `Accept-Encoding` takes gzip (not refused with `q=0`).
fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|coding| {
            let mut parts = coding.split(';').map(str::trim);
            let name = parts.next().unwrap_or_default();
            let refused = parts.any(|p| {
                p.strip_prefix("q=")
                    .and_then(|q| q.parse::<f32>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            (name.eq_ignore_ascii_case("gzip") || name == "*") && !refused
        })
}

/// Whether `If-None-Match` names `etag` (or `*`).
fn has_tag(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(|tag| tag.trim().trim_start_matches("W/"))
        .any(|tag| tag == etag || tag == "*")
}

async fn status_json(AxumState(state): AxumState<HttpState>) -> Response {
    let _turn = match state.expensive_turn().await {
        Ok(turn) => turn,
        Err(busy) => return busy,
    };
    Json(public_status(&state)).into_response()
}

async fn healthz(AxumState(state): AxumState<HttpState>) -> Response {
    let ledger = Arc::clone(&state.handle.shared.ledger);
    let writable = tokio::task::spawn_blocking(move || ledger.health_check())
        .await
        .map_err(|e| e.to_string())
        .and_then(|r| r.map_err(|e| e.to_string()));
    let config = state.config();
    let stalled = scheduler_stalled(&config, &state);
    // The recorder's view too: its group commits may fail (and results wait in memory)
    // while this small write succeeds, and it recovers a moment after the disk does.
    let writes = state
        .handle
        .shared
        .writes
        .read()
        .map(|health| health.clone())
        .unwrap_or_default();
    let held = writes.failing_since.map(|since| {
        format!(
            "results cannot be written since {since} ({}): {} held in memory, {} dropped",
            writes.last_error.as_deref().unwrap_or("unknown error"),
            writes.pending_results,
            writes.dropped_results
        )
    });
    let ledger_writable = writable.is_ok() && held.is_none();
    let healthy = ledger_writable && stalled.is_none();
    let problems: Vec<String> = [writable.as_ref().err().cloned(), held, stalled.clone()]
        .into_iter()
        .flatten()
        .collect();
    // Damage the ledger found while running (or at open): results it lost or cannot read.
    let damage: Vec<String> = state
        .handle
        .shared
        .ledger
        .damage()
        .iter()
        .map(ToString::to_string)
        .collect();
    let body = serde_json::json!({
        "damage": damage,
        "ledger_writable": ledger_writable,
        "scheduler_alive": stalled.is_none(),
        "started_at": state.handle.started_at,
        "pending_results": writes.pending_results,
        "dropped_results": writes.dropped_results,
        "writes_failing_since": writes.failing_since,
        "last_write_error": writes.last_error.or_else(|| writable.err()),
        "ledger_reopened": writes.reopened,
        "problems": problems,
    });
    let code = if healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(body)).into_response()
}

/// Why the scheduler looks dead, if it does: no check at all has arrived for longer than the
/// slowest probe's interval and timeout, twice over (and the daemon has run that long).
fn scheduler_stalled(config: &Config, state: &HttpState) -> Option<String> {
    let slowest = config
        .probes
        .iter()
        .filter(|p| p.enabled)
        .map(|p| p.interval + p.timeout)
        .max()?;
    let patience = jiff::SignedDuration::try_from(slowest.saturating_mul(2)).ok()?;
    let now = Timestamp::now();
    if state.handle.started_at.checked_add(patience).ok()? > now {
        return None;
    }
    let newest = state
        .handle
        .shared
        .board
        .read()
        .ok()?
        .values()
        .filter_map(|s| s.last.as_ref().map(|l| l.at))
        .max();
    match newest {
        Some(at) if at.checked_add(patience).ok()? > now => None,
        Some(at) => Some(format!("no check result since {at}")),
        None => Some("no check result since the daemon started".to_owned()),
    }
}

/// `GET /metrics[?refresh=false]`.
#[derive(Debug, Deserialize)]
struct MetricsParam {
    /// `false`: serve the figures as last computed without asking for new ones, for a reader
    /// that wants only the counters (a benchmark must not make the daemon compute a month of
    /// availability inside its measuring window).
    refresh: Option<bool>,
}

async fn metrics_text(
    AxumState(state): AxumState<HttpState>,
    Query(param): Query<MetricsParam>,
) -> Response {
    let _turn = match state.expensive_turn().await {
        Ok(turn) => turn,
        Err(busy) => return busy,
    };
    let config = state.config();
    let figures = if param.refresh == Some(false) {
        state.cached_figures()
    } else {
        state.figures().await
    };
    let gauges = evidence_gauges(&state, &config).await;
    // Rendered under the board's read lock: copying 10,000 statuses would cost more.
    let lag = state.handle.shared.lag.snapshot();
    let mut text = match state.handle.shared.board.read() {
        Ok(board) => metrics::render(&config, &board, &figures, &lag),
        Err(_) => metrics::render(&config, &Default::default(), &figures, &lag),
    };
    metrics::render_evidence(&mut text, &gauges);
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

/// The evidence log's and witness's gauges, read off the async threads (a few small reads);
/// a ledger error leaves them at their defaults rather than failing the whole scrape.
async fn evidence_gauges(state: &HttpState, config: &Arc<Config>) -> metrics::EvidenceGauges {
    let ledger = Arc::clone(&state.handle.shared.ledger);
    let config = Arc::clone(config);
    tokio::task::spawn_blocking(move || {
        let mut gauges = metrics::EvidenceGauges {
            checkpoint_size: ledger
                .checkpoint_at_or_before(u64::MAX)
                .ok()
                .flatten()
                .map_or(0, |(size, _)| size),
            replication_backlog: config
                .is_agent()
                .then(|| ledger.replication_backlog().ok())
                .flatten(),
            ..Default::default()
        };
        for witness in &config.evidence.witnesses {
            let url = witness.url.to_string();
            let size = ledger.witness_acked(&url).ok().flatten().unwrap_or(0);
            gauges.cosigned.push((url, size));
        }
        for log in config.witness.iter().flat_map(|w| &w.logs) {
            let size = ledger
                .witnessed_head(&log.origin)
                .ok()
                .flatten()
                .map_or(0, |head| head.size);
            let heard = ledger
                .last_heard(&log.origin)
                .ok()
                .flatten()
                .map(|at| at.as_second());
            gauges.witnessed.push((log.origin.clone(), size, heard));
        }
        gauges
    })
    .await
    .unwrap_or_default()
}

#[derive(Debug, Deserialize)]
struct MonthParam {
    month: Option<String>,
    /// `report`: the trend's length in months (SPEC §10), 1 to 12.
    months: Option<u32>,
}

/// The month asked for, or the current one; `Err` is the message of a bad request.
fn month_of(config: &Config, param: Option<&str>) -> Result<Month, String> {
    match param {
        None | Some("") => Ok(Month::containing(Timestamp::now(), &config.daemon.timezone)),
        Some(text) => text
            .parse::<Month>()
            .map_err(|e| format!("month must be YYYY-MM: {e}")),
    }
}

async fn report_json(
    AxumState(state): AxumState<HttpState>,
    Query(param): Query<MonthParam>,
) -> Response {
    let config = state.config();
    let month = match month_of(&config, param.month.as_deref()) {
        Ok(month) => month,
        Err(message) => return error(StatusCode::BAD_REQUEST, message),
    };
    let months = param.months.unwrap_or(1);
    if !(1..=trend::MAX_MONTHS).contains(&months) {
        return error(
            StatusCode::BAD_REQUEST,
            format!("months must be from 1 to {}", trend::MAX_MONTHS),
        );
    }
    let cached = state.figures().await;
    let current = cached
        .month
        .as_ref()
        .filter(|doc| doc.month == month.to_string())
        .map(|document| (**document).clone());
    // The month's own figures come from the cache when they are there; the months before
    // it (`previous`, the trend) are read each time — closed months are stored, so cheaply.
    let computed = on_ledger(&state, move |config, ledger| {
        let everything = monthly::Selection::default();
        let now = Timestamp::now();
        let mut document = match current {
            Some(document) => document,
            None => monthly::month_document(config, ledger, month, now, &everything)?,
        };
        trend::add_trend(
            config,
            ledger,
            &mut document,
            month,
            now,
            &everything,
            months,
        )?;
        Ok(document)
    });
    let document = match computed.await {
        Ok(document) => document,
        Err(response) => return response,
    };
    Json(figures::public_document(&config, document)).into_response()
}

async fn incidents_json(
    AxumState(state): AxumState<HttpState>,
    Query(param): Query<MonthParam>,
) -> Response {
    let config = state.config();
    let month = match month_of(&config, param.month.as_deref()) {
        Ok(month) => month,
        Err(message) => return error(StatusCode::BAD_REQUEST, message),
    };
    // This month's come from the cache (kept newest first for the page).
    let cached = state.figures().await;
    if cached
        .month
        .as_ref()
        .is_some_and(|doc| doc.month == month.to_string())
    {
        let mut incidents = cached.incidents.clone();
        incidents.reverse();
        return Json(incidents).into_response();
    }
    let found = on_ledger(&state, move |config, ledger| {
        monthly::incidents(config, ledger, month, Timestamp::now())
    });
    match found.await {
        Ok(incidents) => Json(figures::public_incidents(&config, incidents)).into_response(),
        Err(response) => response,
    }
}

/// Runs `query` on the blocking pool over the live configuration and the ledger, seeing
/// flushed results only, when it is its turn (see [`HttpState::expensive_turn`]); its error is
/// the client's (400), a failed task the server's (500).
async fn on_ledger<T: Send + 'static>(
    state: &HttpState,
    query: impl FnOnce(&Config, &Ledger) -> Result<T, QueryError> + Send + 'static,
) -> Result<T, Response> {
    let _turn = state.expensive_turn().await?;
    let handle = state.handle.clone();
    let done = tokio::task::spawn_blocking(move || {
        let config = Arc::clone(&handle.config.borrow());
        let _flushed_only = handle.shared.gate.read().unwrap_or_else(|p| p.into_inner());
        query(&config, &handle.shared.ledger)
    })
    .await;
    match done {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(error(StatusCode::BAD_REQUEST, e.to_string())),
        Err(e) => Err(error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())),
    }
}

#[derive(Debug, Deserialize)]
struct SinceParam {
    since: Option<String>,
}

async fn history_json(
    AxumState(state): AxumState<HttpState>,
    Path(name): Path<String>,
    Query(param): Query<SinceParam>,
) -> Response {
    let config = state.config();
    if public_probe(&config, &name).is_none() {
        return error(
            StatusCode::NOT_FOUND,
            format!("no probe is named \"{name}\""),
        );
    }
    let since =
        match query::parse_instant(param.since.as_deref().unwrap_or("24h"), Timestamp::now()) {
            Ok(since) => since,
            Err(e) => return error(StatusCode::BAD_REQUEST, e),
        };
    let show_details = config.daemon.show_details;
    let found = on_ledger(&state, move |config, ledger| {
        query::history(config, ledger, &name, since)
    });
    match found.await {
        Ok(mut history) => {
            if !show_details {
                for line in &mut history.results {
                    line.detail.clear();
                }
            }
            Json(history).into_response()
        }
        Err(response) => response,
    }
}

async fn availability_badge(
    AxumState(state): AxumState<HttpState>,
    Path(file): Path<String>,
) -> Response {
    let config = state.config();
    let Some(name) = file.strip_suffix(".svg") else {
        return error(StatusCode::NOT_FOUND, "badges end in .svg");
    };
    let Some(spec) = public_probe(&config, name) else {
        return error(
            StatusCode::NOT_FOUND,
            format!("no probe is named \"{name}\""),
        );
    };
    let figures = state.figures().await;
    let month = figures
        .month
        .as_ref()
        .and_then(|doc| doc.probes.iter().find(|p| p.name == name));
    svg(badge::availability(spec.shown_name(), month))
}

async fn state_badge(AxumState(state): AxumState<HttpState>, Path(name): Path<String>) -> Response {
    let config = state.config();
    let Some(spec) = public_probe(&config, &name) else {
        return error(
            StatusCode::NOT_FOUND,
            format!("no probe is named \"{name}\""),
        );
    };
    let status = public_status(&state);
    let current = status
        .probes
        .iter()
        .find(|p| p.name == spec.name.as_str())
        .map(|p| p.state);
    svg(badge::state(spec.shown_name(), current))
}

fn svg(body: String) -> Response {
    (
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            (header::CACHE_CONTROL, "max-age=60"),
        ],
        body,
    )
        .into_response()
}
