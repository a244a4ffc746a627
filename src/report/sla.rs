//! The terms a month is judged by — target, credit tiers, and how maintenance, unknown and
//! degraded time count — and the exact credit decision (SPEC §3). May use `model` and
//! `config`.

use crate::{
    config::{CreditTier, DowntimeUnit, ProbeSpec, SlaSpec, TimePolicy},
    model::Percent,
};

use super::exact::Fraction;
use crate::model::{InvalidWeight, Weight};

/// How kinds of time count towards availability.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Maintenance time: left out of the denominator (default), counted as up, or as down.
    pub maintenance: TimePolicy,
    /// Unknown time: left out of the denominator (default), counted as up, or as down.
    pub unknown: TimePolicy,
    /// The share of degraded time counted as down; zero (degraded is up) by default.
    pub degraded_weight: Weight,
}

impl Default for Policy {
    /// SPEC §3's defaults: maintenance and unknown excluded, degraded counted as up.
    fn default() -> Policy {
        Policy {
            maintenance: TimePolicy::Exclude,
            unknown: TimePolicy::Exclude,
            degraded_weight: Weight::ZERO,
        }
    }
}

impl Policy {
    /// An SLA's policy; its float `degraded_weight` is read as its shortest decimal text.
    pub fn for_sla(sla: &SlaSpec) -> Result<Policy, InvalidWeight> {
        Ok(Policy {
            maintenance: sla.maintenance,
            unknown: sla.unknown,
            degraded_weight: Weight::try_from(sla.degraded_weight)?,
        })
    }
}

/// What a month is judged by: a target, credit tiers (none for a bare probe) and a policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Terms {
    /// The availability target; `met` means availability ≥ target.
    pub target: Percent,
    /// Credit bands; the most severe matching band applies.
    pub credits: Vec<CreditTier>,
    /// How maintenance, unknown and degraded time count.
    pub policy: Policy,
    /// Whether downtime is every down second or whole down minutes (SPEC §10).
    pub downtime_unit: DowntimeUnit,
}

impl Terms {
    /// A probe's own terms: its target, the default policy and no credits.
    pub fn for_probe(probe: &ProbeSpec) -> Terms {
        Terms {
            target: probe.target,
            credits: Vec::new(),
            policy: Policy::default(),
            downtime_unit: DowntimeUnit::Second,
        }
    }

    /// An SLA's terms.
    pub fn for_sla(sla: &SlaSpec) -> Result<Terms, InvalidWeight> {
        Ok(Terms {
            target: sla.target,
            credits: sla.credits.clone(),
            policy: Policy::for_sla(sla)?,
            downtime_unit: sla.downtime_unit,
        })
    }
}

/// Whether `tier` applies to `availability`: below its upper bound (`below`), or at or below
/// it (`at_or_below`), and for a closed band above its lower bound (`above`) or at or above it
/// (`at_or_above`). Exact: 99.9 % is not below 99.9 %, 99.0 % is not above 99.0 %.
pub fn tier_applies(tier: &CreditTier, availability: Fraction) -> bool {
    let bound = Fraction::from_percent(tier.bound);
    let under = if tier.inclusive {
        availability <= bound
    } else {
        availability < bound
    };
    let over = tier.lower.is_none_or(|lower| {
        let bound = Fraction::from_percent(lower.bound);
        if lower.inclusive {
            availability >= bound
        } else {
            availability > bound
        }
    });
    under && over
}

/// The tier that decides the credit owed for `availability`, if any applies.
///
/// Tiers written as upper bounds alone (`below = "99.9%"`, `below = "99.0%"`, …) are nested,
/// so a low availability matches several; the most severe — the largest credit — wins (on a
/// tie, the first listed). Closed bands (with `above` / `at_or_above`) match only inside
/// themselves, and an availability no band holds (a gap in the table) owes nothing. No
/// availability (nothing eligible was measured) owes nothing either.
pub fn credit_tier(availability: Option<Fraction>, tiers: &[CreditTier]) -> Option<&CreditTier> {
    let availability = availability?;
    tiers
        .iter()
        .filter(|tier| tier_applies(tier, availability))
        .fold(None, |best: Option<&CreditTier>, tier| match best {
            Some(best) if best.credit >= tier.credit => Some(best),
            _ => Some(tier),
        })
}
