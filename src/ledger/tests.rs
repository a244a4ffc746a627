//! Ledger behaviour against real sled directories (tempfile).

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;

use super::encoding::tests::Rng;
use super::*;
use crate::model::{CheckResult, ErrorClass, Outcome};

/// 2026-11-01T00:00:00Z plus `ms` milliseconds.
pub(super) fn at(ms: i64) -> Timestamp {
    Timestamp::from_millisecond(1_793_491_200_000 + ms).unwrap()
}

pub(super) fn name(s: &str) -> ProbeName {
    ProbeName::new(s).unwrap()
}

pub(super) fn up(probe: &str, ms: i64, latency_us: u64) -> ResultRecord {
    ResultRecord {
        probe: name(probe),
        at: at(ms),
        latency: Duration::from_micros(latency_us),
        outcome: Outcome::Up,
        error_class: None,
        detail: String::new(),
    }
}

fn down(probe: &str, ms: i64, detail: &str) -> ResultRecord {
    ResultRecord {
        outcome: Outcome::Down,
        error_class: Some(ErrorClass::Connect),
        detail: detail.to_owned(),
        ..up(probe, ms, 1_500)
    }
}

/// Opens a ledger this test closed a moment ago: sled lets go of its lock only when its
/// background threads are done, so an immediate reopen must be ready to wait.
pub(super) fn reopen(path: &std::path::Path) -> Ledger {
    let options = LedgerOptions {
        lock_wait: std::time::Duration::from_secs(10),
        ..LedgerOptions::default()
    };
    Ledger::open_with(path, &options).unwrap()
}

/// [`reopen`] for a ledger that must be refused for something other than the lock.
fn reopen_err(path: &std::path::Path) -> LedgerError {
    let options = LedgerOptions {
        lock_wait: std::time::Duration::from_secs(10),
        ..LedgerOptions::default()
    };
    Ledger::open_with(path, &options).unwrap_err()
}

/// The sled database under a ledger closed a moment ago, to tamper with it.
fn raw_sled(path: &std::path::Path) -> sled::Db {
    for _ in 0..200 {
        match sled::open(path) {
            Ok(db) => return db,
            Err(_) => std::thread::sleep(std::time::Duration::from_millis(50)),
        }
    }
    sled::open(path).unwrap()
}

fn small_blocks(n: u32) -> LedgerOptions {
    LedgerOptions {
        block_records: n,
        ..LedgerOptions::default()
    }
}

pub(super) fn all(ledger: &Ledger) -> Vec<ResultRecord> {
    let mut out = Vec::new();
    ledger
        .export(None, None, None, &mut |r| {
            out.push(r.clone());
            Ok(())
        })
        .unwrap();
    out
}

/// A realistic-ish mixed series: 10 s interval with jitter, a few failures.
pub(super) fn series(probe: &str, n: i64, start_ms: i64) -> Vec<ResultRecord> {
    let mut rng = Rng::new(n as u64);
    (0..n)
        .map(|i| {
            let ms = start_ms + i * 10_000 + rng.below(20) as i64;
            match i % 17 {
                5 | 6 => down(probe, ms, "connection refused"),
                9 => down(probe, ms, "HTTP 503"),
                12 => ResultRecord {
                    outcome: Outcome::Degraded,
                    ..up(probe, ms, 900_000)
                },
                14 => ResultRecord {
                    outcome: Outcome::Unknown,
                    ..up(probe, ms, 0)
                },
                _ => up(probe, ms, 200 + rng.below(50_000)),
            }
        })
        .collect()
}

#[test]
fn ledger_is_send_sync_and_shares_through_arc() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Ledger>();
    assert_send_sync::<LedgerError>();

    let dir = tempfile::tempdir().unwrap();
    // Small blocks, so the writer seals blocks while readers scan them.
    let ledger = Arc::new(Ledger::open_with(dir.path(), &small_blocks(7)).unwrap());
    let written = series("api", 2_000, 0);
    let writer = {
        let ledger = Arc::clone(&ledger);
        let written = written.clone();
        std::thread::spawn(move || {
            for chunk in written.chunks(3) {
                ledger.append(chunk).unwrap();
            }
        })
    };
    // Reads while the writer appends and seals: always a prefix of what was written — no
    // record lost or seen twice when a block moves from open to sealed mid-scan.
    let mut reads = 0;
    while !writer.is_finished() || reads < 20 {
        let seen = ledger
            .results(&name("api"), at(0), at(100_000_000))
            .unwrap();
        assert_eq!(seen, written[..seen.len()]);
        let last = ledger.last_results(&name("api"), 10).unwrap();
        if let Some(newest) = last.last() {
            let end = written.iter().position(|r| r == newest).unwrap() + 1;
            assert_eq!(last, written[end.saturating_sub(10)..end]);
        }
        reads += 1;
    }
    writer.join().unwrap();
    assert_eq!(
        ledger
            .results(&name("api"), at(0), at(100_000_000))
            .unwrap(),
        written
    );
}

#[test]
fn append_then_read_back_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::open(dir.path()).unwrap();
    let written = series("api", 300, 0);
    ledger.append(&written).unwrap();
    let read = ledger.results(&name("api"), at(0), at(3_000_000)).unwrap();
    assert_eq!(read, written);
    assert!(
        ledger
            .results(&name("nope"), at(0), at(1))
            .unwrap()
            .is_empty()
    );
}

