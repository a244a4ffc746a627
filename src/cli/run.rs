//! `upledger run`: the daemon in the foreground (systemd `Type=notify`).

use std::path::Path;

use anyhow::Context;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::{Exit, report_config_error};
use crate::{
    api::{self, limits::ListenerCaps},
    daemon::{Daemon, DaemonError},
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
        let _ = socket.await;
        if let Some(web) = web {
            let _ = web.await;
        }
        outcome?;
        Ok(Exit::Ok)
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
