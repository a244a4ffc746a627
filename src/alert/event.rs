//! What an alert says: the event document of SPEC §6, the same for every channel (chat
//! formats render its `summary`).

use std::fmt;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::{
    model::{ErrorClass, State},
    query::monthly::MonthDocument,
};

/// Kinds of alert (the names channels subscribe to).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A probe was confirmed down.
    Down,
    /// A down probe recovered.
    Up,
    /// A probe answers, but slower than `degraded_after`.
    Degraded,
    /// A probe's TLS certificate expires within `cert_expiry_warn`.
    CertExpiring,
    /// A probe's or SLA's month error budget crossed 50, 75, 90 or 100 % used.
    Budget,
    /// The error budget burns fast over both windows of a burn-rate rule.
    BurnRate,
    /// The monitor's own connectivity (the sentinel probe) failed, or came back.
    MonitorOffline,
    /// A log this daemon witnesses signed a checkpoint that does not extend the one the
    /// witness cosigned: two histories under one key (SPEC §9).
    LogFork,
    /// A log this daemon witnesses sent no checkpoint for `[witness] silence`, or spoke again.
    LogSilent,
    /// `upledger alerts test`: checks a channel end to end.
    Test,
    /// A month closed: an SLA's final figures, sent to the channels its `report_to` names
    /// (SPEC §10).
    Report,
}

impl EventKind {
    /// The name in configs, JSON and the `X-Upledger-Event` header.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Down => "down",
            EventKind::Up => "up",
            EventKind::Degraded => "degraded",
            EventKind::CertExpiring => "cert_expiring",
            EventKind::Budget => "budget",
            EventKind::BurnRate => "burn_rate",
            EventKind::MonitorOffline => "monitor_offline",
            EventKind::LogFork => "log_fork",
            EventKind::LogSilent => "log_silent",
            EventKind::Test => "test",
            EventKind::Report => "report",
        }
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a probe failed, as alerts show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventError {
    /// Error class (SPEC §2).
    pub class: ErrorClass,
    /// The check's detail.
    pub message: String,
}

/// The figures of a `burn_rate` alert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BurnReport {
    /// The long window, e.g. `1h`.
    pub long_window: String,
    /// The short window, e.g. `5m`.
    pub short_window: String,
    /// The rule's factor.
    pub factor: f64,
    /// Burn rate over the long window.
    pub long_rate: f64,
    /// Burn rate over the short window.
    pub short_rate: f64,
}

/// A closed month's signed report (SPEC §8), as `upledger report --sign` writes it: the JSON
/// document exactly as signed, and its SSHSIG signature.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SignedReportText {
    /// The signed JSON report, byte for byte (verify these bytes, not a re-encoding).
    pub json: String,
    /// The armored SSHSIG signature (namespace `upledger-report`).
    pub signature: String,
}

/// One alert (SPEC §6). Fields that do not apply are `null`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Unique id of the event.
    pub id: String,
    /// What happened.
    pub event: EventKind,
    /// The probe concerned.
    pub probe: Option<String>,
    /// The SLA concerned (`budget` of an agreement).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sla: Option<String>,
    /// The probe's state now.
    pub state: Option<State>,
    /// Its state before.
    pub previous_state: Option<State>,
    /// When the alert was raised.
    pub at: Timestamp,
    /// When the new state began (back-dated to the first failure of an outage).
    pub since: Option<Timestamp>,
    /// The first failure's class and detail, for `down`.
    pub error: Option<EventError>,
    /// The probe's availability this month so far, in percent.
    pub month_availability: Option<f64>,
    /// Its monthly target, in percent.
    pub target: Option<f64>,
    /// What is left of this month's error budget.
    pub budget_remaining_seconds: Option<f64>,
    /// The budget threshold crossed, in percent used (`budget`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget_used_percent: Option<u32>,
    /// Burn rate over the long and the short window, as multiples of the sustainable rate,
    /// and the rule's windows and factor (`burn_rate`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burn: Option<BurnReport>,
    /// Days until the certificate expires (`cert_expiring`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_days_left: Option<i64>,
    /// The witnessed log's origin (`log_fork`, `log_silent`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log: Option<String>,
    /// What the witness saw (`log_fork`: the two tree heads; `log_silent`: since when).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The month a `report` is about, `YYYY-MM`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub month: Option<String>,
    /// A `report`'s figures: the month document of its SLA and the probes it covers, as
    /// `upledger report --month M --sla S --format json` prints it. Boxed: other events do
    /// without it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report: Option<Box<MonthDocument>>,
    /// A `report`'s client-facing Markdown summary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub markdown: Option<String>,
    /// A `report`'s signed form, when a signing key is configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed_report: Option<SignedReportText>,
    /// A repeat of a `down` alert while the probe stays down (`remind_every`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub reminder: bool,
    /// One line for people: what chat and desktop notifications show.
    pub summary: String,
}

impl Event {
    /// An event of `kind` about `probe`, raised `at`, with a fresh id and no details yet.
    pub fn new(kind: EventKind, probe: Option<&str>, at: Timestamp) -> Event {
        Event {
            id: super::unique_id(),
            event: kind,
            probe: probe.map(str::to_owned),
            sla: None,
            state: None,
            previous_state: None,
            at,
            since: None,
            error: None,
            month_availability: None,
            target: None,
            budget_remaining_seconds: None,
            budget_used_percent: None,
            burn: None,
            cert_days_left: None,
            log: None,
            detail: None,
            month: None,
            report: None,
            markdown: None,
            signed_report: None,
            reminder: false,
            summary: String::new(),
        }
    }

