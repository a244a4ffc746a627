//! The reference cases of `tests/fixtures/vectors/sla.json` (see its README), fed through the
//! report layer. Every expected field of every case must match exactly; a case carrying a
//! field this harness does not know fails, so no expectation is silently skipped.

use std::{collections::BTreeMap, time::Duration};

use jiff::{SignedDuration, Timestamp, tz::TimeZone};
use serde_json::Value;
use upledger::{
    config::{CreditTier, DowntimeUnit, LowerBound, TimePolicy},
    model::{Outcome, Percent, State},
    report::{
        Fraction, Interval, MaintenanceWindow, Month, MonthInput, MonthReport, Policy, Sample,
        SampleRules, Segment, Terms, Timeline, Weight, combine_locations,
    },
};

const VECTORS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/vectors/sla.json"
);

fn text<'a>(value: &'a Value, key: &str) -> Option<&'a str> {
    value.get(key).and_then(Value::as_str)
}

fn instant(value: &Value, key: &str) -> Timestamp {
    text(value, key)
        .unwrap_or_else(|| panic!("missing {key} in {value}"))
        .parse()
        .unwrap_or_else(|e| panic!("bad {key} in {value}: {e}"))
}

fn percent(value: &Value) -> Percent {
    let text = match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        other => panic!("not a percentage: {other}"),
    };
    text.parse().unwrap_or_else(|e| panic!("{e}"))
}

fn state(name: &str) -> State {
    match name {
        "up" => State::Up,
        "degraded" => State::Degraded,
        "down" => State::Down,
        "unknown" => State::Unknown,
        "maintenance" => State::Maintenance,
        other => panic!("unknown state {other:?}"),
    }
}

fn outcome(name: &str) -> Outcome {
    match name {
        "up" => Outcome::Up,
        "degraded" => Outcome::Degraded,
        "down" => Outcome::Down,
        "unknown" => Outcome::Unknown,
        other => panic!("unknown status {other:?}"),
    }
}

fn time_policy(name: &str) -> TimePolicy {
    match name {
        "exclude" => TimePolicy::Exclude,
        "up" => TimePolicy::Up,
        "down" => TimePolicy::Down,
        other => panic!("unknown policy {other:?}"),
    }
}

/// One credit band of the vectors: `{lt|le: upper, gte|gt: lower, credit_pct}`.
struct Band {
    upper: Percent,
    upper_inclusive: bool,
    lower: Option<(Percent, bool)>,
    credit: Percent,
}

impl Band {
    fn parse(value: &Value) -> Band {
        let (upper, upper_inclusive) = match (value.get("lt"), value.get("le")) {
            (Some(lt), None) => (percent(lt), false),
            (None, Some(le)) => (percent(le), true),
            _ => panic!("a band needs exactly one of lt, le: {value}"),
        };
        let lower = match (value.get("gte"), value.get("gt")) {
            (Some(gte), None) => Some((percent(gte), true)),
            (None, Some(gt)) => Some((percent(gt), false)),
            (None, None) => None,
            _ => panic!("a band takes at most one of gte, gt: {value}"),
        };
        Band {
            upper,
            upper_inclusive,
            lower,
            credit: percent(&value["credit_pct"]),
        }
    }

    /// Whether the band holds `availability`, decided on exact fractions.
    fn holds(&self, availability: Fraction) -> bool {
        let upper = Fraction::from_percent(self.upper);
        let under = if self.upper_inclusive {
            availability <= upper
        } else {
            availability < upper
        };
        let over = self.lower.is_none_or(|(lower, inclusive)| {
            let lower = Fraction::from_percent(lower);
            if inclusive {
                availability >= lower
            } else {
                availability > lower
            }
        });
        under && over
    }

    /// The config's form of the band: its upper bound (`below` / `at_or_below`) and its
    /// lower bound (`above` / `at_or_above`) when it has one. The config picks the most
    /// severe matching tier; the harness checks it agrees with first-match on every case.
    fn tier(&self) -> CreditTier {
        CreditTier {
            bound: self.upper,
            inclusive: self.upper_inclusive,
            lower: self
                .lower
                .map(|(bound, inclusive)| LowerBound { bound, inclusive }),
            credit: self.credit,
        }
    }
}

/// Expands run-length encoded checks `{at, every_s, count, status}`.
fn samples(runs: &[Value]) -> Vec<Sample> {
    let mut samples = Vec::new();
    for run in runs {
        let start = instant(run, "at");
        let every = run["every_s"].as_i64().expect("every_s");
        let count = run["count"].as_i64().expect("count");
        let outcome = outcome(text(run, "status").expect("status"));
        for i in 0..count {
            let at = start
                .checked_add(SignedDuration::from_secs(every * i))
                .expect("check time in range");
            samples.push(Sample { at, outcome });
        }
    }
    samples
}

