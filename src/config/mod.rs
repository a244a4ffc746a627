//! Configuration: the main file and every `probes.d/*.toml`, parsed with spans and validated
//! into typed values, or every problem found, each with file, line and column.
//! May use `model`.

mod diagnostic;
mod load;
mod main_file;
mod probe;
mod reader;
mod source;
mod spec;

pub use diagnostic::{ConfigError, Diagnostic, Diagnostics};
pub use load::{SYSTEM_CONFIG, load, locate, socket_path};
pub use spec::*;
