//! Probes read over locations (SPEC §9): where a daemon does not check a probe itself — a
//! coordinator, or any daemon outside the probe's `locations` — the probe's results are the
//! agents', stored under one series per location (`web@fra1`, see
//! [`ProbeName::at_location`]). Each series is read exactly as a probe's own results are (same
//! thresholds, `stale_after` and back-dating), and the probe's state is their quorum
//! ([`combine_locations`]). Reports, incidents, day bars, `history` and `status` all take the
//! series from here, so they agree on which results make up a probe.
//! May use `model`, `config`, `ledger` and `report`.

use jiff::{SignedDuration, Timestamp};

use super::{
    LastCheck, LocationStatus, ProbeStatus, QueryError,
    monthly::{Evidence, margin},
    source::MonthSource,
};
use crate::{
    config::{Config, ProbeSpec, SlaSpec},
    ledger::{Ledger, LedgerError},
    model::{LocationName, ProbeName, State},
    report::{Interval, SampleRules, Timeline, combine_locations, quorum_state},
};

/// A probe read over its locations: the series that make it up and their quorum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    /// Each location, in configured order, with the series its results are stored under.
    pub series: Vec<(LocationName, ProbeName)>,
    /// How many locations must see the probe down for it to be down (1 ..= locations).
    pub quorum: usize,
}

impl Located {
    fn new(spec: &ProbeSpec, locations: &[LocationName], quorum: usize) -> Located {
        Located {
            series: locations
                .iter()
                .map(|l| (l.clone(), spec.name.at_location(l)))
                .collect(),
            quorum: quorum.clamp(1, locations.len().max(1)),
        }
    }
}

/// How this daemon reads `spec`: `None` from its own results (a probe without `locations`,
/// or one this daemon checks itself, see [`Config::runs_here`]), else from its locations'
/// series under its quorum.
pub fn located(config: &Config, spec: &ProbeSpec) -> Option<Located> {
    if spec.locations.is_empty() || config.runs_here(spec) {
        return None;
    }
    Some(Located::new(spec, &spec.locations, spec.quorum))
}

/// How an SLA reads its member `spec`: as [`located`], with the SLA's own `locations` and
/// `quorum` where it sets them (SPEC §9). SLA `locations` without a `quorum` take a majority
/// of them, as a probe's do; an SLA `quorum` without SLA `locations` counts the probe's own
/// locations, and must not be more than they are. An SLA's locations must be the probe's.
/// (The configuration cannot check either: an SLA's patterns may match probes of any
/// locations.)
pub fn located_for_sla(
    config: &Config,
    sla: &SlaSpec,
    spec: &ProbeSpec,
) -> Result<Option<Located>, QueryError> {
    let Some(own) = located(config, spec) else {
        return Ok(None);
    };
    if sla.locations.is_none() && sla.quorum.is_none() {
        return Ok(Some(own));
    }
    let locations = sla.locations.as_deref().unwrap_or(&spec.locations);
    // Results of a location the probe does not list are refused at import: it would only
    // ever be unknown.
    if let Some(stray) = locations.iter().find(|l| !spec.locations.contains(l)) {
        return Err(QueryError::BadRequest(format!(
            "sla {}: location {stray} is not one of probe {}'s locations",
            sla.name, spec.name
        )));
    }
    let quorum = match (sla.quorum, &sla.locations) {
        (Some(quorum), _) => quorum,
        (None, Some(listed)) => crate::config::majority(listed.len()),
        (None, None) => spec.quorum,
    };
    if quorum > locations.len() {
        return Err(QueryError::BadRequest(format!(
            "sla {}: quorum {quorum} is more than the {} location(s) probe {} is read from",
            sla.name,
            locations.len(),
            spec.name
        )));
    }
    Ok(Some(Located::new(spec, locations, quorum)))
}

/// `spec` as the reader of one of its series: the same thresholds, under the series' name,
/// and no locations of its own (a series is one location's results, read as a plain probe's).
pub fn series_spec(spec: &ProbeSpec, series: &ProbeName) -> ProbeSpec {
    ProbeSpec {
        name: series.clone(),
        locations: Vec::new(),
        quorum: 1,
        ..spec.clone()
    }
}

