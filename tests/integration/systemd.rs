//! The shipped systemd units pass `systemd-analyze verify` (with the binary path pointed at the
//! build), and declare what SPEC §7 requires. The Debian package's unit is the manual install's
//! but for the binary's path, and its configuration validates with the unit's folders.

use std::process::Command;

use crate::support::repo_root;

/// Writes `unit` (a path in the repository) with its binary path replaced by the compiled
/// binary, and verifies it.
fn verify(unit: &str, binary_placeholder: &str, user: bool) {
    let text = std::fs::read_to_string(repo_root().join(unit)).expect("unit");
    assert!(
        text.contains(&format!("ExecStart={binary_placeholder} ")),
        "{unit} runs the binary from where the README's install puts it: {binary_placeholder}"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join(
        std::path::Path::new(unit)
            .file_name()
            .expect("a unit file name"),
    );
    std::fs::write(
        &path,
        text.replace(binary_placeholder, env!("CARGO_BIN_EXE_upledger")),
    )
    .expect("write");
    let runtime = dir.path().join("run");
    std::fs::create_dir(&runtime).expect("runtime dir");
    let mut command = Command::new("systemd-analyze");
    if user {
        command.arg("--user").env("XDG_RUNTIME_DIR", &runtime);
    }
    let output = command.arg("verify").arg(&path).output().expect(
        "systemd-analyze is needed for this test (Debian package systemd; .ci/run installs it)",
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stderr.trim().is_empty(),
        "{unit}: {stderr}"
    );
}

#[test]
fn the_system_unit_verifies() {
    verify("systemd/upledger.service", "/usr/local/bin/upledger", false);
}

#[test]
fn the_user_unit_verifies() {
    verify(
        "systemd/upledger-user.service",
        "%h/.cargo/bin/upledger",
        true,
    );
}

#[test]
fn units_are_notify_services_with_reload_and_sandboxing() {
    for unit in [
        "systemd/upledger.service",
        "systemd/upledger-user.service",
        "debian/upledger.service",
    ] {
        let text = std::fs::read_to_string(repo_root().join(unit)).expect("unit");
        for line in [
            "Type=notify",
            "ExecReload=/bin/kill -HUP $MAINPID",
            "WatchdogSec=",
            "StateDirectory=upledger",
            "RuntimeDirectory=upledger",
            "NoNewPrivileges=yes",
            "ProtectSystem=strict",
            "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
            "SystemCallFilter=@system-service",
        ] {
            assert!(text.contains(line), "{unit} lacks {line}");
        }
    }
    let system =
        std::fs::read_to_string(repo_root().join("systemd/upledger.service")).expect("unit");
    assert!(system.contains("DynamicUser=yes"));
}

#[test]
fn the_packaged_unit_verifies() {
    verify("debian/upledger.service", "/usr/bin/upledger", false);
}

/// The unit without its leading comments (how to install it differs; the rest may not).
fn body(unit: &str) -> String {
    let text = std::fs::read_to_string(repo_root().join(unit)).expect("unit");
    let start = text.find("\n[Unit]").expect("a [Unit] section");
    text[start..].to_owned()
}

#[test]
fn the_packaged_unit_is_the_manual_one_but_for_the_binary() {
    let manual = body("systemd/upledger.service").replace(
        "ExecStart=/usr/local/bin/upledger ",
        "ExecStart=/usr/bin/upledger ",
    );
    assert_eq!(
        body("debian/upledger.service"),
        manual,
        "debian/upledger.service differs from systemd/upledger.service beyond ExecStart"
    );
}

#[tokio::test]
async fn the_packaged_configuration_validates_and_uses_the_units_folders() {
    let main = repo_root().join("debian/upledger.toml");
    let output = crate::support::upledger()
        .arg("--config")
        .arg(&main)
        .arg("validate")
        .run()
        .await;
    assert_eq!(output.code, 0, "{}\n{}", output.stdout, output.stderr);
    let text = std::fs::read_to_string(&main).expect("config");
    // StateDirectory=upledger and RuntimeDirectory=upledger of the unit.
    assert!(text.contains("ledger     = \"/var/lib/upledger/ledger\""));
    assert!(text.contains("socket     = \"/run/upledger/upledger.sock\""));
    let unit = body("debian/upledger.service");
    assert!(unit.contains("ExecStart=/usr/bin/upledger run --config /etc/upledger/upledger.toml"));
}
