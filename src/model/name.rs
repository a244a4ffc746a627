//! Probe names: the key users type on the command line and that the ledger stores.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use rustc_hash::FxBuildHasher;

use serde::{Deserialize, Serialize};

/// A validated probe name: `[a-z0-9][a-z0-9._-]{0,63}` (SPEC §1.2).
///
/// Names appear in URLs, metric labels and file names, so the alphabet is deliberately small.
///
/// Shared, not owned: every check result, status entry and state machine carries its probe's
/// name, and a clone that only counts a reference keeps that from costing an allocation per
/// check.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ProbeName(Arc<str>);

/// A map keyed by probe name, with a fast unkeyed hash: the daemon looks names up several
/// times per check, and names come from the operator's configuration, not from the network.
pub type NameMap<V> = HashMap<ProbeName, V, FxBuildHasher>;

/// Why a string is not a valid probe name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid probe name {name:?}: names are 1-64 characters of a-z, 0-9, '.', '_' or '-', starting with a letter or digit"
)]
pub struct InvalidProbeName {
    /// The rejected input.
    pub name: String,
}

impl ProbeName {
    /// Checks `name` against the naming rule.
    pub fn new(name: &str) -> Result<Self, InvalidProbeName> {
        let bytes = name.as_bytes();
        let first_ok = bytes
            .first()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        let rest_ok = bytes.iter().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
        });
        if first_ok && rest_ok && bytes.len() <= 64 {
            Ok(Self(Arc::from(name)))
        } else {
            Err(InvalidProbeName {
                name: name.to_owned(),
            })
        }
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name a coordinator stores one location's results of this probe under:
    /// `name@location`. No configured name holds an `@`, so it never meets one.
    pub fn at_location(&self, location: &LocationName) -> ProbeName {
        ProbeName(Arc::from(format!("{}@{}", self.0, location.0)))
    }

    /// The probe and location of a name made by [`ProbeName::at_location`]; `None` for a
    /// plain name.
    pub fn split_location(&self) -> Option<(ProbeName, LocationName)> {
        let (probe, location) = self.0.split_once('@')?;
        Some((
            ProbeName(Arc::from(probe)),
            LocationName(Arc::from(location)),
        ))
    }

    /// A name as the ledger stores it: a probe name, or one location's series of it.
    pub fn stored(name: &str) -> Result<Self, InvalidProbeName> {
        match name.split_once('@') {
            None => ProbeName::new(name),
            Some((probe, location)) => {
                let probe = ProbeName::new(probe)?;
                let location = LocationName::new(location).map_err(|_| InvalidProbeName {
                    name: name.to_owned(),
                })?;
                Ok(probe.at_location(&location))
            }
        }
    }
}

/// A vantage point's name (`[daemon].location`, SPEC §9): the probe-name alphabet, at most
/// 32 characters, because it is joined to probe names, metric labels and message ids.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct LocationName(Arc<str>);

/// Why a string is not a valid location name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid location name {name:?}: names are 1-32 characters of a-z, 0-9, '.', '_' or '-', starting with a letter or digit"
)]
pub struct InvalidLocationName {
    /// The rejected input.
    pub name: String,
}

impl LocationName {
    /// Checks `name` against the naming rule.
    pub fn new(name: &str) -> Result<Self, InvalidLocationName> {
        match ProbeName::new(name) {
            Ok(valid) if name.len() <= 32 => Ok(LocationName(valid.0)),
            _ => Err(InvalidLocationName {
                name: name.to_owned(),
            }),
        }
    }

    /// A location name made of any text (a host name): lowercased, other characters
    /// replaced by `-`, cut to 32; `local` when nothing is left.
    pub fn sanitized(text: &str) -> LocationName {
        let mut name: String = text
            .trim()
            .chars()
            .map(|c| c.to_ascii_lowercase())
            .map(|c| {
                if c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-') {
                    c
                } else {
                    '-'
                }
            })
            .skip_while(|c| !c.is_ascii_alphanumeric())
            .take(32)
            .collect();
        if name.is_empty() {
            name.push_str("local");
        }
        LocationName(Arc::from(name))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for LocationName {
    type Error = InvalidLocationName;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::new(&value)
    }
}

impl From<LocationName> for String {
    fn from(value: LocationName) -> Self {
        value.0.as_ref().to_owned()
    }
}

impl fmt::Display for LocationName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for ProbeName {
    type Error = InvalidProbeName;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::new(&value)
    }
}

impl From<ProbeName> for String {
    fn from(value: ProbeName) -> Self {
        value.0.as_ref().to_owned()
    }
}

impl fmt::Display for ProbeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_documented_alphabet() {
        for ok in ["a", "api-health", "web.home_2", "0db", &"x".repeat(64)] {
            assert!(ProbeName::new(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn location_series_names_round_trip_and_never_meet_configured_names() {
        let web = ProbeName::new("web").unwrap();
        let fra = LocationName::new("fra1").unwrap();
        let series = web.at_location(&fra);
        assert_eq!(series.as_str(), "web@fra1");
        assert!(ProbeName::new(series.as_str()).is_err());
        assert_eq!(series.split_location(), Some((web.clone(), fra)));
        assert_eq!(ProbeName::stored("web@fra1").unwrap(), series);
        assert_eq!(ProbeName::stored("web").unwrap(), web);
        assert!(web.split_location().is_none());
        for bad in ["web@", "@fra1", "web@Fra", "a@b@c"] {
            assert!(ProbeName::stored(bad).is_err(), "{bad}");
        }
        assert!(LocationName::new(&"x".repeat(33)).is_err());
        assert_eq!(
            LocationName::sanitized("Host_1.Example").as_str(),
            "host_1.example"
        );
        assert_eq!(LocationName::sanitized("  ").as_str(), "local");
        assert_eq!(LocationName::sanitized("-x y").as_str(), "x-y");
    }

    #[test]
    fn rejects_everything_else() {
        for bad in ["", "-a", ".a", "Api", "a b", "a/b", "é", &"x".repeat(65)] {
            assert!(ProbeName::new(bad).is_err(), "{bad}");
        }
    }
}
