//! The read-only HTTP listener of a running daemon: every route, the metrics checked by
//! `promtool`, badges parsed as XML, the status page rendered by headless Chromium — and a
//! hidden probe and a URL with a token nowhere in what it serves.

use std::{path::Path, process::Stdio, time::Duration};

use tokio::io::AsyncWriteExt;

use crate::support::{TestConfig, daemon::Daemon, http, tcp, tls};

const TOKEN: &str = "s3cr3t-t0ken-4711";

/// A free loopback port (bound, read, released).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

async fn get(url: &str) -> (u16, String, String) {
    let response = reqwest::get(url).await.expect("the listener answers");
    let status = response.status().as_u16();
    let kind = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    (status, kind, response.text().await.expect("a body"))
}

fn assert_private_nowhere(what: &str, body: &str) {
    assert!(!body.contains(TOKEN), "{what} shows the token:\n{body}");
    assert!(
        !body.contains("secret-backend"),
        "{what} shows the hidden probe:\n{body}"
    );
    assert!(
        !body.contains("127.0.0.1"),
        "{what} shows an address:\n{body}"
    );
    assert!(
        !body.contains("refused"),
        "{what} shows an error detail:\n{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_serves_public_figures_only() {
    let web = http::start(http::HttpOptions::plain()).await;
    let db = tcp::pong().await;
    let port = free_port();
    let config = TestConfig::new();
    config.main(&format!(
        r#"
[daemon]
ledger = "data/ledger"
socket = "data/upledger.sock"
listen = "127.0.0.1:{port}"

[[maintenance]]
probes = ["web"]
start = "{start}"
duration = "2h"
reason = "database upgrade"
"#,
        start = jiff::Timestamp::now()
            .checked_add(jiff::SignedDuration::from_hours(72))
            .expect("time")
            .round(jiff::Unit::Second)
            .expect("round"),
    ));
    config.probes(
        "p.toml",
        &format!(
            r#"
[[probe]]
name = "web"
kind = "http"
url = "{url}"
interval = "500ms"
timeout = "400ms"

[[probe]]
name = "db"
kind = "tcp"
address = "{db}"
interval = "500ms"
timeout = "400ms"

[[probe]]
name = "cache"
kind = "tcp"
address = "{refused}"
interval = "500ms"
timeout = "400ms"
failure_threshold = 1

[[probe]]
name = "secret-backend"
kind = "tcp"
address = "{refused}"
interval = "500ms"
timeout = "400ms"
public = false
"#,
            url = web.url(&format!("/ok?token={TOKEN}")),
            db = db.addr,
            refused = tcp::refused_addr(),
        ),
    );
    let daemon = Daemon::start(&config.main_path()).await;
    let base = format!("http://127.0.0.1:{port}");
    // The first view waits for the figures, computed from 2 s after start; wait until the
    // badge has a number.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (_, _, badge) = get(&format!("{base}/badge/web.svg")).await;
        if badge.contains('%') {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no month figures: {badge}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    let (code, kind, page) = get(&format!("{base}/")).await;
    assert_eq!(code, 200);
    assert!(kind.starts_with("text/html"), "{kind}");
    for shown in [
        "web",
        "db",
        "cache",
        "database upgrade",
        "Incidents this month",
        "prefers-color-scheme",
    ] {
        assert!(page.contains(shown), "the page lacks {shown:?}");
    }
    assert!(!page.contains("<script"), "no JavaScript");
    assert!(
        !page.contains("http://") && !page.contains("https://"),
        "no external assets"
    );
    assert_private_nowhere("the page", &page);

    let (code, _, status) = get(&format!("{base}/api/v1/status")).await;
    assert_eq!(code, 200);
    assert_private_nowhere("status", &status);
    let status: serde_json::Value = serde_json::from_str(&status).expect("json");
    let names = crate::support::names(&status["probes"]);
    assert_eq!(names, ["web", "db", "cache"]);

    let (code, _, report) = get(&format!("{base}/api/v1/report")).await;
    assert_eq!(code, 200);
    assert_private_nowhere("report", &report);
    let report: serde_json::Value = serde_json::from_str(&report).expect("json");
    assert_eq!(report["probes"].as_array().map(Vec::len), Some(3));
    assert_eq!(report["in_progress"], true);
    let (code, _, _) = get(&format!("{base}/api/v1/report?month=2026-13")).await;
    assert_eq!(code, 400);
    let (code, _, old) = get(&format!("{base}/api/v1/report?month=2025-01")).await;
    assert_eq!(code, 200, "{old}");

    let (code, _, history) = get(&format!("{base}/api/v1/probes/cache/history?since=1h")).await;
    assert_eq!(code, 200);
    assert_private_nowhere("history", &history);
    let history: serde_json::Value = serde_json::from_str(&history).expect("json");
    assert!(history["results"].as_array().is_some_and(|r| !r.is_empty()));
    let (code, _, _) = get(&format!("{base}/api/v1/probes/secret-backend/history")).await;
    assert_eq!(code, 404);

    let (code, _, incidents) = get(&format!("{base}/api/v1/incidents")).await;
    assert_eq!(code, 200);
    assert_private_nowhere("incidents", &incidents);
    let incidents: serde_json::Value = serde_json::from_str(&incidents).expect("json");
    assert!(
        incidents
            .as_array()
            .is_some_and(|all| all.iter().any(|i| i["probe"] == "cache")),
        "{incidents}"
    );

    for path in [
        "/badge/web.svg",
        "/badge/web/state.svg",
        "/badge/cache.svg",
        "/badge/cache/state.svg",
    ] {
        let (code, kind, svg) = get(&format!("{base}{path}")).await;
        assert_eq!(code, 200, "{path}");
        assert_eq!(kind, "image/svg+xml");
        let document =
            roxmltree::Document::parse(&svg).unwrap_or_else(|e| panic!("{path}: {e}\n{svg}"));
        assert_eq!(document.root_element().tag_name().name(), "svg");
        assert!(svg.contains("<title>"));
    }
    let (_, _, state) = get(&format!("{base}/badge/cache/state.svg")).await;
    assert!(state.contains("down"), "{state}");
    let (code, _, _) = get(&format!("{base}/badge/secret-backend.svg")).await;
    assert_eq!(code, 404);

    let (code, kind, metrics) = get(&format!("{base}/metrics")).await;
    assert_eq!(code, 200);
    assert!(kind.starts_with("text/plain"), "{kind}");
    assert_private_nowhere("metrics", &metrics);
    for series in [
        "upledger_probe_up{probe=\"web\"} 1",
        "upledger_probe_up{probe=\"cache\"} 0",
        "upledger_probe_state{probe=\"cache\",state=\"down\"} 1",
        "upledger_last_check_duration_seconds{probe=\"db\"}",
        "upledger_check_duration_seconds_bucket{probe=\"db\",le=\"+Inf\"}",
        "upledger_check_duration_seconds_count{probe=\"db\"}",
        "upledger_checks_total{probe=\"web\",outcome=\"up\"}",
        "upledger_checks_total{probe=\"cache\",outcome=\"down\"}",
        "upledger_month_availability_ratio{probe=\"web\"} 1",
        "upledger_budget_remaining_seconds{probe=\"cache\"}",
    ] {
        assert!(metrics.contains(series), "no {series}:\n{metrics}");
    }
    promtool_accepts(&metrics).await;
    // Counters without asking for a new month computation: the same series.
    let (code, _, counters) = get(&format!("{base}/metrics?refresh=false")).await;
    assert_eq!(code, 200);
    assert!(
        counters.contains("upledger_checks_total{probe=\"web\",outcome=\"up\"}"),
        "{counters}"
    );
    assert!(counters.contains("upledger_month_availability_ratio{probe=\"web\"} 1"));
    let (code, _, _) = get(&format!("{base}/metrics?refresh=maybe")).await;
    assert_eq!(code, 400, "a bad refresh value is refused");

    let (code, _, health) = get(&format!("{base}/healthz")).await;
    assert_eq!(code, 200, "{health}");
    let health: serde_json::Value = serde_json::from_str(&health).expect("json");
    assert_eq!(health["ledger_writable"], true);
    assert_eq!(health["scheduler_alive"], true);

    chromium_renders(&format!("{base}/"), config.dir()).await;
    assert_eq!(daemon.terminate().await, 0);
}

/// The metrics a scrape of a TLS probe shows: its leaf's expiry to the second, its checks
/// counted by outcome and timed in a histogram, ratios without float noise, the build; and
/// nothing of a disabled probe.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_of_a_tls_probe_and_a_disabled_one() {
    let cert = tls::TestCert::valid_for_days(90);
    let web = http::start(http::HttpOptions::tls(cert.server_config())).await;
    let not_after = cert
        .not_after
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    let port = free_port();
    let config = TestConfig::new();
    config.main(&format!(
        r#"
[daemon]
ledger = "data/ledger"
socket = "data/upledger.sock"
listen = "127.0.0.1:{port}"
"#
    ));
    config.probes(
        "p.toml",
        &format!(
            r#"
[[probe]]
name = "secure"
kind = "http"
url = "{url}"
tls_verify = false
interval = "500ms"
timeout = "400ms"
target = "99.9%"

[[probe]]
name = "resting"
kind = "tcp"
address = "{refused}"
interval = "500ms"
timeout = "400ms"
enabled = false
"#,
            url = web.url("/ok"),
            refused = tcp::refused_addr(),
        ),
    );
    let daemon = Daemon::start(&config.main_path()).await;
    let base = format!("http://127.0.0.1:{port}");
    let series = |metrics: &str, name: &str| -> Option<String> {
        metrics
            .lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
            .map(str::to_owned)
    };
    // Plain /metrics waits for the month figures; then wait for two checks in the histogram.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let metrics = loop {
        let (code, _, metrics) = get(&format!("{base}/metrics")).await;
        assert_eq!(code, 200);
        let count = series(
            &metrics,
            "upledger_check_duration_seconds_count{probe=\"secure\"}",
        );
        if count
            .and_then(|c| c.parse::<u64>().ok())
            .is_some_and(|c| c >= 2)
            && metrics.contains("upledger_month_target_ratio")
        {
            break metrics;
        }
        assert!(std::time::Instant::now() < deadline, "{metrics}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    };

    let expiry = series(
        &metrics,
        "upledger_cert_expiry_timestamp_seconds{probe=\"secure\"}",
    );
    assert_eq!(expiry, Some(not_after.to_string()), "{metrics}");
    assert_eq!(
        series(&metrics, "upledger_month_target_ratio{probe=\"secure\"}").as_deref(),
        Some("0.999"),
        "{metrics}"
    );
    let version = format!(
        "upledger_build_info{{version=\"{}\"}}",
        env!("CARGO_PKG_VERSION")
    );
    assert_eq!(
        series(&metrics, &version).as_deref(),
        Some("1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("# TYPE upledger_check_duration_seconds histogram"),
        "{metrics}"
    );
    let count = series(
        &metrics,
        "upledger_check_duration_seconds_count{probe=\"secure\"}",
    );
    let infinite = series(
        &metrics,
        "upledger_check_duration_seconds_bucket{probe=\"secure\",le=\"+Inf\"}",
    );
    assert_eq!(count, infinite, "{metrics}");
    let up = series(
        &metrics,
        "upledger_checks_total{probe=\"secure\",outcome=\"up\"}",
    );
    assert_eq!(
        up, count,
        "every check of a healthy server is up:\n{metrics}"
    );
    for outcome in ["degraded", "down", "unknown"] {
        let name = format!("upledger_checks_total{{probe=\"secure\",outcome=\"{outcome}\"}}");
        assert_eq!(series(&metrics, &name).as_deref(), Some("0"), "{metrics}");
    }
    assert!(!metrics.contains("resting"), "a disabled probe:\n{metrics}");
    promtool_accepts(&metrics).await;
    assert_eq!(daemon.terminate().await, 0);
}

/// `promtool check metrics` reads the text on stdin; exit 0 means valid (lint included).
async fn promtool_accepts(metrics: &str) {
    let mut child = tokio::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian package prometheus) is installed");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(metrics.as_bytes()).await.expect("write");
    drop(stdin);
    let output = child.wait_with_output().await.expect("promtool ran");
    assert!(
        output.status.success(),
        "promtool rejects /metrics:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Headless Chromium loads the page (no network beyond loopback), saves a screenshot, and its
/// DOM shows the probes.
async fn chromium_renders(url: &str, dir: &Path) {
    let shot = dir.join("status.png");
    let chromium = |extra: &[String]| {
        let extra: Vec<String> = std::iter::once("--window-size=480,1200".to_owned())
            .chain(extra.iter().cloned())
            .collect();
        crate::support::chromium::command(&dir.join("chromium"), &extra, url)
    };
    let screenshot = tokio::time::timeout(
        Duration::from_secs(60),
        chromium(&[format!("--screenshot={}", shot.display())]).output(),
    )
    .await
    .expect("chromium finishes within 60 s")
    .expect("chromium (Debian package chromium) is installed");
    let png = std::fs::read(&shot).unwrap_or_else(|_| {
        panic!(
            "no screenshot:\n{}",
            String::from_utf8_lossy(&screenshot.stderr)
        )
    });
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 1_000,
        "a PNG screenshot"
    );
    let dom = tokio::time::timeout(
        Duration::from_secs(60),
        chromium(&["--dump-dom".to_owned()]).output(),
    )
    .await
    .expect("chromium finishes within 60 s")
    .expect("chromium runs");
    let dom = String::from_utf8_lossy(&dom.stdout);
    for name in ["web", "db", "cache", "Service status"] {
        assert!(dom.contains(name), "the rendered page lacks {name}:\n{dom}");
    }
    assert!(!dom.contains("secret-backend") && !dom.contains(TOKEN));
}

/// Regression (issue 13): on the public listener an ongoing outage looked resolved (ended
/// "now"), times were UTC whatever `[daemon].timezone` said, and a disabled probe had a status,
/// badges and a history.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_public_listener_shows_ongoing_outages_in_the_zone_and_no_disabled_probe() {
    let port = free_port();
    let config = TestConfig::new();
    config.main(&format!(
        r#"
[daemon]
ledger = "data/ledger"
socket = "data/upledger.sock"
listen = "127.0.0.1:{port}"
timezone = "Europe/Berlin"
"#
    ));
    config.probes(
        "p.toml",
        &format!(
            r#"
[[probe]]
name = "cache"
kind = "tcp"
address = "{refused}"
interval = "500ms"
timeout = "400ms"
failure_threshold = 1

[[probe]]
name = "retired-db"
kind = "tcp"
address = "{refused}"
interval = "500ms"
timeout = "400ms"
enabled = false
"#,
            refused = tcp::refused_addr(),
        ),
    );
    let daemon = Daemon::start(&config.main_path()).await;
    let base = format!("http://127.0.0.1:{port}");
    // The figures are computed from 2 s after start; wait for cache's outage in them.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let incidents = loop {
        let (code, _, body) = get(&format!("{base}/api/v1/incidents")).await;
        assert_eq!(code, 200, "{body}");
        let incidents: serde_json::Value = serde_json::from_str(&body).expect("json");
        if incidents.as_array().is_some_and(|all| !all.is_empty()) {
            break incidents;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no incident: {incidents}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let outage = &incidents[0];
    assert_eq!(outage["probe"], "cache");
    assert!(outage["end"].is_null(), "still down: {outage:#}");
    assert_eq!(outage["ongoing"], true);
    assert_eq!(incidents.as_array().map(Vec::len), Some(1), "{incidents}");

    let (_, _, page) = get(&format!("{base}/")).await;
    let line = page
        .split("<li>")
        .find(|item| item.contains("<strong>cache</strong>"))
        .unwrap_or_else(|| panic!("no incident listed:\n{page}"));
    assert!(
        line.contains(", ongoing for ") && line.contains("m — connect</li>") && !line.contains('→'),
        "{line}"
    );
    let zone = jiff::Timestamp::now()
        .to_zoned_datetime(jiff::tz::TimeZone::get("Europe/Berlin").expect("zone"))
        .strftime("%Z")
        .to_string();
    assert!(
        page.contains(&format!(" {zone}</")),
        "times in {zone}:\n{page}"
    );
    for hidden in ["UTC", "retired-db", "127.0.0.1", "os error"] {
        assert!(!page.contains(hidden), "the page shows {hidden:?}:\n{page}");
    }

    for path in ["/api/v1/status", "/api/v1/report", "/api/v1/incidents"] {
        let (code, _, body) = get(&format!("{base}{path}")).await;
        assert_eq!(code, 200, "{path}: {body}");
        assert!(!body.contains("retired-db"), "{path} shows it:\n{body}");
    }
    for path in [
        "/badge/retired-db.svg",
        "/badge/retired-db/state.svg",
        "/api/v1/probes/retired-db/history",
    ] {
        let (code, _, body) = get(&format!("{base}{path}")).await;
        assert_eq!(code, 404, "{path}: {body}");
    }
    let status = daemon.cli(&["status", "--json"]).await.json();
    let names = crate::support::names(&status["probes"]);
    assert_eq!(names, ["cache"], "{status:#}");
    assert_eq!(daemon.terminate().await, 0);
}
