//! Alerts end to end: a target on loopback goes down and comes back while the daemon watches
//! it, and a real webhook receiver checks what arrives — once per transition, signed, and
//! still delivered when the receiver was down and the daemon restarted in between.

use std::{
    collections::HashSet,
    net::SocketAddr,
    time::{Duration, Instant},
};

use crate::support::{TestConfig, daemon::Daemon, switch::Target, webhook::Receiver};

const SECRET: &str = "correct horse battery staple";

fn config(target: SocketAddr, receiver: &Receiver) -> TestConfig {
    let config = TestConfig::new();
    config.main(&format!(
        r#"
[daemon]
ledger = "data/ledger"
socket = "data/upledger.sock"

[[channel]]
name = "ops"
kind = "webhook"
url = "{url}"
secret = "{SECRET}"
"#,
        url = receiver.url()
    ));
    config.probes(
        "api.toml",
        &format!(
            "[[probe]]\nname = \"api\"\nkind = \"tcp\"\naddress = \"{target}\"\ninterval = \"500ms\"\n\
             timeout = \"400ms\"\nfailure_threshold = 2\nsuccess_threshold = 2\n"
        ),
    );
    config
}

/// Deliveries of `event` so far.
fn deliveries(receiver: &Receiver, event: &str) -> Vec<crate::support::webhook::Received> {
    receiver
        .received()
        .into_iter()
        .filter(|r| r.header("x-upledger-event") == event)
        .collect()
}

