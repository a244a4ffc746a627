//! Calendar months in a time zone, and their bounds as UTC instants (SPEC §3: "a Europe/Berlin
//! March has 31 d − 1 h"). May use `model` only (and jiff for time zones).

use std::{fmt, str::FromStr};

use jiff::{Timestamp, civil::Date, tz::TimeZone};

use super::{ReportError, interval::Interval};

/// A calendar month, `YYYY-MM`: the period of an SLA report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Month {
    year: i16,
    month: i8,
}

impl Month {
    /// The month `month` (1–12) of `year` (1–9999).
    pub fn new(year: i16, month: i8) -> Result<Month, ReportError> {
        if (1..=9999).contains(&year) && (1..=12).contains(&month) {
            Ok(Month { year, month })
        } else {
            Err(ReportError::InvalidMonth {
                text: format!("{year:04}-{month:02}"),
            })
        }
    }

    /// The month that contains `at` on the wall clock of `timezone`.
    pub fn containing(at: Timestamp, timezone: &TimeZone) -> Month {
        let date = at.to_zoned_datetime(timezone.clone()).date();
        Month {
            year: date.year(),
            month: date.month(),
        }
    }

    /// The year.
    pub fn year(self) -> i16 {
        self.year
    }

    /// The month of the year, 1–12.
    pub fn month(self) -> i8 {
        self.month
    }

    /// The month after this one, if representable.
    pub fn next(self) -> Option<Month> {
        if self.month == 12 {
            Month::new(self.year.checked_add(1)?, 1).ok()
        } else {
            Month::new(self.year, self.month + 1).ok()
        }
    }

    /// The month before this one, if representable.
    pub fn previous(self) -> Option<Month> {
        if self.month == 1 {
            Month::new(self.year.checked_sub(1)?, 12).ok()
        } else {
            Month::new(self.year, self.month - 1).ok()
        }
    }

    /// The month as `[start, end)` in real time: from local midnight of its first day to
    /// local midnight of the next month's first day in `timezone`, so a month that springs
    /// forward is an hour short and one that falls back an hour long.
    pub fn bounds(self, timezone: &TimeZone) -> Result<Interval, ReportError> {
        let start = first_instant(self, timezone)?;
        let end = match self.next() {
            Some(next) => first_instant(next, timezone)?,
            // December 9999 ends in year 10000, past jiff's range: its last instant will do.
            None => Timestamp::MAX,
        };
        Ok(Interval::new(start, end))
    }
}

/// The first instant of `month`'s first day in `timezone`: local midnight, or the end of the
/// gap when a DST change skips midnight.
fn first_instant(month: Month, timezone: &TimeZone) -> Result<Timestamp, ReportError> {
    let bounds_error = |source: jiff::Error| ReportError::MonthBounds { month, source };
    let date = Date::new(month.year, month.month, 1).map_err(bounds_error)?;
    let zoned = date
        .to_zoned_datetime(timezone.clone())
        .and_then(|midnight| midnight.start_of_day())
        .map_err(bounds_error)?;
    Ok(zoned.timestamp())
}

impl FromStr for Month {
    type Err = ReportError;

    /// Parses `YYYY-MM`, like `2026-11`.
    fn from_str(text: &str) -> Result<Month, ReportError> {
        let invalid = || ReportError::InvalidMonth {
            text: text.to_owned(),
        };
        let (year, month) = text.split_once('-').ok_or_else(invalid)?;
        let digits = |s: &str, len: usize| s.len() == len && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(year, 4) || !digits(month, 2) {
            return Err(invalid());
        }
        let year: i16 = year.parse().map_err(|_| invalid())?;
        let month: i8 = month.parse().map_err(|_| invalid())?;
        Month::new(year, month).map_err(|_| invalid())
    }
}

impl fmt::Display for Month {
    /// Writes `YYYY-MM`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Seconds;

    fn bounds(month: &str, zone: &str) -> Interval {
        let timezone = TimeZone::get(zone).unwrap();
        month.parse::<Month>().unwrap().bounds(&timezone).unwrap()
    }

    #[test]
    fn utc_months_are_whole_days() {
        let feb = bounds("2024-02", "UTC");
        assert_eq!(feb.start.to_string(), "2024-02-01T00:00:00Z");
        assert_eq!(feb.end.to_string(), "2024-03-01T00:00:00Z");
        assert_eq!(feb.duration(), Seconds::from_secs(29 * 86_400));
        assert_eq!(
            bounds("2023-02", "UTC").duration(),
            Seconds::from_secs(28 * 86_400)
        );
        let dec = bounds("2024-12", "UTC");
        assert_eq!(dec.end.to_string(), "2025-01-01T00:00:00Z");
    }

    #[test]
    fn berlin_spring_month_is_an_hour_short() {
        let march = bounds("2024-03", "Europe/Berlin");
        assert_eq!(march.start.to_string(), "2024-02-29T23:00:00Z");
        assert_eq!(march.end.to_string(), "2024-03-31T22:00:00Z");
        assert_eq!(march.duration(), Seconds::from_secs(31 * 86_400 - 3600));
    }

    #[test]
    fn berlin_autumn_month_is_an_hour_long() {
        let october = bounds("2024-10", "Europe/Berlin");
        assert_eq!(october.start.to_string(), "2024-09-30T22:00:00Z");
        assert_eq!(october.end.to_string(), "2024-10-31T23:00:00Z");
        assert_eq!(october.duration(), Seconds::from_secs(31 * 86_400 + 3600));
    }

    #[test]
    fn a_month_whose_midnight_is_skipped_starts_after_the_gap() {
        // Paraguay sprang forward at local midnight on Sunday 2023-10-01: 00:00 (−04) became
        // 01:00 (−03), so October began at 01:00 local, 04:00 UTC, and was an hour short.
        let asuncion = TimeZone::get("America/Asuncion").unwrap();
        let october = Month::new(2023, 10).unwrap().bounds(&asuncion).unwrap();
        assert_eq!(october.start.to_string(), "2023-10-01T04:00:00Z");
        assert_eq!(october.end.to_string(), "2023-11-01T03:00:00Z");
        assert_eq!(october.duration(), Seconds::from_secs(31 * 86_400 - 3600));
    }

    #[test]
    fn parses_strictly_and_steps() {
        let month: Month = "2026-11".parse().unwrap();
        assert_eq!(month.to_string(), "2026-11");
        assert_eq!(month.next().unwrap().to_string(), "2026-12");
        assert_eq!(month.next().unwrap().next().unwrap().to_string(), "2027-01");
        assert_eq!(
            Month::new(2027, 1).unwrap().previous().unwrap().to_string(),
            "2026-12"
        );
        for bad in [
            "2026-13",
            "2026-00",
            "26-11",
            "2026-1",
            "2026/11",
            "",
            "2026-11-01",
        ] {
            assert!(bad.parse::<Month>().is_err(), "{bad}");
        }
        let err = "2026-13".parse::<Month>().unwrap_err();
        assert!(err.to_string().contains("2026-13"), "{err}");
    }

    #[test]
    fn the_month_containing_an_instant_follows_the_wall_clock() {
        let berlin = TimeZone::get("Europe/Berlin").unwrap();
        let at: Timestamp = "2024-02-29T23:30:00Z".parse().unwrap();
        assert_eq!(Month::containing(at, &berlin).to_string(), "2024-03");
        assert_eq!(Month::containing(at, &TimeZone::UTC).to_string(), "2024-02");
    }
}
