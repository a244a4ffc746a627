//! Month close delivery (SPEC §10): once a month is closed for an SLA whose `report_to` names
//! channels, its final figures, the Markdown summary and (with a signing key) the signed
//! report go into the outbox as one `report` event per channel, to be delivered like any alert
//! (at least once, retried across restarts).
//!
//! **Once per SLA and month.** The outbox entries and the mark `report/<month>/<zone>/<sla>`
//! are stored in one ledger transaction ([`Ledger::outbox_add_once`]): a daemon killed while
//! closing either stored both (the next run delivers the entries and raises nothing new) or
//! neither (the next run raises the report). Redelivery of an entry keeps its delivery id.
//!
//! **When.** Not at the instant the month ends: at [`monthly::sla_closes_at`] (the month's end
//! plus its members' back-dating margin, when its figures become final and are stored), plus
//! [`CLOSE_GRACE`] and the members' longest timeout for checks still in flight. With a signing
//! key, also not before the evidence log has sealed the covered probes' hours past that
//! instant, so the signed report holds the same final figures (with hour-long leaves, up to an
//! hour later).
//!
//! **Which months.** Only the month before the current one, and only when the SLA's probes
//! were checked in it: a daemon started long after a month closed sends that last month's
//! report if this ledger has results for it and it was never sent (it closed while the daemon
//! was stopped, or `report_to` was just added), and never older months — no flood of
//! historic reports after an upgrade or a long stop. A month with no check of the SLA's
//! probes (a new install) sends nothing.
//!
//! May use `config`, `ledger`, `query`, `render`, `alert` and `evidence`.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, PoisonError},
    time::Duration,
};

use jiff::{SignedDuration, Timestamp};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::recorder::Shared;
use crate::{
    alert::{self, Event, EventKind, event::SignedReportText},
    config::{Config, SlaSpec},
    ledger::Ledger,
    query::{
        monthly::{self, Selection},
        trend,
    },
    report::Month,
};

/// How often closed months are looked for: a look is a few comparisons and one ledger read
/// per SLA, and the report goes out this soon after its month is final.
const CLOSE_LOOK: Duration = Duration::from_secs(1);

/// Slack after a month is final before its report is made, beyond the members' timeout: the
/// results of checks that started just before the close reach the ledger in the recorder's
/// next commit.
const CLOSE_GRACE: SignedDuration = SignedDuration::from_secs(1);

/// How long after a failed look the month is looked at again.
const RETRY_AFTER: SignedDuration = SignedDuration::from_secs(60);

/// What a look at one SLA's last month came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// Not closed yet (or its signed report not sealed yet): look again.
    NotYet,
    /// Stored in the outbox now.
    Queued(usize),
    /// Nothing to do for this month any more: sent before, or nothing was measured.
    Settled,
}

/// Looks every [`CLOSE_LOOK`] for SLAs with `report_to` whose last month has closed, and
/// queues each such month's report once (see the module doc).
pub(super) async fn report_closed_months(
    shared: Shared,
    config: watch::Receiver<Arc<Config>>,
    cancel: CancellationToken,
) {
    let mut tick = tokio::time::interval(CLOSE_LOOK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Months settled in this run (mark set, or nothing measured), so a look costs no ledger
    // read for them.
    let mut settled: HashSet<String> = HashSet::new();
    // Months whose last look failed, and when to look again: a failure (a damaged ledger, a
    // signing error) is retried, but not every second with a month's computation each time.
    let mut retry_at: HashMap<String, Timestamp> = HashMap::new();
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        let current = Arc::clone(&config.borrow());
        let now = Timestamp::now();
        let Some(month) = Month::containing(now, &current.daemon.timezone).previous() else {
            continue;
        };
        let Ok(period) = month.bounds(&current.daemon.timezone) else {
            continue;
        };
        for sla in current.slas.iter().filter(|sla| !sla.report_to.is_empty()) {
            let mark = mark(month, &current.daemon.timezone_name, &sla.name);
            if settled.contains(&mark) || retry_at.get(&mark).is_some_and(|at| now < *at) {
                continue;
            }
            let Some(due) = monthly::sla_closes_at(&current, sla, period)
                .and_then(|closes| closes.checked_add(grace(&current, sla)).ok())
            else {
                continue;
            };
            if now < due {
                continue;
            }
            let working = shared.clone();
            let config = Arc::clone(&current);
            let sla_name = sla.name.clone();
            let marking = mark.clone();
            let looked = tokio::task::spawn_blocking(move || {
                close_month(&working, &config, &sla_name, month, due, &marking, now)
            })
            .await;
            match looked {
                Ok(Ok(Outcome::NotYet)) => {}
                Ok(Ok(Outcome::Settled)) => {
                    settled.insert(mark);
                }
                Ok(Ok(Outcome::Queued(deliveries))) => {
                    info!(sla = %sla.name, month = %month, deliveries, "month closed: report queued");
                    settled.insert(mark);
                    shared.alerts.notify_one();
                }
                Ok(Err(e)) => {
                    warn!(sla = %sla.name, month = %month, error = %e, "cannot queue the closed month's report; retrying in a minute");
                    retry_at.insert(
                        mark,
                        now.saturating_add(RETRY_AFTER).unwrap_or(Timestamp::MAX),
                    );
                }
                Err(e) => {
                    warn!(sla = %sla.name, month = %month, error = %e, "month report task failed; retrying in a minute");
                    retry_at.insert(
                        mark,
                        now.saturating_add(RETRY_AFTER).unwrap_or(Timestamp::MAX),
                    );
                }
            }
        }
    }
}

