//! upledger: an uptime monitor whose ledger can prove availability against an SLA.
//!
//! Layers point one way; a module imports only from modules listed above it:
//!
//! - [`model`] — vocabulary (names, outcomes, error classes, results, exact percentages)
//! - [`config`] — files → validated [`config::Config`] or every diagnostic (file:line:col)
//! - [`probe`] — one check → [`model::CheckResult`] (HTTP, TCP, DNS)
//! - [`threshold`] — results → confirmed states and back-dated transitions (pure)
//! - [`cli`] — the command line, the only place that uses `anyhow`

pub mod cli;
pub mod config;
pub mod model;
pub mod probe;
pub mod threshold;
