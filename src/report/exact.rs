//! Exact numbers for availability figures: [`Seconds`] with fractions, [`Fraction`]s such as
//! availability and coverage, and the [`Weight`] of degraded time.
//!
//! Everything here is integer arithmetic. Report times have the ledger's resolution (whole
//! milliseconds) and targets and weights are billionths, so every product the report needs —
//! degraded time × weight, (1 − target) × eligible time — is a whole number of 10⁻¹² s. A
//! [`Seconds`] holds exactly that, so its decimal text always terminates (`"2505.6"`), and a
//! ratio of two of them is an exact [`Fraction`]. May use `model` only.

use std::{
    cmp::Ordering,
    fmt,
    iter::Sum,
    ops::{Add, Neg, Sub},
};

use crate::model::Percent;

/// Picoseconds (10⁻¹² s) in one millisecond: one millisecond times one billionth.
const PICOS_PER_MILLI: i128 = 1_000_000_000;
/// Picoseconds in one second.
const PICOS_PER_SECOND: i128 = 1_000_000_000_000;
/// Decimal places of a picosecond count in seconds.
const SECOND_DECIMALS: usize = 12;
/// Parts per billion in the whole.
const PPB: u64 = 1_000_000_000;

/// An exact, signed amount of time, held as whole picoseconds.
///
/// Why picoseconds: a millisecond (the ledger's resolution) times a billionth (the resolution
/// of targets and weights) is a picosecond, so weighted and budgeted times stay exact integers
/// instead of floats that would decide money by rounding.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Seconds {
    picos: i128,
}

impl Seconds {
    /// No time.
    pub const ZERO: Seconds = Seconds { picos: 0 };

    /// Whole milliseconds, the resolution of the ledger and of every timeline.
    pub fn from_millis(millis: i64) -> Seconds {
        Seconds {
            picos: i128::from(millis) * PICOS_PER_MILLI,
        }
    }

    /// Whole seconds.
    pub fn from_secs(secs: i64) -> Seconds {
        Seconds {
            picos: i128::from(secs) * PICOS_PER_SECOND,
        }
    }

    /// `millis × parts_per_billion / 10⁹` milliseconds, exactly: a fraction of a time span, as
    /// degraded time × weight or eligible time × (1 − target).
    pub fn from_millis_scaled(millis: i64, parts_per_billion: u64) -> Seconds {
        Seconds {
            picos: i128::from(millis) * i128::from(parts_per_billion),
        }
    }

    /// The exact value as picoseconds (10⁻¹² s).
    pub fn picos(self) -> i128 {
        self.picos
    }

    /// The value in seconds, for JSON and display only; never decide with it.
    pub fn as_f64(self) -> f64 {
        self.picos as f64 / PICOS_PER_SECOND as f64
    }

    /// Whether this is less than zero (an overspent budget).
    pub fn is_negative(self) -> bool {
        self.picos < 0
    }
}

impl Add for Seconds {
    type Output = Seconds;

    fn add(self, other: Seconds) -> Seconds {
        Seconds {
            picos: self.picos + other.picos,
        }
    }
}

impl Sub for Seconds {
    type Output = Seconds;

    fn sub(self, other: Seconds) -> Seconds {
        Seconds {
            picos: self.picos - other.picos,
        }
    }
}

impl Neg for Seconds {
    type Output = Seconds;

    fn neg(self) -> Seconds {
        Seconds { picos: -self.picos }
    }
}

impl Sum for Seconds {
    fn sum<I: Iterator<Item = Seconds>>(iter: I) -> Seconds {
        iter.fold(Seconds::ZERO, Add::add)
    }
}

impl fmt::Display for Seconds {
    /// Writes the shortest exact decimal in seconds: `2592`, `2505.6`, `-462.6`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.picos < 0 { "-" } else { "" };
        let magnitude = self.picos.unsigned_abs();
        let per_second = PICOS_PER_SECOND.unsigned_abs();
        let whole = magnitude / per_second;
        let fraction = magnitude % per_second;
        if fraction == 0 {
            write!(f, "{sign}{whole}")
        } else {
            let digits = format!("{fraction:0SECOND_DECIMALS$}");
            write!(f, "{sign}{whole}.{}", digits.trim_end_matches('0'))
        }
    }
}

/// An exact non-negative fraction in lowest terms, such as an availability (`1435/1436`).
///
/// Kept reduced so that equal values compare equal field by field and print canonically.
/// Ordering is computed without multiplying, so it cannot overflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fraction {
    numerator: u128,
    denominator: u128,
}

impl Fraction {
    /// Nothing: 0.
    pub const ZERO: Fraction = Fraction {
        numerator: 0,
        denominator: 1,
    };

    /// The whole: 1.
    pub const ONE: Fraction = Fraction {
        numerator: 1,
        denominator: 1,
    };

