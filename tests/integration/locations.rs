//! Locations and quorum end to end (SPEC §9): vector V19's three locations imported into a
//! coordinator as results with a `"location"` (one of them through `import --location`), then
//! `upledger report` compared exactly with the vector — the probe under its own quorum, and
//! SLAs reading the same locations under other quorums. `export` writes each result's
//! location, and its lines rebuild the same report on a fresh coordinator.
//!
//! No daemon runs: the probe points at a closed loopback port, and a coordinator checks no
//! located probe itself anyway.

use jiff::Timestamp;
use serde_json::Value;

use crate::support::{TestConfig, free_port};

const VECTORS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/vectors/sla.json"
);

/// Results every 5 minutes, each held for 5 minutes (`stale_after`): every run of the vector
/// starts and ends on a multiple of it, so each location's timeline is the vector's exactly.
const STEP_S: i64 = 300;
/// 2024-04-01T00:00:00Z, V19's month start.
const APRIL_1: i64 = 1_711_929_600;
/// 2024-05-01T00:00:00Z.
const MAY_1: i64 = APRIL_1 + 30 * 86_400;

/// V19's locations (renamed `a`, `b`, `c`: location names are lowercase) and each one's down
/// intervals in seconds.
fn v19_locations() -> Vec<(String, Vec<(i64, i64)>)> {
    let json = std::fs::read_to_string(VECTORS).expect("read sla.json");
    let cases: Vec<Value> = serde_json::from_str(&json).expect("parse sla.json");
    let v19 = cases
        .iter()
        .find(|c| c["id"] == "V19-quorum-2-of-3")
        .expect("V19");
    assert_eq!(v19["input"]["month"], "2024-04");
    let second = |v: &Value| {
        v.as_str()
            .expect("instant")
            .parse::<Timestamp>()
            .expect("instant")
            .as_second()
    };
    v19["input"]["locations"]
        .as_object()
        .expect("locations")
        .iter()
        .map(|(name, location)| {
            assert_eq!(location["baseline"], "up", "{name}");
            let down = location["intervals"]
                .as_array()
                .expect("intervals")
                .iter()
                .map(|i| {
                    assert_eq!(i["state"], "down");
                    (second(&i["start"]), second(&i["end"]))
                })
                .collect();
            (name.to_lowercase(), down)
        })
        .collect()
}

/// One location's results over the month and an hour after it; `location` written into each
/// line, or left out.
fn results(down: &[(i64, i64)], location: Option<&str>) -> String {
    let field = location.map_or(String::new(), |l| format!(",\"location\":\"{l}\""));
    let mut lines = String::new();
    let mut t = APRIL_1;
    while t < MAY_1 + 3_600 {
        let at = Timestamp::from_second(t).expect("ts");
        if down.iter().any(|(start, end)| (*start..*end).contains(&t)) {
            lines += &format!(
                "{{\"probe\":\"svc\",\"at\":\"{at}\",\"outcome\":\"down\",\"latency_ms\":3.0,\
                 \"error_class\":\"connect\",\"detail\":\"connection refused\"{field}}}\n"
            );
        } else {
            lines += &format!(
                "{{\"probe\":\"svc\",\"at\":\"{at}\",\"outcome\":\"up\",\"latency_ms\":12.5{field}}}\n"
            );
        }
        t += STEP_S;
    }
    lines
}

