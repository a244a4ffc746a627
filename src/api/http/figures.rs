//! The figures the public pages show, computed in the background: this month's document,
//! 90 days of daily availability per public probe, this month's incidents and the planned
//! maintenance of the next two weeks. Views read the latest copy; nothing a visitor does
//! computes a month. Nobody looking costs nothing, neither CPU nor memory: the figures are
//! computed only while views read them, and dropped after [`DROP_AFTER`] without one (at
//! 10,000 probes they take about 9 MB).

use std::{collections::HashMap, sync::Arc, time::Duration};

use jiff::{SignedDuration, Timestamp};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use crate::{
    config::Config,
    daemon::Handle,
    ledger::{Ledger, RollupKind},
    query::monthly::{self, Incident, MonthDocument, Selection},
    report::{Interval, Month, maintenance_windows},
};

/// The shortest pause between two computations of the figures; a computation that takes
/// longer (many probes) stretches the pause to [`DUTY_FACTOR`] times its duration, so the
/// page never costs more than 2 % of a core: a monitor must cost its host almost nothing.
pub const REFRESH_EVERY: Duration = Duration::from_secs(30);
/// Pause after a computation, in multiples of its duration.
const DUTY_FACTOR: u32 = 50;
/// The first computation waits this long after start, so it sees the first checks.
const FIRST_REFRESH: Duration = Duration::from_secs(2);
/// Figures nobody viewed for this long are dropped; the next view waits for new ones.
const DROP_AFTER: Duration = Duration::from_secs(600);
/// Longest a view waits for figures being computed; after it, the view shows what there is
/// ("being computed").
const FIRST_VIEW_WAIT: Duration = Duration::from_secs(10);
/// The longest pause.
const MAX_PAUSE: Duration = Duration::from_secs(600);

/// Days in the availability bar.
pub const BAR_DAYS: i64 = 90;

/// A probe's daily availability over the last [`BAR_DAYS`] UTC days, oldest first, in
/// hundredths of a percent ([`NO_DATA`] for a day without evidence): two bytes a day, so
/// 10,000 probes' bars take under 2 MB.
#[derive(Debug, Clone, PartialEq)]
pub struct DayBars {
    /// The first day's start.
    pub first: Timestamp,
    /// One value per day.
    pub days: Vec<u16>,
}

/// A day without evidence in [`DayBars`].
pub const NO_DATA: u16 = u16::MAX;

impl DayBars {
    /// Each day's start and availability in percent (`None`: no data).
    pub fn iter(&self) -> impl Iterator<Item = (Timestamp, Option<f64>)> + '_ {
        self.days.iter().enumerate().map(|(i, &value)| {
            let day = self
                .first
                .checked_add(SignedDuration::from_hours(24 * i as i64))
                .unwrap_or(self.first);
            (day, (value != NO_DATA).then(|| f64::from(value) / 100.0))
        })
    }
}

/// A planned maintenance window.
#[derive(Debug, Clone, PartialEq)]
pub struct Planned {
    /// When.
    pub interval: Interval,
    /// Why.
    pub reason: String,
    /// Public probes it covers.
    pub probes: Vec<String>,
}

/// The cached figures.
#[derive(Debug, Default)]
pub struct Figures {
    /// This month, public probes and SLAs only.
    pub month: Option<Arc<MonthDocument>>,
    /// Daily availability per public probe.
    pub bars: HashMap<String, DayBars>,
    /// This month's incidents of public probes, newest first.
    pub incidents: Vec<Incident>,
    /// Maintenance starting within two weeks (or running now).
    pub planned: Vec<Planned>,
    /// When computed.
    pub computed_at: Option<Timestamp>,
}

/// The latest [`Figures`], computed while someone looks.
///
/// A view between two computations gets the last copy (its time is on the page) and wakes the
/// next one; the first view, when there is no copy, waits for it.
#[derive(Debug)]
pub struct FigureCache {
    /// The latest figures; their `computed_at` is `None` until computed (and after they were
    /// dropped for want of viewers).
    figures: watch::Sender<Arc<Figures>>,
    /// Told whenever a view reads the figures.
    viewed: tokio::sync::Notify,
}

impl Default for FigureCache {
    fn default() -> Self {
        FigureCache {
            figures: watch::Sender::new(Arc::default()),
            viewed: tokio::sync::Notify::new(),
        }
    }
}

impl FigureCache {
    /// The figures, telling the refresher someone looks. When there are none, waits (up to
    /// [`FIRST_VIEW_WAIT`]) for the computation this view asks for.
    pub async fn view(&self) -> Arc<Figures> {
        let mut updates = self.figures.subscribe();
        self.viewed.notify_one();
        let current = Arc::clone(&updates.borrow_and_update());
        if current.computed_at.is_some() {
            return current;
        }
        match tokio::time::timeout(FIRST_VIEW_WAIT, updates.changed()).await {
            Ok(Ok(())) => Arc::clone(&updates.borrow()),
            _ => current,
        }
    }

    /// The figures as last computed (perhaps none), without asking for new ones.
    pub fn cached(&self) -> Arc<Figures> {
        Arc::clone(&self.figures.borrow())
    }

