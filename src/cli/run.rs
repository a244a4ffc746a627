//! `upledger run`: the daemon in the foreground (systemd `Type=notify`).

use std::path::Path;

use anyhow::Context;
use tokio_util::sync::CancellationToken;

use super::{Exit, report_config_error};
use crate::{
    api,
    daemon::{API_STOP_PATIENCE, Daemon, DaemonError},
};

pub(super) fn run(config_path: &Path) -> anyhow::Result<Exit> {
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
            shutdown.child_token(),
        ));
        let web = api::http::bind(daemon.config().daemon.listen)
            .await
            .map(|listener| {
                tokio::spawn(api::http::serve(
                    listener,
                    api::http::HttpState::new(daemon.handle()),
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
