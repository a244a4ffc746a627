//! `upledger report --month` for 1,000 probes with a full month of 30 s results in the ledger.
//!
//! `cargo bench --bench report` (several minutes: it writes ~86 million results first).
//! Reports:
//! - the time to compute the month from raw results — what the daemon pays once, in the
//!   background, when the month closes (`close_last_month`), and what a report of a month
//!   not yet closed costs;
//! - the time of `upledger report --month` afterwards, from the stored closed month — what a
//!   user waits for.
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
    let compute = || {
        monthly::month_document(
            &config,
            &ledger,
            month,
            Timestamp::now(),
            &Selection::default(),
        )
        .expect("report")
    };
    let computed = Instant::now();
    let document = compute();
    let compute_s = computed.elapsed().as_secs_f64();
    println!(
        "month computed from raw results (done once, when the month closes): {compute_s:.2} s for {} probes",
        document.probes.len()
    );
    let mut stored = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        let again = compute();
        stored.push(started.elapsed());
        assert_eq!(again, document, "a closed month reads back as computed");
    }
    stored.sort();
    println!(
        "the same month again, from its stored figures (in process): median {:.1} ms",
        stored[2].as_secs_f64() * 1e3
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