    /// Replaces the figures (the refresher does this; so can a benchmark).
    pub fn set(&self, figures: Figures) {
        self.figures.send_replace(Arc::new(figures));
    }

    /// Computes the figures with `compute` (on a blocking thread) until `cancel`, whenever a
    /// view has read them, but no sooner than [`REFRESH_EVERY`] (or [`DUTY_FACTOR`] times as
    /// long as the last computation took) after the last one, and not before [`FIRST_REFRESH`]
    /// after start. Drops them after [`DROP_AFTER`] without a view.
    pub async fn refresh_forever<F>(&self, compute: F, cancel: CancellationToken)
    where
        F: Fn() -> Result<Figures, String> + Clone + Send + 'static,
    {
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(FIRST_REFRESH) => {}
        }
        loop {
            let looked = tokio::select! {
                () = cancel.cancelled() => return,
                () = self.viewed.notified() => true,
                () = tokio::time::sleep(DROP_AFTER) => false,
            };
            if !looked {
                if self.figures.borrow().computed_at.is_some() {
                    self.figures.send_replace(Arc::default());
                    crate::daemon::memory::release_free_memory();
                }
                tokio::select! {
                    () = cancel.cancelled() => return,
                    () = self.viewed.notified() => {}
                }
            }
            let started = std::time::Instant::now();
            let fresh = match tokio::task::spawn_blocking(compute.clone()).await {
                Ok(Ok(fresh)) => Some(fresh),
                Ok(Err(e)) => {
                    warn!(error = %e, "cannot compute the status page figures");
                    None
                }
                Err(e) => {
                    warn!(error = %e, "status page figures task failed");
                    None
                }
            };
            match fresh {
                Some(fresh) => self.set(fresh),
                // Views waiting for figures get the old ones rather than waiting on.
                None => self.figures.send_modify(|_| {}),
            }
            let pause = (started.elapsed() * DUTY_FACTOR).clamp(REFRESH_EVERY, MAX_PAUSE);
            tokio::select! {
                () = cancel.cancelled() => return,
                () = tokio::time::sleep(pause) => {}
            }
        }
    }
}

/// Computes the figures of the daemon behind `handle` now, under the write gate's read side
/// (so they see only flushed results), and hands freed memory back to the system.
pub fn compute_for(handle: &Handle) -> Result<Figures, String> {
    let config = Arc::clone(&handle.config.borrow());
    let _flushed_only = handle.shared.gate.read().unwrap_or_else(|p| p.into_inner());
    let figures = compute(&config, &handle.shared.ledger, Timestamp::now());
    // A month of every probe is the daemon's biggest allocation after a config load; the
    // allocator keeps what checks free (see `main.rs`), so give this back.
    crate::daemon::memory::release_free_memory();
    figures
}

/// Computes every figure as of `now`.
pub fn compute(config: &Config, ledger: &Ledger, now: Timestamp) -> Result<Figures, String> {
    let month = Month::containing(now, &config.daemon.timezone);
    let document = monthly::month_document(config, ledger, month, now, &Selection::default())
        .map_err(|e| e.to_string())?;
    let incidents = monthly::incidents(config, ledger, month, now).map_err(|e| e.to_string())?;
    let mut incidents = public_incidents(config, incidents);
    incidents.reverse();
    let mut bars = HashMap::new();
    for spec in config.probes.iter().filter(|p| super::shown(p)) {
        bars.insert(spec.name.to_string(), day_bars(config, ledger, spec, now)?);
    }
    Ok(Figures {
        month: Some(Arc::new(public_document(config, document))),
        bars,
        incidents,
        planned: planned(config, now),
        computed_at: Some(now),
    })
}

/// Daily availability of `spec` over the last [`BAR_DAYS`] UTC days: from the stored day
/// rollups, and for the days their digests have not finished (today, always) from the
/// results so far, so today's bar shows the last minutes' checks (see
/// [`crate::query::days::live_days`]).
fn day_bars(
    config: &Config,
    ledger: &Ledger,
    spec: &crate::config::ProbeSpec,
    now: Timestamp,
) -> Result<DayBars, String> {
    const DAY: SignedDuration = SignedDuration::from_hours(24);
    let today = Timestamp::from_second(now.as_second().div_euclid(86_400) * 86_400)
        .map_err(|e| e.to_string())?;
    let first = today
        .checked_sub(DAY * (BAR_DAYS as i32 - 1))
        .map_err(|e| e.to_string())?;
    let mut rollups = ledger
        .rollups(&spec.name, RollupKind::Day, first, now)
        .map_err(|e| e.to_string())?;
    let live =
        crate::query::days::live_days(config, ledger, spec, now).map_err(|e| e.to_string())?;
    // A live day replaces what is stored of it (the stored part is in the live one).
    rollups.retain(|(day, _)| !live.iter().any(|(live_day, _)| live_day == day));
    rollups.extend(live);
    let mut days: Vec<(u64, u64)> = vec![(0, 0); BAR_DAYS as usize];
    for (day, rollup) in rollups {
        let index = day.duration_since(first).as_secs().div_euclid(86_400);
        if let Some(day) = usize::try_from(index).ok().and_then(|i| days.get_mut(i)) {
            day.0 += rollup.up_ms + rollup.degraded_ms;
            day.1 += rollup.down_ms;
        }
    }
    Ok(DayBars {
        first,
        days: days
            .into_iter()
            .map(|(good, bad)| match good + bad {
                0 => NO_DATA,
                all => (good * 10_000 / all) as u16,
            })
            .collect(),
    })
}

