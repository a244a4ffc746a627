//! SPEC §3 rules the reference vectors do not exercise, each on a whole month.

use std::time::Duration;

use jiff::{Timestamp, tz::TimeZone};

use super::*;
use crate::{
    config::{CreditTier, DowntimeUnit, LowerBound, TimePolicy},
    model::{Outcome, Percent, State},
};

fn at(text: &str) -> Timestamp {
    text.parse().unwrap()
}

fn pct(text: &str) -> Percent {
    text.parse().unwrap()
}

fn april() -> Interval {
    Month::new(2024, 4).unwrap().bounds(&TimeZone::UTC).unwrap()
}

fn terms(target: &str, policy: Policy) -> Terms {
    Terms {
        target: pct(target),
        credits: Vec::new(),
        policy,
        downtime_unit: DowntimeUnit::Second,
    }
}

/// April, up except for `intervals`.
fn april_with(intervals: &[(&str, &str, State)]) -> Timeline {
    Timeline::from_intervals(
        april(),
        State::Up,
        intervals
            .iter()
            .map(|&(start, end, state)| Segment::new(at(start), at(end), state)),
    )
}

fn window(start: &str, end: &str) -> MaintenanceWindow {
    MaintenanceWindow {
        interval: Interval::new(at(start), at(end)),
        reason: "planned".to_owned(),
        identity: format!("once {start} {end}"),
    }
}

fn exclusion(start: &str, end: &str) -> Exclusion {
    Exclusion {
        id: format!("{start}/{end}"),
        interval: Interval::new(at(start), at(end)),
        reason: "monitor's own fault".to_owned(),
        recorded_by: None,
    }
}

struct Case<'a> {
    period: Interval,
    now: Timestamp,
    timeline: &'a Timeline,
    maintenance: &'a [MaintenanceWindow],
    exclusions: &'a [Exclusion],
    terms: &'a Terms,
}

impl Case<'_> {
    fn run(&self) -> MonthReport {
        let report = MonthReport::compute(&MonthInput {
            period: self.period,
            now: self.now,
            timeline: self.timeline,
            maintenance: self.maintenance,
            exclusions: self.exclusions,
            terms: self.terms,
        });
        // The kinds of time always partition the monitored time.
        assert_eq!(
            report.up
                + report.degraded
                + report.down
                + report.unknown
                + report.maintenance
                + report.excluded,
            report.monitored
        );
        report
    }
}

fn closed<'a>(timeline: &'a Timeline, terms: &'a Terms) -> Case<'a> {
    Case {
        period: april(),
        now: april().end,
        timeline,
        maintenance: &[],
        exclusions: &[],
        terms,
    }
}

fn exact(report: &MonthReport) -> String {
    report
        .availability
        .map_or("-".to_owned(), |a| a.to_string())
}

#[test]
fn maintenance_outranks_down_where_they_overlap() {
    let timeline = april_with(&[
        ("2024-04-07T02:30:00Z", "2024-04-07T04:30:00Z", State::Down),
        (
            "2024-04-07T01:00:00Z",
            "2024-04-07T02:15:00Z",
            State::Unknown,
        ),
    ]);
    let maintenance = [window("2024-04-07T02:00:00Z", "2024-04-07T04:00:00Z")];
    let excluded = terms("99.9", Policy::default());
    let report = Case {
        maintenance: &maintenance,
        ..closed(&timeline, &excluded)
    }
    .run();
    // 02:00–04:00 is maintenance whatever else happened; the 30 min of down after it count.
    assert_eq!(report.maintenance.to_string(), "7200");
    assert_eq!(report.down.to_string(), "1800");
    assert_eq!(report.unknown.to_string(), "3600", "01:00–02:00 only");
    assert_eq!(report.eligible.to_string(), "2581200");
    assert_eq!(report.downtime.to_string(), "1800");

    // maintenance = "up": the window counts as available time, the down under it too.
    let counted_up = terms(
        "99.9",
        Policy {
            maintenance: TimePolicy::Up,
            ..Policy::default()
        },
    );
    let report = Case {
        maintenance: &maintenance,
        ..closed(&timeline, &counted_up)
    }
    .run();
    assert_eq!(report.maintenance.to_string(), "7200");
    assert_eq!(
        report.eligible.to_string(),
        "2588400",
        "only unknown is left out"
    );
    assert_eq!(report.downtime.to_string(), "1800");
    assert_eq!(exact(&report), "1437/1438");
}

