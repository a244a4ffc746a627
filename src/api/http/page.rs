//! The status page: plain HTML and inline CSS, no scripts and no external assets, readable on
//! a phone, light or dark after `prefers-color-scheme`. It names probes, states, availability,
//! incidents (their error class; the detail only under `show_details`) and planned
//! maintenance — never a target. Times are to the minute in `[daemon].timezone`, as a client
//! reads them.

use std::fmt::Write as _;

use super::{
    badge::escape,
    figures::{DayBars, Figures},
};
use crate::{
    config::Config,
    model::State,
    query::{
        StatusReport,
        monthly::{self, Incident, ProbeMonth},
    },
};

const STYLE: &str = r#"
:root{--bg:#fafafa;--fg:#1c1c1c;--muted:#666;--card:#fff;--line:#e3e3e3;
--up:#2e7d32;--down:#c62828;--warn:#ef6c00;--none:#bdbdbd}
@media (prefers-color-scheme:dark){:root{--bg:#121212;--fg:#e8e8e8;--muted:#9e9e9e;
--card:#1e1e1e;--line:#333;--none:#4a4a4a}}
*{box-sizing:border-box}body{margin:0;background:var(--bg);color:var(--fg);
font:16px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
main{max-width:60rem;margin:0 auto;padding:1rem}
h1{font-size:1.5rem;margin:.5rem 0 1rem}h2{font-size:1.1rem;margin:1.5rem 0 .5rem}
.banner{padding:1rem;border-radius:.5rem;color:#fff;font-weight:600;margin-bottom:1rem}
.banner.up{background:var(--up)}.banner.down{background:var(--down)}
.banner.degraded,.banner.unknown{background:var(--warn)}
.probe{background:var(--card);border:1px solid var(--line);border-radius:.5rem;
padding:.75rem 1rem;margin:.5rem 0}
.row{display:flex;flex-wrap:wrap;justify-content:space-between;gap:.25rem 1rem}
.name{font-weight:600}.muted{color:var(--muted);font-size:.875rem}
.pill{display:inline-block;padding:0 .5rem;border-radius:1rem;color:#fff;font-size:.8rem}
.pill.up{background:var(--up)}.pill.down{background:var(--down)}
.pill.degraded,.pill.maintenance{background:var(--warn)}.pill.unknown{background:var(--none)}
.bar{display:flex;gap:1px;height:1.75rem;margin-top:.5rem}
.bar span{flex:1;border-radius:1px;background:var(--none)}
.bar .met{background:var(--up)}.bar .missed{background:var(--down)}
ul{padding-left:1.25rem}li{margin:.25rem 0}
footer{margin:2rem 0 1rem;color:var(--muted);font-size:.8rem}
"#;

/// The whole page.
pub fn render(config: &Config, status: &StatusReport, figures: &Figures) -> String {
    let mut html = String::with_capacity(16_384 + status.probes.len() * 4_096);
    let zone = &config.daemon.timezone;
    let stamp = |at: jiff::Timestamp| monthly::local_time_text(at, zone);
    let overall = overall(status);
    let _ = write!(
        html,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <meta http-equiv=\"refresh\" content=\"60\"><title>Service status</title>\
         <style>{STYLE}</style></head><body><main><h1>Service status</h1>\
         <div class=\"banner {}\">{}</div>",
        overall.0, overall.1
    );

    html.push_str("<h2>Services</h2>");
    for probe in &status.probes {
        let month = figures
            .month
            .as_ref()
            .and_then(|doc| doc.probes.iter().find(|p| p.name == probe.name));
        let _ = write!(
            html,
            "<section class=\"probe\"><div class=\"row\"><span class=\"name\">{}</span>\
             <span class=\"pill {state}\">{state}</span></div><div class=\"row muted\">\
             <span>{}</span><span>{}</span></div>",
            escape(&probe.name),
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
            bar(&mut html, bars, target);
        }
        html.push_str("</section>");
    }

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
                escape(&incident.probe),
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
                escape(&planned.probes.join(", ")),
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
    html.push_str(
        "<div class=\"bar\" role=\"img\" aria-label=\"availability of the last 90 days\">",
    );
    for (day, availability) in bars.iter() {
        let (class, text) = match availability {
            Some(a) if a >= target => ("met", format!("{a:.3}%")),
            Some(a) => ("missed", format!("{a:.3}%")),
            None => ("none", "no data".to_owned()),
        };
        let _ = write!(
            html,
            "<span class=\"{class}\" title=\"{}: {text}\"></span>",
            day.strftime("%Y-%m-%d")
        );
    }
    html.push_str("</div>");
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
}