#[test]
fn ranges_are_half_open_at_millisecond_precision() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::open_with(dir.path(), &small_blocks(3)).unwrap();
    let written: Vec<_> = (0..10).map(|i| up("api", i * 1000, 10)).collect();
    ledger.append(&written).unwrap();
    let get = |from: Timestamp, to: Timestamp| {
        ledger
            .results(&name("api"), from, to)
            .unwrap()
            .iter()
            .map(|r| r.at)
            .collect::<Vec<_>>()
    };
    assert_eq!(get(at(2000), at(5000)), vec![at(2000), at(3000), at(4000)]);
    assert_eq!(get(at(2001), at(5001)), vec![at(3000), at(4000), at(5000)]);
    // A bound with sub-millisecond digits: 1999.5 ms includes 2000, excludes 1000.
    let half = at(1999) + jiff::SignedDuration::from_micros(500);
    assert_eq!(get(half, at(3000)), vec![at(2000)]);
    assert_eq!(get(at(5000), at(5000)), vec![]);
    assert_eq!(get(at(6000), at(2000)), vec![]);
    assert_eq!(get(at(-10_000_000), at(10_000_000)).len(), 10);
}

#[test]
fn blocks_roll_over_by_count_and_by_span() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::open_with(dir.path(), &small_blocks(4)).unwrap();
    let written: Vec<_> = (0..10).map(|i| up("api", i * 1000, 10)).collect();
    ledger.append(&written).unwrap();
    assert_eq!(
        ledger.store().unwrap().results.len(),
        3,
        "4 + 4 + 2 records"
    );

    // Seven hours later: beyond the 6 h span, so a new block even though there is room.
    let later = up("api", 9_000 + 7 * 3_600_000, 10);
    ledger.append(std::slice::from_ref(&later)).unwrap();
    assert_eq!(ledger.store().unwrap().results.len(), 4);
    // And a result within the span continues that block.
    ledger
        .append(&[up("api", 10_000 + 7 * 3_600_000, 10)])
        .unwrap();
    assert_eq!(ledger.store().unwrap().results.len(), 4);

    // A scan starting in the middle of a block, crossing into the next ones.
    let mid = ledger.results(&name("api"), at(2500), at(8500)).unwrap();
    let times: Vec<_> = mid.iter().map(|r| r.at).collect();
    assert_eq!(times, (3..=8).map(|i| at(i * 1000)).collect::<Vec<_>>());
    // A scan that only touches the late block, more than 6 h after the first.
    let late = ledger
        .results(&name("api"), at(7 * 3_600_000), at(8 * 3_600_000))
        .unwrap();
    assert_eq!(late.len(), 2);
    assert_eq!(late[0], later);
}

#[test]
fn many_blocks_and_many_probes_stay_separate() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::open_with(dir.path(), &small_blocks(16)).unwrap();
    let probes = ["a", "b", "c-long.name_1"];
    // Interleaved like the daemon's batches: one result per probe per step.
    let per_probe: Vec<Vec<ResultRecord>> = probes.iter().map(|p| series(p, 400, 5)).collect();
    for step in (0..400).step_by(25) {
        let batch: Vec<_> = (step..step + 25)
            .flat_map(|i| per_probe.iter().map(move |s| s[i].clone()))
            .collect();
        ledger.append(&batch).unwrap();
    }
    for (probe, written) in probes.iter().zip(&per_probe) {
        let read = ledger.results(&name(probe), at(0), at(10_000_000)).unwrap();
        assert_eq!(&read, written);
        // Every sub-range agrees with filtering the full list.
        let mut rng = Rng::new(11);
        for _ in 0..50 {
            let from = rng.below(4_100_000) as i64 - 50_000;
            let to = from + rng.below(1_000_000) as i64;
            let expect: Vec<_> = written
                .iter()
                .filter(|r| r.at >= at(from) && r.at < at(to))
                .cloned()
                .collect();
            assert_eq!(
                ledger.results(&name(probe), at(from), at(to)).unwrap(),
                expect
            );
        }
    }
    assert_eq!(
        ledger.probes().unwrap(),
        vec![name("a"), name("b"), name("c-long.name_1")]
    );
}

#[test]
fn last_results_are_the_newest_oldest_first() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::open_with(dir.path(), &small_blocks(7)).unwrap();
    let written = series("api", 100, 0);
    ledger.append(&written).unwrap();
    for n in [0, 1, 6, 7, 8, 50, 100, 1000] {
        let got = ledger.last_results(&name("api"), n).unwrap();
        let skip = written.len().saturating_sub(n);
        assert_eq!(got, written[skip..], "n = {n}");
    }
    assert!(ledger.last_results(&name("other"), 5).unwrap().is_empty());
}

#[test]
fn out_of_order_results_go_to_a_new_block_and_read_sorted() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::open_with(dir.path(), &small_blocks(100)).unwrap();
    ledger
        .append(&[
            up("api", 10_000, 1),
            up("api", 20_000, 2),
            up("api", 30_000, 3),
        ])
        .unwrap();
    // The clock stepped back: 15 s and, in the same batch, 10 s again (a clashing block start).
    ledger
        .append(&[
            up("api", 15_000, 4),
            up("api", 10_000, 5),
            up("api", 40_000, 6),
        ])
        .unwrap();
    let read = ledger.results(&name("api"), at(0), at(100_000)).unwrap();
    let times: Vec<_> = read.iter().map(|r| r.at).collect();
    assert_eq!(
        times,
        [10_000, 10_000, 15_000, 20_000, 30_000, 40_000].map(at)
    );
    // Two results at the same instant may come back in either order.
    let mut pairs: Vec<_> = read.iter().map(|r| (r.at, r.latency.as_micros())).collect();
    pairs.sort();
    assert_eq!(
        pairs,
        vec![
            (at(10_000), 1),
            (at(10_000), 5),
            (at(15_000), 4),
            (at(20_000), 2),
            (at(30_000), 3),
            (at(40_000), 6)
        ]
    );
    let last: Vec<_> = ledger
        .last_results(&name("api"), 3)
        .unwrap()
        .iter()
        .map(|r| r.latency.as_micros())
        .collect();
    assert_eq!(last, vec![2, 3, 6]);
}

