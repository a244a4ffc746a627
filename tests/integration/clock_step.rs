//! Steps of the wall clock go on record (issue: "wall-clock steps go on record"): a daemon
//! whose clock is set back an hour and then forward a day, under libfaketime, records both
//! steps, and the month report lists them and counts the wall-clock time they made ambiguous
//! as unknown — no result stamped inside it counts as up.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use jiff::Timestamp;

use crate::support::{Output, TestConfig, daemon::Daemon, tcp, upledger};

const LIBFAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";

/// The clock offset this test process already runs at, in seconds: CI runs the whole suite
/// under `faketime -f "+Ns"`, and the daemon's clock must start from the same time.
fn inherited_offset() -> i64 {
    match std::env::var("FAKETIME") {
        Err(_) => 0,
        Ok(text) => text
            .strip_suffix('s')
            .and_then(|n| n.trim_start_matches('+').parse().ok())
            .unwrap_or_else(|| panic!("FAKETIME={text:?} is not the offset form \"+Ns\"")),
    }
}

/// A clock file libfaketime re-reads on every call: what it holds is the processes' offset.
struct FakeClock {
    file: PathBuf,
    base: i64,
}

impl FakeClock {
    fn new(dir: &Path) -> FakeClock {
        let clock = FakeClock {
            file: dir.join("faketime.rc"),
            base: inherited_offset(),
        };
        clock.set(0);
        clock
    }

    /// Moves every process using this clock to `offset` seconds from the inherited time.
    fn set(&self, offset: i64) {
        let total = self.base + offset;
        // Whole or not at all: a process reading a half-written file would see another time.
        let staged = self.file.with_extension("new");
        std::fs::write(&staged, format!("{total:+}s\n")).expect("write the clock file");
        std::fs::rename(&staged, &self.file).expect("replace the clock file");
    }

    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("LD_PRELOAD", LIBFAKETIME.to_owned()),
            ("FAKETIME_TIMESTAMP_FILE", self.file.display().to_string()),
            ("FAKETIME_NO_CACHE", "1".to_owned()),
            ("FAKETIME_DONT_FAKE_MONOTONIC", "1".to_owned()),
        ]
    }
}

