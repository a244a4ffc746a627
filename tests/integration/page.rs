//! The status page a vendor sends a client to (issue 17): probes under their groups by their
//! display names, the agreements' figures, a title and an inlined logo, today's bar from the
//! first checks — served by a running daemon, and rendered by headless Chromium at a desktop
//! width and at a phone's (390 px) without horizontal overflow. The screenshots are kept under
//! `target/test-artefacts/` for a person to look at.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use crate::support::{TestConfig, daemon::Daemon, free_port, http, tcp};

/// A small SVG logo: its `http://` namespace must not reach the page as text.
const LOGO: &str = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"120\" height=\"32\" \
                    viewBox=\"0 0 120 32\"><rect width=\"32\" height=\"32\" rx=\"6\" \
                    fill=\"#1565c0\"/><text x=\"40\" y=\"23\" font-family=\"sans-serif\" \
                    font-size=\"20\" fill=\"#1565c0\">ACME</text></svg>";

/// Where screenshots are kept: `target/test-artefacts/` (next to cargo's `tmp`).
fn artefacts() -> PathBuf {
    let target = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("the target folder")
        .to_owned();
    let dir = target.join("test-artefacts");
    std::fs::create_dir_all(&dir).expect("the artefacts folder");
    dir
}

async fn get(url: &str) -> (u16, String) {
    let response = reqwest::get(url).await.expect("the listener answers");
    let status = response.status().as_u16();
    (status, response.text().await.expect("a body"))
}