    /// `numerator / denominator` in lowest terms; `None` when the denominator is zero.
    pub fn new(numerator: u128, denominator: u128) -> Option<Fraction> {
        if denominator == 0 {
            return None;
        }
        let divisor = gcd(numerator, denominator);
        Some(Fraction {
            numerator: numerator / divisor,
            denominator: denominator / divisor,
        })
    }

    /// `part / whole` of two exact times; `None` unless `whole > 0` and `part ≥ 0`.
    pub fn of(part: Seconds, whole: Seconds) -> Option<Fraction> {
        let part = u128::try_from(part.picos()).ok()?;
        let whole = u128::try_from(whole.picos()).ok()?;
        Fraction::new(part, whole)
    }

    /// The exact value of a percentage (99.9 % is `999/1000`), to compare availabilities with
    /// targets and credit bounds.
    pub fn from_percent(percent: Percent) -> Fraction {
        Fraction::new(u128::from(percent.parts_per_billion()), u128::from(PPB))
            .unwrap_or(Fraction::ZERO)
    }

    /// The numerator in lowest terms.
    pub fn numerator(self) -> u128 {
        self.numerator
    }

    /// The denominator in lowest terms (never zero).
    pub fn denominator(self) -> u128 {
        self.denominator
    }

    /// The value, for JSON and display only; never decide with it.
    pub fn as_f64(self) -> f64 {
        self.numerator as f64 / self.denominator as f64
    }

    /// The value in percent with `decimals` places, rounded half to even: `"99.930362"`.
    ///
    /// Half-even so that a printed figure is never biased upwards; decisions do not use it.
    pub fn percent_text(self, decimals: usize) -> String {
        decimal_text(self.numerator, self.denominator, 2, decimals)
    }
}

impl Ord for Fraction {
    fn cmp(&self, other: &Fraction) -> Ordering {
        compare_ratios(
            self.numerator,
            self.denominator,
            other.numerator,
            other.denominator,
        )
    }
}

impl PartialOrd for Fraction {
    fn partial_cmp(&self, other: &Fraction) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for Fraction {
    /// Writes `numerator/denominator`, or just the integer when the denominator is 1.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.denominator == 1 {
            write!(f, "{}", self.numerator)
        } else {
            write!(f, "{}/{}", self.numerator, self.denominator)
        }
    }
}

fn gcd(mut a: u128, mut b: u128) -> u128 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a.max(1)
}

/// Compares `a/b` with `c/d` (b, d > 0) through their continued fractions: integer parts
/// first, then the reciprocals of the remainders, so no product is ever formed.
fn compare_ratios(mut a: u128, mut b: u128, mut c: u128, mut d: u128) -> Ordering {
    let mut flipped = false;
    loop {
        let (whole_left, rest_left) = (a / b, a % b);
        let (whole_right, rest_right) = (c / d, c % d);
        let order = match (whole_left.cmp(&whole_right), rest_left, rest_right) {
            (Ordering::Equal, 0, 0) => Ordering::Equal,
            (Ordering::Equal, 0, _) => Ordering::Less,
            (Ordering::Equal, _, 0) => Ordering::Greater,
            (Ordering::Equal, _, _) => {
                // rest_left/b vs rest_right/d  ⇔  b/rest_left vs d/rest_right, reversed.
                (a, b, c, d) = (b, rest_left, d, rest_right);
                flipped = !flipped;
                continue;
            }
            (order, _, _) => order,
        };
        return if flipped { order.reverse() } else { order };
    }
}

/// `numerator / denominator × 10^shift` with `decimals` places, rounded half to even. Long
/// division with modular steps that never overflow, whatever the operands.
fn decimal_text(numerator: u128, denominator: u128, shift: usize, decimals: usize) -> String {
    let mut units = numerator / denominator;
    let mut rest = numerator % denominator;
    for _ in 0..shift + decimals {
        let (digit, next) = times_ten_mod(rest, denominator);
        units = units.saturating_mul(10).saturating_add(u128::from(digit));
        rest = next;
    }
    // Round on what is left: rest/denominator compared with one half, without doubling.
    let half_or_more = rest > 0 && rest >= denominator - rest;
    let exactly_half = rest > 0 && rest == denominator - rest;
    if half_or_more && (!exactly_half || units % 2 == 1) {
        units = units.saturating_add(1);
    }
    let scale = 10u128.saturating_pow(u32::try_from(decimals).unwrap_or(u32::MAX));
    let whole = units / scale;
    if decimals == 0 {
        whole.to_string()
    } else {
        format!("{whole}.{:0decimals$}", units % scale)
    }
}

