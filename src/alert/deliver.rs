//! One delivery attempt to one channel: a webhook POST (signed when the channel has a secret)
//! or a desktop notification over the session D-Bus.

use std::{collections::HashSet, sync::Mutex, time::Duration};

use aws_lc_rs::hmac;
use tracing::warn;

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
    /// Desktop failure reasons already logged: a missing session bus is said once, not on
    /// every retry.
    desktop_failures: Mutex<HashSet<String>>,
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
            desktop_failures: Mutex::new(HashSet::new()),
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
                if let Err(reason) = &outcome {
                    let first = self
                        .desktop_failures
                        .lock()
                        .map(|mut seen| seen.insert(reason.clone()))
                        .unwrap_or(false);
                    if first {
                        warn!(channel = %channel.name, reason = %reason, "desktop notifications fail (is there a session D-Bus? run the user unit); retrying, and saying this once");
                    }
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
    let hex: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
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

    /// RFC 4231 test case 2.
    #[test]
    fn signatures_are_hmac_sha256_in_hex() {
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
