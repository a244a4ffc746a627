//! Outcomes of one check, the error classes of SPEC §2, and probe states.

use std::fmt;

use serde::{Deserialize, Serialize};

/// What one check found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The target answered as expected, in time.
    Up,
    /// The target answered as expected but slower than `degraded_after`; still available.
    Degraded,
    /// The check failed; the result carries an [`ErrorClass`].
    Down,
    /// No evidence either way: the check failed while the monitor's own connectivity (the
    /// sentinel probe) was down, or for a cause of the monitor's own (no file descriptor
    /// left), so the failure is not the target's (SPEC §3).
    Unknown,
}

impl Outcome {
    /// The lowercase name used in JSON, tables and the ledger.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Up => "up",
            Outcome::Degraded => "degraded",
            Outcome::Down => "down",
            Outcome::Unknown => "unknown",
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a check failed (SPEC §2). Decided in one place: [`crate::probe::classify`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    /// The name did not resolve (NXDOMAIN, no records, resolver failure).
    Dns,
    /// The connection was refused or the address unreachable.
    Connect,
    /// The TLS handshake or certificate verification failed.
    Tls,
    /// No complete answer within the probe's timeout.
    Timeout,
    /// The HTTP status was not one of `expect_status`.
    HttpStatus,
    /// The answer arrived but did not match: body, `expect`, DNS answer or rcode.
    Assertion,
    /// The peer spoke something other than the expected protocol (or looped redirects).
    Protocol,
    /// Any other I/O failure (connection reset mid-answer, local resource limits).
    Io,
}

impl ErrorClass {
    /// The lowercase name used in JSON, tables and the ledger.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::Dns => "dns",
            ErrorClass::Connect => "connect",
            ErrorClass::Tls => "tls",
            ErrorClass::Timeout => "timeout",
            ErrorClass::HttpStatus => "http_status",
            ErrorClass::Assertion => "assertion",
            ErrorClass::Protocol => "protocol",
            ErrorClass::Io => "io",
        }
    }
}

impl fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The kind of check a probe runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProbeKind {
    /// An HTTP(S) request.
    Http,
    /// A TCP connect, optionally TLS and a send/expect exchange.
    Tcp,
    /// A DNS query.
    Dns,
}

impl ProbeKind {
    /// The lowercase name used in config files and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            ProbeKind::Http => "http",
            ProbeKind::Tcp => "tcp",
            ProbeKind::Dns => "dns",
        }
    }
}

impl fmt::Display for ProbeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A probe's confirmed state, which changes only after the configured thresholds (SPEC §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Confirmed available.
    Up,
    /// Available but slow.
    Degraded,
    /// Confirmed outage.
    Down,
    /// Inside a maintenance window.
    Maintenance,
    /// No evidence: not yet checked, daemon stopped, or the monitor itself offline.
    Unknown,
}

impl State {
    /// The lowercase name used in JSON and tables.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Up => "up",
            State::Degraded => "degraded",
            State::Down => "down",
            State::Maintenance => "maintenance",
            State::Unknown => "unknown",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
