//! `upledger check` with DNS probes (and `dns_server` on TCP/HTTP probes) against a real DNS
//! server (hickory-server) on 127.0.0.1, over UDP and TCP.

use std::net::IpAddr;

use crate::support::{
    TestConfig, assert_result,
    dns::{RawDns, RawReply, Silent, TestDns, closed_tcp_port, wire},
    results_by_name, tcp,
};

/// A DNS probe named `name` in TOML.
fn dns_probe(
    name: &str,
    server: impl std::fmt::Display,
    protocol: &str,
    query: &str,
    record: &str,
    extra: &str,
) -> String {
    format!(
        "[[probe]]\nname = \"{name}\"\nkind = \"dns\"\nquery = \"{query}\"\nrecord = \"{record}\"\n\
         server = \"{server}\"\nprotocol = \"{protocol}\"\ntimeout = \"2s\"\n{extra}\n\n"
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn every_record_type_over_udp_and_tcp() {
    let dns = TestDns::builder("test.")
        .ptr(IpAddr::from([127, 0, 0, 127]), "api")
        .start()
        .await;
    let cases: &[(&str, &str, &str)] = &[
        ("www.test", "A", r#"["127.0.0.1"]"#),
        ("v6.test", "AAAA", r#"["::1"]"#),
        ("alias.test", "CNAME", r#"["www.test."]"#),
        ("alias.test", "A", r#"["127.0.0.1"]"#),
        ("test", "MX", r#"["10 mail.test"]"#),
        ("test", "MX", r#"["mail.test."]"#),
        ("test", "TXT", r#"["v=spf1 -all"]"#),
        ("test", "NS", r#"["ns1.test"]"#),
        ("test", "SOA", r#"["ns1.test"]"#),
        ("_http._tcp.test", "SRV", r#"["0 5 80 www.test"]"#),
        ("test", "CAA", r#"['0 issue "ca.test"']"#),
        ("test", "CAA", r#"["ca.test"]"#),
        ("127.0.0.1", "PTR", r#"["www.test"]"#),
        // 127.0.0.127 reads the same reversed (its PTR is added below).
        ("127.0.0.127.in-addr.arpa", "PTR", r#"["api.test."]"#),
        ("::1", "PTR", r#"["v6.test"]"#),
        ("www.test", "A", "[]"),
    ];
    let config = TestConfig::new();
    let mut toml = String::new();
    for (i, (query, record, expect)) in cases.iter().enumerate() {
        for protocol in ["udp", "tcp"] {
            let name = format!("case{i}-{protocol}");
            toml += &dns_probe(
                &name,
                dns.addr,
                protocol,
                query,
                record,
                &format!("expect = {expect}"),
            );
        }
    }
    config.probes("dns.toml", &toml);
    let (output, json) = config.check_json(&[]).await;
    assert_eq!(output.code, 0, "{}", output.stdout);
    let results = results_by_name(&json);
    assert_eq!(results.len(), cases.len() * 2);
    for (name, result) in &results {
        assert_result(result, "up", None, "");
        assert_eq!(result["kind"], "dns", "{name}");
        assert!(
            result["latency_ms"].as_f64().is_some_and(|l| l > 0.0),
            "{name}: {result}"
        );
        assert!(result.get("cert_days_left").is_none(), "{name}: {result}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn failures_have_the_right_class() {
    let dns = TestDns::builder("test.")
        .record("multi A 127.0.0.2")
        .start()
        .await;
    let silent = Silent::bind().await;
    let closed = closed_tcp_port().await;
    let config = TestConfig::new();
    let probes = [
        dns_probe("nxdomain", dns.addr, "udp", "missing.test", "A", ""),
        dns_probe(
            "nxdomain-wanted",
            dns.addr,
            "udp",
            "missing.test",
            "A",
            "expect_rcode = \"NXDOMAIN\"",
        ),
        dns_probe(
            "nxdomain-wanted-exists",
            dns.addr,
            "tcp",
            "www.test",
            "A",
            "expect_rcode = \"NXDOMAIN\"",
        ),
        dns_probe(
            "wrong-answer",
            dns.addr,
            "udp",
            "www.test",
            "A",
            "expect = [\"192.0.2.9\"]",
        ),
        dns_probe(
            "one-missing",
            dns.addr,
            "udp",
            "multi.test",
            "A",
            "expect = [\"127.0.0.2\", \"192.0.2.9\"]",
        ),
        dns_probe("no-records", dns.addr, "udp", "www.test", "AAAA", ""),
        dns_probe(
            "no-records-expected",
            dns.addr,
            "udp",
            "www.test",
            "AAAA",
            "expect = [\"::1\"]",
        ),
        dns_probe("refused", dns.addr, "udp", "www.example", "A", ""),
        dns_probe(
            "silent",
            silent.addr,
            "udp",
            "www.test",
            "A",
            "timeout = \"500ms\"",
        )
        .replace("timeout = \"2s\"\n", ""),
        dns_probe("closed", closed, "tcp", "www.test", "A", ""),
    ]
    .concat();
    config.probes("dns.toml", &probes);
    let started = std::time::Instant::now();
    let (output, json) = config.check_json(&[]).await;
    assert_eq!(output.code, 1, "some are down: {}", output.stdout);
    let r = results_by_name(&json);
    assert_result(
        &r["nxdomain"],
        "down",
        Some("dns"),
        "missing.test does not resolve: NXDOMAIN",
    );
    assert_result(&r["nxdomain-wanted"], "up", None, "");
    assert_result(
        &r["nxdomain-wanted-exists"],
        "down",
        Some("assertion"),
        "expected NXDOMAIN for www.test A, got NOERROR",
    );
    assert_result(
        &r["wrong-answer"],
        "down",
        Some("assertion"),
        "expected 192.0.2.9, got 127.0.0.1",
    );
    assert_result(
        &r["one-missing"],
        "down",
        Some("assertion"),
        "expected 192.0.2.9",
    );
    assert_result(
        &r["no-records"],
        "down",
        Some("dns"),
        "www.test has no AAAA records",
    );
    assert_result(
        &r["no-records-expected"],
        "down",
        Some("assertion"),
        "expected ::1, got no AAAA records",
    );
    assert_result(&r["refused"], "down", Some("dns"), "REFUSED");
    assert_result(&r["silent"], "down", Some("timeout"), "");
    assert_result(&r["closed"], "down", Some("connect"), "");
    let silent_ms = r["silent"]["latency_ms"].as_f64().expect("latency");
    assert!(
        (450.0..1500.0).contains(&silent_ms),
        "timeout honoured: {silent_ms} ms"
    );
    // Checks run concurrently: the whole run is not the sum of the timeouts.
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_truncated_udp_answer_is_asked_again_over_tcp() {
    let chunk = "x".repeat(200);
    let mut builder = TestDns::builder("test.");
    for i in 0..10 {
        builder = builder.record(&format!("big TXT \"{i}{chunk}\""));
    }
    let dns = builder.start().await;
    let config = TestConfig::new();
    let extra = format!("expect = [\"9{chunk}\", \"0{chunk}\"]");
    let result = config
        .check_one(&dns_probe(
            "big", dns.addr, "udp", "big.test", "TXT", &extra,
        ))
        .await;
    assert_result(&result, "up", None, "");
}

#[tokio::test(flavor = "multi_thread")]
async fn tcp_and_http_probes_resolve_names_through_dns_server() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dns = TestDns::start("test.").await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                let _ = stream.read(&mut buf).await;
                let _ = stream
                    .write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
                    )
                    .await;
            });
        }
    });
    let config = TestConfig::new();
    let server = dns.addr;
    config.probes(
        "named.toml",
        &format!(
            r#"
[[probe]]
name = "tcp-named"
kind = "tcp"
address = "www.test:{port}"
dns_server = "{server}"
timeout = "2s"

[[probe]]
name = "tcp-missing"
kind = "tcp"
address = "missing.test:{port}"
dns_server = "{server}"
timeout = "2s"

[[probe]]
name = "http-named"
kind = "http"
url = "http://www.test:{port}/"
dns_server = "{server}"
body_contains = "ok"
timeout = "2s"

[[probe]]
name = "http-missing"
kind = "http"
url = "http://missing.test:{port}/"
dns_server = "{server}"
timeout = "2s"
"#
        ),
    );
    let (_, json) = config.check_json(&[]).await;
    let r = results_by_name(&json);
    assert_result(&r["tcp-named"], "up", None, "");
    assert_result(&r["http-named"], "up", None, "");
    assert_result(
        &r["tcp-missing"],
        "down",
        Some("dns"),
        "missing.test does not resolve: NXDOMAIN",
    );
    assert_result(
        &r["http-missing"],
        "down",
        Some("dns"),
        "missing.test does not resolve: NXDOMAIN",
    );
}

/// Odd replies real servers send, judged as a stub resolver (glibc) judges them: records owned
/// by another name than the question (and not reached through its CNAME chain) or of another
/// class than IN answer nothing; a header-only REFUSED is read for its rcode.
#[tokio::test(flavor = "multi_thread")]
async fn odd_replies_are_judged_as_a_stub_resolver_would() {
    let stray =
        RawDns::start(RawReply::new(wire::NOERROR).a("other.test", wire::IN, [127, 0, 0, 1])).await;
    let chaos =
        RawDns::start(RawReply::new(wire::NOERROR).a("www.test", wire::CH, [127, 0, 0, 1])).await;
    let chained = RawDns::start(
        RawReply::new(wire::NOERROR)
            .a("www.test", wire::IN, [127, 0, 0, 1])
            .cname("alias.test", "www.test"),
    )
    .await;
    let refused = RawDns::start(RawReply::new(wire::REFUSED).without_question()).await;
    // Something to connect to, so a TCP probe that wrongly took the stray address passes.
    let peer = tcp::hang().await;
    let port = peer.port();
    let config = TestConfig::new();
    let expect_one = r#"expect = ["127.0.0.1"]"#;
    let tcp_probe = |name: &str, server: std::net::SocketAddr| {
        format!(
            "[[probe]]\nname = \"{name}\"\nkind = \"tcp\"\naddress = \"www.test:{port}\"\n\
             dns_server = \"{server}\"\ntimeout = \"2s\"\n\n"
        )
    };
    let probes = [
        dns_probe("stray", stray.addr, "udp", "www.test", "A", expect_one),
        dns_probe("stray-plain", stray.addr, "udp", "www.test", "A", ""),
        dns_probe("chaos", chaos.addr, "udp", "www.test", "A", expect_one),
        dns_probe(
            "chained",
            chained.addr,
            "udp",
            "alias.test",
            "A",
            expect_one,
        ),
        dns_probe(
            "refused-wanted",
            refused.addr,
            "udp",
            "www.test",
            "A",
            "expect_rcode = \"REFUSED\"",
        ),
        dns_probe("refused", refused.addr, "udp", "www.test", "A", ""),
        tcp_probe("tcp-stray", stray.addr),
        tcp_probe("tcp-refused", refused.addr),
    ]
    .concat();
    config.probes("odd.toml", &probes);
    let (_, json) = config.check_json(&[]).await;
    let r = results_by_name(&json);
    assert_result(
        &r["stray"],
        "down",
        Some("assertion"),
        "expected 127.0.0.1, got no A records",
    );
    assert_result(
        &r["stray-plain"],
        "down",
        Some("dns"),
        "www.test has no A records",
    );
    assert_result(
        &r["chaos"],
        "down",
        Some("assertion"),
        "expected 127.0.0.1, got no A records",
    );
    assert_result(&r["chained"], "up", None, "");
    assert_result(&r["refused-wanted"], "up", None, "");
    assert_result(
        &r["refused"],
        "down",
        Some("dns"),
        "www.test does not resolve: REFUSED",
    );
    assert_result(
        &r["tcp-stray"],
        "down",
        Some("dns"),
        "www.test does not resolve: no A or AAAA records",
    );
    assert_result(
        &r["tcp-refused"],
        "down",
        Some("dns"),
        "www.test does not resolve: REFUSED",
    );
    assert_eq!(peer.connections(), 0, "no probe took a stray address");
}