/// The once-only mark of `sla`'s report of `month` (months are periods of the time zone).
fn mark(month: Month, zone: &str, sla: &str) -> String {
    format!("report/{month}/{zone}/{sla}")
}

/// [`CLOSE_GRACE`] plus the longest timeout of `sla`'s members.
fn grace(config: &Config, sla: &SlaSpec) -> SignedDuration {
    let timeout = config
        .probes
        .iter()
        .filter(|p| p.enabled && monthly::covers(sla, &p.name))
        .map(|p| p.timeout)
        .max()
        .unwrap_or_default();
    SignedDuration::try_from(timeout)
        .unwrap_or(SignedDuration::ZERO)
        .saturating_add(CLOSE_GRACE)
}

/// Builds and queues `sla`'s report of the closed `month` unless `mark` says it was queued
/// before. `due` is when the month became final for the SLA (with the grace).
fn close_month(
    shared: &Shared,
    config: &Config,
    sla_name: &str,
    month: Month,
    due: Timestamp,
    mark: &str,
    now: Timestamp,
) -> Result<Outcome, String> {
    let ledger: &Ledger = &shared.ledger;
    if ledger.alert_marked(mark).map_err(|e| e.to_string())? {
        return Ok(Outcome::Settled);
    }
    let Some(sla) = config.slas.iter().find(|s| s.name == sla_name) else {
        return Ok(Outcome::NotYet);
    };
    let signing = shared.evidence.key().is_some();
    // Checked first: until the log has sealed the hours, no month needs computing.
    if signing && !sealed_past(ledger, config, sla, due)? {
        return Ok(Outcome::NotYet);
    }
    let selection = Selection {
        probe: None,
        sla: Some(sla.name.clone()),
    };
    let (document, incidents) = {
        // Only flushed results, as queries see them.
        let _flushed_only = shared.gate.read().unwrap_or_else(PoisonError::into_inner);
        let mut document = monthly::month_document(config, ledger, month, now, &selection)
            .map_err(|e| e.to_string())?;
        // As `upledger report` shows it: with the month before, for the client to compare.
        trend::add_trend(config, ledger, &mut document, month, now, &selection, 1)
            .map_err(|e| e.to_string())?;
        let incidents =
            monthly::incidents(config, ledger, month, now).map_err(|e| e.to_string())?;
        (document, incidents)
    };
    if !document.probes.iter().any(|p| p.checks > 0) {
        debug!(sla = %sla.name, month = %month, "no check of the SLA's probes in the month: no report");
        return Ok(Outcome::Settled);
    }
    let Some(figures) = document.slas.iter().find(|s| s.name == sla.name).cloned() else {
        return Ok(Outcome::Settled);
    };
    let signed_report = if signing {
        match shared
            .evidence
            .signed_report(ledger, config, month, &selection, now)
        {
            Ok((report, _)) => report.signature.map(|signature| SignedReportText {
                json: report.json,
                signature,
            }),
            // The figures matter more than their signature: the report goes without it, and
            // `upledger report --sign` can make it later.
            Err(e) => {
                warn!(sla = %sla.name, month = %month, error = %e, "cannot sign the closed month's report; sending it unsigned");
                None
            }
        }
    } else {
        None
    };
    let markdown = crate::render::markdown(&document, &incidents, config.daemon.show_details);
    let mut event = Event::new(EventKind::Report, None, now);
    event.sla = Some(sla.name.clone());
    event.month = Some(month.to_string());
    event.month_availability = figures.availability;
    event.target = Some(figures.target);
    event.budget_remaining_seconds = Some(figures.budget_remaining_seconds);
    event.report = Some(Box::new(document));
    event.markdown = Some(markdown);
    event.signed_report = signed_report;
    event.summarize();
    let entries = alert::report_entries(config, sla, &event);
    if entries.is_empty() {
        return Ok(Outcome::Settled);
    }
    let stored = ledger
        .outbox_add_once(mark, &entries)
        .map_err(|e| e.to_string())?;
    Ok(if stored {
        Outcome::Queued(entries.len())
    } else {
        Outcome::Settled
    })
}

/// Whether the evidence log has sealed every covered probe's hours up to `until`, so a
/// signed report made now holds the month's final figures.
fn sealed_past(
    ledger: &Ledger,
    config: &Config,
    sla: &SlaSpec,
    until: Timestamp,
) -> Result<bool, String> {
    let covered = config
        .probes
        .iter()
        .filter(|p| p.enabled && monthly::covers(sla, &p.name));
    for probe in covered {
        let next = ledger
            .log_cursor(probe.name.as_str())
            .map_err(|e| e.to_string())?
            .map_or(Timestamp::MIN, |cursor| cursor.next);
        if next < until {
            return Ok(false);
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_name_the_month_its_zone_and_the_sla() {
        let month: Month = "2027-01".parse().expect("a month");
        assert_eq!(
            mark(month, "Europe/Berlin", "acme-premium"),
            "report/2027-01/Europe/Berlin/acme-premium"
        );
    }
}