#[test]
fn reopen_keeps_data_and_appends_in_new_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let first = series("api", 50, 0);
    let second = series("api", 50, 600_000);
    {
        let ledger = Ledger::open(dir.path()).unwrap();
        ledger.append(&first).unwrap();
        ledger.append(&[up("web", 0, 1)]).unwrap();
        assert_eq!(ledger.store().unwrap().results.len(), 2);
    }
    let ledger = reopen(dir.path());
    assert_eq!(
        ledger.results(&name("api"), at(0), at(600_000)).unwrap(),
        first
    );
    ledger.append(&second).unwrap();
    assert_eq!(
        ledger.store().unwrap().results.len(),
        3,
        "a new block after reopen"
    );
    let mut both = first.clone();
    both.extend(second);
    assert_eq!(
        ledger.results(&name("api"), at(0), at(2_000_000)).unwrap(),
        both
    );
    // Probe ids survive too: a new probe gets a fresh id, old names keep theirs.
    ledger.append(&[up("zeta", 0, 1)]).unwrap();
    assert_eq!(
        ledger.probes().unwrap(),
        vec![name("api"), name("web"), name("zeta")]
    );
    assert_eq!(ledger.results(&name("web"), at(0), at(1)).unwrap().len(), 1);
}

#[test]
fn a_different_format_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    drop(Ledger::open(dir.path()).unwrap());
    {
        let db = raw_sled(dir.path());
        db.open_tree(META_TREE)
            .unwrap()
            .insert(FORMAT_KEY, &99u32.to_be_bytes()[..])
            .unwrap();
        db.flush().unwrap();
    }
    let err = reopen_err(dir.path());
    assert!(
        matches!(
            err,
            LedgerError::FormatVersion {
                found: 99,
                expected: FORMAT_VERSION,
                ..
            }
        ),
        "{err}"
    );
    let message = err.to_string();
    assert!(
        message.contains(&dir.path().display().to_string()),
        "{message}"
    );
    assert!(message.contains("format version 99"), "{message}");
}

#[test]
fn data_without_a_format_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = sled::open(dir.path()).unwrap();
        db.open_tree(RESULTS_TREE)
            .unwrap()
            .insert(b"x", &b"y"[..])
            .unwrap();
        db.flush().unwrap();
    }
    let err = reopen_err(dir.path());
    assert!(matches!(err, LedgerError::Corrupt { .. }), "{err}");
}

/// sled's lock is a `flock` on the directory's `db` file, held per open file description, so a
/// second open conflicts even inside one process: the daemon-holds-it case needs no child
/// process to test.
#[test]
fn a_second_open_reports_the_lock() {
    let dir = tempfile::tempdir().unwrap();
    let _daemon = Ledger::open(dir.path()).unwrap();
    let err = Ledger::open(dir.path()).unwrap_err();
    assert!(matches!(err, LedgerError::Locked { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains("another upledger process (the daemon)"),
        "{message}"
    );
    assert!(
        message.contains(&dir.path().display().to_string()),
        "{message}"
    );
}

#[test]
fn import_stores_any_order_and_merges_with_live_results() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::open_with(dir.path(), &small_blocks(8)).unwrap();
    let live = series("api", 30, 1_000_000);
    ledger.append(&live).unwrap();
    let mut imported = series("api", 100, 5); // overlaps the live range in time
    imported.retain(|r| !live.iter().any(|l| l.at == r.at));
    imported.extend(series("db", 40, 0));
    imported.reverse();
    let mut rng = Rng::new(3);
    for i in (1..imported.len()).rev() {
        imported.swap(i, rng.below(i as u64 + 1) as usize);
    }
    assert_eq!(ledger.import(&imported).unwrap(), imported.len());

    let mut expect: Vec<_> = live.iter().chain(&imported).cloned().collect();
    expect.sort_by(|a, b| a.probe.cmp(&b.probe).then(a.at.cmp(&b.at)));
    assert_eq!(all(&ledger), expect);
    // Appending continues the live block untouched by the import.
    ledger.append(&[up("api", 2_000_000, 9)]).unwrap();
    assert_eq!(
        ledger.last_results(&name("api"), 1).unwrap()[0]
            .latency
            .as_micros(),
        9
    );
}

#[test]
fn import_refuses_duplicates_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::open(dir.path()).unwrap();
    ledger.append(&series("api", 20, 0)).unwrap();
    let before = all(&ledger);
    let keys_before = ledger.store().unwrap().results.len();
    let probes_before = ledger.store().unwrap().probes.len();

    // Clashes with a stored result (same millisecond, different content).
    let mut clash = series("fresh", 5, 0);
    clash.push(ResultRecord {
        latency: Duration::from_millis(77),
        ..before[7].clone()
    });
    let err = ledger.import(&clash).unwrap_err();
    assert!(
        matches!(&err, LedgerError::Duplicate { probe, at, existing: true } if *probe == name("api") && *at == before[7].at),
        "{err}"
    );
    assert!(err.to_string().contains("already in the ledger"), "{err}");

    // Twice within the input, for a probe the ledger has never seen.
    let mut twice = series("fresh", 5, 0);
    twice.push(twice[2].clone());
    let err = ledger.import(&twice).unwrap_err();
    assert!(
        matches!(
            err,
            LedgerError::Duplicate {
                existing: false,
                ..
            }
        ),
        "{err}"
    );

    // Sub-millisecond differences are the same stored instant.
    let mut close = series("fresh", 2, 0);
    close[1].at = close[0].at + jiff::SignedDuration::from_micros(300);
    assert!(matches!(
        ledger.import(&close).unwrap_err(),
        LedgerError::Duplicate { .. }
    ));

    assert_eq!(all(&ledger), before);
    assert_eq!(ledger.store().unwrap().results.len(), keys_before);
    assert_eq!(
        ledger.store().unwrap().probes.len(),
        probes_before,
        "no probe registered"
    );
    assert_eq!(ledger.probes().unwrap(), vec![name("api")]);
}

