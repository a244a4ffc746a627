//! Stop means stop (issue 20 item 3): SIGTERM ends the daemon within a bounded time even while
//! the ledger cannot write, the results that could not be written are reported as lost, and the
//! next start labels the gap with its true cause.

use std::time::Duration;

use crate::{
    disk_full::healthz_until,
    support::{TestConfig, daemon::Daemon, free_port, tcp, tmpfs::Tmpfs},
};

/// Two fast TCP probes, the ledger on `ledger`, the HTTP listener on `port`.
fn fast_config(ledger: &std::path::Path, port: u16, pong: std::net::SocketAddr) -> TestConfig {
    let config = TestConfig::new();
    config.main(&format!(
        "[daemon]\nledger = \"{}\"\nsocket = \"data/upledger.sock\"\nlisten = \"127.0.0.1:{port}\"\n",
        ledger.display()
    ));
    config.probes(
        "fast.toml",
        &format!(
            "[[probe]]\nname = \"cache\"\nkind = \"tcp\"\naddress = \"{pong}\"\ninterval = \"200ms\"\n\
             timeout = \"150ms\"\n\n[[probe]]\nname = \"db\"\nkind = \"tcp\"\naddress = \"{pong}\"\n\
             interval = \"200ms\"\ntimeout = \"150ms\"\n"
        ),
    );
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_on_a_full_disk_ends_within_the_bound() {
    let Some(disk) = Tmpfs::mount("8m") else {
        return;
    };
    let pong = tcp::pong().await;
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let config = fast_config(&disk.path().join("ledger"), port, pong.addr);
    let daemon = Daemon::start(&config.main_path()).await;
    healthz_until(
        &daemon,
        &base,
        Duration::from_secs(20),
        "a writable ledger",
        |h| h["ledger_writable"] == true,
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let filler = disk.fill();
    healthz_until(
        &daemon,
        &base,
        Duration::from_secs(30),
        "writes failing",
        |h| h["pending_results"].as_u64() > Some(10) && h["writes_failing_since"].is_string(),
    )
    .await;
    // Slow clients: requests begun and never finished, on the HTTP listener and the socket.
    let mut slow = Vec::new();
    for _ in 0..8 {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("connect");
        tokio::io::AsyncWriteExt::write_all(&mut stream, b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            .await
            .expect("write");
        slow.push(stream);
    }
    let log_path = config.dir().join("daemon-0.log");
    let stopped = daemon.terminate_within(Duration::from_secs(60)).await;
    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
    let (code, took) = stopped.unwrap_or_else(|| panic!("no exit 60 s after SIGTERM; log:\n{log}"));
    // The bound: `STOP_DEADLINE` (20 s) plus the API's 2 s, below `TimeoutStopSec=30s`.
    assert!(took < Duration::from_secs(23), "took {took:?}; log:\n{log}");
    assert_eq!(code, 1, "results were lost: not a clean stop; log:\n{log}");
    let line = log
        .lines()
        .find(|l| l.contains("stopped; results not written"))
        .unwrap_or_else(|| panic!("no stop line; log:\n{log}"));
    assert!(
        line.contains("cause: the ledger could not write") && line.contains("checked"),
        "{line}"
    );
    let lost: u64 = line
        .split("lost=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count: {line}"));
    assert!(lost > 10, "{line}");
    drop(slow);

    // Room again: the next start records the outage, and history labels the gap with it.
    std::fs::remove_file(&filler).expect("remove the filler");
    let daemon = Daemon::start(&config.main_path()).await;
    let log = daemon
        .wait_for_log(
            "the previous run could not write its ledger",
            Duration::from_secs(5),
        )
        .await;
    assert!(log.contains(&format!("lost={lost}")), "{log}");
    tokio::time::sleep(Duration::from_millis(600)).await;
    let history = daemon
        .cli(&["history", "cache", "--since", "5m", "--json"])
        .await;
    assert_eq!(history.code, 0, "{}", history.stderr);
    let history = history.json();
    let failures = history["write_failures"]
        .as_array()
        .expect("write_failures");
    assert_eq!(failures.len(), 1, "{history:#}");
    assert_eq!(failures[0]["lost"], lost, "{history:#}");
    assert!(failures[0]["first_lost"].is_string(), "{history:#}");
    let unknown = history["unknown"].as_array().expect("unknown");
    assert!(
        unknown.iter().any(|span| span["reason"] == "writes_failed"),
        "{history:#}"
    );
    let time = |v: &serde_json::Value| -> jiff::Timestamp {
        v.as_str().expect("a time").parse().expect("a timestamp")
    };
    let (from, to) = (time(&failures[0]["from"]), time(&failures[0]["to"]));
    assert!(
        unknown
            .iter()
            .all(|span| span["reason"] != "daemon_not_running"
                || time(&span["to"]) <= from
                || time(&span["from"]) >= to),
        "no part of the outage is called 'not running': {history:#}"
    );
    let text = daemon
        .cli(&["history", "cache", "--since", "5m"])
        .await
        .stdout;
    assert!(text.contains("ledger could not write"), "{text}");
    assert!(
        text.contains("(daemon running, ledger could not write)"),
        "{text}"
    );
    assert_eq!(
        daemon.terminate().await,
        0,
        "a clean stop: {}",
        std::fs::read_to_string(config.dir().join("daemon-1.log")).unwrap_or_default()
    );
}

/// The datagrams a daemon sends to its `NOTIFY_SOCKET`, with when they arrived.
type Notifications = std::sync::Arc<std::sync::Mutex<Vec<(std::time::Instant, String)>>>;

/// Binds a notify socket at `path` and collects what arrives.
fn listen_for_notifications(path: &std::path::Path) -> Notifications {
    let socket = tokio::net::UnixDatagram::bind(path).expect("bind the notify socket");
    let received = Notifications::default();
    let collected = std::sync::Arc::clone(&received);
    tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        while let Ok(n) = socket.recv(&mut buf).await {
            let text = String::from_utf8_lossy(&buf[..n]).into_owned();
            collected
                .lock()
                .expect("lock")
                .push((std::time::Instant::now(), text));
        }
    });
    received
}

