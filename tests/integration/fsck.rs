//! Issue 19 item 2: corruption is never silent. Copies of a ledger with known content get one
//! byte flipped at many offsets; for every flip, either the content reads back identical, or
//! `fsck` exits 1 naming the damage and the month report lists (and counts as unknown) a
//! damaged range holding every result that went missing — never fewer results with exit 0.

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
    time::Duration,
};

use jiff::Timestamp;

use crate::support::{Output, TestConfig, copy_dir, daemon::Daemon, tcp, upledger};

/// XORs the byte at `offset` of `file` with 0x55.
fn flip(file: &Path, offset: u64) {
    let mut bytes = std::fs::read(file).expect("read");
    bytes[offset as usize] ^= 0x55;
    std::fs::write(file, bytes).expect("write");
}

/// A configuration whose ledger is `data/ledger` in its directory (the copy each trial reads), with `probes` as TCP
/// probes of a refused loopback port every second.
fn config_with(probes: usize) -> TestConfig {
    let config = TestConfig::new();
    config.main(
        "[daemon]\nledger = \"data/ledger\"\nsocket = \"data/upledger.sock\"\nlisten = \"127.0.0.1:0\"\n",
    );
    let address = tcp::refused_addr();
    let text: String = (0..probes)
        .map(|i| {
            format!(
                "[[probe]]\nname = \"p{i}\"\nkind = \"tcp\"\naddress = \"{address}\"\n\
                 interval = \"1s\"\ntimeout = \"500ms\"\n\n"
            )
        })
        .collect();
    config.probes("p.toml", &text);
    config
}

/// One exported result: (probe, at).
fn results(export: &Output) -> BTreeSet<(String, Timestamp)> {
    export
        .stdout
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter_map(|line| {
            Some((
                line["probe"].as_str()?.to_owned(),
                line["at"].as_str()?.parse().ok()?,
            ))
        })
        .collect()
}

