//! `upledger report --month` for 1,000 probes with a full month of 30 s results in the ledger.
//!
//! `cargo bench --bench report` (several minutes: it writes ~86 million results first).
//! Reports:
//! - the month in progress (as of its last day) computed from raw results alone, as before
//!   digests existed;
//! - the digest pass over the month (the daemon's background work, hour by hour);
//! - the month in progress from digests — what `upledger report` costs on any day;
//! - the closed month: first computed from digests and stored, then read back;
//! - `upledger report --month` for the closed month as a whole process (sled open included);
//! - what an SLA's latency objective adds to its month (SPEC §10): its raw successful
//!   latencies are read, a day at a time, for an exact verdict.
//!
//! `UPLEDGER_BENCH_PROBES` changes the number of probes.

use std::{
    fmt::Write as _,
    time::{Duration, Instant},
};

use jiff::Timestamp;
use upledger::{
    ledger::{Ledger, ResultRecord},
    model::{ErrorClass, Outcome, ProbeName},
    query::monthly::{self, Selection},
    report::Month,
};

fn main() {
    let probes: usize = std::env::var("UPLEDGER_BENCH_PROBES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000);
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join("probes.d")).expect("probes.d");
    std::fs::write(
        dir.path().join("upledger.toml"),
        "[daemon]\nledger = \"data/ledger\"\nsocket = \"data/upledger.sock\"\n\n\
         [[sla]]\nname = \"all\"\nprobes = [\"p-1*\"]\ntarget = \"99.9%\"\n",
    )
    .expect("main");
    let mut text = String::new();
    for i in 0..probes {
        let _ = writeln!(
            text,
            "[[probe]]\nname = \"p-{i}\"\nkind = \"tcp\"\naddress = \"127.0.0.1:{}\"\ninterval = \"30s\"\n",
            1024 + i % 1000
        );
    }
    std::fs::write(dir.path().join("probes.d/bench.toml"), text).expect("probes");

    // September 2026, every 30 s, every probe; a 5-minute outage per probe on a different day.
    let start = "2026-09-01T00:00:00Z"
        .parse::<Timestamp>()
        .expect("ts")
        .as_second();
    let slots = 30 * 86_400 / 30;
    let names: Vec<ProbeName> = (0..probes)
        .map(|i| ProbeName::new(&format!("p-{i}")).expect("name"))
        .collect();
    let ledger = Ledger::open(&dir.path().join("data/ledger")).expect("ledger");
    let written = Instant::now();
    let mut batch = Vec::with_capacity(20 * probes);
    for slot in 0..slots {
        let at = Timestamp::from_second(start + slot * 30).expect("ts");
        for (i, name) in names.iter().enumerate() {
            let outage_slot = (i as i64 % 30) * 2_880 + 1_000;
            let down = (outage_slot..outage_slot + 10).contains(&slot);
            batch.push(ResultRecord {
                probe: name.clone(),
                at,
                latency: Duration::from_micros(800 + (slot as u64 * 7 + i as u64) % 4_000),
                outcome: if down { Outcome::Down } else { Outcome::Up },
                error_class: down.then_some(ErrorClass::Connect),
                detail: if down {
                    "connection refused".into()
                } else {
                    String::new()
                },
            });
        }
        if batch.len() >= 20 * probes {
            ledger.append(&batch).expect("append");
            batch.clear();
        }
    }
    ledger.append(&batch).expect("append");
    let results = slots as usize * probes;
    let write_s = written.elapsed().as_secs_f64();
    let size = ledger.size_on_disk().expect("size");
    println!(
        "ledger: {results} results ({probes} probes × {slots}) written in {write_s:.1} s ({:.0}/s), {:.1} bytes/result",
        results as f64 / write_s,
        size as f64 / results as f64
    );

    let config = upledger::config::load(&dir.path().join("upledger.toml")).expect("config");
    let month: Month = "2026-09".parse().expect("month");
    let report = |now: Timestamp| {
        monthly::month_document(&config, &ledger, month, now, &Selection::default())
            .expect("report")
    };
    let median = |runs: usize, now: Timestamp| {
        let mut times: Vec<Duration> = (0..runs)
            .map(|_| {
                let started = Instant::now();
                report(now);
                started.elapsed()
            })
            .collect();
        times.sort();
        times[runs / 2].as_secs_f64() * 1e3
    };
    // Late on the month's last day: the month in progress, which is never stored.
    let in_progress = "2026-09-30T12:00:00Z".parse::<Timestamp>().expect("ts");

    let started = Instant::now();
    let from_raw = report(in_progress);
    println!(
        "month in progress from raw results only (no digests yet): {:.2} s for {} probes",
        started.elapsed().as_secs_f64(),
        from_raw.probes.len()
    );

    let started = Instant::now();
    let hours = ledger
        .digest_until(Timestamp::now(), &|| true)
        .expect("digest");
    let digest_s = started.elapsed().as_secs_f64();
    println!(
        "digest pass over the month (the daemon does it hour by hour; import at once): {digest_s:.1} s for {hours} probe-hours, {:.0} ns/result",
        digest_s * 1e9 / results as f64
    );
    let from_digests = report(in_progress);
    assert_eq!(from_digests, from_raw, "digests change no figure");
    println!(
        "month in progress from digests (in process): median {:.1} ms",
        median(5, in_progress)
    );

    latency_objective_cost(dir.path(), &ledger, month, in_progress);

    let started = Instant::now();
    let document = report(Timestamp::now());
    println!(
        "closed month, first report (computed from digests, then stored): {:.1} ms",
        started.elapsed().as_secs_f64() * 1e3
    );
    assert_eq!(
        report(Timestamp::now()),
        document,
        "a closed month reads back as computed"
    );
    println!(
        "the same month again, from its stored figures (in process): median {:.1} ms",
        median(5, Timestamp::now())
    );
    drop(ledger);

    let mut timings = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_upledger"))
            .arg("--config")
            .arg(dir.path().join("upledger.toml"))
            .args(["report", "--month", "2026-09", "--format", "json"])
            .output()
            .expect("report");
        timings.push(started.elapsed());
        assert!(
            output.status.code().is_some_and(|c| c <= 1),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    timings.sort();
    let mut baseline = Vec::new();
    for _ in 0..3 {
        let started = Instant::now();
        let _ = std::process::Command::new(env!("CARGO_BIN_EXE_upledger"))
            .arg("--config")
            .arg(dir.path().join("upledger.toml"))
            .args([
                "history",
                "p-1",
                "--since",
                "2026-10-01T00:00:00Z",
                "--json",
            ])
            .output()
            .expect("history");
        baseline.push(started.elapsed());
    }
    baseline.sort();
    println!(
        "baseline: a query that opens the ledger and reads nothing (history of an empty window): median {:.0} ms",
        baseline[1].as_secs_f64() * 1e3
    );
    println!(
        "upledger report --month 2026-09 (closed, stored), whole process: median {:.0} ms, best {:.0} ms",
        timings[2].as_secs_f64() * 1e3,
        timings[0].as_secs_f64() * 1e3
    );
}

/// The month in progress of an SLA over ten probes (`p-10` … `p-19`), with and without a
/// latency objective: the difference is the objective's raw read, per result judged.
fn latency_objective_cost(dir: &std::path::Path, ledger: &Ledger, month: Month, now: Timestamp) {
    let main = dir.join("upledger.toml");
    let original = std::fs::read_to_string(&main).expect("main");
    std::fs::write(
        &main,
        format!(
            "{original}\n[[sla]]\nname = \"plain\"\nprobes = [\"p-1?\"]\ntarget = \"99.9%\"\n\n\
             [[sla]]\nname = \"fast\"\nprobes = [\"p-1?\"]\ntarget = \"99.9%\"\n\
             latency = {{ percentile = 95, below = \"4ms\" }}\n"
        ),
    )
    .expect("main with latency");
    let config = upledger::config::load(&main).expect("config");
    std::fs::write(&main, original).expect("main restored");
    let median = |sla: &str| {
        let selection = Selection {
            probe: None,
            sla: Some(sla.to_owned()),
        };
        let mut runs: Vec<(f64, monthly::MonthDocument)> = (0..5)
            .map(|_| {
                let started = Instant::now();
                let document = monthly::month_document(&config, ledger, month, now, &selection)
                    .expect("report");
                (started.elapsed().as_secs_f64() * 1e3, document)
            })
            .collect();
        runs.sort_by(|a, b| a.0.total_cmp(&b.0));
        runs.swap_remove(2)
    };
    let (plain_ms, _) = median("plain");
    let (fast_ms, document) = median("fast");
    let judged = document.slas[0]
        .latency_objective
        .as_ref()
        .map_or(0, |o| o.checks);
    println!(
        "an SLA of 10 probes, month in progress: median {plain_ms:.1} ms; with a latency objective \
         {fast_ms:.1} ms: +{:.1} ms for {judged} checks judged, {:.0} ns/check",
        fast_ms - plain_ms,
        (fast_ms - plain_ms) * 1e6 / judged.max(1) as f64
    );
}
