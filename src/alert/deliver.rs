//! One delivery attempt to one channel: a webhook POST (signed when the channel has a secret)
//! or a desktop notification over the session D-Bus.

use std::{collections::HashMap, sync::Mutex, time::Duration};

use aws_lc_rs::hmac;
use tracing::{info, warn};

use super::event::Event;
use crate::{
    config::{ChannelKind, ChannelSpec},
    ledger::OutboxEntry,
};

/// How long a desktop notification may take before the attempt counts as failed.
const DESKTOP_TIMEOUT: Duration = Duration::from_secs(10);

/// Delivers outbox entries; shared by the dispatcher and `upledger alerts test`.
pub struct Deliverer {
    client: reqwest::Client,
    /// What was last said about each desktop channel: a missing session bus is said once,
    /// not on every retry.
    desktop_failures: Mutex<FailureLog>,
}

/// What a delivery outcome is worth logging, given the channel's outcomes before it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// The channel starts failing: say why.
    Failing,
    /// The channel still fails, but for another reason: say the new one.
    NewReason,
    /// The channel delivers again after failing.
    Recovered,
    /// Nothing new.
    Quiet,
}

/// Per channel, the reason of the failure in progress, so that a channel that cannot deliver
/// for hours logs its reason once (and again only when it changes or delivery recovers),
/// while its alerts keep being retried.
#[derive(Debug, Default)]
pub struct FailureLog {
    failing: HashMap<String, String>,
}

impl FailureLog {
    /// Records `outcome` of a delivery to `channel`; says what is worth logging about it.
    pub fn note(&mut self, channel: &str, outcome: &Result<(), String>) -> Notice {
        match outcome {
            Ok(()) => match self.failing.remove(channel) {
                Some(_) => Notice::Recovered,
                None => Notice::Quiet,
            },
            Err(reason) => match self.failing.insert(channel.to_owned(), reason.clone()) {
                None => Notice::Failing,
                Some(previous) if previous == *reason => Notice::Quiet,
                Some(_) => Notice::NewReason,
            },
        }
    }
}

impl Deliverer {
    /// A deliverer with its own HTTP client (connection pools are reused across deliveries).
    pub fn new() -> Result<Deliverer, String> {
        let client = reqwest::Client::builder()
            .user_agent(concat!("upledger/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::limited(3))
            .build()
            .map_err(|e| format!("cannot build the HTTP client for alerts: {e}"))?;
        Ok(Deliverer {
            client,
            desktop_failures: Mutex::new(FailureLog::default()),
        })
    }

    /// One attempt to deliver `entry` to `channel`; `Err` says why it failed.
    pub async fn deliver(&self, channel: &ChannelSpec, entry: &OutboxEntry) -> Result<(), String> {
        match &channel.kind {
            ChannelKind::Webhook {
                url,
                secret,
                format,
                timeout,
            } => {
                let body = render(format, entry);
                let mut request = self
                    .client
                    .post(url.clone())
                    .timeout(*timeout)
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .header("X-Upledger-Event", &entry.event)
                    .header("X-Upledger-Delivery", &entry.id);
                if let Some(secret) = secret {
                    request = request.header("X-Upledger-Signature", signature(secret, &body));
                }
                let response = request.body(body).send().await.map_err(|e| describe(&e))?;
                let status = response.status();
                if status.is_success() {
                    Ok(())
                } else {
                    Err(format!("the receiver answered HTTP {status}"))
                }
            }
            ChannelKind::Desktop => {
                let (title, summary, critical) = desktop_text(entry);
                let shown = tokio::time::timeout(
                    DESKTOP_TIMEOUT,
                    tokio::task::spawn_blocking(move || show_desktop(&title, &summary, critical)),
                )
                .await;
                let outcome = match shown {
                    Ok(Ok(outcome)) => outcome,
                    Ok(Err(e)) => Err(e.to_string()),
                    Err(_) => Err("the notification service did not answer in 10 s".to_owned()),
                };
                let notice = self
                    .desktop_failures
                    .lock()
                    .map(|mut log| log.note(&channel.name, &outcome))
                    .unwrap_or(Notice::Quiet);
                let reason = outcome.as_ref().err().map_or("", String::as_str);
                match notice {
                    Notice::Failing => {
                        warn!(channel = %channel.name, reason = %reason, "desktop notifications fail (is there a session D-Bus? run the user unit); retrying, and saying this again only when the reason changes")
                    }
                    Notice::NewReason => {
                        warn!(channel = %channel.name, reason = %reason, "desktop notifications still fail, now for another reason; retrying")
                    }
                    Notice::Recovered => {
                        info!(channel = %channel.name, "desktop notifications are delivered again")
                    }
                    Notice::Quiet => {}
                }
                outcome
            }
        }
    }
}

/// The body a webhook sends: the event document, or a chat message for `slack` / `discord`.
fn render(format: &str, entry: &OutboxEntry) -> Vec<u8> {
    let summary = || {
        serde_json::from_str::<Event>(&entry.payload)
            .map(|event| event.summary)
            .unwrap_or_else(|_| format!("upledger {} alert", entry.event))
    };
    match format {
        "slack" => serde_json::json!({ "text": summary() })
            .to_string()
            .into_bytes(),
        "discord" => serde_json::json!({ "content": summary() })
            .to_string()
            .into_bytes(),
        _ => entry.payload.clone().into_bytes(),
    }
}

/// `sha256=<hex HMAC-SHA256 of body keyed with secret>`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    let tag = hmac::sign(&key, body);
    format!("sha256={}", crate::model::hex(tag.as_ref()))
}

/// A transport error with its causes, on one line.
fn describe(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn desktop_text(entry: &OutboxEntry) -> (String, String, bool) {
    let summary = serde_json::from_str::<Event>(&entry.payload)
        .map(|event| event.summary)
        .unwrap_or_default();
    let title = match &entry.subject {
        Some(subject) => format!("upledger: {} {}", subject, entry.event),
        None => format!("upledger: {}", entry.event),
    };
    (title, summary, entry.event == "down")
}

fn show_desktop(title: &str, body: &str, critical: bool) -> Result<(), String> {
    notify_rust::Notification::new()
        .appname("upledger")
        .summary(title)
        .body(body)
        .urgency(if critical {
            notify_rust::Urgency::Critical
        } else {
            notify_rust::Urgency::Normal
        })
        .show()
        .map(|_| ())
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failing_channel_is_logged_once_per_reason_and_on_recovery() {
        let mut log = FailureLog::default();
        let no_bus = Err("no session bus".to_owned());
        assert_eq!(log.note("desk", &no_bus), Notice::Failing);
        for _ in 0..57 {
            assert_eq!(log.note("desk", &no_bus), Notice::Quiet, "not per retry");
        }
        assert_eq!(
            log.note("other", &no_bus),
            Notice::Failing,
            "channels apart"
        );
        assert_eq!(
            log.note("desk", &Err("timed out".to_owned())),
            Notice::NewReason
        );
        assert_eq!(
            log.note("desk", &no_bus),
            Notice::NewReason,
            "a reason that comes back is said again"
        );
        assert_eq!(log.note("desk", &Ok(())), Notice::Recovered);
        assert_eq!(log.note("desk", &Ok(())), Notice::Quiet);
        assert_eq!(log.note("desk", &no_bus), Notice::Failing, "a new episode");
    }

    /// RFC 4231 test case 2.
    #[test]
    fn signatures_are_hmac_sha256_in_hex() {
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