#[test]
fn overlapping_maintenance_windows_count_once() {
    let timeline = april_with(&[]);
    let maintenance = [
        window("2024-04-07T02:00:00Z", "2024-04-07T04:00:00Z"),
        window("2024-04-07T03:00:00Z", "2024-04-07T05:00:00Z"),
        window("2024-03-31T23:00:00Z", "2024-04-01T01:00:00Z"),
    ];
    let terms = terms("99.9", Policy::default());
    let report = Case {
        maintenance: &maintenance,
        ..closed(&timeline, &terms)
    }
    .run();
    assert_eq!(
        report.maintenance.to_string(),
        "14400",
        "3 h + the hour inside April"
    );
}

#[test]
fn unknown_time_is_excluded_counted_up_or_counted_down_by_policy() {
    let timeline = april_with(&[
        (
            "2024-04-03T00:00:00Z",
            "2024-04-03T01:00:00Z",
            State::Unknown,
        ),
        ("2024-04-04T00:00:00Z", "2024-04-04T00:30:00Z", State::Down),
    ]);
    let with = |unknown| {
        let terms = terms(
            "99.9",
            Policy {
                unknown,
                ..Policy::default()
            },
        );
        closed(&timeline, &terms).run()
    };

    let excluded = with(TimePolicy::Exclude);
    assert_eq!(excluded.eligible.to_string(), "2588400");
    assert_eq!(excluded.downtime.to_string(), "1800");
    assert_eq!(exact(&excluded), "1437/1438");

    let up = with(TimePolicy::Up);
    assert_eq!(up.eligible.to_string(), "2592000");
    assert_eq!(up.downtime.to_string(), "1800");
    assert_eq!(exact(&up), "1439/1440");

    let down = with(TimePolicy::Down);
    assert_eq!(down.eligible.to_string(), "2592000");
    assert_eq!(down.downtime.to_string(), "5400");
    assert_eq!(exact(&down), "479/480");
    assert_eq!(down.budget_remaining.to_string(), "-2808");
    assert!(!down.met);

    // Coverage does not depend on the policy: the hour had no evidence either way.
    for report in [&excluded, &up, &down] {
        assert_eq!(report.unknown.to_string(), "3600");
        assert_eq!(report.coverage.unwrap().to_string(), "719/720");
    }
}

#[test]
fn degraded_weight_counts_an_exact_share_of_degraded_time_as_down() {
    let timeline = april_with(&[
        (
            "2024-04-08T00:00:00Z",
            "2024-04-08T02:00:01Z",
            State::Degraded,
        ),
        ("2024-04-09T00:00:00Z", "2024-04-09T00:20:00Z", State::Down),
    ]);
    // The config's float 0.3 is exactly three tenths.
    let weight = Weight::try_from(0.3).unwrap();
    assert_eq!(weight.parts_per_billion(), 300_000_000);
    let terms = terms(
        "99.9",
        Policy {
            degraded_weight: weight,
            ..Policy::default()
        },
    );
    let report = closed(&timeline, &terms).run();
    assert_eq!(report.degraded.to_string(), "7201");
    // 1200 + 0.3 × 7201 = 1200 + 2160.3
    assert_eq!(report.downtime.to_string(), "3360.3");
    assert_eq!(report.budget_remaining.to_string(), "-768.3");
    assert_eq!(exact(&report), "8628799/8640000");
    assert_eq!(report.availability_text().unwrap(), "99.870359");
    assert_eq!(
        report.eligible.to_string(),
        "2592000",
        "degraded time stays eligible"
    );

    let full = Terms {
        policy: Policy {
            degraded_weight: Weight::ONE,
            ..Policy::default()
        },
        ..terms.clone()
    };
    assert_eq!(closed(&timeline, &full).run().downtime.to_string(), "8401");
}

