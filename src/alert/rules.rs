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
            } else if let Some(event) =
                transition_event(name, t, now).or_else(|| self.recovery_after_gap(name, t, now))
            {
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

    /// Picks up a probe's alerting where a previous daemon left it, from its state rebuilt from
    /// the ledger: a probe that resumes `down` had its `down` alert raised then (the outbox has
    /// it), so nothing is raised now; reminders go on (the first `remind_every` after the
    /// restart), and its recovery raises `up`, also when a gap lapsed the outage first.
    pub fn resume(&mut self, probe: &ProbeName, state: State, now: Timestamp) {
        if state == State::Down {
            self.last_down_alert.insert(probe.clone(), now);
        }
    }

    /// `up` for a probe alerted `down` whose outage a gap longer than `stale_after` lapsed
    /// (the daemon stopped, the machine slept) and which is up after it: the state went down →
    /// unknown → up, and whoever got the `down` wants to hear that it is over.
    fn recovery_after_gap(
        &self,
        name: &ProbeName,
        t: &Transition,
        now: Timestamp,
    ) -> Option<Event> {
        let recovered = t.from == State::Unknown && matches!(t.to, State::Up | State::Degraded);
        if !recovered || !self.last_down_alert.contains_key(name) {
            return None;
        }
        let after_outage = Transition {
            from: State::Down,
            ..t.clone()
        };
        transition_event(name, &after_outage, now)
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::{
        config::Config,
        model::{CertStatus, ErrorClass},
    };

    const T0: i64 = 1_795_000_000;

    fn at(s: i64) -> Timestamp {
        Timestamp::from_second(T0 + s).unwrap()
    }

    fn config() -> (tempfile::TempDir, Config) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("probes.d")).unwrap();
        let main = dir.path().join("upledger.toml");
        std::fs::write(&main, "[daemon]\nsentinel = \"uplink\"\n").unwrap();
        std::fs::write(
            dir.path().join("probes.d/p.toml"),
            "[[probe]]\nname = \"api\"\nkind = \"tcp\"\naddress = \"127.0.0.1:9\"\n\
             remind_every = \"10m\"\n\n\
             [[probe]]\nname = \"uplink\"\nkind = \"tcp\"\naddress = \"127.0.0.1:9\"\n",
        )
        .unwrap();
        let config = crate::config::load(&main).unwrap();
        (dir, config)
    }

    fn transition(from: State, to: State, since: i64) -> Transition {
        Transition {
            from,
            to,
            since: at(since),
            confirmed_at: at(since + 60),
            cause: (to == State::Down).then(|| (ErrorClass::Connect, "refused".to_owned())),
        }
    }

    /// Feeds one result of `probe` at `s` seconds.
    fn feed(
        alerter: &mut Alerter,
        config: &Config,
        probe: &str,
        s: i64,
        transition: Option<Transition>,
        state: State,
        cert: Option<CertStatus>,
    ) -> Vec<Event> {
        let spec = config.probe(probe).unwrap();
        let mut result = CheckResult::success(
            spec.name.clone(),
            at(s),
            Duration::from_millis(3),
            crate::model::Outcome::Up,
        );
        result.cert = cert;
        let seen = Seen {
            spec,
            is_sentinel: config.daemon.sentinel.as_ref() == Some(&spec.name),
            result: &result,
            transition: transition.as_ref(),
            state: (state, Some(at(0))),
        };
        alerter.observe(seen, at(s))
    }

    fn kinds(events: &[Event]) -> Vec<(EventKind, Option<String>, Option<State>, bool)> {
        events
            .iter()
            .map(|e| (e.event, e.probe.clone(), e.state, e.reminder))
            .collect()
    }

    #[test]
    fn confirmed_transitions_alert_once_each() {
        let (_dir, config) = config();
        let mut a = Alerter::default();
        let down = feed(
            &mut a,
            &config,
            "api",
            60,
            Some(transition(State::Up, State::Down, 0)),
            State::Down,
            None,
        );
        assert_eq!(
            kinds(&down),
            [(
                EventKind::Down,
                Some("api".into()),
                Some(State::Down),
                false
            )]
        );
        assert_eq!(down[0].since, Some(at(0)), "back-dated");
        assert_eq!(
            down[0].error.as_ref().map(|e| e.class),
            Some(ErrorClass::Connect)
        );
        assert!(feed(&mut a, &config, "api", 90, None, State::Down, None).is_empty());
        let up = feed(
            &mut a,
            &config,
            "api",
            120,
            Some(transition(State::Down, State::Up, 100)),
            State::Up,
            None,
        );
        assert_eq!(
            kinds(&up),
            [(EventKind::Up, Some("api".into()), Some(State::Up), false)]
        );
        let slow = feed(
            &mut a,
            &config,
            "api",
            150,
            Some(transition(State::Up, State::Degraded, 150)),
            State::Degraded,
            None,
        );
        assert_eq!(slow[0].event, EventKind::Degraded);
        let fast = feed(
            &mut a,
            &config,
            "api",
            180,
            Some(transition(State::Degraded, State::Up, 180)),
            State::Up,
            None,
        );
        assert!(fast.is_empty(), "recovering from slowness is not news");
        let first = feed(
            &mut a,
            &config,
            "api",
            0,
            Some(transition(State::Unknown, State::Up, 0)),
            State::Up,
            None,
        );
        assert!(first.is_empty(), "a first result says nothing new");
    }

    #[test]
    fn reminders_repeat_down_every_remind_every_while_down() {
        let (_dir, config) = config();
        let mut a = Alerter::default();
        feed(
            &mut a,
            &config,
            "api",
            0,
            Some(transition(State::Up, State::Down, 0)),
            State::Down,
            None,
        );
        let reminded: Vec<i64> = (1..=25)
            .map(|minute| minute * 60)
            .filter(|&s| !feed(&mut a, &config, "api", s, None, State::Down, None).is_empty())
            .collect();
        assert_eq!(reminded, [600, 1200]);
        let up = feed(
            &mut a,
            &config,
            "api",
            1_300,
            Some(transition(State::Down, State::Up, 1_300)),
            State::Up,
            None,
        );
        assert_eq!(up[0].event, EventKind::Up);
        assert!(feed(&mut a, &config, "api", 2_000, None, State::Up, None).is_empty());
    }

    #[test]
    fn target_alerts_wait_while_the_monitor_is_offline() {
        let (_dir, config) = config();
        let mut a = Alerter::default();
        let offline = feed(
            &mut a,
            &config,
            "uplink",
            10,
            Some(transition(State::Up, State::Down, 0)),
            State::Down,
            None,
        );
        assert_eq!(
            kinds(&offline),
            [(
                EventKind::MonitorOffline,
                Some("uplink".into()),
                Some(State::Down),
                false
            )]
        );
        let held = feed(
            &mut a,
            &config,
            "api",
            20,
            Some(transition(State::Up, State::Down, 15)),
            State::Down,
            None,
        );
        assert!(held.is_empty());
        assert_eq!(a.held(), 1);
        assert!(
            feed(&mut a, &config, "api", 700, None, State::Down, None).is_empty(),
            "no reminders either"
        );
        let back = feed(
            &mut a,
            &config,
            "uplink",
            800,
            Some(transition(State::Down, State::Up, 790)),
            State::Up,
            None,
        );
        assert_eq!(
            kinds(&back),
            [
                (
                    EventKind::MonitorOffline,
                    Some("uplink".into()),
                    Some(State::Up),
                    false
                ),
                (
                    EventKind::Down,
                    Some("api".into()),
                    Some(State::Down),
                    false
                ),
            ]
        );
        assert_eq!(a.held(), 0);
    }

    #[test]
    fn an_expiring_certificate_alerts_once_per_warning_period() {
        let (_dir, config) = config();
        let mut a = Alerter::default();
        let expiring = Some(CertStatus {
            days_left: 5,
            expiring: true,
            not_after: T0 + 5 * 86_400,
        });
        let fine = Some(CertStatus {
            days_left: 80,
            expiring: false,
            not_after: T0 + 80 * 86_400,
        });
        let counts: Vec<usize> = [expiring, expiring, fine, expiring]
            .into_iter()
            .enumerate()
            .map(|(i, cert)| feed(&mut a, &config, "api", i as i64, None, State::Up, cert).len())
            .collect();
        assert_eq!(counts, [1, 0, 0, 1]);
    }

    #[test]
    fn a_probe_resumed_down_raises_no_second_down_but_its_recovery_and_reminders() {
        let (_dir, config) = config();
        let api = config.probe("api").unwrap().name.clone();
        let mut a = Alerter::default();
        a.resume(&api, State::Down, at(0));
        // Still down after the restart: no alert until a reminder is due (remind_every 10 min).
        assert!(feed(&mut a, &config, "api", 60, None, State::Down, None).is_empty());
        let reminder = feed(&mut a, &config, "api", 600, None, State::Down, None);
        assert_eq!(
            kinds(&reminder),
            [(EventKind::Down, Some("api".into()), Some(State::Down), true)]
        );
        // A gap lapsed the outage (down → unknown), then the probe is up: `up` follows.
        let up = feed(
            &mut a,
            &config,
            "api",
            900,
            Some(transition(State::Unknown, State::Up, 900)),
            State::Up,
            None,
        );
        assert_eq!(
            kinds(&up),
            [(EventKind::Up, Some("api".into()), Some(State::Up), false)]
        );
        assert_eq!(up[0].previous_state, Some(State::Down));
        assert_eq!(up[0].since, Some(at(900)));
        // Once: a probe never alerted down raises nothing coming out of unknown.
        let again = feed(
            &mut a,
            &config,
            "api",
            1200,
            Some(transition(State::Unknown, State::Up, 1200)),
            State::Up,
            None,
        );
        assert!(again.is_empty());
    }
}
