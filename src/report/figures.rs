//! One probe's (or one service's) figures for one month, exactly as SPEC §3 defines them:
//! monitored, maintenance, unknown, degraded, excluded, eligible and down time, availability,
//! coverage, error budget, whether the target was met and which credit tier applies.
//! Pure: the caller supplies the timeline, the windows and `now`. May use `model` and
//! `config`.

use jiff::Timestamp;

use super::{
    exact::{Fraction, Seconds},
    interval::{Interval, merge_spans, split_by_windows},
    sla::{Terms, credit_tier},
    timeline::Timeline,
    windows::{Exclusion, MaintenanceWindow},
};
use crate::{
    config::{CreditTier, DowntimeUnit, TimePolicy},
    model::{Percent, State, Weight},
};

/// Milliseconds in a clock minute.
const MINUTE_MS: i64 = 60_000;

/// Parts per billion in the whole.
const PPB: u64 = 1_000_000_000;

/// Everything one month's figures are computed from.
#[derive(Debug, Clone, Copy)]
pub struct MonthInput<'a> {
    /// The whole calendar month ([`super::Month::bounds`]).
    pub period: Interval,
    /// The present: a month not over yet is measured up to here.
    pub now: Timestamp,
    /// What was observed; may extend beyond the period (it is clipped). Time it does not
    /// cover was not monitored.
    pub timeline: &'a Timeline,
    /// Maintenance windows that apply (already filtered for notice), possibly overlapping.
    pub maintenance: &'a [MaintenanceWindow],
    /// After-the-fact exclusions.
    pub exclusions: &'a [Exclusion],
    /// Target, credit tiers and policy.
    pub terms: &'a Terms,
}

/// The figures of one month (SPEC §3, §4.1). All times are exact; decisions (`met`, the
/// credit tier) were made on exact fractions.
///
/// The kinds of time partition `monitored`: `up + degraded + down + unknown + maintenance +
/// excluded = monitored`. Maintenance outranks everything, then exclusions, then
/// down > degraded > up > unknown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonthReport {
    /// The whole calendar month.
    pub period: Interval,
    /// The end of what was measured: `now`, or the period end once it has passed.
    pub as_of: Timestamp,
    /// Whether the month is not over yet (`as_of` before the period end).
    pub in_progress: bool,
    /// Time observed within `[period start, as_of)`: from the probe's first result or
    /// creation, whatever its state.
    pub monitored: Seconds,
    /// Up time (not under maintenance or exclusions).
    pub up: Seconds,
    /// Degraded time.
    pub degraded: Seconds,
    /// Down time.
    pub down: Seconds,
    /// Time without evidence (daemon stopped, monitor offline, results gone stale).
    pub unknown: Seconds,
    /// Monitored time inside maintenance windows.
    pub maintenance: Seconds,
    /// Monitored time inside exclusions, outside maintenance.
    pub excluded: Seconds,
    /// `monitored − excluded maintenance − excluded unknown − exclusions`: the denominator.
    pub eligible: Seconds,
    /// Down time, plus degraded time × weight, plus unknown or maintenance time counted as
    /// down by the policy.
    pub downtime: Seconds,
    /// `(eligible − downtime) / eligible`; `None` when nothing was eligible.
    pub availability: Option<Fraction>,
    /// `(up + degraded + down) / (monitored − maintenance − excluded)`: how much of the time
    /// that counts had evidence; `None` when no such time.
    pub coverage: Option<Fraction>,
    /// The target judged against.
    pub target: Percent,
    /// `(1 − target) × eligible`; in a month in progress, over the eligible time so far plus
    /// the rest of the month, so the budget does not start near zero on the 1st.
    pub budget: Seconds,
    /// `budget − downtime`; negative when overspent.
    pub budget_remaining: Seconds,
    /// Whether availability ≥ target, exactly. A month with nothing eligible met it: there
    /// was no downtime to count.
    pub met: bool,
    /// The credit tier that applies, if any.
    pub credit: Option<CreditTier>,
}

