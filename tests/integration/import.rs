//! `import` is all or nothing (issue 20 item 4): an importing process killed at a random point
//! leaves none or all of the file, and the re-run then succeeds; a stream cut short is refused.

use std::{
    io::{Read, Write},
    os::unix::net::UnixStream,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use jiff::Timestamp;

use crate::support::{TestConfig, daemon::Daemon, upledger};

/// Lines per imported file: enough that one import takes a few hundred ms (debug build), so
/// that a kill after a random delay lands in parsing, staging, committing or applying, and
/// (with their details) megabytes of blocks to write.
const LINES: usize = 12_000;

/// Kills per path, as issue 20 asks.
const ROUNDS: u64 = 20;

/// Two probes the daemon does not run (only imports write to the ledger).
fn two_probe_config() -> TestConfig {
    let config = TestConfig::new();
    config.probes(
        "p.toml",
        "[[probe]]\nname = \"alpha\"\nkind = \"tcp\"\naddress = \"127.0.0.1:1\"\nenabled = false\n\n\
         [[probe]]\nname = \"beta\"\nkind = \"tcp\"\naddress = \"127.0.0.1:2\"\nenabled = false\n",
    );
    config
}

/// Where round `round`'s results start: 2 days apart from 2026-06-01, so rounds never clash.
fn round_start(round: u64) -> Timestamp {
    Timestamp::from_second(1_780_272_000 + round as i64 * 2 * 86_400).expect("ts")
}

/// Writes round `round`'s file ([`LINES`] results of both probes, in export order) and
/// returns its path and text.
fn round_file(dir: &Path, round: u64) -> (PathBuf, String) {
    let start = round_start(round).as_second();
    let mut text = String::with_capacity(LINES * 320);
    for probe in ["alpha", "beta"] {
        for i in 0..(LINES / 2) as i64 {
            let at = Timestamp::from_second(start + i * 10).expect("ts");
            // A detail of its own on every line: ~200 stored bytes a result, so the import
            // writes megabytes and sled writes its buffers out while the import runs — what
            // left part of an import stored when it was not staged.
            let detail = format!(
                "{i:06} connection refused by 127.0.0.1:1 {}",
                "x".repeat(150)
            );
            text += &format!(
                "{{\"probe\":\"{probe}\",\"at\":\"{at}\",\"outcome\":\"down\",\"latency_ms\":{}.5,\"error_class\":\"connect\",\"detail\":\"{detail}\"}}\n",
                10 + i % 13
            );
        }
    }
    let path = dir.join(format!("round-{round}.jsonl"));
    std::fs::write(&path, &text).expect("write");
    (path, text)
}

/// A small deterministic generator (the seed is printed, so a failure can be replayed).
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n.max(1)
    }
}

/// A moment to kill at: anywhere in the import, but mostly in its second half, where it
/// writes (the first is starting up and parsing).
fn kill_delay(rng: &mut Rng, whole: Duration) -> Duration {
    let micros = whole.as_micros() as u64;
    let from = if rng.below(4) == 0 { 0 } else { micros / 2 };
    Duration::from_micros(from + rng.below(micros - from + micros / 10))
}

fn seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(7, |d| d.as_nanos() as u64)
}

/// The export of round `round`'s window (through the daemon when one runs).
async fn exported(config: &Path, round: u64) -> String {
    let from = round_start(round);
    let to = round_start(round + 1);
    let out = upledger()
        .arg("--config")
        .arg(config)
        .args([
            "export",
            "--since",
            &from.to_string(),
            "--until",
            &to.to_string(),
        ])
        .run()
        .await;
    assert_eq!(out.code, 0, "export: {}", out.stderr);
    out.stdout
}

fn import_command(config: &Path, file: &Path) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_upledger"));
    command
        .arg("--config")
        .arg(config)
        .arg("import")
        .arg(file)
        .env_remove("UPLEDGER_CONFIG")
        .env("UPLEDGER_LOG", "warn")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    command
}

/// How long one whole import of a round's file takes here (the kills are spread over it).
async fn time_one_import(config: &Path, file: &Path) -> Duration {
    let started = Instant::now();
    let out = import_command(config, file).output().await.expect("import");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    started.elapsed()
}

