//! Time taken out of the SLA denominator: maintenance windows (planned, from the config,
//! honoured by notice) and exclusions (after-the-fact corrections, recorded with a reason).
//! Both are listed in reports, so both keep their reason. May use `model`, `config` and the
//! plain [`ExclusionRecord`] data of `ledger`.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp, civil::Date, tz::TimeZone};

use super::interval::Interval;
use crate::{
    config::{MaintenanceSpec, MaintenanceWhen},
    ledger::ExclusionRecord,
    model::{ProbeName, glob_match},
};

/// One occurrence of a maintenance window for a probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaintenanceWindow {
    /// When it runs.
    pub interval: Interval,
    /// Why, for reports.
    pub reason: String,
    /// The configured window's identity ([`MaintenanceSpec::identity`]), under which the
    /// ledger records when the daemon first saw it; shared by every occurrence of a weekly
    /// window.
    pub identity: String,
}

/// An after-the-fact correction: time removed from the denominator like excluded maintenance
/// (SPEC §3, `upledger exclude`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exclusion {
    /// The ledger's id of it (what `upledger exclude --revoke` names).
    pub id: String,
    /// The corrected span.
    pub interval: Interval,
    /// Why, for reports.
    pub reason: String,
    /// Who entered it (`name (uid N)`), for reports; `None` for records from before this
    /// was kept.
    pub recorded_by: Option<String>,
}

impl From<&ExclusionRecord> for Exclusion {
    fn from(record: &ExclusionRecord) -> Exclusion {
        Exclusion {
            id: record.id.clone(),
            interval: Interval::new(record.from, record.to),
            reason: record.reason.clone(),
            recorded_by: record.recorded_by.as_ref().map(ToString::to_string),
        }
    }
}

/// Every occurrence of the configured windows that covers `probe` and overlaps `period`, in
/// start order, unclipped (reports list whole windows; figures clip them).
///
/// Weekly windows recur at a local time in `timezone` (the daemon's), so they follow DST;
/// a local start time skipped by a DST gap starts when the gap ends. Their length is real
/// time. Whether a window was announced early enough (`maintenance_notice`) is decided by
/// the caller, which knows when the ledger first saw it.
pub fn maintenance_windows(
    specs: &[MaintenanceSpec],
    probe: &ProbeName,
    timezone: &TimeZone,
    period: Interval,
) -> Vec<MaintenanceWindow> {
    let mut windows = Vec::new();
    for spec in specs {
        if !spec
            .probes
            .iter()
            .any(|pattern| glob_match(pattern, probe.as_str()))
        {
            continue;
        }
        let identity = spec.identity();
        let occurrences = match &spec.when {
            MaintenanceWhen::Once { start, end } => vec![Interval::new(*start, *end)],
            MaintenanceWhen::Weekly {
                weekday,
                time,
                duration,
            } => weekly_occurrences(*weekday, *time, *duration, timezone, period),
        };
        windows.extend(
            occurrences
                .into_iter()
                .filter(|interval| interval.intersect(&period).is_some())
                .map(|interval| MaintenanceWindow {
                    interval,
                    reason: spec.reason.clone(),
                    identity: identity.clone(),
                }),
        );
    }
    windows.sort_by_key(|window| (window.interval.start, window.interval.end));
    windows
}

/// The windows an SLA honours (SPEC §3): all of them without `maintenance_notice`; with it,
/// only occurrences the daemon first saw (`first_seen`, from the ledger) at least `notice`
/// before they started. A window never seen cannot prove its notice and is not honoured.
pub fn honoured_windows(
    windows: &[MaintenanceWindow],
    notice: Option<Duration>,
    first_seen: impl Fn(&MaintenanceWindow) -> Option<Timestamp>,
) -> Vec<MaintenanceWindow> {
    let Some(notice) = notice else {
        return windows.to_vec();
    };
    let notice = SignedDuration::try_from(notice).unwrap_or(SignedDuration::MAX);
    windows
        .iter()
        .filter(|window| {
            first_seen(window).is_some_and(|seen| {
                seen.checked_add(notice)
                    .is_ok_and(|deadline| deadline <= window.interval.start)
            })
        })
        .cloned()
        .collect()
}

/// Occurrences of a weekly window that may overlap `period`: every matching local day from a
/// window's length (plus a week) before the period to its end.
fn weekly_occurrences(
    weekday: jiff::civil::Weekday,
    time: jiff::civil::Time,
    duration: std::time::Duration,
    timezone: &TimeZone,
    period: Interval,
) -> Vec<Interval> {
    let length = SignedDuration::try_from(duration).unwrap_or(SignedDuration::MAX);
    let lookback_days = i64::try_from(duration.as_secs() / 86_400)
        .unwrap_or(i64::MAX)
        .saturating_add(8);
    let local_date = |at: Timestamp| at.to_zoned_datetime(timezone.clone()).date();
    let first = jiff::Span::new()
        .try_days(lookback_days.min(100_000))
        .and_then(|lookback| local_date(period.start).checked_sub(lookback))
        .unwrap_or(Date::MIN);
    let last = local_date(period.end);
    let mut occurrences = Vec::new();
    let Ok(mut day) = first.nth_weekday(1, weekday) else {
        return occurrences;
    };
    while day <= last {
        if let Ok(start) = day.to_datetime(time).to_zoned_datetime(timezone.clone()) {
            let start = start.timestamp();
            let end = start.checked_add(length).unwrap_or(Timestamp::MAX);
            occurrences.push(Interval::new(start, end));
        }
        match day.checked_add(jiff::Span::new().weeks(1)) {
            Ok(next) => day = next,
            Err(_) => break,
        }
    }
    occurrences
}

#[cfg(test)]
mod tests {
    use jiff::civil::{Weekday, time};

