//! Exact weights (`degraded_weight`): what share of degraded time an SLA counts as down.
//! In the model so that configuration validates it and reports compute with it alike.

use std::{fmt, str::FromStr};

/// Billionths in the whole.
const PPB: u64 = 1_000_000_000;

/// The share of degraded time an SLA counts as down (`degraded_weight`), exactly, in
/// billionths of the whole.
///
/// The config holds the weight as a float; [`Weight::try_from`] goes through its shortest
/// decimal text so that `0.3` means exactly three tenths, not the binary float near it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Weight {
    parts_per_billion: u64,
}

/// Why a value is not an acceptable weight.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid degraded_weight {text:?}: expected a decimal number from 0 to 1 with at most 9 decimals, like \"0.3\""
)]
pub struct InvalidWeight {
    /// The rejected input, as text.
    pub text: String,
}

/// Decimal places of a weight that fit in billionths.
const WEIGHT_DECIMALS: usize = 9;

impl Weight {
    /// Degraded time counts as up (the default).
    pub const ZERO: Weight = Weight {
        parts_per_billion: 0,
    };

    /// Degraded time counts fully as down.
    pub const ONE: Weight = Weight {
        parts_per_billion: PPB,
    };

    /// The weight as parts per 10⁹ (0.3 is 300,000,000).
    pub fn parts_per_billion(self) -> u64 {
        self.parts_per_billion
    }
}

impl FromStr for Weight {
    type Err = InvalidWeight;

    /// Parses a decimal like `"0"`, `"0.3"` or `"1"`.
    fn from_str(text: &str) -> Result<Weight, InvalidWeight> {
        let invalid = || InvalidWeight {
            text: text.to_owned(),
        };
        let number = text.trim();
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        let digits_only = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty()
            || !digits_only(whole)
            || !digits_only(fraction)
            || fraction.len() > WEIGHT_DECIMALS
            || (number.contains('.') && fraction.is_empty())
        {
            return Err(invalid());
        }
        let whole: u64 = whole.parse().map_err(|_| invalid())?;
        let mut fraction_ppb = 0u64;
        let mut place = PPB;
        for b in fraction.bytes() {
            place /= 10;
            fraction_ppb += u64::from(b - b'0') * place;
        }
        let parts_per_billion = whole
            .checked_mul(PPB)
            .and_then(|w| w.checked_add(fraction_ppb))
            .filter(|&ppb| ppb <= PPB)
            .ok_or_else(invalid)?;
        Ok(Weight { parts_per_billion })
    }
}

impl TryFrom<f64> for Weight {
    type Error = InvalidWeight;

    /// Converts through the float's shortest round-trip decimal text (Rust never prints it in
    /// exponent form), so the configured `0.3` is exactly 3/10.
    fn try_from(value: f64) -> Result<Weight, InvalidWeight> {
        if !value.is_finite() {
            return Err(InvalidWeight {
                text: value.to_string(),
            });
        }
        // `-0.0` prints as "-0": a zero weight all the same.
        let value = if value == 0.0 { 0.0 } else { value };
        value.to_string().parse()
    }
}

impl fmt::Display for Weight {
    /// Writes the shortest exact decimal: `0`, `0.3`, `1`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let whole = self.parts_per_billion / PPB;
        let fraction = self.parts_per_billion % PPB;
        if fraction == 0 {
            write!(f, "{whole}")
        } else {
            let digits = format!("{fraction:0WEIGHT_DECIMALS$}");
            write!(f, "{whole}.{}", digits.trim_end_matches('0'))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_are_exact_decimals() {
        assert_eq!(
            "0.3".parse::<Weight>().unwrap().parts_per_billion(),
            300_000_000
        );
        assert_eq!(Weight::try_from(0.3).unwrap(), "0.3".parse().unwrap());
        assert_eq!(Weight::try_from(0.0).unwrap(), Weight::ZERO);
        assert_eq!(Weight::try_from(-0.0).unwrap(), Weight::ZERO);
        assert_eq!(Weight::try_from(1.0).unwrap(), Weight::ONE);
        assert_eq!(
            Weight::try_from(0.1 + 0.2).unwrap_err().text,
            "0.30000000000000004"
        );
        for bad in ["", "1.5", "-0.1", "0.", ".3", "abc", "0.1234567891"] {
            assert!(bad.parse::<Weight>().is_err(), "{bad}");
        }
        assert!(Weight::try_from(f64::NAN).is_err());
        assert_eq!("0.300".parse::<Weight>().unwrap().to_string(), "0.3");
        assert_eq!(Weight::ONE.to_string(), "1");
    }
}