#[test]
fn exclusions_leave_the_denominator_but_not_twice_under_maintenance() {
    let timeline = april_with(&[("2024-04-10T00:00:00Z", "2024-04-10T01:00:00Z", State::Down)]);
    let maintenance = [window("2024-04-10T00:45:00Z", "2024-04-10T02:00:00Z")];
    let exclusions = [
        // The first half of the outage was the monitor's own network.
        exclusion("2024-04-09T23:30:00Z", "2024-04-10T00:30:00Z"),
        // Overlaps the maintenance window: that part is maintenance already.
        exclusion("2024-04-10T01:30:00Z", "2024-04-10T02:30:00Z"),
    ];
    let terms = terms("99.9", Policy::default());
    let report = Case {
        maintenance: &maintenance,
        exclusions: &exclusions,
        ..closed(&timeline, &terms)
    }
    .run();
    assert_eq!(report.maintenance.to_string(), "4500", "00:45–02:00");
    assert_eq!(
        report.excluded.to_string(),
        "5400",
        "23:30–00:30 and 02:00–02:30"
    );
    assert_eq!(report.down.to_string(), "900", "00:30–00:45");
    assert_eq!(report.eligible.to_string(), "2582100");
    assert_eq!(report.downtime.to_string(), "900");
    assert_eq!(
        report.coverage.unwrap(),
        Fraction::ONE,
        "excluded time is neither evidence nor missing evidence"
    );

    // Under maintenance = "up" an exclusion still removes its own time.
    let counted_up = Terms {
        policy: Policy {
            maintenance: TimePolicy::Up,
            ..Policy::default()
        },
        ..terms.clone()
    };
    let report = Case {
        maintenance: &maintenance,
        exclusions: &exclusions,
        ..closed(&timeline, &counted_up)
    }
    .run();
    assert_eq!(report.eligible.to_string(), "2586600");
}

fn tier(bound: &str, inclusive: bool, credit: &str) -> CreditTier {
    CreditTier {
        bound: pct(bound),
        inclusive,
        lower: None,
        credit: pct(credit),
    }
}

#[test]
fn at_or_below_tiers_include_their_bound_exactly() {
    // 2592 s down in April: availability exactly 99.9 %.
    let timeline = april_with(&[("2024-04-10T12:00:00Z", "2024-04-10T12:43:12Z", State::Down)]);
    let at_or_below = Terms {
        credits: vec![tier("99.9", true, "10"), tier("99", true, "25")],
        ..terms("99.9", Policy::default())
    };
    let report = closed(&timeline, &at_or_below).run();
    assert_eq!(exact(&report), "999/1000");
    assert!(report.met, "exactly the target is met");
    assert_eq!(report.credit.as_ref().map(|t| t.credit), Some(pct("10")));

    let below = Terms {
        credits: vec![tier("99.9", false, "10"), tier("99", false, "25")],
        ..at_or_below.clone()
    };
    assert_eq!(closed(&timeline, &below).run().credit, None);

    // Exactly 99.0 %: both at_or_below tiers match and the most severe wins, in any order.
    let timeline = april_with(&[("2024-04-10T00:00:00Z", "2024-04-10T07:12:00Z", State::Down)]);
    let mut reversed = at_or_below.clone();
    reversed.credits.reverse();
    for terms in [&at_or_below, &reversed] {
        let report = closed(&timeline, terms).run();
        assert_eq!(exact(&report), "99/100");
        assert_eq!(report.credit.as_ref().map(|t| t.credit), Some(pct("25")));
    }
    // One second less down: just above 99.0 %, only the 10 % tier.
    let timeline = april_with(&[("2024-04-10T00:00:00Z", "2024-04-10T07:11:59Z", State::Down)]);
    let report = closed(&timeline, &at_or_below).run();
    assert_eq!(report.credit.as_ref().map(|t| t.credit), Some(pct("10")));
}