/// The texts of every `<h2>`, in order.
fn headings(html: &str) -> Vec<&str> {
    html.split("<h2>")
        .skip(1)
        .filter_map(|h| h.split("</h2>").next())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_reads_groups_display_names_and_the_agreement_on_a_desktop_and_a_phone() {
    let web = http::start(http::HttpOptions::plain()).await;
    let db = tcp::pong().await;
    let batch = tcp::pong().await;
    let port = free_port();
    let config = TestConfig::new();
    std::fs::write(config.dir().join("logo.svg"), LOGO).expect("a logo");
    config.main(&format!(
        r#"
[daemon]
ledger = "data/ledger"
socket = "data/upledger.sock"
listen = "127.0.0.1:{port}"

[defaults]
interval = "500ms"
timeout = "400ms"

[page]
title = "ACME Cloud status"
logo = "logo.svg"

[[sla]]
name = "acme-premium"
client = "ACME Corp"
probes = ["api", "web"]
target = "99.95%"
monthly_fee = 2000.0
currency = "EUR"
credits = [ {{ below = "99.95%", credit = "10%" }}, {{ below = "99%", credit = "25%" }} ]
latency = {{ share = "50%", below = "10s" }}

[[maintenance]]
probes = ["api", "web"]
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
name = "api"
display_name = "Public API"
group = "Core platform"
kind = "http"
url = "{api}"

[[probe]]
name = "web"
display_name = "Customer portal"
group = "Websites"
kind = "http"
url = "{portal}"

[[probe]]
name = "db"
display_name = "Managed database"
group = "Core platform"
kind = "tcp"
address = "{db}"

[[probe]]
name = "batch-7"
kind = "tcp"
address = "{batch}"
"#,
            api = web.url("/ok"),
            portal = web.url("/ok?portal"),
            db = db.addr,
            batch = batch.addr,
        ),
    );
    let daemon = Daemon::start(&config.main_path()).await;
    let base = format!("http://127.0.0.1:{port}");

    // Figures are computed from 2 s after start (and every 30 s while someone looks); wait
    // until every probe is up with today's bar filled and the agreement measured.
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    let page = loop {
        let (code, page) = get(&format!("{base}/")).await;
        let ready = code == 200
            && page.matches("(today, so far): 100.000%").count() == 4
            && page.contains("<dt>Achieved this month</dt><dd>100.000%</dd>")
            && page.matches("class=\"pill up\">up</span>").count() == 4 + 3;
        if ready {
            break page;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the page never showed four probes up with today's bars:\n{page}\nlog:\n{}",
            daemon.log()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };

    assert!(page.contains("<title>ACME Cloud status</title>"), "{page}");
    // Badges a vendor embeds for clients carry the display name too (the URL keeps the name).
    for path in ["/badge/api.svg", "/badge/api/state.svg"] {
        let (code, svg) = get(&format!("{base}{path}")).await;
        assert_eq!(code, 200, "{path}");
        assert!(svg.contains("<title>Public API"), "{path}: {svg}");
    }
    assert!(page.contains("<h1>ACME Cloud status</h1>"), "{page}");
    assert!(
        page.contains("<header class=\"top\"><img src=\"data:image/svg+xml;base64,"),
        "the logo is inlined"
    );
    assert!(!page.contains("<script"), "no JavaScript");
    assert!(
        !page.contains("http://") && !page.contains("https://"),
        "no external assets"
    );
    assert_eq!(
        headings(&page),
        [
            "Core platform",
            "Websites",
            "Other services",
            "Service level agreements",
            "Incidents this month",
            "Planned maintenance"
        ]
    );
    let core = page
        .split("<h2>Core platform</h2>")
        .nth(1)
        .and_then(|rest| rest.split("<h2>").next())
        .expect("the core group");
    let names: Vec<&str> = core
        .split("<span class=\"name\">")
        .skip(1)
        .filter_map(|s| s.split("</span>").next())
        .collect();
    assert_eq!(names, ["Public API", "Managed database"], "in config order");
    for shown in [
        "<span class=\"name\">Customer portal</span>",
        "<span class=\"name\">batch-7</span>",
        "<span class=\"name\">acme-premium</span> <span class=\"muted\">for ACME Corp</span>",
        "<span class=\"pill met\">met so far</span>",
        "<dt>Target</dt><dd>99.95%</dd>",
        "<dt>Downtime budget left</dt><dd>",
        "<dt>Credit if the month ended now</dt><dd>none</dd>",
        "<dt>Response time</dt><dd>50% of checks under 10 s: 100%, met</dd>",
        "Covers Public API, Customer portal",
        "database upgrade <span class=\"muted\">(Public API, Customer portal)</span>",
    ] {
        assert!(page.contains(shown), "the page lacks {shown:?}:\n{page}");
    }
    for slug in ["api", "web", "db"] {
        for form in [
            format!(">{slug}<"),
            format!("({slug}"),
            format!("{slug})"),
            format!(" {slug},"),
            format!(", {slug}"),
        ] {
            assert!(!page.contains(&form), "the page shows {form:?}:\n{page}");
        }
    }

    // The status JSON names them too, and leaves the fields out where unset.
    let (code, status) = get(&format!("{base}/api/v1/status")).await;
    assert_eq!(code, 200);
    let status: serde_json::Value = serde_json::from_str(&status).expect("json");
    let probes = status["probes"].as_array().expect("probes");
    assert_eq!(probes[0]["name"], "api");
    assert_eq!(probes[0]["display_name"], "Public API");
    assert_eq!(probes[0]["group"], "Core platform");
    assert_eq!(probes[3]["name"], "batch-7");
    assert!(probes[3].get("display_name").is_none() && probes[3].get("group").is_none());

    let artefacts = artefacts();
    let wide = artefacts.join("status-page-1280.png");
    let narrow = artefacts.join("status-page-390.png");
    let url = format!("{base}/");
    screenshot(config.dir(), 1280, &url, &wide).await;
    let dom = chromium(config.dir(), 1280, &["--dump-dom".to_owned()], &url).await;
    for shown in [
        "<h1>ACME Cloud status</h1>",
        "Public API",
        "Managed database",
        "Customer portal",
        "<h2>Core platform</h2>",
        "<h2>Websites</h2>",
        "<dt>Achieved this month</dt><dd>100.000%</dd>",
        "(today, so far): 100.000%",
    ] {
        assert!(
            dom.contains(shown),
            "the rendered page lacks {shown:?}:\n{dom}"
        );
    }

    // Chromium will not make a window narrower than 500 px; a phone's 390 px viewport is an
    // iframe of that width around the page as served (media queries see the iframe).
    let harness = phone_harness(config.dir(), &page, 390);
    screenshot(config.dir(), 390, &harness, &narrow).await;
    let desk = measure(
        config.dir(),
        &phone_harness(config.dir(), &page, 1280),
        1280,
    )
    .await;
    let phone = measure(config.dir(), &harness, 390).await;
    println!(
        "status page screenshots: {} and {}",
        wide.display(),
        narrow.display()
    );
    println!("measured at 1280 px: {desk}\nmeasured at 390 px: {phone}");
    for (width, measured, days) in [(1280, &desk, 90), (390, &phone, 30)] {
        assert_eq!(measured["viewport"], width, "{measured}");
        assert!(
            measured["scroll"].as_f64() <= measured["viewport"].as_f64(),
            "the page overflows at {width} px: {measured}"
        );
        assert_eq!(measured["bars"], 4, "{measured}");
        assert_eq!(measured["days_shown"], 4 * days, "{measured}");
        assert!(
            measured["thinnest_day"].as_f64().is_some_and(|w| w >= 4.0),
            "days too thin to read at {width} px: {measured}"
        );
        assert_eq!(
            measured["today_shown"], 4,
            "today's bar is always shown: {measured}"
        );
    }
    assert_eq!(daemon.terminate().await, 0);
}

/// A local HTML file holding `page` in an iframe `width` pixels wide (and 2000 high), with a
/// script (the harness's own; the page has none) that measures the page once loaded.
fn phone_harness(dir: &Path, page: &str, width: u32) -> String {
    let escaped = page
        .replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    let html = format!(
        r#"<!doctype html><html style="overflow:hidden"><body style="margin:0">
<iframe id="page" style="width:{width}px;height:2000px;border:0;display:block" srcdoc="{escaped}"></iframe>
<script>
window.addEventListener('load', function () {{
  var d = document.getElementById('page').contentDocument, w = d.defaultView;
  var days = [].slice.call(d.querySelectorAll('.bar span'));
  var shown = days.filter(function (s) {{ return s.getBoundingClientRect().width > 0; }});
  var today = shown.filter(function (s) {{ return s.title.indexOf('today') >= 0; }});
  var out = document.createElement('pre');
  out.id = 'measured';
  out.textContent = JSON.stringify({{
    viewport: w.innerWidth,
    scroll: d.documentElement.scrollWidth,
    bars: d.querySelectorAll('.bar').length,
    days_shown: shown.length,
    today_shown: today.length,
    thinnest_day: Math.min.apply(null, shown.map(function (s) {{ return s.getBoundingClientRect().width; }}))
  }});
  document.body.appendChild(out);
}});
</script></body></html>"#
    );
    let path = dir.join(format!("harness-{width}.html"));
    std::fs::write(&path, html).expect("the harness");
    format!("file://{}", path.display())
}

/// The harness's measurements at `width`.
async fn measure(dir: &Path, harness: &str, width: u32) -> serde_json::Value {
    let dom = chromium(dir, width, &["--dump-dom".to_owned()], harness).await;
    let measured = dom
        .split("<pre id=\"measured\">")
        .nth(1)
        .and_then(|rest| rest.split("</pre>").next())
        .unwrap_or_else(|| panic!("no measurements:\n{dom}"));
    serde_json::from_str(&measured.replace("&amp;", "&"))
        .unwrap_or_else(|e| panic!("{e}: {measured}"))
}

/// A screenshot of `url` in a window `width` pixels wide, kept at `shot`.
async fn screenshot(dir: &Path, width: u32, url: &str, shot: &Path) {
    let _ = std::fs::remove_file(shot);
    chromium(
        dir,
        width,
        &[format!("--screenshot={}", shot.display())],
        url,
    )
    .await;
    let png = std::fs::read(shot).unwrap_or_else(|_| panic!("no screenshot of {url}"));
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 1_000,
        "a PNG screenshot"
    );
}

/// Headless Chromium (no network beyond loopback, a fresh profile) on `url` in a window
/// `width`×2000; its stdout.
async fn chromium(dir: &Path, width: u32, extra: &[String], url: &str) -> String {
    let profile = tempfile::tempdir_in(dir).expect("a profile folder");
    let extra: Vec<String> = [
        "--hide-scrollbars".to_owned(),
        format!("--window-size={width},2000"),
    ]
    .into_iter()
    .chain(extra.iter().cloned())
    .collect();
    let command = crate::support::chromium::command(profile.path(), &extra, url);
    let output = crate::support::chromium::run(command, Duration::from_secs(60)).await;
    String::from_utf8_lossy(&output.stdout).into_owned()
}
