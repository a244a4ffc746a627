//! Replication between locations (SPEC §9), measured against a real `nats-server -js` on
//! loopback (Debian's package; started and stopped by this bench):
//!
//! 1. **Agent cost** — side by side, the same group commits (1,000 probes checked every
//!    second, so commits of 250 results every 250 ms) into a ledger with replication off,
//!    then on with the publisher running: the extra CPU per result (process CPU time, every
//!    thread, from `getrusage`) is what replication costs an agent per check.
//! 2. **Backlog drain** — 1,000 probes at 1 s for a 10-minute NATS outage (600,000 results
//!    queued in the agent's ledger), then NATS comes back: results/s until the queue is empty.
//! 3. **Coordinator ingest** — 3 locations' results (600,000 by default) waiting in the
//!    stream; a coordinator consumes them into its ledger: results/s until all are stored.
//!
//! `cargo bench --bench replication`. `UPLEDGER_BENCH_PROBES` (1,000),
//! `UPLEDGER_BENCH_OUTAGE_SECONDS` (600) and `UPLEDGER_BENCH_SIDE_SECONDS` (30: simulated
//! seconds of checks for part 1) change the sizes. Only loopback is contacted.

use std::{
    path::Path,
    process::Stdio,
    sync::Arc,
    time::{Duration, Instant},
};

use jiff::Timestamp;
use tokio::sync::{Notify, mpsc, watch};
use tokio_util::sync::CancellationToken;
use upledger::{
    config,
    ledger::{Ledger, ReplicationEntry, ResultRecord},
    model::{LocationName, Outcome, ProbeName},
    replicate::{agent, coordinator, wire},
};

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// CPU time of this process so far (user + system, every thread), from `/proc/self/stat`
/// in clock ticks (USER_HZ, 100 on Linux): ±10 ms over runs of seconds.
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may hold spaces) start at the state, field 3.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i).and_then(|f| f.parse::<u64>().ok()))
        .sum();
    Duration::from_millis(ticks * 10)
}

struct NatsServer(std::process::Child);

