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

/// Loads a configuration from a temporary folder holding the main file `main`, one probe
/// (`web`, TCP) and `files`: the configuration or its diagnostics, one a line.
#[cfg(test)]
pub(crate) fn load_in_folder(
    main: &str,
    files: &[(&str, &[u8])],
) -> (tempfile::TempDir, Result<Config, String>) {
    let dir = tempfile::tempdir().expect("a temporary folder");
    std::fs::create_dir_all(dir.path().join("probes.d")).expect("a probes folder");
    std::fs::write(dir.path().join("upledger.toml"), main).expect("the main file");
    std::fs::write(
        dir.path().join("probes.d/p.toml"),
        "[[probe]]\nname = \"web\"\nkind = \"tcp\"\naddress = \"127.0.0.1:9\"\n",
    )
    .expect("a probe file");
    for (name, bytes) in files {
        std::fs::write(dir.path().join(name), bytes).expect("a file");
    }
    let loaded = load(&dir.path().join("upledger.toml")).map_err(|e| e.to_string());
    (dir, loaded)
}