/// After a kill: the window holds none or all of the file. With none, the re-run succeeds and
/// stores all; with all, the re-run is refused as duplicates (a completed import stays
/// refused, as before). Returns whether the kill left none.
async fn check_all_or_nothing(config: &Path, round: u64, file: &Path, text: &str) -> bool {
    let held = exported(config, round).await;
    let count = held.lines().count();
    assert!(
        count == 0 || count == LINES,
        "round {round}: the ledger holds {count} of {LINES} results"
    );
    let rerun = upledger()
        .arg("--config")
        .arg(config)
        .arg("import")
        .arg(file)
        .run()
        .await;
    if count == 0 {
        assert_eq!(rerun.code, 0, "round {round}: re-run: {}", rerun.stderr);
    } else {
        assert_eq!(held, text, "round {round}: all of it, unchanged");
        assert_eq!(rerun.code, 2, "round {round}: re-run of a completed import");
        assert!(rerun.stderr.contains("nothing written"), "{}", rerun.stderr);
    }
    assert_eq!(
        exported(config, round).await,
        text,
        "round {round}: after re-run"
    );
    count == 0
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cli_import_killed_at_random_points_leaves_none_or_all_of_the_file() {
    let config = two_probe_config();
    let main = config.main_path();
    let (file, _) = round_file(config.dir(), ROUNDS);
    let whole = time_one_import(&main, &file).await;
    let seed = seed();
    let mut rng = Rng(seed);
    let (mut none, mut killed, mut completed_after_kill) = (0, 0, 0);
    for round in 0..ROUNDS {
        let (file, text) = round_file(config.dir(), round);
        let delay = kill_delay(&mut rng, whole);
        let mut child = import_command(&main, &file).spawn().expect("import");
        tokio::time::sleep(delay).await;
        child.start_kill().expect("kill -9");
        let status = child.wait().await.expect("wait");
        let was_killed = !status.success();
        killed += u32::from(was_killed);
        if check_all_or_nothing(&main, round, &file, &text).await {
            none += 1;
        } else if was_killed {
            completed_after_kill += 1;
        }
    }
    eprintln!(
        "seed {seed}: one import {whole:?}; {killed} of {ROUNDS} killed before the end: \
         {none} left nothing, {completed_after_kill} were committed and completed at the next \
         opening"
    );
    assert!(killed >= 2, "the kills must land mid-import");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_daemon_killed_at_random_points_mid_import_leaves_none_or_all_of_the_file() {
    let config = two_probe_config();
    let main = config.main_path();
    let mut daemon = Daemon::start(&main).await;
    let (file, _) = round_file(config.dir(), ROUNDS);
    let whole = time_one_import(&main, &file).await;
    let seed = seed();
    let mut rng = Rng(seed);
    let (mut none, mut failed) = (0, 0);
    for round in 0..ROUNDS {
        let (file, text) = round_file(config.dir(), round);
        let delay = kill_delay(&mut rng, whole);
        let child = import_command(&main, &file).spawn().expect("import");
        tokio::time::sleep(delay).await;
        daemon.kill9().await;
        let out = child.wait_with_output().await.expect("wait");
        failed += u32::from(!out.status.success());
        daemon = Daemon::start(&main).await;
        if check_all_or_nothing(&main, round, &file, &text).await {
            none += 1;
        }
    }
    eprintln!(
        "seed {seed}: one import {whole:?}; {failed} of {ROUNDS} imports failed with the \
         daemon killed, {none} left nothing"
    );
    assert!(failed >= 2, "the kills must land mid-import");
}

/// A client that dies part-way through sending: the daemon sees the stream end early, at a
/// line boundary, and must not take it for the whole file.
#[tokio::test(flavor = "multi_thread")]
async fn the_daemon_refuses_an_import_stream_cut_short() {
    let config = two_probe_config();
    let main = config.main_path();
    let daemon = Daemon::start(&main).await;
    let (_, text) = round_file(config.dir(), 0);
    let half: String = text
        .lines()
        .take(LINES / 2)
        .map(|l| format!("{l}\n"))
        .collect();
    let socket = config.dir().join("data/upledger.sock");
    let send = move |request: &str, body: &str| {
        let mut stream = UnixStream::connect(&socket).expect("connect");
        stream.write_all(request.as_bytes()).expect("request");
        stream.write_all(body.as_bytes()).expect("body");
        stream
            .shutdown(std::net::Shutdown::Write)
            .expect("shutdown");
        let mut answer = String::new();
        stream.read_to_string(&mut answer).expect("answer");
        answer
    };
    let request = format!("{{\"cmd\":\"import\",\"bytes\":{}}}\n", text.len());
    let answer = tokio::task::spawn_blocking({
        let (half, send) = (half.clone(), send.clone());
        move || send(&request, &half)
    })
    .await
    .expect("client");
    assert!(answer.contains("cut short"), "{answer}");
    assert!(exported(&main, 0).await.is_empty(), "nothing written");
    // A client that announces nothing (older ones) is taken at its word, as before.
    let answer = tokio::task::spawn_blocking(move || send("{\"cmd\":\"import\"}\n", &half))
        .await
        .expect("client");
    assert!(answer.contains("\"ok\""), "{answer}");
    assert_eq!(exported(&main, 0).await.lines().count(), LINES / 2);
    drop(daemon);
}

/// `--expect-lines` proves a pipe's input complete; blank lines do not count.
#[tokio::test(flavor = "multi_thread")]
async fn expect_lines_refuses_an_input_cut_at_a_line_boundary() {
    let config = two_probe_config();
    let main = config.main_path();
    let (_, text) = round_file(config.dir(), 0);
    let cut: String = text.lines().take(100).map(|l| format!("{l}\n")).collect();
    let file = config.dir().join("cut.jsonl");
    std::fs::write(&file, &cut).expect("write");
    let import = |expect: usize| {
        upledger()
            .arg("--config")
            .arg(&main)
            .args(["import", "--expect-lines", &expect.to_string()])
            .arg(&file)
            .run()
    };
    let refused = import(LINES).await;
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(
        refused.stderr.contains(&format!(
            "the input has 100 lines, {LINES} expected (it was cut short)"
        )),
        "{}",
        refused.stderr
    );
    assert!(exported(&main, 0).await.is_empty(), "nothing written");
    let imported = import(100).await;
    assert_eq!(imported.code, 0, "{}", imported.stderr);
    assert_eq!(exported(&main, 0).await, cut);
}

/// Issue 19 item 4 through the CLI: an impossible result is refused with its line number.
#[tokio::test(flavor = "multi_thread")]
async fn impossible_results_are_refused_with_their_line() {
    let config = two_probe_config();
    let main = config.main_path();
    let good = r#"{"probe":"alpha","at":"2026-06-01T00:00:00Z","outcome":"up","latency_ms":1.5}"#;
    for (bad, what) in [
        (
            r#"{"probe":"alpha","at":"2030-01-01T00:00:00Z","outcome":"up","latency_ms":1.5}"#,
            "line 3: at 2030-01-01T00:00:00Z is in the future",
        ),
        (
            r#"{"probe":"alpha","at":"0001-01-01T00:00:00Z","outcome":"up","latency_ms":1.5}"#,
            "line 3: at 0001-01-01T00:00:00Z is before 2000-01-01",
        ),
        (
            r#"{"probe":"alpha","at":"2026-06-01T00:01:00Z","outcome":"up","latency_ms":1e308}"#,
            "line 3: latency_ms 1e+308 is over one hour",
        ),
    ] {
        let file = config.dir().join("bad.jsonl");
        std::fs::write(&file, format!("{good}\n\n{bad}\n")).expect("write");
        let out = upledger()
            .arg("--config")
            .arg(&main)
            .arg("import")
            .arg(&file)
            .run()
            .await;
        assert_eq!(out.code, 2, "{}", out.stderr);
        assert!(out.stderr.contains(what), "{what}: {}", out.stderr);
    }
    assert!(exported(&main, 0).await.is_empty(), "nothing written");
}
