//! The vocabulary every layer speaks: probe names, outcomes, error classes, check results and
//! exact percentages. No I/O lives here, and nothing here depends on another upledger module.

mod glob;
mod hex;
mod latency;
mod name;
mod outcome;
mod percent;
mod result;
mod run;
mod weight;

pub use glob::glob_match;
pub use hex::hex;
pub use latency::{LatencyBucket, LatencyHistogram, latency_bucket};
pub use name::{InvalidLocationName, InvalidProbeName, LocationName, NameMap, ProbeName};
pub use outcome::{ErrorClass, Outcome, ProbeKind, State};
pub use percent::{InvalidPercent, Percent};
pub use result::{CertStatus, CheckResult};
pub use run::{Run, push_run};
pub use weight::{InvalidWeight, Weight};
