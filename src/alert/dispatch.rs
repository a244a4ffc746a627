//! The delivery loop: takes due entries from the outbox, tries each once, and stores the
//! outcome — delivered, retry later (exponential backoff with jitter), or failed after
//! `[daemon].alert_retry_for`. It runs apart from probing and recording, so a slow or dead
//! receiver delays nothing but its own alerts.

use std::{sync::Arc, time::Duration};

use jiff::{SignedDuration, Timestamp};
use tokio::{
    sync::{Notify, watch},
    task::JoinSet,
};
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use super::deliver::Deliverer;
use crate::{
    config::{ChannelKind, Config},
    ledger::{DeliveryStatus, Ledger, OutboxItem},
};

/// Delay before the first retry; doubles per attempt up to [`MAX_RETRY_DELAY`].
const FIRST_RETRY_DELAY: Duration = Duration::from_secs(1);
const MAX_RETRY_DELAY: Duration = Duration::from_secs(600);
/// Deliveries in flight at once.
const MAX_IN_FLIGHT: usize = 16;
/// Longest sleep between looks at the outbox (new entries also wake the loop).
const IDLE_LOOK: Duration = Duration::from_secs(30);

/// How long to wait after the `attempts`-th failed attempt: doubling from one second up to
/// ten minutes, scaled by `jitter` (0 ≤ jitter < 1) into its upper half, so that receivers
/// coming back are not hit by every retry at once.
pub fn retry_delay(attempts: u32, jitter: f64) -> Duration {
    let doubling = 2u32.saturating_pow(attempts.saturating_sub(1).min(20));
    let base = FIRST_RETRY_DELAY
        .saturating_mul(doubling)
        .min(MAX_RETRY_DELAY);
    base.mul_f64(0.5 + jitter.clamp(0.0, 1.0) / 2.0)
}

/// A random number in `[0, 1)`.
fn jitter() -> f64 {
    let mut byte = [0u8; 2];
    let _ = aws_lc_rs::rand::fill(&mut byte);
    f64::from(u16::from_be_bytes(byte)) / 65_536.0
}

/// Runs deliveries until `cancel`; `wake` is notified when new entries are stored.
pub async fn run(
    ledger: Arc<Ledger>,
    config: watch::Receiver<Arc<Config>>,
    wake: Arc<Notify>,
    deliverer: Arc<Deliverer>,
    cancel: CancellationToken,
) {
    // After a start every pending entry is due: the receiver may have come back meanwhile.
    let mut first_round = true;
    loop {
        let reading = Arc::clone(&ledger);
        let pending = match tokio::task::spawn_blocking(move || reading.outbox_pending()).await {
            Ok(Ok(pending)) => pending,
            Ok(Err(e)) => {
                error!(error = %e, "cannot read the alert outbox");
                Vec::new()
            }
            Err(e) => {
                error!(error = %e, "outbox reader failed");
                Vec::new()
            }
        };
        let now = Timestamp::now();
        let (due, later): (Vec<OutboxItem>, Vec<OutboxItem>) = pending
            .into_iter()
            .partition(|item| first_round || item.entry.next_attempt <= now);
        first_round = false;
        let current = Arc::clone(&config.borrow());
        // On shutdown, attempts in flight are dropped: their entries stay pending and are
        // tried again after the restart (delivery is at least once), so a receiver that hangs
        // never holds up SIGTERM.
        let mut attempts = JoinSet::new();
        let attempted = !due.is_empty();
        for item in due {
            while attempts.len() >= MAX_IN_FLIGHT {
                tokio::select! {
                    () = cancel.cancelled() => return,
                    _ = attempts.join_next() => {}
                }
            }
            attempts.spawn(attempt(
                Arc::clone(&ledger),
                Arc::clone(&current),
                Arc::clone(&deliverer),
                item,
            ));
        }
        loop {
            tokio::select! {
                () = cancel.cancelled() => return,
                joined = attempts.join_next() => if joined.is_none() { break },
            }
        }

        if attempted {
            // The entries just tried have their next attempt stored now, which `later` does
            // not know: read the outbox again rather than sleep a whole idle look (a first
            // retry is due within a second).
            continue;
        }
        let next = later.iter().map(|item| item.entry.next_attempt).min();
        let sleep = next
            .and_then(|at| at.duration_since(Timestamp::now()).try_into().ok())
            .unwrap_or(IDLE_LOOK)
            .min(IDLE_LOOK);
        tokio::select! {
            () = cancel.cancelled() => return,
            () = wake.notified() => {}
            () = tokio::time::sleep(sleep) => {}
        }
    }
}