/// Checks every `every` seconds from `from` to `to` (exclusive), all `outcome`.
fn checks(from: &str, to: &str, every: i64, outcome: Outcome) -> Vec<Sample> {
    let (from, to) = (at(from), at(to));
    let mut samples = Vec::new();
    let mut t = from;
    while t < to {
        samples.push(Sample { at: t, outcome });
        t = t
            .checked_add(jiff::SignedDuration::from_secs(every))
            .unwrap();
    }
    samples
}

fn rules(failure_threshold: u32) -> SampleRules {
    SampleRules {
        stale_after: Duration::from_secs(120),
        failure_threshold,
    }
}

#[test]
fn a_gap_breaks_a_failure_run_in_the_month_figures() {
    let mut samples = checks(
        "2024-04-01T00:00:00Z",
        "2024-04-10T00:00:00Z",
        60,
        Outcome::Up,
    );
    // Two failures, ten minutes without results, two failures: never three in a row.
    samples.extend(checks(
        "2024-04-10T00:00:00Z",
        "2024-04-10T00:02:00Z",
        60,
        Outcome::Down,
    ));
    samples.extend(checks(
        "2024-04-10T00:12:00Z",
        "2024-04-10T00:14:00Z",
        60,
        Outcome::Down,
    ));
    samples.extend(checks(
        "2024-04-10T00:14:00Z",
        "2024-05-01T00:00:00Z",
        60,
        Outcome::Up,
    ));
    let timeline = Timeline::from_samples(samples, rules(3), april().end);
    let terms = terms("99.9", Policy::default());
    let report = closed(&timeline, &terms).run();
    assert_eq!(report.down, Seconds::ZERO);
    // The second failure (00:01) holds until 00:03; 00:03–00:12 is unknown.
    assert_eq!(report.unknown.to_string(), "540");
    assert_eq!(report.eligible.to_string(), "2591460");
    assert_eq!(exact(&report), "1");
}

#[test]
fn unknown_results_inside_a_failure_run_neither_count_nor_break_it() {
    let mut samples = checks(
        "2024-04-01T00:00:00Z",
        "2024-04-10T00:00:00Z",
        60,
        Outcome::Up,
    );
    samples.extend(checks(
        "2024-04-10T00:00:00Z",
        "2024-04-10T00:02:00Z",
        60,
        Outcome::Down,
    ));
    // The sentinel was down for five minutes: those results are unknown.
    samples.extend(checks(
        "2024-04-10T00:02:00Z",
        "2024-04-10T00:07:00Z",
        60,
        Outcome::Unknown,
    ));
    samples.extend(checks(
        "2024-04-10T00:07:00Z",
        "2024-04-10T00:09:00Z",
        60,
        Outcome::Down,
    ));
    samples.extend(checks(
        "2024-04-10T00:09:00Z",
        "2024-05-01T00:00:00Z",
        60,
        Outcome::Up,
    ));
    let timeline = Timeline::from_samples(samples.clone(), rules(3), april().end);
    let terms = terms("99.9", Policy::default());
    let report = closed(&timeline, &terms).run();
    // Confirmed by the third failure at 00:07, back-dated to 00:00; the unknown minutes stay
    // unknown, the rest of the run is down until the first success at 00:09.
    assert_eq!(report.down.to_string(), "240");
    assert_eq!(report.unknown.to_string(), "300");
    assert_eq!(report.eligible.to_string(), "2591700");

    // With a threshold of five the run (four failures) is a transient.
    let timeline = Timeline::from_samples(samples, rules(5), april().end);
    let report = closed(&timeline, &terms).run();
    assert_eq!(report.down, Seconds::ZERO);
    assert_eq!(report.unknown.to_string(), "300");
}

