//! `upledger check` with TCP probes: connect, send/expect, TLS, IPv6, against loopback servers.

use std::time::Duration;

use crate::support::{TestConfig, assert_result, results_by_name, tcp, tls};

/// A TCP probe named `name` for `address`, with extra TOML lines.
fn tcp_probe(name: &str, address: &str, extra: &str) -> String {
    format!(
        "[[probe]]\nname = \"{name}\"\nkind = \"tcp\"\naddress = \"{address}\"\ntimeout = \"5s\"\n{extra}\n\n"
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn connect_send_expect_and_failures() {
    let hang = tcp::hang().await;
    let pong = tcp::pong().await;
    let ssh = tcp::greet("SSH-2.0-OpenSSH_9.6\r\n").await;
    let refused = tcp::refused_addr();
    let config = TestConfig::new();
    let probes = [
        tcp_probe("connect", &hang.addr.to_string(), ""),
        tcp_probe("refused", &refused.to_string(), ""),
        tcp_probe(
            "hang-expect",
            &hang.addr.to_string(),
            "expect = \"+PONG\"\ntimeout = \"1s\"",
        )
        .replace("timeout = \"5s\"\n", ""),
        tcp_probe(
            "ping",
            &pong.addr.to_string(),
            "send = \"PING\\r\\n\"\nexpect = \"+PONG\"",
        ),
        tcp_probe(
            "ping-wrong",
            &pong.addr.to_string(),
            "send = \"HELLO\\r\\n\"\nexpect = \"+PONG\"",
        ),
        tcp_probe("banner", &ssh.addr.to_string(), "expect = \"SSH-2.0\""),
        tcp_probe("banner-wrong", &ssh.addr.to_string(), "expect = \"220 \""),
    ]
    .concat();
    config.probes("tcp.toml", &probes);
    let (output, json) = config.check_json(&[]).await;
    assert_eq!(output.code, 1);
    let r = results_by_name(&json);
    assert_result(&r["connect"], "up", None, "");
    assert_result(&r["refused"], "down", Some("connect"), &refused.to_string());
    assert_result(&r["hang-expect"], "down", Some("timeout"), "");
    assert_result(&r["ping"], "up", None, "");
    assert_result(
        &r["ping-wrong"],
        "down",
        Some("assertion"),
        r#"expected "+PONG", received "-ERR unknown command 'HELLO'\r\n""#,
    );
    assert_result(&r["banner"], "up", None, "");
    assert_result(
        &r["banner-wrong"],
        "down",
        Some("assertion"),
        "expected \"220 \"",
    );
    for result in r.values() {
        assert_eq!(result["kind"], "tcp");
    }
}

/// A real client waits for the rest of an answer however long the peer pauses (within its
/// timeout); a peer that said something else and keeps the connection open fails as
/// `assertion` at the timeout; a peer that never stops talking is read only so far.
#[tokio::test(flavor = "multi_thread")]
async fn expect_waits_for_a_late_answer_until_the_timeout() {
    let pause = Duration::from_millis(1500);
    let slow = tcp::drip(&[
        (Duration::ZERO, "220-mail.test greets you\r\n"),
        (pause, "220 ready\r\n"),
    ])
    .await;
    let wrong = tcp::drip(&[(Duration::ZERO, "-ERR busy\r\n")]).await;
    let flood = tcp::flood("x").await;
    let config = TestConfig::new();
    let probe = |name: &str, addr: std::net::SocketAddr, extra: &str| {
        tcp_probe(name, &addr.to_string(), extra).replace("timeout = \"5s\"", "timeout = \"4s\"")
    };
    let probes = [
        probe("late", slow.addr, "expect = \"220 ready\""),
        probe("wrong-open", wrong.addr, "expect = \"+OK\""),
        probe("flood", flood.addr, "expect = \"+OK\""),
    ]
    .concat();
    config.probes("tcp.toml", &probes);
    let (_, json) = config.check_json(&[]).await;
    let r = results_by_name(&json);
    assert_result(&r["late"], "up", None, "");
    let late_ms = r["late"]["latency_ms"].as_f64().expect("latency");
    assert!(
        late_ms >= 1500.0,
        "the answer came after the pause: {late_ms} ms"
    );
    assert_result(
        &r["wrong-open"],
        "down",
        Some("assertion"),
        r#"expected "+OK", received "-ERR busy\r\n" and nothing more within 4s"#,
    );
    let wrong_ms = r["wrong-open"]["latency_ms"].as_f64().expect("latency");
    assert!(
        (3900.0..5000.0).contains(&wrong_ms),
        "judged at the timeout: {wrong_ms} ms"
    );
    assert_result(
        &r["flood"],
        "down",
        Some("assertion"),
        "not in the first 64 KiB",
    );
    let flood_ms = r["flood"]["latency_ms"].as_f64().expect("latency");
    assert!(
        flood_ms < 3000.0,
        "judged without waiting for the timeout: {flood_ms} ms"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_handshake_reports_certificate_expiry() {
    let expiring = tcp::pong_tls(tls::expiring_soon().server_config()).await;
    let plaintext = tcp::pong().await;
    let config = TestConfig::new();
    let probes = [
        tcp_probe(
            "tls-ping",
            &expiring.addr.to_string(),
            "tls = true\ntls_verify = false\nsend = \"PING\\r\\n\"\nexpect = \"+PONG\"",
        ),
        tcp_probe("tls-verified", &expiring.addr.to_string(), "tls = true"),
        tcp_probe(
            "tls-to-plaintext",
            &plaintext.addr.to_string(),
            "tls = true\ntls_verify = false",
        ),
    ]
    .concat();
    config.probes("tls.toml", &probes);
    let (_, json) = config.check_json(&[]).await;
    let r = results_by_name(&json);
    assert_result(&r["tls-ping"], "up", None, "");
    let days = r["tls-ping"]["cert_days_left"].as_i64().expect("days");
    assert!((2..=3).contains(&days), "{days}");
    assert_eq!(r["tls-ping"]["cert_expiring"], true);
    assert_result(&r["tls-verified"], "down", Some("tls"), "");
    assert_result(&r["tls-to-plaintext"], "down", Some("tls"), "");
}

#[tokio::test(flavor = "multi_thread")]
async fn ipv6_addresses_work() {
    let Ok(listener) = tokio::net::TcpListener::bind("[::1]:0").await else {
        eprintln!("skipped: no ::1 on this host");
        return;
    };
    drop(listener);
    let server = tcp::start(tcp::Behavior::Pong, None, true).await;
    let config = TestConfig::new();
    let address = format!("[::1]:{}", server.port());
    let result = config
        .check_one(&tcp_probe(
            "v6",
            &address,
            "send = \"PING\\r\\n\"\nexpect = \"+PONG\"",
        ))
        .await;
    assert_result(&result, "up", None, "");
}

#[tokio::test(flavor = "multi_thread")]
async fn check_selects_probes_by_name_and_prints_a_table() {
    let pong = tcp::pong().await;
    let refused = tcp::refused_addr();
    let config = TestConfig::new();
    config.probes(
        "tcp.toml",
        &[
            tcp_probe("alpha", &pong.addr.to_string(), ""),
            tcp_probe("beta", &refused.to_string(), ""),
            tcp_probe("gamma", &pong.addr.to_string(), "enabled = false"),
        ]
        .concat(),
    );
    // Only the named probe runs; a disabled probe runs when named.
    let (output, json) = config.check_json(&["alpha", "gamma"]).await;
    assert_eq!(output.code, 0, "{}", output.stderr);
    let names: Vec<_> = json["probes"]
        .as_array()
        .expect("array")
        .iter()
        .map(|p| p["name"].clone())
        .collect();
    assert_eq!(names, ["alpha", "gamma"]);
    // By default every enabled probe runs, and a down one makes the exit code 1.
    let table = crate::support::upledger()
        .arg("--config")
        .arg(config.main_path())
        .arg("check")
        .run()
        .await;
    assert_eq!(table.code, 1);
    let lines: Vec<&str> = table.stdout.lines().collect();
    assert!(lines[0].starts_with("PROBE"), "{}", table.stdout);
    assert!(table.stdout.contains("alpha") && table.stdout.contains("beta"));
    assert!(
        !table.stdout.contains("gamma"),
        "disabled probes are skipped"
    );
    assert!(table.stdout.contains("connect: "), "{}", table.stdout);
    // An unknown name is a usage error.
    let output = crate::support::upledger()
        .arg("--config")
        .arg(config.main_path())
        .args(["check", "nope"])
        .run()
        .await;
    assert_eq!(output.code, 2);
    assert!(
        output.stderr.contains("no probe is named \"nope\""),
        "{}",
        output.stderr
    );
}
