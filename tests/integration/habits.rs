//! The habits of the tools a sysadmin knows: tab completion, `man upledger`, a starter
//! configuration — generated from the same definitions as the parser, tried in a real bash
//! and a real `man`.

use crate::support::upledger;

#[tokio::test]
async fn bash_completes_rep_to_report() {
    let script = upledger().args(["completions", "bash"]).run().await;
    assert_eq!(script.code, 0, "{}", script.stderr);
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("upledger.bash");
    std::fs::write(&path, &script.stdout).expect("write");
    // What bash does on `upledger rep<TAB>`: the completion function with the words so far.
    let driver = format!(
        "source '{}'\nCOMP_WORDS=(upledger rep)\nCOMP_CWORD=1\nCOMP_LINE='upledger rep'\n\
         COMP_POINT=${{#COMP_LINE}}\n_upledger upledger rep upledger\n\
         printf '%s\\n' \"${{COMPREPLY[@]}}\"\n",
        path.display()
    );
    let output = tokio::process::Command::new("bash")
        .args(["--norc", "--noprofile", "-c", &driver])
        .output()
        .await
        .expect("bash");
    let words: Vec<String> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(
        words,
        vec!["report".to_owned()],
        "stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test]
async fn the_man_page_renders_without_warnings() {
    let page = upledger().arg("man").run().await;
    assert_eq!(page.code, 0, "{}", page.stderr);
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("upledger.1");
    std::fs::write(&path, &page.stdout).expect("write");
    let output = tokio::process::Command::new("man")
        .args(["--warnings", "-l"])
        .arg(&path)
        .env("MANWIDTH", "80")
        .output()
        .await
        .expect("man (Debian package man-db; .ci/run installs it)");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stderr.trim().is_empty(),
        "{stderr}"
    );
    let text = String::from_utf8_lossy(&output.stdout);
    for expected in ["upledger", "report", "completions", "--config"] {
        assert!(text.contains(expected), "{expected} in:\n{text}");
    }
}

#[tokio::test]
async fn init_writes_a_configuration_that_validates_and_never_overwrites() {
    let dir = tempfile::tempdir().expect("dir");
    let target = dir.path().join("new");
    let init = upledger().arg("init").arg(&target).run().await;
    assert_eq!(init.code, 0, "{}", init.stderr);
    let main = target.join("upledger.toml");
    let validate = upledger()
        .arg("--config")
        .arg(&main)
        .arg("validate")
        .run()
        .await;
    assert_eq!(validate.code, 0, "{}{}", validate.stdout, validate.stderr);
    let again = upledger().arg("init").arg(&target).run().await;
    assert_eq!(again.code, 2);
    assert!(again.stderr.contains("exists"), "{}", again.stderr);

    // Every commented example, uncommented as written, validates too: a user copies them.
    let probes = target.join("probes.d/probes.toml");
    let text = std::fs::read_to_string(&probes).expect("the probes file");
    let uncommented: String = text
        .lines()
        .map(|line| match line.strip_prefix("# ") {
            Some(rest)
                if rest.starts_with("[[probe]]")
                    || rest.split_once(" =").is_some_and(|(key, _)| {
                        key.trim()
                            .chars()
                            .all(|c| c.is_ascii_lowercase() || c == '_')
                    }) =>
            {
                rest.to_owned()
            }
            _ => line.to_owned(),
        })
        .map(|line| line + "\n")
        .collect();
    assert!(
        uncommented.matches("[[probe]]").count() >= 4,
        "{uncommented}"
    );
    std::fs::write(&probes, uncommented).expect("the uncommented probes");
    let validate = upledger()
        .arg("--config")
        .arg(&main)
        .arg("validate")
        .run()
        .await;
    assert_eq!(validate.code, 0, "{}{}", validate.stdout, validate.stderr);
}

/// A TCP probe checked every second.
fn tcp_probe(name: &str, address: std::net::SocketAddr) -> String {
    format!(
        "[[probe]]\nname = \"{name}\"\nkind = \"tcp\"\naddress = \"{address}\"\n\
         interval = \"1s\"\ntimeout = \"500ms\"\n"
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn reload_says_whether_the_daemon_took_the_configuration() {
    let target = crate::support::tcp::pong().await;
    let config = crate::support::TestConfig::new();
    config.probes("a.toml", &tcp_probe("a", target.addr));
    // No daemon yet: nothing to reload.
    let alone = config.cli(&["reload"]).await;
    assert_eq!(alone.code, 2);
    assert!(
        alone.stderr.contains("no daemon answers"),
        "{}",
        alone.stderr
    );
    let daemon = crate::support::daemon::Daemon::start(&config.main_path()).await;
    config.probes("b.toml", &tcp_probe("b", target.addr));
    let taken = daemon.cli(&["reload"]).await;
    assert_eq!(taken.code, 0, "{}", taken.stderr);
    assert!(taken.stdout.contains("2 probes"), "{}", taken.stdout);
    // A broken probe file: the located problem, exit 2, and the daemon keeps both probes.
    config.probes(
        "c.toml",
        "[[probe]]\nname = \"c\"\nkind = \"tcp\"\nadress = \"127.0.0.1:1\"\n",
    );
    let refused = daemon.cli(&["reload"]).await;
    assert_eq!(refused.code, 2, "{}", refused.stdout);
    assert!(
        refused.stderr.contains("probes.d/c.toml:4:1") && refused.stderr.contains("adress"),
        "{}",
        refused.stderr
    );
    assert!(refused.stderr.contains("keeps its running configuration"));
    let status = daemon.cli(&["status", "--json"]).await.json();
    let names = crate::support::names(&status["probes"]);
    assert_eq!(names, vec!["a", "b"]);
    assert_eq!(daemon.terminate().await, 0);
}

/// Runs `shell` under `script`, which gives it a terminal; returns what the terminal showed.
async fn on_a_terminal(shell: &str) -> String {
    let output = tokio::process::Command::new("script")
        .args(["-qec", shell, "/dev/null"])
        .output()
        .await
        .expect("script (util-linux)");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn progress_shows_on_a_terminal_only() {
    let config = crate::support::TestConfig::new();
    config.probes(
        "a.toml",
        "[[probe]]\nname = \"a\"\nkind = \"tcp\"\naddress = \"127.0.0.1:9\"\n",
    );
    let lines: String = (0..20_000)
        .map(|i| {
            let at = jiff::Timestamp::from_second(1_764_547_200 + i).expect("time");
            format!("{{\"probe\":\"a\",\"at\":\"{at}\",\"outcome\":\"up\",\"latency_ms\":1.0}}\n")
        })
        .collect();
    let input = config.dir().join("in.jsonl");
    std::fs::write(&input, lines).expect("write");
    let daemon = crate::support::daemon::Daemon::start(&config.main_path()).await;
    let binary = env!("CARGO_BIN_EXE_upledger");
    let main = config.main_path();
    // Piped (as in every other test): nothing but the command's own words on stderr.
    let piped = daemon.cli(&["import", &input.display().to_string()]).await;
    assert_eq!(piped.code, 0, "{}", piped.stderr);
    assert_eq!(piped.stderr.lines().count(), 1, "{}", piped.stderr);
    let exported = daemon.cli(&["export"]).await;
    assert!(exported.stderr.is_empty(), "{}", exported.stderr);
    // On a terminal, exporting to a file: a counter of lines, cleared at the end.
    let out = config.dir().join("out.jsonl");
    let shown = on_a_terminal(&format!(
        "{binary} --config {} export > {}",
        main.display(),
        out.display()
    ))
    .await;
    assert!(
        shown.contains("lines exported"),
        "terminal showed: {shown:?}"
    );
    let written = std::fs::read_to_string(&out).expect("export file");
    assert!(written.lines().count() >= 20_000);
    assert!(
        !written.contains("lines exported"),
        "progress stays off the file"
    );
    assert_eq!(daemon.terminate().await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn evidence_and_verify_show_progress_on_a_terminal_only() {
    let config = crate::support::TestConfig::new();
    let key = crate::support::keygen(config.dir(), "vendor-key", "habits.example.test").await;
    config.main(&format!(
        "[daemon]\nledger = \"data/ledger\"\nsocket = \"data/upledger.sock\"\n\n\
         [evidence]\nsigning_key = \"{}\"\norigin = \"habits.example.test\"\n",
        key.display()
    ));
    config.probes(
        "a.toml",
        "[[probe]]\nname = \"a\"\nkind = \"tcp\"\naddress = \"127.0.0.1:9\"\n",
    );
    // Ten days of last month, a result a minute: a bundle of hundreds of hour leaves.
    let this_month = jiff::Timestamp::now()
        .in_tz("UTC")
        .expect("UTC")
        .first_of_month()
        .expect("month start")
        .start_of_day()
        .expect("day start");
    let last_month = this_month
        .checked_sub(jiff::Span::new().months(1))
        .expect("last month");
    let from = last_month.timestamp();
    let lines: String = (0..14_400)
        .map(|i| {
            let at = from + jiff::SignedDuration::from_mins(i);
            format!("{{\"probe\":\"a\",\"at\":\"{at}\",\"outcome\":\"up\",\"latency_ms\":1.0}}\n")
        })
        .collect();
    let input = config.dir().join("in.jsonl");
    std::fs::write(&input, lines).expect("write");
    let imported = config.cli(&["import", &input.display().to_string()]).await;
    assert_eq!(imported.code, 0, "{}", imported.stderr);
    let month = last_month.strftime("%Y-%m").to_string();
    let binary = env!("CARGO_BIN_EXE_upledger");
    let main = config.main_path();
    let key_arg = crate::support::public(&key).display().to_string();

    // Piped: only the commands' own words.
    let piped = config.dir().join("piped");
    let built = config
        .cli(&[
            "evidence",
            "--month",
            &month,
            "--out",
            &piped.display().to_string(),
        ])
        .await;
    assert_eq!(built.code, 0, "{}", built.stderr);
    assert_eq!(built.stderr.lines().count(), 1, "{}", built.stderr);
    let verified = upledger()
        .arg("verify")
        .arg(&piped)
        .args(["--key", &key_arg])
        .run()
        .await;
    assert_eq!(verified.code, 0, "{}\n{}", verified.stdout, verified.stderr);
    assert!(verified.stderr.is_empty(), "{}", verified.stderr);
    assert!(
        !verified.stdout.contains("leaves checked"),
        "{}",
        verified.stdout
    );

    // On a terminal: the stages, cleared at the end; stdout keeps its lines.
    let shown_dir = config.dir().join("shown");
    let shown = on_a_terminal(&format!(
        "{binary} --config {} evidence --month {month} --out {}",
        main.display(),
        shown_dir.display()
    ))
    .await;
    assert!(
        shown.contains("leaves proved"),
        "terminal showed: {shown:?}"
    );
    assert!(shown.contains("wrote "), "terminal showed: {shown:?}");
    let report = config.dir().join("verify.txt");
    let shown = on_a_terminal(&format!(
        "{binary} verify {} --key {key_arg} > {}",
        shown_dir.display(),
        report.display()
    ))
    .await;
    assert!(
        shown.contains("leaves checked"),
        "terminal showed: {shown:?}"
    );
    assert!(shown.contains("results read"), "terminal showed: {shown:?}");
    let report = std::fs::read_to_string(&report).expect("verify's output");
    assert!(report.contains("valid: "), "{report}");
    assert!(
        !report.contains("leaves checked"),
        "progress stays off stdout"
    );
}