/// A coordinator with probe `svc` at locations a, b, c under `quorum`, SLA `vector` (V19's
/// terms) over it, and SLAs reading the same locations under other quorums.
fn coordinator(quorum: usize) -> TestConfig {
    let config = TestConfig::new();
    let tiers = "[ { below = \"99.9%\", credit = \"10%\" }, { below = \"99.0%\", credit = \"25%\" }, \
                 { below = \"95.0%\", credit = \"100%\" } ]";
    config.main(&format!(
        "[daemon]\nledger = \"data/ledger\"\nsocket = \"data/upledger.sock\"\n\
         timezone = \"UTC\"\nlocation = \"hq\"\n\n\
         [replication]\nnats = \"nats://127.0.0.1:{}\"\nrole = \"coordinator\"\n\n\
         [[sla]]\nname = \"vector\"\nprobes = [\"svc\"]\ntarget = \"99.9%\"\ncredits = {tiers}\n\n\
         [[sla]]\nname = \"any-one\"\nprobes = [\"svc\"]\ntarget = \"99.9%\"\ncredits = {tiers}\n\
         quorum = 1\n\n\
         [[sla]]\nname = \"all-three\"\nprobes = [\"svc\"]\ntarget = \"99.9%\"\n\
         credits = {tiers}\nquorum = 3\n\n\
         [[sla]]\nname = \"b-and-c\"\nprobes = [\"svc\"]\ntarget = \"99.9%\"\n\
         credits = {tiers}\nlocations = [\"b\", \"c\"]\nquorum = 1\n",
        free_port()
    ));
    config.probes(
        "svc.toml",
        &format!(
            "[[probe]]\nname = \"svc\"\nkind = \"tcp\"\naddress = \"127.0.0.1:{}\"\n\
             interval = \"{STEP_S}s\"\ntimeout = \"1s\"\nstale_after = \"{STEP_S}s\"\n\
             failure_threshold = 1\ntarget = \"99.9%\"\n\
             locations = [\"a\", \"b\", \"c\"]\nquorum = {quorum}\n",
            free_port()
        ),
    );
    config
}

/// Imports V19: locations a and b with `"location"` in every line, c through
/// `import --location c`.
async fn import_v19(config: &TestConfig) {
    for (location, down) in v19_locations() {
        let file = config.dir().join(format!("{location}.jsonl"));
        let imported = if location == "c" {
            std::fs::write(&file, results(&down, None)).expect("write");
            let path = file.display().to_string();
            config.cli(&["import", &path, "--location", "c"]).await
        } else {
            std::fs::write(&file, results(&down, Some(&location))).expect("write");
            config.cli(&["import", &file.display().to_string()]).await
        };
        assert_eq!(imported.code, 0, "{location}: {}", imported.stderr);
    }
}

async fn april(config: &TestConfig) -> Value {
    let output = config
        .cli(&["report", "--month", "2024-04", "--format", "json"])
        .await;
    assert!(output.code <= 1, "{}", output.stderr);
    output.json()
}

fn named<'a>(report: &'a Value, list: &str, name: &str) -> &'a Value {
    report[list]
        .as_array()
        .and_then(|entries| entries.iter().find(|e| e["name"] == name))
        .unwrap_or_else(|| panic!("no {name} in {list}: {report}"))
}

/// Checks an SLA's (or the probe's) figures: downtime, exact availability, budget left and
/// credit (SLAs only).
fn assert_figures(entry: &Value, downtime: f64, exact: &str, remaining: f64, what: &str) {
    assert_eq!(entry["downtime_seconds"], downtime, "{what}: {entry}");
    assert_eq!(entry["availability_exact"], exact, "{what}: {entry}");
    assert_eq!(
        entry["budget_remaining_seconds"], remaining,
        "{what}: {entry}"
    );
    assert_eq!(entry["eligible_seconds"], 2_592_000.0, "{what}: {entry}");
}

