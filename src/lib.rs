//! upledger: an uptime monitor whose ledger can prove availability against an SLA.
//!
//! Layers point one way; a module imports only from modules listed above it:
//!
//! - [`model`] — vocabulary (names, outcomes, error classes, results, exact percentages)
//! - [`config`] — files → validated [`config::Config`] or every diagnostic (file:line:col)
//! - [`probe`] — one check → [`model::CheckResult`] (HTTP, TCP, DNS)
//! - [`threshold`] — results → confirmed states and back-dated transitions (pure)
//! - [`ledger`] — durable results, markers and rollups in sled, behind a small synchronous API
//! - [`report`] — pure availability math: months, timelines, maintenance, exact SLA figures
//! - [`query`] — status, history, export and import answers, from the daemon or the ledger
//! - [`render`] — month reports written for people: table, CSV, Markdown, printable HTML
//! - [`evidence`] — the Merkle log, signed checkpoints and reports, bundles and `verify`
//! - [`alert`] — alert rules, the durable outbox's delivery to webhook and desktop channels
//! - [`replicate`] — results between locations over NATS JetStream (agents and coordinator)
//! - [`daemon`] — scheduler, single ledger writer, reload, lifecycle, systemd notification
//! - [`api`] — the unix admin socket the query commands talk to
//! - [`cli`] — the command line, the only place that uses `anyhow`

pub mod alert;
pub mod api;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod evidence;
pub mod ledger;
pub mod model;
pub mod probe;
pub mod query;
pub mod render;
pub mod replicate;
pub mod report;
pub mod threshold;

#[cfg(test)]
mod testing;
