//! `upledger run`: the daemon in the foreground (systemd `Type=notify`).

use std::path::Path;

use anyhow::Context;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::{Exit, report_config_error};
use crate::{
    api::{self, limits::ListenerCaps},
    daemon::{API_STOP_PATIENCE, Daemon, DaemonError},
};

pub(super) fn run(config_path: &Path) -> anyhow::Result<Exit> {
    let caps = raise_open_file_limit();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let outcome = runtime.block_on(async {
        let daemon = match Daemon::start(config_path).await {
            Ok(daemon) => daemon,
            Err(DaemonError::Config(error)) => {
                report_config_error(&error);
                return Ok(Exit::Usage);
            }
            Err(error) => return Err(error.into()),
        };
        let socket_path = daemon.config().daemon.socket.clone();
        let listener = api::socket::bind(&socket_path)?;
        if let Some(group) = &daemon.config().daemon.socket_group {
            api::socket::set_group(&socket_path, group.gid)?;
        }
        let shutdown = CancellationToken::new();
        let socket = tokio::spawn(api::socket::serve(
            listener,
            socket_path,
            daemon.handle(),
            caps.socket,
            shutdown.child_token(),
        ));
        let web = api::http::bind(daemon.config().daemon.listen)
            .await
            .map(|listener| {
                tokio::spawn(api::http::serve(
                    listener,
                    api::http::HttpState::new(daemon.handle()),
                    caps.http,
                    shutdown.child_token(),
                ))
            });
        let outcome = daemon.run(shutdown.clone()).await;
        shutdown.cancel();
        // Requests under way get a moment; a client that never finishes its request would
        // otherwise hold the stop forever (graceful shutdown waits for every connection).
        let api_done = tokio::time::Instant::now() + API_STOP_PATIENCE;
        for task in std::iter::once(socket).chain(web) {
            if tokio::time::timeout_at(api_done, task).await.is_err() {
                tracing::warn!(patience = ?API_STOP_PATIENCE, "connections still open at stop are dropped");
            }
        }
        match outcome {
            Ok(()) => Ok(Exit::Ok),
            // Logged already, with what was lost: a stop that lost results is no clean stop.
            Err(DaemonError::Unwritten { .. }) => Ok(Exit::Failed),
            Err(error) => Err(error.into()),
        }
    });
    // `Daemon::run` has written every result and the stop marker, and the API tasks have
    // ended. What may still run is a system-resolver lookup (getaddrinfo on a blocking
    // thread) that a check's timeout gave up on and that can hang for minutes; dropping the
    // runtime would wait for it, delaying SIGTERM. Leave it to the process exit.
    runtime.shutdown_background();
    outcome
}

/// Raises the soft open-file limit to the hard one before anything opens a file, logs both,
/// and gives the listeners their share of it (see [`api::limits`]).
fn raise_open_file_limit() -> ListenerCaps {
    match api::limits::raise_open_file_limit() {
        Ok(limit) => {
            let hard = limit
                .hard
                .map_or_else(|| "unlimited".to_owned(), |hard| hard.to_string());
            info!(soft = limit.soft, hard = %hard, started_with = limit.started_with, "open-file limit");
            ListenerCaps::for_open_files(limit.soft)
        }
        Err(e) => {
            warn!(error = %e, "keeping the open-file limit the daemon was started with");
            ListenerCaps::current()
        }
    }
}
