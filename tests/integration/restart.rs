//! Restarts of the daemon must not change verdicts (SPEC §3): a restart shorter than
//! `stale_after` neither splits an outage nor moves its start, while a longer one is a gap that
//! breaks the run, after which the failure threshold applies anew.

use std::{
    net::SocketAddr,
    time::{Duration, Instant},
};

use jiff::Timestamp;

use crate::support::{TestConfig, daemon::Daemon, tcp, webhook::Receiver};

/// A probe of a refused loopback port checked every second; an outage is confirmed after three
/// failures, and a result stands for `stale_after`. Alerts go to `receiver` (so the outbox
/// holds them; whether they arrive does not matter here).
fn refused_probe(stale_after: &str, receiver: &Receiver) -> TestConfig {
    probe_of(tcp::refused_addr(), stale_after, receiver)
}

/// [`refused_probe`] of `address`.
fn probe_of(address: SocketAddr, stale_after: &str, receiver: &Receiver) -> TestConfig {
    let config = TestConfig::new();
    config.main(&format!(
        "[daemon]\nledger = \"data/ledger\"\nsocket = \"data/upledger.sock\"\n\n\
         [[channel]]\nname = \"ops\"\nkind = \"webhook\"\nurl = \"{}\"\n",
        receiver.url()
    ));
    config.probes(
        "p.toml",
        &format!(
            "[[probe]]\nname = \"gone\"\nkind = \"tcp\"\naddress = \"{}\"\ninterval = \"1s\"\n\
             timeout = \"500ms\"\nfailure_threshold = 3\nstale_after = \"{stale_after}\"\n",
            address
        ),
    );
    config
}

