//! The printable report (`report --format html`): one page per SLA a vendor prints to PDF from
//! a browser and sends a client. Plain HTML with its CSS inline — no script, font, image or
//! other external asset, so the file renders the same offline, years later. Each SLA's
//! section ends with a page break; the incident list is cut at [`MAX_INCIDENTS`] rows so a
//! section stays one A4 page (the Markdown and JSON forms list every incident).

use std::fmt::Write as _;

use jiff::Timestamp;

use super::{
    MonthHeading, credit, downtime_rule, duration, escape, incident_duration, latency_objective,
    markdown::{clock_step_lines, import_lines},
    pct, previous_text, public_cause,
};
use crate::query::monthly::{Incident, MonthDocument, SlaMonth};

/// Incidents listed per page; more are counted, not listed.
pub const MAX_INCIDENTS: usize = 12;

const STYLE: &str = r#"
@page{size:A4;margin:16mm 15mm}
*{box-sizing:border-box}
body{margin:0;color:#1b1b1b;background:#fff;font:10.5pt/1.4 "Helvetica Neue",Arial,"Liberation Sans",sans-serif}
.page{max-width:180mm;margin:0 auto;padding:8mm 0;break-after:page;page-break-after:always}
.page:last-child{break-after:auto;page-break-after:auto}
header{border-bottom:2px solid #1b1b1b;padding-bottom:3mm;margin-bottom:5mm}
h1{font-size:17pt;margin:0 0 1mm}h2{font-size:11.5pt;margin:5mm 0 2mm}
.sub{color:#555}
.verdict{font-size:13pt;font-weight:600;padding:3mm 4mm;border-radius:2mm;margin:0 0 4mm}
.verdict.met{background:#e7f4ea;color:#1e5e2c}.verdict.missed{background:#fbe9e9;color:#8c1c1c}
table{width:100%;border-collapse:collapse;break-inside:avoid}
th,td{text-align:left;padding:1.2mm 2mm;border-bottom:1px solid #ddd;vertical-align:top}
th{font-weight:600;color:#444}
table.figures th{width:38%}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
.trend td{padding:.8mm 2mm}
.trend .bar{display:inline-block;height:2.6mm;background:#2e7d32;vertical-align:middle}
.trend .bar.missed{background:#c62828}
ul{margin:0;padding-left:5mm}
footer{margin-top:6mm;color:#666;font-size:8.5pt}
@media screen{body{background:#eee}.page{background:#fff;margin:8mm auto;padding:12mm 15mm;box-shadow:0 1px 4px #0003}}
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
             <div class=\"sub\">{} · {} · agreement <b>{}</b></div></header>",
            escape(&sla.name),
            escape(&client),
            escape(&self.document.month),
            escape(&sla.name)
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
        rows.push(("Services covered".into(), sla.probes.join(", ")));
        out.push_str("<table class=\"figures\">");
        for (label, value) in &rows {
            let _ = write!(
                out,
                "<tr><th>{}</th><td>{}</td></tr>",
                escape(label),
                escape(value)
            );
        }
        out.push_str("</table>");

        let members: Vec<_> = self
            .document
            .probes
            .iter()
            .filter(|p| sla.probes.contains(&p.name))
            .collect();
        if members.len() > 1 {
            out.push_str(
                "<h2>Services</h2><table><tr><th>Service</th><th class=\"num\">Availability</th>\
                 <th class=\"num\">Downtime</th><th class=\"num\">Incidents</th></tr>",
            );
            for p in members {
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
        let windows: Vec<String> = sla
            .maintenance
            .iter()
            .map(|w| format!("{} to {}: {}", time(w.start), time(w.end), w.reason))
            .collect();
        list(out, "Planned maintenance", &windows, true);
        let exclusions: Vec<String> = sla
            .exclusions
            .iter()
            .map(|e| format!("{} to {}: {}", time(e.from), time(e.to), e.reason))
            .collect();
        list(out, "Exclusions", &exclusions, false);
        let imports = import_lines(self.document, Some(&sla.probes), time);
        list(out, "Imported results", &imports, false);
        let steps = clock_step_lines(self.document, time);
        list(out, "Clock steps", &steps, false);
        self.footer(out);
        out.push_str("</section>");
    }

    /// The last months' availability as a table with a bar per month (scaled from the
    /// lowest month shown to 100 %, so small differences near the target stay visible).
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
            "<h2>Last {} months</h2><table class=\"trend\"><tr><th>Month</th>\
             <th class=\"num\">Availability</th><th>Against {}%</th></tr>",
            sla.trend.len(),
            sla.target
        );
        for month in &sla.trend {
            let width = month.availability.map_or(0.0, |a| {
                ((a - floor) / (100.0 - floor) * 100.0).clamp(0.0, 100.0)
            });
            let _ = write!(
                out,
                "<tr><td>{}</td><td class=\"num\">{}</td><td><span class=\"bar{}\" \
                 style=\"width:{width:.1}%\"></span></td></tr>",
                escape(&month.month),
                escape(&pct(month.availability)),
                if month.met { "" } else { " missed" }
            );
        }
        out.push_str("</table>");
    }

    /// Without SLAs: every probe on one page.
    fn probes(&self, out: &mut String) {
        let _ = write!(
            out,
            "<section class=\"page\"><header><h1>Availability report</h1>\
             <div class=\"sub\">{}</div></header><table><tr><th>Service</th>\
             <th class=\"num\">Target</th><th class=\"num\">Achieved</th>\
             <th class=\"num\">Downtime</th><th class=\"num\">Incidents</th></tr>",
            escape(&self.document.month)
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
        let imports = import_lines(self.document, None, self.time);
        list(out, "Imported results", &imports, false);
        let steps = clock_step_lines(self.document, self.time);
        list(out, "Clock steps", &steps, false);
        self.footer(out);
        out.push_str("</section>");
    }

    fn footer(&self, out: &mut String) {
        let _ = write!(
            out,
            "<footer>Period {}. {}. Availability is time-weighted; time without measurements \
             counts as unknown, never as up.</footer>",
            escape(self.period),
            escape(self.status)
        );
    }
}

/// A titled list; an empty one is shown as "None." when `always`, else left out.
fn list(out: &mut String, title: &str, lines: &[String], always: bool) {
    if lines.is_empty() {
        if always {
            let _ = write!(out, "<h2>{}</h2><p>None.</p>", escape(title));
        }
        return;
    }
    let _ = write!(out, "<h2>{}</h2><ul>", escape(title));
    for line in lines {
        let _ = write!(out, "<li>{}</li>", escape(line));
    }
    out.push_str("</ul>");
}
