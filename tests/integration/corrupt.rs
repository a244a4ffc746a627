//! A damaged ledger (issue 20 item 5): a ledger whose `db` file is cut short makes every
//! command that opens it — `status`, `export`, `report`, `history`, and the daemon — exit 2
//! saying the ledger is corrupt, with its path and what to do; none panics (sled panics on
//! most of these files: "tried to serialize Uninitialized", "index out of bounds"), and no
//! panic text reaches the terminal.
//!
//! The ledger is built once with `import` (no daemon), then each command runs on a fresh copy
//! of it, since opening a ledger writes to it.

use std::path::{Path, PathBuf};

use jiff::Timestamp;

use crate::support::{Output, TestConfig, upledger};

/// 2026-09-01T00:00:00Z.
const SEP_1: i64 = 1_788_220_800;

/// 2026-11-20T00:00:00Z.
const NOV_20: i64 = SEP_1 + 80 * 86_400;

const PROBES: [&str; 3] = ["web", "db", "api"];

/// `count` results per probe every 30 s from `start`; with `failures`, a few are down.
fn results(start: i64, count: i64, failures: bool) -> String {
    let mut lines = String::with_capacity(100 * 3 * count as usize);
    for i in 0..count {
        let stamp = Timestamp::from_second(start + 30 * i).expect("timestamp");
        for (n, probe) in PROBES.iter().enumerate() {
            if failures && (i * 7 + n as i64) % 97 < 3 {
                lines += &format!(
                    "{{\"probe\":\"{probe}\",\"at\":\"{stamp}\",\"outcome\":\"down\",\"latency_ms\":3.5,\"error_class\":\"connect\",\"detail\":\"refused\"}}\n"
                );
            } else {
                let latency = if failures { i % 50 } else { 1 };
                lines += &format!(
                    "{{\"probe\":\"{probe}\",\"at\":\"{stamp}\",\"outcome\":\"up\",\"latency_ms\":{latency}.5,\"error_class\":null,\"detail\":\"\"}}\n"
                );
            }
        }
    }
    lines
}

/// A configuration of the three probes and its ledger: `first` results per probe imported
/// (100,000 make ~7 MB, about fourteen of sled's 512 KiB segments), the ledger opened again (which
/// writes sled's snapshot), 10,000 more imported — as a ledger in use has data after its
/// snapshot. Cut to 30–80 %, this shape made sled 0.34.7 panic at every cut tried
/// (smaller ledgers, or one without data after the snapshot, mostly gave sled's own
/// corruption error instead).
async fn built_ledger(first: i64) -> TestConfig {
    let config = TestConfig::new();
    let mut probes = String::new();
    for probe in PROBES {
        probes += &format!(
            "[[probe]]\nname = \"{probe}\"\nkind = \"tcp\"\naddress = \"127.0.0.1:9\"\ninterval = \"30s\"\n"
        );
    }
    config.probes("p.toml", &probes);
    for (part, lines) in [
        ("first.jsonl", results(SEP_1, first, true)),
        ("second.jsonl", results(NOV_20, 10_000, false)),
    ] {
        let input = config.dir().join(part);
        std::fs::write(&input, lines).expect("write results");
        let imported = cli(config.dir(), &["import"]).arg(&input).run().await;
        assert_eq!(imported.code, 0, "{}", imported.stderr);
        std::fs::remove_file(&input).expect("remove results");
        if part == "first.jsonl" {
            let status = cli(config.dir(), &["status"]).run().await;
            assert!(status.code <= 1, "{}", status.stderr);
        }
    }
    config
}

fn cli(dir: &Path, args: &[&str]) -> crate::support::Cmd {
    upledger()
        .arg("--config")
        .arg(dir.join("upledger.toml"))
        .args(args.iter().copied())
}

/// Copies the configuration and its ledger into a new temporary directory.
fn copy_of(config: &TestConfig) -> tempfile::TempDir {
    let copy = tempfile::tempdir().expect("tempdir");
    copy_tree(config.dir(), copy.path());
    copy
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read_dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

fn ledger_of(dir: &Path) -> PathBuf {
    dir.join("data/ledger")
}

/// Cuts the copy's `db` file to `percent` of `length`.
fn truncate(dir: &Path, length: u64, percent: u64) {
    let db = std::fs::OpenOptions::new()
        .write(true)
        .open(ledger_of(dir).join("db"))
        .expect("open db");
    db.set_len(length * percent / 100).expect("truncate");
}

/// The command ended with exit 2 and the corrupt-ledger message, and without a panic.
#[track_caller]
fn assert_reported_corrupt(output: &Output, dir: &Path, what: &str) {
    let ledger = ledger_of(dir);
    let context = format!("{what}: exit {}; stderr:\n{}", output.code, output.stderr);
    assert_eq!(output.code, 2, "{context}");
    assert!(
        output
            .stderr
            .contains(&format!("ledger {} is corrupt", ledger.display())),
        "{context}"
    );
    assert!(
        output.stderr.contains("restore it from a backup")
            && output.stderr.contains("upledger export")
            && output.stderr.contains("move it aside"),
        "{context}"
    );
    assert!(
        !output.stderr.contains("panicked") && !output.stderr.contains("RUST_BACKTRACE"),
        "{context}"
    );
}

/// The commands run on each damaged copy, each on its own copy.
const COMMANDS: [&[&str]; 5] = [
    &["status"],
    &["export"],
    &["report", "--month", "2026-09"],
    &["history", "web", "--since", "2026-09-01T00:00:00Z"],
    &["run"],
];

/// Regression test for issue 20 item 5: at 30–80 % sled panicked inside `status`, `export`
/// and `report` (exit 101), and the daemon died with "task 3 panicked".
#[tokio::test]
async fn a_truncated_ledger_is_reported_corrupt_by_every_command() {
    let config = built_ledger(100_000).await;
    let length = std::fs::metadata(ledger_of(config.dir()).join("db"))
        .expect("db")
        .len();
    assert!(
        length > 4_000_000,
        "the ledger is too small to cut: {length}"
    );
    for percent in [30, 35, 40, 45, 50, 55, 60, 65, 70, 80] {
        for command in COMMANDS {
            let copy = copy_of(&config);
            truncate(copy.path(), length, percent);
            let output = cli(copy.path(), command).run().await;
            let what = format!("{} on a ledger cut to {percent} %", command.join(" "));
            assert_reported_corrupt(&output, copy.path(), &what);
        }
    }
}

/// A `db` file cut to its first 100 bytes, without a snapshot, opens as an empty database;
/// before upledger marked its ledgers, that passed for a new ledger and every command
/// answered with nothing, exit 0 (the daemon ran on, recording into it).
#[tokio::test]
async fn a_ledger_that_lost_all_its_data_is_corrupt_not_new() {
    let config = built_ledger(10_000).await;
    for command in COMMANDS {
        let copy = copy_of(&config);
        for entry in std::fs::read_dir(ledger_of(copy.path())).expect("ledger dir") {
            let entry = entry.expect("entry");
            if entry.file_name().to_string_lossy().starts_with("snap.") {
                std::fs::remove_file(entry.path()).expect("remove snapshot");
            }
        }
        truncate(copy.path(), 100, 100);
        let output = cli(copy.path(), command).run().await;
        assert_reported_corrupt(&output, copy.path(), &command.join(" "));
        assert!(
            output.stderr.contains("sled finds nothing"),
            "{}",
            output.stderr
        );
    }
}
