//! Evidence a client can check (SPEC §8), end to end with the real binary: a daemon probing
//! loopback targets across several (two-second, test-only) leaf hours, its signed report
//! checked by OpenSSH's `ssh-keygen -Y verify`, its evidence bundle checked by `upledger
//! verify` — and each kind of tampering caught with a message that names it. The log also
//! survives kill -9 between appending leaves and signing a checkpoint, and a log rewritten
//! behind a checkpoint a client kept is caught.

use std::{path::Path, process::Command, time::Duration};

use jiff::Timestamp;

use crate::support::{
    Output, TestConfig, daemon::Daemon, free_port, keygen, public, tcp, upledger,
};

const ORIGIN: &str = "status.example.test/upledger";

fn main_file(key: &Path, hour: &str, ledger: &str, port: u16) -> String {
    format!(
        "[daemon]\nledger = \"{ledger}\"\nsocket = \"{}\"\n\
         listen = \"127.0.0.1:{port}\"\n\n[evidence]\n\
         signing_key = \"{}\"\norigin = \"{ORIGIN}\"\nhour = \"{hour}\"\n",
        // The test daemon waits for `data/upledger.sock`; another ledger needs its own.
        if ledger == "data/ledger" {
            "data/upledger.sock".to_owned()
        } else {
            format!("{ledger}.sock")
        },
        key.display()
    )
}

async fn cli(config: &Path, args: &[&str]) -> Output {
    upledger()
        .arg("--config")
        .arg(config)
        .args(args.iter().copied())
        .run()
        .await
}

async fn verify(dir: &Path, extra: &[&str]) -> Output {
    upledger()
        .arg("verify")
        .arg(dir)
        .args(extra.iter().copied())
        .run()
        .await
}

fn ssh_keygen_verify(dir: &Path, allowed: &Path, report: &Path) -> i32 {
    let input = std::fs::File::open(report).expect("open the report");
    let output = Command::new("ssh-keygen")
        .args(["-Y", "verify", "-f"])
        .arg(allowed)
        .args(["-I", ORIGIN, "-n", "upledger-report", "-s"])
        .arg(report.with_extension("json.sig"))
        .current_dir(dir)
        .stdin(input)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run ssh-keygen ({e}): the evidence tests need openssh-client")
        });
    output.status.code().unwrap_or(-1)
}

/// A copy of a bundle directory to tamper with.
fn copy_bundle(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read bundle") {
        let entry = entry.expect("entry");
        std::fs::copy(entry.path(), to.join(entry.file_name())).expect("copy");
    }
}

fn edit(dir: &Path, file: &str, change: impl FnOnce(String) -> String) {
    let path = dir.join(file);
    let text = std::fs::read_to_string(&path).expect("read");
    let changed = change(text.clone());
    assert_ne!(changed, text, "the tampering changed nothing in {file}");
    std::fs::write(&path, changed).expect("write");
}

