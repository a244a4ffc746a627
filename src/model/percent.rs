//! Exact percentages for targets, credit tiers and thresholds.
//!
//! SLA decisions move money, so "exactly 99.9 %" must never round to "just below". A `Percent`
//! keeps the value as an integer count of billionths of the whole, parsed from the decimal text
//! the user wrote, so comparisons stay in integer arithmetic.

use std::{fmt, str::FromStr};

/// A percentage in `[0, 100]`, held exactly as parts per 10⁹ of the whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Percent {
    parts_per_billion: u64,
}

/// Why a text is not an acceptable percentage.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid percentage {text:?}: expected a decimal number from 0 to 100 with at most 7 decimals, like \"99.9%\""
)]
pub struct InvalidPercent {
    /// The rejected input.
    pub text: String,
}

/// Billionths of the whole in one percent.
const PPB_PER_PERCENT: u64 = 10_000_000;
/// Decimal places of a percentage that fit in billionths of the whole.
const MAX_DECIMALS: usize = 7;

impl Percent {
    /// The whole: 100 %.
    pub const HUNDRED: Percent = Percent {
        parts_per_billion: 1_000_000_000,
    };

    /// The value as parts per 10⁹ of the whole (99.9 % is 999,000,000).
    pub fn parts_per_billion(self) -> u64 {
        self.parts_per_billion
    }

    /// The percentage of `parts_per_billion` billionths of the whole; `None` above 100 %.
    pub fn from_parts_per_billion(parts_per_billion: u64) -> Option<Percent> {
        (parts_per_billion <= Self::HUNDRED.parts_per_billion)
            .then_some(Percent { parts_per_billion })
    }

    /// The value in percent, for display and JSON only; never decide with it.
    pub fn as_f64(self) -> f64 {
        self.parts_per_billion as f64 / PPB_PER_PERCENT as f64
    }
}

impl FromStr for Percent {
    type Err = InvalidPercent;

    /// Parses `"99.9%"`, `"99.9"` or `"100 %"`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid = || InvalidPercent {
            text: text.to_owned(),
        };
        let number = text.trim().trim_end_matches('%').trim_end();
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        let digits_only = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty()
            || !digits_only(whole)
            || !digits_only(fraction)
            || fraction.len() > MAX_DECIMALS
            || (number.contains('.') && fraction.is_empty())
        {
            return Err(invalid());
        }
        let whole: u64 = whole.parse().map_err(|_| invalid())?;
        let mut fraction_ppb: u64 = 0;
        for (i, b) in fraction.bytes().enumerate() {
            let place = 10u64.pow((MAX_DECIMALS - 1 - i) as u32);
            fraction_ppb += u64::from(b - b'0') * place;
        }
        let parts_per_billion = whole
            .checked_mul(PPB_PER_PERCENT)
            .and_then(|w| w.checked_add(fraction_ppb))
            .filter(|&ppb| ppb <= Self::HUNDRED.parts_per_billion)
            .ok_or_else(invalid)?;
        Ok(Percent { parts_per_billion })
    }
}

impl fmt::Display for Percent {
    /// Writes the shortest exact decimal, like `99.95%`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let whole = self.parts_per_billion / PPB_PER_PERCENT;
        let fraction = self.parts_per_billion % PPB_PER_PERCENT;
        if fraction == 0 {
            write!(f, "{whole}%")
        } else {
            let digits = format!("{fraction:07}");
            write!(f, "{whole}.{}%", digits.trim_end_matches('0'))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_exactly() {
        let p: Percent = "99.9%".parse().unwrap();
        assert_eq!(p.parts_per_billion(), 999_000_000);
        assert_eq!(
            "99.95".parse::<Percent>().unwrap().parts_per_billion(),
            999_500_000
        );
        assert_eq!("100%".parse::<Percent>().unwrap(), Percent::HUNDRED);
        assert_eq!(
            "0.0000001%".parse::<Percent>().unwrap().parts_per_billion(),
            1
        );
    }

    #[test]
    fn rejects_out_of_range_and_junk() {
        for bad in [
            "",
            "%",
            "100.1%",
            "-1%",
            "99.%",
            ".5",
            "abc",
            "99.99999999%",
            "1e2",
        ] {
            assert!(bad.parse::<Percent>().is_err(), "{bad}");
        }
    }

    #[test]
    fn displays_shortest_exact_form() {
        for text in ["99.9%", "99.95%", "100%", "0%", "12.0000001%"] {
            assert_eq!(text.parse::<Percent>().unwrap().to_string(), text);
        }
    }
}