/// `(⌊10·rest / denominator⌋, 10·rest mod denominator)` for `rest < denominator`, by ten
/// modular additions so that `10·rest` is never formed.
fn times_ten_mod(rest: u128, denominator: u128) -> (u8, u128) {
    let gap = denominator - rest;
    let (mut digit, mut acc) = (0u8, 0u128);
    for _ in 0..10 {
        if acc >= gap {
            acc -= gap;
            digit += 1;
        } else {
            acc += rest;
        }
    }
    (digit, acc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_print_their_shortest_exact_decimal() {
        assert_eq!(Seconds::from_secs(2592).to_string(), "2592");
        assert_eq!(Seconds::ZERO.to_string(), "0");
        assert_eq!(Seconds::from_millis(2_505_600).to_string(), "2505.6");
        assert_eq!((-Seconds::from_millis(462_600)).to_string(), "-462.6");
        assert_eq!(Seconds::from_secs(-1).to_string(), "-1");
        // 1 ms × 0.3 = 0.0003 s, and a picosecond is representable too.
        assert_eq!(
            Seconds::from_millis_scaled(1, 300_000_000).to_string(),
            "0.0003"
        );
        assert_eq!(
            Seconds::from_millis_scaled(1, 1).to_string(),
            "0.000000000001"
        );
        assert_eq!(
            (Seconds::from_secs(1) - Seconds::from_millis(1500)).to_string(),
            "-0.5"
        );
    }

    #[test]
    fn fractions_are_reduced_and_print_canonically() {
        let f = Fraction::new(2_583_000, 2_584_800).unwrap();
        assert_eq!((f.numerator(), f.denominator()), (1435, 1436));
        assert_eq!(f.to_string(), "1435/1436");
        assert_eq!(Fraction::new(7, 7).unwrap().to_string(), "1");
        assert_eq!(Fraction::new(0, 9).unwrap(), Fraction::ZERO);
        assert_eq!(Fraction::new(1, 0), None);
        assert_eq!(
            Fraction::of(Seconds::from_secs(1), Seconds::ZERO),
            None,
            "nothing to divide by"
        );
        assert_eq!(
            Fraction::of(-Seconds::from_secs(1), Seconds::from_secs(2)),
            None
        );
    }

    #[test]
    fn percent_text_rounds_half_to_even() {
        assert_eq!(
            Fraction::new(1435, 1436).unwrap().percent_text(6),
            "99.930362"
        );
        assert_eq!(Fraction::ONE.percent_text(6), "100.000000");
        assert_eq!(Fraction::ZERO.percent_text(6), "0.000000");
        // Exactly half a unit in the last place: to the even neighbour.
        // 1/16 = 6.25 % → "6.2" (2 is even); 3/16 = 18.75 % → "18.8" (8 is even).
        assert_eq!(Fraction::new(1, 16).unwrap().percent_text(1), "6.2");
        assert_eq!(Fraction::new(3, 16).unwrap().percent_text(1), "18.8");
        // Just above half rounds up, just below rounds down.
        assert_eq!(
            Fraction::new(625_001, 10_000_000).unwrap().percent_text(1),
            "6.3"
        );
        assert_eq!(
            Fraction::new(624_999, 10_000_000).unwrap().percent_text(1),
            "6.2"
        );
        assert_eq!(Fraction::new(2, 3).unwrap().percent_text(0), "67");
        // Huge operands do not overflow.
        let big = Fraction::new(u128::MAX - 1, u128::MAX).unwrap();
        assert_eq!(big.percent_text(6), "100.000000");
    }

    #[test]
    fn comparisons_are_exact_and_overflow_free() {
        let target = Fraction::from_percent("99.9".parse().unwrap());
        assert_eq!(target, Fraction::new(999, 1000).unwrap());
        assert!(Fraction::new(2_589_407, 2_592_000).unwrap() < target);
        assert_eq!(
            Fraction::new(2_589_408, 2_592_000).unwrap().cmp(&target),
            Ordering::Equal
        );
        let a = Fraction::new(u128::MAX - 2, u128::MAX - 1).unwrap();
        let b = Fraction::new(u128::MAX - 1, u128::MAX).unwrap();
        assert!(a < b, "x-1/x grows with x");
        assert!(Fraction::new(5, 2).unwrap() > Fraction::ONE);
        assert!(Fraction::new(1, 3).unwrap() < Fraction::new(1, 2).unwrap());
        // Agrees with cross-multiplication wherever that fits.
        for a in 0..24u128 {
            for b in 1..12u128 {
                for c in 0..24u128 {
                    for d in 1..12u128 {
                        let left = Fraction::new(a, b).unwrap();
                        let right = Fraction::new(c, d).unwrap();
                        assert_eq!(
                            left.cmp(&right),
                            (a * d).cmp(&(c * b)),
                            "{a}/{b} vs {c}/{d}"
                        );
                    }
                }
            }
        }
    }
}
