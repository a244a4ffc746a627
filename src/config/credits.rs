//! Checks of a credit table as a whole (SPEC §10): the availabilities no tier covers, and
//! those more than one closed band claims. Both are allowed — a contract may mean them — but
//! are usually drafting slips, so `validate` warns and names the range.
//! May use `model` and the rest of `config`.

use super::spec::CreditTier;
use crate::model::Percent;

/// A set of availabilities as an inclusive range of *half-points*: `2v` is exactly `v`
/// billionths, `2v + 1` every availability strictly between `v` and `v + 1` billionths.
/// Bounds are whole billionths, so this is exact, and open and closed ends become plain
/// integers: `above v` starts at `2v + 1`, `below v` ends at `2v − 1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Span {
    first: u64,
    last: u64,
}

impl Span {
    /// The availabilities `tier` holds; `None` when it holds none (an empty band).
    fn of(tier: &CreditTier) -> Option<Span> {
        let first = match tier.lower {
            None => 0,
            Some(lower) if lower.inclusive => 2 * lower.bound.parts_per_billion(),
            Some(lower) => 2 * lower.bound.parts_per_billion() + 1,
        };
        let upper = 2 * tier.bound.parts_per_billion();
        let last = if tier.inclusive {
            upper
        } else {
            upper.checked_sub(1)?
        };
        (first <= last).then_some(Span { first, last })
    }

    fn intersect(self, other: Span) -> Option<Span> {
        let first = self.first.max(other.first);
        let last = self.last.min(other.last);
        (first <= last).then_some(Span { first, last })
    }

    /// The range in the config's own words: `exactly 99%`, `above 99% and below 99.5%`,
    /// `below 95%` (from 0 %).
    fn describe(self) -> String {
        let percent = |half: u64| {
            Percent::from_parts_per_billion(half / 2)
                .map_or_else(|| "?".to_owned(), |p| p.to_string())
        };
        if self.first == self.last && self.first.is_multiple_of(2) {
            return format!("exactly {}", percent(self.first));
        }
        let upper = if self.last.is_multiple_of(2) {
            format!("at or below {}", percent(self.last))
        } else {
            format!("below {}", percent(self.last + 1))
        };
        match self.first {
            0 => upper,
            first if first.is_multiple_of(2) => {
                format!("at or above {} and {upper}", percent(first))
            }
            first => format!("above {} and {upper}", percent(first - 1)),
        }
    }
}

/// Whether a tier holds no availability at all (`above 99.9%` with `below 99%`).
pub(crate) fn is_empty(tier: &CreditTier) -> bool {
    Span::of(tier).is_none()
}

