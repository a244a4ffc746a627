//! Ledger throughput and space: `cargo bench --bench ledger`.
//!
//! Appends 1,000,000 results (1,000 probes × 1,000 checks, 10 s interval with a few ms of
//! scheduler jitter, per-probe latencies between 0.2 and 50 ms, ~1 % failures with a handful
//! of repeated details) in group commits of 1,000 — one `append` (write + flush) each, one
//! result per probe per commit, as the daemon's writer task would see them — then reports
//! throughput, bytes on disk per result (after the run and after reopening), peak RSS, and the
//! time of a one-probe range scan and of a full export.
//!
//! Environment: `UPLEDGER_BENCH_PROBES`, `UPLEDGER_BENCH_CHECKS` (per probe),
//! `UPLEDGER_BENCH_BLOCK` (results per block), `UPLEDGER_BENCH_BATCH` (results per commit),
//! `UPLEDGER_BENCH_DIR` (where the temporary ledger goes; default the system temp dir, which
//! should be a real disk, not tmpfs).

use std::time::{Duration, Instant};

use jiff::Timestamp;
use upledger::ledger::{Ledger, LedgerOptions, ResultRecord};
use upledger::model::{ErrorClass, Outcome, ProbeName};

/// xorshift64*: deterministic, dependency-free.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const FAILURES: [(ErrorClass, &str); 5] = [
    (ErrorClass::Connect, "connection refused"),
    (ErrorClass::HttpStatus, "HTTP 503 Service Unavailable"),
    (ErrorClass::Timeout, "timed out after 10s"),
    (ErrorClass::Dns, "no records found for api.example.com"),
    (ErrorClass::Tls, "certificate expired"),
];

struct Probe {
    name: ProbeName,
    phase_ms: i64,
    base_latency_us: f64,
}

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn du_bytes(dir: &std::path::Path) -> u64 {
    // Allocated blocks, like `du`: sled's file may be sparse or preallocated.
    use std::os::unix::fs::MetadataExt;
    let mut total = 0;
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let Ok(meta) = entry.metadata() else { continue };
        total += if meta.is_dir() {
            du_bytes(&entry.path())
        } else {
            meta.blocks() * 512
        };
    }
    total
}