#[test]
fn a_month_in_progress_is_measured_so_far_with_a_whole_month_budget() {
    let now = at("2024-04-11T00:00:00Z");
    // Results up to now; the timeline ends at now.
    let mut samples = checks(
        "2024-04-01T00:00:00Z",
        "2024-04-05T00:00:00Z",
        60,
        Outcome::Up,
    );
    samples.extend(checks(
        "2024-04-05T00:00:00Z",
        "2024-04-05T01:00:00Z",
        60,
        Outcome::Down,
    ));
    samples.extend(checks(
        "2024-04-05T01:00:00Z",
        "2024-04-11T00:00:00Z",
        60,
        Outcome::Up,
    ));
    let timeline = Timeline::from_samples(samples, rules(3), now);
    let terms = terms("99.9", Policy::default());
    let report = Case {
        now,
        ..closed(&timeline, &terms)
    }
    .run();
    assert!(report.in_progress);
    assert_eq!(report.as_of, now);
    assert_eq!(report.period_seconds().to_string(), "2592000");
    assert_eq!(report.monitored.to_string(), "864000", "ten days so far");
    assert_eq!(report.eligible.to_string(), "864000");
    assert_eq!(exact(&report), "239/240");
    // (1 − 99.9 %) × (10 days so far + 20 days to come) = 2592 s.
    assert_eq!(report.budget.to_string(), "2592");
    assert_eq!(report.budget_remaining.to_string(), "-1008");
    assert!(!report.met);

    // A timeline reaching past now (intervals over the whole month) is cut at now as well.
    let whole = april_with(&[("2024-04-05T00:00:00Z", "2024-04-05T01:00:00Z", State::Down)]);
    let same = Case {
        now,
        ..closed(&whole, &terms)
    }
    .run();
    assert_eq!(same, report);

    // Before the month starts nothing is measured, nothing is owed, the budget is whole.
    let early = Case {
        now: at("2024-03-20T00:00:00Z"),
        ..closed(&whole, &terms)
    }
    .run();
    assert!(early.in_progress);
    assert_eq!(early.monitored, Seconds::ZERO);
    assert_eq!(early.availability, None);
    assert!(early.met);
    assert_eq!(early.budget.to_string(), "2592");

    // After it ends the month is closed.
    let late = Case {
        now: at("2024-06-01T00:00:00Z"),
        ..closed(&whole, &terms)
    }
    .run();
    assert!(!late.in_progress);
    assert_eq!(late.as_of, april().end);
}

#[test]
fn a_berlin_autumn_month_has_31_days_and_an_hour() {
    let berlin = TimeZone::get("Europe/Berlin").unwrap();
    let october = Month::new(2024, 10).unwrap().bounds(&berlin).unwrap();
    assert_eq!(october.start.to_string(), "2024-09-30T22:00:00Z");
    assert_eq!(october.end.to_string(), "2024-10-31T23:00:00Z");
    let timeline = Timeline::from_intervals(
        october,
        State::Up,
        [Segment::new(
            at("2024-10-31T22:30:00Z"),
            at("2024-10-31T23:30:00Z"),
            State::Down,
        )],
    );
    let terms = terms("99.9", Policy::default());
    let report = Case {
        period: october,
        now: october.end,
        ..closed(&timeline, &terms)
    }
    .run();
    assert_eq!(report.period_seconds().to_string(), "2682000");
    assert_eq!(report.monitored.to_string(), "2682000");
    assert_eq!(
        report.downtime.to_string(),
        "1800",
        "23:30–00:00 CET is October"
    );
    assert_eq!(report.budget.to_string(), "2682");
    assert_eq!(exact(&report), "1489/1490");
}

