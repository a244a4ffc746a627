//! `upledger run` as a real process: crash safety under `kill -9`, reload on SIGHUP, clean
//! shutdown on SIGTERM, the query commands over the socket and directly, import/export.

use std::{
    collections::BTreeSet,
    time::{Duration, Instant, SystemTime},
};

use jiff::Timestamp;

use crate::support::{TestConfig, daemon::Daemon, http, tcp, upledger};

/// Three probes checked every second: one up (TCP), one down (refused), one HTTP.
fn fast_probes(config: &TestConfig, up: &tcp::TestTcp, web: &http::TestHttp) {
    let refused = tcp::refused_addr();
    config.probes(
        "fast.toml",
        &format!(
            r#"
[[probe]]
name = "up-tcp"
kind = "tcp"
address = "{up}"
interval = "1s"
timeout = "500ms"

[[probe]]
name = "down-tcp"
kind = "tcp"
address = "{refused}"
interval = "1s"
timeout = "500ms"
failure_threshold = 2

[[probe]]
name = "web"
kind = "http"
url = "{url}"
interval = "1s"
timeout = "500ms"
"#,
            up = up.addr,
            url = web.url("/ok"),
        ),
    );
}

/// The (probe, at) of every result `history` shows since `since`.
async fn acknowledged(daemon: &Daemon, probe: &str, since: &str) -> BTreeSet<(String, String)> {
    let output = daemon
        .cli(&["history", probe, "--since", since, "--json"])
        .await;
    assert_eq!(output.code, 0, "{}", output.stderr);
    output.json()["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| (probe.to_owned(), r["at"].as_str().expect("at").to_owned()))
        .collect()
}

/// A pseudo-random duration in `[min, min + spread)` from the clock, for kill moments.
fn jitter(min: Duration, spread: Duration) -> Duration {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    min + spread.mul_f64(f64::from(nanos % 1000) / 1000.0)
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_loses_no_acknowledged_result_and_dead_time_is_unknown() {
    let up = tcp::hang().await;
    let web = http::start(http::HttpOptions::plain()).await;
    let config = TestConfig::new();
    fast_probes(&config, &up, &web);
    let since = Timestamp::now().to_string();
    let probes = ["up-tcp", "down-tcp", "web"];
    let mut seen = BTreeSet::new();
    let mut dead_periods = Vec::new();
    for round in 0..4 {
        let daemon = Daemon::start(&config.main_path()).await;
        let run_for = jitter(Duration::from_millis(2500), Duration::from_millis(1500));
        let started = Instant::now();
        // Collect what the daemon acknowledged (visible through history) while it runs.
        while started.elapsed() < run_for {
            tokio::time::sleep(Duration::from_millis(300)).await;
            for probe in probes {
                seen.extend(acknowledged(&daemon, probe, &since).await);
            }
        }
        let killed_at = Timestamp::now();
        daemon.kill9().await;
        // Dead for longer than stale_after (2 s): that time must read as unknown.
        tokio::time::sleep(jitter(
            Duration::from_millis(2500),
            Duration::from_millis(500),
        ))
        .await;
        dead_periods.push((round, killed_at, Timestamp::now()));
    }
    assert!(
        seen.len() >= 20,
        "too few results to mean anything: {}",
        seen.len()
    );

    let daemon = Daemon::start(&config.main_path()).await;
    let mut after = BTreeSet::new();
    for probe in probes {
        after.extend(acknowledged(&daemon, probe, &since).await);
    }
    let lost: Vec<_> = seen.difference(&after).collect();
    assert!(
        lost.is_empty(),
        "acknowledged results lost after kill -9: {lost:?}"
    );

    // Each dead period shows as unknown ("daemon not running") in every probe's history.
    for probe in probes {
        let history = daemon
            .cli(&["history", probe, "--since", &since, "--json"])
            .await
            .json();
        let unknown = history["unknown"].as_array().expect("unknown spans");
        for (round, killed, restarted) in &dead_periods {
            let covered = unknown.iter().any(|span| {
                let from: Timestamp = span["from"].as_str().expect("from").parse().expect("ts");
                let to: Timestamp = span["to"].as_str().expect("to").parse().expect("ts");
                span["reason"] == "daemon_not_running"
                    && from <= *restarted
                    && to >= *restarted
                    && from < *restarted
                    && from
                        >= killed
                            .checked_sub(jiff::SignedDuration::from_secs(3))
                            .expect("ts")
            });
            assert!(
                covered,
                "{probe}: dead period {round} ({killed} → {restarted}) not unknown: {unknown:#?}"
            );
        }
    }
    assert_eq!(daemon.terminate().await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn sighup_applies_a_valid_change_and_rejects_an_invalid_one() {
    let up = tcp::hang().await;
    let web = http::start(http::HttpOptions::plain()).await;
    let config = TestConfig::new();
    config.probes(
        "a.toml",
        &format!("[[probe]]\nname = \"a\"\nkind = \"tcp\"\naddress = \"{}\"\ninterval = \"1s\"\ntimeout = \"500ms\"\n", up.addr),
    );
    let daemon = Daemon::start(&config.main_path()).await;

    // A valid change: a new probe appears and gets checked.
    config.probes(
        "b.toml",
        &format!("[[probe]]\nname = \"b\"\nkind = \"http\"\nurl = \"{}\"\ninterval = \"1s\"\ntimeout = \"500ms\"\n", web.url("/ok")),
    );
    daemon.signal("HUP");
    daemon
        .wait_for_log("configuration reloaded", Duration::from_secs(10))
        .await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let status = daemon.cli(&["status", "--json"]).await.json();
        let b = status["probes"]
            .as_array()
            .expect("probes")
            .iter()
            .find(|p| p["name"] == "b")
            .cloned();
        if b.is_some_and(|b| b["state"] == "up") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "probe b never came up: {status:#}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // An invalid change: rejected with file:line:col, the old configuration keeps probing.
    config.probes(
        "c.toml",
        "[[probe]]\nname = \"c\"\nkind = \"tcp\"\nadress = \"127.0.0.1:1\"\n",
    );
    let before = daemon
        .cli(&["history", "a", "--since", "1h", "--json"])
        .await
        .json()["checks"]
        .as_u64()
        .expect("checks");
    daemon.signal("HUP");
    let log = daemon
        .wait_for_log("reload rejected", Duration::from_secs(10))
        .await;
    assert!(
        log.contains("probes.d/c.toml:4:1"),
        "error names file:line:col:\n{log}"
    );
    assert!(log.contains("unknown key \"adress\""), "{log}");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let after = daemon
        .cli(&["history", "a", "--since", "1h", "--json"])
        .await
        .json()["checks"]
        .as_u64()
        .expect("checks");
    assert!(
        after >= before + 2,
        "probe a kept its schedule: {before} → {after}"
    );
    let status = daemon.cli(&["status", "--json"]).await.json();
    let names: Vec<_> = status["probes"]
        .as_array()
        .expect("probes")
        .iter()
        .map(|p| p["name"].clone())
        .collect();
    assert_eq!(names, ["a", "b"], "the rejected probe is not there");

    // Removing a probe stops it.
    std::fs::remove_file(config.dir().join("probes.d/b.toml")).expect("rm");
    std::fs::remove_file(config.dir().join("probes.d/c.toml")).expect("rm");
    daemon.signal("HUP");
    daemon
        .wait_for_log("probe stopped", Duration::from_secs(10))
        .await;

    assert_eq!(daemon.terminate().await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_finishes_writes_and_exits_zero() {
    let up = tcp::hang().await;
    let web = http::start(http::HttpOptions::plain()).await;
    let config = TestConfig::new();
    fast_probes(&config, &up, &web);
    let daemon = Daemon::start(&config.main_path()).await;
    tokio::time::sleep(Duration::from_millis(2200)).await;
    let status = daemon.cli(&["status"]).await;
    assert_eq!(status.code, 1, "a probe is down:\n{}", status.stdout);
    assert!(status.stdout.contains("down-tcp"), "{}", status.stdout);
    let log_path = config.dir().join("daemon-0.log");
    assert_eq!(daemon.terminate().await, 0);
    let log = std::fs::read_to_string(log_path).expect("log");
    assert!(log.contains("stopped; every result is written"), "{log}");
    // With the daemon gone, the CLI reads the ledger itself.
    let status = upledger()
        .arg("--config")
        .arg(config.main_path())
        .args(["status", "--json"])
        .run()
        .await;
    let json = status.json();
    assert_eq!(json["daemon_running"], false);
    let down = json["probes"]
        .as_array()
        .expect("probes")
        .iter()
        .find(|p| p["name"] == "down-tcp")
        .cloned()
        .expect("down-tcp");
    assert_eq!(down["last"]["error_class"], "connect", "{down:#}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_locked_ledger_without_a_socket_is_explained() {
    let config = TestConfig::new();
    config.probes(
        "a.toml",
        "[[probe]]\nname = \"a\"\nkind = \"tcp\"\naddress = \"127.0.0.1:1\"\n",
    );
    let daemon = Daemon::start(&config.main_path()).await;
    // Same ledger, another socket path: nobody answers there, and the ledger is taken.
    let other = config.dir().join("other.toml");
    std::fs::write(
        &other,
        "[daemon]\nledger = \"data/ledger\"\nsocket = \"elsewhere.sock\"\n",
    )
    .expect("write");
    let output = upledger()
        .arg("--config")
        .arg(&other)
        .arg("status")
        .run()
        .await;
    assert_eq!(output.code, 2);
    assert!(output.stderr.contains("is locked"), "{}", output.stderr);
    assert!(
        output.stderr.contains("no daemon answers on"),
        "{}",
        output.stderr
    );
    assert_eq!(daemon.terminate().await, 0);
}

/// Issue 20 item 6: a second daemon given the first one's socket path (and its own ledger)
/// took the socket over, so an `exclude` meant for the first landed in the second's ledger.
/// It must refuse to start, naming the other daemon's ledger; the first keeps answering.
#[tokio::test(flavor = "multi_thread")]
async fn a_second_daemon_on_the_same_socket_refuses_to_start() {
    let config = TestConfig::new();
    config.probes(
        "a.toml",
        "[[probe]]\nname = \"a\"\nkind = \"tcp\"\naddress = \"127.0.0.1:1\"\n",
    );
    let daemon = Daemon::start(&config.main_path()).await;
    let second = config.dir().join("second.toml");
    std::fs::write(
        &second,
        "[daemon]\nledger = \"data/second-ledger\"\nsocket = \"data/upledger.sock\"\n",
    )
    .expect("write");
    let output = upledger()
        .arg("--config")
        .arg(&second)
        .arg("run")
        .run()
        .await;
    assert_eq!(output.code, 2, "{}", output.stderr);
    let first_ledger = config.dir().join("data/ledger");
    assert!(
        output
            .stderr
            .contains("another upledger daemon already answers on")
            && output
                .stderr
                .contains(&format!("ledger {}", first_ledger.display())),
        "{}",
        output.stderr
    );
    let status = daemon.cli(&["status", "--json"]).await;
    assert_eq!(
        status.code, 0,
        "the first daemon still answers: {}",
        status.stderr
    );
    assert_eq!(status.json()["probes"][0]["name"], "a");
    assert_eq!(daemon.terminate().await, 0);

    // With the first daemon gone, its socket file (if any) is stale: the second starts.
    let restarted = Daemon::start(&second).await;
    assert_eq!(restarted.terminate().await, 0);
}

/// Issue 20 item 5: `upledger status | head -1` panicked on the closed pipe (exit 101).
#[tokio::test(flavor = "multi_thread")]
async fn status_into_a_closed_pipe_ends_quietly() {
    let config = TestConfig::new();
    let probes: String = (0..300)
        .map(|i| {
            format!("[[probe]]\nname = \"p{i}\"\nkind = \"tcp\"\naddress = \"127.0.0.1:1\"\n\n")
        })
        .collect();
    config.probes("many.toml", &probes);
    let script = format!(
        "'{bin}' --config '{main}' status | head -1; echo \"status=${{PIPESTATUS[0]}}\"",
        bin = env!("CARGO_BIN_EXE_upledger"),
        main = config.main_path().display()
    );
    let output = tokio::process::Command::new("bash")
        .arg("-c")
        .arg(&script)
        .output()
        .await
        .expect("bash");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stdout.starts_with("PROBE"), "{stdout}");
    assert!(
        stdout.contains("status=0") || stdout.contains("status=141"),
        "{stdout}\n{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// JSON lines for two probes over a day, sorted by probe then time (the export order).
fn sample_lines() -> String {
    let mut lines = String::new();
    for probe in ["alpha", "beta"] {
        for i in 0..500i64 {
            let at = Timestamp::from_second(1_793_491_200 + i * 30).expect("ts");
            let (outcome, class, detail) = match i % 50 {
                7..=9 => ("down", "\"connect\"", "connection refused"),
                20 => ("degraded", "null", "slower than 800ms"),
                33 => (
                    "unknown",
                    "\"dns\"",
                    "monitor offline (sentinel uplink down): timeout",
                ),
                _ => ("up", "null", ""),
            };
            let micros = (10 + i % 7) * 1000 + (i * 37) % 1000;
            // serde_json's shortest form, as export writes it.
            let latency = serde_json::to_string(&(micros as f64 / 1000.0)).expect("f64");
            lines += &format!(
                "{{\"probe\":\"{probe}\",\"at\":\"{at}\",\"outcome\":\"{outcome}\",\"latency_ms\":{latency},\"error_class\":{class},\"detail\":\"{detail}\"}}\n"
            );
        }
    }
    lines
}

fn two_probe_config() -> TestConfig {
    let config = TestConfig::new();
    config.probes(
        "p.toml",
        "[[probe]]\nname = \"alpha\"\nkind = \"tcp\"\naddress = \"127.0.0.1:1\"\nenabled = false\n\n\
         [[probe]]\nname = \"beta\"\nkind = \"tcp\"\naddress = \"127.0.0.1:2\"\nenabled = false\n",
    );
    config
}

#[tokio::test(flavor = "multi_thread")]
async fn import_then_export_round_trips_and_bad_imports_change_nothing() {
    let config = two_probe_config();
    let input = config.dir().join("in.jsonl");
    let lines = sample_lines();
    std::fs::write(&input, &lines).expect("write");
    let cli = |args: &[&str]| {
        upledger()
            .arg("--config")
            .arg(config.main_path())
            .args(args.iter().copied())
    };

    let imported = cli(&["import"]).arg(&input).run().await;
    assert_eq!(imported.code, 0, "{}", imported.stderr);
    assert!(
        imported.stderr.contains("imported 1000 results"),
        "{}",
        imported.stderr
    );
    let exported = cli(&["export"]).run().await;
    assert_eq!(exported.code, 0, "{}", exported.stderr);
    assert_eq!(exported.stdout, lines, "export is byte-for-byte the import");

    // Filters.
    let beta = cli(&[
        "export",
        "--probe",
        "beta",
        "--since",
        "2026-11-01T01:00:00Z",
        "--until",
        "2026-11-01T02:00:00Z",
    ])
    .run()
    .await;
    assert_eq!(beta.stdout.lines().count(), 120);
    assert!(beta.stdout.lines().all(|l| l.contains("\"beta\"")));

    // A duplicate (the same file again) is refused and changes nothing.
    let again = cli(&["import"]).arg(&input).run().await;
    assert_eq!(again.code, 2);
    assert!(
        again.stderr.contains("import refused, nothing written"),
        "{}",
        again.stderr
    );
    // A duplicate within one file, mixed with new results, changes nothing either.
    let mixed = config.dir().join("mixed.jsonl");
    let first = lines.lines().next().expect("a line");
    let new = first.replace("2026-11-01T00:00:00Z", "2026-12-01T00:00:00Z");
    std::fs::write(&mixed, format!("{new}\n{new}\n")).expect("write");
    let refused = cli(&["import"]).arg(&mixed).run().await;
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("both in the input"),
        "{}",
        refused.stderr
    );
    // An unknown probe is refused with its line number.
    let unknown = config.dir().join("unknown.jsonl");
    std::fs::write(
        &unknown,
        format!("{new}\n{}\n", new.replace("alpha", "gamma")),
    )
    .expect("write");
    let refused = cli(&["import"]).arg(&unknown).run().await;
    assert_eq!(refused.code, 2);
    assert!(
        refused.stderr.contains("line 2: unknown probe \"gamma\""),
        "{}",
        refused.stderr
    );

    let exported = cli(&["export"]).run().await;
    assert_eq!(exported.stdout, lines, "refused imports changed nothing");
}

#[tokio::test(flavor = "multi_thread")]
async fn import_and_export_go_through_a_running_daemon() {
    let config = two_probe_config();
    let input = config.dir().join("in.jsonl");
    let lines = sample_lines();
    std::fs::write(&input, &lines).expect("write");
    let daemon = Daemon::start(&config.main_path()).await;
    let imported = daemon
        .cli(&["import", input.to_str().expect("utf-8")])
        .await;
    assert_eq!(imported.code, 0, "{}", imported.stderr);
    let exported = daemon.cli(&["export"]).await;
    assert_eq!(exported.stdout, lines);
    let again = daemon
        .cli(&["import", input.to_str().expect("utf-8")])
        .await;
    assert_eq!(again.code, 2);
    assert!(again.stderr.contains("nothing written"), "{}", again.stderr);
    let history = daemon
        .cli(&[
            "history",
            "alpha",
            "--since",
            "2026-11-01T00:00:00Z",
            "--json",
        ])
        .await
        .json();
    assert_eq!(history["checks"], 500);
    assert_eq!(history["failed_checks"], 30);
    assert_eq!(daemon.terminate().await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_shipped_configuration_runs_from_the_repository_root() {
    // A copy, so the test leaves no data folder in the repository.
    let root = tempfile::tempdir().expect("tempdir");
    let repo = crate::support::repo_root();
    std::fs::copy(
        repo.join("upledger.toml"),
        root.path().join("upledger.toml"),
    )
    .expect("copy");
    std::fs::create_dir(root.path().join("probes.d")).expect("mkdir");
    for entry in std::fs::read_dir(repo.join("probes.d")).expect("probes.d") {
        let path = entry.expect("entry").path();
        std::fs::copy(
            &path,
            root.path()
                .join("probes.d")
                .join(path.file_name().expect("name")),
        )
        .expect("copy");
    }
    let daemon = Daemon::start(&root.path().join("upledger.toml")).await;
    assert!(
        root.path().join("data/ledger").is_dir(),
        "ledger under the local data folder"
    );
    let socket = root.path().join("data/upledger.sock");
    let metadata = std::fs::metadata(&socket).expect("socket under the local data folder");
    let mode = std::os::unix::fs::PermissionsExt::mode(&metadata.permissions());
    assert_eq!(mode & 0o777, 0o660, "socket mode");
    assert_eq!(daemon.terminate().await, 0);
    assert!(
        !root.path().join("data/upledger.sock").exists(),
        "socket removed on exit"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn failures_while_the_sentinel_is_down_are_recorded_as_unknown() {
    let up = tcp::hang().await;
    let refused = tcp::refused_addr();
    let config = TestConfig::new();
    config.main("[daemon]\nledger = \"data/ledger\"\nsocket = \"data/upledger.sock\"\nsentinel = \"uplink\"\n");
    let probe = |name: &str, address: &std::net::SocketAddr| {
        format!(
            "[[probe]]\nname = \"{name}\"\nkind = \"tcp\"\naddress = \"{address}\"\ninterval = \"1s\"\ntimeout = \"500ms\"\nfailure_threshold = 1\n\n"
        )
    };
    // The monitor's own uplink is broken, and so (apparently) is the target.
    config.probes(
        "p.toml",
        &(probe("uplink", &refused) + &probe("target", &refused) + &probe("fine", &up.addr)),
    );
    let daemon = Daemon::start(&config.main_path()).await;
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let history = daemon
        .cli(&["history", "target", "--since", "1h", "--json"])
        .await
        .json();
    let results = history["results"].as_array().expect("results");
    assert!(results.len() >= 2, "{history:#}");
    // The first check may race the sentinel's first check; every later one is unknown.
    for result in &results[1..] {
        assert_eq!(result["outcome"], "unknown", "{result}");
        assert!(
            result["detail"]
                .as_str()
                .expect("detail")
                .starts_with("monitor offline (sentinel uplink down)"),
            "{result}"
        );
    }
    assert_eq!(
        history["failed_checks"].as_u64().expect("n"),
        results.iter().filter(|r| r["outcome"] == "down").count() as u64
    );
    // Successes are still successes; the sentinel's own failures are its own.
    let fine = daemon
        .cli(&["history", "fine", "--since", "1h", "--json"])
        .await
        .json();
    assert!(
        fine["results"]
            .as_array()
            .expect("results")
            .iter()
            .all(|r| r["outcome"] == "up")
    );
    let uplink = daemon
        .cli(&["history", "uplink", "--since", "1h", "--json"])
        .await
        .json();
    assert!(
        uplink["results"]
            .as_array()
            .expect("results")
            .iter()
            .all(|r| r["outcome"] == "down")
    );
    assert_eq!(daemon.terminate().await, 0);
}

/// Collects sd_notify datagrams sent to a socket until `until` appears (or 10 s pass).
fn notifications_until(
    socket: &std::os::unix::net::UnixDatagram,
    until: &str,
    seen: &mut Vec<String>,
) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        if let Ok(n) = socket.recv(&mut buf) {
            let message = String::from_utf8_lossy(&buf[..n]).into_owned();
            let done = message.lines().any(|l| l == until);
            seen.push(message);
            if done {
                return;
            }
        }
    }
    panic!("no {until} notification; got {seen:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn systemd_hears_ready_status_watchdog_reloading_and_stopping() {
    let config = TestConfig::new();
    config.probes(
        "a.toml",
        "[[probe]]\nname = \"a\"\nkind = \"tcp\"\naddress = \"127.0.0.1:1\"\ninterval = \"1s\"\ntimeout = \"500ms\"\n",
    );
    let path = config.dir().join("notify.sock");
    let socket = std::os::unix::net::UnixDatagram::bind(&path).expect("bind notify socket");
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    let daemon = Daemon::start_with_env(
        &config.main_path(),
        &[
            ("NOTIFY_SOCKET", path.to_str().expect("utf-8")),
            ("WATCHDOG_USEC", "400000"),
        ],
    )
    .await;
    let mut seen = Vec::new();
    notifications_until(&socket, "READY=1", &mut seen);
    assert!(
        seen.iter().any(|m| m.contains("STATUS=1 probes, 0 down")),
        "{seen:?}"
    );
    notifications_until(&socket, "WATCHDOG=1", &mut seen);
    daemon.signal("HUP");
    let mut reload = Vec::new();
    notifications_until(&socket, "RELOADING=1", &mut reload);
    notifications_until(&socket, "READY=1", &mut reload);
    let pid = daemon.pid();
    assert_eq!(daemon.terminate().await, 0);
    let mut stop = Vec::new();
    notifications_until(&socket, "STOPPING=1", &mut stop);
    assert!(pid > 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn exclusions_are_recorded_with_their_reason_directly_and_through_the_daemon() {
    let config = two_probe_config();
    let cli = |args: &[&str]| {
        upledger()
            .arg("--config")
            .arg(config.main_path())
            .args(args.iter().copied())
    };
    let excluded = cli(&[
        "exclude",
        "--probe",
        "alpha",
        "--from",
        "2026-11-03T10:00:00Z",
        "--to",
        "2026-11-03T11:00:00Z",
        "--reason",
        "upstream provider outage (force majeure)",
    ])
    .run()
    .await;
    assert_eq!(excluded.code, 0, "{}", excluded.stderr);
    // Refused: unknown probe, empty reason, reversed range.
    for bad in [
        vec![
            "--probe", "nope", "--from", "1h", "--to", "30m", "--reason", "x",
        ],
        vec![
            "--probe", "alpha", "--from", "1h", "--to", "30m", "--reason", " ",
        ],
        vec![
            "--probe", "alpha", "--from", "30m", "--to", "1h", "--reason", "x",
        ],
    ] {
        let mut args = vec!["exclude"];
        args.extend(bad);
        let refused = cli(&args).run().await;
        assert_eq!(refused.code, 2, "{args:?}: {}", refused.stderr);
    }
    let daemon = Daemon::start(&config.main_path()).await;
    let through_daemon = daemon
        .cli(&[
            "exclude",
            "--probe",
            "alpha",
            "--from",
            "2026-11-04T10:00:00Z",
            "--to",
            "2026-11-04T10:30:00Z",
            "--reason",
            "monitor host rebooted",
        ])
        .await;
    assert_eq!(through_daemon.code, 0, "{}", through_daemon.stderr);
    let history = daemon
        .cli(&[
            "history",
            "alpha",
            "--since",
            "2026-11-01T00:00:00Z",
            "--json",
        ])
        .await
        .json();
    let reasons: Vec<_> = history["exclusions"]
        .as_array()
        .expect("exclusions")
        .iter()
        .map(|e| e["reason"].as_str().expect("reason").to_owned())
        .collect();
    assert_eq!(
        reasons,
        [
            "upstream provider outage (force majeure)",
            "monitor host rebooted"
        ]
    );
    assert_eq!(daemon.terminate().await, 0);
}

/// Checks open a fresh connection each; `reuse_connection = true` keeps one open instead.
#[tokio::test(flavor = "multi_thread")]
async fn only_reuse_connection_keeps_connections_between_checks() {
    let fresh = http::start(http::HttpOptions::plain()).await;
    let kept = http::start(http::HttpOptions::plain()).await;
    let config = TestConfig::new();
    config.probes(
        "web.toml",
        &format!(
            r#"
[[probe]]
name = "fresh"
kind = "http"
url = "{fresh}"
interval = "250ms"
timeout = "200ms"

[[probe]]
name = "kept"
kind = "http"
url = "{kept}"
interval = "250ms"
timeout = "200ms"
reuse_connection = true
"#,
            fresh = fresh.url("/ok"),
            kept = kept.url("/ok"),
        ),
    );
    let daemon = Daemon::start(&config.main_path()).await;
    tokio::time::sleep(Duration::from_millis(2000)).await;
    assert_eq!(daemon.terminate().await, 0);
    assert!(
        fresh.requests() >= 5,
        "fresh: {} requests",
        fresh.requests()
    );
    assert_eq!(
        fresh.connections(),
        fresh.requests(),
        "one connection per check"
    );
    assert!(kept.requests() >= 5, "kept: {} requests", kept.requests());
    assert_eq!(kept.connections(), 1, "{} requests", kept.requests());
}

/// SPEC §10: configuration warnings (a credit table with a gap) are logged, located, when the
/// daemon starts and at every reload; they stop neither.
#[tokio::test(flavor = "multi_thread")]
async fn configuration_warnings_are_logged_at_start_and_at_reload() {
    let up = tcp::hang().await;
    let config = TestConfig::new();
    config.probes(
        "a.toml",
        &format!("[[probe]]\nname = \"a\"\nkind = \"tcp\"\naddress = \"{}\"\ninterval = \"1s\"\ntimeout = \"500ms\"\n", up.addr),
    );
    let main = |credits: &str| {
        format!(
            "\n[daemon]\nledger = \"data/ledger\"\nsocket = \"data/upledger.sock\"\n\n\
             [[sla]]\nname = \"gh\"\nprobes = [\"a\"]\ntarget = \"99.9%\"\ncredits = {credits}\n"
        )
    };
    config.main(&main(
        r#"[ { above = "99.0%", at_or_below = "99.9%", credit = "10%" }, { below = "99.0%", credit = "25%" } ]"#,
    ));
    let daemon = Daemon::start(&config.main_path()).await;
    let log = daemon
        .wait_for_log("uncovered", Duration::from_secs(10))
        .await;
    assert!(
        log.contains("upledger.toml:10:11: sla \"gh\": credits leave exactly 99% uncovered"),
        "{log}"
    );

    config.main(&main(
        r#"[ { above = "99.5%", at_or_below = "99.9%", credit = "10%" }, { below = "99.0%", credit = "25%" } ]"#,
    ));
    daemon.signal("HUP");
    let log = daemon
        .wait_for_log("configuration reloaded", Duration::from_secs(10))
        .await;
    assert!(
        log.contains("credits leave at or above 99% and at or below 99.5% uncovered"),
        "{log}"
    );
    assert_eq!(daemon.terminate().await, 0);
}
