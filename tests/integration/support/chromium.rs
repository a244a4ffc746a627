//! Headless Chromium (Debian package chromium) as the tests' browser: no network beyond the
//! loopback pages it is given, a profile folder of the test's own, and the real clock.

use std::{path::Path, process::Stdio, time::Duration};

/// `chromium --headless …` with the flags that keep it off the network (without the
/// background-networking ones it reaches for Google's hosts at every start), a profile in
/// `profile`, and `extra` then `target` as arguments. Run it with [`run`].
pub fn command(profile: &Path, extra: &[String], target: &str) -> tokio::process::Command {
    let mut command = tokio::process::Command::new("chromium");
    command
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(target)
        // Chromium is only the viewer here; under `faketime` (CI runs the suite on chosen
        // dates) its zygote hangs, so it keeps the real clock.
        .env_remove("LD_PRELOAD")
        .env_remove("FAKETIME")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// Runs a [`command`] to its end, within `patience`.
pub async fn run(mut command: tokio::process::Command, patience: Duration) -> std::process::Output {
    tokio::time::timeout(patience, command.output())
        .await
        .unwrap_or_else(|_| panic!("chromium finishes within {patience:?}"))
        .expect("chromium (Debian package chromium) is installed")
}