struct Outcomes {
    report: MonthReport,
    first_match_credit: Option<Percent>,
}

fn run_case(input: &Value) -> Outcomes {
    let month: Month = text(input, "month").expect("month").parse().expect("month");
    let timezone = TimeZone::get(text(input, "tz").unwrap_or("UTC")).expect("tz");
    let period = month.bounds(&timezone).expect("bounds");

    let policy_in = input.get("policy").cloned().unwrap_or(Value::Null);
    let policy = Policy {
        maintenance: text(&policy_in, "maintenance").map_or(TimePolicy::Exclude, time_policy),
        unknown: text(&policy_in, "unknown").map_or(TimePolicy::Exclude, time_policy),
        degraded_weight: text(&policy_in, "degraded_weight")
            .map_or(Weight::ZERO, |w| w.parse().expect("degraded_weight")),
    };
    let bands: Vec<Band> = input["credit_tiers"]
        .as_array()
        .expect("credit_tiers")
        .iter()
        .map(Band::parse)
        .collect();
    let terms = Terms {
        target: percent(&input["target"]),
        credits: bands.iter().map(Band::tier).collect(),
        policy,
        downtime_unit: downtime_unit(&policy_in),
    };

    let monitored_from = input
        .get("created_at")
        .map_or(period.start, |_| instant(input, "created_at"))
        .max(period.start);
    let timeline = if let Some(checks) = input.get("checks") {
        let rules = SampleRules {
            stale_after: Duration::from_secs(
                policy_in
                    .get("stale_after_s")
                    .map_or(120, |v| v.as_u64().expect("stale_after_s")),
            ),
            failure_threshold: policy_in.get("confirm_failures").map_or(1, |v| {
                u32::try_from(v.as_u64().expect("confirm_failures")).expect("confirm_failures")
            }),
        };
        let samples = samples(checks.as_array().expect("checks"));
        Timeline::from_samples(samples, rules, period.end)
            .clip(Interval::new(monitored_from, period.end))
    } else if let Some(locations) = input.get("locations").and_then(Value::as_object) {
        // SPEC §9: each location's own timeline, read as one under the quorum.
        let span = Interval::new(monitored_from, period.end);
        let timelines: Vec<Timeline> = locations
            .values()
            .map(|location| intervals_timeline(location, span))
            .collect();
        let quorum = policy_in
            .get("quorum")
            .and_then(Value::as_u64)
            .and_then(|q| usize::try_from(q).ok())
            .expect("policy.quorum");
        let members: Vec<&Timeline> = timelines.iter().collect();
        combine_locations(&members, quorum, span)
    } else {
        intervals_timeline(input, Interval::new(monitored_from, period.end))
    };
    let maintenance: Vec<MaintenanceWindow> = input
        .get("maintenance")
        .and_then(Value::as_array)
        .map(|windows| {
            windows
                .iter()
                .map(|w| MaintenanceWindow {
                    interval: Interval::new(instant(w, "start"), instant(w, "end")),
                    reason: "vector".to_owned(),
                    identity: "vector".to_owned(),
                })
                .collect()
        })
        .unwrap_or_default();

    let report = MonthReport::compute(&MonthInput {
        period,
        now: period.end,
        timeline: &timeline,
        maintenance: &maintenance,
        exclusions: &[],
        terms: &terms,
    });
    let first_match_credit = report
        .availability
        .and_then(|a| bands.iter().find(|band| band.holds(a)))
        .map(|band| band.credit);
    Outcomes {
        report,
        first_match_credit,
    }
}

/// `policy.google_minutes` with `min_consecutive_minutes` (default 1): whole down minutes.
fn downtime_unit(policy: &Value) -> DowntimeUnit {
    match policy.get("google_minutes").and_then(Value::as_bool) {
        Some(true) => DowntimeUnit::Minute {
            min_run: policy.get("min_consecutive_minutes").map_or(1, |v| {
                u32::try_from(v.as_u64().expect("min_consecutive_minutes"))
                    .expect("min_consecutive_minutes")
            }),
        },
        _ => DowntimeUnit::Second,
    }
}

/// A timeline from `baseline` and `intervals` over `span`.
fn intervals_timeline(input: &Value, span: Interval) -> Timeline {
    let baseline = state(text(input, "baseline").expect("baseline"));
    let intervals = input["intervals"]
        .as_array()
        .expect("intervals")
        .iter()
        .map(|i| {
            Segment::new(
                instant(i, "start"),
                instant(i, "end"),
                state(text(i, "state").expect("state")),
            )
        });
    Timeline::from_intervals(span, baseline, intervals)
}