async fn wait_for(receiver: &Receiver, event: &str, count: usize, within: Duration) {
    let deadline = Instant::now() + within;
    while deliveries(receiver, event).len() < count {
        assert!(
            Instant::now() < deadline,
            "{count} \"{event}\" deliveries expected; received: {:?}",
            receiver
                .received()
                .iter()
                .map(|r| String::from_utf8_lossy(&r.body).to_string())
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// What the receiver does with a secret: recompute the HMAC of the raw body and compare.
fn verify_signature(received: &crate::support::webhook::Received) {
    let header = received.header("x-upledger-signature");
    let hex = header
        .strip_prefix("sha256=")
        .unwrap_or_else(|| panic!("signature header {header:?}"));
    let tag: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
        .collect();
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, SECRET.as_bytes());
    aws_lc_rs::hmac::verify(&key, &received.body, &tag).expect("the signature verifies");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_signed_alert_per_transition_and_none_lost_across_a_dead_receiver_and_a_restart() {
    let mut receiver = Receiver::start().await;
    let mut target = Target::start().await;
    let config = config(target.addr, &receiver);
    let daemon = Daemon::start(&config.main_path()).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(receiver.received().is_empty(), "starting up alerts nothing");

    // Down: one `down` after two failures, signed, with the SPEC §6 fields.
    target.down();
    wait_for(&receiver, "down", 1, Duration::from_secs(15)).await;
    let down = deliveries(&receiver, "down").remove(0);
    verify_signature(&down);
    let body = down.json();
    assert_eq!(body["event"], "down");
    assert_eq!(body["probe"], "api");
    assert_eq!(body["state"], "down");
    assert_eq!(body["previous_state"], "up");
    assert_eq!(body["error"]["class"], "connect");
    assert!(body["since"].as_str().is_some() && body["at"].as_str().is_some());
    assert!(body["id"].as_str().is_some_and(|id| !id.is_empty()));
    assert_eq!(body["target"], 99.9);
    assert!(body["month_availability"].as_f64().is_some());
    assert!(
        down.header("x-upledger-delivery")
            .starts_with(body["id"].as_str().unwrap_or("?"))
    );
    // Failures go on; alerts do not.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        deliveries(&receiver, "down").len(),
        1,
        "one alert per transition"
    );

    target.up().await;
    wait_for(&receiver, "up", 1, Duration::from_secs(15)).await;
    let up = deliveries(&receiver, "up").remove(0);
    verify_signature(&up);
    assert_eq!(up.json()["previous_state"], "down");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(deliveries(&receiver, "up").len(), 1);
    assert_eq!(deliveries(&receiver, "down").len(), 1);

    // The receiver dies; the target goes down; the daemon restarts; the target comes back.
    receiver.stop();
    target.down();
    daemon
        .wait_for_log("alert delivery failed", Duration::from_secs(15))
        .await;
    assert_eq!(daemon.terminate().await, 0);
    let daemon = Daemon::start(&config.main_path()).await;
    target.up().await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        deliveries(&receiver, "down").len(),
        1,
        "nothing gets through yet"
    );

    // Back: every alert arrives; a repeat can only carry an id seen before.
    receiver.resume().await;
    wait_for(&receiver, "down", 2, Duration::from_secs(40)).await;
    wait_for(&receiver, "up", 2, Duration::from_secs(40)).await;
    let all = receiver.received();
    for received in &all {
        verify_signature(received);
    }
    // Near a month's end the month's error budget is small enough for these few seconds of
    // downtime to cross its thresholds: `budget` alerts are right then, and not counted here.
    let all: Vec<_> = all
        .into_iter()
        .filter(|r| ["down", "up"].contains(&r.header("x-upledger-event")))
        .collect();
    let ids: HashSet<&str> = all
        .iter()
        .map(|r| r.header("x-upledger-delivery"))
        .collect();
    let events: HashSet<(String, String)> = all
        .iter()
        .map(|r| {
            let body = r.json();
            (
                body["event"].as_str().unwrap_or("?").to_owned(),
                body["id"].as_str().unwrap_or("?").to_owned(),
            )
        })
        .collect();
    assert_eq!(events.len(), 4, "two downs and two ups: {events:?}");
    assert_eq!(ids.len(), 4, "duplicates only with the same delivery id");

    let listed = daemon.cli(&["alerts", "--json"]).await;
    assert_eq!(listed.code, 0, "{}", listed.stderr);
    let listed = listed.json();
    let entries: Vec<&serde_json::Value> = listed
        .as_array()
        .expect("a list")
        .iter()
        .filter(|e| e["event"] == "down" || e["event"] == "up")
        .collect();
    assert_eq!(entries.len(), 4, "{listed:#}");
    assert!(
        entries.iter().all(|e| e["status"] == "delivered"),
        "{listed}"
    );
    assert_eq!(daemon.terminate().await, 0);
}

/// A receiver that accepts and never answers holds only its own deliveries: checks keep their
/// schedule meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_that_hangs_never_delays_probing() {
    let hanging = crate::support::tcp::hang().await;
    let config = TestConfig::new();
    config.main(&format!(
        r#"
[daemon]
ledger = "data/ledger"
socket = "data/upledger.sock"

[[channel]]
name = "slow"
kind = "webhook"
url = "http://{}/hook"
timeout = "30s"
"#,
        hanging.addr
    ));
    config.probes(
        "flap.toml",
        &format!(
            "[[probe]]\nname = \"gone\"\nkind = \"tcp\"\naddress = \"{}\"\ninterval = \"250ms\"\n\
             timeout = \"200ms\"\nfailure_threshold = 1\n",
            crate::support::tcp::refused_addr()
        ),
    );
    let daemon = Daemon::start(&config.main_path()).await;
    // The down alert is in flight (the receiver holds it for 30 s).
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let listed = daemon.cli(&["alerts", "--json"]).await.json();
        if listed.as_array().is_some_and(|a| !a.is_empty()) {
            break;
        }
        assert!(Instant::now() < deadline, "no alert was raised");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let since = jiff::Timestamp::now();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let history = daemon
        .cli(&["history", "gone", "--since", &since.to_string(), "--json"])
        .await;
    let results = history.json()["results"].as_array().map_or(0, Vec::len);
    // 20 ticks in 5 s at 250 ms; allow for the edges.
    assert!(
        results >= 18,
        "{results} results in 5 s while the receiver hangs"
    );
    assert_eq!(daemon.terminate().await, 0);
}