/// One attempt at one entry, and its outcome stored.
async fn attempt(
    ledger: Arc<Ledger>,
    config: Arc<Config>,
    deliverer: Arc<Deliverer>,
    mut item: OutboxItem,
) {
    let entry = &mut item.entry;
    let channel = config.channels.iter().find(|c| c.name == entry.channel);
    let outcome = match channel {
        Some(channel) => deliverer.deliver(channel, entry).await,
        None => Err(format!(
            "channel \"{}\" is no longer configured",
            entry.channel
        )),
    };
    let desktop = channel.is_some_and(|c| matches!(c.kind, ChannelKind::Desktop));
    let now = Timestamp::now();
    entry.attempts = entry.attempts.saturating_add(1);
    match outcome {
        Ok(()) => {
            entry.status = DeliveryStatus::Delivered;
            entry.settled = Some(now);
            entry.last_error.clear();
            info!(channel = %entry.channel, event = %entry.event, subject = entry.subject.as_deref().unwrap_or(""), id = %entry.id, attempts = entry.attempts, "alert delivered");
        }
        Err(reason) => {
            let retry_for = SignedDuration::try_from(config.daemon.alert_retry_for)
                .unwrap_or(SignedDuration::from_hours(24));
            let expired = channel.is_none()
                || entry
                    .created
                    .checked_add(retry_for)
                    .is_ok_and(|deadline| now >= deadline);
            entry.last_error = reason;
            if expired {
                entry.status = DeliveryStatus::Failed;
                entry.settled = Some(now);
                error!(channel = %entry.channel, event = %entry.event, subject = entry.subject.as_deref().unwrap_or(""), id = %entry.id, attempts = entry.attempts, reason = %entry.last_error, "ALERT NOT DELIVERED: giving up");
            } else {
                let delay = retry_delay(entry.attempts, jitter());
                entry.next_attempt = now
                    .checked_add(SignedDuration::try_from(delay).unwrap_or(SignedDuration::ZERO))
                    .unwrap_or(now);
                // A desktop channel logs its reason itself, once per failure episode
                // (`deliver::FailureLog`): without a session bus it would otherwise say so on
                // every retry of every alert.
                if desktop {
                    debug!(channel = %entry.channel, event = %entry.event, id = %entry.id, attempts = entry.attempts, retry_in = ?delay, reason = %entry.last_error, "alert delivery failed; will retry");
                } else {
                    warn!(channel = %entry.channel, event = %entry.event, id = %entry.id, attempts = entry.attempts, retry_in = ?delay, reason = %entry.last_error, "alert delivery failed; will retry");
                }
            }
        }
    }
    let stored = tokio::task::spawn_blocking(move || ledger.outbox_update(&item)).await;
    match stored {
        Ok(Ok(())) => {}
        Ok(Err(e)) => error!(error = %e, "cannot store an alert's delivery status"),
        Err(e) => error!(error = %e, "outbox writer failed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_with_jitter_and_a_ceiling() {
        assert_eq!(retry_delay(1, 0.0), Duration::from_millis(500));
        assert_eq!(
            retry_delay(1, 0.999_999),
            Duration::from_secs(1) - Duration::from_nanos(500)
        );
        assert_eq!(retry_delay(4, 0.0), Duration::from_secs(4));
        assert_eq!(retry_delay(30, 0.0), MAX_RETRY_DELAY / 2);
        assert!(retry_delay(u32::MAX, 1.0) <= MAX_RETRY_DELAY);
        let mut previous = Duration::ZERO;
        for attempts in 1..15 {
            let delay = retry_delay(attempts, 0.5);
            assert!(delay >= previous);
            previous = delay;
        }
    }
}
