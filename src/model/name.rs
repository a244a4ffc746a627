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
    fn rejects_everything_else() {
        for bad in ["", "-a", ".a", "Api", "a b", "a/b", "é", &"x".repeat(65)] {
            assert!(ProbeName::new(bad).is_err(), "{bad}");
        }
    }
}