/// `alerts test` reaches the receiver with and without a daemon, and names a wrong channel.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_test_sends_through_the_channel() {
    let receiver = Receiver::start().await;
    let target = Target::start().await;
    let config = config(target.addr, &receiver);
    let cli = |args: &[&str]| {
        crate::support::upledger()
            .arg("--config")
            .arg(config.main_path())
            .args(args.iter().copied())
    };
    let direct = cli(&["alerts", "test", "ops"]).run().await;
    assert_eq!(direct.code, 0, "{}{}", direct.stdout, direct.stderr);
    assert!(
        direct.stdout.contains("delivered to ops"),
        "{}",
        direct.stdout
    );
    assert_eq!(deliveries(&receiver, "test").len(), 1);
    verify_signature(&deliveries(&receiver, "test")[0]);

    let wrong = cli(&["alerts", "test", "nope"]).run().await;
    assert_eq!(wrong.code, 2);
    assert!(
        wrong.stderr.contains("no channel is named \"nope\""),
        "{}",
        wrong.stderr
    );

    let daemon = Daemon::start(&config.main_path()).await;
    let through = daemon.cli(&["alerts", "test", "ops"]).await;
    assert_eq!(through.code, 0, "{}{}", through.stdout, through.stderr);
    assert_eq!(deliveries(&receiver, "test").len(), 2);
    let table = daemon.cli(&["alerts"]).await;
    assert!(table.stdout.starts_with("RAISED"), "{}", table.stdout);
    assert_eq!(
        table.stdout.matches("delivered").count(),
        2,
        "{}",
        table.stdout
    );
    assert_eq!(daemon.terminate().await, 0);
}

/// A target down from the start against a tiny budget: every budget threshold of the probe and
/// of its SLA alerts once, each burn-rate rule once, and a restart repeats none of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn budget_and_burn_rate_crossings_alert_once() {
    let receiver = Receiver::start().await;
    let config = TestConfig::new();
    config.main(&format!(
        r#"
[daemon]
ledger = "data/ledger"
socket = "data/upledger.sock"

[[channel]]
name = "ops"
kind = "webhook"
url = "{url}"
events = ["budget", "burn_rate"]

[[sla]]
name = "acme"
probes = ["gone"]
target = "99.9999%"
"#,
        url = receiver.url()
    ));
    config.probes(
        "gone.toml",
        &format!(
            "[[probe]]\nname = \"gone\"\nkind = \"tcp\"\naddress = \"{}\"\ninterval = \"500ms\"\n\
             timeout = \"400ms\"\nfailure_threshold = 1\ntarget = \"99.9999%\"\n",
            crate::support::tcp::refused_addr()
        ),
    );
    let daemon = Daemon::start(&config.main_path()).await;
    wait_for(&receiver, "budget", 8, Duration::from_secs(30)).await;
    wait_for(&receiver, "burn_rate", 2, Duration::from_secs(30)).await;
    // Later evaluations (every 5 s) add nothing.
    tokio::time::sleep(Duration::from_secs(7)).await;
    let budget: Vec<serde_json::Value> = deliveries(&receiver, "budget")
        .iter()
        .map(|r| r.json())
        .collect();
    let mut crossed: Vec<(String, u64)> = budget
        .iter()
        .map(|b| {
            let subject = b["probe"]
                .as_str()
                .map(|p| format!("probe {p}"))
                .or_else(|| b["sla"].as_str().map(|s| format!("sla {s}")))
                .unwrap_or_default();
            (subject, b["budget_used_percent"].as_u64().unwrap_or(0))
        })
        .collect();
    crossed.sort();
    let expected: Vec<(String, u64)> = ["probe gone", "sla acme"]
        .iter()
        .flat_map(|s| [50, 75, 90, 100].map(|t| ((*s).to_owned(), t)))
        .collect();
    assert_eq!(crossed, expected);
    assert!(budget.iter().all(|b| {
        b["budget_remaining_seconds"]
            .as_f64()
            .is_some_and(|r| r < 0.0)
    }));
    let burn: Vec<serde_json::Value> = deliveries(&receiver, "burn_rate")
        .iter()
        .map(|r| r.json())
        .collect();
    let mut windows: Vec<String> = burn
        .iter()
        .map(|b| format!("{}/{}", b["burn"]["long_window"], b["burn"]["short_window"]))
        .collect();
    windows.sort();
    assert_eq!(windows, ["\"1h\"/\"5m\"", "\"6h\"/\"30m\""]);
    assert!(
        burn.iter()
            .all(|b| b["burn"]["short_rate"].as_f64() >= b["burn"]["factor"].as_f64())
    );
    assert_eq!(
        deliveries(&receiver, "down").len(),
        0,
        "the channel takes only these events"
    );

    // A restart: what fired is marked in the ledger, so nothing repeats.
    assert_eq!(daemon.terminate().await, 0);
    let daemon = Daemon::start(&config.main_path()).await;
    tokio::time::sleep(Duration::from_secs(7)).await;
    assert_eq!(deliveries(&receiver, "budget").len(), 8);
    assert_eq!(deliveries(&receiver, "burn_rate").len(), 2);
    assert_eq!(daemon.terminate().await, 0);
}
