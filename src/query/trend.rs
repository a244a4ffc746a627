//! Where a month stands against the months before it (SPEC §10, trend): each probe's and
//! SLA's `previous` month, and with `report --months N` the last N months' availability.
//!
//! Added to a report after it is computed, from the months' own documents (closed months are
//! stored, so this costs a read each), and never to a signed report: a bundle proves one
//! month, and `verify` could not recompute the others from it.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::{
    QueryError,
    monthly::{MonthDocument, Selection, month_document},
};
use crate::{config::Config, ledger::Ledger, report::Month};

/// The longest trend a report carries: a year, as contracts look back.
pub const MAX_MONTHS: u32 = 12;

/// The month before, as a reader compares this month with it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Previous {
    /// `YYYY-MM`.
    pub month: String,
    /// Availability in percent; `null` when nothing was eligible.
    pub availability: Option<f64>,
    /// Seconds counted against the target.
    pub downtime_seconds: f64,
    /// Confirmed outages (for an SLA: its members' together).
    pub incidents: usize,
}

/// One month of a trend.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrendMonth {
    /// `YYYY-MM`.
    pub month: String,
    /// Availability in percent; `null` when nothing was eligible (e.g. before monitoring).
    pub availability: Option<f64>,
    /// The target was met.
    pub met: bool,
}

/// Adds `previous` to every probe and SLA of `document` (the report of `month`), and with
/// `months` > 1 the trend of the last `months` months, oldest first, ending with `month`.
pub fn add_trend(
    config: &Config,
    ledger: &Ledger,
    document: &mut MonthDocument,
    month: Month,
    now: Timestamp,
    selection: &Selection,
    months: u32,
) -> Result<(), QueryError> {
    let months = months.clamp(1, MAX_MONTHS);
    let mut earlier: Vec<MonthDocument> = Vec::new();
    let mut cursor = month;
    for _ in 0..months.max(2) - 1 {
        let Some(before) = cursor.previous() else {
            break;
        };
        earlier.push(month_document(config, ledger, before, now, selection)?);
        cursor = before;
    }
    if let Some(last) = earlier.first() {
        for probe in &mut document.probes {
            probe.previous = last
                .probes
                .iter()
                .find(|p| p.name == probe.name)
                .map(|p| Previous {
                    month: last.month.clone(),
                    availability: p.availability,
                    downtime_seconds: p.downtime_seconds,
                    incidents: p.incidents,
                });
        }
        for sla in &mut document.slas {
            sla.previous = last.slas.iter().find(|s| s.name == sla.name).map(|s| {
                let incidents = last
                    .probes
                    .iter()
                    .filter(|p| s.probes.contains(&p.name))
                    .map(|p| p.incidents)
                    .sum();
                Previous {
                    month: last.month.clone(),
                    availability: s.availability,
                    downtime_seconds: s.downtime_seconds,
                    incidents,
                }
            });
        }
    }
    if months < 2 {
        return Ok(());
    }
    let oldest_first: Vec<&MonthDocument> = earlier.iter().rev().collect();
    let this_month = document.month.clone();
    for probe in &mut document.probes {
        probe.trend = months_of(
            &oldest_first,
            &this_month,
            (probe.availability, probe.met),
            |doc| {
                doc.probes
                    .iter()
                    .find(|p| p.name == probe.name)
                    .map(|p| (p.availability, p.met))
            },
        );
    }
    for sla in &mut document.slas {
        sla.trend = months_of(
            &oldest_first,
            &this_month,
            (sla.availability, sla.met),
            |doc| {
                doc.slas
                    .iter()
                    .find(|s| s.name == sla.name)
                    .map(|s| (s.availability, s.met))
            },
        );
    }
    Ok(())
}

/// One entry's trend: its figures in each earlier document (`find`), then this month's.
fn months_of(
    oldest_first: &[&MonthDocument],
    this_month: &str,
    (availability, met): (Option<f64>, bool),
    find: impl Fn(&MonthDocument) -> Option<(Option<f64>, bool)>,
) -> Vec<TrendMonth> {
    oldest_first
        .iter()
        .map(|doc| {
            let (availability, met) = find(doc).unwrap_or((None, false));
            TrendMonth {
                month: doc.month.clone(),
                availability,
                met,
            }
        })
        .chain(std::iter::once(TrendMonth {
            month: this_month.to_owned(),
            availability,
            met,
        }))
        .collect()
}
