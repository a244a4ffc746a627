//! Month close delivery (SPEC §10) end to end: daemons started under libfaketime a few seconds
//! before a month ends (an absolute start time, which also overrides the offset CI's faketime
//! passes give this process) send one `report` per SLA to a real webhook receiver once the
//! month closes — also when killed right at the close and started again — and none again after.

use std::{
    collections::{BTreeMap, BTreeSet},
    net::SocketAddr,
    path::Path,
    time::{Duration, Instant},
};

use crate::support::{
    TestConfig, daemon::Daemon, keygen, public, switch::Target, webhook::Receiver,
};

const LIBFAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";

/// Environment that starts a daemon's wall clock at `at` (UTC, `YYYY-MM-DD HH:MM:SS`), running
/// from there at the real pace; tokio's timers keep the real monotonic clock.
fn clock_at(at: &str) -> Vec<(&'static str, String)> {
    vec![
        ("LD_PRELOAD", LIBFAKETIME.to_owned()),
        ("FAKETIME", format!("@{at}")),
        ("FAKETIME_DONT_FAKE_MONOTONIC", "1".to_owned()),
        // Not the shared clock of an outer `faketime` (CI's offset passes): this one starts
        // at its own instant.
        ("FAKETIME_DISABLE_SHM", "1".to_owned()),
        ("TZ", "UTC".to_owned()),
    ]
}

/// `ssh-keygen -Y verify` of `report` (with `report.sig` beside it) as `vendor`; its exit code.
fn ssh_keygen_verify(allowed: &Path, report: &Path) -> i32 {
    let input = std::fs::File::open(report).expect("open the report");
    let mut signature = report.as_os_str().to_owned();
    signature.push(".sig");
    std::process::Command::new("ssh-keygen")
        .args(["-Y", "verify", "-f"])
        .arg(allowed)
        .args(["-I", "vendor", "-n", "upledger-report", "-s"])
        .arg(signature)
        .stdin(input)
        .output()
        .unwrap_or_else(|e| panic!("cannot run ssh-keygen ({e}): this test needs openssh-client"))
        .status
        .code()
        .unwrap_or(-1)
}

/// Whether libfaketime is there (Debian package faketime; .ci/run installs it); says so if not.
fn have_faketime() -> bool {
    let there = Path::new(LIBFAKETIME).exists();
    if !there {
        eprintln!("skipped: {LIBFAKETIME} is missing (Debian package faketime)");
    }
    there
}

async fn start_at(config: &TestConfig, at: &str) -> Daemon {
    let env = clock_at(at);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    Daemon::start_with(
        &config.main_path(),
        &env,
        &["FAKETIME_TIMESTAMP_FILE", "FAKETIME_SHARED"],
    )
    .await
}

/// Two SLAs over one probe each (`alpha` over `api`, `beta` over `db`), both reported to the
/// webhook `ops`; margins of two seconds, so a month closes seconds after its end.
fn config(api: SocketAddr, db: SocketAddr, receiver: &Receiver, key: Option<&Path>) -> TestConfig {
    let config = TestConfig::new();
    let evidence = key.map_or_else(String::new, |key| {
        format!(
            "[evidence]\nsigning_key = \"{}\"\nhour = \"2s\"\n",
            key.display()
        )
    });
    config.main(&format!(
        r#"
[daemon]
ledger = "data/ledger"
socket = "data/upledger.sock"

{evidence}
[[channel]]
name = "ops"
kind = "webhook"
url = "{url}"
events = ["down", "up"]

[[sla]]
name = "alpha"
client = "ACME Corp"
probes = ["api"]
target = "99.9%"
report_to = ["ops"]

[[sla]]
name = "beta"
probes = ["db"]
target = "99.95%"
monthly_fee = 100.0
currency = "EUR"
credits = [ {{ below = "99.95%", credit = "10%" }} ]
report_to = ["ops"]
"#,
        url = receiver.url()
    ));
    let probe = |name: &str, addr: SocketAddr| {
        format!(
            "[[probe]]\nname = \"{name}\"\nkind = \"tcp\"\naddress = \"{addr}\"\ninterval = \"500ms\"\n\
             timeout = \"400ms\"\nfailure_threshold = 2\nsuccess_threshold = 1\nstale_after = \"1s\"\n"
        )
    };
    config.probes("p.toml", &(probe("api", api) + &probe("db", db)));
    config
}

