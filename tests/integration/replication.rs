//! Locations and quorum over NATS JetStream (SPEC §9), end to end: agents (real daemons,
//! locations a, b, c) check their own loopback targets and publish through a real
//! `nats-server -js`; a coordinator consumes and evaluates the probe under quorum 2. One
//! location failing raises nothing; two raise one `down`, back-dated to when the second
//! location's failing run began. NATS stopped for 20 s, then an agent killed with `kill -9`:
//! the coordinator ends with every result of every agent, none twice. Bad messages, unknown
//! probes and locations, and a server without JetStream: logged, nothing lost, no panic.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::Path,
    time::{Duration, Instant},
};

use bytes::Bytes;
use jiff::Timestamp;

use crate::support::{
    TestConfig, daemon::Daemon, free_port, nats::Nats, switch::Target, upledger, webhook::Receiver,
};

/// The probe every agent runs against its own target.
fn probe(target: std::net::SocketAddr, extra: &str) -> String {
    format!(
        "[[probe]]\nname = \"web\"\nkind = \"tcp\"\naddress = \"{target}\"\n\
         interval = \"200ms\"\ntimeout = \"150ms\"\nfailure_threshold = 2\n\
         success_threshold = 2\n{extra}"
    )
}

fn agent(nats: &str, location: &str, target: std::net::SocketAddr) -> TestConfig {
    let config = TestConfig::new();
    config.main(&format!(
        "[daemon]\nledger = \"data/ledger\"\nsocket = \"data/upledger.sock\"\n\
         listen = \"127.0.0.1:{}\"\nlocation = \"{location}\"\n\n\
         [replication]\nnats = \"{nats}\"\n",
        free_port()
    ));
    config.probes("web.toml", &probe(target, ""));
    config
}

fn coordinator(nats: &str, hook: &str) -> TestConfig {
    let config = TestConfig::new();
    config.main(&format!(
        "[daemon]\nledger = \"data/ledger\"\nsocket = \"data/upledger.sock\"\n\
         listen = \"127.0.0.1:{}\"\nlocation = \"hub\"\n\n\
         [replication]\nnats = \"{nats}\"\nrole = \"coordinator\"\n\n\
         [[channel]]\nname = \"ops\"\nkind = \"webhook\"\nurl = \"{hook}\"\n\
         events = [\"down\", \"up\"]\n",
        free_port()
    ));
    // The coordinator never checks the address itself: its agents do.
    config.probes(
        "web.toml",
        &probe(
            "127.0.0.1:9".parse().expect("addr"),
            "locations = [\"a\", \"b\", \"c\"]\nquorum = 2\n",
        ),
    );
    config
}

/// Every result a daemon's `export` lists, keyed by (probe, location, time): series names
/// (`web@a`) and `location` fields read alike. `config` is the daemon's main file: the
/// daemon answers if it runs, its ledger does if not.
async fn exported(config: &Path, own_location: Option<&str>) -> BTreeMap<(String, String), usize> {
    let output = upledger()
        .arg("--config")
        .arg(config)
        .arg("export")
        .run()
        .await;
    assert_eq!(output.code, 0, "export: {}", output.stderr);
    let mut seen = BTreeMap::new();
    for line in output.stdout.lines().filter(|l| !l.trim().is_empty()) {
        let value: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
        if value.get("outcome").is_none() {
            continue; // a correction line
        }
        let probe = value["probe"].as_str().expect("probe").to_owned();
        let (probe, location) = match (probe.split_once('@'), value["location"].as_str()) {
            (Some((p, l)), _) => (p.to_owned(), l.to_owned()),
            (None, Some(l)) => (probe, l.to_owned()),
            (None, None) => (probe, own_location.unwrap_or("?").to_owned()),
        };
        let at = value["at"].as_str().expect("at").to_owned();
        *seen.entry((format!("{probe}@{location}"), at)).or_insert(0) += 1;
    }
    seen
}

fn downs(receiver: &Receiver, event: &str) -> Vec<serde_json::Value> {
    receiver
        .received()
        .iter()
        .map(|r| r.json())
        .filter(|body| body["event"] == event)
        .collect()
}