/// Watchdog pings (`WATCHDOG=1`) received after `since`.
fn pings_after(received: &Notifications, since: std::time::Instant) -> usize {
    received
        .lock()
        .expect("lock")
        .iter()
        .filter(|(at, text)| *at > since && text.lines().any(|l| l == "WATCHDOG=1"))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watchdog_is_pinged_while_results_are_recorded_or_held() {
    let Some(disk) = Tmpfs::mount("8m") else {
        return;
    };
    let pong = tcp::pong().await;
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let config = fast_config(&disk.path().join("ledger"), port, pong.addr);
    let notify = config.dir().join("notify.sock");
    let received = listen_for_notifications(&notify);
    // A 1 s watchdog: pings every 500 ms while all is well.
    let daemon = Daemon::start_with_env(
        &config.main_path(),
        &[
            ("NOTIFY_SOCKET", notify.to_str().expect("utf-8 path")),
            ("WATCHDOG_USEC", "1000000"),
        ],
    )
    .await;
    let started = std::time::Instant::now();
    tokio::time::sleep(Duration::from_millis(1_600)).await;
    assert!(
        pings_after(&received, started) >= 2,
        "pinged while writes work: {:?}",
        received.lock().expect("lock")
    );

    let filler = disk.fill();
    healthz_until(
        &daemon,
        &base,
        Duration::from_secs(30),
        "writes failing",
        |h| h["writes_failing_since"].is_string(),
    )
    .await;
    // Results are held for writing (none dropped): the daemon is not stuck, and a restart
    // would throw them away, so pings go on.
    let failing = std::time::Instant::now();
    tokio::time::sleep(Duration::from_millis(1_600)).await;
    assert!(
        pings_after(&received, failing) >= 2,
        "pinged while results are held; log:\n{}",
        daemon.log()
    );
    assert!(!daemon.log().contains("systemd watchdog pings stop"));

    std::fs::remove_file(&filler).expect("remove the filler");
    healthz_until(
        &daemon,
        &base,
        Duration::from_secs(40),
        "writes resumed",
        |h| h["ledger_writable"] == true && h["pending_results"] == 0,
    )
    .await;
    let recovered = std::time::Instant::now();
    tokio::time::sleep(Duration::from_millis(1_600)).await;
    assert!(
        pings_after(&received, recovered) >= 2,
        "pinged once writes work again; log:\n{}",
        daemon.log()
    );
    // The outage is on record once writes work again, in the same run.
    let history = daemon
        .cli(&["history", "cache", "--since", "5m", "--json"])
        .await
        .json();
    let failures = history["write_failures"]
        .as_array()
        .expect("write_failures");
    assert_eq!(failures.len(), 1, "{history:#}");
    assert_eq!(failures[0]["lost"], 0, "nothing dropped: {history:#}");
    assert_eq!(daemon.terminate().await, 0);
}
