//! Evaluates budget and burn-rate alerts against the ledger: for probes that are down or were
//! down within the longest burn window, and the SLAs covering them. The arithmetic is in
//! [`super::budget`]; this reads the month figures and recent outages. What fired is marked in
//! the ledger, so a restart repeats neither a budget threshold nor a burn alert still firing.

use std::collections::{HashMap, hash_map::Entry};

use jiff::{SignedDuration, Timestamp};

use super::{
    budget::{BurnWatch, budget_reached},
    event::{BurnReport, Event, EventKind},
};
use crate::{
    config::{BurnRule, Config, ProbeSpec},
    ledger::Ledger,
    model::ProbeName,
    query::{
        self, QueryError,
        monthly::{self, Selection},
    },
    report::Month,
};

/// Alerts to queue and the once-only marks to set after they are stored.
#[derive(Debug, Default)]
pub struct Evaluation {
    /// New alerts.
    pub events: Vec<Event>,
    /// Marks to set once these alerts are stored: budget thresholds announced, burn-rate
    /// rules firing.
    pub marks: Vec<String>,
    /// Marks to clear: burn-rate rules that re-armed.
    pub unmarks: Vec<String>,
}

/// The mark of a burn-rate rule firing for `probe`.
fn burn_mark(probe: &ProbeName, rule: &BurnRule) -> String {
    format!(
        "burn/{probe}/{}/{}/{}",
        rule.long.as_secs(),
        rule.short.as_secs(),
        rule.factor
    )
}

/// Budget and burn-rate memory across evaluations.
#[derive(Debug, Default)]
pub struct BudgetWatcher {
    burn: HashMap<ProbeName, BurnWatch>,
    last_down: HashMap<ProbeName, Timestamp>,
}

impl BudgetWatcher {
    /// Evaluates at `now`, given the probes confirmed down now.
    pub fn evaluate(
        &mut self,
        config: &Config,
        ledger: &Ledger,
        down_now: &[ProbeName],
        now: Timestamp,
    ) -> Result<Evaluation, QueryError> {
        for probe in down_now {
            self.last_down.insert(probe.clone(), now);
        }
        let longest = config
            .daemon
            .burn_rates
            .iter()
            .map(|rule| rule.long)
            .max()
            .unwrap_or_default();
        let longest = SignedDuration::try_from(longest).unwrap_or(SignedDuration::ZERO);
        // A probe stays watched for the longest window after it was last down: its burn
        // rules re-arm only once their short windows cool.
        self.last_down
            .retain(|_, at| at.checked_add(longest).is_ok_and(|until| until >= now));
        self.burn
            .retain(|probe, _| self.last_down.contains_key(probe));

        let month = Month::containing(now, &config.daemon.timezone);
        let zone = &config.daemon.timezone_name;
        let mut evaluation = Evaluation::default();
        let subjects: Vec<&ProbeSpec> = self
            .last_down
            .keys()
            .filter_map(|name| config.probe_by_name(name))
            .filter(|spec| spec.enabled)
            .collect();
        for spec in &subjects {
            let selection = Selection {
                probe: Some(spec.name.to_string()),
                sla: None,
            };
            let document = monthly::month_document(config, ledger, month, now, &selection)?;
            if let Some(figures) = document.probes.first() {
                let budget = Budget {
                    mark: format!("budget/{month}/{zone}/probe/{}", spec.name),
                    event: Event::new(EventKind::Budget, Some(spec.name.as_str()), now),
                    availability: figures.availability,
                    target: figures.target,
                    seconds: figures.budget_seconds,
                    remaining_seconds: figures.budget_remaining_seconds,
                };
                budget.announce(ledger, &mut evaluation)?;
            }
            let since = now.checked_sub(longest).unwrap_or(now);
            // A located probe's outages are its quorum's (SPEC §9).
            let outages = query::recent_outages_of(config, ledger, spec, since, now)?;
            let allowed = (100.0 - spec.target.as_f64()) / 100.0;
            let rules = &config.daemon.burn_rates;
            let watch = match self.burn.entry(spec.name.clone()) {
                Entry::Occupied(watch) => watch.into_mut(),
                Entry::Vacant(slot) => {
                    let firing = rules
                        .iter()
                        .map(|rule| ledger.alert_marked(&burn_mark(&spec.name, rule)))
                        .collect::<Result<Vec<bool>, _>>()?;
                    slot.insert(BurnWatch::with_firing(firing))
                }
            };
            let fired = watch.update(rules, &outages, now, allowed);
            evaluation.unmarks.extend(
                watch
                    .rearmed()
                    .iter()
                    .map(|rule| burn_mark(&spec.name, rule)),
            );
            for alert in fired {
                evaluation.marks.push(burn_mark(&spec.name, &alert.rule));
                let mut event = Event::new(EventKind::BurnRate, Some(spec.name.as_str()), now);
                event.burn = Some(BurnReport {
                    long_window: humantime::format_duration(alert.rule.long).to_string(),
                    short_window: humantime::format_duration(alert.rule.short).to_string(),
                    factor: alert.rule.factor,
                    long_rate: finite(alert.long_rate),
                    short_rate: finite(alert.short_rate),
                });
                event.summarize();
                evaluation.events.push(event);
            }
        }

        for sla in config
            .slas
            .iter()
            .filter(|sla| subjects.iter().any(|spec| monthly::covers(sla, &spec.name)))
        {
            let selection = Selection {
                probe: None,
                sla: Some(sla.name.clone()),
            };
            let document = monthly::month_document(config, ledger, month, now, &selection)?;
            let Some(figures) = document.slas.first() else {
                continue;
            };
            let mut event = Event::new(EventKind::Budget, None, now);
            event.sla = Some(sla.name.clone());
            let budget = Budget {
                mark: format!("budget/{month}/{zone}/sla/{}", sla.name),
                event,
                availability: figures.availability,
                target: figures.target,
                seconds: figures.budget_seconds,
                remaining_seconds: figures.budget_remaining_seconds,
            };
            budget.announce(ledger, &mut evaluation)?;
        }
        Ok(evaluation)
    }
}

/// A probe's or an SLA's month budget, as far as budget alerts need it.
struct Budget {
    /// Mark prefix; each threshold appends `/{percent}`.
    mark: String,
    /// The event to send, naming its probe or SLA.
    event: Event,
    availability: Option<f64>,
    target: f64,
    seconds: f64,
    remaining_seconds: f64,
}

impl Budget {
    /// Adds an alert (and its mark) for each threshold of the budget now used up that has
    /// not been announced yet.
    fn announce(&self, ledger: &Ledger, evaluation: &mut Evaluation) -> Result<(), QueryError> {
        for used in budget_reached(self.seconds, self.remaining_seconds) {
            let mark = format!("{}/{used}", self.mark);
            if ledger.alert_marked(&mark)? {
                continue;
            }
            let mut event = self.event.clone();
            event.budget_used_percent = Some(used);
            event.month_availability = self.availability;
            event.target = Some(self.target);
            event.budget_remaining_seconds = Some(self.remaining_seconds);
            event.summarize();
            evaluation.events.push(event);
            evaluation.marks.push(mark);
        }
        Ok(())
    }
}

/// JSON has no infinity: a burn against a zero allowance is reported as `f64::MAX`.
fn finite(rate: f64) -> f64 {
    if rate.is_finite() { rate } else { f64::MAX }
}