impl NatsServer {
    fn start(port: u16, store: &Path) -> NatsServer {
        let binary = if Path::new("/usr/sbin/nats-server").exists() {
            "/usr/sbin/nats-server"
        } else {
            "nats-server"
        };
        let child = std::process::Command::new(binary)
            .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
            .arg(store)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nats-server (apt-get install nats-server)");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "nats-server did not listen");
            std::thread::sleep(Duration::from_millis(20));
        }
        NatsServer(child)
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A configuration directory: `[replication]` with `role`, probes `probe-0000…` (with
/// `locations` on a coordinator).
fn configuration(dir: &Path, nats: &str, role: &str, probes: usize) -> config::Config {
    std::fs::create_dir_all(dir.join("probes.d")).expect("probes.d");
    let main = dir.join("upledger.toml");
    std::fs::write(
        &main,
        format!(
            "[daemon]\nledger = \"ledger\"\nlocation = \"a\"\n\n[replication]\nnats = \"{nats}\"\nrole = \"{role}\"\n"
        ),
    )
    .expect("main file");
    let located = if role == "coordinator" {
        "locations = [\"a\", \"b\", \"c\"]\n"
    } else {
        ""
    };
    let mut text = String::new();
    for i in 0..probes {
        text.push_str(&format!(
            "[[probe]]\nname = \"probe-{i:04}\"\nkind = \"tcp\"\naddress = \"127.0.0.1:9\"\n\
             interval = \"1s\"\ntimeout = \"500ms\"\n{located}\n"
        ));
    }
    std::fs::write(dir.join("probes.d/bench.toml"), text).expect("probes file");
    config::load(&main).expect("a valid configuration")
}

/// One simulated second of checks of `names`, second `second` since the start.
fn second_of(names: &[ProbeName], start: Timestamp, second: i64) -> Vec<ResultRecord> {
    names
        .iter()
        .enumerate()
        .map(|(i, name)| ResultRecord {
            probe: name.clone(),
            at: Timestamp::from_millisecond(start.as_millisecond() + second * 1000 + i as i64)
                .expect("time"),
            latency: Duration::from_micros(800 + (i as u64 * 37) % 900),
            outcome: if (second + i as i64) % 97 == 0 {
                Outcome::Down
            } else {
                Outcome::Up
            },
            error_class: None,
            detail: String::new(),
        })
        .collect()
}

fn names(probes: usize) -> Vec<ProbeName> {
    (0..probes)
        .map(|i| ProbeName::new(&format!("probe-{i:04}")).expect("name"))
        .collect()
}

/// Part 1: the same commits with replication off, then on (publisher running).
async fn agent_cost(dir: &Path, nats: &str, probes: usize, seconds: i64) {
    let names = names(probes);
    let start = Timestamp::now() - jiff::SignedDuration::from_hours(2);
    let mut per_result = Vec::new();
    for replicating in [false, true] {
        let side = dir.join(if replicating { "on" } else { "off" });
        let config = configuration(&side, nats, "agent", 0);
        let ledger = Arc::new(Ledger::open(&side.join("ledger")).expect("ledger"));
        ledger.set_replicating(replicating);
        let written = Arc::new(Notify::new());
        let stop = CancellationToken::new();
        let (_config_tx, config_rx) = watch::channel(Arc::new(config));
        let publisher = replicating.then(|| {
            tokio::spawn(agent::run(
                Arc::clone(&ledger),
                config_rx,
                Arc::clone(&written),
                stop.clone(),
            ))
        });
        let before = cpu_time();
        let wall = Instant::now();
        let mut results = 0u64;
        for second in 0..seconds {
            let batch = second_of(&names, start, second);
            // Four group commits a second, as the recorder's 250 ms window makes them.
            for quarter in batch.chunks(batch.len().div_ceil(4).max(1)) {
                let writer = Arc::clone(&ledger);
                let quarter = quarter.to_vec();
                results += quarter.len() as u64;
                tokio::task::spawn_blocking(move || writer.append(&quarter))
                    .await
                    .expect("join")
                    .expect("append");
                written.notify_one();
            }
        }
        // Until the publisher has it all (its work counts).
        while replicating && ledger.replication_backlog().expect("backlog") > 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let cpu = cpu_time() - before;
        stop.cancel();
        if let Some(task) = publisher {
            let _ = task.await;
        }
        let micros = cpu.as_secs_f64() * 1e6 / results as f64;
        println!(
            "  replication {}: {results} results, CPU {:.3} s ({micros:.2} µs/result), wall {:.2} s",
            if replicating { "on " } else { "off" },
            cpu.as_secs_f64(),
            wall.elapsed().as_secs_f64()
        );
        per_result.push(micros);
    }
    println!(
        "  => extra CPU per check with replication on: {:.2} µs (target ≤ 5 µs)",
        per_result[1] - per_result[0]
    );
}

/// Part 2: a 10-minute outage's backlog, drained once NATS is there.
async fn backlog_drain(dir: &Path, port: u16, probes: usize, outage: i64) {
    let names = names(probes);
    let side = dir.join("drain");
    let nats = format!("nats://127.0.0.1:{port}");
    let config = configuration(&side, &nats, "agent", 0);
    let ledger = Arc::new(Ledger::open(&side.join("ledger")).expect("ledger"));
    ledger.set_replicating(true);
    let start = Timestamp::now() - jiff::SignedDuration::from_hours(1);
    for second in 0..outage {
        let batch = second_of(&names, start, second);
        ledger.append(&batch).expect("append");
    }
    let queued = ledger.replication_backlog().expect("backlog");
    let server = NatsServer::start(port, &dir.join("drain-nats"));
    let (_config_tx, config_rx) = watch::channel(Arc::new(config));
    let stop = CancellationToken::new();
    let wall = Instant::now();
    let task = tokio::spawn(agent::run(
        Arc::clone(&ledger),
        config_rx,
        Arc::new(Notify::new()),
        stop.clone(),
    ));
    while ledger.replication_backlog().expect("backlog") > 0 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let took = wall.elapsed();
    stop.cancel();
    let _ = task.await;
    drop(server);
    println!(
        "  {queued} results queued ({probes} probes x {outage} s): drained in {:.2} s = {:.0} results/s",
        took.as_secs_f64(),
        queued as f64 / took.as_secs_f64()
    );
}

/// Part 3: `total` results of 3 locations in the stream, consumed by a coordinator.
async fn coordinator_ingest(dir: &Path, nats: &str, probes: usize, total: usize) {
    let names = names(probes);
    let client = async_nats::connect(nats).await.expect("connect");
    let jetstream = async_nats::jetstream::new(client);
    let side = dir.join("coordinator");
    let config = configuration(&side, nats, "coordinator", probes);
    jetstream
        .get_or_create_stream(async_nats::jetstream::stream::Config {
            name: "UPLEDGER".to_owned(),
            subjects: vec![wire::stream_subjects("UPLEDGER")],
            ..Default::default()
        })
        .await
        .expect("stream");
    let start = Timestamp::now() - jiff::SignedDuration::from_hours(3);
    let per_location = total / 3;
    let mut acks = Vec::new();
    for location in ["a", "b", "c"] {
        let location = LocationName::new(location).expect("location");
        let mut seq = 0u64;
        let mut second = 0i64;
        while (seq as usize) < per_location {
            let records = second_of(&names, start, second);
            second += 1;
            let entry = ReplicationEntry {
                first_seq: seq,
                records,
            };
            seq = entry.end_seq();
            for message in wire::messages_of(&entry, &location) {
                let mut headers = async_nats::HeaderMap::new();
                headers.insert(
                    wire::MSG_ID_HEADER,
                    wire::message_id(&location, message.first_seq).as_str(),
                );
                acks.push(
                    jetstream
                        .publish_with_headers(
                            wire::results_subject("UPLEDGER", &location),
                            headers,
                            message.to_bytes().into(),
                        )
                        .await
                        .expect("publish"),
                );
            }
        }
    }
    let sent: usize = acks.len();
    for ack in acks {
        ack.await.expect("stored");
    }
    let in_stream = names.len() * (total / 3).div_ceil(names.len()) * 3;
    println!("  {in_stream} results in {sent} messages waiting in the stream");
    let ledger = Arc::new(Ledger::open(&side.join("ledger")).expect("ledger"));
    let (_config_tx, config_rx) = watch::channel(Arc::new(config));
    let (observed_tx, mut observed_rx) = mpsc::channel(1024);
    let stop = CancellationToken::new();
    let before = cpu_time();
    let wall = Instant::now();
    let task = tokio::spawn(coordinator::run(
        Arc::clone(&ledger),
        config_rx,
        Arc::default(),
        observed_tx,
        stop.clone(),
    ));
    let mut stored = 0usize;
    while stored < in_stream {
        match tokio::time::timeout(Duration::from_secs(60), observed_rx.recv()).await {
            Ok(Some(batch)) => stored += batch.len(),
            _ => panic!("the coordinator stalled at {stored} of {in_stream}"),
        }
    }
    let took = wall.elapsed();
    let cpu = cpu_time() - before;
    stop.cancel();
    drop(observed_rx);
    let _ = task.await;
    println!(
        "  coordinator stored {stored} results in {:.2} s = {:.0} results/s (target ≥ 50,000), CPU {:.2} s in this process",
        took.as_secs_f64(),
        stored as f64 / took.as_secs_f64(),
        cpu.as_secs_f64()
    );
}

fn main() {
    let probes = env("UPLEDGER_BENCH_PROBES", 1_000) as usize;
    let outage = env("UPLEDGER_BENCH_OUTAGE_SECONDS", 600) as i64;
    let side_seconds = env("UPLEDGER_BENCH_SIDE_SECONDS", 30) as i64;
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let dir = tempfile::Builder::new()
        .prefix("upledger-bench-replication-")
        .tempdir_in(
            std::env::var_os("UPLEDGER_BENCH_DIR").map_or_else(std::env::temp_dir, Into::into),
        )
        .expect("temporary directory");
    let port = free_port();
    let nats = format!("nats://127.0.0.1:{port}");
    println!("upledger replication bench: {probes} probes, nats-server -js on {nats}");
    runtime.block_on(async {
        println!("1. agent cost, {side_seconds} s of checks side by side:");
        {
            let _server = NatsServer::start(port, &dir.path().join("nats-1"));
            agent_cost(dir.path(), &nats, probes, side_seconds).await;
        }
        println!("2. backlog drain after a {outage} s outage:");
        backlog_drain(dir.path(), port, probes, outage).await;
        println!("3. coordinator ingest:");
        let _server = NatsServer::start(port, &dir.path().join("nats-3"));
        coordinator_ingest(dir.path(), &nats, probes, probes * outage as usize).await;
    });
}
