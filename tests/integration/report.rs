//! `upledger report` end to end: a month of results imported through the binary, then the
//! month's figures compared with a hand calculation, in UTC and in Europe/Berlin.

use jiff::Timestamp;

use crate::support::{TestConfig, upledger};

/// 2026-10-01T00:00:00Z.
const OCT_1: i64 = 1_790_812_800;
/// 2026-11-01T00:00:00Z.
const NOV_1: i64 = OCT_1 + 31 * 86_400;

fn at(text: &str) -> i64 {
    text.parse::<Timestamp>().expect("timestamp").as_second()
}

/// A month of 30 s results for probe `web` with, in UTC:
/// - outage A: 10 failures from 10-05 10:00:00, first success 10:05:00 → 300 s down;
/// - a transient: 2 failures on 10-06 at 12:00 (below the threshold of 3) → up;
/// - a gap: nothing from 10-10 00:00:30 until 01:00:00; the 00:00:00 result holds 60 s, so
///   3,540 s are unknown;
/// - 20 failures from 10-15 02:10:00 inside the maintenance window 02:00–03:00 → maintenance;
/// - 20 failures from 10-20 08:00:00 inside the exclusion 08:00–08:30 → excluded;
/// - outage B: 40 failures from 10-25 23:50:00, first success 10-26 00:10:00 → 1,200 s down.
fn month_of_results() -> String {
    let down_runs = [
        (at("2026-10-05T10:00:00Z"), 10),
        (at("2026-10-06T12:00:00Z"), 2),
        (at("2026-10-15T02:10:00Z"), 20),
        (at("2026-10-20T08:00:00Z"), 20),
        (at("2026-10-25T23:50:00Z"), 40),
    ];
    let gap = (at("2026-10-10T00:00:30Z"), at("2026-10-10T01:00:00Z"));
    let mut lines = String::with_capacity(10_000_000);
    let mut t = OCT_1;
    while t < NOV_1 {
        if !(gap.0..gap.1).contains(&t) {
            let down = down_runs
                .iter()
                .any(|(start, n)| (*start..start + n * 30).contains(&t));
            let stamp = Timestamp::from_second(t).expect("ts");
            if down {
                lines += &format!(
                    "{{\"probe\":\"web\",\"at\":\"{stamp}\",\"outcome\":\"down\",\"latency_ms\":3.0,\"error_class\":\"connect\",\"detail\":\"connection refused\"}}\n"
                );
            } else {
                lines += &format!(
                    "{{\"probe\":\"web\",\"at\":\"{stamp}\",\"outcome\":\"up\",\"latency_ms\":12.5,\"error_class\":null,\"detail\":\"\"}}\n"
                );
            }
        }
        t += 30;
    }
    lines
}

fn config(timezone: &str) -> TestConfig {
    let config = TestConfig::new();
    config.main(&format!(
        r#"
[daemon]
ledger = "data/ledger"
socket = "data/upledger.sock"
timezone = "{timezone}"

[[maintenance]]
probes = ["web"]
start = "2026-10-15T02:00:00Z"
duration = "1h"
reason = "database upgrade"

[[sla]]
name = "acme"
client = "ACME Corp"
probes = ["web"]
target = "99.95%"
monthly_fee = 2000.0
currency = "EUR"
credits = [ {{ below = "99.95%", credit = "10%" }}, {{ below = "99.0%", credit = "25%" }} ]
"#
    ));
    config.probes(
        "web.toml",
        "[[probe]]\nname = \"web\"\nkind = \"http\"\nurl = \"http://127.0.0.1:9/\"\ninterval = \"30s\"\n\
         timeout = \"10s\"\nfailure_threshold = 3\ntarget = \"99.9%\"\n",
    );
    config
}