/// The `report` deliveries so far, by SLA and month (`alpha 2027-01`): each delivery's id, in
/// arrival order.
fn reports(receiver: &Receiver) -> BTreeMap<String, Vec<String>> {
    let mut by_sla: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for received in receiver.received() {
        if received.header("x-upledger-event") != "report" {
            continue;
        }
        let body = received.json();
        let key = format!(
            "{} {}",
            body["sla"].as_str().unwrap_or("?"),
            body["month"].as_str().unwrap_or("?")
        );
        by_sla
            .entry(key)
            .or_default()
            .push(received.header("x-upledger-delivery").to_owned());
    }
    by_sla
}

/// Distinct report ids per SLA and month: at-least-once delivery may repeat an id, never add
/// one.
fn distinct(receiver: &Receiver) -> BTreeMap<String, BTreeSet<String>> {
    reports(receiver)
        .into_iter()
        .map(|(sla, ids)| (sla, ids.into_iter().collect()))
        .collect()
}

/// Waits until both SLAs' reports of each of `months` have arrived.
async fn wait_for_reports(receiver: &Receiver, daemon: &Daemon, months: &[&str]) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while distinct(receiver).len() < 2 * months.len() {
        assert!(
            Instant::now() < deadline,
            "no report for each SLA; received {:?}\nlog:\n{}",
            reports(receiver),
            daemon.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Exactly one report id per SLA and month, for `months` and no other.
fn assert_once_each(receiver: &Receiver, months: &[&str]) {
    let ids = distinct(receiver);
    let expected: Vec<String> = months
        .iter()
        .flat_map(|month| [format!("alpha {month}"), format!("beta {month}")])
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    assert_eq!(ids.keys().cloned().collect::<Vec<_>>(), expected, "{ids:?}");
    for (report, ids) in &ids {
        assert_eq!(ids.len(), 1, "one report of {report}: {ids:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closing_month_sends_one_signed_report_per_sla_and_none_again_after_a_restart() {
    if !have_faketime() {
        return;
    }
    let receiver = Receiver::start().await;
    let api = Target::start().await;
    let mut db = Target::start().await;
    let keys = tempfile::tempdir().expect("a key folder");
    let key = keygen(keys.path(), "upledger", "ops@example.com").await;
    let config = config(api.addr, db.addr, &receiver, Some(&key));
    let allowed = keys.path().join("allowed_signers");
    let public_key = std::fs::read_to_string(public(&key)).expect("the public key");
    std::fs::write(
        &allowed,
        format!("vendor namespaces=\"upledger-report\" {public_key}"),
    )
    .expect("allowed_signers");

    let daemon = start_at(&config, "2027-01-31 23:59:50").await;
    // `db` is down for about four seconds before the month ends: `beta` misses its target.
    tokio::time::sleep(Duration::from_secs(2)).await;
    db.down();
    tokio::time::sleep(Duration::from_secs(4)).await;
    db.up().await;
    assert!(
        reports(&receiver).is_empty(),
        "nothing is reported before the month closes"
    );
    wait_for_reports(&receiver, &daemon, &["2027-01"]).await;
    assert_once_each(&receiver, &["2027-01"]);

    let bodies: BTreeMap<String, serde_json::Value> = receiver
        .received()
        .iter()
        .filter(|r| r.header("x-upledger-event") == "report")
        .map(|r| (r.json()["sla"].as_str().unwrap_or("?").to_owned(), r.json()))
        .collect();
    for (sla, body) in &bodies {
        assert_eq!(body["event"], "report");
        assert_eq!(body["month"], "2027-01");
        assert!(body["id"].as_str().is_some_and(|id| !id.is_empty()));
        assert!(
            body["at"]
                .as_str()
                .is_some_and(|at| at.starts_with("2027-02-01T00:00:"))
        );
        let report = &body["report"];
        assert_eq!(report["month"], "2027-01");
        assert_eq!(report["in_progress"], false);
        assert_eq!(report["slas"][0]["name"], sla.as_str());
        assert!(
            report["slas"][0]["eligible_seconds"].as_f64() > Some(5.0),
            "{report}"
        );
        // The figures are the month's final ones: what `report` says, from the stored month.
        let shown = daemon
            .cli(&[
                "report", "--month", "2027-01", "--sla", sla, "--format", "json",
            ])
            .await
            .json();
        assert_eq!(report["slas"], shown["slas"], "{sla}");
        assert_eq!(report["probes"], shown["probes"], "{sla}");
        let markdown = body["markdown"].as_str().expect("the Markdown summary");
        assert!(
            markdown.contains(&format!("Agreement **{sla}**")),
            "{markdown}"
        );
        assert!(markdown.contains("final figures"), "{markdown}");
        // The signed report: the document as signed, over the same figures, and its signature.
        let signed = &body["signed_report"];
        let json: serde_json::Value =
            serde_json::from_str(signed["json"].as_str().expect("the signed JSON")).expect("JSON");
        assert_eq!(json["month"], "2027-01");
        assert_eq!(json["evidence"]["sla"], sla.as_str());
        for figure in [
            "availability_exact",
            "downtime_seconds",
            "met",
            "credit_percent",
        ] {
            assert_eq!(
                json["slas"][0][figure], report["slas"][0][figure],
                "{sla} {figure}"
            );
        }
        // What the client does with it: OpenSSH checks the bytes as sent.
        let signature = signed["signature"].as_str().expect("a signature");
        let report_file = keys.path().join(format!("{sla}.json"));
        std::fs::write(&report_file, signed["json"].as_str().unwrap_or_default()).expect("write");
        std::fs::write(keys.path().join(format!("{sla}.json.sig")), signature).expect("write");
        assert_eq!(ssh_keygen_verify(&allowed, &report_file), 0, "{sla}");
    }
    let alpha = &bodies["alpha"];
    assert_eq!(alpha["report"]["slas"][0]["met"], true);
    assert_eq!(
        alpha["summary"],
        "alpha 2027-01: 100% (target 99.9%, met), credit none"
    );
    assert!(
        alpha["markdown"]
            .as_str()
            .is_some_and(|m| m.contains("ACME Corp"))
    );
    let beta = &bodies["beta"];
    assert_eq!(beta["report"]["slas"][0]["met"], false, "{beta}");
    assert_eq!(beta["report"]["slas"][0]["credit_percent"], 10.0);
    let summary = beta["summary"].as_str().unwrap_or_default();
    assert!(
        summary.starts_with("beta 2027-01: ")
            && summary.ends_with("% (target 99.95%, MISSED), credit 10% = 10.00 EUR"),
        "{summary}"
    );

    // None again while it keeps running, nor after a restart in the next month.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_once_each(&receiver, &["2027-01"]);
    assert_eq!(daemon.terminate().await, 0);
    let daemon = start_at(&config, "2027-02-01 00:02:00").await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_once_each(&receiver, &["2027-01"]);
    assert_eq!(
        reports(&receiver).values().map(Vec::len).sum::<usize>(),
        2,
        "nothing redelivered: {:?}",
        reports(&receiver)
    );
    assert_eq!(daemon.terminate().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_killed_at_the_close_reports_each_sla_once_after_it_restarts() {
    if !have_faketime() {
        return;
    }
    let receiver = Receiver::start().await;
    let api = Target::start().await;
    let db = Target::start().await;
    let config = config(api.addr, db.addr, &receiver, None);

    // March ends 8 s after the start and its reports are due 3.4 s later (margin 2 s, timeout
    // and grace 1.4 s): killed at that instant, before they are queued, the daemon is stopped
    // when March closes. The next run reports it.
    let started = Instant::now();
    let daemon = start_at(&config, "2027-03-31 23:59:52").await;
    let close = started + Duration::from_millis(11_400);
    tokio::time::sleep(close.saturating_duration_since(Instant::now())).await;
    daemon.kill9().await;
    let before = reports(&receiver);
    let daemon = start_at(&config, "2027-04-01 00:01:00").await;
    wait_for_reports(&receiver, &daemon, &["2027-03"]).await;
    assert_once_each(&receiver, &["2027-03"]);
    for (report, ids) in &before {
        assert!(
            distinct(&receiver)[report].is_superset(&ids.iter().cloned().collect()),
            "{report}: the id delivered before the kill is the one id"
        );
    }
    assert_eq!(daemon.terminate().await, 0);

    // April: killed the moment both its reports are queued (delivered or not yet): the next
    // run delivers what is pending under the same ids and raises nothing new.
    let daemon = start_at(&config, "2027-04-30 23:59:52").await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while daemon.log().matches("month closed: report queued").count() < 2 {
        assert!(Instant::now() < deadline, "not queued:\n{}", daemon.log());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    daemon.kill9().await;
    let daemon = start_at(&config, "2027-05-01 00:01:00").await;
    wait_for_reports(&receiver, &daemon, &["2027-03", "2027-04"]).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_once_each(&receiver, &["2027-03", "2027-04"]);
    assert!(!daemon.log().contains("report queued"), "{}", daemon.log());
    assert_eq!(daemon.terminate().await, 0);

    // And none again after a further restart.
    let daemon = start_at(&config, "2027-05-01 00:02:00").await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_once_each(&receiver, &["2027-03", "2027-04"]);
    let log = daemon.log();
    assert!(!log.contains("report queued"), "{log}");
    assert_eq!(daemon.terminate().await, 0);
}
