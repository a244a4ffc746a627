//! Daemon footprint: RSS and CPU of `upledger run` with N probes at a 10 s interval against
//! loopback targets (TCP listeners and a minimal HTTP server run by this bench).
//!
//! Also scrapes `/metrics` 21 times at the end of the run and reports how long it took.
//!
//! After 20 s of warm-up, the rest of the run is two equal windows: checks/s and schedule lag
//! (from `/metrics`) without readers, then with `UPLEDGER_BENCH_PAGE_READERS` (default 200)
//! concurrent readers fetching the status page `/` (gzip) in a loop, as `wrk -c200` would.
//!
//! `cargo bench --bench daemon` (defaults: 10,000 probes, 60 s). Override with
//! `UPLEDGER_BENCH_PROBES` and `UPLEDGER_BENCH_SECONDS`. Only loopback is contacted.
//!
//! The evidence log is kept, with a signing key, as always; `UPLEDGER_BENCH_EVIDENCE_HOUR`
//! (e.g. `10s`) shortens its leaf hour so that the run seals a leaf per probe that often —
//! 360 times an hour's hashing and signing at `10s` — to show what appending costs the checks.
//! The log's size and what it took on disk are printed at the end.

use std::{
    fmt::Write as _,
    process::Stdio,
    time::{Duration, Instant},
};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpListener,
};

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Accepts connections and closes them: a TCP check needs only the handshake.
async fn tcp_target() -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            drop(stream);
        }
    });
    addr
}

/// Answers every request with `200 ok` and closes.
async fn http_target() -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 2048];
                let _ = stream.read(&mut buf).await;
                let _ = stream
                    .write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
                    )
                    .await;
            });
        }
    });
    addr
}

/// `(VmRSS, VmHWM)` in KiB and utime+stime in clock ticks of a process.
fn sample(pid: u32) -> Option<(u64, u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
    };
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_name = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some((field("VmRSS:")?, field("VmHWM:")?, ticks))
}

/// Checks counted and the schedule-lag histogram (cumulative counts per bound in seconds), as
/// `/metrics` shows them.
#[derive(Debug, Default, Clone)]
struct CheckCounters {
    lag_buckets: Vec<(f64, u64)>,
    lag_count: u64,
}

impl CheckCounters {
    async fn scrape(client: &reqwest::Client, listen: std::net::SocketAddr) -> CheckCounters {
        let body = client
            .get(format!("http://{listen}/metrics?refresh=false"))
            .send()
            .await
            .expect("scrape")
            .text()
            .await
            .expect("body");
        let mut counters = CheckCounters::default();
        for line in body.lines() {
            if let Some(rest) = line.strip_prefix("upledger_schedule_lag_seconds_bucket{le=\"") {
                let Some((bound, count)) = rest.split_once("\"} ") else {
                    continue;
                };
                let bound = bound.parse().unwrap_or(f64::INFINITY);
                counters
                    .lag_buckets
                    .push((bound, count.trim().parse().unwrap_or(0)));
            } else if let Some(count) = line.strip_prefix("upledger_schedule_lag_seconds_count ") {
                counters.lag_count = count.trim().parse().unwrap_or(0);
            }
        }
        counters
    }

    /// Checks per second and the lag quantiles' upper bounds (p50, p99) between two scrapes.
    fn since(&self, earlier: &CheckCounters, seconds: f64) -> (f64, f64, f64) {
        let total = self.lag_count.saturating_sub(earlier.lag_count);
        let quantile = |q: f64| {
            self.lag_buckets
                .iter()
                .zip(&earlier.lag_buckets)
                .find(|((_, now), (_, then))| (now - then) as f64 >= q * total as f64)
                .map_or(f64::INFINITY, |((bound, _), _)| *bound)
        };
        (total as f64 / seconds, quantile(0.5), quantile(0.99))
    }
}

