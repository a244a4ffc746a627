//! The entries of the Merkle log (SPEC §8): what each leaf commits to, and its encoding.
//!
//! A leaf is one line of compact JSON, `{"v":1,"leaf":"<kind>",…}`, hashed as RFC 9162 leaf
//! input. The log stores the exact bytes and the verifier hashes the bytes it is given, so the
//! encoding needs no canonical form to be checkable; it is still fixed (serde writes the fields
//! in declaration order) so that the same record always gives the same leaf. `v` is the
//! encoding version: a reader refuses versions it does not know rather than guess.
//!
//! Hour leaves commit to a probe's results; control leaves to everything else a report's
//! figures depend on (configuration, maintenance sightings, exclusions and revocations, clock
//! steps, damage, imports) and to the log's own life (daemon start and stop, signing keys).
//! May use `model`, `ledger` record types and `query`'s export line form.

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use crate::{
    ledger::{ClockStep, Damage, ExclusionRecord, ImportRecord, ResultRecord, RevocationRecord},
    model::ProbeName,
    query::ResultLine,
};

/// The leaf encoding this build writes and reads.
pub const LEAF_VERSION: u32 = 1;

/// One leaf of the log, as stored and as hashed: `{"v":1,"leaf":…,"control":N}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LeafDoc {
    /// Encoding version ([`LEAF_VERSION`]).
    pub v: u32,
    /// What the leaf records.
    #[serde(flatten)]
    pub leaf: Leaf,
    /// The index of the last control leaf (any leaf but an hour leaf) before this one: the
    /// control leaves form a chain a verifier can follow back from any hour leaf, so a bundle
    /// that leaves one out (a revocation, a clock step) is caught.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control: Option<u64>,
}

/// What a leaf records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "leaf", rename_all = "snake_case")]
pub enum Leaf {
    /// A probe's results in one leaf hour `[hour, hour + seconds)`, appended once no more can
    /// arrive. `count` 0 puts a gap on record (a span of several empty hours may share one
    /// leaf); `sha256` is of the results' export lines, sorted by time, each `\n`-terminated.
    Hour(HourLeaf),
    /// The daemon started.
    Start {
        /// When.
        at: Timestamp,
        /// The upledger version.
        version: String,
    },
    /// The daemon stopped in an orderly way.
    Stop {
        /// When.
        at: Timestamp,
    },
    /// A configuration was loaded whose normalised form (probes' terms, SLAs, maintenance,
    /// time zone) has this SHA-256 (hex); the bundle carries the form itself.
    Config {
        /// When it was loaded (first seen by the log).
        at: Timestamp,
        /// SHA-256 of the normalised configuration's JSON, hex.
        sha256: String,
    },
    /// A maintenance window was first seen.
    Maintenance {
        /// The window's identity in the configuration.
        window: String,
        /// When it was first seen.
        first_seen: Timestamp,
    },
    /// An exclusion was recorded (`upledger exclude`).
    Exclusion {
        /// The exclusion as stored.
        exclusion: ExclusionRecord,
    },
    /// An exclusion was revoked.
    Revocation {
        /// The revocation as stored.
        revocation: RevocationRecord,
    },
    /// The wall clock stepped; the ambiguous span counts as unknown.
    ClockStep {
        /// When it was noticed.
        at: Timestamp,
        /// How far it jumped, in milliseconds (negative: set back).
        step_ms: i64,
        /// Start of the span made ambiguous.
        unknown_from: Timestamp,
        /// End of that span (exclusive).
        unknown_to: Timestamp,
    },
    /// The ledger found results lost or unreadable in a range (counted unknown).
    Damage {
        /// The probe.
        probe: String,
        /// Start of the range.
        from: Timestamp,
        /// End of the range (exclusive).
        to: Timestamp,
        /// What is wrong.
        what: String,
    },
    /// Results were imported: visibly later than the hours they fill.
    Import {
        /// The import as the ledger records it (when, by whom, how many, which probes, span).
        import: ImportRecord,
    },
    /// A signing key was first used (or replaced the previous one).
    Key {
        /// When.
        at: Timestamp,
        /// The public key, `ssh-ed25519 AAAA…`.
        public_key: String,
    },
}

/// A probe's results in one leaf hour (see [`Leaf::Hour`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HourLeaf {
    /// The probe.
    pub probe: String,
    /// Start of the span.
    pub hour: Timestamp,
    /// Length of the span in seconds: one leaf hour, or several for a run of empty ones.
    pub seconds: u64,
    /// How many results the span holds.
    pub count: u64,
    /// SHA-256 (hex) of the results' export lines.
    pub sha256: String,
    /// The index of the earlier leaf of the same hour this one replaces, after an import added
    /// results to an hour already on record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amends: Option<u64>,
}

impl HourLeaf {
    /// End of the span.
    pub fn end(&self) -> Timestamp {
        let seconds = i64::try_from(self.seconds).unwrap_or(i64::MAX);
        self.hour
            .checked_add(SignedDuration::from_secs(seconds))
            .unwrap_or(Timestamp::MAX)
    }
}

