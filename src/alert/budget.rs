//! Budget and burn-rate crossings: pure arithmetic over month figures and outage intervals,
//! with the clock passed in.
//!
//! - **Budget**: a probe's or SLA's month error budget crossing 50, 75, 90 and 100 % used.
//!   Each threshold alerts once per month (the caller keeps the marks, in the ledger).
//! - **Burn rate** (SRE workbook, multiwindow): the rate at which confirmed downtime eats the
//!   budget, as a multiple of the rate that would use it up exactly by the end of the period.
//!   A rule fires when both its long and its short window burn at least `factor` times; it
//!   fires once and re-arms only when the short window has dropped below the factor again —
//!   one alert per burning episode, not one per evaluation.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

use crate::config::BurnRule;

/// Budget thresholds, in percent used.
pub const BUDGET_THRESHOLDS: [u32; 4] = [50, 75, 90, 100];

/// The thresholds reached with `budget_seconds` of budget and `remaining_seconds` left (which
/// may be negative). A zero budget (a 100 % target) is used up by any downtime.
pub fn budget_reached(budget_seconds: f64, remaining_seconds: f64) -> Vec<u32> {
    let downtime = budget_seconds - remaining_seconds;
    if downtime <= 0.0 {
        return Vec::new();
    }
    let used_percent = if budget_seconds > 0.0 {
        downtime / budget_seconds * 100.0
    } else {
        f64::INFINITY
    };
    BUDGET_THRESHOLDS
        .into_iter()
        .filter(|&t| used_percent >= f64::from(t))
        .collect()
}

/// Confirmed downtime inside `[now − window, now)` of `outages` (`end` `None`: ongoing).
pub fn down_within(
    outages: &[(Timestamp, Option<Timestamp>)],
    now: Timestamp,
    window: Duration,
) -> Duration {
    let window = SignedDuration::try_from(window).unwrap_or(SignedDuration::MAX);
    let start = now.checked_sub(window).unwrap_or(Timestamp::MIN);
    outages
        .iter()
        .map(|&(from, to)| {
            let from = from.max(start);
            let to = to.unwrap_or(now).min(now);
            if to > from {
                to.duration_since(from).unsigned_abs()
            } else {
                Duration::ZERO
            }
        })
        .sum()
}

/// How many times faster than sustainable downtime burned over `window`: the down share of
/// the window over the allowed share (`1 − target`). Infinite for any downtime against a zero
/// allowance.
pub fn burn_rate(down: Duration, window: Duration, allowed_share: f64) -> f64 {
    if down.is_zero() {
        return 0.0;
    }
    let share = down.as_secs_f64() / window.as_secs_f64().max(f64::MIN_POSITIVE);
    if allowed_share <= 0.0 {
        f64::INFINITY
    } else {
        share / allowed_share
    }
}

/// A rule that has just fired, with its two rates.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BurnAlert {
    /// The rule.
    pub rule: BurnRule,
    /// Burn rate over its long window.
    pub long_rate: f64,
    /// Burn rate over its short window.
    pub short_rate: f64,
}

/// Which burn-rate rules are firing for one subject.
#[derive(Debug, Clone, Default)]
pub struct BurnWatch {
    firing: Vec<bool>,
    rearmed: Vec<BurnRule>,
}

impl BurnWatch {
    /// A watch whose rules `firing` already fired (remembered across a restart).
    pub fn with_firing(firing: Vec<bool>) -> BurnWatch {
        BurnWatch {
            firing,
            rearmed: Vec::new(),
        }
    }

    /// The rules that stopped firing in the last [`BurnWatch::update`].
    pub fn rearmed(&self) -> &[BurnRule] {
        &self.rearmed
    }