async fn load_month(config: &TestConfig) {
    let file = config.dir().join("october.jsonl");
    std::fs::write(&file, month_of_results()).expect("write");
    let cli = |args: &[&str]| {
        upledger()
            .arg("--config")
            .arg(config.main_path())
            .args(args.iter().copied())
    };
    let imported = cli(&["import"]).arg(&file).run().await;
    assert_eq!(imported.code, 0, "{}", imported.stderr);
    let excluded = cli(&[
        "exclude",
        "--probe",
        "web",
        "--from",
        "2026-10-20T08:00:00Z",
        "--to",
        "2026-10-20T08:30:00Z",
        "--reason",
        "carrier fibre cut (force majeure)",
    ])
    .run()
    .await;
    assert_eq!(excluded.code, 0, "{}", excluded.stderr);
}

async fn report_json(config: &TestConfig, extra: &[&str]) -> (i32, serde_json::Value) {
    let output = upledger()
        .arg("--config")
        .arg(config.main_path())
        .args(["report", "--month", "2026-10", "--format", "json"])
        .args(extra.iter().copied())
        .run()
        .await;
    assert!(output.code <= 1, "{}", output.stderr);
    (output.code, output.json())
}

async fn october_json(daemon: &crate::support::daemon::Daemon) -> serde_json::Value {
    daemon
        .cli(&["report", "--month", "2026-10", "--format", "json"])
        .await
        .json()
}

fn gcd(a: i64, b: i64) -> i64 {
    if b == 0 { a } else { gcd(b, a % b) }
}

fn f(value: &serde_json::Value) -> f64 {
    value
        .as_f64()
        .unwrap_or_else(|| panic!("not a number: {value}"))
}

/// Availability in percent, rounded to 6 decimals like the report.
fn percent(numerator: i64, denominator: i64) -> f64 {
    (numerator as f64 / denominator as f64 * 100.0 * 1e6).round() / 1e6
}

