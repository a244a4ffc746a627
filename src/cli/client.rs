//! Where query commands get their answers: the running daemon's socket, or — when no daemon
//! answers — the ledger opened directly (sled admits one process at a time).

use std::{
    io::{BufRead, BufReader, Write},
    os::unix::net::UnixStream,
    path::Path,
};

use anyhow::{Context, anyhow, bail};

use super::load_or_report;
use crate::{
    api::socket::Request,
    config::{self, Config},
    ledger::{Ledger, LedgerError},
};

/// Either a connection to the daemon, or the configuration and the ledger itself.
pub(super) enum Source {
    /// The daemon answers on its socket.
    Daemon(UnixStream),
    /// No daemon runs; this process opened the ledger.
    Ledger(Box<Config>, Box<Ledger>),
}

/// Connects to the daemon named by the main file; when none answers, loads the whole
/// configuration (`None` after printing its problems) and opens the ledger.
pub(super) fn connect(config_path: &Path) -> anyhow::Result<Option<Source>> {
    let socket = config::socket_path(config_path);
    if let Ok(stream) = UnixStream::connect(&socket) {
        return Ok(Some(Source::Daemon(stream)));
    }
    let Some(config) = load_or_report(config_path) else {
        return Ok(None);
    };
    match Ledger::open(&config.daemon.ledger) {
        Ok(ledger) => Ok(Some(Source::Ledger(Box::new(config), Box::new(ledger)))),
        Err(e @ LedgerError::Locked { .. }) => Err(anyhow!(
            "{e}; no daemon answers on {} (is the socket path in the config the daemon's?)",
            config.daemon.socket.display()
        )),
        Err(e) => Err(e.into()),
    }
}

/// Sends `request` and returns the `ok` value of the one-line answer.
pub(super) fn ask(stream: &mut UnixStream, request: &Request) -> anyhow::Result<serde_json::Value> {
    send(stream, request)?;
    let mut line = String::new();
    BufReader::new(&*stream)
        .read_line(&mut line)
        .context("reading the daemon's answer")?;
    let mut answer: serde_json::Value =
        serde_json::from_str(&line).context("the daemon's answer is not JSON")?;
    if let Some(error) = answer.get("error").and_then(|e| e.as_str()) {
        bail!("{error}");
    }
    answer
        .get_mut("ok")
        .map(serde_json::Value::take)
        .ok_or_else(|| anyhow!("the daemon's answer has neither ok nor error"))
}

/// Writes the request line.
pub(super) fn send(stream: &mut UnixStream, request: &Request) -> anyhow::Result<()> {
    let mut line = serde_json::to_string(request)?;
    line.push('\n');
    stream
        .write_all(line.as_bytes())
        .context("sending the request to the daemon")
}
