//! The vocabulary every layer speaks: probe names, outcomes, error classes, check results and
//! exact percentages. No I/O lives here, and nothing here depends on another upledger module.

mod glob;
mod name;
mod outcome;
mod percent;
mod result;
mod weight;

pub use glob::glob_match;
pub use name::{InvalidProbeName, ProbeName};
pub use outcome::{ErrorClass, Outcome, ProbeKind, State};
pub use percent::{InvalidPercent, Percent};
pub use result::{CertStatus, CheckResult};
pub use weight::{InvalidWeight, Weight};
