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
    healthz_until(&daemon, &base, Duration::from_secs(20), "a writable ledger", |h| {
        h["ledger_writable"] == true
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let _filler = disk.fill();
    healthz_until(&daemon, &base, Duration::from_secs(30), "writes failing", |h| {
        h["pending_results"].as_u64() > Some(10) && h["writes_failing_since"].is_string()
    })
    .await;
    tokio::time::sleep(Duration::from_secs(std::env::var("HOLD_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(0))).await;
    // Slow clients: requests begun and never finished, on the HTTP listener and the socket.
    let mut slow = Vec::new();
    for _ in 0..8 {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.expect("connect");
        tokio::io::AsyncWriteExt::write_all(&mut stream, b"GET /healthz HTTP/1.1\r\nHost: x\r\n").await.expect("write");
        slow.push(stream);
    }
    let log_path = config.dir().join("daemon-0.log");
    let stopped = daemon.terminate_within(Duration::from_secs(60)).await;
    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
    let (code, took) = stopped.unwrap_or_else(|| panic!("no exit 60 s after SIGTERM; log:\n{log}"));
    eprintln!("exit {code} after {took:?}\n{log}");
    assert!(took < Duration::from_secs(25), "took {took:?}; log:\n{log}");
}
