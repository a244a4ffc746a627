//! Alerts (SPEC §6): events raised from confirmed transitions ([`rules`]), stored in the
//! ledger's outbox before any delivery is tried ([`queue`]), and delivered to webhook and
//! desktop channels with retries across restarts ([`deliver`], [`dispatch`]).
//!
//! May use `model`, `config`, `threshold`, `ledger`, `report` and `query`.

pub mod budget;
pub mod deliver;
pub mod dispatch;
pub mod event;
pub mod rules;
pub mod watch;

use std::sync::atomic::{AtomicU64, Ordering};

use jiff::Timestamp;

pub use event::{Event, EventError, EventKind};
pub use rules::{Alerter, Seen};

use crate::{
    config::Config,
    ledger::{DeliveryStatus, Ledger, LedgerError, OutboxEntry, OutboxItem},
    query::monthly::{self, Selection},
    report::Month,
};

/// A fresh id: 128 random bits in hex (a counter keeps ids apart should the random source
/// ever fail).
pub fn unique_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut bytes = [0u8; 16];
    if aws_lc_rs::rand::fill(&mut bytes).is_err() {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let now = Timestamp::now().as_nanosecond() as u64;
        bytes[..8].copy_from_slice(&now.to_be_bytes());
        bytes[8..].copy_from_slice(&(n ^ u64::from(std::process::id())).to_be_bytes());
    }
    crate::model::hex(&bytes)
}

/// Adds this month's figures of the event's probe (availability, target, budget left), read
/// from the ledger as of `now`. Best effort: an alert goes out without them rather than not.
pub fn enrich(config: &Config, ledger: &Ledger, event: &mut Event, now: Timestamp) {
    let Some(probe) = event.probe.clone() else {
        return;
    };
    let month = Month::containing(now, &config.daemon.timezone);
    let selection = Selection {
        probe: Some(probe),
        sla: None,
    };
    if let Ok(document) = monthly::month_document(config, ledger, month, now, &selection)
        && let Some(figures) = document.probes.first()
    {
        event.month_availability = figures.availability;
        event.target = Some(figures.target);
        event.budget_remaining_seconds = Some(figures.budget_remaining_seconds);
    }
}

/// The outbox entries of `event`: one per channel that takes it — the probe's `channels`
/// (every channel when unset) whose `events` include it.
pub fn route(config: &Config, event: &Event) -> Vec<OutboxEntry> {
    let wanted = event
        .probe
        .as_deref()
        .and_then(|name| config.probe(name))
        .and_then(|spec| spec.channels.as_ref());
    config
        .channels
        .iter()
        .filter(|channel| wanted.is_none_or(|names| names.contains(&channel.name)))
        .filter(|channel| channel.events.iter().any(|e| e == event.event.as_str()))
        .filter_map(|channel| entry_for(event, &channel.name))
        .collect()
}

/// The outbox entry that delivers `event` to `channel`; its delivery id is the event id and
/// the channel, so every attempt (and every restart) sends the same id.
pub fn entry_for(event: &Event, channel: &str) -> Option<OutboxEntry> {
    let payload = serde_json::to_string(event).ok()?;
    Some(OutboxEntry {
        id: format!("{}-{channel}", event.id),
        channel: channel.to_owned(),
        event: event.event.as_str().to_owned(),
        subject: event.probe.clone(),
        created: event.at,
        payload,
        attempts: 0,
        next_attempt: event.at,
        status: DeliveryStatus::Pending,
        settled: None,
        last_error: String::new(),
    })
}

/// The outbox entries of a closed month's `report`: one per channel the SLA's `report_to`
/// names. Those channels asked for it by name, so their `events` lists do not filter it.
pub fn report_entries(
    config: &Config,
    sla: &crate::config::SlaSpec,
    event: &Event,
) -> Vec<OutboxEntry> {
    sla.report_to
        .iter()
        .filter(|name| config.channels.iter().any(|c| &c.name == *name))
        .filter_map(|name| entry_for(event, name))
        .map(|entry| OutboxEntry {
            // What `upledger alerts` and a desktop notification's title name.
            subject: Some(sla.name.clone()),
            ..entry
        })
        .collect()
}

/// Stores a `test` event for `channel` (which must exist) and returns it as stored: what
/// `upledger alerts test` sends through the normal delivery path.
pub fn queue_test(
    config: &Config,
    ledger: &Ledger,
    channel: &str,
    now: Timestamp,
) -> Result<OutboxItem, String> {
    if !config.channels.iter().any(|c| c.name == channel) {
        let known: Vec<&str> = config.channels.iter().map(|c| c.name.as_str()).collect();
        return Err(format!(
            "no channel is named \"{channel}\" (configured: {})",
            if known.is_empty() {
                "none".to_owned()
            } else {
                known.join(", ")
            }
        ));
    }
    let mut event = Event::new(EventKind::Test, None, now);
    event.summarize();
    let entry = entry_for(&event, channel).ok_or("cannot encode the test event")?;
    let keys = ledger
        .outbox_add(std::slice::from_ref(&entry))
        .map_err(|e| e.to_string())?;
    let key = keys.first().copied().ok_or("the outbox stored nothing")?;
    Ok(OutboxItem { key, entry })
}

/// Enriches, routes and stores `events` (flushed) so that delivery can start; returns how many
/// deliveries were queued.
pub fn queue(
    config: &Config,
    ledger: &Ledger,
    events: &mut [Event],
    now: Timestamp,
) -> Result<usize, LedgerError> {
    let mut entries = Vec::new();
    for event in events.iter_mut() {
        enrich(config, ledger, event, now);
        entries.extend(route(config, event));
    }
    if entries.is_empty() {
        return Ok(0);
    }
    ledger.outbox_add(&entries)?;
    Ok(entries.len())
}