    use super::*;

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    fn spec(probes: &[&str], when: MaintenanceWhen, reason: &str) -> MaintenanceSpec {
        MaintenanceSpec {
            probes: probes.iter().map(|p| (*p).to_owned()).collect(),
            when,
            reason: reason.to_owned(),
        }
    }

    #[test]
    fn weekly_windows_follow_local_time_across_dst() {
        let berlin = TimeZone::get("Europe/Berlin").unwrap();
        let march = Interval::new(at("2024-02-29T23:00:00Z"), at("2024-03-31T22:00:00Z"));
        let specs = [spec(
            &["*"],
            MaintenanceWhen::Weekly {
                weekday: Weekday::Sunday,
                time: time(3, 0, 0, 0),
                duration: Duration::from_secs(1800),
            },
            "weekly patch window",
        )];
        let probe = ProbeName::new("api-health").unwrap();
        let windows = maintenance_windows(&specs, &probe, &berlin, march);
        let starts: Vec<String> = windows
            .iter()
            .map(|w| w.interval.start.to_string())
            .collect();
        // Sundays 3, 10, 17, 24 at 03:00 CET (02:00Z); the 31st at 03:00 CEST (01:00Z).
        assert_eq!(
            starts,
            [
                "2024-03-03T02:00:00Z",
                "2024-03-10T02:00:00Z",
                "2024-03-17T02:00:00Z",
                "2024-03-24T02:00:00Z",
                "2024-03-31T01:00:00Z",
            ]
        );
        assert!(windows.iter().all(|w| w.reason == "weekly patch window"));
        assert!(
            windows
                .iter()
                .all(|w| w.interval.duration() == crate::report::Seconds::from_secs(1800))
        );
    }

    #[test]
    fn windows_match_probe_globs_and_reach_in_from_before_the_period() {
        let april = Interval::new(at("2024-04-01T00:00:00Z"), at("2024-05-01T00:00:00Z"));
        let specs = [
            spec(
                &["api-*"],
                MaintenanceWhen::Once {
                    start: at("2024-03-31T23:00:00Z"),
                    end: at("2024-04-01T01:00:00Z"),
                },
                "database upgrade",
            ),
            spec(
                &["web-*"],
                MaintenanceWhen::Once {
                    start: at("2024-04-02T00:00:00Z"),
                    end: at("2024-04-02T01:00:00Z"),
                },
                "not ours",
            ),
            spec(
                &["api-health"],
                MaintenanceWhen::Once {
                    start: at("2024-03-01T00:00:00Z"),
                    end: at("2024-03-02T00:00:00Z"),
                },
                "last month",
            ),
            // A weekly window of 3 days starting Saturday 2024-03-30 reaches into April.
            spec(
                &["*"],
                MaintenanceWhen::Weekly {
                    weekday: Weekday::Saturday,
                    time: time(0, 0, 0, 0),
                    duration: Duration::from_secs(3 * 86_400),
                },
                "long weekend",
            ),
        ];
        let probe = ProbeName::new("api-health").unwrap();
        let windows = maintenance_windows(&specs, &probe, &TimeZone::UTC, april);
        let listed: Vec<(String, &str)> = windows
            .iter()
            .map(|w| (w.interval.start.to_string(), w.reason.as_str()))
            .collect();
        assert_eq!(
            listed,
            [
                ("2024-03-30T00:00:00Z".to_owned(), "long weekend"),
                ("2024-03-31T23:00:00Z".to_owned(), "database upgrade"),
                ("2024-04-06T00:00:00Z".to_owned(), "long weekend"),
                ("2024-04-13T00:00:00Z".to_owned(), "long weekend"),
                ("2024-04-20T00:00:00Z".to_owned(), "long weekend"),
                ("2024-04-27T00:00:00Z".to_owned(), "long weekend"),
            ]
        );
    }

    #[test]
    fn notice_honours_only_windows_seen_long_enough_before_they_start() {
        let window = |start: &str, identity: &str| MaintenanceWindow {
            interval: Interval::new(at(start), at("2024-04-30T00:00:00Z")),
            reason: "upgrade".to_owned(),
            identity: identity.to_owned(),
        };
        let windows = [
            window("2024-04-10T00:00:00Z", "early"),
            window("2024-04-10T00:00:00Z", "late"),
            window("2024-04-10T00:00:00Z", "exact"),
            window("2024-04-10T00:00:00Z", "never"),
        ];
        let seen = |w: &MaintenanceWindow| match w.identity.as_str() {
            "early" => Some(at("2024-04-01T00:00:00Z")),
            "late" => Some(at("2024-04-09T00:00:00Z")),
            "exact" => Some(at("2024-04-07T00:00:00Z")),
            _ => None,
        };
        let notice = Some(Duration::from_secs(72 * 3600));
        let honoured: Vec<String> = honoured_windows(&windows, notice, seen)
            .into_iter()
            .map(|w| w.identity)
            .collect();
        assert_eq!(honoured, ["early", "exact"]);
        assert_eq!(honoured_windows(&windows, None, seen).len(), 4);
    }

    #[test]
    fn ledger_exclusions_become_report_exclusions() {
        let record = ExclusionRecord::new(
            Some(ProbeName::new("api-health").unwrap()),
            None,
            at("2024-04-10T00:00:00Z"),
            at("2024-04-10T01:00:00Z"),
            "our uplink".to_owned(),
            at("2024-04-12T00:00:00Z"),
        );
        let exclusion = Exclusion::from(&record);
        assert_eq!(exclusion.interval.start, record.from);
        assert_eq!(exclusion.interval.end, record.to);
        assert_eq!(exclusion.reason, "our uplink");
        assert_eq!(exclusion.id, record.id);
    }
}