/// Milliseconds per kind of time.
#[derive(Debug, Default)]
struct Tally {
    up: i64,
    degraded: i64,
    down: i64,
    unknown: i64,
    maintenance: i64,
    excluded: i64,
}

impl MonthReport {
    /// Computes a month's figures.
    pub fn compute(input: &MonthInput<'_>) -> MonthReport {
        let period = input.period;
        let as_of = input
            .now
            .max(period.start)
            .min(period.end.max(period.start));
        let measured = Interval::new(period.start, as_of);
        let timeline = input.timeline.clip(measured).overlay(
            input.maintenance.iter().map(|window| window.interval),
            State::Maintenance,
        );
        let tally = tally(&timeline, input.exclusions);
        let policy = input.terms.policy;
        // `time` when the policy `rule` says `counted`, else nothing.
        let counted_as = |time: i64, rule: TimePolicy, counted: TimePolicy| {
            if rule == counted { time } else { 0 }
        };

        let monitored = tally.up
            + tally.degraded
            + tally.down
            + tally.unknown
            + tally.maintenance
            + tally.excluded;
        let eligible = monitored
            - counted_as(tally.maintenance, policy.maintenance, TimePolicy::Exclude)
            - counted_as(tally.unknown, policy.unknown, TimePolicy::Exclude)
            - tally.excluded;
        let second_downtime = Seconds::from_millis(tally.down)
            + Seconds::from_millis_scaled(
                tally.degraded,
                policy.degraded_weight.parts_per_billion(),
            )
            + Seconds::from_millis(counted_as(tally.unknown, policy.unknown, TimePolicy::Down))
            + Seconds::from_millis(counted_as(
                tally.maintenance,
                policy.maintenance,
                TimePolicy::Down,
            ));
        let downtime = match input.terms.downtime_unit {
            DowntimeUnit::Second => second_downtime,
            DowntimeUnit::Minute { min_run } => {
                let minutes = down_minutes(input, measured, min_run);
                Seconds::from_millis(minutes * MINUTE_MS)
            }
        };
        let eligible_time = Seconds::from_millis(eligible);
        let availability = Fraction::of(eligible_time - downtime, eligible_time);
        let coverage = Fraction::of(
            Seconds::from_millis(tally.up + tally.degraded + tally.down),
            Seconds::from_millis(monitored - tally.maintenance - tally.excluded),
        );

        let target = input.terms.target;
        let (rest_start, rest_end) = Interval::new(as_of, period.end).millis();
        let budget_base = eligible + (rest_end - rest_start).max(0);
        let budget = Seconds::from_millis_scaled(
            budget_base,
            PPB.saturating_sub(target.parts_per_billion()),
        );
        let met =
            availability.is_none_or(|availability| availability >= Fraction::from_percent(target));
        let credit = credit_tier(availability, &input.terms.credits).cloned();

        MonthReport {
            period,
            as_of,
            in_progress: as_of < period.end,
            monitored: Seconds::from_millis(monitored),
            up: Seconds::from_millis(tally.up),
            degraded: Seconds::from_millis(tally.degraded),
            down: Seconds::from_millis(tally.down),
            unknown: Seconds::from_millis(tally.unknown),
            maintenance: Seconds::from_millis(tally.maintenance),
            excluded: Seconds::from_millis(tally.excluded),
            eligible: eligible_time,
            downtime,
            availability,
            coverage,
            target,
            budget,
            budget_remaining: budget - downtime,
            met,
            credit,
        }
    }

    /// The length of the whole calendar month, in real seconds.
    pub fn period_seconds(&self) -> Seconds {
        self.period.duration()
    }

    /// Availability in percent with 6 decimals, rounded half to even (`"99.930362"`).
    pub fn availability_text(&self) -> Option<String> {
        self.availability
            .map(|availability| availability.percent_text(6))
    }

    /// How much of the budget the downtime used (1 = all of it, more when overspent), to
    /// decide budget alerts exactly; `None` when the budget is zero.
    pub fn budget_used(&self) -> Option<Fraction> {
        Fraction::of(self.downtime, self.budget)
    }
}

