//! Desktop alerts over a private session D-Bus: `dbus-monitor` sees the daemon's
//! `org.freedesktop.Notifications.Notify` call with the alert's summary; with no bus at all the
//! daemon logs why once and keeps running.

use std::{
    process::Stdio,
    time::{Duration, Instant},
};

use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, Command},
};

use crate::support::{TestConfig, daemon::Daemon, tcp};

fn config() -> TestConfig {
    let config = TestConfig::new();
    config.main(
        r#"
[daemon]
ledger = "data/ledger"
socket = "data/upledger.sock"

[[channel]]
name = "desk"
kind = "desktop"
"#,
    );
    config.probes(
        "gone.toml",
        &format!(
            "[[probe]]\nname = \"gone\"\nkind = \"tcp\"\naddress = \"{}\"\ninterval = \"500ms\"\n\
             timeout = \"400ms\"\nfailure_threshold = 2\n",
            tcp::refused_addr()
        ),
    );
    config
}

/// Starts `dbus-daemon --session` on a socket in `dir`; returns it and the bus address.
async fn session_bus(dir: &std::path::Path) -> (Child, String) {
    let address = format!("unix:path={}", dir.join("bus").display());
    let bus = Command::new("dbus-daemon")
        .args(["--session", "--nofork", "--nopidfile"])
        .arg(format!("--address={address}"))
        .kill_on_drop(true)
        .spawn()
        .expect("dbus-daemon (Debian package dbus) is installed");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !dir.join("bus").exists() {
        assert!(Instant::now() < deadline, "the session bus never came up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (bus, address)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_down_alert_becomes_a_notify_call_on_the_session_bus() {
    let config = config();
    let (_bus, address) = session_bus(config.dir()).await;
    let mut monitor = Command::new("dbus-monitor")
        .arg("--address")
        .arg(&address)
        .arg("interface='org.freedesktop.Notifications',member='Notify'")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("dbus-monitor");
    let mut lines = BufReader::new(monitor.stdout.take().expect("stdout")).lines();
    tokio::time::sleep(Duration::from_millis(500)).await;

    let daemon = Daemon::start_with_env(
        &config.main_path(),
        &[("DBUS_SESSION_BUS_ADDRESS", address.as_str())],
    )
    .await;
    let seen = tokio::time::timeout(Duration::from_secs(20), async {
        let mut text = String::new();
        while let Ok(Some(line)) = lines.next_line().await {
            text.push_str(&line);
            text.push('\n');
            if text.contains("member=Notify") && text.contains("gone is DOWN") {
                return text;
            }
        }
        text
    })
    .await
    .unwrap_or_else(|_| panic!("no Notify call within 20 s:\n{}", daemon.log()));
    assert!(seen.contains("upledger: gone down"), "{seen}");
    assert!(seen.contains("gone is DOWN since"), "{seen}");
    assert_eq!(daemon.terminate().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_session_bus_the_daemon_says_why_once_and_goes_on() {
    let config = config();
    let missing = format!("unix:path={}", config.dir().join("no-bus-here").display());
    let daemon = Daemon::start_with_env(
        &config.main_path(),
        &[("DBUS_SESSION_BUS_ADDRESS", missing.as_str())],
    )
    .await;
    let log = daemon
        .wait_for_log("desktop notifications fail", Duration::from_secs(20))
        .await;
    assert!(
        log.contains("no-bus-here"),
        "the reason names the bus: {log}"
    );
    // Still probing and answering.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let status = daemon.cli(&["status", "--json"]).await;
    assert!(status.code <= 1, "{}", status.stderr);
    assert_eq!(
        daemon.log().matches("desktop notifications fail").count(),
        1,
        "said once, not per retry"
    );
    assert_eq!(daemon.terminate().await, 0);
}

/// Issue 13 item 2: without a bus the reason was logged once, but every retry of every alert
/// also logged "alert delivery failed; will retry" (57 warnings in 12 minutes). After several
/// attempts, the channel has one warning, and the alert is still pending (retried, not
/// dropped).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_session_bus_retries_add_no_warnings() {
    let config = config();
    let missing = format!("unix:path={}", config.dir().join("no-bus-here").display());
    let daemon = Daemon::start_with_env(
        &config.main_path(),
        &[("DBUS_SESSION_BUS_ADDRESS", missing.as_str())],
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let alert = loop {
        let alerts = daemon.cli(&["alerts", "--json"]).await;
        assert_eq!(alerts.code, 0, "{}", alerts.stderr);
        let alerts = alerts.json();
        let down = alerts
            .as_array()
            .and_then(|all| all.iter().find(|a| a["event"] == "down"))
            .cloned();
        if let Some(down) = down.filter(|d| d["attempts"].as_u64() >= Some(3)) {
            break down;
        }
        assert!(
            Instant::now() < deadline,
            "no third attempt within 30 s: {alerts:#}\n{}",
            daemon.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(alert["status"], "pending", "{alert:#}");
    let log = daemon.log();
    let warnings: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("WARN") && l.contains("desk"))
        .collect();
    assert_eq!(warnings.len(), 1, "one warning for the channel:\n{log}");
    assert_eq!(daemon.terminate().await, 0);
}