#[tokio::test(flavor = "multi_thread")]
async fn a_month_imported_gives_the_hand_calculated_figures() {
    let config = config("UTC");
    load_month(&config).await;
    let (code, json) = report_json(&config, &[]).await;

    // Hand calculation (seconds).
    let period = 31 * 86_400; // 2,678,400
    let unknown = 3_540;
    let maintenance = 3_600;
    let excluded = 1_800;
    let down = 300 + 1_200;
    let eligible = period - maintenance - unknown - excluded; // 2,669,460
    let up = period - unknown - maintenance - excluded - down;

    assert_eq!(json["month"], "2026-10");
    assert_eq!(json["timezone"], "UTC");
    assert_eq!(json["period_start"], "2026-10-01T00:00:00Z");
    assert_eq!(json["period_end"], "2026-11-01T00:00:00Z");
    assert_eq!(json["in_progress"], false);
    let web = &json["probes"][0];
    assert_eq!(web["name"], "web");
    assert_eq!(f(&web["target"]), 99.9);
    assert_eq!(f(&web["monitored_seconds"]), period as f64);
    assert_eq!(f(&web["unknown_seconds"]), unknown as f64);
    assert_eq!(f(&web["maintenance_seconds"]), maintenance as f64);
    assert_eq!(f(&web["excluded_seconds"]), excluded as f64);
    assert_eq!(f(&web["down_seconds"]), down as f64);
    assert_eq!(f(&web["degraded_seconds"]), 0.0);
    assert_eq!(f(&web["up_seconds"]), up as f64);
    assert_eq!(f(&web["eligible_seconds"]), eligible as f64);
    assert_eq!(f(&web["downtime_seconds"]), down as f64);
    assert_eq!(f(&web["availability"]), percent(eligible - down, eligible));
    let g = gcd(eligible - down, eligible);
    let exact = format!("{}/{}", (eligible - down) / g, eligible / g);
    assert_eq!(
        web["availability_exact"],
        exact.as_str(),
        "2,667,960 / 2,669,460 reduced"
    );
    assert_eq!(f(&web["budget_seconds"]), 2_669.46);
    assert_eq!(f(&web["budget_remaining_seconds"]), 2_669.46 - 1_500.0);
    assert_eq!(web["met"], true);
    // Coverage: evidence over the time that counts (unknown is the only gap).
    let covered = period - maintenance - excluded - unknown;
    assert_eq!(
        f(&web["coverage"]),
        percent(covered, period - maintenance - excluded)
    );
    // 89,280 slots minus the 119 missing in the gap; 92 failures; 4 confirmed outages
    // (A, the one in maintenance, the excluded one, B); the transient is not one.
    assert_eq!(web["checks"], 89_161);
    assert_eq!(web["failed_checks"], 92);
    assert_eq!(web["incidents"], 4);
    assert_eq!(f(&web["latency_ms"]["p50"]), 12.5);
    assert_eq!(web["maintenance"][0]["reason"], "database upgrade");
    assert_eq!(
        web["exclusions"][0]["reason"],
        "carrier fibre cut (force majeure)"
    );

    // The SLA (target 99.95 %) is missed: 10 % of 2,000 EUR.
    let acme = &json["slas"][0];
    assert_eq!(acme["name"], "acme");
    assert_eq!(acme["client"], "ACME Corp");
    assert_eq!(f(&acme["target"]), 99.95);
    assert_eq!(f(&acme["availability"]), percent(eligible - down, eligible));
    assert_eq!(acme["met"], false);
    assert_eq!(f(&acme["credit_percent"]), 10.0);
    assert_eq!(f(&acme["credit_amount"]), 200.0);
    assert_eq!(acme["currency"], "EUR");
    assert_eq!(code, 1, "a missed target exits 1");

    // The other formats carry the same story.
    let markdown = upledger()
        .arg("--config")
        .arg(config.main_path())
        .args(["report", "--month", "2026-10", "--format", "markdown"])
        .run()
        .await;
    for needle in [
        "ACME Corp",
        "99.95%",
        "database upgrade",
        "carrier fibre cut (force majeure)",
        "10% = 200.00 EUR",
        // Client-facing: times to the minute in the report's zone, the error class only.
        "| web | 2026-10-05 10:00 UTC | 2026-10-05 10:05 UTC | 5m | connect |",
    ] {
        assert!(
            markdown.stdout.contains(needle),
            "markdown lacks {needle:?}:\n{}",
            markdown.stdout
        );
    }
    assert!(
        !markdown.stdout.contains("refused"),
        "no check detail without show_details:\n{}",
        markdown.stdout
    );
    let csv = upledger()
        .arg("--config")
        .arg(config.main_path())
        .args(["report", "--month", "2026-10", "--format", "csv"])
        .run()
        .await;
    let lines: Vec<&str> = csv.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "header, probe, sla:\n{}", csv.stdout);
    assert!(
        lines[1].starts_with("probe,web,2026-10,99.9,"),
        "{}",
        lines[1]
    );

    let incidents = upledger()
        .arg("--config")
        .arg(config.main_path())
        .args(["incidents", "--month", "2026-10", "--json"])
        .run()
        .await
        .json();
    let list = incidents.as_array().expect("incidents");
    assert_eq!(list.len(), 4);
    assert_eq!(list[0]["start"], "2026-10-05T10:00:00Z");
    assert_eq!(list[0]["end"], "2026-10-05T10:05:00Z");
    assert_eq!(f(&list[0]["duration_seconds"]), 300.0);
    assert_eq!(list[0]["error_class"], "connect");
    assert_eq!(list[0]["detail"], "connection refused");
    assert_eq!(list[3]["start"], "2026-10-25T23:50:00Z");
    assert_eq!(f(&list[3]["duration_seconds"]), 1_200.0);

    // October is closed: its figures were stored by that first report, and the running
    // daemon answers with exactly the same document.
    let daemon = crate::support::daemon::Daemon::start(&config.main_path()).await;
    assert_eq!(october_json(&daemon).await, json);

    // A closed month is not recomputed differently later: a changed target leaves it alone…
    let probe_file = config.dir().join("probes.d/web.toml");
    let text = std::fs::read_to_string(&probe_file).expect("read");
    std::fs::write(&probe_file, text.replace("99.9%", "99.5%")).expect("write");
    daemon.signal("HUP");
    daemon
        .wait_for_log("configuration reloaded", std::time::Duration::from_secs(10))
        .await;
    assert_eq!(october_json(&daemon).await, json);
    // …but a correction entered afterwards (an exclusion) is taken into account.
    let excluded = daemon
        .cli(&[
            "exclude",
            "--probe",
            "web",
            "--from",
            "2026-10-05T10:00:00Z",
            "--to",
            "2026-10-05T11:00:00Z",
            "--reason",
            "customer's own firewall change",
        ])
        .await;
    assert_eq!(excluded.code, 0, "{}", excluded.stderr);
    let corrected = october_json(&daemon).await;
    let web = &corrected["probes"][0];
    assert_eq!(f(&web["excluded_seconds"]), 1_800.0 + 3_600.0);
    assert_eq!(f(&web["down_seconds"]), 1_200.0, "outage A is now excluded");
    assert_eq!(
        f(&web["target"]),
        99.5,
        "recomputed with the current configuration"
    );
    assert_eq!(daemon.terminate().await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_same_results_give_a_different_month_in_berlin() {
    let config = config("Europe/Berlin");
    load_month(&config).await;
    let (_, json) = report_json(&config, &["--probe", "web"]).await;
    // October 2026 in Berlin: 1 Oct 00:00 CEST to 1 Nov 00:00 CET, 31 days and one hour.
    assert_eq!(json["timezone"], "Europe/Berlin");
    assert_eq!(json["period_start"], "2026-09-30T22:00:00Z");
    assert_eq!(json["period_end"], "2026-10-31T23:00:00Z");
    let web = &json["probes"][0];
    // Measured from the first result (1 Oct 00:00Z) to the Berlin month end (31 Oct 23:00Z).
    let monitored = 31 * 86_400 - 3_600;
    let eligible = monitored - 3_600 - 3_540 - 1_800;
    assert_eq!(f(&web["monitored_seconds"]), monitored as f64);
    assert_eq!(f(&web["eligible_seconds"]), eligible as f64);
    assert_eq!(
        f(&web["down_seconds"]),
        1_500.0,
        "outage B (25 Oct 23:50Z) is inside both months"
    );
    assert_eq!(f(&web["availability"]), percent(eligible - 1_500, eligible));
    assert!(
        json["slas"].as_array().expect("slas").is_empty(),
        "--probe shows no SLA"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_month_in_progress_has_a_forecast() {
    let config = TestConfig::new();
    config.probes(
        "p.toml",
        "[[probe]]\nname = \"burning\"\nkind = \"tcp\"\naddress = \"127.0.0.1:9\"\ninterval = \"5m\"\nfailure_threshold = 1\n\n\
         [[probe]]\nname = \"calm\"\nkind = \"tcp\"\naddress = \"127.0.0.1:9\"\ninterval = \"5m\"\nfailure_threshold = 1\n",
    );
    // Every 5 minutes from the start of the month until "now", a fixed instant passed as
    // `--as-of` so the scenario is the same on any day the tests run; "burning" was down for two
    // hours on the 1st (more than the month's 0.1 % budget), "calm" for ten minutes (which, at
    // that rate, will not exhaust its budget before the month ends).
    let now: Timestamp = "2026-11-25T12:00:00Z".parse().expect("now");
    let month_start: i64 = "2026-11-01T00:00:00Z"
        .parse::<Timestamp>()
        .expect("month start")
        .as_second();
    let mut lines = String::new();
    let mut t = month_start;
    while t + 300 < now.as_second() {
        for (probe, down_for) in [("burning", 7_200), ("calm", 600)] {
            let down = t < month_start + down_for;
            let stamp = Timestamp::from_second(t).expect("ts");
            let (outcome, class) = if down {
                ("down", "\"timeout\"")
            } else {
                ("up", "null")
            };
            lines += &format!(
                "{{\"probe\":\"{probe}\",\"at\":\"{stamp}\",\"outcome\":\"{outcome}\",\"latency_ms\":1.0,\"error_class\":{class},\"detail\":\"\"}}\n"
            );
        }
        t += 300;
    }
    let file = config.dir().join("now.jsonl");
    std::fs::write(&file, lines).expect("write");
    let cli = |args: &[&str]| {
        upledger()
            .arg("--config")
            .arg(config.main_path())
            .args(args.iter().copied())
    };
    assert_eq!(cli(&["import"]).arg(&file).run().await.code, 0);
    let as_of = now.to_string();
    let json = cli(&["report", "--format", "json", "--as-of", &as_of])
        .run()
        .await
        .json();
    assert_eq!(json["month"], "2026-11", "the month containing --as-of");
    assert_eq!(json["in_progress"], true);
    assert_eq!(json["as_of"], as_of.as_str());
    let by_name = |name: &str| {
        json["probes"]
            .as_array()
            .expect("probes")
            .iter()
            .find(|p| p["name"] == name)
            .cloned()
            .expect("probe")
    };
    let burning = by_name("burning");
    let forecast = &burning["forecast"];
    assert!(
        (f(&forecast["projected_availability"]) - f(&burning["availability"])).abs() < 1e-3,
        "{burning:#}"
    );
    assert!(f(&burning["budget_remaining_seconds"]) < 0.0);
    assert_eq!(
        forecast["budget_exhausted_at"], json["as_of"],
        "already spent"
    );
    let calm = by_name("calm");
    assert!(
        calm["forecast"]["budget_exhausted_at"].is_null(),
        "{calm:#}"
    );
    assert!(f(&calm["budget_remaining_seconds"]) > 0.0);
}

/// The probes of [`recent_outage`]: `web` (every minute, confirmed after 3 failures) and
/// `retired-db`, disabled, with results from before it was disabled.
fn recent_outage_config() -> TestConfig {
    let config = TestConfig::new();
    config.main(
        r#"
[daemon]
ledger = "data/ledger"
socket = "data/upledger.sock"
timezone = "Europe/Berlin"

[[sla]]
name = "acme"
client = "ACME Corp"
probes = ["*"]
target = "99.9%"
"#,
    );
    config.probes(
        "p.toml",
        "[[probe]]\nname = \"web\"\nkind = \"http\"\nurl = \"http://127.0.0.1:9/\"\ninterval = \"60s\"\n\
         timeout = \"10s\"\nfailure_threshold = 3\n\n\
         [[probe]]\nname = \"retired-db\"\nkind = \"tcp\"\naddress = \"127.0.0.1:9\"\n\
         interval = \"60s\"\nenabled = false\n",
    );
    config
}

/// Imports results of both probes every minute from six hours ago until 20 s ago, failing
/// for the last three hours with a detail naming an address and an OS error; returns the
/// first failure and the month (in Berlin) holding it, which the outage overlaps on any date.
async fn recent_outage(config: &TestConfig) -> (Timestamp, String) {
    let now = Timestamp::now().as_second();
    let first_failure = now - 3 * 3_600;
    let mut lines = String::new();
    let mut t = now - 6 * 3_600;
    while t <= now - 20 {
        let stamp = Timestamp::from_second(t).expect("ts");
        for probe in ["web", "retired-db"] {
            lines += &if t >= first_failure {
                format!(
                    "{{\"probe\":\"{probe}\",\"at\":\"{stamp}\",\"outcome\":\"down\",\"latency_ms\":3.0,\"error_class\":\"connect\",\"detail\":\"connection refused (os error 111) to 127.0.0.1:9\"}}\n"
                )
            } else {
                format!(
                    "{{\"probe\":\"{probe}\",\"at\":\"{stamp}\",\"outcome\":\"up\",\"latency_ms\":3.0,\"error_class\":null,\"detail\":\"\"}}\n"
                )
            };
        }
        t += 60;
    }
    let file = config.dir().join("recent.jsonl");
    std::fs::write(&file, lines).expect("write");
    let imported = upledger()
        .arg("--config")
        .arg(config.main_path())
        .arg("import")
        .arg(&file)
        .run()
        .await;
    assert_eq!(imported.code, 0, "{}", imported.stderr);
    let start = Timestamp::from_second(first_failure).expect("ts");
    let berlin = jiff::tz::TimeZone::get("Europe/Berlin").expect("zone");
    let month = start
        .to_zoned_datetime(berlin)
        .strftime("%Y-%m")
        .to_string();
    (start, month)
}

/// Regression (issue 13): an outage still going on was listed as ended "now", so it looked
/// resolved; the Markdown a client reads showed RFC 3339 times with nanoseconds, the check's
/// address and OS error; a disabled probe showed in status, reports and incidents.
#[tokio::test(flavor = "multi_thread")]
async fn an_ongoing_outage_is_ongoing_and_a_disabled_probe_is_nowhere() {
    let config = recent_outage_config();
    let (start, month) = recent_outage(&config).await;
    let cli = |args: &[&str]| {
        upledger()
            .arg("--config")
            .arg(config.main_path())
            .args(args.iter().copied())
            .run()
    };

    let json = cli(&["incidents", "--month", &month, "--json"])
        .await
        .json();
    let list = json.as_array().expect("incidents");
    assert_eq!(list.len(), 1, "web's outage only: {json:#}");
    let outage = &list[0];
    assert_eq!(outage["probe"], "web");
    assert_eq!(outage["start"], start.to_string());
    assert!(outage["end"].is_null(), "no end while ongoing: {outage:#}");
    assert_eq!(outage["ongoing"], true);
    let so_far = f(&outage["duration_seconds"]);
    assert!(
        (3.0 * 3_600.0..4.0 * 3_600.0).contains(&so_far),
        "from the first failure until now: {so_far}"
    );

    let table = cli(&["incidents", "--month", &month]).await.stdout;
    let row = table
        .lines()
        .find(|l| l.starts_with("web "))
        .unwrap_or_else(|| panic!("no row for web:\n{table}"));
    assert!(row.contains("ongoing for 3h "), "{row}");
    assert_eq!(
        row.matches(&format!("{}-", start.strftime("%Y"))).count(),
        1,
        "a start and no end: {row}"
    );
    assert!(!table.contains("retired-db"), "{table}");

    let markdown = cli(&["report", "--month", &month, "--format", "markdown"])
        .await
        .stdout;
    let zone = start
        .to_zoned_datetime(jiff::tz::TimeZone::get("Europe/Berlin").expect("zone"))
        .strftime("%Z")
        .to_string();
    let started = start
        .to_zoned_datetime(jiff::tz::TimeZone::get("Europe/Berlin").expect("zone"))
        .strftime("%Y-%m-%d %H:%M %Z")
        .to_string();
    let line = format!("| web | {started} | — | ongoing for 3h ");
    assert!(markdown.contains(&line), "no {line:?}:\n{markdown}");
    assert!(markdown.contains(" | connect |"), "{markdown}");
    for hidden in [
        "127.0.0.1",
        "os error",
        "refused",
        "retired-db",
        "Z |",
        "Z ·",
    ] {
        assert!(
            !markdown.contains(hidden),
            "the report shows {hidden:?}:\n{markdown}"
        );
    }
    let report = cli(&["report", "--month", &month, "--format", "json"])
        .await
        .json();
    assert!(markdown.contains(&format!("CET ({})", "Europe/Berlin")) || markdown.contains(&zone));
    if report["in_progress"] == true {
        assert!(
            markdown.contains(&format!("figures as of {}", &started[..4])),
            "{markdown}"
        );
    }
    let names = crate::support::names(&report["probes"]);
    assert_eq!(names, ["web"]);
    assert_eq!(report["slas"][0]["probes"], serde_json::json!(["web"]));

    let status = cli(&["status", "--json"]).await.json();
    let names = crate::support::names(&status["probes"]);
    assert_eq!(names, ["web"]);
    assert_eq!(status["summary"]["total"], 1);
    let text = cli(&["status"]).await.stdout;
    assert!(!text.contains("retired-db"), "{text}");
}

/// Issue 13 item 2: `export` carried only results, so a ledger restored from it lost the
/// exclusions (and their revocations) and when each maintenance window was first seen, and
/// gave another report. The corrections are entered through the daemon's socket; the same
/// October must come out of the restored ledger.
#[tokio::test(flavor = "multi_thread")]
async fn a_ledger_restored_from_an_export_gives_the_same_report() {
    let original = config("UTC");
    load_month(&original).await;
    // The daemon notes the maintenance window as seen when it starts.
    let daemon = crate::support::daemon::Daemon::start(&original.main_path()).await;
    let sla = daemon
        .cli(&[
            "exclude",
            "--sla",
            "acme",
            "--from",
            "2026-10-05T10:00:00Z",
            "--to",
            "2026-10-05T10:05:00Z",
            "--reason",
            "outage A was announced to ACME in advance",
        ])
        .await;
    assert_eq!(sla.code, 0, "{}", sla.stderr);
    let mistake = daemon
        .cli(&[
            "exclude",
            "--probe",
            "web",
            "--from",
            "2026-10-25T23:50:00Z",
            "--to",
            "2026-10-26T00:10:00Z",
            "--reason",
            "wrongly blamed on the carrier",
        ])
        .await;
    assert_eq!(mistake.code, 0, "{}", mistake.stderr);
    let listed = daemon
        .cli(&["exclusions", "--month", "2026-10", "--json"])
        .await;
    assert_eq!(listed.code, 0, "{}", listed.stderr);
    let listed = listed.json();
    assert_eq!(listed.as_array().expect("array").len(), 3, "{listed:#}");
    let id = listed[2]["id"].as_str().expect("id").to_owned();
    assert_eq!(listed[2]["reason"], "wrongly blamed on the carrier");
    let revoked = daemon
        .cli(&[
            "exclude",
            "--revoke",
            &id,
            "--reason",
            "the carrier was fine",
        ])
        .await;
    assert_eq!(revoked.code, 0, "{}", revoked.stderr);
    let export = daemon.cli(&["export"]).await;
    assert_eq!(export.code, 0, "{}", export.stderr);
    assert_eq!(daemon.terminate().await, 0);

    let (code, before) = report_json(&original, &[]).await;
    assert_eq!(code, 0);
    // The corrections are applied: the SLA's own exclusion (outage A) comes out of the SLA's
    // figures only, the revoked one out of nothing, and the window was seen (late).
    let web = &before["probes"][0];
    assert_eq!(f(&web["downtime_seconds"]), 1_500.0, "{web:#}");
    assert_eq!(f(&web["excluded_seconds"]), 1_800.0, "{web:#}");
    assert_eq!(web["revoked_exclusions"][0]["id"], id.as_str(), "{web:#}");
    assert_eq!(
        web["revoked_exclusions"][0]["revocation_reason"],
        "the carrier was fine"
    );
    assert_eq!(web["maintenance"][0]["seen_late"], true, "{web:#}");
    let acme = &before["slas"][0];
    assert_eq!(f(&acme["downtime_seconds"]), 1_200.0, "{acme:#}");
    let period = 31 * 86_400;
    assert_eq!(
        f(&acme["eligible_seconds"]),
        (period - 3_600 - 3_540 - 1_800 - 300) as f64,
        "{acme:#}"
    );
    assert_eq!(acme["exclusions"].as_array().map(Vec::len), Some(2));

    // The export: results in the SPEC shape, then the corrections, told apart by `record`.
    let lines: Vec<serde_json::Value> = export
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    let records: Vec<&str> = lines.iter().filter_map(|l| l["record"].as_str()).collect();
    assert_eq!(
        records,
        [
            "exclusion",
            "exclusion",
            "exclusion",
            "revocation",
            "maintenance_seen"
        ]
    );
    assert!(lines[0].get("record").is_none() && lines[0]["probe"] == "web");

    let restored = config("UTC");
    let file = restored.dir().join("backup.jsonl");
    std::fs::write(&file, &export.stdout).expect("write");
    let cli = |args: &[&str]| {
        upledger()
            .arg("--config")
            .arg(restored.main_path())
            .args(args.iter().copied())
    };
    let imported = cli(&["import"]).arg(&file).run().await;
    assert_eq!(imported.code, 0, "{}", imported.stderr);
    assert!(
        imported.stderr.contains("and 5 corrections"),
        "{}",
        imported.stderr
    );
    let (code, mut after) = report_json(&restored, &[]).await;
    assert_eq!(code, 0);
    // The restored ledger lists its restore as an import (who, when); the rest is the same.
    let restore = after
        .as_object_mut()
        .and_then(|document| document.remove("imports"))
        .expect("the restore is listed as an import");
    let mut before = before;
    let original_import = before
        .as_object_mut()
        .and_then(|document| document.remove("imports"))
        .expect("the original was imported too");
    assert_eq!(
        restore[0]["results"], original_import[0]["results"],
        "every result restored: {restore:#}"
    );
    assert_eq!(after, before, "the restored ledger gives the same report");

    // Importing the corrections again is refused, like results.
    let corrections: String = export
        .stdout
        .lines()
        .filter(|l| l.contains("\"record\""))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&file, corrections).expect("write");
    let again = cli(&["import"]).arg(&file).run().await;
    assert_eq!(again.code, 2, "{}", again.stderr);
    assert!(
        again.stderr.contains("already in the ledger"),
        "{}",
        again.stderr
    );
}

/// Issue 13 item 2: an SLA name with a comma or a quote broke the CSV's columns (fields are
/// now quoted per RFC 4180), and `export --probe typo` printed nothing and exited 0.
#[tokio::test(flavor = "multi_thread")]
async fn csv_quotes_fields_and_unknown_names_exit_2_naming_them() {
    let config = config("UTC");
    let main = std::fs::read_to_string(config.main_path()).expect("main");
    config.main(&main.replace(
        "name = \"acme\"",
        "name = 'acme, \"gold\"'\nmaintenance = \"exclude\"",
    ));
    let file = config.dir().join("few.jsonl");
    std::fs::write(
        &file,
        "{\"probe\":\"web\",\"at\":\"2026-10-01T00:00:00Z\",\"outcome\":\"up\",\"latency_ms\":1.0,\"error_class\":null,\"detail\":\"\"}\n",
    )
    .expect("write");
    let cli = |args: &[&str]| {
        upledger()
            .arg("--config")
            .arg(config.main_path())
            .args(args.iter().copied())
    };
    let imported = cli(&["import"]).arg(&file).run().await;
    assert_eq!(imported.code, 0, "{}", imported.stderr);

    let csv = cli(&["report", "--month", "2026-10", "--format", "csv"])
        .run()
        .await;
    assert!(csv.code <= 1, "{}", csv.stderr);
    let lines: Vec<&str> = csv.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{}", csv.stdout);
    assert!(
        lines[2].starts_with("sla,\"acme, \"\"gold\"\"\",2026-10,"),
        "{}",
        lines[2]
    );
    let columns = lines[0].split(',').count();
    let unquoted = lines[2].replace("\"acme, \"\"gold\"\"\"", "x");
    assert_eq!(unquoted.split(',').count(), columns, "{}", lines[2]);

    for (args, name, hint) in [
        (
            &["export", "--probe", "wbe"][..],
            "probe is named \"wbe\"",
            "\"web\"",
        ),
        (&["history", "wbe"][..], "probe is named \"wbe\"", "\"web\""),
        (
            &["report", "--month", "2026-10", "--probe", "webb"][..],
            "probe is named \"webb\"",
            "\"web\"",
        ),
        (
            &["report", "--month", "2026-10", "--sla", "acme"][..],
            "SLA is named \"acme\"",
            "",
        ),
        (
            &[
                "exclude",
                "--probe",
                "wbe",
                "--from",
                "2026-10-02T00:00:00Z",
                "--to",
                "2026-10-02T01:00:00Z",
                "--reason",
                "x",
            ][..],
            "probe is named \"wbe\"",
            "\"web\"",
        ),
        (
            &["exclude", "--revoke", "0123456789ab", "--reason", "x"][..],
            "exclusion is named \"0123456789ab\"",
            "",
        ),
    ] {
        let output = cli(args).run().await;
        assert_eq!(output.code, 2, "{args:?}: {}", output.stderr);
        assert!(output.stdout.is_empty(), "{args:?}: {}", output.stdout);
        assert!(
            output.stderr.contains(&format!("no {name}")),
            "{args:?}: {}",
            output.stderr
        );
        assert!(
            output.stderr.contains(&format!("did you mean {hint}")) || hint.is_empty(),
            "{args:?}: {}",
            output.stderr
        );
    }
}