/// The start times of the probe's results so far, oldest first.
async fn result_times(daemon: &Daemon) -> Vec<Timestamp> {
    let history = daemon
        .cli(&["history", "gone", "--since", "1h", "--json"])
        .await;
    assert_eq!(history.code, 0, "{}", history.stderr);
    history.json()["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| r["at"].as_str().expect("at").parse().expect("timestamp"))
        .collect()
}

/// Waits until the daemon has recorded at least `count` results of the probe in all.
async fn wait_for_results(daemon: &Daemon, count: usize) -> Vec<Timestamp> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let times = result_times(daemon).await;
        if times.len() >= count {
            return times;
        }
        assert!(
            Instant::now() < deadline,
            "only {} results of {count}:\n{}",
            times.len(),
            daemon.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `status --json`'s entry of the probe.
async fn status(daemon: &Daemon) -> serde_json::Value {
    let status = daemon.cli(&["status", "--json"]).await;
    status.json()["probes"][0].clone()
}

/// The month (`YYYY-MM`, UTC) of `at`: reports of the month the outage began in, whatever the
/// date the test runs on.
fn month_of(at: Timestamp) -> String {
    at.strftime("%Y-%m").to_string()
}

/// The `down` alerts stored in the outbox, oldest first.
async fn down_alerts(daemon: &Daemon) -> Vec<serde_json::Value> {
    alerts_of(daemon, "down").await
}

/// The alerts of `event` stored in the outbox, oldest first.
async fn alerts_of(daemon: &Daemon, event: &str) -> Vec<serde_json::Value> {
    let alerts = daemon.cli(&["alerts", "--json"]).await;
    assert_eq!(alerts.code, 0, "{}", alerts.stderr);
    let mut downs: Vec<serde_json::Value> = alerts
        .json()
        .as_array()
        .expect("alert lines")
        .iter()
        .filter(|line| line["event"] == event)
        .map(|line| line["alert"].clone())
        .collect();
    downs.reverse();
    downs
}

fn ts(value: &serde_json::Value) -> Timestamp {
    value
        .as_str()
        .unwrap_or_else(|| panic!("not a timestamp: {value}"))
        .parse()
        .expect("timestamp")
}

/// Issue 13 item 2: a target failing every check, the monitor restarted twice for a moment
/// (well inside `stale_after`). One ongoing incident from the first failure, no availability,
/// one `down` alert, and `status` says down since the first failure.
#[tokio::test(flavor = "multi_thread")]
async fn short_restarts_neither_split_an_outage_nor_move_its_start() {
    let receiver = Receiver::start().await;
    let config = refused_probe("10s", &receiver);
    let daemon = Daemon::start(&config.main_path()).await;
    // More results than the daemon used to replay at start (2 × (3 + 1) + 1).
    wait_for_results(&daemon, 12).await;
    let mut seen = 12;
    let mut daemon = daemon;
    for _ in 0..2 {
        assert_eq!(daemon.terminate().await, 0);
        daemon = Daemon::start(&config.main_path()).await;
        seen += 2;
        wait_for_results(&daemon, seen).await;
    }
    let times = result_times(&daemon).await;
    let first = times[0];
    let longest_gap = times
        .windows(2)
        .map(|pair| pair[1].duration_since(pair[0]))
        .max()
        .expect("gaps");
    assert!(
        longest_gap < jiff::SignedDuration::from_secs(10),
        "the restarts took longer than stale_after ({longest_gap:?}): the test means nothing"
    );

    let probe = status(&daemon).await;
    assert_eq!(probe["state"], "down", "{probe:#}");
    assert_eq!(ts(&probe["since"]), first, "{probe:#}");

    // Every moment since the first failure is covered by a result, restarts included.
    let history = daemon
        .cli(&["history", "gone", "--since", &first.to_string(), "--json"])
        .await
        .json();
    assert_eq!(history["unknown"], serde_json::json!([]), "{history:#}");
    assert_eq!(history["checks"], history["failed_checks"], "{history:#}");

    let month = month_of(first);
    let incidents = daemon
        .cli(&["incidents", "--month", &month, "--json"])
        .await
        .json();
    let incidents = incidents.as_array().expect("incidents");
    assert_eq!(incidents.len(), 1, "{incidents:#?}");
    assert_eq!(ts(&incidents[0]["start"]), first, "{incidents:#?}");
    assert!(incidents[0]["end"].is_null(), "ongoing: {incidents:#?}");

    let report = daemon
        .cli(&["report", "--month", &month, "--format", "json"])
        .await;
    let report = report.json();
    let gone = &report["probes"][0];
    assert_eq!(gone["availability"], 0.0, "{gone:#}");
    assert_eq!(gone["incidents"], 1, "{gone:#}");
    assert_eq!(gone["unknown_seconds"], 0.0, "{gone:#}");

    let downs = down_alerts(&daemon).await;
    assert_eq!(downs.len(), 1, "one outage, one down alert: {downs:#?}");
    assert_eq!(ts(&downs[0]["since"]), first, "{downs:#?}");
    assert_eq!(daemon.terminate().await, 0);

    // Without a daemon, status reads the same from the ledger.
    let offline = crate::support::upledger()
        .arg("--config")
        .arg(config.main_path())
        .args(["status", "--json"])
        .run()
        .await;
    let probe = offline.json()["probes"][0].clone();
    assert_eq!(probe["state"], "down", "{probe:#}");
    assert_eq!(ts(&probe["since"]), first, "{probe:#}");
}

/// A restart longer than `stale_after` is unknown time that breaks the run: the outage before
/// it ends where its last result stops holding, and the failures after it must cross the
/// threshold again — a second incident, from the first failure after the restart, with its own
/// `down` alert.
#[tokio::test(flavor = "multi_thread")]
async fn a_restart_longer_than_stale_after_breaks_the_run() {
    let receiver = Receiver::start().await;
    let config = refused_probe("2s", &receiver);
    let daemon = Daemon::start(&config.main_path()).await;
    let before = wait_for_results(&daemon, 4).await;
    assert_eq!(daemon.terminate().await, 0);
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let daemon = Daemon::start(&config.main_path()).await;
    let mut after: Vec<Timestamp> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while after.len() < 4 {
        let times = result_times(&daemon).await;
        let last_before = times[0..].partition_point(|t| *t <= *before.last().expect("before"));
        after = times[last_before..].to_vec();
        assert!(Instant::now() < deadline, "{}", daemon.log());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let all = result_times(&daemon).await;
    let restart = all.partition_point(|t| *t <= *before.last().expect("before"));
    let (first_before, first_after) = (all[0], all[restart]);
    assert!(
        first_after.duration_since(all[restart - 1]) > jiff::SignedDuration::from_secs(2),
        "the restart took less than stale_after: the test means nothing"
    );

    let probe = status(&daemon).await;
    assert_eq!(probe["state"], "down", "{probe:#}");
    assert_eq!(ts(&probe["since"]), first_after, "{probe:#}");

    let month = month_of(first_before);
    let incidents = daemon
        .cli(&["incidents", "--month", &month, "--json"])
        .await
        .json();
    let incidents = incidents.as_array().expect("incidents");
    if month_of(first_after) == month {
        assert_eq!(incidents.len(), 2, "{incidents:#?}");
        assert_eq!(ts(&incidents[0]["start"]), first_before, "{incidents:#?}");
        let stale = jiff::SignedDuration::from_secs(2);
        assert_eq!(
            ts(&incidents[0]["end"]),
            all[restart - 1] + stale,
            "{incidents:#?}"
        );
        assert_eq!(ts(&incidents[1]["start"]), first_after, "{incidents:#?}");
        assert!(incidents[1]["end"].is_null(), "{incidents:#?}");
    }

    let downs = down_alerts(&daemon).await;
    assert_eq!(downs.len(), 2, "{downs:#?}");
    assert_eq!(ts(&downs[0]["since"]), first_before, "{downs:#?}");
    assert_eq!(ts(&downs[1]["since"]), first_after, "{downs:#?}");
    assert_eq!(daemon.terminate().await, 0);
}

/// A probe alerted `down` whose target recovers while the daemon is away for longer than
/// `stale_after`: the gap lapses the outage, and the first check after the restart raises `up`
/// (whoever got the `down` hears that it is over), dated from that check.
#[tokio::test(flavor = "multi_thread")]
async fn an_outage_lapsed_by_a_long_restart_still_ends_with_up() {
    let receiver = Receiver::start().await;
    let refused = tcp::RefusedPort::new();
    let address = refused.addr;
    let config = probe_of(address, "2s", &receiver);
    let daemon = Daemon::start(&config.main_path()).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while down_alerts(&daemon).await.is_empty() {
        assert!(
            Instant::now() < deadline,
            "no down alert:\n{}",
            daemon.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(daemon.terminate().await, 0);
    let before = std::time::SystemTime::now();
    let listener = tokio::net::TcpListener::bind(refused.release())
        .await
        .expect("bind");
    let serving = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            drop(stream);
        }
    });
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let daemon = Daemon::start(&config.main_path()).await;
    while alerts_of(&daemon, "up").await.is_empty() {
        assert!(Instant::now() < deadline, "no up alert:\n{}", daemon.log());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let history = daemon
        .cli(&["history", "gone", "--since", "1h", "--json"])
        .await
        .json();
    let first_up = history["results"]
        .as_array()
        .expect("results")
        .iter()
        .find(|r| r["outcome"] == "up")
        .map(|r| ts(&r["at"]))
        .expect("an up result");
    assert!(first_up > Timestamp::try_from(before).expect("ts"));
    let ups = alerts_of(&daemon, "up").await;
    assert_eq!(ups.len(), 1, "{ups:#?}");
    assert_eq!(ts(&ups[0]["since"]), first_up, "{ups:#?}");
    assert_eq!(ups[0]["previous_state"], "down", "{ups:#?}");
    assert_eq!(down_alerts(&daemon).await.len(), 1);
    assert_eq!(daemon.terminate().await, 0);
    serving.abort();
}