#[test]
fn export_is_ordered_by_probe_then_time_and_filters() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::open_with(dir.path(), &small_blocks(5)).unwrap();
    // Registered in the order zeta, alpha, mid: ids do not decide the order, names do.
    for step in 0..20 {
        ledger
            .append(&[
                up("zeta", step * 1000, 1),
                up("alpha", step * 1000 + 1, 2),
                up("mid", step * 1000 + 2, 3),
            ])
            .unwrap();
    }
    let exported = all(&ledger);
    assert_eq!(exported.len(), 60);
    let order: Vec<_> = exported.iter().map(|r| (r.probe.clone(), r.at)).collect();
    let mut sorted = order.clone();
    sorted.sort();
    assert_eq!(order, sorted);

    let mut seen = Vec::new();
    let count = ledger
        .export(
            Some(&name("mid")),
            Some(at(5_000)),
            Some(at(8_000)),
            &mut |r| {
                seen.push(r.at);
                Ok(())
            },
        )
        .unwrap();
    assert_eq!(count, 3);
    assert_eq!(seen, vec![at(5_002), at(6_002), at(7_002)]);
    assert_eq!(
        ledger
            .export(Some(&name("unknown")), None, None, &mut |_| Ok(()))
            .unwrap(),
        0
    );

    // A failing consumer stops the export and its error comes back.
    let mut calls = 0;
    let err = ledger
        .export(None, None, None, &mut |_| {
            calls += 1;
            if calls == 3 {
                Err(LedgerError::sink(std::io::Error::from(
                    std::io::ErrorKind::BrokenPipe,
                )))
            } else {
                Ok(())
            }
        })
        .unwrap_err();
    assert_eq!(calls, 3);
    assert!(matches!(err, LedgerError::Sink { .. }), "{err}");
}

fn hour(h: i64) -> RollupPeriod {
    RollupPeriod {
        kind: RollupKind::Hour,
        start: at(h * 3_600_000),
    }
}

#[test]
fn rollups_are_stored_per_probe_kind_and_period_and_replaced_whole() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::open(dir.path()).unwrap();
    let rollup = |checks, down_ms, latency_ms| {
        let mut r = Rollup {
            checks,
            failed_checks: u64::from(down_ms > 0),
            up_ms: 10_000 - down_ms,
            down_ms,
            ..Rollup::default()
        };
        r.record_latency(Duration::from_millis(latency_ms));
        r
    };
    let month = RollupPeriod {
        kind: RollupKind::Month,
        start: at(0),
    };
    for i in 0..10u64 {
        // Each write replaces the last: a rollup recomputed twice is not counted twice.
        ledger
            .put_rollup(&name("api"), hour(0), &rollup(1, 0, 10))
            .unwrap();
        ledger
            .put_rollup(&name("api"), hour(1), &rollup(i, 1000 * i, 20))
            .unwrap();
        ledger
            .put_rollup(&name("api"), month, &rollup(2, 5, 30))
            .unwrap();
        ledger
            .put_rollup(&name("db"), hour(0), &rollup(3, 0, 40))
            .unwrap();
    }
    ledger.flush().unwrap();
    let hours = ledger
        .rollups(&name("api"), RollupKind::Hour, at(0), at(10 * 3_600_000))
        .unwrap();
    assert_eq!(hours.len(), 2);
    assert_eq!(hours[0].0, at(0));
    assert_eq!(hours[0].1.checks, 1);
    assert_eq!(hours[0].1.up_ms, 10_000);
    assert_eq!(hours[1].0, at(3_600_000));
    assert_eq!(hours[1].1.down_ms, 9_000);
    assert_eq!(hours[1].1.checks, 9);
    let p50 = hours[1].1.latency_percentile(0.5).unwrap();
    assert!(
        p50 > Duration::from_millis(16) && p50 < Duration::from_millis(23),
        "{p50:?}"
    );
    // The half-open range excludes a period starting at `to`.
    assert_eq!(
        ledger
            .rollups(&name("api"), RollupKind::Hour, at(0), at(3_600_000))
            .unwrap()
            .len(),
        1
    );
    let months = ledger
        .rollups(&name("api"), RollupKind::Month, at(0), at(1))
        .unwrap();
    assert_eq!(months.len(), 1);
    assert_eq!(months[0].1.checks, 2);
    assert_eq!(
        ledger
            .rollups(&name("db"), RollupKind::Hour, at(0), at(1))
            .unwrap()[0]
            .1
            .checks,
        3
    );
    // Rollups alone do not make a probe "have results".
    assert!(ledger.probes().unwrap().is_empty());
}

#[test]
fn rollups_written_before_a_flush_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let ledger = Ledger::open(dir.path()).unwrap();
        let rollup = Rollup {
            checks: 1,
            ..Rollup::default()
        };
        ledger.put_rollup(&name("api"), hour(0), &rollup).unwrap();
        ledger.append(&[up("api", 0, 5)]).unwrap(); // the group commit
    }
    let ledger = reopen(dir.path());
    let stored = ledger
        .rollups(&name("api"), RollupKind::Hour, at(0), at(1))
        .unwrap();
    assert_eq!(stored[0].1.checks, 1);
}

