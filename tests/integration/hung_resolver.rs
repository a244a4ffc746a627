//! A system resolver that never answers (no `dns_server` on the probe): the check ends at its
//! timeout as `dns`, and neither `check` nor the daemon's SIGTERM waits for the stuck
//! getaddrinfo thread. Runs the binary in a private mount namespace whose resolver is a silent
//! loopback socket (see `support::dns::HungResolver`); skipped where that is not possible.

use std::{
    ffi::OsStr,
    time::{Duration, Instant},
};

use crate::support::{TestConfig, assert_result, dns::HungResolver};

/// A TCP probe of a made-up name (not in /etc/hosts) that only the system resolver can look up.
fn probe(interval: &str) -> String {
    format!(
        "[[probe]]\nname = \"hung\"\nkind = \"tcp\"\naddress = \"nowhere.upledger-hung.test:80\"\n\
         timeout = \"2s\"\ninterval = \"{interval}\"\n"
    )
}

/// The same name behind an HTTP probe (a fresh connection per check).
const HTTP_PROBE: &str = "[[probe]]\nname = \"hung-web\"\nkind = \"http\"\n\
    url = \"http://nowhere.upledger-hung.test/\"\ntimeout = \"2s\"\ninterval = \"60s\"\n";

#[tokio::test(flavor = "multi_thread")]
async fn check_ends_at_the_timeout_as_dns() {
    let Some(resolver) = HungResolver::start().await else {
        return;
    };
    let config = TestConfig::new();
    config.probes("hung.toml", &format!("{}\n{HTTP_PROBE}", probe("60s")));
    let main = config.main_path();
    let args = [
        OsStr::new("--config"),
        main.as_os_str(),
        OsStr::new("check"),
        OsStr::new("--json"),
    ];
    let started = Instant::now();
    let output = tokio::time::timeout(Duration::from_secs(30), resolver.command(&args).output())
        .await
        .expect("check waited for the hung resolver")
        .expect("run upledger in a mount namespace");
    let elapsed = started.elapsed();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        resolver.queries() > 0,
        "the lookup reached the fake resolver"
    );
    let json: serde_json::Value = serde_json::from_str(&stdout).expect("JSON");
    for name in ["hung", "hung-web"] {
        let result = json["probes"]
            .as_array()
            .expect("probes")
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("no result for {name}: {json:#}"));
        assert_result(
            result,
            "down",
            Some("dns"),
            "cannot resolve nowhere.upledger-hung.test: no answer from the system resolver within 2s",
        );
        let latency = result["latency_ms"].as_f64().expect("latency");
        assert!((1900.0..3000.0).contains(&latency), "{name}: {latency} ms");
    }
    assert!(
        elapsed < Duration::from_secs(5),
        "check exits at the timeout, not after the lookup: {elapsed:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_daemon_stops_promptly_with_a_lookup_hanging() {
    let Some(resolver) = HungResolver::start().await else {
        return;
    };
    let config = TestConfig::new();
    config.probes("hung.toml", &probe("3s"));
    let main = config.main_path();
    let args = [OsStr::new("--config"), main.as_os_str(), OsStr::new("run")];
    let mut daemon = resolver.command(&args).spawn().expect("start the daemon");
    resolver.wait_for_query(Duration::from_secs(20)).await;
    let pid = daemon.id().expect("running");
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let started = Instant::now();
    let exited = tokio::time::timeout(Duration::from_secs(30), daemon.wait())
        .await
        .expect("the daemon waited for the hung resolver")
        .expect("wait");
    let elapsed = started.elapsed();
    assert_eq!(exited.code(), Some(0), "clean stop");
    // The check in flight ends at its 2 s timeout; then nothing may wait for getaddrinfo.
    assert!(
        elapsed < Duration::from_secs(4),
        "the daemon stops promptly: {elapsed:?}"
    );
}