#[test]
fn coverage_is_evidence_over_monitored_time_outside_maintenance() {
    let timeline = april_with(&[
        (
            "2024-04-12T08:01:00Z",
            "2024-04-12T09:00:00Z",
            State::Unknown,
        ),
        (
            "2024-04-13T00:00:00Z",
            "2024-04-13T01:00:00Z",
            State::Unknown,
        ),
    ]);
    // Maintenance over the second unknown hour: maintenance outranks unknown.
    let maintenance = [window("2024-04-13T00:00:00Z", "2024-04-13T02:00:00Z")];
    let terms = terms("99.9", Policy::default());
    let report = Case {
        maintenance: &maintenance,
        ..closed(&timeline, &terms)
    }
    .run();
    assert_eq!(report.unknown.to_string(), "3540");
    assert_eq!(report.maintenance.to_string(), "7200");
    // (2592000 − 7200 − 3540) / (2592000 − 7200)
    assert_eq!(report.coverage.unwrap().to_string(), "43021/43080");
    assert_eq!(report.coverage.unwrap().percent_text(2), "99.86");

    // Nothing but maintenance: no coverage, no availability, nothing owed.
    let all = [window("2024-03-01T00:00:00Z", "2024-06-01T00:00:00Z")];
    let report = Case {
        maintenance: &all,
        ..closed(&timeline, &terms)
    }
    .run();
    assert_eq!(report.coverage, None);
    assert_eq!(report.availability, None);
    assert!(report.met);
    assert_eq!(report.credit, None);
}

#[test]
fn a_probe_created_mid_month_is_measured_from_its_first_result() {
    let mut samples = checks(
        "2024-04-16T00:00:00Z",
        "2024-04-20T00:00:00Z",
        60,
        Outcome::Up,
    );
    samples.extend(checks(
        "2024-04-20T00:00:00Z",
        "2024-04-20T00:30:00Z",
        60,
        Outcome::Down,
    ));
    samples.extend(checks(
        "2024-04-20T00:30:00Z",
        "2024-05-01T00:00:00Z",
        60,
        Outcome::Up,
    ));
    let timeline = Timeline::from_samples(samples, rules(3), april().end);
    let terms = terms("99.9", Policy::default());
    let report = closed(&timeline, &terms).run();
    assert_eq!(report.monitored.to_string(), "1296000", "15 days, not 30");
    assert_eq!(
        report.unknown,
        Seconds::ZERO,
        "before the first result is not unknown"
    );
    assert_eq!(report.eligible.to_string(), "1296000");
    assert_eq!(report.downtime.to_string(), "1800");
    assert_eq!(report.budget.to_string(), "1296");
    assert_eq!(exact(&report), "719/720");
    assert_eq!(report.coverage, Some(Fraction::ONE));
}

#[test]
fn budget_use_is_decided_exactly() {
    // 2592 s down in April at 99.9 %: exactly the whole budget.
    let timeline = april_with(&[("2024-04-10T12:00:00Z", "2024-04-10T12:43:12Z", State::Down)]);
    let terms = terms("99.9", Policy::default());
    let report = closed(&timeline, &terms).run();
    assert_eq!(report.budget_remaining, Seconds::ZERO);
    assert_eq!(report.budget_used(), Some(Fraction::ONE));
    let ninety = Fraction::from_percent(pct("90"));
    assert!(report.budget_used().unwrap() >= ninety);
    // Half of it, to the millisecond.
    let timeline = april_with(&[("2024-04-10T12:00:00Z", "2024-04-10T12:21:36Z", State::Down)]);
    let report = closed(&timeline, &terms).run();
    assert_eq!(report.budget_used(), Fraction::new(1, 2));
    assert_eq!(report.budget_remaining.to_string(), "1296");
    // A 100 % target has no budget to use.
    let strict = self::terms("100", Policy::default());
    assert_eq!(closed(&timeline, &strict).run().budget_used(), None);
}

#[test]
fn policies_come_from_the_sla_config() {
    let sla = crate::config::SlaSpec {
        name: "acme-premium".to_owned(),
        client: None,
        probes: vec!["api-*".to_owned()],
        all: true,
        target: pct("99.95"),
        monthly_fee: None,
        currency: None,
        credits: vec![tier("99.95", false, "10")],
        maintenance: TimePolicy::Up,
        maintenance_notice: None,
        unknown: TimePolicy::Down,
        degraded_weight: 0.3,
        locations: None,
        quorum: None,
        downtime_unit: DowntimeUnit::Minute { min_run: 5 },
        latency: None,
        latency_credit: None,
        report_to: Vec::new(),
    };
    let terms = Terms::for_sla(&sla).unwrap();
    assert_eq!(terms.downtime_unit, DowntimeUnit::Minute { min_run: 5 });
    assert_eq!(terms.target, pct("99.95"));
    assert_eq!(terms.policy.maintenance, TimePolicy::Up);
    assert_eq!(terms.policy.unknown, TimePolicy::Down);
    assert_eq!(terms.policy.degraded_weight.to_string(), "0.3");
    assert_eq!(terms.credits.len(), 1);
}