/// A CLI command on the fake clock.
async fn cli(config: &TestConfig, clock: &FakeClock, args: &[&str]) -> Output {
    let mut command = upledger()
        .arg("--config")
        .arg(config.main_path())
        .args(args.iter().copied())
        .env_remove("FAKETIME");
    for (key, value) in clock.env() {
        command = command.env(key, &value);
    }
    command.run().await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stepped_clock_is_recorded_and_its_ambiguous_time_is_unknown() {
    if !Path::new(LIBFAKETIME).exists() {
        eprintln!(
            "skipped: {LIBFAKETIME} is missing (Debian package faketime; .ci/run installs it)"
        );
        return;
    }
    let target = tcp::pong().await;
    let config = TestConfig::new();
    config.main("[daemon]\nledger = \"data/ledger\"\nsocket = \"data/upledger.sock\"\n");
    config.probes(
        "p.toml",
        &format!(
            "[[probe]]\nname = \"svc\"\nkind = \"tcp\"\naddress = \"127.0.0.1:{}\"\n\
             interval = \"250ms\"\ntimeout = \"200ms\"\n",
            target.port()
        ),
    );
    let clock = FakeClock::new(config.dir());
    let owned = clock.env();
    let env: Vec<(&str, &str)> = owned.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let daemon = Daemon::start_with(&config.main_path(), &env, &["FAKETIME"]).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    clock.set(-3600);
    tokio::time::sleep(Duration::from_secs(3)).await;
    clock.set(-3600 + 86_400);
    daemon
        .wait_for_log("clock was stepped", Duration::from_secs(10))
        .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let log = daemon.log();
    assert_eq!(daemon.terminate().await, 0, "{log}");
    // Under CI's outer faketime pass, libfaketime re-reading its clock file has now and then
    // handed one call the un-faked time: a step of minus the inherited offset and, half a
    // second later, its exact reverse. A real clock never does that; such pairs are left out.
    // The steps made here are an hour and a day; CI's offsets are weeks or months.
    const TWO_DAYS: f64 = 2.0 * 86_400.0;
    let inherited = clock.base as f64;
    let flicker = |step_seconds: f64| inherited.abs() > TWO_DAYS && step_seconds.abs() > TWO_DAYS;
    let logged: Vec<&str> = log
        .lines()
        .filter(|line| line.contains("the wall clock was stepped"))
        .filter(|line| {
            let step = line
                .split("step=")
                .nth(1)
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|text| text.parse::<jiff::SignedDuration>().ok())
                .map_or(0.0, |d| d.as_secs_f64());
            !flicker(step)
        })
        .collect();
    assert_eq!(logged.len(), 2, "one log line per step:\n{log}");

    let steps_report = |report: &serde_json::Value| -> Vec<(f64, Timestamp, Timestamp, Timestamp)> {
        report["clock_steps"]
            .as_array()
            .map(|steps| {
                steps
                    .iter()
                    .map(|s| {
                        let time = |key: &str| -> Timestamp {
                            s[key].as_str().expect(key).parse().expect("a timestamp")
                        };
                        (
                            s["step_seconds"].as_f64().expect("step_seconds"),
                            time("at"),
                            time("unknown_from"),
                            time("unknown_to"),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    // The month of the step back: both steps' spans touch it (the forward one starts seconds
    // after the step back lands).
    let history = cli(
        &config,
        &clock,
        &["history", "svc", "--since", "30d", "--json"],
    )
    .await;
    assert_eq!(history.code, 0, "{}", history.stderr);
    let back_at = history.json()["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| {
            r["at"]
                .as_str()
                .expect("at")
                .parse::<Timestamp>()
                .expect("ts")
        })
        .min()
        .expect("results");
    let month = back_at.strftime("%Y-%m").to_string();
    let report = cli(
        &config,
        &clock,
        &["report", "--month", &month, "--format", "json"],
    )
    .await;
    assert_eq!(report.code, 0, "{}", report.stderr);
    let report = report.json();
    let steps: Vec<_> = steps_report(&report)
        .into_iter()
        .filter(|step| !flicker(step.0))
        .collect();
    assert_eq!(steps.len(), 2, "both steps listed: {report:#}");
    let (back, forward) = (steps[0], steps[1]);
    assert!(
        (back.0 + 3600.0).abs() < 2.0 && (forward.0 - 86_400.0).abs() < 2.0,
        "steps of -1 h and +1 day: {steps:?}"
    );
    // Stepped back: the hour after the landing time was read twice; forward: the day before
    // it was skipped (each widened by the moment between two looks at the clocks).
    let length =
        |step: (f64, Timestamp, Timestamp, Timestamp)| step.3.duration_since(step.2).as_secs_f64();
    assert!(
        back.2 <= back.1 && (length(back) - 3600.0).abs() < 2.0,
        "{back:?}"
    );
    let ends_where_noticed = forward.3.duration_since(forward.1).as_secs_f64().abs() < 0.002;
    assert!(
        ends_where_noticed && (length(forward) - 86_400.0).abs() < 2.0,
        "{forward:?}"
    );

    // Every result before the step forward was stamped inside an ambiguous span: none of
    // them counts as up. Only time after the last span (if the month reaches it) can.
    let probe = &report["probes"][0];
    let up = probe["up_seconds"].as_f64().expect("up_seconds");
    let as_of: Timestamp = report["as_of"]
        .as_str()
        .expect("as_of")
        .parse()
        .expect("ts");
    let trusted = as_of.duration_since(forward.3).as_secs_f64().max(0.0);
    assert!(
        up <= trusted + 0.001,
        "up {up} s, but only the {trusted} s after the last step are trustworthy: {report:#}"
    );
    if trusted > 1.0 {
        assert!(up > 0.5, "checks went on after the steps: {report:#}");
    }
    let markdown = cli(
        &config,
        &clock,
        &["report", "--month", &month, "--format", "markdown"],
    )
    .await;
    assert!(
        markdown.stdout.contains("## Clock steps") && markdown.stdout.contains("set back 1h"),
        "{}",
        markdown.stdout
    );
}
