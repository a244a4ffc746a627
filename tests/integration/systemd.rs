//! The shipped systemd units pass `systemd-analyze verify` (with the binary path pointed at the
//! build), and declare what SPEC §7 requires.

use std::process::Command;

use crate::support::repo_root;

/// Writes `unit` with its binary path replaced by the compiled binary, and verifies it.
fn verify(unit: &str, binary_placeholder: &str, user: bool) {
    let text = std::fs::read_to_string(repo_root().join("systemd").join(unit)).expect("unit");
    assert!(
        text.contains(&format!("ExecStart={binary_placeholder} ")),
        "{unit} runs the binary from where the README's install puts it: {binary_placeholder}"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join(unit);
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
    verify("upledger.service", "/usr/local/bin/upledger", false);
}

#[test]
fn the_user_unit_verifies() {
    verify("upledger-user.service", "%h/.cargo/bin/upledger", true);
}

#[test]
fn units_are_notify_services_with_reload_and_sandboxing() {
    for unit in ["upledger.service", "upledger-user.service"] {
        let text = std::fs::read_to_string(repo_root().join("systemd").join(unit)).expect("unit");
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
