//! CSV for spreadsheets: one row per probe and per SLA.

use crate::query::monthly::MonthDocument;

/// Columns of every row.
const COLUMNS: usize = 30;

/// RFC 4180 rows: a field holding a comma, a quote, CR or LF is quoted, its quotes doubled
/// (an SLA named `acme, premium` stays one field).
pub fn csv(document: &MonthDocument) -> String {
    fn field(text: &str) -> String {
        if text.contains([',', '"', '\r', '\n']) {
            format!("\"{}\"", text.replace('"', "\"\""))
        } else {
            text.to_owned()
        }
    }
    fn row(out: &mut String, fields: &[String]) {
        let fields: Vec<String> = fields.iter().map(|f| field(f)).collect();
        out.push_str(&fields.join(","));
        out.push('\n');
    }
    let mut out = String::from(
        "kind,name,month,target,availability,coverage,met,downtime_seconds,eligible_seconds,budget_seconds,budget_remaining_seconds,up_seconds,degraded_seconds,down_seconds,maintenance_seconds,unknown_seconds,excluded_seconds,checks,failed_checks,incidents,credit_percent,credit_amount,currency,latency_kind,latency_percent,latency_bound_ms,latency_achieved,latency_met,downtime_unit,min_downtime_minutes\n",
    );
    let opt = |v: Option<f64>| v.map(|v| v.to_string()).unwrap_or_default();
    for p in &document.probes {
        let mut fields = vec![
            "probe".to_owned(),
            p.name.clone(),
            document.month.clone(),
            p.target.to_string(),
            opt(p.availability),
            opt(p.coverage),
            p.met.to_string(),
            p.downtime_seconds.to_string(),
            p.eligible_seconds.to_string(),
            p.budget_seconds.to_string(),
            p.budget_remaining_seconds.to_string(),
            p.up_seconds.to_string(),
            p.degraded_seconds.to_string(),
            p.down_seconds.to_string(),
            p.maintenance_seconds.to_string(),
            p.unknown_seconds.to_string(),
            p.excluded_seconds.to_string(),
            p.checks.to_string(),
            p.failed_checks.to_string(),
            p.incidents.to_string(),
        ];
        fields.resize(COLUMNS, String::new());
        row(&mut out, &fields);
    }
    for s in &document.slas {
        let mut fields = vec![
            "sla".to_owned(),
            s.name.clone(),
            document.month.clone(),
            s.target.to_string(),
            opt(s.availability),
            opt(s.coverage),
            s.met.to_string(),
            s.downtime_seconds.to_string(),
            s.eligible_seconds.to_string(),
            s.budget_seconds.to_string(),
            s.budget_remaining_seconds.to_string(),
        ];
        fields.resize(20, String::new());
        fields.extend([
            s.credit_percent.to_string(),
            s.credit_amount.to_string(),
            s.currency.clone().unwrap_or_default(),
        ]);
        match &s.latency_objective {
            Some(o) => fields.extend([
                o.kind.clone(),
                o.percent.to_string(),
                o.bound_ms.to_string(),
                opt(o.achieved),
                o.met.to_string(),
            ]),
            None => fields.resize(28, String::new()),
        }
        fields.extend([
            s.downtime_unit
                .clone()
                .unwrap_or_else(|| "second".to_owned()),
            s.min_downtime_minutes
                .map(|m| m.to_string())
                .unwrap_or_default(),
        ]);
        fields.resize(COLUMNS, String::new());
        row(&mut out, &fields);
    }
    out
}
