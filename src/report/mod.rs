//! Pure availability math for monthly SLA reports (SPEC §3): calendar months in a time zone,
//! timelines read from check results or intervals, maintenance and exclusions, and exact
//! month figures — availability, coverage, error budget, target met, credit tier.
//!
//! No I/O and no clock: callers (the CLI, the HTTP API, alerts) fetch results from the ledger,
//! pass an explicit `now`, and render the figures. Every decision is made on exact integers
//! and fractions, never floats. May use `model`, `config` and the plain [`ResultRecord`] and
//! [`ExclusionRecord`] data of `ledger`.
//!
//! A report is computed in four steps:
//!
//! 1. [`Month::bounds`] — the month as `[start, end)` in UTC.
//! 2. [`Timeline::from_samples`] (ledger results) or [`Timeline::from_intervals`].
//! 3. [`maintenance_windows`] for the probe, [`honoured_windows`] under the SLA's notice,
//!    plus any [`Exclusion`]s.
//! 4. [`MonthReport::compute`] with the [`Terms`] (target, credit tiers, [`Policy`]).
//!
//! [`ResultRecord`]: crate::ledger::ResultRecord
//! [`ExclusionRecord`]: crate::ledger::ExclusionRecord

mod exact;
mod figures;
mod interval;
mod latency;
mod month;
mod quorum;
mod sla;
mod timeline;
mod windows;

pub use crate::model::{InvalidWeight, Weight};
pub use exact::{Fraction, Seconds};
pub use figures::{MonthInput, MonthReport};
pub use interval::Interval;
pub use latency::{LatencyVerdict, judge as judge_latency};
pub use month::Month;
pub use quorum::{combine_locations, quorum_state};
pub use sla::{Policy, Terms, credit_tier, tier_applies};
pub use timeline::{Sample, SampleRules, Segment, Timeline, precedence};
pub use windows::{Exclusion, MaintenanceWindow, honoured_windows, maintenance_windows};

/// Why a report could not be computed from what was asked.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The month text is not `YYYY-MM`.
    #[error("invalid month {text:?}: expected YYYY-MM, like \"2026-11\"")]
    InvalidMonth {
        /// The rejected input.
        text: String,
    },
    /// The month cannot be placed on the time line in the time zone (far out of range).
    #[error("month {month} has no bounds in this time zone: {source}")]
    MonthBounds {
        /// The month.
        month: Month,
        /// What jiff reported.
        source: jiff::Error,
    },
}

#[cfg(test)]
mod tests;
