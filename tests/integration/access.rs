//! Read and admin access through the admin socket (issue 19 item 1): a member of
//! `[daemon].socket_group` may run `status`, but `exclude` and `import` are refused with a
//! message naming the class and what would allow it; an exclusion made as root records
//! `root`; the ledger is private (0700/0600) whatever the umask.
//!
//! Needs root (to create a user and run the CLI as it): without it the test says so and
//! passes without running.

use std::{os::unix::fs::PermissionsExt, path::Path, process::Stdio};

use crate::support::{Output, TestConfig, daemon::Daemon};

/// A user and group only this test uses.
const NAME: &str = "upl-access-test";

fn run(program: &str, args: &[&str]) -> std::process::Output {
    std::process::Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"))
}

/// Creates the group and a user in it (no home, no shell), unless they exist.
fn ensure_user() {
    if !run("getent", &["group", NAME]).status.success() {
        let made = run("groupadd", &[NAME]);
        assert!(made.status.success(), "groupadd: {made:?}");
    }
    if !run("id", &[NAME]).status.success() {
        let made = run(
            "useradd",
            &[
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                "--gid",
                NAME,
                NAME,
            ],
        );
        assert!(made.status.success(), "useradd: {made:?}");
    }
}

/// Runs the CLI as the test's user.
async fn as_user(config: &Path, args: &[&str]) -> Output {
    let output = tokio::process::Command::new("runuser")
        .args(["-u", NAME, "--", env!("CARGO_BIN_EXE_upledger"), "--config"])
        .arg(config)
        .args(args)
        .env("UPLEDGER_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .await
        .expect("runuser");
    Output {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .expect("metadata")
        .permissions()
        .mode()
        & 0o777
}

#[tokio::test]
async fn a_socket_group_member_may_read_but_not_change_and_root_is_recorded() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: needs root to create a user and run upledger as it");
        return;
    }
    ensure_user();
    let config = TestConfig::new();
    config.main(&format!(
        "[daemon]\nledger = \"data/ledger\"\nsocket = \"data/upledger.sock\"\nsocket_group = \"{NAME}\"\n"
    ));
    config.probes(
        "p.toml",
        "[[probe]]\nname = \"web\"\nkind = \"tcp\"\naddress = \"127.0.0.1:9\"\ninterval = \"1h\"\n",
    );
    // The test's user reads the configuration (the CLI finds the socket there).
    std::fs::set_permissions(config.dir(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let daemon = Daemon::start(&config.main_path()).await;

    let status = as_user(&config.main_path(), &["status", "--json"]).await;
    assert!(
        status.code <= 1,
        "status as a socket_group member: {status:?}"
    );
    assert_eq!(status.json()["daemon_running"], true, "{status:?}");

    let exclude = as_user(
        &config.main_path(),
        &[
            "exclude", "--probe", "web", "--from", "2h", "--to", "1h", "--reason", "test",
        ],
    )
    .await;
    assert_eq!(exclude.code, 2, "{exclude:?}");
    assert!(
        exclude.stderr.contains("refused: this is an admin request")
            && exclude.stderr.contains("[daemon].admin_group")
            && exclude.stderr.contains(NAME),
        "{exclude:?}"
    );

    let input = config.dir().join("import.jsonl");
    std::fs::write(&input, "").expect("write");
    std::fs::set_permissions(&input, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let import = as_user(
        &config.main_path(),
        &["import", input.to_str().expect("utf-8")],
    )
    .await;
    assert_eq!(import.code, 2, "{import:?}");
    assert!(
        import.stderr.contains("refused: this is an admin request"),
        "{import:?}"
    );

    let excluded = daemon
        .cli(&[
            "exclude",
            "--probe",
            "web",
            "--from",
            "2h",
            "--to",
            "1h",
            "--reason",
            "carrier outage",
        ])
        .await;
    assert_eq!(excluded.code, 0, "{excluded:?}");
    let listed = daemon.cli(&["exclusions"]).await;
    assert!(
        listed.stdout.contains("root (uid 0)"),
        "exclusions: {}",
        listed.stdout
    );
    let listed = daemon.cli(&["exclusions", "--json"]).await;
    assert_eq!(
        listed.json()[0]["recorded_by"],
        "root (uid 0)",
        "{listed:?}"
    );
    let history = daemon.cli(&["history", "web", "--since", "3h"]).await;
    assert!(
        history.stdout.contains("by root (uid 0): carrier outage"),
        "history: {}",
        history.stdout
    );

    // An import made as root is on record with its user: in history and in the report.
    let now = jiff::Timestamp::now();
    let ago = |minutes: i64| {
        now.checked_sub(jiff::SignedDuration::from_mins(minutes))
            .expect("a time")
    };
    // Both at the start of the exclusion, so the report of that month shows both.
    let lines: String = [ago(120), ago(120) + jiff::SignedDuration::from_secs(10)]
        .iter()
        .map(|at| {
            format!("{{\"probe\":\"web\",\"at\":\"{at}\",\"outcome\":\"up\",\"latency_ms\":1.5}}\n")
        })
        .collect();
    std::fs::write(&input, lines).expect("write");
    let imported = daemon
        .cli(&["import", input.to_str().expect("utf-8")])
        .await;
    assert_eq!(imported.code, 0, "{imported:?}");
    let history = daemon.cli(&["history", "web", "--since", "3h"]).await;
    assert!(
        history.stdout.contains("by root (uid 0): 2 results of web"),
        "history: {}",
        history.stdout
    );
    let month = ago(120).strftime("%Y-%m").to_string();
    let report = daemon
        .cli(&["report", "--month", &month, "--format", "json"])
        .await;
    let report = report.json();
    assert_eq!(
        report["probes"][0]["exclusions"][0]["recorded_by"], "root (uid 0)",
        "{report:#}"
    );
    let imports = &report["imports"];
    assert_eq!(imports[0]["by"]["name"], "root", "{report:#}");
    assert_eq!(imports[0]["results"], 2, "{report:#}");

    let ledger = config.dir().join("data/ledger");
    assert_eq!(mode(&ledger), 0o700, "the ledger directory");
    for entry in std::fs::read_dir(&ledger).expect("ledger") {
        let path = entry.expect("entry").path();
        if path.is_file() {
            assert_eq!(mode(&path), 0o600, "{}", path.display());
        }
    }
    daemon.terminate().await;
}