/// Terms counting whole down minutes in runs of at least `min_run`.
fn minute_terms(min_run: u32, policy: Policy) -> Terms {
    Terms {
        downtime_unit: DowntimeUnit::Minute { min_run },
        ..terms("99.9", policy)
    }
}

#[test]
fn only_whole_clock_minutes_entirely_down_count() {
    // 10:00:30–10:03:15 holds the whole minutes 10:01 and 10:02; 11:00:10–11:00:50 none.
    let timeline = april_with(&[
        ("2024-04-10T10:00:30Z", "2024-04-10T10:03:15Z", State::Down),
        ("2024-04-10T11:00:10Z", "2024-04-10T11:00:50Z", State::Down),
        // Two outages touching at 12:01:00 are one run over three minutes.
        ("2024-04-10T12:00:00Z", "2024-04-10T12:01:00Z", State::Down),
        ("2024-04-10T12:01:00Z", "2024-04-10T12:03:00Z", State::Down),
    ]);
    let seconds = closed(&timeline, &terms("99.9", Policy::default())).run();
    assert_eq!(seconds.downtime.to_string(), "385");
    let minutes = closed(&timeline, &minute_terms(1, Policy::default())).run();
    assert_eq!(minutes.downtime.to_string(), "300");
    assert_eq!(
        minutes.down, seconds.down,
        "the down time itself is unchanged"
    );
    assert_eq!(minutes.eligible, seconds.eligible);
    // With runs of at least 3 minutes, only the 12:00 run counts.
    let runs = closed(&timeline, &minute_terms(3, Policy::default())).run();
    assert_eq!(runs.downtime.to_string(), "180");
    assert_eq!(
        closed(&timeline, &minute_terms(4, Policy::default()))
            .run()
            .downtime,
        Seconds::ZERO
    );
}

#[test]
fn a_minute_with_any_second_not_counted_down_is_not_down() {
    // 10:00–10:05 down, but 10:02:30–10:02:31 is maintenance, 10:03:59–10:04:00 unknown and
    // 10:04:10–10:04:11 excluded: only 10:00, 10:01 are down minutes.
    let timeline = april_with(&[
        ("2024-04-10T10:00:00Z", "2024-04-10T10:03:59Z", State::Down),
        (
            "2024-04-10T10:03:59Z",
            "2024-04-10T10:04:00Z",
            State::Unknown,
        ),
        ("2024-04-10T10:04:00Z", "2024-04-10T10:05:00Z", State::Down),
    ]);
    let maintenance = [window("2024-04-10T10:02:30Z", "2024-04-10T10:02:31Z")];
    let exclusions = [exclusion("2024-04-10T10:04:10Z", "2024-04-10T10:04:11Z")];
    let case = |terms: Terms| {
        Case {
            maintenance: &maintenance,
            exclusions: &exclusions,
            ..closed(&timeline, &terms)
        }
        .run()
    };
    assert_eq!(
        case(minute_terms(1, Policy::default()))
            .downtime
            .to_string(),
        "120"
    );
    // Unknown time counted as down is a down second: 10:03 is down again.
    let unknown_down = Policy {
        unknown: TimePolicy::Down,
        ..Policy::default()
    };
    assert_eq!(
        case(minute_terms(1, unknown_down)).downtime.to_string(),
        "180"
    );
    // Degraded time is down only at weight 1.
    let degraded = april_with(&[(
        "2024-04-10T10:00:00Z",
        "2024-04-10T10:02:00Z",
        State::Degraded,
    )]);
    let half = Policy {
        degraded_weight: "0.5".parse().unwrap(),
        ..Policy::default()
    };
    let whole = Policy {
        degraded_weight: Weight::ONE,
        ..Policy::default()
    };
    assert_eq!(
        closed(&degraded, &minute_terms(1, half)).run().downtime,
        Seconds::ZERO
    );
    assert_eq!(
        closed(&degraded, &minute_terms(1, whole))
            .run()
            .downtime
            .to_string(),
        "120"
    );
}

