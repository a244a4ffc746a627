//! `upledger reload`: the running daemon reloads its configuration (as on SIGHUP, but through
//! the socket, so the answer comes back): exit 0 when the new configuration was taken, 2 with
//! every located problem when the daemon kept the running one, as `monit reload` tells.

use std::{os::unix::net::UnixStream, path::Path};

use super::{Exit, client};
use crate::{api::socket::Request, config};

/// Asks the daemon named by the main file to reload, and prints how it went.
pub(super) fn reload(config_path: &Path) -> anyhow::Result<Exit> {
    let socket = config::socket_path(config_path);
    let Ok(mut stream) = UnixStream::connect(&socket) else {
        eprintln!(
            "error: no daemon answers on {}; nothing to reload (`upledger validate` checks the files)",
            socket.display()
        );
        return Ok(Exit::Usage);
    };
    let answer = client::ask(&mut stream, &Request::Reload)?;
    if answer["accepted"] == true {
        let probes = answer["probes"].as_u64().unwrap_or(0);
        println!("configuration reloaded: {probes} probes scheduled");
        return Ok(Exit::Ok);
    }
    for problem in answer["problems"].as_array().into_iter().flatten() {
        eprintln!("{}", problem.as_str().unwrap_or_default());
    }
    eprintln!("reload rejected: the daemon keeps its running configuration");
    Ok(Exit::Usage)
}
