//! The terms a month is judged by — target, credit tiers, and how maintenance, unknown and
//! degraded time count — and the exact credit decision (SPEC §3). May use `model` and
//! `config`.

use crate::{
    config::{CreditTier, ProbeSpec, SlaSpec, TimePolicy},
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
}

impl Terms {
    /// A probe's own terms: its target, the default policy and no credits.
    pub fn for_probe(probe: &ProbeSpec) -> Terms {
        Terms {
            target: probe.target,
            credits: Vec::new(),
            policy: Policy::default(),
        }
    }

    /// An SLA's terms.
    pub fn for_sla(sla: &SlaSpec) -> Result<Terms, InvalidWeight> {
        Ok(Terms {
            target: sla.target,
            credits: sla.credits.clone(),
            policy: Policy::for_sla(sla)?,
        })
    }
}

/// Whether `tier` applies to `availability`: below its bound (`below`), or at or below it
/// (`at_or_below`). Exact: 99.9 % is not below 99.9 %.
pub fn tier_applies(tier: &CreditTier, availability: Fraction) -> bool {
    let bound = Fraction::from_percent(tier.bound);
    if tier.inclusive {
        availability <= bound
    } else {
        availability < bound
    }
}

/// The tier that decides the credit owed for `availability`, if any applies.
///
/// Tiers are bands written as upper bounds (`below = "99.9%"`, `below = "99.0%"`, …), so a
/// low availability matches several; the most severe — the largest credit — wins (on a tie,
/// the first listed). No availability (nothing eligible was measured) owes nothing.
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