/// The whole clock minutes of `measured` that count as downtime under
/// `downtime_unit = "minute"` (SPEC §10), with `min_run` the shortest run that counts.
///
/// A minute is *entirely down* only when every millisecond of it is time the per-second
/// accounting would count wholly as downtime: down (outside maintenance and exclusions),
/// unknown under `unknown = "down"`, maintenance under a policy counting it down, degraded
/// only with `degraded_weight = 1`. One second of anything else in the minute — up, partly
/// weighted degraded, maintenance or unknown left out of the denominator, an exclusion, time
/// not monitored — and the minute is not down. Clock minutes are UTC minutes, which are the
/// local minutes of every zone whose offset is whole minutes (all zones in use today).
///
/// A run of consecutive down minutes is judged whole, also where it crosses the edge of the
/// period: with the timeline reaching beyond the month (it is never read past `now`), a run
/// of 3 minutes at the end of March and 4 at the start of April is one 7-minute run, and
/// each month counts its own minutes of it when 7 reaches `min_run`.
fn down_minutes(input: &MonthInput<'_>, measured: Interval, min_run: u32) -> i64 {
    let policy = input.terms.policy;
    let wholly_down = |state: State| match state {
        State::Down => true,
        State::Unknown => policy.unknown == TimePolicy::Down,
        State::Maintenance => policy.maintenance == TimePolicy::Down,
        State::Degraded => policy.degraded_weight == Weight::ONE,
        State::Up => false,
    };
    let known = Interval::new(Timestamp::MIN, input.now);
    let timeline = input.timeline.clip(known).overlay(
        input.maintenance.iter().map(|window| window.interval),
        State::Maintenance,
    );
    let exclusions = merge_spans(
        input
            .exclusions
            .iter()
            .map(|exclusion| exclusion.interval.millis())
            .collect(),
    );
    let mut down = Vec::new();
    for piece in timeline.pieces().iter().filter(|p| wholly_down(p.state)) {
        split_by_windows(&exclusions, piece.start, piece.end, |start, end, inside| {
            if !inside {
                down.push((start, end));
            }
        });
    }
    let (from, to) = measured.millis();
    // The whole minutes of the measured span: [first, last).
    let (first, last) = (ceil_minute(from), to.div_euclid(MINUTE_MS));
    merge_spans(down)
        .into_iter()
        .map(|(start, end)| (ceil_minute(start), end.div_euclid(MINUTE_MS)))
        .filter(|(run_start, run_end)| run_end - run_start >= i64::from(min_run.max(1)))
        .map(|(run_start, run_end)| (run_end.min(last) - run_start.max(first)).max(0))
        .sum()
}

/// The index of the first clock minute starting at or after `millis`.
fn ceil_minute(millis: i64) -> i64 {
    millis.div_euclid(MINUTE_MS) + i64::from(millis.rem_euclid(MINUTE_MS) != 0)
}

/// Milliseconds of each kind of time in `timeline`, with maintenance already laid over it
/// and `exclusions` taking what maintenance did not.
fn tally(timeline: &Timeline, exclusions: &[Exclusion]) -> Tally {
    let exclusions = merge_spans(
        exclusions
            .iter()
            .map(|exclusion| exclusion.interval.millis())
            .collect(),
    );
    let mut tally = Tally::default();
    for piece in timeline.pieces() {
        if piece.state == State::Maintenance {
            tally.maintenance += piece.end - piece.start;
            continue;
        }
        split_by_windows(&exclusions, piece.start, piece.end, |start, end, inside| {
            let slot = if inside {
                &mut tally.excluded
            } else {
                match piece.state {
                    State::Up => &mut tally.up,
                    State::Degraded => &mut tally.degraded,
                    State::Down => &mut tally.down,
                    State::Unknown => &mut tally.unknown,
                    State::Maintenance => &mut tally.maintenance,
                }
            };
            *slot += end - start;
        });
    }
    tally
}