#[test]
fn prune_drops_whole_old_blocks_and_keeps_rollups() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::open_with(dir.path(), &small_blocks(10)).unwrap();
    let written: Vec<_> = (0..95).map(|i| up("api", i * 1000, 1)).collect();
    ledger.append(&written).unwrap();
    let rollup = Rollup {
        checks: 95,
        ..Rollup::default()
    };
    ledger.put_rollup(&name("api"), hour(0), &rollup).unwrap();

    // Cutoff at 25 s: blocks [0..9] and [10..19] go; [20..29] holds 25 s and later, stays.
    assert_eq!(ledger.prune_before(at(25_000)).unwrap(), 20);
    let left = ledger.results(&name("api"), at(0), at(1_000_000)).unwrap();
    assert_eq!(left, written[20..]);
    assert_eq!(ledger.prune_before(at(25_000)).unwrap(), 0);

    // Pruning everything, including the open block; appending afterwards still works.
    assert_eq!(ledger.prune_before(at(1_000_000)).unwrap(), 75);
    assert!(ledger.probes().unwrap().is_empty());
    ledger
        .append(&[up("api", 100_000, 1), up("api", 101_000, 2)])
        .unwrap();
    assert_eq!(
        ledger
            .results(&name("api"), at(0), at(1_000_000))
            .unwrap()
            .len(),
        2
    );
    assert_eq!(ledger.verify().unwrap(), 2);

    let rollups = ledger
        .rollups(&name("api"), RollupKind::Hour, at(0), at(1))
        .unwrap();
    assert_eq!(rollups[0].1.checks, 95);
}

#[test]
fn corrupt_blocks_are_reported_not_panicked_on() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::open_with(dir.path(), &small_blocks(10)).unwrap();
    ledger.append(&series("api", 30, 0)).unwrap();
    let (key, value) = ledger
        .store()
        .unwrap()
        .results
        .iter()
        .nth(1)
        .unwrap()
        .unwrap();

    let mut rng = Rng::new(8);
    for round in 0..200 {
        let mut damaged = value.to_vec();
        match round % 3 {
            0 => damaged.truncate(rng.below(damaged.len() as u64) as usize),
            1 => {
                let i = rng.below(damaged.len() as u64) as usize;
                damaged[i] ^= 1 << rng.below(8);
            }
            _ => damaged.extend((0..1 + rng.below(8)).map(|_| rng.next() as u8)),
        }
        ledger
            .store()
            .unwrap()
            .results
            .insert(&key, damaged)
            .unwrap();
        // Any outcome but a panic; a detected problem names the probe and the key.
        if let Err(err) = ledger.results(&name("api"), at(0), at(1_000_000)) {
            assert!(matches!(err, LedgerError::Corrupt { .. }), "{err}");
            let message = err.to_string();
            assert!(
                message.contains("probe api") && message.contains("key"),
                "{message}"
            );
        }
        let _ = ledger.last_results(&name("api"), 5);
        let _ = ledger.verify();
    }

    ledger
        .store()
        .unwrap()
        .results
        .insert(&key, &[1u8, 0, 0xff][..])
        .unwrap();
    let err = ledger
        .results(&name("api"), at(0), at(1_000_000))
        .unwrap_err();
    assert!(matches!(err, LedgerError::Corrupt { .. }), "{err}");
    assert!(matches!(
        ledger.verify().unwrap_err(),
        LedgerError::Corrupt { .. }
    ));
    assert!(matches!(
        ledger
            .export(None, None, None, &mut |_| Ok(()))
            .unwrap_err(),
        LedgerError::Corrupt { .. }
    ));

    ledger
        .store()
        .unwrap()
        .rollups
        .insert(rollup::rollup_key(1, RollupKind::Hour, 0), &[9u8][..])
        .unwrap();
    assert!(matches!(
        ledger.rollups(
            &name("api"),
            RollupKind::Hour,
            at(-1_793_491_200_000),
            at(0)
        ),
        Err(LedgerError::Corrupt { .. })
    ));
}

#[test]
fn markers_round_trip_in_time_order() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::open(dir.path()).unwrap();
    let stop = Marker {
        at: at(60_000),
        kind: MarkerKind::DaemonStop,
    };
    let start = Marker {
        at: at(0),
        kind: MarkerKind::DaemonStart,
    };
    let restart = Marker {
        at: at(90_000),
        kind: MarkerKind::DaemonStart,
    };
    for marker in [stop, restart, start] {
        ledger.record_marker(marker).unwrap();
    }
    assert_eq!(
        ledger.markers(at(0), at(100_000)).unwrap(),
        vec![start, stop, restart]
    );
    assert_eq!(ledger.markers(at(1), at(90_000)).unwrap(), vec![stop]);
    assert!(ledger.markers(at(100_000), at(0)).unwrap().is_empty());
}

#[test]
fn write_outage_markers_round_trip_beside_old_start_and_stop_markers() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::open(dir.path()).unwrap();
    // A start as every earlier version stored it: key only, empty value.
    let mut key = [0u8; 9];
    key[..8].copy_from_slice(&ordered_ms(ms_floor(at(0))));
    key[8] = 1;
    ledger
        .store()
        .unwrap()
        .markers
        .insert(key, Vec::new())
        .unwrap();
    let outage = Marker {
        at: at(10),
        kind: MarkerKind::WritesFailed(WriteOutage {
            until: at(70),
            lost: 66_100,
            lost_between: Some((at(11), at(69))),
        }),
    };
    let nothing_lost = Marker {
        at: at(100),
        kind: MarkerKind::WritesFailed(WriteOutage {
            until: at(130),
            lost: 0,
            lost_between: None,
        }),
    };
    ledger.record_marker(outage).unwrap();
    ledger.record_marker(nothing_lost).unwrap();
    let start = Marker {
        at: at(0),
        kind: MarkerKind::DaemonStart,
    };
    assert_eq!(
        ledger.markers(at(0), at(1_000)).unwrap(),
        vec![start, outage, nothing_lost]
    );
    // A write-outage key whose value is not one is reported, not skipped.
    key[..8].copy_from_slice(&ordered_ms(ms_floor(at(500))));
    key[8] = 3;
    ledger
        .store()
        .unwrap()
        .markers
        .insert(key, vec![9, 9])
        .unwrap();
    assert!(matches!(
        ledger.markers(at(0), at(1_000)),
        Err(LedgerError::Corrupt { .. })
    ));
}

