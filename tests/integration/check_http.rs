//! `upledger check` with HTTP(S) probes against a real HTTP server on loopback, with
//! certificates made in the test. Every error class is produced by a real condition:
//! refused port, hanging server, bad TLS, wrong status, body mismatch, redirect loop, garbage
//! instead of HTTP, and a connection lost mid-body.

use std::time::{Duration, Instant};

use crate::support::{
    TestConfig, assert_result,
    http::{self, HttpOptions},
    results_by_name, tcp, tls,
};

/// An HTTP probe named `name` for `url`, with extra TOML lines.
fn http_probe(name: &str, url: &str, extra: &str) -> String {
    format!(
        "[[probe]]\nname = \"{name}\"\nkind = \"http\"\nurl = \"{url}\"\ntimeout = \"5s\"\n{extra}\n\n"
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn plain_http_outcomes_and_error_classes() {
    let server = http::start(HttpOptions::plain()).await;
    let refused = tcp::refused_addr();
    let config = TestConfig::new();
    let probes = [
        http_probe("ok", &server.url("/ok"), "body_contains = \"all ok\""),
        http_probe("wrong-status", &server.url("/status/503"), ""),
        http_probe(
            "wanted-status",
            &server.url("/status/503"),
            "expect_status = [503]",
        ),
        http_probe(
            "status-class",
            &server.url("/status/404"),
            "expect_status = [\"4xx\", 301]",
        ),
        http_probe(
            "body-missing",
            &server.url("/ok"),
            "body_contains = \"healthy\"",
        ),
        http_probe(
            "body-forbidden",
            &server.url("/body/status%3A%20error"),
            "body_not_contains = \"error\"",
        ),
        http_probe(
            "body-regex",
            &server.url("/ok"),
            r#"body_regex = '^all \d+$'"#,
        ),
        http_probe(
            "body-regex-ok",
            &server.url("/ok"),
            "body_regex = '^all o+k$'\nbody_not_contains = \"error\"",
        ),
        http_probe("refused", &format!("http://{refused}/ok"), ""),
        http_probe("hang", &server.url("/hang"), "timeout = \"1s\"")
            .replace("timeout = \"5s\"\n", ""),
        http_probe(
            "slow",
            &server.url("/slow/300"),
            "degraded_after = \"100ms\"",
        ),
        http_probe(
            "redirect",
            &server.url("/redirect"),
            "body_contains = \"all ok\"",
        ),
        http_probe(
            "redirect-off",
            &server.url("/redirect"),
            "follow_redirects = false",
        ),
        http_probe(
            "redirect-off-wanted",
            &server.url("/redirect"),
            "follow_redirects = false\nexpect_status = [302]",
        ),
        http_probe("redirect-loop", &server.url("/redirect-loop"), ""),
        http_probe(
            "prefix-short",
            &server.url("/padded/1000/TAIL"),
            "max_body_bytes = 1000\nbody_contains = \"TAIL\"",
        ),
        http_probe(
            "prefix-long",
            &server.url("/padded/1000/TAIL"),
            "max_body_bytes = 1004\nbody_contains = \"TAIL\"",
        ),
    ]
    .concat();
    config.probes("http.toml", &probes);
    let started = Instant::now();
    let (output, json) = config.check_json(&[]).await;
    let elapsed = started.elapsed();
    assert_eq!(output.code, 1, "{}", output.stdout);
    let r = results_by_name(&json);
    assert_result(&r["ok"], "up", None, "");
    assert_result(
        &r["wrong-status"],
        "down",
        Some("http_status"),
        "HTTP 503 Service Unavailable",
    );
    assert_result(&r["wanted-status"], "up", None, "");
    assert_result(&r["status-class"], "up", None, "");
    assert_result(
        &r["body-missing"],
        "down",
        Some("assertion"),
        "body does not contain \"healthy\"",
    );
    assert_result(
        &r["body-forbidden"],
        "down",
        Some("assertion"),
        "body contains \"error\"",
    );
    assert_result(
        &r["body-regex"],
        "down",
        Some("assertion"),
        "body does not match",
    );
    assert_result(&r["body-regex-ok"], "up", None, "");
    assert_result(&r["refused"], "down", Some("connect"), "");
    assert_result(&r["hang"], "down", Some("timeout"), "no answer within 1s");
    assert_result(&r["slow"], "degraded", None, "slower than 100ms");
    assert_result(&r["redirect"], "up", None, "");
    assert_result(
        &r["redirect-off"],
        "down",
        Some("http_status"),
        "HTTP 302 Found",
    );
    assert_result(&r["redirect-off-wanted"], "up", None, "");
    assert_result(&r["redirect-loop"], "down", Some("protocol"), "");
    assert_result(
        &r["prefix-short"],
        "down",
        Some("assertion"),
        "body does not contain \"TAIL\"",
    );
    assert_result(&r["prefix-long"], "up", None, "");
    let hang_ms = r["hang"]["latency_ms"].as_f64().expect("latency");
    assert!(
        (950.0..1600.0).contains(&hang_ms),
        "the timeout ends the check: {hang_ms} ms"
    );
    assert!(r["slow"]["latency_ms"].as_f64().expect("latency") >= 300.0);
    // Concurrent: the whole run is far below the sum of the slow and hanging checks.
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
    for result in r.values() {
        assert!(
            result.get("cert_days_left").is_none(),
            "plain HTTP has no cert: {result}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn request_method_headers_and_body_are_sent() {
    let server = http::start(HttpOptions::plain()).await;
    let config = TestConfig::new();
    config.probes(
        "echo.toml",
        &http_probe(
            "echo",
            &server.url("/echo"),
            r#"method = "post"
headers = { X-Token = "${UPLEDGER_TEST_TOKEN}" }
body = "hello=world"
body_regex = '(?s)^POST /echo\n.*x-token: secret-1\n.*user-agent: upledger/.*\n\nhello=world$'"#,
        ),
    );
    let output = crate::support::upledger()
        .env("UPLEDGER_TEST_TOKEN", "secret-1")
        .arg("--config")
        .arg(config.main_path())
        .args(["check", "--json"])
        .run()
        .await;
    assert_eq!(output.code, 0, "{}{}", output.stdout, output.stderr);
    assert_result(&results_by_name(&output.json())["echo"], "up", None, "");
}

#[tokio::test(flavor = "multi_thread")]
async fn every_check_opens_a_fresh_connection() {
    let server = http::start(HttpOptions::plain()).await;
    let config = TestConfig::new();
    config.probes("ok.toml", &http_probe("ok", &server.url("/ok"), ""));
    for _ in 0..3 {
        let (output, _) = config.check_json(&[]).await;
        assert_eq!(output.code, 0);
    }
    assert_eq!(server.requests(), 3);
    assert_eq!(server.connections(), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_verification_and_certificate_expiry() {
    let trusted_nowhere = http::start(HttpOptions::tls(tls::long_lived().server_config())).await;
    let expiring = http::start(HttpOptions::tls(tls::expiring_soon().server_config())).await;
    let expired = http::start(HttpOptions::tls(tls::expired().server_config())).await;
    let plaintext = tcp::pong().await;
    let config = TestConfig::new();
    let probes = [
        http_probe("self-signed-verified", &trusted_nowhere.url("/ok"), ""),
        http_probe(
            "self-signed-unverified",
            &trusted_nowhere.url("/ok"),
            "tls_verify = false",
        ),
        http_probe(
            "expiring",
            &expiring.url("/ok"),
            "tls_verify = false\ncert_expiry_warn = \"14d\"",
        ),
        http_probe(
            "expiring-short-warn",
            &expiring.url("/ok"),
            "tls_verify = false\ncert_expiry_warn = \"1d\"",
        ),
        http_probe("expired-verified", &expired.url("/ok"), ""),
        http_probe(
            "expired-bad-status",
            &expired.url("/status/500"),
            "tls_verify = false",
        ),
        http_probe(
            "tls-to-plaintext",
            &format!("https://127.0.0.1:{}/ok", plaintext.port()),
            "tls_verify = false",
        ),
    ]
    .concat();
    config.probes("tls.toml", &probes);
    let (output, json) = config.check_json(&[]).await;
    assert_eq!(output.code, 1);
    let r = results_by_name(&json);
    assert_result(&r["self-signed-verified"], "down", Some("tls"), "");
    assert!(r["self-signed-verified"].get("cert_days_left").is_none());
    assert_result(&r["self-signed-unverified"], "up", None, "");
    let days = r["self-signed-unverified"]["cert_days_left"]
        .as_i64()
        .expect("days");
    assert!((399..=400).contains(&days), "{days}");
    assert_eq!(r["self-signed-unverified"]["cert_expiring"], false);

    assert_result(&r["expiring"], "up", None, "");
    let days = r["expiring"]["cert_days_left"].as_i64().expect("days");
    assert!((2..=3).contains(&days), "{days}");
    assert_eq!(r["expiring"]["cert_expiring"], true);
    assert_eq!(r["expiring-short-warn"]["cert_expiring"], false);

    assert_result(&r["expired-verified"], "down", Some("tls"), "");
    assert_result(
        &r["expired-bad-status"],
        "down",
        Some("http_status"),
        "HTTP 500",
    );
    assert!(
        r["expired-bad-status"]["cert_days_left"]
            .as_i64()
            .expect("days")
            < 0
    );
    assert_eq!(r["expired-bad-status"]["cert_expiring"], true);
    assert_result(&r["tls-to-plaintext"], "down", Some("tls"), "");
}

#[tokio::test(flavor = "multi_thread")]
async fn ipv6_literal_urls_work() {
    let Ok(server) = http::try_start(HttpOptions::plain().ipv6()).await else {
        eprintln!("skipped: no ::1 on this host");
        return;
    };
    let url = server.url("/ok");
    assert!(url.starts_with("http://[::1]:"), "{url}");
    let config = TestConfig::new();
    let result = config
        .check_one(&http_probe("v6", &url, "body_contains = \"all ok\""))
        .await;
    assert_result(&result, "up", None, "");
}

/// Runs `check` on `config`, sampling the child's peak RSS (`VmHWM`) while it runs.
async fn run_sampling_rss(config: &TestConfig) -> (std::process::ExitStatus, u64, Duration) {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_upledger"))
        .arg("--config")
        .arg(config.main_path())
        .args(["check", "--json"])
        .env("UPLEDGER_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn");
    let pid = child.id().expect("pid");
    let started = Instant::now();
    let mut peak_kib = 0;
    loop {
        if let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
            for line in status.lines() {
                if let Some(value) = line.strip_prefix("VmHWM:") {
                    let kib: u64 = value
                        .trim()
                        .trim_end_matches("kB")
                        .trim()
                        .parse()
                        .unwrap_or(0);
                    peak_kib = peak_kib.max(kib);
                }
            }
        }
        if let Some(status) = child.try_wait().expect("wait") {
            return (status, peak_kib, started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn endless_and_huge_bodies_end_early_with_bounded_memory() {
    let server = http::start(HttpOptions::plain()).await;
    let tls_server = http::start(HttpOptions::tls(tls::long_lived().server_config())).await;
    let config = TestConfig::new();
    let probes = [
        http_probe(
            "endless",
            &server.url("/endless"),
            "body_contains = \"never there\"",
        ),
        http_probe(
            "gigabyte",
            &server.url("/big"),
            "body_contains = \"never there\"",
        ),
        http_probe("endless-ok", &server.url("/endless"), ""),
        http_probe(
            "gigabyte-ok",
            &server.url("/big"),
            "max_body_bytes = 4194304",
        ),
        http_probe(
            "endless-tls",
            &tls_server.url("/endless"),
            "tls_verify = false\nmax_body_bytes = 4194304",
        ),
        http_probe("loop", &server.url("/redirect-loop"), ""),
    ]
    .concat();
    config.probes("big.toml", &probes);
    let (status, peak_kib, elapsed) = run_sampling_rss(&config).await;
    assert_eq!(status.code(), Some(1), "two assertions fail");
    // Every check stops at max_body_bytes (1 MiB by default, 4 MiB at most here) well inside
    // the 5 s timeout, and memory never holds more than that prefix.
    assert!(elapsed < Duration::from_secs(4), "{elapsed:?}");
    assert!(peak_kib < 64 * 1024, "peak RSS {peak_kib} KiB");
    let (_, json) = config.check_json(&[]).await;
    let r = results_by_name(&json);
    assert_result(&r["endless"], "down", Some("assertion"), "never there");
    assert_result(&r["gigabyte"], "down", Some("assertion"), "never there");
    assert_result(&r["endless-ok"], "up", None, "");
    assert_result(&r["gigabyte-ok"], "up", None, "");
    assert_result(&r["endless-tls"], "up", None, "");
    assert_result(&r["loop"], "down", Some("protocol"), "");
}

/// `text` percent-encoded for one path segment of the test server.
fn encoded(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn redirects_are_followed_as_browsers_do() {
    let server = http::start(HttpOptions::plain()).await;
    let other = http::start(HttpOptions::plain()).await;
    let secure = http::start(HttpOptions::tls(tls::long_lived().server_config())).await;
    let to = |status: u16, location: &str| {
        server.url(&format!("/redirect-to/{status}/{}", encoded(location)))
    };
    let post = "method = \"POST\"\nbody = \"hello=world\"\n\
                headers = { Content-Type = \"text/plain\", Authorization = \"Bearer s3cret\" }";
    let config = TestConfig::new();
    let probes = [
        http_probe(
            "see-other-post",
            &to(303, "/echo"),
            &format!("{post}\nbody_regex = '(?s)^GET /echo\\n.*\\n\\n$'\nbody_not_contains = \"content-type\""),
        ),
        http_probe(
            "found-post",
            &to(302, "/echo"),
            &format!("{post}\nbody_regex = '(?s)^GET /echo\\n.*\\n\\n$'"),
        ),
        http_probe(
            "temporary-post",
            &to(307, "/echo"),
            &format!(
                "{post}\nbody_regex = '(?s)^POST /echo\\n.*content-type: text/plain\\n.*\\n\\nhello=world$'"
            ),
        ),
        http_probe(
            "same-origin-credentials",
            &to(302, "/echo"),
            &format!("{post}\nbody_contains = \"authorization: Bearer s3cret\""),
        ),
        http_probe(
            "cross-origin-credentials",
            &to(302, &other.url("/echo")),
            &format!("{post}\nbody_regex = '^GET /echo'\nbody_not_contains = \"authorization\""),
        ),
        http_probe(
            "plain-to-tls",
            &to(301, &secure.url("/ok")),
            "tls_verify = false\nbody_contains = \"all ok\"",
        ),
        http_probe("ten-redirects", &server.url("/chain/10"), ""),
        http_probe("eleven-redirects", &server.url("/chain/11"), ""),
        http_probe("no-location", &server.url("/status/302"), ""),
        http_probe(
            "not-followed",
            &to(303, "/echo"),
            "follow_redirects = false\nexpect_status = [303]",
        ),
    ]
    .concat();
    config.probes("redirects.toml", &probes);
    let (output, json) = config.check_json(&[]).await;
    assert_eq!(output.code, 1, "{}", output.stdout);
    let r = results_by_name(&json);
    for name in [
        "see-other-post",
        "found-post",
        "temporary-post",
        "same-origin-credentials",
        "cross-origin-credentials",
        "plain-to-tls",
        "ten-redirects",
        "not-followed",
    ] {
        assert_result(&r[name], "up", None, "");
    }
    // The certificate is the last hop's, over TLS.
    let days = r["plain-to-tls"]["cert_days_left"].as_i64().expect("days");
    assert!((399..=400).contains(&days), "{days}");
    assert_result(
        &r["eleven-redirects"],
        "down",
        Some("protocol"),
        "too many redirects",
    );
    assert_result(&r["no-location"], "down", Some("http_status"), "HTTP 302");
    assert_eq!(
        other.requests(),
        1,
        "the cross-origin hop reached the other server"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn every_body_framing_is_read_to_its_end() {
    let server = http::start(HttpOptions::plain()).await;
    let config = TestConfig::new();
    let probes = [
        http_probe(
            "chunked",
            &server.url("/chunked/hello%20chunked%20world"),
            "body_regex = '^hello chunked world$'",
        ),
        http_probe(
            "until-close",
            &server.url("/until-close/all%20until%20close"),
            "body_regex = '^all until close$'",
        ),
        http_probe(
            "interim",
            &server.url("/interim"),
            "body_regex = '^after hints$'",
        ),
        // A HEAD answer has no body, whatever its Content-Length says.
        http_probe("head", &server.url("/head-only"), "method = \"HEAD\""),
        // The same answer to a GET is a body that never comes.
        http_probe(
            "get-without-body",
            &server.url("/head-only"),
            "timeout = \"1s\"",
        )
        .replace("timeout = \"5s\"\n", ""),
        http_probe(
            "no-content",
            &server.url("/status/204"),
            "expect_status = [204]",
        ),
    ]
    .concat();
    config.probes("framing.toml", &probes);
    let (output, json) = config.check_json(&[]).await;
    assert_eq!(output.code, 1, "{}", output.stdout);
    let r = results_by_name(&json);
    for name in ["chunked", "until-close", "interim", "head", "no-content"] {
        assert_result(&r[name], "up", None, "");
    }
    assert_result(&r["get-without-body"], "down", Some("timeout"), "");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_probe_host_header_is_the_only_host_line() {
    let server = http::start(HttpOptions::plain()).await;
    let config = TestConfig::new();
    let probes = [
        http_probe(
            "own-host",
            &server.url("/hosts"),
            "headers = { hOsT = \"virtual.test\" }\nbody_contains = \"host lines: 1; host: virtual.test\"",
        ),
        http_probe(
            "own-host-kept",
            &server.url("/hosts"),
            "reuse_connection = true\nheaders = { Host = \"virtual.test\" }\n\
             body_contains = \"host lines: 1; host: virtual.test\"",
        ),
        http_probe(
            "default-host",
            &server.url("/hosts"),
            &format!("body_contains = \"host lines: 1; host: {}\"", server.addr),
        ),
    ]
    .concat();
    config.probes("hosts.toml", &probes);
    let (output, json) = config.check_json(&[]).await;
    let r = results_by_name(&json);
    for name in ["own-host", "own-host-kept", "default-host"] {
        assert_result(&r[name], "up", None, "");
    }
    assert_eq!(output.code, 0, "{}", output.stdout);
}

/// Answers RFC 9112 lets a recipient accept, and curl does, on fresh `http://` and `https://`
/// connections (framed by upledger) and, where reqwest can be told, on kept ones; beyond the
/// limits, and for bodies shorter than their framing says, the check still fails.
#[tokio::test(flavor = "multi_thread")]
async fn lenient_answers_pass_and_broken_ones_fail() {
    let plain = http::start(HttpOptions::plain()).await;
    let secure = http::start(HttpOptions::tls(tls::long_lived().server_config())).await;
    let config = TestConfig::new();
    let mut probes = String::new();
    let mut up = Vec::new();
    for (server, scheme, extra) in [
        (&plain, "http", ""),
        (&secure, "https", "tls_verify = false"),
    ] {
        for (name, path, assert) in [
            (
                "until-close",
                "/until-close/to%20the%20end",
                "body_regex = '^to the end$'",
            ),
            (
                "headers-256",
                "/many-headers/254",
                "body_contains = \"many ok\"",
            ),
            (
                "head-250k",
                "/big-head/250",
                "body_contains = \"big head ok\"",
            ),
            ("folded", "/folded", "body_regex = '^folded ok$'"),
            (
                "length-list",
                "/length-list/12%2C%2012",
                "body_regex = '^hello world!$'",
            ),
            (
                "lf-chunked",
                "/lf-chunked/bare%20LF%20chunks",
                "body_regex = '^bare LF chunks$'",
            ),
        ] {
            let name = format!("{scheme}-{name}");
            probes.push_str(&http_probe(
                &name,
                &server.url(path),
                &format!("{extra}\n{assert}"),
            ));
            up.push(name);
        }
        // What reqwest can be told: more header fields and folded lines on kept connections.
        for (name, path) in [
            ("kept-headers-256", "/many-headers/254"),
            ("kept-folded", "/folded"),
        ] {
            let name = format!("{scheme}-{name}");
            probes.push_str(&http_probe(
                &name,
                &server.url(path),
                &format!("{extra}\nreuse_connection = true"),
            ));
            up.push(name);
        }
        for (name, path) in [
            ("headers-300", "/many-headers/300"),
            ("head-300k", "/big-head/300"),
            ("length-conflict", "/length-list/12%2C%2013"),
            ("truncated", "/truncated"),
            ("chunked-cut", "/chunked-cut/no%20last%20chunk"),
        ] {
            probes.push_str(&http_probe(
                &format!("{scheme}-{name}"),
                &server.url(path),
                extra,
            ));
        }
    }
    config.probes("lenient.toml", &probes);
    let (output, json) = config.check_json(&[]).await;
    assert_eq!(output.code, 1, "{}", output.stdout);
    let r = results_by_name(&json);
    for name in &up {
        assert_result(&r[name.as_str()], "up", None, "");
    }
    for scheme in ["http", "https"] {
        let down = |name: &str| &r[format!("{scheme}-{name}").as_str()];
        assert_result(
            down("headers-300"),
            "down",
            Some("protocol"),
            "more than 256 header fields",
        );
        assert_result(
            down("head-300k"),
            "down",
            Some("protocol"),
            "larger than 256 KiB",
        );
        assert_result(
            down("length-conflict"),
            "down",
            Some("protocol"),
            "Content-Length",
        );
        assert_result(down("truncated"), "down", Some("io"), "bytes early");
        assert_result(
            down("chunked-cut"),
            "down",
            Some("io"),
            "before the last chunk",
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn max_redirects_limits_the_chain() {
    let server = http::start(HttpOptions::plain()).await;
    let config = TestConfig::new();
    let probes = [
        http_probe("two-of-two", &server.url("/chain/2"), "max_redirects = 2"),
        http_probe("three-of-two", &server.url("/chain/3"), "max_redirects = 2"),
        http_probe(
            "none-allowed",
            &server.url("/redirect"),
            "max_redirects = 0",
        ),
        http_probe("none-needed", &server.url("/ok"), "max_redirects = 0"),
    ]
    .concat();
    config.probes("max-redirects.toml", &probes);
    let (output, json) = config.check_json(&[]).await;
    assert_eq!(output.code, 1, "{}", output.stdout);
    let r = results_by_name(&json);
    assert_result(&r["two-of-two"], "up", None, "");
    assert_result(&r["none-needed"], "up", None, "");
    assert_result(
        &r["three-of-two"],
        "down",
        Some("protocol"),
        "too many redirects (more than 2)",
    );
    assert_result(
        &r["none-allowed"],
        "down",
        Some("protocol"),
        "too many redirects (more than 0)",
    );
}