/// The report's value of each expected field, as the vectors write it.
fn actual_fields(report: &MonthReport) -> BTreeMap<&'static str, String> {
    let credit = report.credit.as_ref().map_or("0".to_owned(), |tier| {
        tier.credit.to_string().trim_end_matches('%').to_owned()
    });
    BTreeMap::from([
        ("period_start_utc", report.period.start.to_string()),
        ("period_end_utc", report.period.end.to_string()),
        ("period_s", report.period_seconds().to_string()),
        ("monitored_s", report.monitored.to_string()),
        ("maintenance_s", report.maintenance.to_string()),
        ("unknown_s", report.unknown.to_string()),
        ("degraded_s", report.degraded.to_string()),
        ("eligible_s", report.eligible.to_string()),
        ("downtime_s", report.downtime.to_string()),
        (
            "availability_pct",
            report.availability_text().unwrap_or_default(),
        ),
        (
            "availability_exact",
            report
                .availability
                .map(|a| a.to_string())
                .unwrap_or_default(),
        ),
        ("budget_s", report.budget.to_string()),
        ("budget_remaining_s", report.budget_remaining.to_string()),
        ("credit_pct", credit),
    ])
}

fn expected_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        other => panic!("unexpected expected value {other}"),
    }
}

#[test]
fn every_reference_case_matches_exactly() {
    let json = std::fs::read_to_string(VECTORS).expect("read sla.json");
    let cases: Vec<Value> = serde_json::from_str(&json).expect("parse sla.json");
    assert!(
        cases.len() >= 13,
        "expected the 13 reference cases, found {}",
        cases.len()
    );

    let mut failures = Vec::new();
    for case in &cases {
        let id = text(case, "id").expect("id");
        let outcomes = run_case(&case["input"]);
        let report = &outcomes.report;
        let actual = actual_fields(report);
        let expected = case["expected"].as_object().expect("expected");
        for (field, want) in expected {
            let want = expected_text(want);
            match actual.get(field.as_str()) {
                Some(got) if *got == want => {}
                Some(got) => failures.push(format!("{id}: {field}: expected {want}, got {got}")),
                None => failures.push(format!("{id}: {field}: not checked by this harness")),
            }
        }
        for field in actual.keys() {
            if !expected.contains_key(*field) {
                failures.push(format!("{id}: {field}: missing from the expected figures"));
            }
        }
        // The bands read first-match-wins (as the vectors define them) and as config tiers
        // (most severe matching upper bound) must agree.
        let tier_credit = report.credit.as_ref().map(|tier| tier.credit);
        if tier_credit != outcomes.first_match_credit {
            failures.push(format!(
                "{id}: credit tiers {tier_credit:?} disagree with first-match bands {:?}",
                outcomes.first_match_credit
            ));
        }
        // For a closed month, met ⇔ the budget is not overspent.
        if report.met == report.budget_remaining.is_negative() {
            failures.push(format!(
                "{id}: met = {} but budget_remaining = {}",
                report.met, report.budget_remaining
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// V19's timelines under the other quorums of three locations: any one location down (1 of
/// 3) is the union of A's and B's outages; all three (3 of 3) never happens, C never fails.
#[test]
fn the_quorum_case_under_one_and_three_of_three() {
    let json = std::fs::read_to_string(VECTORS).expect("read sla.json");
    let cases: Vec<Value> = serde_json::from_str(&json).expect("parse sla.json");
    let v19 = cases
        .iter()
        .find(|c| text(c, "id") == Some("V19-quorum-2-of-3"))
        .expect("V19");
    for (quorum, downtime, exact, remaining, credit) in [
        (1, "3000", "863/864", "-408", Some("10%")),
        (2, "600", "4319/4320", "1992", None),
        (3, "0", "1", "2592", None),
    ] {
        let mut input = v19["input"].clone();
        input["policy"]["quorum"] = Value::from(quorum);
        let report = run_case(&input).report;
        let actual = actual_fields(&report);
        assert_eq!(actual["downtime_s"], downtime, "quorum {quorum}");
        assert_eq!(actual["availability_exact"], exact, "quorum {quorum}");
        assert_eq!(actual["budget_remaining_s"], remaining, "quorum {quorum}");
        assert_eq!(
            report
                .credit
                .as_ref()
                .map(|t| t.credit.to_string())
                .as_deref(),
            credit,
            "quorum {quorum}"
        );
    }
}