fn main() {
    let probes_n = env("UPLEDGER_BENCH_PROBES", 1_000);
    let checks = env("UPLEDGER_BENCH_CHECKS", 1_000);
    let batch_size = env("UPLEDGER_BENCH_BATCH", 1_000);
    let options = LedgerOptions {
        block_records: env(
            "UPLEDGER_BENCH_BLOCK",
            upledger::ledger::DEFAULT_BLOCK_RECORDS as usize,
        ) as u32,
        ..LedgerOptions::default()
    };
    let total = probes_n * checks;
    // On the real disk (/tmp here is not tmpfs): flushes must cost what they cost.
    let dir = tempfile::Builder::new()
        .prefix("upledger-bench-")
        .tempdir_in(
            std::env::var_os("UPLEDGER_BENCH_DIR").map_or_else(std::env::temp_dir, Into::into),
        )
        .expect("temporary directory");
    let path = dir.path().join("ledger");

    let mut rng = Rng(0x5eed_1234_abcd_ef01);
    let probes: Vec<Probe> = (0..probes_n)
        .map(|i| Probe {
            name: ProbeName::new(&format!("probe-{i:04}")).expect("valid name"),
            phase_ms: (i as i64 * 10) % 10_000,
            // Log-uniform between 0.2 ms and 50 ms.
            base_latency_us: 200.0 * (250f64).powf(rng.unit()),
        })
        .collect();
    let start = Timestamp::from_second(1_793_491_200).expect("valid time");
    let start_ms = start.as_millisecond();

    println!(
        "upledger ledger bench: {probes_n} probes x {checks} checks = {total} results, \
         commits of {batch_size}, blocks of {} results",
        options.block_records
    );
    let ledger = Ledger::open_with(&path, &options).expect("open ledger");

    // Results are generated in time order (check k of every probe, then k + 1), a commit
    // at a time, so the generator holds no more than one batch in memory.
    let mut batch: Vec<ResultRecord> = Vec::with_capacity(batch_size);
    let mut commit_times: Vec<Duration> = Vec::with_capacity(total / batch_size.max(1) + 1);
    let mut failures = 0usize;
    let began = Instant::now();
    let mut flush = |batch: &mut Vec<ResultRecord>| {
        let t = Instant::now();
        ledger.append(batch).expect("append");
        commit_times.push(t.elapsed());
        batch.clear();
    };
    for k in 0..checks as i64 {
        for probe in &probes {
            // Scheduler jitter: 0-19 ms after the deadline, not accumulating.
            let at_ms = start_ms + probe.phase_ms + k * 10_000 + rng.below(20) as i64;
            let at = Timestamp::from_millisecond(at_ms).expect("valid time");
            let noise = 0.8 + 0.45 * rng.unit();
            let record = if rng.below(100) == 0 {
                failures += 1;
                let (class, detail) = FAILURES[rng.below(FAILURES.len() as u64) as usize];
                let latency = match class {
                    ErrorClass::Timeout => Duration::from_secs(10),
                    _ => Duration::from_micros((probe.base_latency_us * 0.5 * noise) as u64),
                };
                ResultRecord {
                    probe: probe.name.clone(),
                    at,
                    latency,
                    outcome: Outcome::Down,
                    error_class: Some(class),
                    detail: detail.to_owned(),
                }
            } else {
                ResultRecord {
                    probe: probe.name.clone(),
                    at,
                    latency: Duration::from_micros((probe.base_latency_us * noise) as u64),
                    outcome: Outcome::Up,
                    error_class: None,
                    detail: String::new(),
                }
            };
            batch.push(record);
            if batch.len() == batch_size {
                flush(&mut batch);
            }
        }
    }
    if !batch.is_empty() {
        flush(&mut batch);
    }
    let append_time = began.elapsed();
    ledger.flush().expect("flush");
    let size_after = ledger.size_on_disk().expect("size");
    let du_after = du_bytes(&path);

    commit_times.sort();
    let pct = |q: f64| commit_times[((commit_times.len() - 1) as f64 * q) as usize];
    println!(
        "append: {:.2} s, {:.0} results/s ({} commits; per commit p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; {failures} failures)",
        append_time.as_secs_f64(),
        total as f64 / append_time.as_secs_f64(),
        commit_times.len(),
        pct(0.5).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3,
        pct(1.0).as_secs_f64() * 1e3,
    );
    println!(
        "disk after run: {:.1} MB = {:.2} bytes/result (file lengths); {:.2} bytes/result allocated (du)",
        size_after as f64 / 1e6,
        size_after as f64 / total as f64,
        du_after as f64 / total as f64,
    );
    // sled cleans its log only in its background flusher (every 500 ms, for at most half of
    // that), so right after a burst of 1M results the file still holds garbage a daemon
    // writing ~100 results/s would long have reclaimed. Give it a few seconds.
    let settle_began = Instant::now();
    let mut settled = size_after;
    let mut still = 0;
    while settle_began.elapsed() < Duration::from_secs(20) && still < 3 {
        std::thread::sleep(Duration::from_secs(1));
        ledger.flush().expect("flush");
        let now = ledger.size_on_disk().expect("size");
        still = if now >= settled { still + 1 } else { 0 };
        settled = settled.min(now);
    }
    println!(
        "disk after {:.0} s idle (sled's background log cleaning): {:.1} MB = {:.2} bytes/result",
        settle_began.elapsed().as_secs_f64(),
        settled as f64 / 1e6,
        settled as f64 / total as f64,
    );
    let stats = ledger.stats().expect("stats");
    println!(
        "payload: {} blocks, {:.2} bytes/result in block values (+12-byte key per block)",
        stats.blocks,
        stats.block_bytes as f64 / total as f64
    );
    println!("peak RSS (VmHWM) after append: {:.1} MB", peak_rss_mb());

    // One probe over a day (it holds checks × 10 s of data), and over one hour.
    let probe = &probes[probes_n / 2].name;
    let day_from = start;
    let day_to = Timestamp::from_second(start.as_second() + 86_400).expect("valid time");
    let t = Instant::now();
    let day = ledger.results(probe, day_from, day_to).expect("results");
    let day_time = t.elapsed();
    let hour_from = Timestamp::from_second(start.as_second() + 3_600).expect("valid time");
    let hour_to = Timestamp::from_second(start.as_second() + 7_200).expect("valid time");
    let t = Instant::now();
    let hour = ledger.results(probe, hour_from, hour_to).expect("results");
    let hour_time = t.elapsed();
    let t = Instant::now();
    let last = ledger.last_results(probe, 100).expect("last results");
    let last_time = t.elapsed();
    println!(
        "results(): one probe over a day: {} results in {:.2} ms; over an hour: {} in {:.2} ms; last_results(100): {} in {:.2} ms",
        day.len(),
        day_time.as_secs_f64() * 1e3,
        hour.len(),
        hour_time.as_secs_f64() * 1e3,
        last.len(),
        last_time.as_secs_f64() * 1e3,
    );

    let t = Instant::now();
    let mut exported_bytes = 0usize;
    let exported = ledger
        .export(None, None, None, &mut |r| {
            exported_bytes += r.detail.len();
            Ok(())
        })
        .expect("export");
    let export_time = t.elapsed();
    assert_eq!(exported as usize, total, "export sees every result");
    println!(
        "export: {exported} results in {:.2} s ({:.0} results/s)",
        export_time.as_secs_f64(),
        exported as f64 / export_time.as_secs_f64(),
    );

    drop(ledger);
    let t = Instant::now();
    let patient = LedgerOptions {
        lock_wait: Duration::from_secs(10),
        ..options
    };
    let ledger = Ledger::open_with(&path, &patient).expect("reopen");
    let reopen_time = t.elapsed();
    let size_reopened = ledger.size_on_disk().expect("size");
    println!(
        "reopen: {:.2} s; disk after reopen: {:.1} MB = {:.2} bytes/result ({:.2} allocated)",
        reopen_time.as_secs_f64(),
        size_reopened as f64 / 1e6,
        size_reopened as f64 / total as f64,
        du_bytes(&path) as f64 / total as f64,
    );
    println!("peak RSS (VmHWM) after reopen: {:.1} MB", peak_rss_mb());
    let t = Instant::now();
    let verified = ledger.verify().expect("verify");
    println!(
        "verify: {verified} results decoded in {:.2} s",
        t.elapsed().as_secs_f64()
    );
    assert_eq!(verified as usize, total);
    println!("peak RSS (VmHWM) at the end: {:.1} MB", peak_rss_mb());
}