    /// Writes [`Event::summary`] from the other fields.
    pub fn summarize(&mut self) {
        let probe = match (&self.probe, &self.sla) {
            (Some(probe), _) => probe.clone(),
            (None, Some(sla)) => format!("SLA {sla}"),
            (None, None) => "upledger".to_owned(),
        };
        let since = self
            .since
            .map(|s| format!(" since {}", s.strftime("%Y-%m-%d %H:%M:%SZ")))
            .unwrap_or_default();
        self.summary = match self.event {
            EventKind::Down => {
                let cause = self
                    .error
                    .as_ref()
                    .map(|e| format!(": {} — {}", e.class, e.message))
                    .unwrap_or_default();
                let again = if self.reminder { "still " } else { "" };
                format!("{probe} is {again}DOWN{since}{cause}")
            }
            EventKind::Up => format!("{probe} is UP again{since}"),
            EventKind::Degraded => format!("{probe} is DEGRADED (slow){since}"),
            EventKind::CertExpiring => match self.cert_days_left {
                Some(days) => format!("{probe}: TLS certificate expires in {days} days"),
                None => format!("{probe}: TLS certificate expires soon"),
            },
            EventKind::Budget => format!(
                "{probe} has used {}% of this month's error budget ({} left; availability {})",
                self.budget_used_percent.unwrap_or(0),
                self.budget_remaining_seconds
                    .map_or_else(|| "?".to_owned(), |s| format!("{:.0} s", s.max(0.0))),
                self.month_availability
                    .map_or_else(|| "unknown".to_owned(), |a| format!("{a:.4}%")),
            ),
            EventKind::BurnRate => match &self.burn {
                Some(b) => format!(
                    "{probe} burns its error budget at {:.1}× over {} and {:.1}× over {} (alert at {}×)",
                    b.long_rate, b.long_window, b.short_rate, b.short_window, b.factor
                ),
                None => format!("{probe} burns its error budget fast"),
            },
            EventKind::MonitorOffline if self.state == Some(State::Down) => format!(
                "monitor offline ({probe} down){since}: target alerts are held, failures recorded as unknown"
            ),
            EventKind::MonitorOffline => format!("monitor back online ({probe} up){since}"),
            EventKind::LogFork => format!(
                "log {} FORKED: {}",
                self.log.as_deref().unwrap_or("?"),
                self.detail.as_deref().unwrap_or(
                    "it signed a checkpoint that does not extend the one this witness cosigned"
                )
            ),
            EventKind::LogSilent if self.state == Some(State::Up) => format!(
                "log {} sends checkpoints again{since}",
                self.log.as_deref().unwrap_or("?")
            ),
            EventKind::LogSilent => format!(
                "log {} is SILENT: no checkpoint{since}",
                self.log.as_deref().unwrap_or("?")
            ),
            EventKind::Test => "upledger test alert: this channel works".to_owned(),
            EventKind::Report => self.report_line(),
        };
    }
}

impl Event {
    /// A `report`'s one line: `acme-premium 2026-11: 99.97% (target 99.95%, met), credit
    /// none` — what a desktop notification shows.
    fn report_line(&self) -> String {
        let sla_name = self.sla.as_deref().unwrap_or("?");
        let month = self.month.as_deref().unwrap_or("?");
        let Some(sla) = self
            .report
            .as_ref()
            .and_then(|document| document.slas.iter().find(|s| s.name == sla_name))
        else {
            return format!("{sla_name} {month}: report");
        };
        let availability = sla.availability.map_or_else(
            || "no eligible time".to_owned(),
            |a| format!("{}%", trimmed(a)),
        );
        let credit = if sla.credit_percent == 0.0 {
            "none".to_owned()
        } else {
            match &sla.currency {
                Some(currency) => format!(
                    "{}% = {:.2} {currency}",
                    trimmed(sla.credit_percent),
                    sla.credit_amount
                ),
                None => format!("{}%", trimmed(sla.credit_percent)),
            }
        };
        format!(
            "{sla_name} {month}: {availability} (target {}%, {}), credit {credit}",
            trimmed(sla.target),
            if sla.met { "met" } else { "MISSED" }
        )
    }
}

/// A percentage to at most four decimals, without trailing zeros (`99.97`, `100`).
fn trimmed(value: f64) -> String {
    let text = format!("{value:.4}");
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_line_names_the_sla_and_month_and_trims_its_percentages() {
        assert_eq!(trimmed(99.97), "99.97");
        assert_eq!(trimmed(100.0), "100");
        assert_eq!(trimmed(99.123_456), "99.1235");
        assert_eq!(trimmed(10.0), "10");
        let at = Timestamp::from_second(1_801_440_000).expect("an instant");
        let mut event = Event::new(EventKind::Report, None, at);
        event.sla = Some("acme".to_owned());
        event.month = Some("2027-01".to_owned());
        event.summarize();
        // Without figures (never sent so, but a payload is data): still one true line.
        assert_eq!(event.summary, "acme 2027-01: report");
        let json = serde_json::to_value(&event).expect("JSON");
        assert_eq!(json["event"], "report");
        assert_eq!(json["month"], "2027-01");
        for absent in ["report", "markdown", "signed_report"] {
            assert!(json.get(absent).is_none(), "{absent} in {json}");
        }
    }
}