/// (probe, from, to) of every damaged range in a JSON document's `damage` list.
fn ranges(document: &serde_json::Value) -> Vec<(String, Timestamp, Timestamp)> {
    document["damage"]
        .as_array()
        .map(|list| {
            list.iter()
                .filter_map(|d| {
                    Some((
                        d["probe"].as_str()?.to_owned(),
                        d["from"].as_str()?.parse().ok()?,
                        d["to"].as_str()?.parse().ok()?,
                    ))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// What one flip came to.
#[derive(Debug, Default)]
struct Tally {
    identical: usize,
    refused: usize,
    lost_and_named: usize,
}

/// Flips one byte of a fresh copy of `original` at each of `offsets` of `file` (a name in
/// the ledger directory) and checks the invariant for each.
async fn flip_and_check(
    config: &TestConfig,
    original: &Path,
    file: &str,
    offsets: &[u64],
) -> Tally {
    let trial = config.dir().join("data/ledger");
    copy_dir(original, &trial);
    let clean = config.cli(&["export"]).await;
    assert_eq!(clean.code, 0, "{}", clean.stderr);
    let expected = results(&clean);
    assert!(!expected.is_empty());
    let mut tally = Tally::default();
    for &offset in offsets {
        copy_dir(original, &trial);
        flip(&trial.join(file), offset);
        let fsck = config.cli(&["fsck", "--json"]).await;
        let export = config.cli(&["export"]).await;
        let found = results(&export);
        if export.code == 0 && found == expected {
            tally.identical += 1;
            continue;
        }
        assert_eq!(
            fsck.code,
            1,
            "flip at {file}:{offset}: content changed ({} of {} results, export exit {}) \
             but fsck exited {}:\n{}{}",
            found.len(),
            expected.len(),
            export.code,
            fsck.code,
            fsck.stdout,
            fsck.stderr
        );
        let document = fsck.json();
        let damage = document["damage"].as_array().expect("damage list");
        assert!(!damage.is_empty(), "{document}");
        if export.code != 0 {
            // sled refuses the log: nothing can be read, and fsck says so.
            assert!(
                damage[0]["what"]
                    .as_str()
                    .is_some_and(|w| w.contains("nothing can be read")),
                "{document}"
            );
            tally.refused += 1;
            continue;
        }
        // Fewer results: every missing one lies in a named damaged range of its probe, in
        // fsck's list and in the report of its month, which counts the range as unknown.
        let missing: Vec<&(String, Timestamp)> = expected.difference(&found).collect();
        assert!(!missing.is_empty(), "no result lost, yet content differs");
        assert!(
            found.is_subset(&expected),
            "results appeared: {file}:{offset}"
        );
        let named = ranges(&document);
        let month = missing[0].1.strftime("%Y-%m").to_string();
        let report = config
            .cli(&["report", "--month", &month, "--format", "json"])
            .await;
        assert!(report.code <= 1, "{}", report.stderr);
        let report = report.json();
        let reported = ranges(&report);
        for (probe, at) in &missing {
            let within = |list: &[(String, Timestamp, Timestamp)]| {
                list.iter()
                    .any(|(p, from, to)| p == probe && from <= at && at < to)
            };
            assert!(
                within(&named),
                "{probe} at {at} missing but not named by fsck: {document}"
            );
            if at.strftime("%Y-%m").to_string() == month {
                assert!(
                    within(&reported),
                    "{probe} at {at} not in the report: {report}"
                );
            }
        }
        let probe = &missing[0].0;
        let entry = report["probes"]
            .as_array()
            .and_then(|probes| probes.iter().find(|p| p["name"] == probe.as_str()))
            .expect("the probe's figures");
        assert!(
            entry["unknown_seconds"].as_f64().is_some_and(|s| s > 0.0),
            "the damaged range counts as unknown: {entry}"
        );
        tally.lost_and_named += 1;
    }
    tally
}

/// `count` offsets spread evenly over `[from, to)`.
fn spread(from: u64, to: u64, count: u64) -> Vec<u64> {
    (0..count).map(|i| from + (to - from) * i / count).collect()
}

/// The failure of the trial: a daemon killed with `kill -9` leaves a log with no snapshot,
/// which sled recovers by cutting it at the first bad message — silently, without the seal.
/// Seen failing (every flip lost results with exit 0) before the seal existed.
#[tokio::test(flavor = "multi_thread")]
async fn flips_in_a_daemon_written_log_are_named_never_silent() {
    let config = config_with(12);
    let daemon = Daemon::start(&config.main_path()).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    daemon.kill9().await;
    let original: PathBuf = config.dir().join("original");
    copy_dir(&config.dir().join("data/ledger"), &original);
    let size = std::fs::metadata(original.join("db")).expect("db").len();
    let tally = flip_and_check(&config, &original, "db", &spread(0, size, 40)).await;
    assert!(
        tally.lost_and_named > 0,
        "the flips should have cost results somewhere: {tally:?}"
    );
    let seal = std::fs::metadata(original.join("seal"))
        .expect("seal")
        .len();
    let tally_seal = flip_and_check(&config, &original, "seal", &spread(0, seal, 10)).await;
    assert_eq!(tally_seal.identical, 10, "a damaged seal loses no result");
}

/// A ledger written by `import` and closed cleanly (sled's snapshot covers its log): flips
/// leave the content identical or make sled refuse the log, which fsck names (exit 1).
#[tokio::test(flavor = "multi_thread")]
async fn flips_in_an_imported_ledger_are_named_never_silent() {
    let config = config_with(3);
    let start = Timestamp::now().as_second() - 3 * 3600;
    let mut lines = String::new();
    for i in 0..6_000i64 {
        let stamp = Timestamp::from_second(start + i).expect("time");
        let (outcome, class) = if i % 97 < 5 {
            ("down", "\"connect\"")
        } else {
            ("up", "null")
        };
        lines += &format!(
            "{{\"probe\":\"p{}\",\"at\":\"{stamp}\",\"outcome\":\"{outcome}\",\"latency_ms\":{}.5,\
             \"error_class\":{class},\"detail\":\"\"}}\n",
            i % 3,
            i % 40
        );
    }
    let file = config.dir().join("results.jsonl");
    std::fs::write(&file, lines).expect("write");
    let imported = upledger()
        .arg("--config")
        .arg(config.main_path())
        .arg("import")
        .arg(&file)
        .run()
        .await;
    assert_eq!(imported.code, 0, "{}", imported.stderr);
    let clean = config.cli(&["fsck"]).await;
    assert_eq!(clean.code, 0, "{}{}", clean.stdout, clean.stderr);
    assert!(clean.stdout.contains("no damage"), "{}", clean.stdout);
    let original: PathBuf = config.dir().join("original");
    copy_dir(&config.dir().join("data/ledger"), &original);
    let size = std::fs::metadata(original.join("db")).expect("db").len();
    let tally = flip_and_check(&config, &original, "db", &spread(0, size, 30)).await;
    assert_eq!(
        tally.identical + tally.refused + tally.lost_and_named,
        30,
        "{tally:?}"
    );
}
