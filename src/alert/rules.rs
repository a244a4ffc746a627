//! Which results raise alerts: pure bookkeeping over each probe's confirmed transitions, no
//! I/O and no clock (the caller passes `now`).
//!
//! The rule against noise: alerts follow *confirmed* transitions only, so a probe must fail
//! `failure_threshold` checks in a row to raise `down` and pass `success_threshold` in a row to
//! raise `up`: a flapping target raises at most one pair per full swing, never one per check.
//! A transient failure run below the threshold raises nothing. While the sentinel (the
//! monitor's own connectivity) is down, target alerts are held and one `monitor_offline` goes
//! out instead; the held alerts follow its recovery. `cert_expiring` fires once when a
//! certificate enters its warning period (again after a restart, or after a renewed
//! certificate expires again).

use std::collections::{HashMap, HashSet};

use jiff::{SignedDuration, Timestamp};

use super::event::{Event, EventError, EventKind};
use crate::{
    config::ProbeSpec,
    model::{CheckResult, ProbeName, State},
    threshold::Transition,
};

/// One result as the alert rules see it.
#[derive(Debug, Clone, Copy)]
pub struct Seen<'a> {
    /// The probe's configuration.
    pub spec: &'a ProbeSpec,
    /// Whether it is `[daemon].sentinel`.
    pub is_sentinel: bool,
    /// The result.
    pub result: &'a CheckResult,
    /// The transition the result confirmed, if any.
    pub transition: Option<&'a Transition>,
    /// The probe's confirmed state after the result, and since when.
    pub state: (State, Option<Timestamp>),
}

/// The alert rules' memory across results.
#[derive(Debug, Default)]
pub struct Alerter {
    monitor_offline: bool,
    held: Vec<Event>,
    last_down_alert: HashMap<ProbeName, Timestamp>,
    cert_warned: HashSet<ProbeName>,
}

impl Alerter {
    /// The alerts `seen` raises at `now`.
    pub fn observe(&mut self, seen: Seen<'_>, now: Timestamp) -> Vec<Event> {
        let name = &seen.spec.name;
        let mut raised = Vec::new();
        if let Some(t) = seen.transition {
            if seen.is_sentinel {
                if let Some(event) = self.sentinel_event(name, t, now) {
                    raised.push(event);
                    if !self.monitor_offline {
                        raised.append(&mut self.held);
                    }
                }
            } else if let Some(event) = transition_event(name, t, now) {
                match event.event {
                    EventKind::Down => {
                        self.last_down_alert.insert(name.clone(), now);
                    }
                    _ => {
                        self.last_down_alert.remove(name);
                    }
                }
                if self.monitor_offline {
                    self.held.push(event);
                } else {
                    raised.push(event);
                }
            }
        } else if let Some(event) = self.reminder(seen, now) {
            raised.push(event);
        }
        match seen.result.cert {
            Some(cert) if cert.expiring && !self.cert_warned.contains(name) => {
                self.cert_warned.insert(name.clone());
                let mut event = Event::new(EventKind::CertExpiring, Some(name.as_str()), now);
                event.cert_days_left = Some(cert.days_left);
                event.state = Some(seen.state.0);
                event.summarize();
                raised.push(event);
            }
            Some(cert) if cert.expiring => {}
            Some(_) => {
                self.cert_warned.remove(name);
            }
            None => {}
        }
        raised
    }

    /// Alerts held while the monitor is offline.
    pub fn held(&self) -> usize {
        self.held.len()
    }

    fn sentinel_event(
        &mut self,
        name: &ProbeName,
        t: &Transition,
        now: Timestamp,
    ) -> Option<Event> {
        let offline = t.to == State::Down;
        let back = t.from == State::Down && t.to != State::Down;
        if !offline && !back {
            return None;
        }
        self.monitor_offline = offline;
        let mut event = Event::new(EventKind::MonitorOffline, Some(name.as_str()), now);
        event.state = Some(t.to);
        event.previous_state = Some(t.from);
        event.since = Some(t.since);
        event.error = t.cause.as_ref().map(|(class, message)| EventError {
            class: *class,
            message: message.clone(),
        });
        event.summarize();
        Some(event)
    }

    /// A repeated `down` alert once `remind_every` has passed since the last one.
    fn reminder(&mut self, seen: Seen<'_>, now: Timestamp) -> Option<Event> {
        let (State::Down, since) = seen.state else {
            return None;
        };
        if seen.is_sentinel || self.monitor_offline {
            return None;
        }
        let every = SignedDuration::try_from(seen.spec.remind_every?).ok()?;
        let name = &seen.spec.name;
        let last = *self.last_down_alert.get(name)?;
        if now < last.checked_add(every).ok()? {
            return None;
        }
        self.last_down_alert.insert(name.clone(), now);
        let mut event = Event::new(EventKind::Down, Some(name.as_str()), now);
        event.state = Some(State::Down);
        event.previous_state = Some(State::Down);
        event.since = since;
        event.reminder = true;
        event.summarize();
        Some(event)
    }
}

/// The alert a target's transition raises, if any: `down` on confirmation, `up` when a down
/// probe recovers, `degraded` when an up probe slows down.
pub fn transition_event(probe: &ProbeName, t: &Transition, now: Timestamp) -> Option<Event> {
    let kind = match (t.from, t.to) {
        (_, State::Down) => EventKind::Down,
        (State::Down, State::Up | State::Degraded) => EventKind::Up,
        (State::Up, State::Degraded) => EventKind::Degraded,
        _ => return None,
    };
    let mut event = Event::new(kind, Some(probe.as_str()), now);
    event.state = Some(t.to);
    event.previous_state = Some(t.from);
    event.since = Some(t.since);
    if kind == EventKind::Down {
        event.error = t.cause.as_ref().map(|(class, message)| EventError {
            class: *class,
            message: message.clone(),
        });
    }
    event.summarize();
    Some(event)
}