#[test]
fn records_from_check_results_keep_the_stored_precision() {
    let probe = name("api");
    let started = Timestamp::new(1_793_491_200, 123_456_789).unwrap();
    let mut result = CheckResult::failure(
        probe.clone(),
        started,
        Duration::from_nanos(12_345_678),
        ErrorClass::Timeout,
        "timed out after 10s",
    );
    result.cert = None;
    let record = ResultRecord::from(&result);
    assert_eq!(
        record.at,
        Timestamp::new(1_793_491_200, 123_000_000).unwrap()
    );
    assert_eq!(record.latency, Duration::from_micros(12_345));
    assert_eq!(record.outcome, Outcome::Down);
    assert_eq!(record.error_class, Some(ErrorClass::Timeout));

    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::open(dir.path()).unwrap();
    ledger.append(std::slice::from_ref(&record)).unwrap();
    assert_eq!(ledger.last_results(&probe, 1).unwrap(), vec![record]);
}

#[test]
fn size_on_disk_counts_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::open(dir.path()).unwrap();
    ledger.append(&series("api", 100, 0)).unwrap();
    assert!(ledger.size_on_disk().unwrap() > 0);
}

#[test]
fn after_a_failed_write_the_next_one_starts_from_disk() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::open_with(dir.path(), &small_blocks(10)).unwrap();
    let written = series("api", 25, 0);
    ledger.append(&written[..15]).unwrap();
    // What `append` does when sled fails part-way: forget the writer's copies.
    {
        let mut writer = ledger.lock_writer();
        ledger.open_blocks_mut().clear();
        writer.stale = true;
    }
    ledger.append(&written[15..]).unwrap();
    assert_eq!(
        ledger.results(&name("api"), at(0), at(1_000_000)).unwrap(),
        written
    );
    // The open block of 5 was sealed as it was, and the rest went to a new block.
    assert_eq!(ledger.stats().unwrap().blocks, 3);
    assert_eq!(ledger.verify().unwrap(), 25);
}

const HOUR: i64 = 3_600_000;

/// What the digest of `records` (one probe, in time order) must hold, hour by hour.
fn expected_digests(records: &[ResultRecord], until_ms: i64) -> Vec<(Timestamp, u64, usize)> {
    let mut hours: Vec<(Timestamp, u64, usize)> = Vec::new();
    let mut runs_of_hour: Vec<crate::model::Run> = Vec::new();
    let mut current: Option<i64> = None;
    for record in records.iter().filter(|r| r.at < at(until_ms)) {
        let hour = record.at.as_millisecond().div_euclid(HOUR) * HOUR;
        if current != Some(hour) {
            if let Some(h) = current {
                let checks = runs_of_hour.iter().map(|r| u64::from(r.count)).sum();
                hours.push((
                    Timestamp::from_millisecond(h).unwrap(),
                    checks,
                    runs_of_hour.len(),
                ));
            }
            runs_of_hour.clear();
            current = Some(hour);
        }
        crate::model::push_run(
            &mut runs_of_hour,
            Duration::MAX,
            record.at,
            record.outcome,
            record.error_class,
            &record.detail,
        );
    }
    if let Some(h) = current {
        let checks = runs_of_hour.iter().map(|r| u64::from(r.count)).sum();
        hours.push((
            Timestamp::from_millisecond(h).unwrap(),
            checks,
            runs_of_hour.len(),
        ));
    }
    hours
}

fn digest_shape(digests: &[HourDigest]) -> Vec<(Timestamp, u64, usize)> {
    digests
        .iter()
        .map(|d| (d.hour, d.checks(), d.runs.len()))
        .collect()
}

#[test]
fn digests_hold_each_whole_hour_of_raw_results() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::open_with(dir.path(), &small_blocks(50)).unwrap();
    let api = series("api", 1_800, 0); // five hours at 10 s
    ledger.append(&api).unwrap();
    ledger.append(&series("web", 400, 2 * HOUR)).unwrap();
    assert_eq!(ledger.digest_coverage(&name("api")).unwrap(), None);

    let hours = ledger
        .digest_until(at(3 * HOUR + 120_000), &|| true)
        .unwrap();
    assert_eq!(hours, 3 + 1, "api from its first hour, web from its own");
    assert_eq!(
        ledger.digest_coverage(&name("api")).unwrap(),
        Some(at(3 * HOUR))
    );
    let digests = ledger.digests(&name("api"), at(0), at(10 * HOUR)).unwrap();
    assert_eq!(digest_shape(&digests), expected_digests(&api, 3 * HOUR));
    let failed: u64 = digests.iter().map(HourDigest::failed_checks).sum();
    let raw_failed = api
        .iter()
        .filter(|r| r.at < at(3 * HOUR) && r.outcome == Outcome::Down)
        .count() as u64;
    assert_eq!(failed, raw_failed);
    let down = digests[0]
        .runs
        .iter()
        .find(|r| r.outcome == Outcome::Down)
        .unwrap();
    assert_eq!(down.detail, "connection refused");
    assert_eq!(down.error_class, Some(ErrorClass::Connect));
    // A range inside the covered hours, and nothing past the coverage.
    assert_eq!(
        ledger
            .digests(&name("api"), at(HOUR), at(2 * HOUR))
            .unwrap()
            .len(),
        1
    );
    assert!(
        ledger
            .digests(&name("api"), at(3 * HOUR), at(5 * HOUR))
            .unwrap()
            .is_empty()
    );
    // Running again goes on from the coverage.
    assert_eq!(ledger.digest_until(at(5 * HOUR), &|| true).unwrap(), 2 + 2);
    let digests = ledger.digests(&name("api"), at(0), at(5 * HOUR)).unwrap();
    assert_eq!(digest_shape(&digests), expected_digests(&api, 5 * HOUR));
}