/// A located probe's timelines: each location's own, and their quorum.
pub(super) struct LocatedTimelines {
    /// The quorum timeline: the probe's.
    pub(super) timeline: Timeline,
    /// Every location's evidence, merged (checks and latencies summed, runs in time order).
    pub(super) evidence: Evidence,
    /// Each location's own timeline, in configured order.
    pub(super) locations: Vec<(LocationName, Timeline)>,
}

/// Reads every series of `located` for `period` as of `now` and combines them. Each series'
/// timeline is made by `timeline` from its spec and evidence, exactly as a probe's own is.
pub(super) fn read_located<S: MonthSource + ?Sized>(
    source: &S,
    spec: &ProbeSpec,
    located: &Located,
    period: Interval,
    now: Timestamp,
    timeline: impl Fn(&ProbeSpec, &Evidence) -> Timeline,
) -> Result<LocatedTimelines, QueryError> {
    let mut merged = Evidence::default();
    let mut locations = Vec::with_capacity(located.series.len());
    for (location, series) in &located.series {
        let series_spec = series_spec(spec, series);
        let evidence = source.evidence(&series_spec, period, now)?;
        locations.push((location.clone(), timeline(&series_spec, &evidence)));
        merged.absorb(evidence);
    }
    // The evidence is read from a margin before the period; the quorum is taken over the same
    // span, so an outage that began last month keeps its start.
    let until = now.min(period.end).max(period.start);
    let from = period
        .start
        .checked_sub(margin(spec))
        .unwrap_or(period.start);
    let members: Vec<&Timeline> = locations.iter().map(|(_, t)| t).collect();
    let timeline = combine_locations(&members, located.quorum, Interval::new(from, until));
    Ok(LocatedTimelines {
        timeline,
        evidence: merged,
        locations,
    })
}

/// The quorum timeline of `located` over `[from, to)` from raw results (no digests): what
/// follows an outage beyond the evidence a report read.
pub(super) fn raw_quorum<S: MonthSource + ?Sized>(
    source: &S,
    spec: &ProbeSpec,
    located: &Located,
    from: Timestamp,
    to: Timestamp,
) -> Result<Timeline, QueryError> {
    let lookback = from.checked_sub(margin(spec)).unwrap_or(from);
    let mut timelines = Vec::with_capacity(located.series.len());
    for (_, series) in &located.series {
        let records = source.results(series, lookback, to)?;
        timelines.push(Timeline::from_samples(
            records.iter().map(Into::into),
            SampleRules::for_probe(spec),
            to,
        ));
    }
    let members: Vec<&Timeline> = timelines.iter().collect();
    Ok(combine_locations(
        &members,
        located.quorum,
        Interval::new(from, to),
    ))
}

/// A located probe's live status from the daemon's status board (looked up by `entry`): the
/// quorum's state as the board keeps it under the probe's name, each location's under its
/// series (`web@fra1`), all judged again at `now` (see [`super::restale`]). While the board
/// has no entry under the probe's name, the state is the quorum of the locations' states.
pub fn board_status<'b>(
    spec: &ProbeSpec,
    located: &Located,
    entry: impl Fn(&ProbeName) -> Option<&'b ProbeStatus>,
    now: Timestamp,
) -> ProbeStatus {
    let members: Vec<(LocationName, ProbeStatus)> = located
        .series
        .iter()
        .map(|(location, series)| {
            let series_spec = series_spec(spec, series);
            let status = match entry(series) {
                Some(status) => super::restale(status.clone(), &series_spec, now),
                None => super::probe_status(&series_spec, None, None, now),
            };
            (location.clone(), status)
        })
        .collect();
    quorum_status(spec, located, entry(&spec.name), &members, now)
}

/// A probe's live status from the daemon's board (`entry` looks a name up), judged at
/// `now`: the board holds each state as of its last check. For a located probe, the
/// quorum's state and each location's own (SPEC §9).
pub fn live_status<'b>(
    config: &Config,
    spec: &ProbeSpec,
    entry: impl Fn(&ProbeName) -> Option<&'b ProbeStatus>,
    now: Timestamp,
) -> ProbeStatus {
    match located(config, spec) {
        Some(located) => board_status(spec, &located, entry, now),
        None => match entry(&spec.name) {
            Some(status) => super::restale(status.clone(), spec, now),
            None => super::probe_status(spec, None, None, now),
        },
    }
}

