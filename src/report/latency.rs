//! Judging an SLA's latency objective (SPEC §10) on the month's successful checks, exactly:
//! the percentile is the nearest-rank value of the raw latencies (not a histogram's
//! estimate), and the share compares integer counts, so a month sitting exactly on the bound
//! is decided the same way every time.

use std::time::Duration;

use crate::{
    config::{LatencyObjective, LatencyRule},
    model::Percent,
};

/// How a month did against a latency objective.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LatencyVerdict {
    /// Successful checks judged.
    pub checks: u64,
    /// Of those, checks under the bound.
    pub under: u64,
    /// The percentile form: the p-th percentile (nearest rank); `None` without checks.
    pub percentile: Option<Duration>,
    /// Met. A month with no successful check has nothing to show the objective was kept and
    /// is not met; it owes no latency credit either (see [`LatencyVerdict::missed`]).
    pub met: bool,
}

impl LatencyVerdict {
    /// Missed on evidence: checks were judged and the objective was not kept. This, not
    /// `!met`, is what adds the latency credit.
    pub fn missed(&self) -> bool {
        self.checks > 0 && !self.met
    }

    /// The share of checks under the bound as an exact fraction `(under, checks)`.
    pub fn share(&self) -> Option<(u64, u64)> {
        (self.checks > 0).then_some((self.under, self.checks))
    }
}

/// Judges `objective` on the latencies of a month's successful checks (any order; sorted
/// here when the percentile form needs it).
pub fn judge(objective: &LatencyObjective, latencies: &mut [Duration]) -> LatencyVerdict {
    let checks = latencies.len() as u64;
    let under = latencies.iter().filter(|&&l| l < objective.below).count() as u64;
    let percentile = match objective.rule {
        LatencyRule::Percentile(p) => nearest_rank(latencies, p),
        LatencyRule::Share(_) => None,
    };
    // Both forms reduce to one comparison: at least p % of the checks under the bound. For
    // the percentile form that is the nearest-rank definition read from the other side (the
    // rank-th smallest latency is under the bound exactly when rank checks are).
    let needed = ppb_of(objective.rule.percent(), checks);
    let met = checks > 0 && under >= needed;
    debug_assert!(
        !matches!(objective.rule, LatencyRule::Percentile(_))
            || checks == 0
            || met == percentile.is_some_and(|v| v < objective.below)
    );
    LatencyVerdict {
        checks,
        under,
        percentile,
        met,
    }
}

/// `⌈p × n⌉` with `p` exact: the nearest rank of the p-th percentile of `n` values, and the
/// count of checks that must be under the bound.
fn ppb_of(p: Percent, n: u64) -> u64 {
    let whole = u128::from(Percent::HUNDRED.parts_per_billion());
    let product = u128::from(p.parts_per_billion()) * u128::from(n);
    u64::try_from(product.div_ceil(whole)).unwrap_or(u64::MAX)
}

/// The p-th percentile of `values` by nearest rank: the smallest value with at least p % of
/// the values at or below it.
fn nearest_rank(values: &mut [Duration], p: Percent) -> Option<Duration> {
    let n = values.len() as u64;
    let rank = ppb_of(p, n).max(1);
    let index = usize::try_from(rank - 1).ok()?;
    if index >= values.len() {
        return None;
    }
    let (_, value, _) = values.select_nth_unstable(index);
    Some(*value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    fn objective(rule: LatencyRule, below_ms: u64) -> LatencyObjective {
        LatencyObjective {
            rule,
            below: ms(below_ms),
        }
    }

    fn pct(text: &str) -> Percent {
        text.parse().unwrap()
    }

    /// 100 checks: 95 at 100 ms and 5 at `tail` ms.
    fn month(tail: u64) -> Vec<Duration> {
        let mut v = vec![ms(100); 95];
        v.extend(std::iter::repeat_n(ms(tail), 5));
        v
    }

    #[test]
    fn the_percentile_is_the_nearest_rank_and_a_check_at_the_bound_is_not_under_it() {
        let p95 = objective(LatencyRule::Percentile(pct("95")), 300);
        // Rank ⌈0.95 × 100⌉ = 95: the 95th smallest is 100 ms, whatever the tail.
        let verdict = judge(&p95, &mut month(5_000));
        assert_eq!(verdict.percentile, Some(ms(100)));
        assert!(verdict.met);
        // 96 % at 100 ms needed for p96: only 95 are.
        let p96 = objective(LatencyRule::Percentile(pct("96")), 300);
        let verdict = judge(&p96, &mut month(5_000));
        assert_eq!(verdict.percentile, Some(ms(5_000)));
        assert!(!verdict.met && verdict.missed());
        // Exactly at the bound: not below it.
        let at_bound = objective(LatencyRule::Percentile(pct("95")), 100);
        let verdict = judge(&at_bound, &mut month(5_000));
        assert_eq!(verdict.percentile, Some(ms(100)));
        assert!(!verdict.met);
        // One microsecond more of room: met.
        let above = LatencyObjective {
            rule: LatencyRule::Percentile(pct("95")),
            below: ms(100) + Duration::from_micros(1),
        };
        assert!(judge(&above, &mut month(5_000)).met);
    }

    #[test]
    fn the_share_is_decided_on_counts_at_the_exact_boundary() {
        let share = objective(LatencyRule::Share(pct("95%")), 101);
        // Exactly 95 of 100 under the bound: at least 95 % — met.
        let verdict = judge(&share, &mut month(101));
        assert_eq!((verdict.under, verdict.checks), (95, 100));
        assert!(verdict.met);
        // 95.0000001 % needs 96 of 100.
        let finer = objective(LatencyRule::Share(pct("95.0000001%")), 101);
        assert!(!judge(&finer, &mut month(101)).met);
        // The tail at exactly the bound is not under it, the body just below is.
        let share = objective(LatencyRule::Share(pct("96%")), 101);
        assert!(!judge(&share, &mut month(101)).met);
    }

    #[test]
    fn both_forms_agree_and_no_checks_is_neither_met_nor_missed() {
        for tail in [50, 100, 299, 300, 301, 10_000] {
            for p in ["50", "94", "95", "95.5", "99", "100"] {
                for bound in [99, 100, 101, 300, 301] {
                    let a = judge(
                        &objective(LatencyRule::Percentile(pct(p)), bound),
                        &mut month(tail),
                    );
                    let b = judge(
                        &objective(LatencyRule::Share(pct(p)), bound),
                        &mut month(tail),
                    );
                    assert_eq!(a.met, b.met, "p{p} below {bound} with a tail of {tail} ms");
                }
            }
        }
        let none = judge(&objective(LatencyRule::Share(pct("99%")), 300), &mut []);
        assert!(!none.met && !none.missed());
        assert_eq!(none.share(), None);
    }
}