#[test]
fn results_written_behind_the_coverage_redigest_their_hour() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::open(dir.path()).unwrap();
    let mut api = series("api", 720, 0); // two hours
    ledger.append(&api).unwrap();
    ledger.digest_until(at(2 * HOUR), &|| true).unwrap();

    // A check that ended late, appended after its hour was digested.
    let late = down("api", HOUR + 5, "late and down");
    ledger.append(std::slice::from_ref(&late)).unwrap();
    // An import into the first hour.
    let imported = up("api", 1_234, 77);
    ledger.import(std::slice::from_ref(&imported)).unwrap();
    api.push(late);
    api.push(imported);
    api.sort_by_key(|r| r.at);

    let digests = ledger.digests(&name("api"), at(0), at(2 * HOUR)).unwrap();
    assert_eq!(digest_shape(&digests), expected_digests(&api, 2 * HOUR));
    assert!(digests[1].runs.iter().any(|r| r.detail == "late and down"));
    // Survives a reopen, like everything else.
    drop(ledger);
    let ledger = reopen(dir.path());
    let again = ledger.digests(&name("api"), at(0), at(2 * HOUR)).unwrap();
    assert_eq!(again, digests);
}

#[test]
fn digests_outlive_pruning_and_a_stopped_pass_goes_on_later() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::open_with(dir.path(), &small_blocks(10)).unwrap();
    let api = series("api", 1_080, 0); // three hours
    ledger.append(&api).unwrap();
    assert_eq!(ledger.digest_until(at(3 * HOUR), &|| false).unwrap(), 0);
    assert_eq!(ledger.digest_coverage(&name("api")).unwrap(), None);

    ledger.digest_until(at(3 * HOUR), &|| true).unwrap();
    let before = ledger.digests(&name("api"), at(0), at(3 * HOUR)).unwrap();
    assert!(ledger.prune_before(at(2 * HOUR)).unwrap() > 0);
    assert!(
        ledger
            .results(&name("api"), at(0), at(HOUR))
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        ledger.digests(&name("api"), at(0), at(3 * HOUR)).unwrap(),
        before
    );
}

/// Blocks of 10 and no checkpoint unless asked: results stay in the journal.
fn journaled() -> LedgerOptions {
    LedgerOptions {
        checkpoint_every: Duration::from_secs(3_600),
        ..small_blocks(10)
    }
}

/// The stored copy of probe `id`'s open block, as a restart would read it.
fn stored_open_block(ledger: &Ledger, id: u32) -> Option<Vec<u8>> {
    ledger
        .store()
        .unwrap()
        .results
        .get(blocks::open_key(id))
        .unwrap()
        .map(|v| v.to_vec())
}

#[test]
fn results_only_in_the_journal_are_read_and_survive_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let written = [series("api", 25, 0), series("db", 7, 500)].concat();
    {
        let ledger = Ledger::open_with(dir.path(), &journaled()).unwrap();
        for chunk in written.chunks(4) {
            ledger.append(chunk).unwrap();
        }
        // The journal holds them, the stored open blocks lag behind...
        assert_eq!(
            ledger.store().unwrap().journal.len(),
            written.chunks(4).len()
        );
        let api = ledger.probe_id(&name("api")).unwrap().unwrap();
        let stored = stored_open_block(&ledger, api).unwrap();
        let open_len = ledger.open_blocks().get(&api).unwrap().bytes.len();
        assert!(
            stored.len() < 8 + open_len,
            "the stored open block is behind memory"
        );
        // ...and readers see them all the same.
        assert_eq!(all(&ledger), written);
        assert_eq!(
            ledger.last_results(&name("api"), 3).unwrap(),
            written[22..25]
        );
        // A crash: no checkpoint.
    }
    let ledger = reopen(dir.path());
    assert!(
        ledger.store().unwrap().journal.is_empty(),
        "replayed and cleared at open"
    );
    assert_eq!(all(&ledger), written);
    assert_eq!(ledger.verify().unwrap(), 32);
    // And the next results go on after them.
    ledger.append(&series("api", 3, 90_000)).unwrap();
    assert_eq!(
        ledger
            .results(&name("api"), at(0), at(1_000_000))
            .unwrap()
            .len(),
        28
    );
}

#[test]
fn a_checkpoint_cut_short_by_a_crash_stores_nothing_twice() {
    let dir = tempfile::tempdir().unwrap();
    let written = series("api", 27, 0);
    {
        let ledger = Ledger::open_with(dir.path(), &journaled()).unwrap();
        ledger.append(&written).unwrap();
        // The first half of a checkpoint: the blocks are stored, the journal is not cleared.
        ledger.store_changed_open_blocks().unwrap();
        ledger.flush().unwrap();
        assert!(!ledger.store().unwrap().journal.is_empty());
    }
    let ledger = reopen(dir.path());
    assert_eq!(all(&ledger), written, "each record once");
    assert!(ledger.store().unwrap().journal.is_empty());
}