/// Asserts `verify` finds the bundle invalid (exit 1) with a message containing `words`.
async fn assert_caught(dir: &Path, key: &Path, words: &[&str], what: &str) {
    let output = verify(dir, &["--key", &public(key).display().to_string()]).await;
    assert_eq!(
        output.code, 1,
        "{what}: verify should exit 1\nstdout: {}\nstderr: {}",
        output.stdout, output.stderr
    );
    let text = output.stdout.to_lowercase();
    assert!(
        text.starts_with("invalid: ") && words.iter().all(|w| text.contains(&w.to_lowercase())),
        "{what}: the message should name {words:?}: {}",
        output.stdout
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bundle_verifies_and_every_kind_of_tampering_is_caught() {
    let up = tcp::pong().await;
    let config = TestConfig::new();
    let key = keygen(config.dir(), "vendor-key", ORIGIN).await;
    let other_key = keygen(config.dir(), "other-key", ORIGIN).await;
    let port = free_port();
    // A window that started before the daemon ever saw it: not counted (first seen late).
    let now = Timestamp::now();
    let window_start = now - jiff::SignedDuration::from_secs(30);
    let window_end = now + jiff::SignedDuration::from_secs(3600);
    config.main(&format!(
        "{}\n[[sla]]\nname = \"acme\"\nclient = \"ACME\"\nprobes = [\"api\", \"db\"]\n\
         target = \"99%\"\n\n\
         [[maintenance]]\nprobes = [\"api\"]\nstart = \"{window_start}\"\n\
         end = \"{window_end}\"\nreason = \"late window\"\n",
        main_file(&key, "2s", "data/ledger", port)
    ));
    config.probes(
        "p.toml",
        &format!(
            "[[probe]]\nname = \"api\"\nkind = \"tcp\"\naddress = \"127.0.0.1:{}\"\n\
             interval = \"250ms\"\ntimeout = \"200ms\"\n\n\
             [[probe]]\nname = \"db\"\nkind = \"tcp\"\naddress = \"127.0.0.1:{}\"\n\
             interval = \"250ms\"\ntimeout = \"200ms\"\n",
            up.port(),
            free_port()
        ),
    );
    let daemon = Daemon::start(&config.main_path()).await;
    // Several leaf hours, an exclusion in the middle (a control leaf).
    tokio::time::sleep(Duration::from_secs(4)).await;
    let from = (Timestamp::now() - jiff::SignedDuration::from_secs(3)).to_string();
    let to = Timestamp::now().to_string();
    let excluded = daemon
        .cli(&[
            "exclude", "--probe", "db", "--from", &from, "--to", &to, "--reason", "test",
        ])
        .await;
    assert_eq!(excluded.code, 0, "{}", excluded.stderr);
    tokio::time::sleep(Duration::from_secs(5)).await;
    // The newest checkpoint and a consistency proof, over HTTP.
    let checkpoint = reqwest::get(format!("http://127.0.0.1:{port}/checkpoint"))
        .await
        .expect("GET /checkpoint")
        .text()
        .await
        .expect("body");
    assert!(
        checkpoint.starts_with(&format!("{ORIGIN}\n")),
        "{checkpoint}"
    );
    assert!(
        checkpoint.contains(&format!("\u{2014} {ORIGIN} ")),
        "signed: {checkpoint}"
    );
    let size: u64 = checkpoint
        .lines()
        .nth(1)
        .and_then(|l| l.parse().ok())
        .expect("size");
    let proof: serde_json::Value = reqwest::get(format!(
        "http://127.0.0.1:{port}/log/consistency?old=1&new={size}"
    ))
    .await
    .expect("GET /log/consistency")
    .text()
    .await
    .map(|body| serde_json::from_str(&body).expect("json"))
    .expect("body");
    assert!(
        proof["proof"]
            .as_array()
            .is_some_and(|p| !p.is_empty() || size == 1),
        "{proof}"
    );

    // The signed report, checked by OpenSSH.
    let report = config.dir().join("report.json");
    let signed = daemon
        .cli(&["report", "--sign", "--out", &report.display().to_string()])
        .await;
    assert!(signed.code <= 1, "report --sign: {}", signed.stderr);
    let allowed = config.dir().join("allowed_signers");
    let line = format!(
        "{ORIGIN} namespaces=\"upledger-report\" {}",
        std::fs::read_to_string(public(&key)).expect("pub")
    );
    std::fs::write(&allowed, line).expect("allowed_signers");
    assert_eq!(ssh_keygen_verify(config.dir(), &allowed, &report), 0);
    let mut bytes = std::fs::read(&report).expect("report");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&report, &bytes).expect("tamper");
    assert_ne!(ssh_keygen_verify(config.dir(), &allowed, &report), 0);

    let month = Timestamp::now().strftime("%Y-%m").to_string();
    assert_eq!(daemon.terminate().await, 0);
    let bundle = config.dir().join("bundle");
    evidence(&config.main_path(), &month, &bundle).await;
    let good = verify(&bundle, &["--key", &public(&key).display().to_string()]).await;
    assert_eq!(good.code, 0, "{}\n{}", good.stdout, good.stderr);
    assert!(good.stdout.contains("figures:"), "{}", good.stdout);
    let by_identity = verify(
        &bundle,
        &[
            "--allowed-signers",
            &bundle.join("allowed_signers").display().to_string(),
            "--identity",
            ORIGIN,
        ],
    )
    .await;
    assert_eq!(by_identity.code, 0, "{}", by_identity.stdout);

    let results = std::fs::read_to_string(bundle.join("results.jsonl")).expect("results");
    assert!(results.lines().count() > 10, "{results}");

    // One result's outcome flipped.
    let flipped = config.dir().join("t-flipped");
    copy_bundle(&bundle, &flipped);
    edit(&flipped, "results.jsonl", |text| {
        text.replacen("\"outcome\":\"up\"", "\"outcome\":\"down\"", 1)
    });
    assert_caught(&flipped, &key, &["hour", "result"], "flipped outcome").await;

    // One result deleted.
    let deleted = config.dir().join("t-deleted");
    copy_bundle(&bundle, &deleted);
    edit(&deleted, "results.jsonl", |text| {
        let mut lines: Vec<&str> = text.lines().collect();
        lines.remove(lines.len() / 2);
        lines.join("\n") + "\n"
    });
    assert_caught(&deleted, &key, &["hour"], "deleted result").await;

    // An hour leaf dropped.
    let dropped = config.dir().join("t-dropped");
    copy_bundle(&bundle, &dropped);
    edit(&dropped, "leaves.jsonl", |text| {
        let lines: Vec<&str> = text.lines().collect();
        let hours: Vec<usize> = (0..lines.len())
            .filter(|i| {
                lines[*i].contains("\\\"leaf\\\":\\\"hour\\\"")
                    && lines[*i].contains("\\\"count\\\":")
            })
            .collect();
        let victim = hours[hours.len() / 2];
        lines
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != victim)
            .map(|(_, l)| format!("{l}\n"))
            .collect()
    });
    assert_caught(&dropped, &key, &["leaf"], "dropped hour leaf").await;

    // Two leaves swapped (their texts traded places, indexes and proofs kept).
    let swapped = config.dir().join("t-swapped");
    copy_bundle(&bundle, &swapped);
    edit(&swapped, "leaves.jsonl", |text| {
        let mut entries: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("leaf line"))
            .collect();
        let (a, b) = (1, entries.len() - 2);
        let leaf_a = entries[a]["leaf"].clone();
        entries[a]["leaf"] = entries[b]["leaf"].clone();
        entries[b]["leaf"] = leaf_a;
        entries.iter().map(|e| format!("{e}\n")).collect()
    });
    assert_caught(&swapped, &key, &["not in the log"], "swapped leaves").await;

    // A figure edited and the report re-signed with another key.
    let resigned = config.dir().join("t-resigned");
    copy_bundle(&bundle, &resigned);
    edit(&resigned, "report.json", |text| {
        let mut report: serde_json::Value = serde_json::from_str(&text).expect("report");
        // The failing probe made to look perfect.
        report["probes"][1]["downtime_seconds"] = serde_json::json!(0.0);
        report["probes"][1]["availability"] = serde_json::json!(100.0);
        serde_json::to_string_pretty(&report).expect("json") + "\n"
    });
    // The vendor's signature goes; the other key's takes its place.
    std::fs::remove_file(resigned.join("report.json.sig")).expect("remove the signature");
    let status = Command::new("ssh-keygen")
        .args(["-Y", "sign", "-q", "-f"])
        .arg(&other_key)
        .args(["-n", "upledger-report"])
        .arg(resigned.join("report.json"))
        .status()
        .expect("ssh-keygen -Y sign");
    assert!(status.success());
    assert_caught(&resigned, &key, &["signature"], "re-signed report").await;
    // Even trusting the other key, the checkpoint is the vendor's and the figure is wrong.
    let with_other = verify(
        &resigned,
        &["--key", &public(&other_key).display().to_string()],
    )
    .await;
    assert_eq!(with_other.code, 1, "{}", with_other.stdout);

    // A maintenance window whose first-seen leaf comes after its start: a restore claims the
    // late window was seen an hour before it started.
    let line = format!(
        "{{\"record\":\"maintenance_seen\",\"window\":\"once {window_start} {window_end} [api]\",\
         \"first_seen\":\"{}\"}}\n",
        window_start - jiff::SignedDuration::from_hours(1)
    );
    let restore = config.dir().join("restore.jsonl");
    std::fs::write(&restore, line).expect("restore file");
    let imported = cli(
        &config.main_path(),
        &["import", &restore.display().to_string()],
    )
    .await;
    assert_eq!(imported.code, 0, "{}", imported.stderr);
    let late = config.dir().join("t-late-window");
    evidence(&config.main_path(), &month, &late).await;
    assert_caught(
        &late,
        &key,
        &["maintenance", "back-dated"],
        "back-dated window",
    )
    .await;
}

