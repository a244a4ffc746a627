//! A real `nats-server` (Debian's package; `.ci/run` installs it) on a loopback port, with
//! or without JetStream, stopped and started again on the same port and store.

use std::{
    path::{Path, PathBuf},
    process::Stdio,
    time::{Duration, Instant},
};

use tokio::process::{Child, Command};

/// A running (or stopped) NATS server.
pub struct Nats {
    child: Option<Child>,
    port: u16,
    store: PathBuf,
    jetstream: bool,
}

impl Nats {
    /// Starts a server on a free port, keeping JetStream's files under `dir`.
    pub async fn start(dir: &Path, jetstream: bool) -> Nats {
        let mut nats = Nats {
            child: None,
            port: super::free_port(),
            store: dir.join("nats"),
            jetstream,
        };
        nats.resume().await;
        nats
    }

    /// `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Kills the server (as a crash or an outage would).
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.start_kill().expect("kill nats-server");
            child.wait().await.expect("wait nats-server");
        }
    }

    /// Starts it again on the same port and store (with JetStream now, if `jetstream`).
    pub async fn restart(&mut self, jetstream: bool) {
        self.stop().await;
        self.jetstream = jetstream;
        self.resume().await;
    }

    async fn resume(&mut self) {
        let mut command = Command::new(nats_server());
        command
            .args(["-a", "127.0.0.1", "-p", &self.port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        if self.jetstream {
            command.arg("-js").arg("-sd").arg(&self.store);
        }
        let child = command.spawn().unwrap_or_else(|e| {
            panic!("cannot start nats-server (install Debian's nats-server; .ci/run does): {e}")
        });
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while tokio::net::TcpStream::connect(("127.0.0.1", self.port))
            .await
            .is_err()
        {
            assert!(Instant::now() < deadline, "nats-server did not listen");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// The server binary: on PATH, or where Debian puts it (`/usr/sbin`, not on every PATH).
fn nats_server() -> PathBuf {
    let sbin = PathBuf::from("/usr/sbin/nats-server");
    if sbin.exists() {
        sbin
    } else {
        PathBuf::from("nats-server")
    }
}