/// What is odd about a credit table, one sentence each: every range from 0 % up to the
/// highest bound that no tier covers, and every range two tiers share where at least one of
/// them is a closed band. Tiers written with an upper bound alone are nested by design (the
/// most severe matching tier wins), so their overlaps are not reported.
pub(crate) fn table_warnings(tiers: &[CreditTier]) -> Vec<String> {
    let spans: Vec<(usize, Span, bool)> = tiers
        .iter()
        .enumerate()
        .filter_map(|(i, tier)| Some((i, Span::of(tier)?, tier.lower.is_some())))
        .collect();
    let mut warnings = Vec::new();

    let mut sorted: Vec<Span> = spans.iter().map(|(_, span, _)| *span).collect();
    sorted.sort_by_key(|span| span.first);
    let mut covered_to: Option<u64> = None; // last half-point covered so far
    for span in sorted {
        let next = covered_to.map_or(0, |last| last + 1);
        if span.first > next {
            let gap = Span {
                first: next,
                last: span.first - 1,
            };
            warnings.push(format!(
                "credits leave {} uncovered (no tier applies there, so no credit is owed)",
                gap.describe()
            ));
        }
        covered_to = Some(covered_to.map_or(span.last, |last| last.max(span.last)));
    }

    for (a, &(i, first, first_closed)) in spans.iter().enumerate() {
        for &(j, second, second_closed) in &spans[a + 1..] {
            if !(first_closed || second_closed) {
                continue;
            }
            if let Some(shared) = first.intersect(second) {
                warnings.push(format!(
                    "credits overlap {}: tiers {} and {} both apply there (the larger credit wins)",
                    shared.describe(),
                    i + 1,
                    j + 1
                ));
            }
        }
    }
    warnings
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::LowerBound;

    fn pct(text: &str) -> Percent {
        text.parse().expect("a percentage")
    }

    /// `lower` as `(">=" | ">", value)`, `upper` as `("<=" | "<", value)`.
    fn tier(lower: Option<(&str, &str)>, upper: (&str, &str), credit: &str) -> CreditTier {
        CreditTier {
            bound: pct(upper.1),
            inclusive: upper.0 == "<=",
            lower: lower.map(|(op, value)| LowerBound {
                bound: pct(value),
                inclusive: op == ">=",
            }),
            credit: pct(credit),
        }
    }

    #[test]
    fn the_github_wording_leaves_exactly_99_uncovered() {
        let tiers = [
            tier(Some((">", "99.0")), ("<=", "99.9"), "10"),
            tier(None, ("<", "99.0"), "25"),
        ];
        assert_eq!(
            table_warnings(&tiers),
            ["credits leave exactly 99% uncovered (no tier applies there, so no credit is owed)"]
        );
    }

    #[test]
    fn tiling_bands_and_nested_upper_bounds_are_quiet() {
        let aws = [
            tier(Some((">=", "99.0")), ("<", "99.99"), "10"),
            tier(Some((">=", "95.0")), ("<", "99.0"), "30"),
            tier(None, ("<", "95.0"), "100"),
        ];
        assert!(
            table_warnings(&aws).is_empty(),
            "{:?}",
            table_warnings(&aws)
        );
        let nested = [
            tier(None, ("<", "99.9"), "10"),
            tier(None, ("<=", "99.0"), "25"),
        ];
        assert!(table_warnings(&nested).is_empty());
        assert!(table_warnings(&[]).is_empty());
    }

    #[test]
    fn gaps_between_and_below_bands_are_named() {
        let tiers = [
            tier(Some((">=", "99.0")), ("<", "99.9"), "10"),
            tier(Some((">", "95")), ("<", "98.5"), "25"),
        ];
        assert_eq!(
            table_warnings(&tiers),
            [
                "credits leave at or below 95% uncovered (no tier applies there, so no credit is owed)",
                "credits leave at or above 98.5% and below 99% uncovered (no tier applies there, so no credit is owed)",
            ]
        );
    }

    #[test]
    fn overlaps_involving_a_closed_band_are_named() {
        let tiers = [
            tier(Some((">=", "99.0")), ("<=", "99.9"), "10"),
            tier(Some((">=", "95")), ("<=", "99.0"), "25"),
            tier(None, ("<", "99.5"), "50"),
        ];
        assert_eq!(
            table_warnings(&tiers),
            [
                "credits overlap exactly 99%: tiers 1 and 2 both apply there (the larger credit wins)",
                "credits overlap at or above 99% and below 99.5%: tiers 1 and 3 both apply there (the larger credit wins)",
                "credits overlap at or above 95% and at or below 99%: tiers 2 and 3 both apply there (the larger credit wins)",
            ]
        );
    }

    #[test]
    fn an_inverted_band_is_empty() {
        assert!(is_empty(&tier(Some((">", "99.9")), ("<=", "99.0"), "10")));
        assert!(is_empty(&tier(Some((">", "99")), ("<=", "99"), "10")));
        assert!(!is_empty(&tier(Some((">=", "99")), ("<=", "99"), "10")));
        assert!(is_empty(&tier(None, ("<", "0"), "10")));
    }
}