/// Export lines of `probe`, one a minute from `from`, up.
fn results_every_minute(probe: &str, from: Timestamp, count: i64) -> String {
    (0..count)
        .map(|i| {
            let at = from + jiff::SignedDuration::from_mins(i);
            format!(
                "{{\"probe\":\"{probe}\",\"at\":\"{at}\",\"outcome\":\"up\",\"latency_ms\":1.5}}\n"
            )
        })
        .collect()
}

async fn evidence(config: &Path, month: &str, out: &Path) {
    let output = cli(
        config,
        &[
            "evidence",
            "--month",
            month,
            "--out",
            &out.display().to_string(),
        ],
    )
    .await;
    assert_eq!(output.code, 0, "evidence: {}", output.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_log_rewritten_behind_last_months_checkpoint_is_caught() {
    let config = TestConfig::new();
    let key = keygen(config.dir(), "vendor-key", ORIGIN).await;
    // Day-long leaf hours: nothing seals while the test runs, so the two logs below grow by
    // the same leaves and their checkpoints line up by size.
    config.main(&main_file(&key, "24h", "data/ledger", free_port()));
    config.probes(
        "p.toml",
        "[[probe]]\nname = \"api\"\nkind = \"tcp\"\naddress = \"127.0.0.1:9\"\n\
         interval = \"1m\"\ntimeout = \"5s\"\n",
    );
    // Two hours of last month's results, as the vendor's log holds them...
    let this_month = Timestamp::now().strftime("%Y-%m").to_string();
    let month_start = Timestamp::now()
        .in_tz("UTC")
        .expect("UTC")
        .first_of_month()
        .expect("month start")
        .start_of_day()
        .expect("day start")
        .timestamp();
    let last_month_day = month_start - jiff::SignedDuration::from_hours(24 * 20);
    let last_month = last_month_day.strftime("%Y-%m").to_string();
    let honest = results_every_minute("api", last_month_day, 120);
    // ...and as a rewritten log holds them: one result changed after the client saw them.
    let rewritten_lines = honest.replacen("\"latency_ms\":1.5", "\"latency_ms\":1.25", 1);
    assert_ne!(honest, rewritten_lines);
    let fork = config.dir().join("fork.toml");
    std::fs::write(&fork, main_file(&key, "24h", "data/fork", free_port())).expect("fork main");
    let original = config.main_path();
    for (main, lines) in [(&original, &honest), (&fork, &rewritten_lines)] {
        let file = config.dir().join("results.jsonl");
        std::fs::write(&file, lines).expect("write");
        let imported = cli(main, &["import", &file.display().to_string()]).await;
        assert_eq!(imported.code, 0, "{}", imported.stderr);
    }
    let key_arg = public(&key).display().to_string();

    // The client receives last month's bundle and keeps its month-end checkpoint.
    let last = config.dir().join("last");
    evidence(&original, &last_month, &last).await;
    assert_eq!(verify(&last, &["--key", &key_arg]).await.code, 0);
    let kept = last.join("month-end.json");
    assert!(
        kept.exists(),
        "a closed month's bundle has its month-end checkpoint"
    );
    let kept = kept.display().to_string();

    // This month's honest bundle extends it.
    let honest_bundle = config.dir().join("honest");
    evidence(&original, &this_month, &honest_bundle).await;
    let extended = verify(&honest_bundle, &["--key", &key_arg, "--previous", &kept]).await;
    assert_eq!(extended.code, 0, "{}\n{}", extended.stdout, extended.stderr);
    assert!(
        extended.stdout.contains("extends the checkpoint you kept"),
        "{}",
        extended.stdout
    );

    // The rewritten log: valid on its own, but not an extension of what the client kept.
    evidence(&fork, &last_month, &config.dir().join("fork-last")).await;
    let rewritten = config.dir().join("rewritten");
    evidence(&fork, &this_month, &rewritten).await;
    assert_eq!(
        verify(&rewritten, &["--key", &key_arg]).await.code,
        0,
        "valid on its own"
    );
    let caught = verify(&rewritten, &["--key", &key_arg, "--previous", &kept]).await;
    assert_eq!(caught.code, 1, "{}", caught.stdout);
    assert!(
        caught.stdout.contains("not an extension"),
        "{}",
        caught.stdout
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_while_appending_leaves_keeps_the_log_consistent() {
    let up = tcp::pong().await;
    let config = TestConfig::new();
    let key = keygen(config.dir(), "vendor-key", ORIGIN).await;
    config.main(&main_file(&key, "1s", "data/ledger", free_port()));
    config.probes(
        "p.toml",
        &format!(
            "[[probe]]\nname = \"api\"\nkind = \"tcp\"\naddress = \"127.0.0.1:{}\"\n\
             interval = \"100ms\"\ntimeout = \"50ms\"\n",
            up.port()
        ),
    );
    let kept = config.dir().join("kept.json");
    // Leaves are appended every quarter of a leaf hour; kills land at varied moments of it.
    for round in 0..6u64 {
        let daemon = Daemon::start(&config.main_path()).await;
        tokio::time::sleep(Duration::from_millis(1200 + round * 170)).await;
        if round == 1 {
            let signed = daemon
                .cli(&["report", "--sign", "--out", &kept.display().to_string()])
                .await;
            assert!(signed.code <= 1, "{}", signed.stderr);
        }
        tokio::time::sleep(Duration::from_millis(round * 37)).await;
        daemon.kill9().await;
    }
    let daemon = Daemon::start(&config.main_path()).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(daemon.terminate().await, 0);
    let kept_checkpoint = config.dir().join("kept.checkpoint");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&kept).expect("kept")).expect("json");
    std::fs::write(
        &kept_checkpoint,
        report["evidence"]["checkpoint"]
            .as_str()
            .expect("checkpoint"),
    )
    .expect("write");
    let month = Timestamp::now().strftime("%Y-%m").to_string();
    let bundle = config.dir().join("bundle");
    evidence(&config.main_path(), &month, &bundle).await;
    let checked = verify(
        &bundle,
        &[
            "--key",
            &public(&key).display().to_string(),
            "--previous",
            &kept_checkpoint.display().to_string(),
        ],
    )
    .await;
    assert_eq!(checked.code, 0, "{}\n{}", checked.stdout, checked.stderr);
}