/// Why bytes are not a leaf this build can read.
#[derive(Debug, thiserror::Error)]
pub enum LeafError {
    /// Not the JSON of a leaf.
    #[error("not a log leaf: {0}")]
    Json(#[from] serde_json::Error),
    /// A version this build does not know.
    #[error("leaf encoding version {0} is not known to this upledger (it reads version 1)")]
    Version(u32),
}

impl Leaf {
    /// The leaf's bytes: compact JSON with the version first, `control` the index of the
    /// last control leaf before it.
    pub fn encode(&self, control: Option<u64>) -> Vec<u8> {
        let doc = LeafDoc {
            v: LEAF_VERSION,
            leaf: self.clone(),
            control,
        };
        // A leaf holds strings, numbers and timestamps only: serialising cannot fail.
        serde_json::to_vec(&doc).unwrap_or_default()
    }

    /// Reads a leaf's bytes.
    pub fn decode(bytes: &[u8]) -> Result<LeafDoc, LeafError> {
        let doc: LeafDoc = serde_json::from_slice(bytes)?;
        if doc.v != LEAF_VERSION {
            return Err(LeafError::Version(doc.v));
        }
        Ok(doc)
    }

    /// Whether this is a control leaf (in the chain of `control` indexes): any but an hour.
    pub fn is_control(&self) -> bool {
        !matches!(self, Leaf::Hour(_))
    }

    /// The kind, as written in the `leaf` field.
    pub fn kind(&self) -> &'static str {
        match self {
            Leaf::Hour(_) => "hour",
            Leaf::Start { .. } => "start",
            Leaf::Stop { .. } => "stop",
            Leaf::Config { .. } => "config",
            Leaf::Maintenance { .. } => "maintenance",
            Leaf::Exclusion { .. } => "exclusion",
            Leaf::Revocation { .. } => "revocation",
            Leaf::ClockStep { .. } => "clock_step",
            Leaf::Damage { .. } => "damage",
            Leaf::Import { .. } => "import",
            Leaf::Key { .. } => "key",
        }
    }

    /// The clock-step leaf of `step`.
    pub fn clock_step(step: &ClockStep) -> Leaf {
        Leaf::ClockStep {
            at: step.at,
            step_ms: i64::try_from(step.step.as_millis()).unwrap_or(i64::MAX),
            unknown_from: step.unknown_from,
            unknown_to: step.unknown_to,
        }
    }

    /// The damage leaf of `damage`, when it names a probe and a range (other damage, such as
    /// an unreadable seal file, changes no figure).
    pub fn damage(damage: &Damage) -> Option<Leaf> {
        Some(Leaf::Damage {
            probe: damage.probe.as_ref()?.to_string(),
            from: damage.from?,
            to: damage.to?,
            what: damage.what.clone(),
        })
    }

    /// The clock step a clock-step leaf records.
    pub fn as_clock_step(&self) -> Option<ClockStep> {
        match *self {
            Leaf::ClockStep {
                at,
                step_ms,
                unknown_from,
                unknown_to,
            } => Some(ClockStep {
                at,
                step: SignedDuration::from_millis(step_ms),
                unknown_from,
                unknown_to,
            }),
            _ => None,
        }
    }

    /// The damage a damage leaf records.
    pub fn as_damage(&self) -> Option<Damage> {
        match self {
            Leaf::Damage {
                probe,
                from,
                to,
                what,
            } => Some(Damage {
                probe: ProbeName::new(probe).ok(),
                from: Some(*from),
                to: Some(*to),
                what: what.clone(),
            }),
            _ => None,
        }
    }
}

/// One result as its export line, without the `\n`.
pub fn export_line(record: &ResultRecord) -> String {
    serde_json::to_string(&ResultLine::from(record)).unwrap_or_default()
}

/// SHA-256 over lines, each followed by `\n`, in the order given.
pub fn lines_sha256<'a>(lines: impl IntoIterator<Item = &'a str>) -> [u8; 32] {
    let mut context = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    for line in lines {
        context.update(line.as_bytes());
        context.update(b"\n");
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(context.finish().as_ref());
    out
}

pub use crate::model::hex;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_hour_leaf_encodes_with_the_version_first_and_reads_back() {
        let leaf = Leaf::Hour(HourLeaf {
            probe: "api".into(),
            hour: "2026-11-01T10:00:00Z".parse().expect("time"),
            seconds: 3600,
            count: 2,
            sha256: hex(&lines_sha256(["a", "b"])),
            amends: None,
        });
        let bytes = leaf.encode(Some(7));
        let text = String::from_utf8(bytes.clone()).expect("utf-8");
        assert!(
            text.starts_with(r#"{"v":1,"leaf":"hour","probe":"api","hour":"2026-11-01T10:00:00Z","seconds":3600,"count":2,"sha256":""#),
            "{text}"
        );
        assert!(text.ends_with(r#","control":7}"#), "{text}");
        let doc = Leaf::decode(&bytes).expect("decodes");
        assert_eq!((doc.leaf, doc.control), (leaf, Some(7)));
    }

    #[test]
    fn an_unknown_version_is_refused() {
        let error = Leaf::decode(br#"{"v":2,"leaf":"stop","at":"2026-11-01T10:00:00Z"}"#)
            .expect_err("version 2");
        assert!(error.to_string().contains("version 2"), "{error}");
    }

    #[test]
    fn lines_hash_as_newline_terminated_text() {
        let expected = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, b"a\nb\n");
        assert_eq!(lines_sha256(["a", "b"]).as_slice(), expected.as_ref());
    }
}