/// A located probe's status from its locations' statuses (judged at `now` already) and the
/// quorum's own entry `base` if the daemon keeps one (judged at `now` here).
fn quorum_status(
    spec: &ProbeSpec,
    located: &Located,
    base: Option<&ProbeStatus>,
    members: &[(LocationName, ProbeStatus)],
    now: Timestamp,
) -> ProbeStatus {
    let newest: Option<LastCheck> = members
        .iter()
        .filter_map(|(_, m)| m.last.as_ref())
        .max_by_key(|last| last.at)
        .cloned();
    let mut status = match base {
        Some(base) => {
            let mut base = base.clone();
            // The quorum has no check of its own: its newest is its locations' newest.
            if base.last.is_none() {
                base.last = newest;
            }
            super::restale(base, spec, now)
        }
        None => {
            let states: Vec<State> = members.iter().map(|(_, m)| m.state).collect();
            let mut status = super::probe_status(spec, None, newest, now);
            status.state = quorum_state(&states, located.quorum);
            status.checks_since_start = members.iter().map(|(_, m)| m.checks_since_start).sum();
            status
        }
    };
    status.quorum = Some(located.quorum);
    status.locations = members
        .iter()
        .map(|(location, member)| LocationStatus {
            location: location.clone(),
            state: member.state,
            since: member.since,
        })
        .collect();
    status
}

/// A located probe's status from the ledger alone (no daemon running): each location's
/// state replayed from its series as any probe's is ([`super::resume`]), and their quorum,
/// which began where the quorum timeline of the newest results last changed.
pub(super) fn status_from_ledger(
    ledger: &Ledger,
    spec: &ProbeSpec,
    located: &Located,
    now: Timestamp,
) -> Result<ProbeStatus, QueryError> {
    let mut members = Vec::with_capacity(located.series.len());
    for (location, series) in &located.series {
        let series_spec = series_spec(spec, series);
        let tracker = super::resume(ledger, &series_spec, now)?;
        let last = ledger.last_results(series, 1)?;
        let last = last.last().map(LastCheck::from);
        members.push((
            location.clone(),
            super::probe_status(&series_spec, Some(&tracker), last, now),
        ));
    }
    let mut status = quorum_status(spec, located, None, &members, now);
    status.since = quorum_since(ledger, spec, located, status.state, now)?;
    Ok(status)
}

/// When the quorum's current `state` began: the start of the run of that state its timeline
/// ends with, read back from `now` a widening stretch at a time (up to a week; `None` when
/// it began earlier, is unknown, or the timeline ends in another state).
fn quorum_since(
    ledger: &Ledger,
    spec: &ProbeSpec,
    located: &Located,
    state: State,
    now: Timestamp,
) -> Result<Option<Timestamp>, QueryError> {
    if state == State::Unknown {
        return Ok(None);
    }
    const WEEK: SignedDuration = SignedDuration::from_hours(24 * 7);
    let mut reach = SignedDuration::from_hours(1);
    loop {
        let from = now.checked_sub(reach).unwrap_or(now);
        let quorum = raw_quorum(ledger, spec, located, from, now)?;
        let mut since: Option<Timestamp> = None;
        let mut end = from;
        for segment in quorum.segments() {
            since = match since {
                Some(start) if segment.state == state && segment.start == end => Some(start),
                _ if segment.state == state => Some(segment.start),
                _ => None,
            };
            end = segment.end;
        }
        match since {
            Some(start) if start > from => return Ok(Some(start)),
            Some(_) if reach < WEEK => reach = reach.saturating_mul(4).min(WEEK),
            _ => return Ok(None),
        }
    }
}