#[test]
fn checkpoints_store_open_blocks_and_clear_the_journal() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::open_with(dir.path(), &journaled()).unwrap();
    let written = series("api", 15, 0);
    ledger.append(&written).unwrap();
    assert_eq!(ledger.store().unwrap().journal.len(), 1);
    ledger.checkpoint().unwrap();
    assert!(ledger.store().unwrap().journal.is_empty());
    let api = ledger.probe_id(&name("api")).unwrap().unwrap();
    let open = ledger
        .open_blocks()
        .get(&api)
        .map(|b| (b.changed, b.bytes.clone()));
    let (changed, bytes) = open.unwrap();
    assert!(!changed);
    // Stored as version 2: the same records, then the checksum.
    let stored = stored_open_block(&ledger, api).unwrap();
    assert_eq!((stored[8], bytes[0]), (2, 1));
    assert_eq!(stored[9..stored.len() - 4], bytes[1..]);
    assert_eq!(all(&ledger), written);

    // With `checkpoint_every` zero, every commit checkpoints.
    let dir = tempfile::tempdir().unwrap();
    let eager = LedgerOptions {
        checkpoint_every: Duration::ZERO,
        ..small_blocks(10)
    };
    let ledger = Ledger::open_with(dir.path(), &eager).unwrap();
    ledger.append(&written).unwrap();
    assert!(ledger.store().unwrap().journal.is_empty());
}

#[test]
fn pruned_results_do_not_come_back_from_the_journal() {
    let dir = tempfile::tempdir().unwrap();
    {
        let ledger = Ledger::open_with(dir.path(), &journaled()).unwrap();
        ledger.append(&series("api", 25, 0)).unwrap();
        assert_eq!(ledger.prune_before(at(10_000_000)).unwrap(), 25);
        assert!(all(&ledger).is_empty());
    }
    let ledger = reopen(dir.path());
    assert!(all(&ledger).is_empty());
}

#[test]
fn a_retried_batch_is_stored_once_when_its_failed_attempt_was_stored_after_all() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::open_with(dir.path(), &small_blocks(10)).unwrap();
    let written = series("api", 30, 0);
    ledger.append(&written[..12]).unwrap();
    // A batch whose append reported an error after sled had taken it: what `append`
    // does then, with the batch stored all the same.
    ledger.append(&written[12..20]).unwrap();
    {
        let mut writer = ledger.lock_writer();
        ledger.open_blocks_mut().clear();
        writer.stale = true;
        writer.unsure = true;
    }
    // The caller retries the failed batch, with what arrived meanwhile.
    ledger.append(&written[12..]).unwrap();
    assert_eq!(all(&ledger), written);
    // Once an append succeeded, batches are taken as they are again.
    assert!(!ledger.lock_writer().unsure);
    assert_eq!(ledger.verify().unwrap(), 30);
}

/// A small tmpfs mounted on a temporary directory, unmounted when dropped; `None` (with a
/// message) when mounting is not possible, as without root.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().unwrap();
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|status| status.success());
        if !mounted {
            eprintln!("skipped: cannot mount a tmpfs (this test needs root)");
            return None;
        }
        Some(Tmpfs { dir })
    }

    fn path(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// Writes a file until the file system is full.
    fn fill(&self) -> std::path::PathBuf {
        use std::io::Write;
        let filler = self.path().join("filler");
        let mut file = std::fs::File::create(&filler).unwrap();
        let chunk = vec![0u8; 64 * 1024];
        while file.write_all(&chunk).is_ok() {}
        // The last partial chunk: byte by byte until not even one fits.
        while file.write_all(&[0]).is_ok() {}
        filler
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

#[test]
fn a_full_disk_is_recovered_in_process_by_reopening() {
    let Some(disk) = Tmpfs::mount("8m") else {
        return;
    };
    let path = disk.path().join("ledger");
    let ledger = Ledger::open_with(&path, &LedgerOptions::default()).unwrap();
    let results = series("api", 20_000, 0);
    let mut batches = results.chunks(10);
    let mut acked = Vec::new();
    for batch in batches.by_ref().take(5) {
        ledger.append(batch).unwrap();
        acked.extend_from_slice(batch);
    }
    assert_eq!(ledger.io_failure(), None);

    let filler = disk.fill();
    let failed = loop {
        let batch = batches
            .next()
            .expect("a write fails before the results run out");
        match ledger.append(batch) {
            Ok(()) => acked.extend_from_slice(batch),
            Err(LedgerError::Storage { io: true, .. }) => break batch,
            Err(other) => panic!("not an I/O error: {other}"),
        }
    };
    assert!(ledger.io_failure().is_some());
    // Readers go on with everything written; they may see some of the failed batch too
    // (which its caller writes again).
    let readable = |ledger: &Ledger| {
        let seen = all(ledger);
        let written = seen.iter().filter(|r| acked.contains(r)).count();
        let extra = seen
            .iter()
            .filter(|r| !acked.contains(r) && !failed.contains(r))
            .count();
        (written, extra)
    };
    assert_eq!(readable(&ledger), (acked.len(), 0));
    // No room yet: the spent opening stays, for readers.
    assert!(matches!(ledger.recover(), Err(LedgerError::Io { .. })));
    assert_eq!(readable(&ledger), (acked.len(), 0));

    std::fs::remove_file(filler).unwrap();
    // What sled 0.34 does: the opening refuses writes although there is room again.
    assert!(ledger.append(failed).is_err());
    assert_eq!(ledger.recover().unwrap(), Recovery::Reopened);
    assert_eq!(ledger.io_failure(), None);
    assert_eq!(ledger.recover().unwrap(), Recovery::NotNeeded);
    ledger.append(failed).unwrap();
    acked.extend_from_slice(failed);
    let next = batches.next().unwrap();
    ledger.append(next).unwrap();
    acked.extend_from_slice(next);
    ledger.health_check().unwrap();
    assert_eq!(all(&ledger), acked);

    drop(ledger);
    let ledger = reopen(&path);
    assert_eq!(all(&ledger), acked);
    assert_eq!(ledger.verify().unwrap(), acked.len() as u64);
}
