//! Configuration: the main file and every `probes.d/*.toml`, parsed with spans and validated
//! into typed values, or every problem found, each with file, line and column.
//! May use `model`.

mod credits;
mod diagnostic;
mod load;
mod main_file;
mod normalised;
mod page;
mod probe;
mod reader;
mod replication;
mod source;
mod spec;

pub use diagnostic::{ConfigError, Diagnostic, Diagnostics};
pub use load::{SYSTEM_CONFIG, load, locate, socket_path};
pub use normalised::{
    NORMALISED_VERSION, NormalisedConfig, NormalisedCredit, NormalisedDowntimeUnit,
    NormalisedError, NormalisedEvidence, NormalisedLatency, NormalisedLatencyKind,
    NormalisedLowerBound, NormalisedMaintenance, NormalisedMode, NormalisedPolicy, NormalisedProbe,
    NormalisedSla, NormalisedWhen,
};
pub use replication::majority;
pub use spec::*;

#[cfg(test)]
pub(crate) use normalised::tests::rich_config;