/// Fetches `/` (gzip, as a browser asks) in a loop until `stop`, as fast as answers come (a
/// `503` too, as `wrk` would); returns the pages (200) read, their bytes, and the other answers.
async fn page_reader(
    client: reqwest::Client,
    listen: std::net::SocketAddr,
    stop: tokio_util::sync::CancellationToken,
) -> (u64, u64, u64) {
    let (mut pages, mut bytes, mut other) = (0, 0, 0);
    while !stop.is_cancelled() {
        let fetched = async {
            let response = client
                .get(format!("http://{listen}/"))
                .header("accept-encoding", "gzip")
                .send()
                .await
                .ok()?;
            let ok = response.status().is_success();
            Some((ok, response.bytes().await.ok()?))
        };
        tokio::select! {
            () = stop.cancelled() => break,
            answer = fetched => match answer {
                Some((true, body)) => {
                    pages += 1;
                    bytes += body.len() as u64;
                }
                _ => other += 1,
            },
        }
    }
    (pages, bytes, other)
}

fn ms(seconds: f64) -> String {
    if seconds.is_finite() {
        format!("≤ {:.1} ms", seconds * 1e3)
    } else {
        "> the largest bucket".into()
    }
}

#[tokio::main]
async fn main() {
    let probes = env_or("UPLEDGER_BENCH_PROBES", 10_000);
    let seconds = env_or("UPLEDGER_BENCH_SECONDS", 60);
    let readers = env_or("UPLEDGER_BENCH_PAGE_READERS", 200);
    let mut tcp = Vec::new();
    for _ in 0..8 {
        tcp.push(tcp_target().await);
    }
    let web = http_target().await;

    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join("probes.d")).expect("probes.d");
    let listen = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port");
    let key = dir.path().join("signing-key");
    let keygen = std::process::Command::new(env!("CARGO_BIN_EXE_upledger"))
        .arg("keygen")
        .arg("--out")
        .arg(&key)
        .output()
        .expect("keygen");
    assert!(keygen.status.success(), "keygen failed");
    let hour = std::env::var("UPLEDGER_BENCH_EVIDENCE_HOUR").unwrap_or_else(|_| "1h".into());
    std::fs::write(
        dir.path().join("upledger.toml"),
        format!("[daemon]\nledger = \"data/ledger\"\nsocket = \"data/upledger.sock\"\nlisten = \"{listen}\"\nmax_concurrency = 512\n\n[evidence]\nsigning_key = \"{}\"\norigin = \"bench/upledger\"\nhour = \"{hour}\"\n\n[defaults]\ninterval = \"10s\"\ntimeout = \"5s\"\n", key.display()),
    )
    .expect("main");
    let mut text = String::new();
    for i in 0..probes {
        if i % 10 < 7 {
            let addr = tcp[(i % 8) as usize];
            let _ = writeln!(
                text,
                "[[probe]]\nname = \"tcp-{i}\"\nkind = \"tcp\"\naddress = \"{addr}\"\n"
            );
        } else {
            let _ = writeln!(
                text,
                "[[probe]]\nname = \"http-{i}\"\nkind = \"http\"\nurl = \"http://{web}/health\"\n"
            );
        }
    }
    std::fs::write(dir.path().join("probes.d/bench.toml"), text).expect("probes");

    let started = Instant::now();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_upledger"))
        .arg("--config")
        .arg(dir.path().join("upledger.toml"))
        .arg("run")
        .env("UPLEDGER_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn upledger run");
    let pid = child.id().expect("pid");
    let ticks_per_second = 100.0; // USER_HZ on Linux
    let mut steady = Vec::new();
    let mut last = (0, 0, 0);
    let client = reqwest::Client::new();
    let window = seconds.saturating_sub(20) as f64 / 2.0;
    let mut marks: Vec<CheckCounters> = Vec::new();
    let stop_readers = tokio_util::sync::CancellationToken::new();
    let mut reading = tokio::task::JoinSet::new();
    while started.elapsed() < Duration::from_secs(seconds) {
        tokio::time::sleep(Duration::from_secs(1)).await;
        if let Some(s) = sample(pid) {
            if started.elapsed() > Duration::from_secs(20) {
                steady.push(s.0);
            }
            last = s;
        }
        let at = started.elapsed().as_secs_f64();
        // Marks: start of the quiet window, its end (= readers start), end of the read window.
        if marks.len() < 3 && at >= 20.0 + window * marks.len() as f64 {
            marks.push(CheckCounters::scrape(&client, listen).await);
            if marks.len() == 2 {
                for _ in 0..readers {
                    reading.spawn(page_reader(client.clone(), listen, stop_readers.clone()));
                }
            }
        }
    }
    stop_readers.cancel();
    let (pages, page_bytes, turned_away) = reading
        .join_all()
        .await
        .into_iter()
        .fold((0, 0, 0), |(p, b, o), (pages, bytes, other)| {
            (p + pages, b + bytes, o + other)
        });
    // `/metrics` while the daemon checks every probe: what a Prometheus scrape costs.
    let mut scrapes = Vec::new();
    let mut scraped = (0usize, 0usize);
    for _ in 0..21 {
        let begun = Instant::now();
        let body = client
            .get(format!("http://{listen}/metrics"))
            .send()
            .await
            .expect("scrape")
            .text()
            .await
            .expect("body");
        scrapes.push(begun.elapsed());
        scraped = (
            body.len(),
            body.matches("upledger_month_availability_ratio{").count(),
        );
    }
    scrapes.sort();
    let checkpoint = client
        .get(format!("http://{listen}/checkpoint"))
        .send()
        .await
        .expect("checkpoint")
        .text()
        .await
        .expect("body");
    let leaves: u64 = checkpoint
        .lines()
        .nth(1)
        .and_then(|l| l.parse().ok())
        .unwrap_or(0);
    let _ = std::process::Command::new("kill")
        .arg("-TERM")
        .arg(pid.to_string())
        .status();
    let _ = child.wait().await;
    let elapsed = started.elapsed().as_secs_f64();

    let export = std::process::Command::new(env!("CARGO_BIN_EXE_upledger"))
        .arg("--config")
        .arg(dir.path().join("upledger.toml"))
        .arg("export")
        .output()
        .expect("export");
    let results = export.stdout.iter().filter(|b| **b == b'\n').count();
    let failed = String::from_utf8_lossy(&export.stdout)
        .matches("\"down\"")
        .count();
    let steady_avg = steady.iter().sum::<u64>() as f64 / steady.len().max(1) as f64;
    let cpu_s = last.2 as f64 / ticks_per_second;
    println!("upledger run: {probes} probes (70% TCP, 30% HTTP) at 10 s, {elapsed:.0} s");
    println!(
        "  results written     {results} ({:.0}/s), {failed} down",
        results as f64 / elapsed
    );
    println!("  peak RSS (VmHWM)    {:.1} MiB", last.1 as f64 / 1024.0);
    println!("  steady RSS (avg)    {:.1} MiB", steady_avg / 1024.0);
    println!(
        "  CPU                 {cpu_s:.1} s ({:.0} µs per check)",
        cpu_s * 1e6 / results.max(1) as f64
    );
    if let [quiet_start, quiet_end, read_end] = &marks[..] {
        let (rate, p50, p99) = quiet_end.since(quiet_start, window);
        println!(
            "  no page readers     {rate:.0} checks/s, schedule lag p50 {}, p99 {} ({window:.0} s)",
            ms(p50),
            ms(p99)
        );
        let (rate, p50, p99) = read_end.since(quiet_end, window);
        println!(
            "  {readers} page readers   {rate:.0} checks/s, schedule lag p50 {}, p99 {} ({window:.0} s; \
             {pages} pages, {:.0}/s, {} KiB each; {turned_away} other answers)",
            ms(p50),
            ms(p99),
            pages as f64 / window,
            page_bytes / pages.max(1) / 1024
        );
    }
    let ledger_bytes: u64 = std::fs::read_dir(dir.path().join("data/ledger"))
        .map(|entries| {
            entries
                .filter_map(|e| e.ok()?.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0);
    println!(
        "  evidence log        {leaves} leaves at the last checkpoint (leaf hour {hour}); ledger {:.1} MiB on disk",
        ledger_bytes as f64 / 1048576.0
    );
    println!(
        "  GET /metrics        median {:.1} ms, max {:.1} ms over 21 scrapes ({} KiB, {} month series)",
        scrapes[10].as_secs_f64() * 1e3,
        scrapes[20].as_secs_f64() * 1e3,
        scraped.0 / 1024,
        scraped.1
    );
}
