//! The printable report (`report --format html`): one page per SLA a vendor prints to PDF from
//! a browser and sends a client. Plain HTML with its CSS inline — no script, font, image or
//! other external asset, so the file renders the same offline, years later. Each SLA's
//! section ends with a page break and is laid out to stay on one A4 page however busy the
//! month: the figures in two columns, the trend as a row of bars, and the lists cut at
//! [`MAX_SERVICES`], [`MAX_INCIDENTS`] and [`MAX_LINES`] entries with the rest counted (the
//! Markdown and JSON forms list everything).

use std::fmt::Write as _;

use jiff::Timestamp;

use super::{
    MonthHeading, credit, downtime_rule, duration, escape, incident_duration, latency_objective,
    markdown::{clock_step_lines, import_lines},
    pct, previous_text, public_cause,
};
use crate::query::monthly::{Incident, MonthDocument, SlaMonth};

/// Incidents listed per page; more are counted, not listed.
pub const MAX_INCIDENTS: usize = 6;
/// Services listed per page.
pub const MAX_SERVICES: usize = 6;
/// Entries of the list of maintenance, exclusions, imports and clock steps per page.
pub const MAX_LINES: usize = 6;

const STYLE: &str = r#"
@page{size:A4;margin:14mm 14mm}
*{box-sizing:border-box}
body{margin:0;color:#1b1b1b;background:#fff;font:9.5pt/1.35 "Helvetica Neue",Arial,"Liberation Sans",sans-serif}
.page{max-width:182mm;margin:0 auto;break-after:page;page-break-after:always}
.page:last-child{break-after:auto;page-break-after:auto}
header{border-bottom:2px solid #1b1b1b;padding-bottom:2mm;margin-bottom:4mm}
h1{font-size:16pt;margin:0 0 1mm}h2{font-size:10.5pt;margin:4mm 0 1.5mm}
.sub{color:#555}
.verdict{font-size:12pt;font-weight:600;padding:2.5mm 4mm;border-radius:2mm;margin:0 0 3mm}
.verdict.met{background:#e7f4ea;color:#1e5e2c}.verdict.missed{background:#fbe9e9;color:#8c1c1c}
dl.figures{display:grid;grid-template-columns:1fr 1fr;gap:0 6mm;margin:0}
dl.figures div{display:flex;gap:2mm;border-bottom:1px solid #ddd;padding:1mm 0;break-inside:avoid}
dl.figures dt{flex:0 0 40%;font-weight:600;color:#444}dl.figures dd{margin:0}
dl.figures div.wide{grid-column:1/3}dl.figures div.wide dt{flex-basis:19%}
table{width:100%;border-collapse:collapse;break-inside:avoid}
th,td{text-align:left;padding:.8mm 2mm;border-bottom:1px solid #ddd;vertical-align:top}
th{font-weight:600;color:#444}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
.trend{display:flex;gap:1.5mm;align-items:flex-end;break-inside:avoid}
.trend div{flex:1;text-align:center;font-size:7.5pt;color:#444}
.trend .bar{height:16mm;display:flex;align-items:flex-end;background:#f1f1f1}
.trend .bar span{display:block;width:100%;background:#2e7d32}
.trend .missed .bar span{background:#c62828}
ul{margin:0;padding-left:5mm}
.note{color:#666;font-size:8pt;margin-top:1mm}
@media screen{body{background:#eee}.page{background:#fff;margin:8mm auto;padding:12mm 14mm;box-shadow:0 1px 4px #0003}}
"#;

/// The whole document: a page per SLA, or one page of the probes when there is no SLA.
pub fn html(document: &MonthDocument, incidents: &[Incident], show_details: bool) -> String {
    let heading = MonthHeading::new(
        document,
        |as_of| format!("Month in progress: figures as of {as_of}"),
        "Final figures",
    );
    let time = |at: Timestamp| heading.time(at);
    let (period, status) = (&heading.period, &heading.status);
    let mut out = String::with_capacity(16_384);
    let _ = write!(
        out,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>Service availability report {}</title><style>{STYLE}</style></head><body>",
        escape(&document.month)
    );
    let page = Page {
        document,
        time: &time,
        period,
        status,
    };
    for sla in &document.slas {
        page.sla(&mut out, sla, incidents, show_details);
    }
    if document.slas.is_empty() {
        page.probes(&mut out);
    }
    out.push_str("</body></html>\n");
    out
}

/// What every page shares.
struct Page<'a> {
    document: &'a MonthDocument,
    time: &'a dyn Fn(Timestamp) -> String,
    period: &'a str,
    status: &'a str,
}

impl Page<'_> {
    fn sla(&self, out: &mut String, sla: &SlaMonth, incidents: &[Incident], show_details: bool) {
        let time = self.time;
        let client = sla.client.clone().unwrap_or_else(|| sla.name.clone());
        let _ = write!(
            out,
            "<section class=\"page sla\" data-sla=\"{}\"><header><h1>Service availability report</h1>\
             <div class=\"sub\">{} · {} · agreement <b>{}</b></div>{}</header>",
            escape(&sla.name),
            escape(&client),
            escape(&self.document.month),
            escape(&sla.name),
            self.period_line()
        );
        let (class, word) = if sla.met {
            ("met", "met")
        } else {
            ("missed", "missed")
        };
        let _ = write!(
            out,
            "<p class=\"verdict {class}\">Achieved {} against a target of {}%: {word}</p>",
            escape(&pct(sla.availability)),
            sla.target
        );
        let mut rows: Vec<(String, String)> = vec![
            ("Target".into(), format!("{}%", sla.target)),
            ("Achieved".into(), pct(sla.availability)),
        ];
        let rule = downtime_rule(sla)
            .map(|rule| format!(" ({rule})"))
            .unwrap_or_default();
        rows.push((
            "Downtime counted".into(),
            format!("{}{rule}", duration(sla.downtime_seconds)),
        ));
        rows.push((
            "Error budget left".into(),
            format!(
                "{} of {}",
                super::budget(sla.budget_remaining_seconds),
                duration(sla.budget_seconds)
            ),
        ));
        if let Some(objective) = &sla.latency_objective {
            rows.push(("Response time".into(), latency_objective(objective)));
        }
        rows.push(("Measurement coverage".into(), pct(sla.coverage)));
        rows.push(("Service credit".into(), credit(sla)));
        if let Some(previous) = &sla.previous {
            rows.push((
                format!("Previous month ({})", previous.month),
                previous_text(previous),
            ));
        }
        let covered = match sla.probes.len() {
            n if n > MAX_SERVICES * 2 => format!(
                "{} and {} more",
                sla.probes[..MAX_SERVICES * 2].join(", "),
                n - MAX_SERVICES * 2
            ),
            _ => sla.probes.join(", "),
        };
        rows.push(("Services covered".into(), covered));
        // Short figures two to a row; a long one (the services, the response-time sentence)
        // takes a row of its own, after them, so the columns stay aligned.
        let is_wide = |value: &str| value.chars().count() > 30;
        let (wide, short): (Vec<_>, Vec<_>) = rows.iter().partition(|(_, value)| is_wide(value));
        out.push_str("<dl class=\"figures\">");
        for (label, value) in short {
            let _ = write!(
                out,
                "<div><dt>{}</dt><dd>{}</dd></div>",
                escape(label),
                escape(value)
            );
        }
        for (label, value) in wide {
            let _ = write!(
                out,
                "<div class=\"wide\"><dt>{}</dt><dd>{}</dd></div>",
                escape(label),
                escape(value)
            );
        }
        out.push_str("</dl>");

        let mut members: Vec<_> = self
            .document
            .probes
            .iter()
            .filter(|p| sla.probes.contains(&p.name))
            .collect();
        if members.len() > 1 {
            // The services that cost the most first, so a cut list keeps what matters.
            members.sort_by(|a, b| b.downtime_seconds.total_cmp(&a.downtime_seconds));
            let _ = write!(
                out,
                "<h2>Services{}</h2><table><tr><th>Service</th><th class=\"num\">Availability</th>\
                 <th class=\"num\">Downtime</th><th class=\"num\">Incidents</th></tr>",
                if members.len() > MAX_SERVICES {
                    format!(
                        " (the {MAX_SERVICES} with the most downtime of {})",
                        members.len()
                    )
                } else {
                    String::new()
                }
            );
            for p in members.iter().take(MAX_SERVICES) {
                let _ = write!(
                    out,
                    "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
                     <td class=\"num\">{}</td></tr>",
                    escape(&p.name),
                    escape(&pct(p.availability)),
                    escape(&duration(p.downtime_seconds)),
                    p.incidents
                );
            }
            out.push_str("</table>");
        }

        if sla.trend.len() > 1 {
            self.trend(out, sla);
        }

        let mine: Vec<&Incident> = incidents
            .iter()
            .filter(|i| sla.probes.contains(&i.probe))
            .collect();
        out.push_str("<h2>Incidents</h2>");
        if mine.is_empty() {
            out.push_str("<p>None.</p>");
        } else {
            out.push_str(
                "<table><tr><th>Service</th><th>Start</th><th>End</th><th>Duration</th>\
                 <th>Cause</th></tr>",
            );
            for i in mine.iter().take(MAX_INCIDENTS) {
                let end = i.end.map_or_else(|| "—".to_owned(), time);
                let _ = write!(
                    out,
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    escape(&i.probe),
                    escape(&time(i.start)),
                    escape(&end),
                    escape(&incident_duration(i)),
                    escape(&public_cause(i, show_details))
                );
            }
            out.push_str("</table>");
            if mine.len() > MAX_INCIDENTS {
                let _ = write!(
                    out,
                    "<p class=\"sub\">and {} more, listed in the full report.</p>",
                    mine.len() - MAX_INCIDENTS
                );
            }
        }
        // Everything that took time out of the figures or put results into them, in one
        // list: a reader must know of each, and the full report has the details.
        let notes: Vec<String> = sla
            .maintenance
            .iter()
            .map(|w| {
                let (start, end) = (time(w.start), time(w.end));
                format!("Planned maintenance {start} to {end}: {}", w.reason)
            })
            .chain(sla.exclusions.iter().map(|e| {
                let (from, to) = (time(e.from), time(e.to));
                format!("Excluded {from} to {to}: {}", e.reason)
            }))
            .chain(
                import_lines(self.document, Some(&sla.probes), time)
                    .into_iter()
                    .map(|line| format!("Imported results: {line}")),
            )
            .chain(
                clock_step_lines(self.document, time)
                    .into_iter()
                    .map(|line| format!("Clock step: {line}")),
            )
            .collect();
        list(out, "Maintenance and adjustments", &notes);
        out.push_str("</section>");
    }

    /// The last months' availability as a row of bars, scaled from the lowest month shown
    /// (or the target, if lower) to 100 %, so differences near the target stay visible.
    fn trend(&self, out: &mut String, sla: &SlaMonth) {
        let floor = sla
            .trend
            .iter()
            .filter_map(|m| m.availability)
            .fold(sla.target, f64::min)
            .min(99.0)
            .floor();
        let _ = write!(
            out,
            "<h2>Last {} months (target {}%)</h2><div class=\"trend\">",
            sla.trend.len(),
            sla.target
        );
        for month in &sla.trend {
            let height = month.availability.map_or(0.0, |a| {
                ((a - floor) / (100.0 - floor) * 100.0).clamp(2.0, 100.0)
            });
            let value = month
                .availability
                .map_or_else(|| "–".to_owned(), |a| format!("{a:.3}%"));
            let _ = write!(
                out,
                "<div class=\"{}\"><div class=\"bar\"><span style=\"height:{height:.1}%\"></span></div>\
                 {}<br>{}</div>",
                if month.met { "met" } else { "missed" },
                escape(&month.month),
                escape(&value)
            );
        }
        out.push_str("</div>");
    }

    /// Without SLAs: every probe on one page.
    fn probes(&self, out: &mut String) {
        let _ = write!(
            out,
            "<section class=\"page\"><header><h1>Availability report</h1>\
             <div class=\"sub\">{}</div>{}</header><table><tr><th>Service</th>\
             <th class=\"num\">Target</th><th class=\"num\">Achieved</th>\
             <th class=\"num\">Downtime</th><th class=\"num\">Incidents</th></tr>",
            escape(&self.document.month),
            self.period_line()
        );
        for p in &self.document.probes {
            let _ = write!(
                out,
                "<tr><td>{}</td><td class=\"num\">{}%</td><td class=\"num\">{}</td>\
                 <td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
                escape(&p.name),
                p.target,
                escape(&pct(p.availability)),
                escape(&duration(p.downtime_seconds)),
                p.incidents
            );
        }
        out.push_str("</table>");
        let notes: Vec<String> = import_lines(self.document, None, self.time)
            .into_iter()
            .map(|line| format!("Imported results: {line}"))
            .chain(
                clock_step_lines(self.document, self.time)
                    .into_iter()
                    .map(|line| format!("Clock step: {line}")),
            )
            .collect();
        list(out, "Adjustments", &notes);
        out.push_str("</section>");
    }

    /// The period, whether the figures are final, and the rule a reader most needs.
    fn period_line(&self) -> String {
        format!(
            "<div class=\"note\">Period {}. {}. Availability is time-weighted; time without \
             measurements counts as unknown, never as up.</div>",
            escape(self.period),
            escape(self.status)
        )
    }
}

/// A titled list, "None." when empty, cut at [`MAX_LINES`] entries.
fn list(out: &mut String, title: &str, lines: &[String]) {
    let _ = write!(out, "<h2>{}</h2>", escape(title));
    if lines.is_empty() {
        out.push_str("<p>None.</p>");
        return;
    }
    out.push_str("<ul>");
    for line in lines.iter().take(MAX_LINES) {
        let _ = write!(out, "<li>{}</li>", escape(line));
    }
    if lines.len() > MAX_LINES {
        let _ = write!(
            out,
            "<li class=\"sub\">and {} more, listed in the full report</li>",
            lines.len() - MAX_LINES
        );
    }
    out.push_str("</ul>");
}