    /// Evaluates `rules` at `now`; returns the rules that start firing.
    pub fn update(
        &mut self,
        rules: &[BurnRule],
        outages: &[(Timestamp, Option<Timestamp>)],
        now: Timestamp,
        allowed_share: f64,
    ) -> Vec<BurnAlert> {
        self.firing.resize(rules.len(), false);
        self.rearmed.clear();
        let mut fired = Vec::new();
        for (rule, firing) in rules.iter().zip(self.firing.iter_mut()) {
            let rate = |window| burn_rate(down_within(outages, now, window), window, allowed_share);
            let (long_rate, short_rate) = (rate(rule.long), rate(rule.short));
            if short_rate < rule.factor {
                if *firing {
                    self.rearmed.push(*rule);
                }
                *firing = false;
            } else if long_rate >= rule.factor && !*firing {
                *firing = true;
                fired.push(BurnAlert {
                    rule: *rule,
                    long_rate,
                    short_rate,
                });
            }
        }
        fired
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DEFAULT_BURN_RULES;

    const T0: i64 = 1_795_000_000;

    fn at(s: i64) -> Timestamp {
        Timestamp::from_second(T0 + s).unwrap()
    }

    #[test]
    fn budget_thresholds_are_reached_in_order_and_at_their_bound() {
        assert!(budget_reached(100.0, 100.0).is_empty());
        assert!(budget_reached(100.0, 50.5).is_empty());
        assert_eq!(budget_reached(100.0, 50.0), [50]);
        assert_eq!(budget_reached(100.0, 10.0), [50, 75, 90]);
        assert_eq!(budget_reached(100.0, -5.0), [50, 75, 90, 100]);
        assert_eq!(
            budget_reached(0.0, -1.0),
            [50, 75, 90, 100],
            "a 100 % target"
        );
        assert!(budget_reached(0.0, 0.0).is_empty());
    }

    #[test]
    fn downtime_is_clipped_to_the_window_and_ongoing_outages_run_to_now() {
        let outages = [(at(0), Some(at(100))), (at(3_000), None)];
        assert_eq!(
            down_within(&outages, at(3_600), Duration::from_secs(3_600)),
            Duration::from_secs(700)
        );
        assert_eq!(
            down_within(&outages, at(3_600), Duration::from_secs(300)),
            Duration::from_secs(300)
        );
        assert_eq!(
            down_within(&outages, at(3_650), Duration::from_secs(3_600)),
            Duration::from_secs(700)
        );
    }

    /// 99.9 % target: 14.4× over an hour is 51.84 s down in the hour.
    #[test]
    fn the_fast_rule_fires_once_per_episode_and_rearms_when_the_short_window_cools() {
        let rules = &DEFAULT_BURN_RULES[..1];
        let allowed = 0.001;
        let mut watch = BurnWatch::default();
        // 40 s down: below 14.4× over the hour.
        let outages = vec![(at(1_000), Some(at(1_040)))];
        assert!(watch.update(rules, &outages, at(1_041), allowed).is_empty());
        // 60 s down, ending now: both windows burn.
        let outages = vec![(at(1_000), None)];
        let fired = watch.update(rules, &outages, at(1_060), allowed);
        assert_eq!(fired.len(), 1);
        assert!(
            fired[0].long_rate >= 14.4 && fired[0].short_rate >= 14.4,
            "{fired:?}"
        );
        // Still burning: no second alert.
        assert!(watch.update(rules, &outages, at(1_120), allowed).is_empty());
        // Recovered; ten minutes later the short window is clean: re-armed.
        let outages = vec![(at(1_000), Some(at(1_120)))];
        assert!(watch.update(rules, &outages, at(1_720), allowed).is_empty());
        assert_eq!(watch.rearmed().len(), 1);
        // A new outage burns again within the hour: a new episode, a new alert.
        let outages = vec![(at(1_000), Some(at(1_120))), (at(1_800), None)];
        assert_eq!(watch.update(rules, &outages, at(1_850), allowed).len(), 1);
    }

    #[test]
    fn a_rule_remembered_as_firing_does_not_fire_again() {
        let outages = vec![(at(0), None)];
        let mut watch = BurnWatch::with_firing(vec![true, false]);
        let fired = watch.update(&DEFAULT_BURN_RULES, &outages, at(3 * 3_600), 0.001);
        assert_eq!(fired.len(), 1);
        assert_eq!(fired[0].rule.long, Duration::from_secs(6 * 3_600));
    }

    #[test]
    fn both_default_rules_fire_on_a_long_hard_outage() {
        let mut watch = BurnWatch::default();
        let outages = vec![(at(0), None)];
        let fired = watch.update(&DEFAULT_BURN_RULES, &outages, at(3 * 3_600), 0.001);
        assert_eq!(fired.len(), 2);
        assert_eq!(burn_rate(Duration::ZERO, Duration::from_secs(60), 0.0), 0.0);
        assert!(burn_rate(Duration::from_secs(1), Duration::from_secs(60), 0.0).is_infinite());
    }
}
