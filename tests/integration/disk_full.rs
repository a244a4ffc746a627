//! A full disk under the ledger (issue 13 item 3): checks go on and `/healthz` says what is
//! held and dropped; once there is room again the daemon writes by itself, the held results
//! first, without a restart, and stops cleanly.
//!
//! The ledger lives on a real tmpfs of a few MiB, filled with a filler file. Mounting needs
//! root: without it (or when the mount fails) the test says so and passes without running.

use std::{
    collections::{HashMap, HashSet},
    time::{Duration, Instant},
};

use jiff::Timestamp;

use crate::support::{TestConfig, daemon::Daemon, free_port, http, tcp, tmpfs::Tmpfs, upledger};

/// `GET /healthz`: status code and body.
pub(crate) async fn healthz(base: &str) -> (u16, serde_json::Value) {
    let response = reqwest::get(format!("{base}/healthz"))
        .await
        .expect("the listener answers");
    let code = response.status().as_u16();
    let body = response.text().await.expect("a body");
    let json = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
    (code, json)
}

/// Polls `/healthz` until `done` holds for its body, or panics after `timeout`.
pub(crate) async fn healthz_until(
    daemon: &Daemon,
    base: &str,
    timeout: Duration,
    what: &str,
    done: impl Fn(&serde_json::Value) -> bool,
) -> (u16, serde_json::Value) {
    let deadline = Instant::now() + timeout;
    loop {
        let (code, health) = healthz(base).await;
        if done(&health) {
            return (code, health);
        }
        assert!(
            Instant::now() < deadline,
            "/healthz never showed {what}: {health:#}\nlog:\n{}",
            daemon.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub(crate) fn count(health: &serde_json::Value, key: &str) -> u64 {
    health[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} is a count: {health:#}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_holds_results_and_the_daemon_writes_again_by_itself() {
    let Some(disk) = Tmpfs::mount("8m") else {
        return;
    };
    let pong = tcp::pong().await;
    let web = http::start(http::HttpOptions::plain()).await;
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let ledger = disk.path().join("ledger");
    let config = TestConfig::new();
    config.main(&format!(
        r#"
[daemon]
ledger = "{ledger}"
socket = "data/upledger.sock"
listen = "127.0.0.1:{port}"
"#,
        ledger = ledger.display()
    ));
    config.probes(
        "fast.toml",
        &format!(
            r#"
[[probe]]
name = "cache"
kind = "tcp"
address = "{pong}"
interval = "200ms"
timeout = "150ms"

[[probe]]
name = "web"
kind = "http"
url = "{web}"
interval = "200ms"
timeout = "150ms"
"#,
            pong = pong.addr,
            web = web.url("/ok"),
        ),
    );
    let daemon = Daemon::start(&config.main_path()).await;
    let (code, health) = healthz_until(
        &daemon,
        &base,
        Duration::from_secs(20),
        "a writable ledger",
        |h| h["ledger_writable"] == true,
    )
    .await;
    assert_eq!(code, 200, "{health:#}");
    assert_eq!(count(&health, "dropped_results"), 0);

    // Fill the disk: the next group commits fail, and checks go on.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let filled_at = Timestamp::now();
    let filler = disk.fill();
    let (code, failing) = healthz_until(
        &daemon,
        &base,
        Duration::from_secs(30),
        "writes failing",
        // The health check's own small write may fail a moment before the recorder's next
        // group commit does (and marks results as held): wait for both.
        |h| {
            h["ledger_writable"] == false
                && h["pending_results"].as_u64() > Some(0)
                && h["writes_failing_since"].is_string()
        },
    )
    .await;
    assert_eq!(code, 503, "{failing:#}");
    assert!(
        failing["last_write_error"]
            .as_str()
            .is_some_and(|e| e.contains("No space left") || e.contains("StorageFull")),
        "{failing:#}"
    );
    assert!(failing["writes_failing_since"].is_string(), "{failing:#}");
    assert!(
        failing["problems"].as_array().is_some_and(|p| p
            .iter()
            .any(|p| p.as_str().is_some_and(|p| p.contains("held in memory")))),
        "{failing:#}"
    );
    // Checks go on: more results wait in memory a moment later.
    let before = count(&failing, "pending_results");
    let (_, later) = healthz_until(
        &daemon,
        &base,
        Duration::from_secs(20),
        "more held results",
        |h| h["pending_results"].as_u64() > Some(before + 10),
    )
    .await;
    assert_eq!(later["ledger_writable"], false, "{later:#}");
    let held_at = Timestamp::now();
    let held = count(&later, "pending_results");
    // Space alone does not do it for sled: the daemon must reopen the ledger itself.
    std::fs::remove_file(&filler).expect("remove the filler");
    let (code, recovered) = healthz_until(
        &daemon,
        &base,
        Duration::from_secs(40),
        "writes resumed and nothing held",
        |h| h["ledger_writable"] == true && h["pending_results"] == 0,
    )
    .await;
    assert_eq!(code, 200, "{recovered:#}");
    assert!(count(&recovered, "ledger_reopened") >= 1, "{recovered:#}");
    let dropped = count(&recovered, "dropped_results");
    // Far below the bound: nothing is dropped.
    assert_eq!(dropped, 0, "{recovered:#}");
    let recovered_at = Timestamp::now();
    tokio::time::sleep(Duration::from_millis(600)).await;
    let status = daemon.cli(&["status", "--json"]).await.json();
    let checked: u64 = status["probes"]
        .as_array()
        .expect("probes")
        .iter()
        .map(|p| {
            p["checks_since_start"]
                .as_u64()
                .expect("checks_since_start")
        })
        .sum();

    let log = daemon.log();
    assert!(
        log.contains("cannot write results; holding them in memory and retrying"),
        "{log}"
    );
    assert!(log.contains("ledger reopened after a write error"), "{log}");
    assert!(log.contains("the ledger takes writes again"), "{log}");
    assert_eq!(daemon.terminate().await, 0, "a clean stop");

    // Everything is in the ledger: the results held during the outage, those after it, each
    // once, and no fewer than were checked before the last look (none was dropped).
    let exported = upledger()
        .arg("--config")
        .arg(config.main_path())
        .arg("export")
        .run()
        .await;
    assert_eq!(exported.code, 0, "{}", exported.stderr);
    let lines: Vec<serde_json::Value> = exported
        .stdout
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON line"))
        .collect();
    let at = |line: &serde_json::Value| -> Timestamp {
        line["at"]
            .as_str()
            .expect("at")
            .parse()
            .expect("a timestamp")
    };
    let mut seen = HashSet::new();
    for line in &lines {
        assert!(
            seen.insert((line["probe"].to_string(), at(line))),
            "stored twice: {line}"
        );
    }
    assert!(
        lines.len() as u64 + dropped >= checked,
        "{} exported + {dropped} dropped < {checked} checked",
        lines.len()
    );
    let mut outage: HashMap<String, usize> = HashMap::new();
    let mut after = 0;
    for line in &lines {
        let when = at(line);
        // The batch that failed first may hold results from just before the fill.
        if when >= filled_at - Duration::from_secs(1) && when <= held_at {
            *outage
                .entry(line["probe"].as_str().expect("probe").to_owned())
                .or_default() += 1;
        }
        if when > recovered_at {
            after += 1;
        }
    }
    let during: usize = outage.values().sum();
    assert!(
        during as u64 >= held,
        "{held} results were held at {held_at}, only {during} stored from the fill to then: {outage:?}"
    );
    assert!(
        outage.contains_key("cache") && outage.contains_key("web"),
        "{outage:?}"
    );
    assert!(after > 0, "results after the recovery are written too");
    let stop_log = std::fs::read_to_string(config.dir().join("daemon-0.log")).unwrap_or_default();
    assert!(
        stop_log.contains("stopped; every result is written"),
        "{stop_log}"
    );
}
