//! `upledger validate`: load every config file and report all problems at once.

use std::path::Path;

use super::{Exit, report_config_error};
use crate::config;

/// Validates the configuration at `path`; prints a summary or every problem.
pub(super) fn run(path: &Path) -> Exit {
    match config::load(path) {
        Ok(config) => {
            // Warnings do not make the configuration invalid: printed, and the exit stays 0.
            for warning in config.warnings() {
                eprintln!("warning: {warning}");
            }
            let enabled = config.probes.iter().filter(|p| p.enabled).count();
            println!(
                "{}: ok — {} probe{} ({} enabled), {} channel{}, {} SLA{}, {} maintenance window{}",
                path.display(),
                config.probes.len(),
                plural(config.probes.len()),
                enabled,
                config.channels.len(),
                plural(config.channels.len()),
                config.slas.len(),
                plural(config.slas.len()),
                config.maintenance.len(),
                plural(config.maintenance.len()),
            );
            Exit::Ok
        }
        Err(error) => {
            report_config_error(&error);
            Exit::Usage
        }
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}