/// Maintenance of public probes running now or starting within two weeks.
fn planned(config: &Config, now: Timestamp) -> Vec<Planned> {
    let horizon = now
        .checked_add(SignedDuration::from_hours(14 * 24))
        .unwrap_or(now);
    let mut found: Vec<Planned> = Vec::new();
    for spec in config.probes.iter().filter(|p| super::shown(p)) {
        for window in maintenance_windows(
            &config.maintenance,
            &spec.name,
            &config.daemon.timezone,
            Interval::new(now, horizon),
        ) {
            match found
                .iter_mut()
                .find(|p| p.interval == window.interval && p.reason == window.reason)
            {
                Some(planned) => planned.probes.push(spec.name.to_string()),
                None => found.push(Planned {
                    interval: window.interval,
                    reason: window.reason,
                    probes: vec![spec.name.to_string()],
                }),
            }
        }
    }
    found.sort_by_key(|p| p.interval.start);
    found
}

/// `document` without hidden or disabled probes (SLA member lists included).
pub fn public_document(config: &Config, mut document: MonthDocument) -> MonthDocument {
    let public = |name: &str| config.probe(name).is_some_and(super::shown);
    document.probes.retain(|p| public(&p.name));
    for sla in &mut document.slas {
        sla.probes.retain(|name| public(name));
    }
    document
}

/// `incidents` of shown (public, enabled) probes, their details cleared unless `show_details`.
pub fn public_incidents(config: &Config, mut incidents: Vec<Incident>) -> Vec<Incident> {
    incidents.retain(|i| config.probe(&i.probe).is_some_and(super::shown));
    if !config.daemon.show_details {
        for incident in &mut incidents {
            incident.detail.clear();
        }
    }
    incidents
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// A cache refreshed by a computation that counts its runs, on the paused clock.
    fn counting_cache() -> (Arc<FigureCache>, Arc<AtomicUsize>, CancellationToken) {
        let cache = Arc::new(FigureCache::default());
        let runs = Arc::new(AtomicUsize::new(0));
        let cancel = CancellationToken::new();
        let compute = {
            let runs = Arc::clone(&runs);
            move || {
                runs.fetch_add(1, Ordering::SeqCst);
                Ok(Figures {
                    computed_at: Some(Timestamp::now()),
                    ..Figures::default()
                })
            }
        };
        let refresher = Arc::clone(&cache);
        let stop = cancel.clone();
        tokio::spawn(async move { refresher.refresh_forever(compute, stop).await });
        (cache, runs, cancel)
    }

    async fn wait(duration: Duration) {
        tokio::time::sleep(duration).await;
    }

    #[tokio::test(start_paused = true)]
    async fn figures_are_computed_only_for_viewers_and_dropped_without_them() {
        let (cache, runs, cancel) = counting_cache();

        wait(Duration::from_secs(60)).await;
        assert_eq!(runs.load(Ordering::SeqCst), 0, "nobody looked");
        assert!(cache.cached().computed_at.is_none());

        // The first view waits for its computation.
        assert!(cache.view().await.computed_at.is_some());
        assert_eq!(runs.load(Ordering::SeqCst), 1);

        // Views within REFRESH_EVERY get the copy and ask for one more computation after it.
        wait(Duration::from_secs(1)).await;
        assert!(cache.view().await.computed_at.is_some());
        assert!(cache.view().await.computed_at.is_some());
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        wait(REFRESH_EVERY).await;
        assert_eq!(runs.load(Ordering::SeqCst), 2);

        // Nobody looks: no computation, and after DROP_AFTER the copy is gone.
        wait(DROP_AFTER - Duration::from_secs(1)).await;
        assert_eq!(runs.load(Ordering::SeqCst), 2);
        assert!(cache.cached().computed_at.is_some());
        wait(REFRESH_EVERY + Duration::from_secs(2)).await;
        assert!(cache.cached().computed_at.is_none(), "dropped");
        assert_eq!(runs.load(Ordering::SeqCst), 2);

        // The next view waits for new figures.
        assert!(cache.view().await.computed_at.is_some());
        assert_eq!(runs.load(Ordering::SeqCst), 3);
        cancel.cancel();
    }

    #[tokio::test(start_paused = true)]
    async fn a_view_before_the_first_refresh_waits_for_it() {
        let (cache, runs, cancel) = counting_cache();
        let started = tokio::time::Instant::now();
        assert!(cache.view().await.computed_at.is_some());
        assert!(
            started.elapsed() >= FIRST_REFRESH,
            "{:?}",
            started.elapsed()
        );
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        cancel.cancel();
    }
}