/// A run of down minutes across a month boundary is judged whole; each month counts its own
/// minutes of it. 23:57–00:04 is 7 minutes: 3 in March, 4 in April.
#[test]
fn a_run_of_down_minutes_across_the_month_boundary_is_judged_whole() {
    let march = Month::new(2024, 3).unwrap().bounds(&TimeZone::UTC).unwrap();
    let both = Interval::new(march.start, april().end);
    let timeline = Timeline::from_intervals(
        both,
        State::Up,
        [Segment::new(
            at("2024-03-31T23:57:00Z"),
            at("2024-04-01T00:04:00Z"),
            State::Down,
        )],
    );
    let month = |period: Interval, min_run: u32| {
        let terms = minute_terms(min_run, Policy::default());
        Case {
            period,
            now: april().end,
            ..closed(&timeline, &terms)
        }
        .run()
        .downtime
        .to_string()
    };
    for min_run in [1, 5, 7] {
        assert_eq!(month(march, min_run), "180", "March, runs of {min_run}");
        assert_eq!(month(april(), min_run), "240", "April, runs of {min_run}");
    }
    assert_eq!(month(march, 8), "0");
    assert_eq!(month(april(), 8), "0");
    // Without the other month's side in view the run is shorter: a report for March made
    // at 00:02 in April sees 5 minutes, and 7 are not reached yet.
    let early = |min_run: u32| {
        let terms = minute_terms(min_run, Policy::default());
        Case {
            period: march,
            now: at("2024-04-01T00:02:00Z"),
            ..closed(&timeline, &terms)
        }
        .run()
        .downtime
        .to_string()
    };
    assert_eq!(early(5), "180");
    assert_eq!(early(7), "0");
}

#[test]
fn closed_bands_match_only_inside_their_bounds() {
    // Exactly 99.0 % (V28's wording): "above 99.0%, at or below 99.9%" and "below 99.0%".
    let timeline = april_with(&[("2024-04-10T00:00:00Z", "2024-04-10T07:12:00Z", State::Down)]);
    let band = |lower: &str, inclusive: bool| CreditTier {
        lower: Some(LowerBound {
            bound: pct(lower),
            inclusive,
        }),
        ..tier("99.9", true, "10")
    };
    let github = Terms {
        credits: vec![band("99", false), tier("99", false, "25")],
        ..terms("99.9", Policy::default())
    };
    let report = closed(&timeline, &github).run();
    assert_eq!(exact(&report), "99/100");
    assert_eq!(
        report.credit, None,
        "the gap at exactly 99.0 % owes nothing"
    );
    let at_or_above = Terms {
        credits: vec![band("99", true), tier("99", false, "25")],
        ..github.clone()
    };
    let report = closed(&timeline, &at_or_above).run();
    assert_eq!(report.credit.as_ref().map(|t| t.credit), Some(pct("10")));
    // A closed band does not match below its lower bound, even where it would be the most
    // severe: 98.99… % falls to the open 25 % tier, not the 30 % band above 99 %.
    let timeline = april_with(&[("2024-04-10T00:00:00Z", "2024-04-10T07:12:01Z", State::Down)]);
    let severe_band = Terms {
        credits: vec![
            CreditTier {
                credit: pct("30"),
                ..band("99", true)
            },
            tier("99", false, "25"),
        ],
        ..github
    };
    let report = closed(&timeline, &severe_band).run();
    assert_eq!(report.credit.as_ref().map(|t| t.credit), Some(pct("25")));
}