#[tokio::test(flavor = "multi_thread")]
async fn v19_imported_at_three_locations_reports_the_quorum_exactly() {
    let config = coordinator(2);
    import_v19(&config).await;
    let report = april(&config).await;

    // The probe under its own quorum, 2 of 3: down only while A and B both are.
    let svc = named(&report, "probes", "svc");
    assert_figures(svc, 600.0, "4319/4320", 1_992.0, "svc");
    assert_eq!(svc["availability"], 99.976852, "{svc}");
    assert_eq!(svc["monitored_seconds"], 2_592_000.0, "{svc}");
    assert_eq!(svc["unknown_seconds"], 0.0, "{svc}");
    assert_eq!(svc["quorum"], 2, "{svc}");
    assert_eq!(svc["incidents"], 1, "{svc}");
    // Each location's own month: A and B half an hour down each, C never.
    let locations: Vec<(String, f64, String)> = svc["locations"]
        .as_array()
        .expect("locations")
        .iter()
        .map(|l| {
            (
                l["location"].as_str().expect("location").to_owned(),
                l["downtime_s"].as_f64().expect("downtime_s"),
                l["availability_exact"].as_str().expect("exact").to_owned(),
            )
        })
        .collect();
    assert_eq!(
        locations,
        [
            ("a".to_owned(), 1_800.0, "1439/1440".to_owned()),
            ("b".to_owned(), 1_800.0, "1439/1440".to_owned()),
            ("c".to_owned(), 0.0, "1".to_owned()),
        ]
    );
    assert_eq!(svc["locations"][0]["availability"], 99.930556, "{svc}");
    // Results from three places: every one counted.
    assert_eq!(svc["checks"], 3 * 8_640, "{svc}");

    // V19 itself, through the SLA with the probe's own reading.
    let vector = named(&report, "slas", "vector");
    assert_figures(vector, 600.0, "4319/4320", 1_992.0, "vector");
    assert_eq!(vector["availability"], 99.976852, "{vector}");
    assert_eq!(vector["credit_percent"], 0.0, "{vector}");
    // Any one location down (1 of 3): the union of A's and B's outages.
    let any_one = named(&report, "slas", "any-one");
    assert_figures(any_one, 3_000.0, "863/864", -408.0, "any-one");
    assert_eq!(any_one["credit_percent"], 10.0, "{any_one}");
    // Every location down (3 of 3): C never fails.
    let all_three = named(&report, "slas", "all-three");
    assert_figures(all_three, 0.0, "1", 2_592.0, "all-three");
    assert_eq!(all_three["credit_percent"], 0.0, "{all_three}");
    // Locations of the SLA's own: B or C down, 1 of 2, is B's outage alone.
    let b_and_c = named(&report, "slas", "b-and-c");
    assert_figures(b_and_c, 1_800.0, "1439/1440", 792.0, "b-and-c");

    // The imports that brought the probe's results are listed under its name.
    let imports = report["imports"].as_array().expect("imports");
    assert_eq!(imports.len(), 3, "{report}");
    assert!(
        imports
            .iter()
            .all(|i| i["probes"] == serde_json::json!(["svc"]))
    );

    // The table shows each location's own figures under the quorum's.
    let table = config
        .cli(&["report", "--month", "2024-04", "--format", "table"])
        .await;
    let rows: Vec<Vec<&str>> = table
        .stdout
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    for (name, availability, downtime) in [
        ("svc", "99.9769%", "10m"),
        ("svc@a", "99.9306%", "30m"),
        ("svc@c", "100.0000%", "0s"),
    ] {
        assert!(
            rows.iter().any(|r| r.len() >= 3
                && r[0] == name
                && r.contains(&availability)
                && r.contains(&downtime)),
            "no row {name} {availability} {downtime}:\n{}",
            table.stdout
        );
    }
    // `status` without a daemon: April's results are long stale, every location unknown.
    let status = config.cli(&["status", "--json"]).await;
    let status: Value = serde_json::from_str(&status.stdout).expect("status JSON");
    let svc_status = &status["probes"][0];
    assert_eq!(svc_status["name"], "svc");
    assert_eq!(svc_status["state"], "unknown", "{svc_status}");
    assert_eq!(svc_status["locations"][2]["location"], "c", "{svc_status}");
    assert_eq!(
        svc_status["locations"][2]["state"], "unknown",
        "{svc_status}"
    );

    // The incident is the quorum's: from B's failure at 10:20 to A's recovery at 10:30.
    let incidents = config
        .cli(&["incidents", "--month", "2024-04", "--json"])
        .await;
    assert_eq!(incidents.code, 0, "{}", incidents.stderr);
    let incidents = incidents.json();
    let list = incidents.as_array().expect("incidents");
    assert_eq!(list.len(), 1, "{incidents}");
    assert_eq!(list[0]["probe"], "svc");
    assert_eq!(list[0]["start"], "2024-04-05T10:20:00Z");
    assert_eq!(list[0]["end"], "2024-04-05T10:30:00Z");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_probe_quorum_decides_its_own_figures_one_and_three_of_three() {
    for (quorum, downtime, exact, remaining) in
        [(1, 3_000.0, "863/864", -408.0), (3, 0.0, "1", 2_592.0)]
    {
        let config = coordinator(quorum);
        import_v19(&config).await;
        let report = april(&config).await;
        let what = format!("quorum {quorum}");
        let svc = named(&report, "probes", "svc");
        assert_figures(svc, downtime, exact, remaining, &what);
        assert_eq!(svc["quorum"], quorum, "{what}");
        let vector = named(&report, "slas", "vector");
        assert_figures(vector, downtime, exact, remaining, &what);
        let credit = if quorum == 1 { 10.0 } else { 0.0 };
        assert_eq!(vector["credit_percent"], credit, "{what}: {vector}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn export_names_each_location_and_rebuilds_the_same_report() {
    let config = coordinator(2);
    import_v19(&config).await;
    let exported = config.cli(&["export", "--probe", "svc"]).await;
    assert_eq!(exported.code, 0, "{}", exported.stderr);
    let mut per_location = std::collections::BTreeMap::<String, usize>::new();
    for line in exported.stdout.lines() {
        let value: Value = serde_json::from_str(line).expect("an export line is JSON");
        if value.get("record").is_some() {
            continue;
        }
        assert_eq!(value["probe"], "svc", "{line}");
        let location = value["location"]
            .as_str()
            .unwrap_or_else(|| panic!("{line}"));
        *per_location.entry(location.to_owned()).or_default() += 1;
    }
    let per_step = ((MAY_1 + 3_600 - APRIL_1) / STEP_S) as usize;
    assert_eq!(
        per_location.into_iter().collect::<Vec<_>>(),
        [
            ("a".to_owned(), per_step),
            ("b".to_owned(), per_step),
            ("c".to_owned(), per_step)
        ]
    );

    let restored = coordinator(2);
    let file = restored.dir().join("export.jsonl");
    std::fs::write(&file, &exported.stdout).expect("write");
    let imported = restored.cli(&["import", &file.display().to_string()]).await;
    assert_eq!(imported.code, 0, "{}", imported.stderr);
    let (before, after) = (april(&config).await, april(&restored).await);
    for list in ["probes", "slas"] {
        assert_eq!(before[list], after[list], "{list}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_import_refuses_a_location_the_probe_does_not_list_naming_the_line() {
    let config = coordinator(2);
    let down = [(APRIL_1 + 600, APRIL_1 + 900)];
    let mut text = results(&down, Some("a"));
    text.truncate(text.lines().take(3).map(|l| l.len() + 1).sum());
    text += "{\"probe\":\"svc\",\"at\":\"2024-04-01T00:15:00Z\",\"outcome\":\"up\",\
             \"latency_ms\":1.0,\"location\":\"d\"}\n";
    let file = config.dir().join("bad.jsonl");
    std::fs::write(&file, &text).expect("write");
    let refused = config.cli(&["import", &file.display().to_string()]).await;
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("line 4")
            && refused
                .stderr
                .contains("location \"d\" is not one of probe \"svc\"'s locations (a, b, c)"),
        "{}",
        refused.stderr
    );
    // A located probe's result from nowhere is refused too, on a coordinator.
    std::fs::write(&file, results(&down, None)).expect("write");
    let nowhere = config.cli(&["import", &file.display().to_string()]).await;
    assert_eq!(nowhere.code, 2, "{}", nowhere.stderr);
    assert!(
        nowhere.stderr.contains("line 1") && nowhere.stderr.contains("needs a \"location\""),
        "{}",
        nowhere.stderr
    );
    // Nothing was written by either.
    let exported = config.cli(&["export"]).await;
    assert_eq!(exported.code, 0, "{}", exported.stderr);
    assert!(
        !exported.stdout.contains("\"probe\""),
        "{}",
        exported.stdout
    );
}

/// A coordinator's listener shows a located probe with its quorum and each location's state
/// (none has reported here: every one unknown, and so the quorum), beside a probe it checks
/// itself, which has neither.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_coordinator_serves_each_locations_state() {
    let db = crate::support::tcp::pong().await;
    let port = free_port();
    let config = coordinator(2);
    let main = std::fs::read_to_string(config.main_path()).expect("main");
    config.main(&main.replace(
        "location = \"hq\"\n",
        &format!("location = \"hq\"\nlisten = \"127.0.0.1:{port}\"\n"),
    ));
    config.probes(
        "db.toml",
        &format!(
            "[[probe]]\nname = \"db\"\nkind = \"tcp\"\naddress = \"{}\"\ninterval = \"500ms\"\n\
             timeout = \"400ms\"\n",
            db.addr
        ),
    );
    let daemon = crate::support::daemon::Daemon::start(&config.main_path()).await;
    let base = format!("http://127.0.0.1:{port}");
    let get = |path: &str| {
        let url = format!("{base}{path}");
        async move {
            let response = reqwest::get(&url).await.expect("the listener answers");
            assert_eq!(response.status().as_u16(), 200, "{url}");
            response.text().await.expect("a body")
        }
    };
    // Wait until the probe checked here is up, so the status is the daemon's.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let status = loop {
        let status: Value = serde_json::from_str(&get("/api/v1/status").await).expect("JSON");
        let db_up = status["probes"]
            .as_array()
            .is_some_and(|p| p.iter().any(|p| p["name"] == "db" && p["state"] == "up"));
        if db_up {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "db never up: {status}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    };
    let probes = status["probes"].as_array().expect("probes");
    let svc = probes.iter().find(|p| p["name"] == "svc").expect("svc");
    assert_eq!(svc["state"], "unknown", "{svc}");
    assert_eq!(svc["quorum"], 2, "{svc}");
    assert_eq!(
        svc["locations"],
        serde_json::json!([
            { "location": "a", "state": "unknown", "since": null },
            { "location": "b", "state": "unknown", "since": null },
            { "location": "c", "state": "unknown", "since": null },
        ]),
        "{svc}"
    );
    let db_status = probes.iter().find(|p| p["name"] == "db").expect("db");
    assert!(db_status.get("locations").is_none(), "{db_status}");
    assert!(db_status.get("quorum").is_none(), "{db_status}");

    let metrics = get("/metrics").await;
    for line in [
        "upledger_probe_quorum{probe=\"svc\"} 2\n",
        "upledger_probe_location_up{probe=\"svc\",location=\"a\"} 0\n",
        "upledger_probe_location_state{probe=\"svc\",location=\"c\",state=\"unknown\"} 1\n",
        "upledger_probe_up{probe=\"svc\"} 0\n",
    ] {
        assert!(
            metrics.contains(line),
            "/metrics lacks {line:?}:\n{metrics}"
        );
    }
    assert!(!metrics.contains("probe=\"db\",location="), "{metrics}");
    let page = get("/").await;
    assert!(
        page.contains("2 of 3 locations decide: a <span class=\"pill unknown\">unknown</span>"),
        "{page}"
    );

    // Imported through the daemon (`--location` goes as each line's location), V19 gives the
    // daemon's report the same figures.
    import_v19(&config).await;
    let report = april(&config).await;
    let svc = named(&report, "probes", "svc");
    assert_figures(svc, 600.0, "4319/4320", 1_992.0, "svc through the daemon");
    assert_eq!(svc["locations"][2]["location"], "c", "{svc}");
    assert_eq!(svc["locations"][2]["downtime_s"], 0.0, "{svc}");
    assert!(
        daemon.log().contains("import requested"),
        "the imports did not go through the daemon:\n{}",
        daemon.log()
    );
    daemon.terminate().await;
}