async fn wait_until(what: &str, timeout: Duration, mut done: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The first `down` result of `location`'s agent at or after `after`.
async fn first_failure(agent: &Daemon, after: Timestamp) -> Timestamp {
    let output = agent.cli(&["export"]).await;
    output
        .stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["outcome"] == "down")
        .filter_map(|v| v["at"].as_str().and_then(|at| at.parse::<Timestamp>().ok()))
        .filter(|at| *at >= after)
        .min()
        .expect("a failed check")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_of_three_locations_down_raise_one_down_dated_from_the_second() {
    let dir = tempfile::tempdir().expect("dir");
    let nats = Nats::start(dir.path(), true).await;
    let receiver = Receiver::start().await;
    let mut targets = Vec::new();
    for _ in 0..3 {
        targets.push(Target::start().await);
    }
    let hub_config = coordinator(&nats.url(), &receiver.url());
    let hub = Daemon::start(&hub_config.main_path()).await;
    let configs: Vec<TestConfig> = ["a", "b", "c"]
        .iter()
        .zip(&targets)
        .map(|(l, t)| agent(&nats.url(), l, t.addr))
        .collect();
    let mut agents = Vec::new();
    for config in &configs {
        agents.push(Daemon::start(&config.main_path()).await);
    }
    // All up for a while, then a fails alone: nothing.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let a_down_at = Timestamp::now();
    targets[0].down();
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(
        downs(&receiver, "down").is_empty(),
        "one location of three is no outage; hub log:\n{}",
        hub.log()
    );
    // b fails too: one down, dated from b's first failed check.
    let b_down_at = Timestamp::now();
    targets[1].down();
    wait_until("the down alert", Duration::from_secs(20), async || {
        !downs(&receiver, "down").is_empty()
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let down = downs(&receiver, "down");
    assert_eq!(
        down.len(),
        1,
        "one down: {down:?}\nhub log:\n{}",
        hub.log()
            .lines()
            .filter(|l| l.contains("state changed"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert_eq!(down[0]["probe"], "web");
    let since: Timestamp = down[0]["since"]
        .as_str()
        .expect("since")
        .parse()
        .expect("time");
    let b_first = first_failure(&agents[1], b_down_at).await;
    let a_first = first_failure(&agents[0], a_down_at).await;
    assert_eq!(
        since, b_first,
        "back-dated to b's failing run (a's began {a_first})"
    );
    // Both come back: one up.
    targets[0].up().await;
    targets[1].up().await;
    wait_until("the up alert", Duration::from_secs(20), async || {
        !downs(&receiver, "up").is_empty()
    })
    .await;
    assert_eq!(downs(&receiver, "down").len(), 1);
    // The month report counts exactly the overlap of a's and b's own outages.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let outage_a = last_incident(&agents[0]).await;
    let outage_b = last_incident(&agents[1]).await;
    for agent in agents {
        assert_eq!(agent.terminate().await, 0);
    }
    let mut recorded = BTreeMap::new();
    for (config, location) in configs.iter().zip(["a", "b", "c"]) {
        recorded.extend(exported(&config.main_path(), Some(location)).await);
    }
    let hub_main = hub_config.main_path();
    wait_until(
        "the coordinator to have every result",
        Duration::from_secs(30),
        async || {
            let hub_has = exported(&hub_main, None).await;
            recorded.keys().all(|k| hub_has.contains_key(k))
        },
    )
    .await;
    let overlap = outage_a
        .1
        .min(outage_b.1)
        .duration_since(outage_a.0.max(outage_b.0));
    assert!(
        overlap.as_secs_f64() > 1.0,
        "a and b were down together: {overlap:?}"
    );
    let report = hub
        .cli(&["report", "--format", "json", "--probe", "web"])
        .await;
    // Exit 1: the outage breaks the 99.9 % target of a month this young.
    assert!(report.code <= 1, "report: {}", report.stderr);
    let web = &report.json()["probes"][0];
    assert_eq!(web["name"], "web");
    let downtime = web["downtime_seconds"].as_f64().expect("downtime");
    assert!(
        (downtime - overlap.as_secs_f64()).abs() < 0.0005,
        "downtime {downtime} s, the overlap of a {outage_a:?} and b {outage_b:?} is {overlap:?}"
    );
    assert!(!hub.log().contains("panicked"));
    drop(nats);
}

/// The newest incident of this month on an agent: start and end.
async fn last_incident(agent: &Daemon) -> (Timestamp, Timestamp) {
    let output = agent.cli(&["incidents", "--json"]).await;
    assert_eq!(output.code, 0, "incidents: {}", output.stderr);
    let list = output.json();
    let last = list
        .as_array()
        .and_then(|l| l.last())
        .unwrap_or_else(|| panic!("an incident: {list}"));
    let time = |key: &str| -> Timestamp {
        last[key]
            .as_str()
            .and_then(|t| t.parse().ok())
            .unwrap_or_else(|| panic!("{key} of {last}"))
    };
    (time("start"), time("end"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nats_outage_and_a_killed_agent_lose_nothing_and_duplicate_nothing() {
    let dir = tempfile::tempdir().expect("dir");
    let mut nats = Nats::start(dir.path(), true).await;
    let receiver = Receiver::start().await;
    let targets = [Target::start().await, Target::start().await];
    let hub_config = coordinator(&nats.url(), &receiver.url());
    let hub = Daemon::start(&hub_config.main_path()).await;
    let configs = [
        agent(&nats.url(), "a", targets[0].addr),
        agent(&nats.url(), "b", targets[1].addr),
    ];
    let mut a = Daemon::start(&configs[0].main_path()).await;
    let b = Daemon::start(&configs[1].main_path()).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    nats.stop().await;
    tokio::time::sleep(Duration::from_secs(20)).await;
    nats.restart(true).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    a.kill9().await;
    a = Daemon::start(&configs[0].main_path()).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    // The agents stop; what they recorded is final.
    assert_eq!(a.terminate().await, 0);
    assert_eq!(b.terminate().await, 0);
    let mut recorded = exported(&configs[0].main_path(), Some("a")).await;
    let b_recorded = exported(&configs[1].main_path(), Some("b")).await;
    let before = recorded.len();
    recorded.extend(b_recorded);
    assert!(
        before > 50 && recorded.len() > before + 50,
        "both agents checked"
    );
    let mut hub_has = BTreeMap::new();
    let hub_main = hub_config.main_path();
    wait_until(
        "the coordinator to have every result",
        Duration::from_secs(60),
        async || {
            hub_has = exported(&hub_main, None).await;
            recorded.keys().all(|k| hub_has.contains_key(k))
        },
    )
    .await;
    let twice: Vec<_> = hub_has.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "stored twice: {twice:?}");
    let extra: BTreeSet<_> = hub_has
        .keys()
        .filter(|k| !recorded.contains_key(*k))
        .collect();
    assert!(extra.is_empty(), "results no agent recorded: {extra:?}");
    assert!(hub.log().contains("consuming agents' results"));
    assert!(!hub.log().contains("panicked"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_messages_unknown_names_and_a_server_without_jetstream_lose_nothing() {
    let dir = tempfile::tempdir().expect("dir");
    // First without JetStream: the agent says so, and keeps checking.
    let mut nats = Nats::start(dir.path(), false).await;
    let target = Target::start().await;
    let config = agent(&nats.url(), "a", target.addr);
    let a = Daemon::start(&config.main_path()).await;
    a.wait_for_log("cannot replicate results", Duration::from_secs(20))
        .await;
    assert!(a.log().contains("-js"), "says how to fix it:\n{}", a.log());
    tokio::time::sleep(Duration::from_secs(1)).await;
    // JetStream now; a coordinator; garbage and strangers on the results subjects.
    nats.restart(true).await;
    let receiver = Receiver::start().await;
    let hub_config = coordinator(&nats.url(), &receiver.url());
    let hub = Daemon::start(&hub_config.main_path()).await;
    let client = async_nats::connect(nats.url()).await.expect("connect");
    let jetstream = async_nats::jetstream::new(client);
    wait_until("the stream", Duration::from_secs(20), async || {
        jetstream.get_stream("UPLEDGER").await.is_ok()
    })
    .await;
    let now_ms = Timestamp::now().as_millisecond();
    let stranger = format!(
        "{{\"v\":1,\"location\":\"q\",\"first_seq\":0,\"results\":[\
         {{\"probe\":\"zzz\",\"at_ms\":{now_ms},\"latency_us\":5,\"outcome\":\"up\"}},\
         {{\"probe\":\"web\",\"at_ms\":{now_ms},\"latency_us\":5,\"outcome\":\"down\"}}]}}"
    );
    for (subject, body) in [
        ("UPLEDGER.results.a", "not json at all".to_owned()),
        ("UPLEDGER.results.a", "{\"v\":9}".to_owned()),
        ("UPLEDGER.results.q", stranger),
    ] {
        jetstream
            .publish(subject, Bytes::from(body))
            .await
            .expect("publish")
            .await
            .expect("stored");
    }
    hub.wait_for_log("is not a result", Duration::from_secs(20))
        .await;
    hub.wait_for_log("does not evaluate", Duration::from_secs(20))
        .await;
    // Everything the agent recorded, from before JetStream too, reaches the hub.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let a_log = a.log();
    assert_eq!(a.terminate().await, 0);
    let recorded = exported(&config.main_path(), Some("a")).await;
    let recorded_len = recorded.len();
    let mut hub_has = BTreeMap::new();
    let hub_main = hub_config.main_path();
    wait_until("the backlog", Duration::from_secs(60), async || {
        hub_has = exported(&hub_main, None).await;
        recorded.keys().all(|k| hub_has.contains_key(k))
    })
    .await;
    assert!(
        recorded_len > 5,
        "the agent checked: {recorded_len} results"
    );
    // The strangers are kept, not evaluated: no alert about them.
    assert!(hub_has.keys().any(|(series, _)| series == "zzz@q"));
    assert!(hub_has.keys().any(|(series, _)| series == "web@q"));
    assert!(downs(&receiver, "down").is_empty());
    for log in [a_log, hub.log()] {
        assert!(!log.contains("panicked"), "{log}");
    }
}
