//! A real `upledger run` process for tests: start, wait until it answers, signal, kill -9.

use std::{
    path::{Path, PathBuf},
    process::Stdio,
    time::{Duration, Instant},
};

use super::{Output, upledger};

/// A running daemon; killed (SIGKILL) when dropped.
pub struct Daemon {
    child: tokio::process::Child,
    config: PathBuf,
    log: PathBuf,
}

impl Daemon {
    /// Starts `upledger run --config <config>` and waits until its socket answers `status`.
    /// Its stderr goes to `<config dir>/daemon-<n>.log`.
    pub async fn start(config: &Path) -> Daemon {
        Self::start_with_env(config, &[]).await
    }

    /// Like [`Daemon::start`], with extra environment variables.
    pub async fn start_with_env(config: &Path, env: &[(&str, &str)]) -> Daemon {
        Self::spawn(config, env, &[], None).await
    }

    /// Like [`Daemon::start`], with extra environment variables and without `removed` ones.
    pub async fn start_with(config: &Path, env: &[(&str, &str)], removed: &[&str]) -> Daemon {
        Self::spawn(config, env, removed, None).await
    }

    /// Like [`Daemon::start`], under an open-file limit of `open_files`, soft and hard alike
    /// (so the daemon cannot raise it), set by the shell that then becomes the daemon.
    pub async fn start_with_open_files(config: &Path, open_files: u64) -> Daemon {
        Self::spawn(config, &[], &[], Some(open_files)).await
    }

    async fn spawn(
        config: &Path,
        env: &[(&str, &str)],
        removed: &[&str],
        open_files: Option<u64>,
    ) -> Daemon {
        let dir = config.parent().expect("config dir");
        let n = (0..)
            .find(|n| !dir.join(format!("daemon-{n}.log")).exists())
            .expect("a free log name");
        let log = dir.join(format!("daemon-{n}.log"));
        let file = std::fs::File::create(&log).expect("log file");
        let mut command = super::binary_command(open_files);
        command
            .arg("--config")
            .arg(config)
            .arg("run")
            .env_remove("NOTIFY_SOCKET")
            .env_remove("WATCHDOG_USEC")
            .env_remove("WATCHDOG_PID")
            .env("UPLEDGER_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(file))
            .kill_on_drop(true);
        for key in removed {
            command.env_remove(key);
        }
        for (key, value) in env {
            command.env(key, value);
        }
        let child = command.spawn().expect("spawn upledger run");
        let daemon = Daemon {
            child,
            config: config.to_owned(),
            log,
        };
        daemon.wait_until_answering().await;
        daemon
    }

    async fn wait_until_answering(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        // Until the socket exists, a query would open the ledger itself and race the daemon.
        let socket = self
            .config
            .parent()
            .expect("dir")
            .join("data/upledger.sock");
        while !socket.exists() {
            assert!(Instant::now() < deadline, "no socket; log:\n{}", self.log());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        loop {
            let status = self.cli(&["status", "--json"]).await;
            if status.code <= 1 && status.json()["daemon_running"] == true {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "daemon did not answer: {}\nlog:\n{}",
                status.stderr,
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Runs a CLI command against this daemon's configuration.
    pub async fn cli(&self, args: &[&str]) -> Output {
        upledger()
            .arg("--config")
            .arg(&self.config)
            .args(args.iter().copied())
            .run()
            .await
    }

    /// The daemon's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id().expect("running")
    }

    /// Sends a signal by name (`HUP`, `TERM`).
    pub fn signal(&self, name: &str) {
        let status = std::process::Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.pid().to_string())
            .status()
            .expect("kill");
        assert!(status.success());
    }

    /// SIGKILL, and waits for the process to be gone.
    pub async fn kill9(mut self) {
        self.child.start_kill().expect("kill -9");
        self.child.wait().await.expect("wait");
    }

    /// SIGTERM, then the exit code (within 20 s).
    pub async fn terminate(mut self) -> i32 {
        self.signal("TERM");
        let status = tokio::time::timeout(Duration::from_secs(20), self.child.wait())
            .await
            .expect("daemon stops within 20 s after SIGTERM")
            .expect("wait");
        status.code().unwrap_or(-1)
    }

    /// SIGTERM, then the exit code and how long the exit took, or `None` if it took longer
    /// than `patience` (the process is then killed when dropped).
    pub async fn terminate_within(mut self, patience: Duration) -> Option<(i32, Duration)> {
        let sent = Instant::now();
        self.signal("TERM");
        let status = tokio::time::timeout(patience, self.child.wait())
            .await
            .ok()?;
        Some((status.expect("wait").code().unwrap_or(-1), sent.elapsed()))
    }

    /// Waits until `predicate` holds for the log, or panics after `timeout`.
    pub async fn wait_for_log(&self, what: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let log = self.log();
            if log.contains(what) {
                return log;
            }
            assert!(
                Instant::now() < deadline,
                "log never showed {what:?}:\n{log}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
