//! The status page: plain HTML and inline CSS, no scripts and no external assets (a logo is
//! inlined as a `data:` URI), readable on a phone, light or dark after
//! `prefers-color-scheme`. It names probes by their display names, under their groups, with
//! their states, availability, incidents (their error class; the detail only under
//! `show_details`) and planned maintenance — never what a probe checks (URL, address). It
//! shows targets: each probe's, and each `[[sla]]`'s with what was achieved so far, the
//! downtime budget left and the credit owed if the month ended now, because a client sent
//! to this page comes to check the agreement, and these are the figures the month's report
//! will bill by. Times are to the minute in `[daemon].timezone`, as a client reads them.

use std::fmt::Write as _;

use super::{
    badge::escape,
    figures::{BAR_DAYS, DayBars, Figures},
};
use crate::{
    config::Config,
    model::State,
    query::{
        ProbeStatus, StatusReport,
        monthly::{self, Incident, ProbeMonth, SlaMonth},
    },
};

const STYLE: &str = r#"
:root{--bg:#fafafa;--fg:#1c1c1c;--muted:#666;--card:#fff;--line:#e3e3e3;
--up:#2e7d32;--down:#c62828;--warn:#ef6c00;--none:#bdbdbd}
@media (prefers-color-scheme:dark){:root{--bg:#121212;--fg:#e8e8e8;--muted:#9e9e9e;
--card:#1e1e1e;--line:#333;--none:#4a4a4a}}
*{box-sizing:border-box}body{margin:0;background:var(--bg);color:var(--fg);
font:16px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;overflow-wrap:anywhere}
main{max-width:60rem;margin:0 auto;padding:1rem}
.top{display:flex;align-items:center;gap:.75rem;margin:.5rem 0 1rem}
.top img{max-height:3rem;max-width:40%;height:auto}
h1{font-size:1.5rem;margin:0}h2{font-size:1.1rem;margin:1.5rem 0 .5rem}
.row.head{justify-content:flex-start;align-items:center;gap:.75rem}.head h2{margin:1.5rem 0 .5rem}
.banner{padding:1rem;border-radius:.5rem;color:#fff;font-weight:600;margin-bottom:1rem}
.banner.up{background:var(--up)}.banner.down{background:var(--down)}
.banner.degraded,.banner.unknown{background:var(--warn)}
.probe{background:var(--card);border:1px solid var(--line);border-radius:.5rem;
padding:.75rem 1rem;margin:.5rem 0}
.row{display:flex;flex-wrap:wrap;justify-content:space-between;gap:.25rem 1rem}
.name{font-weight:600}.muted{color:var(--muted);font-size:.875rem}
.pill{display:inline-block;padding:0 .5rem;border-radius:1rem;color:#fff;font-size:.8rem;
white-space:nowrap}
.pill.up,.pill.met{background:var(--up)}.pill.down,.pill.missed{background:var(--down)}
.pill.degraded,.pill.maintenance{background:var(--warn)}.pill.unknown{background:var(--none)}
.bar{display:flex;gap:1px;height:1.75rem;margin-top:.5rem}
.bar span{flex:1;min-width:2px;border-radius:1px;background:var(--none)}
.bar .met{background:var(--up)}.bar .missed{background:var(--down)}
.axis{display:flex;justify-content:space-between;font-size:.75rem}.narrow{display:none}
.figs{display:grid;grid-template-columns:repeat(auto-fit,minmax(9rem,1fr));gap:.5rem 1rem;
margin:.5rem 0}.figs dt{color:var(--muted);font-size:.8rem}.figs dd{margin:0;font-weight:600}
ul{padding-left:1.25rem}li{margin:.25rem 0}
footer{margin:2rem 0 1rem;color:var(--muted);font-size:.8rem}
"#;

/// Days a bar shows on a narrow screen (a phone): 90 days in 330 pixels are slivers too thin
/// to read or to tap, the last 30 are about ten pixels each.
const NARROW_DAYS: i64 = 30;

/// The whole page.
pub fn render(config: &Config, status: &StatusReport, figures: &Figures) -> String {
    let mut html = String::with_capacity(16_384 + status.probes.len() * 4_096);
    let zone = &config.daemon.timezone;
    let stamp = |at: jiff::Timestamp| monthly::local_time_text(at, zone);
    let overall = overall(status);
    let title = escape(&config.page.title);
    let logo = config.page.logo.as_ref().map_or_else(String::new, |logo| {
        format!("<img src=\"{}\" alt=\"\">", logo.data_uri())
    });
    let _ = write!(
        html,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <meta http-equiv=\"refresh\" content=\"60\"><title>{title}</title>\
         <style>{STYLE}@media (max-width:40rem){{.bar span:nth-child(-n+{hidden}){{display:none}}\
         .wide{{display:none}}.narrow{{display:inline}}}}</style></head><body><main>\
         <header class=\"top\">{logo}<h1>{title}</h1></header>\
         <div class=\"banner {}\">{}</div>",
        overall.0,
        overall.1,
        hidden = BAR_DAYS - NARROW_DAYS,
    );

    let groups = grouped(config, &status.probes);
    let only_default = groups.len() == 1 && groups[0].0.is_none();
    for (group, probes) in &groups {
        let heading = match group {
            Some(group) => escape(group),
            None if only_default => "Services".to_owned(),
            None => "Other services".to_owned(),
        };
        let worst = worst(probes.iter().map(|p| p.state));
        let _ = write!(
            html,
            "<section class=\"group\"><div class=\"row head\"><h2>{heading}</h2>\
             <span class=\"pill {state}\">{state}</span></div>",
            state = worst.as_str()
        );
        for probe in probes {
            service(&mut html, config, probe, figures, &stamp);
        }
        html.push_str("</section>");
    }

    agreements(&mut html, config, figures);

    html.push_str("<h2>Incidents this month</h2>");
    if figures.incidents.is_empty() {
        html.push_str("<p class=\"muted\">No incidents this month.</p>");
    } else {
        html.push_str("<ul>");
        for incident in figures.incidents.iter().take(20) {
            let when = match incident.end {
                Some(end) => format!(
                    "down {} → {} ({})",
                    stamp(incident.start),
                    stamp(end),
                    duration(incident.duration_seconds)
                ),
                None => format!(
                    "down since {}, ongoing for {}",
                    stamp(incident.start),
                    monthly::minutes_text(incident.duration_seconds)
                ),
            };
            let _ = write!(
                html,
                "<li><strong>{}</strong> {when}{}</li>",
                escape(shown_name(config, &incident.probe)),
                cause(incident, config.daemon.show_details),
            );
        }
        html.push_str("</ul>");
    }

    html.push_str("<h2>Planned maintenance</h2>");
    if figures.planned.is_empty() {
        html.push_str("<p class=\"muted\">None planned in the next two weeks.</p>");
    } else {
        html.push_str("<ul>");
        for planned in &figures.planned {
            let _ = write!(
                html,
                "<li>{} → {}: {} <span class=\"muted\">({})</span></li>",
                stamp(planned.interval.start),
                stamp(planned.interval.end),
                escape(&planned.reason),
                escape(&shown_names(config, &planned.probes)),
            );
        }
        html.push_str("</ul>");
    }

    let updated = figures
        .computed_at
        .map_or_else(|| "being computed".to_owned(), &stamp);
    let _ = write!(
        html,
        "<footer>Live state as of {}; month figures {} ({}). Availability counts time with \
         evidence only: time without checks is unknown, never up.</footer></main></body></html>",
        stamp(status.at),
        updated,
        escape(&config.daemon.timezone_name),
    );
    html
}

/// One probe's card: its name as clients read it, state, month and 90-day bar.
fn service(
    html: &mut String,
    config: &Config,
    probe: &ProbeStatus,
    figures: &Figures,
    stamp: &dyn Fn(jiff::Timestamp) -> String,
) {
    let month = figures
        .month
        .as_ref()
        .and_then(|doc| doc.probes.iter().find(|p| p.name == probe.name));
    let _ = write!(
        html,
        "<section class=\"probe\"><div class=\"row\"><span class=\"name\">{}</span>\
         <span class=\"pill {state}\">{state}</span></div><div class=\"row muted\">\
         <span>{}</span><span>{}</span></div>",
        escape(shown_name(config, &probe.name)),
        probe
            .since
            .map(|at| format!("{} since {}", probe.state.as_str(), stamp(at)))
            .unwrap_or_default(),
        month_line(month),
        state = probe.state.as_str(),
    );
    if !probe.locations.is_empty() {
        // SPEC §9: the state above is the quorum's; each location's own, on one line.
        let _ = write!(
            html,
            "<div class=\"row muted\"><span>{} of {} locations decide:",
            probe.quorum.unwrap_or(1),
            probe.locations.len()
        );
        for location in &probe.locations {
            let _ = write!(
                html,
                " {} <span class=\"pill {state}\">{state}</span>",
                escape(location.location.as_str()),
                state = location.state.as_str()
            );
        }
        html.push_str("</span></div>");
    }
    if let Some(bars) = figures.bars.get(&probe.name) {
        let target = month.map_or(100.0, |m| m.target);
        bar(html, bars, target);
    }
    html.push_str("</section>");
}

/// The probes under their headings: groups in the order their first probe is configured
/// (probes without a group under one default heading, placed likewise), each group's probes
/// in configuration order.
fn grouped<'s>(
    config: &Config,
    probes: &'s [ProbeStatus],
) -> Vec<(Option<String>, Vec<&'s ProbeStatus>)> {
    let mut groups: Vec<(Option<String>, Vec<&ProbeStatus>)> = Vec::new();
    for probe in probes {
        let group = config
            .probe(&probe.name)
            .and_then(|spec| spec.group.clone());
        match groups.iter_mut().find(|(g, _)| *g == group) {
            Some((_, members)) => members.push(probe),
            None => groups.push((group, vec![probe])),
        }
    }
    groups
}

/// The state a group heading shows: its worst member's.
fn worst(states: impl Iterator<Item = State>) -> State {
    let rank = |state: State| match state {
        State::Down => 4,
        State::Degraded => 3,
        State::Unknown => 2,
        State::Maintenance => 1,
        State::Up => 0,
    };
    states.max_by_key(|s| rank(*s)).unwrap_or(State::Unknown)
}

/// What a client reads for the probe `name`: its display name, else the name.
fn shown_name<'c>(config: &'c Config, name: &'c str) -> &'c str {
    config.probe(name).map_or(name, |spec| spec.shown_name())
}

/// `names` as a client reads them, comma-separated.
fn shown_names(config: &Config, names: &[String]) -> String {
    names
        .iter()
        .map(|name| shown_name(config, name))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The agreements' section: per `[[sla]]`, its target, what was achieved so far this month,
/// the downtime budget left and the credit owed if the month ended now.
fn agreements(html: &mut String, config: &Config, figures: &Figures) {
    if config.slas.is_empty() {
        return;
    }
    html.push_str("<h2>Service level agreements</h2>");
    let Some(month) = &figures.month else {
        html.push_str("<p class=\"muted\">This month's figures are being computed.</p>");
        return;
    };
    for sla in &month.slas {
        agreement(html, config, sla);
    }
}

fn agreement(html: &mut String, config: &Config, sla: &SlaMonth) {
    let (class, verdict) = match sla.availability {
        None => ("unknown", "no data yet"),
        Some(_) if sla.met => ("met", "met so far"),
        Some(_) => ("missed", "missed so far"),
    };
    let client = sla.client.as_ref().map_or_else(String::new, |c| {
        format!(" <span class=\"muted\">for {}</span>", escape(c))
    });
    let achieved = sla
        .availability
        .map_or_else(|| "no data yet".to_owned(), |a| format!("{a:.3}%"));
    let budget = if sla.budget_remaining_seconds >= 0.0 {
        format!(
            "{} of {}",
            duration(sla.budget_remaining_seconds),
            duration(sla.budget_seconds)
        )
    } else {
        format!(
            "none: overspent by {}",
            duration(-sla.budget_remaining_seconds)
        )
    };
    let fee = config
        .slas
        .iter()
        .find(|s| s.name == sla.name)
        .and_then(|s| s.monthly_fee);
    let credit = match (sla.credit_percent > 0.0, fee) {
        (false, _) => "none".to_owned(),
        (true, None) => format!("{}% of the monthly fee", sla.credit_percent),
        (true, Some(_)) => format!(
            "{}% ({:.2}{})",
            sla.credit_percent,
            sla.credit_amount,
            sla.currency
                .as_ref()
                .map_or_else(String::new, |c| format!(" {}", escape(c)))
        ),
    };
    // The response-time objective (SPEC §10), where the agreement has one.
    let latency = sla
        .latency_objective
        .as_ref()
        .map_or_else(String::new, |objective| {
            format!(
                "<div><dt>Response time</dt><dd>{}</dd></div>",
                escape(&crate::render::latency_objective(objective))
            )
        });
    let _ = write!(
        html,
        "<section class=\"probe sla\"><div class=\"row\"><span><span class=\"name\">{}</span>\
         {client}</span><span class=\"pill {class}\">{verdict}</span></div>\
         <dl class=\"figs\"><div><dt>Target</dt><dd>{}%</dd></div>\
         <div><dt>Achieved this month</dt><dd>{achieved}</dd></div>\
         <div><dt>Downtime budget left</dt><dd>{budget}</dd></div>\
         <div><dt>Credit if the month ended now</dt><dd>{credit}</dd></div>{latency}</dl>",
        escape(&sla.name),
        sla.target,
    );
    if !sla.probes.is_empty() {
        let _ = write!(
            html,
            "<div class=\"muted\">Covers {}</div>",
            escape(&shown_names(config, &sla.probes))
        );
    }
    html.push_str("</section>");
}

fn overall(status: &StatusReport) -> (&'static str, &'static str) {
    let states: Vec<State> = status.probes.iter().map(|p| p.state).collect();
    if states.contains(&State::Down) {
        ("down", "Some services are down")
    } else if states.contains(&State::Degraded) {
        ("degraded", "Some services are slow")
    } else if states
        .iter()
        .all(|s| *s == State::Up || *s == State::Maintenance)
    {
        ("up", "All services are operating normally")
    } else {
        ("unknown", "The state of some services is not known")
    }
}

/// ` — connect`: the error class; its detail (addresses, OS errors) only under
/// `show_details`.
fn cause(incident: &Incident, show_details: bool) -> String {
    match (incident.error_class, show_details) {
        (Some(class), true) if !incident.detail.is_empty() => {
            format!(" — {class}: {}", escape(&incident.detail))
        }
        (Some(class), _) => format!(" — {class}"),
        (None, _) => String::new(),
    }
}

fn month_line(month: Option<&ProbeMonth>) -> String {
    match month {
        Some(m) => match m.availability {
            Some(availability) => format!(
                "{availability:.3}% this month · target {}% · {}",
                m.target,
                if availability >= m.target {
                    "met so far"
                } else {
                    "missed so far"
                }
            ),
            None => format!("no data this month · target {}%", m.target),
        },
        None => "month figures being computed".to_owned(),
    }
}

fn bar(html: &mut String, bars: &DayBars, target: f64) {
    let _ = write!(
        html,
        "<div class=\"bar\" role=\"img\" aria-label=\"daily availability: the last {BAR_DAYS} \
         days, today so far last\">"
    );
    let last = bars.days.len().saturating_sub(1);
    for (i, (day, availability)) in bars.iter().enumerate() {
        let (class, text) = match availability {
            Some(a) if a >= target => ("met", format!("{a:.3}%")),
            Some(a) => ("missed", format!("{a:.3}%")),
            None => ("none", "no data".to_owned()),
        };
        let today = if i == last { " (today, so far)" } else { "" };
        let _ = write!(
            html,
            "<span class=\"{class}\" title=\"{}{today}: {text}\"></span>",
            day.strftime("%Y-%m-%d")
        );
    }
    let _ = write!(
        html,
        "</div><div class=\"axis muted\"><span class=\"wide\">{BAR_DAYS} days ago</span>\
         <span class=\"narrow\">{NARROW_DAYS} days ago</span><span>today</span></div>"
    );
}

fn duration(seconds: f64) -> String {
    let whole = seconds.round().max(0.0) as u64;
    humantime::format_duration(std::time::Duration::from_secs(whole)).to_string()
}

#[cfg(test)]
mod tests {
    use jiff::Timestamp;

    use super::*;
    use crate::{model::ErrorClass, query::Summary};

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    /// A configuration in Europe/Berlin with `show_details` as given.
    fn config(show_details: bool) -> (tempfile::TempDir, Config) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("probes.d")).unwrap();
        std::fs::write(
            dir.path().join("upledger.toml"),
            format!(
                "[daemon]\nledger = \"ledger\"\ntimezone = \"Europe/Berlin\"\n\
                 show_details = {show_details}\n"
            ),
        )
        .unwrap();
        std::fs::write(
            dir.path().join("probes.d/p.toml"),
            "[[probe]]\nname = \"db\"\nkind = \"tcp\"\naddress = \"192.0.2.7:5432\"\n",
        )
        .unwrap();
        let config = crate::config::load(&dir.path().join("upledger.toml")).unwrap();
        (dir, config)
    }

    /// An ongoing outage (2 h 10 m so far) and an ended one whose detail names an address.
    fn figures() -> Figures {
        let detail = "connection refused (os error 111) to 192.0.2.7:5432".to_owned();
        Figures {
            incidents: vec![
                Incident {
                    probe: "db".to_owned(),
                    start: at("2026-11-03T12:00:00Z"),
                    end: None,
                    ongoing: true,
                    duration_seconds: 7_830.5,
                    error_class: Some(ErrorClass::Connect),
                    detail: detail.clone(),
                },
                Incident {
                    probe: "db".to_owned(),
                    start: at("2026-11-02T08:00:00.250Z"),
                    end: Some(at("2026-11-02T08:05:00.250Z")),
                    ongoing: false,
                    duration_seconds: 300.0,
                    error_class: Some(ErrorClass::Connect),
                    detail,
                },
            ],
            computed_at: Some(at("2026-11-03T14:10:30.5Z")),
            ..Figures::default()
        }
    }

    fn status() -> StatusReport {
        StatusReport {
            daemon_running: true,
            at: at("2026-11-03T14:10:45.123456789Z"),
            probes: Vec::new(),
            summary: Summary::default(),
        }
    }

    #[test]
    fn incidents_read_in_the_zone_and_ongoing_ones_have_no_end() {
        let (_dir, config) = config(false);
        let page = render(&config, &status(), &figures());
        for shown in [
            "<strong>db</strong> down since 2026-11-03 13:00 CET, ongoing for 2h 10m — connect</li>",
            "<strong>db</strong> down 2026-11-02 09:00 CET → 2026-11-02 09:05 CET (5m) — connect</li>",
            "Live state as of 2026-11-03 15:10 CET",
        ] {
            assert!(page.contains(shown), "the page lacks {shown:?}:\n{page}");
        }
        for hidden in ["UTC", "192.0.2.7", "os error", "refused", ":00Z", ".250"] {
            assert!(!page.contains(hidden), "the page shows {hidden:?}:\n{page}");
        }
    }

    #[test]
    fn details_show_only_when_allowed() {
        let (_dir, config) = config(true);
        let page = render(&config, &status(), &figures());
        assert!(
            page.contains("— connect: connection refused (os error 111) to 192.0.2.7:5432</li>"),
            "{page}"
        );
    }

    #[test]
    fn a_located_probe_shows_each_locations_state_on_a_line() {
        let (_dir, config) = config(false);
        let now = at("2026-11-03T14:10:45Z");
        let mut db = crate::query::probe_status(&config.probes[0], None, None, now);
        db.state = State::Down;
        db.quorum = Some(2);
        db.locations = [
            ("fra1", State::Down),
            ("nyc1", State::Down),
            ("sgp1", State::Up),
        ]
        .into_iter()
        .map(|(name, state)| crate::query::LocationStatus {
            location: crate::model::LocationName::new(name).unwrap(),
            state,
            since: None,
        })
        .collect();
        let mut status = status();
        status.probes.push(db);
        let page = render(&config, &status, &Figures::default());
        let line = "<span>2 of 3 locations decide: fra1 <span class=\"pill down\">down</span> \
                    nyc1 <span class=\"pill down\">down</span> \
                    sgp1 <span class=\"pill up\">up</span></span>";
        assert!(page.contains(line), "{page}");
        // A probe checked here alone has no such line.
        let page = render(&config, &self::status(), &Figures::default());
        assert!(!page.contains("locations decide"));
    }

    /// Probes in two groups and one without, display names, an SLA with a fee, a title: the
    /// page as computed from a ledger of half an hour of good checks.
    #[test]
    fn groups_display_names_agreements_and_the_title_show() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("probes.d")).unwrap();
        std::fs::write(
            dir.path().join("upledger.toml"),
            "[daemon]\nledger = \"ledger\"\n\n[page]\ntitle = \"ACME <Cloud> status\"\n\n\
             [[sla]]\nname = \"acme-premium\"\nclient = \"ACME Corp\"\nprobes = [\"api\", \"web\"]\n\
             target = \"99.95%\"\nmonthly_fee = 2000.0\ncurrency = \"EUR\"\n\
             credits = [ { below = \"99.95%\", credit = \"10%\" } ]\n\n\
             [[sla]]\nname = \"db-basic\"\nprobes = [\"db\"]\ntarget = \"99.9%\"\n\
             monthly_fee = 100.0\ncurrency = \"EUR\"\n\
             credits = [ { below = \"99.9%\", credit = \"25%\" } ]\n\n\
             [[maintenance]]\nprobes = [\"api\", \"web\"]\nweekly = \"Sun 03:00\"\nduration = \"30m\"\n\
             reason = \"weekly patch window\"\n",
        )
        .unwrap();
        let probe = |name: &str, extra: &str| {
            format!(
                "[[probe]]\nname = \"{name}\"\nkind = \"tcp\"\naddress = \"192.0.2.7:443\"\n\
                 interval = \"30s\"\ntimeout = \"5s\"\n{extra}\n"
            )
        };
        std::fs::write(
            dir.path().join("probes.d/p.toml"),
            [
                probe(
                    "api",
                    "display_name = \"Public API\"\ngroup = \"Core platform\"",
                ),
                probe("batch-7", ""),
                probe(
                    "web",
                    "display_name = \"Customer portal\"\ngroup = \"Websites\"",
                ),
                probe(
                    "db",
                    "display_name = \"Database\"\ngroup = \"Core platform\"",
                ),
            ]
            .concat(),
        )
        .unwrap();
        let config = crate::config::load(&dir.path().join("upledger.toml")).unwrap();
        let ledger = crate::ledger::Ledger::open(&dir.path().join("ledger")).unwrap();
        let now = at("2026-11-18T12:00:00Z");
        let mut records = Vec::new();
        for spec in &config.probes {
            for i in 0..60 {
                records.push(crate::ledger::ResultRecord {
                    probe: spec.name.clone(),
                    at: at("2026-11-18T11:30:00Z")
                        .checked_add(jiff::SignedDuration::from_secs(30 * i))
                        .unwrap(),
                    latency: std::time::Duration::from_millis(3),
                    // The database fails for the last twenty minutes.
                    outcome: if spec.name.as_str() == "db" && i >= 20 {
                        crate::model::Outcome::Down
                    } else {
                        crate::model::Outcome::Up
                    },
                    error_class: (spec.name.as_str() == "db" && i >= 20)
                        .then_some(crate::model::ErrorClass::Connect),
                    detail: String::new(),
                });
            }
        }
        ledger.append(&records).unwrap();
        let figures = super::super::figures::compute(&config, &ledger, now).unwrap();
        let mut status = status();
        status.at = now;
        for spec in &config.probes {
            let mut probe = crate::query::probe_status(spec, None, None, now);
            probe.state = State::Up;
            status.probes.push(probe);
        }
        let page = render(&config, &status, &figures);

        assert!(
            page.contains("<title>ACME &lt;Cloud&gt; status</title>"),
            "{page}"
        );
        assert!(
            page.contains("<h1>ACME &lt;Cloud&gt; status</h1>"),
            "{page}"
        );
        // Groups in the order of their first probe, the ungrouped one under its own heading.
        let headings: Vec<&str> = page
            .split("<h2>")
            .skip(1)
            .map(|h| h.split("</h2>").next().unwrap())
            .collect();
        assert_eq!(
            headings,
            [
                "Core platform",
                "Other services",
                "Websites",
                "Service level agreements",
                "Incidents this month",
                "Planned maintenance"
            ]
        );
        let core = page.split("<h2>Core platform</h2>").nth(1).unwrap();
        let core = core
            .split("</section><section class=\"group\">")
            .next()
            .unwrap();
        assert!(
            core.find("Public API").unwrap() < core.find("Database").unwrap(),
            "configuration order"
        );
        for shown in [
            "<span class=\"name\">Public API</span>",
            "<span class=\"name\">batch-7</span>",
            "<span class=\"name\">acme-premium</span> <span class=\"muted\">for ACME Corp</span>",
            "<dt>Target</dt><dd>99.95%</dd>",
            "<dt>Achieved this month</dt><dd>100.000%</dd>",
            "<dt>Downtime budget left</dt><dd>",
            "<dt>Credit if the month ended now</dt><dd>none</dd>",
            "Covers Public API, Customer portal",
            "weekly patch window <span class=\"muted\">(Public API, Customer portal)</span>",
            "<span class=\"name\">db-basic</span></span><span class=\"pill missed\">missed so far</span>",
            "<dt>Achieved this month</dt><dd>33.333%</dd>",
            "<dt>Downtime budget left</dt><dd>none: overspent by 1m 58s</dd>",
            "<dt>Credit if the month ended now</dt><dd>25% (25.00 EUR)</dd>",
            "Covers Database",
            "<li><strong>Database</strong> down since 2026-11-18 11:40 UTC, ongoing for 20m — connect</li>",
        ] {
            assert!(page.contains(shown), "the page lacks {shown:?}:\n{page}");
        }
        // A probe with a display name is never shown by its name.
        for slug in [">api<", ">web<", ">db<", "(api", "api,", "web)"] {
            assert!(!page.contains(slug), "the page shows {slug:?}:\n{page}");
        }
        // Today's bar holds the half hour of good checks, before any digest.
        let bar = core.split("<div class=\"bar\"").nth(1).unwrap();
        let today = bar
            .split("<span")
            .filter(|s| s.contains("title="))
            .last()
            .unwrap();
        assert!(
            today.contains("class=\"met\" title=\"2026-11-18 (today, so far): 100.000%\""),
            "{today}"
        );
        assert_eq!(bar.matches(" title=\"").count(), BAR_DAYS as usize);
        assert!(page.contains("@media (max-width:40rem){.bar span:nth-child(-n+60){display:none}"));
    }

    #[test]
    fn a_logo_is_inlined() {
        let (dir, _) = config(false);
        std::fs::write(
            dir.path().join("logo.svg"),
            "<svg xmlns=\"http://www.w3.org/2000/svg\"/>",
        )
        .unwrap();
        let main = dir.path().join("upledger.toml");
        let text = std::fs::read_to_string(&main).unwrap();
        std::fs::write(&main, format!("{text}\n[page]\nlogo = \"logo.svg\"\n")).unwrap();
        let config = crate::config::load(&main).unwrap();
        let page = render(&config, &status(), &Figures::default());
        assert!(
            page.contains("<header class=\"top\"><img src=\"data:image/svg+xml;base64,PHN2Zy"),
            "{page}"
        );
        assert!(page.contains("<h1>Service status</h1>"));
        assert!(
            !page.contains("http://"),
            "nothing external, even inside the logo"
        );
    }
}