/// The location this daemon recorded as its own at `at`: what `export` writes for a result
/// stored under a plain probe name. `None` for ledgers from before locations were recorded.
pub fn own_location(ledger: &Ledger, at: Timestamp) -> Result<Option<LocationName>, LedgerError> {
    ledger.location_at(at)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A coordinator's configuration with `web` read from locations a, b and c under
    /// `quorum`, and the SLA `acme` over it with `sla_keys`; its directory lives as long as
    /// the result.
    pub(in crate::query) fn coordinator(
        quorum: usize,
        sla_keys: &str,
    ) -> (tempfile::TempDir, Config) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("probes.d")).unwrap();
        let main = format!(
            "[daemon]\nledger = \"ledger\"\nlocation = \"hq\"\n\n\
             [replication]\nnats = \"nats://127.0.0.1:4222\"\nrole = \"coordinator\"\n\n\
             [[sla]]\nname = \"acme\"\nprobes = [\"web\"]\ntarget = \"99.9%\"\n{sla_keys}\n"
        );
        std::fs::write(dir.path().join("upledger.toml"), main).unwrap();
        let probe = format!(
            "[[probe]]\nname = \"web\"\nkind = \"tcp\"\naddress = \"127.0.0.1:9\"\n\
             interval = \"30s\"\ntimeout = \"5s\"\nfailure_threshold = 3\n\
             locations = [\"a\", \"b\", \"c\"]\nquorum = {quorum}\n"
        );
        std::fs::write(dir.path().join("probes.d/web.toml"), probe).unwrap();
        let config = crate::config::load(&dir.path().join("upledger.toml")).unwrap();
        (dir, config)
    }

    #[test]
    fn a_coordinator_reads_a_located_probe_from_its_series() {
        let (_dir, config) = coordinator(2, "");
        let spec = &config.probes[0];
        let own = located(&config, spec).expect("a coordinator reads located probes");
        assert_eq!(own.quorum, 2);
        let series: Vec<&str> = own.series.iter().map(|(_, s)| s.as_str()).collect();
        assert_eq!(series, ["web@a", "web@b", "web@c"]);
        assert_eq!(series_spec(spec, &own.series[1].1).name.as_str(), "web@b");
        // The SLA without keys of its own reads the probe as the probe is read.
        assert_eq!(
            located_for_sla(&config, &config.slas[0], spec).unwrap(),
            Some(own)
        );
    }

    #[test]
    fn an_sla_may_narrow_the_locations_and_change_the_quorum() {
        let (_dir, config) = coordinator(2, "quorum = 1");
        let spec = &config.probes[0];
        let sla = &config.slas[0];
        let read = located_for_sla(&config, sla, spec).unwrap().unwrap();
        assert_eq!((read.series.len(), read.quorum), (3, 1));

        let (_dir, config) = coordinator(2, "locations = [\"a\", \"b\"]");
        let read = located_for_sla(&config, &config.slas[0], &config.probes[0])
            .unwrap()
            .unwrap();
        let series: Vec<&str> = read.series.iter().map(|(_, s)| s.as_str()).collect();
        assert_eq!((series, read.quorum), (vec!["web@a", "web@b"], 2));

        // A location the probe does not list is refused by name.
        let (_dir, config) = coordinator(2, "locations = [\"a\", \"z\"]");
        let error = located_for_sla(&config, &config.slas[0], &config.probes[0])
            .unwrap_err()
            .to_string();
        assert_eq!(
            error,
            "sla acme: location z is not one of probe web's locations"
        );

        // A quorum the probe's own locations cannot reach is refused by name.
        let (_dir, config) = coordinator(1, "quorum = 3");
        let mut sla = config.slas[0].clone();
        sla.quorum = Some(4);
        let error = located_for_sla(&config, &sla, &config.probes[0])
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("sla acme: quorum 4 is more than the 3 location(s) probe web"),
            "{error}"
        );
    }

    /// Results of series `name` (`web@a`) every 30 s over `[from, from + count × 30 s)`,
    /// down where `down` says.
    pub(in crate::query) fn every_30s(
        name: &str,
        from: Timestamp,
        count: i64,
        down: impl Fn(i64) -> bool,
    ) -> Vec<crate::ledger::ResultRecord> {
        let probe = ProbeName::stored(name).unwrap();
        (0..count)
            .map(|i| {
                let failed = down(i);
                crate::ledger::ResultRecord {
                    probe: probe.clone(),
                    at: from.checked_add(SignedDuration::from_secs(30 * i)).unwrap(),
                    latency: std::time::Duration::from_millis(3),
                    outcome: if failed {
                        crate::model::Outcome::Down
                    } else {
                        crate::model::Outcome::Up
                    },
                    error_class: failed.then_some(crate::model::ErrorClass::Connect),
                    detail: String::new(),
                }
            })
            .collect()
    }

    /// The two hours up to now at a, b and c, every 30 s: a down for the last 40 minutes,
    /// b for the last 20, c never.
    fn recent(dir: &std::path::Path) -> (Ledger, Timestamp) {
        let from = Timestamp::from_second(Timestamp::now().as_second() - 7_170).unwrap();
        let ledger = Ledger::open(&dir.join("ledger")).unwrap();
        ledger
            .append(&every_30s("web@a", from, 240, |i| i >= 160))
            .unwrap();
        ledger
            .append(&every_30s("web@b", from, 240, |i| i >= 200))
            .unwrap();
        ledger
            .append(&every_30s("web@c", from, 240, |_| false))
            .unwrap();
        (ledger, from)
    }

    #[test]
    fn status_without_a_daemon_is_the_quorum_of_the_locations() {
        let (dir, config) = coordinator(2, "");
        let (ledger, from) = recent(dir.path());
        let report = super::super::status_from_ledger(&config, &ledger).unwrap();
        let web = &report.probes[0];
        assert_eq!(web.name, "web");
        assert_eq!(web.state, State::Down, "{web:?}");
        assert_eq!(web.quorum, Some(2));
        // Down since b's first failure (failure_threshold 3, back-dated to it).
        let b_down = from
            .checked_add(SignedDuration::from_secs(30 * 200))
            .unwrap();
        assert_eq!(web.since, Some(b_down), "{web:?}");
        let states: Vec<(&str, State)> = web
            .locations
            .iter()
            .map(|l| (l.location.as_str(), l.state))
            .collect();
        assert_eq!(
            states,
            [("a", State::Down), ("b", State::Down), ("c", State::Up)]
        );
        assert_eq!(web.locations[1].since, Some(b_down));
        assert_eq!(report.summary.down, 1);
        let json = serde_json::to_value(web).unwrap();
        assert_eq!(json["locations"][0]["location"], "a");
        assert_eq!(json["locations"][0]["state"], "down");

        // Under quorum 3, c keeps it up.
        let (dir, config) = coordinator(3, "");
        let (ledger, _) = recent(dir.path());
        let report = super::super::status_from_ledger(&config, &ledger).unwrap();
        assert_eq!(report.probes[0].state, State::Up, "{:?}", report.probes[0]);
    }

    #[test]
    fn the_board_gives_the_quorum_under_the_probe_and_each_location_under_its_series() {
        let (_dir, config) = coordinator(2, "");
        let spec = &config.probes[0];
        let read = located(&config, spec).unwrap();
        let now = Timestamp::now();
        let entry = |name: &str, state: State| {
            let series = series_spec(spec, &ProbeName::stored(name).unwrap());
            let last = LastCheck {
                at: now,
                outcome: crate::model::Outcome::Up,
                latency_ms: 1.0,
                error_class: None,
                detail: String::new(),
            };
            let mut status = super::super::probe_status(&series, None, Some(last), now);
            status.state = state;
            status.since = Some(now);
            (series.name, status)
        };
        let mut board: std::collections::HashMap<ProbeName, ProbeStatus> =
            [entry("web@a", State::Down), entry("web@b", State::Unknown)]
                .into_iter()
                .collect();
        // No entry of c, none of the quorum yet: down, unknown and unknown make unknown.
        let status = board_status(spec, &read, |n| board.get(n), now);
        assert_eq!(status.state, State::Unknown);
        assert_eq!(status.locations[2].state, State::Unknown);
        assert_eq!(status.locations[0].state, State::Down);
        // The daemon's own quorum entry wins, judged at `now` like any status.
        let (name, mut quorum) = entry("web", State::Down);
        quorum.name = "web".into();
        board.insert(name, quorum);
        let status = board_status(spec, &read, |n| board.get(n), now);
        assert_eq!(status.state, State::Down);
        assert_eq!(status.name, "web");
        let later = now.checked_add(SignedDuration::from_hours(1)).unwrap();
        let stale = board_status(spec, &read, |n| board.get(n), later);
        assert_eq!(stale.state, State::Unknown, "an hour without results");
        assert!(stale.locations.iter().all(|l| l.state == State::Unknown));
    }

    #[test]
    fn history_lists_every_location_and_the_quorum_unknown() {
        let (dir, config) = coordinator(2, "");
        let (ledger, from) = recent(dir.path());
        let since = from.checked_add(SignedDuration::from_secs(3_600)).unwrap();
        let history = super::super::history(&config, &ledger, "web", since).unwrap();
        assert_eq!(history.probe, "web");
        assert_eq!(history.checks, 3 * 120);
        assert_eq!(history.failed_checks, 80 + 40);
        assert!(history.results.iter().all(|r| r.probe == "web"));
        let located: Vec<_> = history.results[..3]
            .iter()
            .map(|r| r.location.as_ref().map(LocationName::as_str))
            .collect();
        assert_eq!(located, [Some("a"), Some("b"), Some("c")]);
        // Covered up to the newest results, then unknown until now.
        assert!(history.unknown.len() <= 1, "{:?}", history.unknown);
        // One location's series reads as a probe of its own.
        let b = super::super::history(&config, &ledger, "web@b", since).unwrap();
        assert_eq!(
            (b.probe.as_str(), b.checks, b.failed_checks),
            ("web@b", 120, 40)
        );
        assert!(super::super::history(&config, &ledger, "web@z", since).is_err());
    }

    #[test]
    fn day_bars_of_a_located_probe_are_its_quorum() {
        let (dir, config) = coordinator(2, "");
        let ledger = Ledger::open(&dir.path().join("ledger")).unwrap();
        // A whole UTC day: a down 02:00–03:00, b down 02:30–03:30, c never.
        let day = Timestamp::from_second(1_790_812_800).unwrap();
        let hours = |h: f64| (h * 120.0) as i64;
        let (a, b) = ((hours(2.0), hours(3.0)), (hours(2.5), hours(3.5)));
        let n = hours(24.0) + 10;
        ledger
            .append(&every_30s("web@a", day, n, |i| (a.0..a.1).contains(&i)))
            .unwrap();
        ledger
            .append(&every_30s("web@b", day, n, |i| (b.0..b.1).contains(&i)))
            .unwrap();
        ledger
            .append(&every_30s("web@c", day, n, |_| false))
            .unwrap();
        let until = day.checked_add(SignedDuration::from_hours(25)).unwrap();
        super::super::days::digest(&config, &ledger, until, &|| true).unwrap();
        let next = day.checked_add(SignedDuration::from_hours(24)).unwrap();
        let web = ProbeName::new("web").unwrap();
        let bars = ledger
            .rollups(&web, crate::ledger::RollupKind::Day, day, next)
            .unwrap();
        assert_eq!(bars.len(), 1, "{bars:?}");
        let (start, rollup) = &bars[0];
        assert_eq!(*start, day);
        // Both down from 02:30 to 03:00.
        assert_eq!(rollup.down_ms, 1_800_000, "{rollup:?}");
        assert_eq!(rollup.unknown_ms, 0, "{rollup:?}");
        assert_eq!(rollup.checks, 3 * 2_880);
    }

    #[test]
    fn a_quorum_outage_across_the_month_end_keeps_its_own_end_or_is_ongoing() {
        let (dir, config) = coordinator(2, "");
        let ledger = Ledger::open(&dir.path().join("ledger")).unwrap();
        // From 2026-10-31 22:00Z, three hours every 30 s: a and b down from 23:50 to
        // 00:30 on 1 November, c never.
        let from = Timestamp::from_second(1_790_812_800 + 30 * 86_400 + 22 * 3_600).unwrap();
        let down = |i: i64| (220..300).contains(&i);
        ledger.append(&every_30s("web@a", from, 360, down)).unwrap();
        ledger.append(&every_30s("web@b", from, 360, down)).unwrap();
        ledger
            .append(&every_30s("web@c", from, 360, |_| false))
            .unwrap();
        let october: crate::report::Month = "2026-10".parse().unwrap();
        let at = |i: i64| from.checked_add(SignedDuration::from_secs(30 * i)).unwrap();

        let later = at(360 + 2 * 2_880);
        let found = super::super::monthly::incidents(&config, &ledger, october, later).unwrap();
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].probe, "web");
        assert_eq!((found[0].start, found[0].end), (at(220), Some(at(300))));
        assert!(!found[0].ongoing);

        // Seen at 00:20, while both are still down: ongoing, running until then.
        let during = at(280);
        let found = super::super::monthly::incidents(&config, &ledger, october, during).unwrap();
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!((found[0].start, found[0].end), (at(220), None));
        assert!(found[0].ongoing);
        assert_eq!(found[0].duration_seconds, 30.0 * 60.0);

        // The alerts' view of the same hours: the quorum's outage.
        let outages =
            super::super::recent_outages_of(&config, &ledger, &config.probes[0], at(0), later)
                .unwrap();
        assert_eq!(outages, [(at(220), Some(at(300)))]);
    }
}
