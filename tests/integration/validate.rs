//! `upledger validate`: golden error output for invalid configs, and every shipped config valid.

use std::path::Path;

use crate::support::{TestConfig, repo_root, upledger};

/// Runs `validate` in a fixture folder and compares stderr with its `expected.txt`.
/// `UPDATE_GOLDEN=1` rewrites the expectations (review the diff before committing).
fn assert_golden(case: &str) {
    let dir = repo_root().join("tests/fixtures/invalid").join(case);
    let output = upledger().current_dir(&dir).arg("validate").run_blocking();
    assert_eq!(
        output.code, 2,
        "{case}: exit code; stderr:\n{}",
        output.stderr
    );
    assert!(output.stdout.is_empty(), "{case}: stdout should be empty");
    let expected_path = dir.join("expected.txt");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&expected_path, &output.stderr).expect("write golden");
    }
    let expected = std::fs::read_to_string(&expected_path).expect("read expected.txt");
    assert_eq!(
        output.stderr, expected,
        "{case}: stderr differs from expected.txt"
    );
}

#[test]
fn unknown_keys_everywhere_are_reported_with_suggestions() {
    assert_golden("unknown-key");
}

#[test]
fn bad_durations_are_reported() {
    assert_golden("bad-duration");
}

#[test]
fn timeout_not_shorter_than_interval_is_rejected() {
    assert_golden("timeout-ge-interval");
}

#[test]
fn duplicate_names_name_both_files() {
    assert_golden("duplicate-name");
}

#[test]
fn bad_regex_is_reported() {
    assert_golden("bad-regex");
}

#[test]
fn unknown_channel_is_reported() {
    assert_golden("unknown-channel");
}

#[test]
fn bad_targets_are_reported() {
    assert_golden("bad-target");
}

#[test]
fn toml_syntax_errors_are_reported() {
    assert_golden("syntax-error");
}

#[test]
fn missing_required_keys_are_reported() {
    assert_golden("missing-keys");
}

#[test]
fn unset_environment_variables_are_reported() {
    assert_golden("unset-variable");
}

#[test]
fn main_file_sections_are_validated() {
    assert_golden("bad-main-sections");
}

#[test]
fn alert_settings_are_validated() {
    assert_golden("bad-alert-settings");
}

#[test]
fn the_shipped_configuration_validates() {
    let output = upledger()
        .current_dir(repo_root())
        .arg("validate")
        .run_blocking();
    assert_eq!(output.code, 0, "stderr:\n{}", output.stderr);
    assert!(output.stdout.contains("ok"), "{}", output.stdout);
}

/// Copies the shipped `upledger.toml` and `probes.d/` into a temp folder.
fn shipped_copy() -> TestConfig {
    let config = TestConfig::new();
    let main = std::fs::read_to_string(repo_root().join("upledger.toml")).expect("upledger.toml");
    config.main(&main);
    for entry in std::fs::read_dir(repo_root().join("probes.d")).expect("probes.d") {
        let path = entry.expect("entry").path();
        let text = std::fs::read_to_string(&path).expect("read probe file");
        config.probes(&file_name(&path), &text);
    }
    config
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .expect("file name")
        .to_string_lossy()
        .into_owned()
}

/// Inserts `bogus_key = 1` after the `n`-th table header of `text`, if there is one.
fn inject_after_header(text: &str, n: usize) -> Option<(String, usize)> {
    let mut seen = 0;
    let mut out = Vec::new();
    let mut injected_line = None;
    for line in text.lines() {
        out.push(line.to_owned());
        if line.trim_start().starts_with('[') && !line.trim_start().starts_with("[ ") {
            if seen == n {
                out.push("bogus_key = 1".to_owned());
                injected_line = Some(out.len());
            }
            seen += 1;
        }
    }
    injected_line.map(|line| (out.join("\n") + "\n", line))
}

#[test]
fn a_bogus_key_in_any_shipped_table_is_rejected_at_its_line() {
    let mut files = vec!["upledger.toml".to_owned()];
    for entry in std::fs::read_dir(repo_root().join("probes.d")).expect("probes.d") {
        files.push(format!(
            "probes.d/{}",
            file_name(&entry.expect("entry").path())
        ));
    }
    let mut tables_checked = 0;
    for file in &files {
        let original = std::fs::read_to_string(repo_root().join(file)).expect("read");
        for n in 0.. {
            let Some((text, line)) = inject_after_header(&original, n) else {
                break;
            };
            let config = shipped_copy();
            std::fs::write(config.dir().join(file), text).expect("write");
            let output = upledger()
                .current_dir(config.dir())
                .arg("validate")
                .run_blocking();
            assert_eq!(output.code, 2, "{file} table {n}: {}", output.stderr);
            let location = format!("{file}:{line}:1:");
            assert!(
                output.stderr.contains(&location)
                    && output.stderr.contains("unknown key \"bogus_key\""),
                "{file} table {n}: expected an error at {location}, got:\n{}",
                output.stderr
            );
            tables_checked += 1;
        }
    }
    assert!(tables_checked >= 10, "only {tables_checked} tables checked");
}

#[test]
fn all_problems_are_reported_at_once_across_files() {
    let config = TestConfig::new();
    config.probes(
        "a.toml",
        "[[probe]]\nname = \"a\"\nkind = \"http\"\nurl = \"nope\"\n",
    );
    config.probes(
        "b.toml",
        "[[probe]]\nname = \"b\"\nkind = \"tcp\"\naddress = \"x\"\n",
    );
    let output = upledger()
        .current_dir(config.dir())
        .arg("validate")
        .run_blocking();
    assert_eq!(output.code, 2);
    assert!(
        output
            .stderr
            .contains("probes.d/a.toml:4:7: probe \"a\": url:"),
        "{}",
        output.stderr
    );
    assert!(
        output
            .stderr
            .contains("probes.d/b.toml:4:11: probe \"b\": address:"),
        "{}",
        output.stderr
    );
    assert!(output.stderr.contains("2 problems"), "{}", output.stderr);
}

#[test]
fn environment_variables_expand_into_probe_values() {
    let config = TestConfig::new();
    config.probes(
        "a.toml",
        "[[probe]]\nname = \"a\"\nkind = \"tcp\"\naddress = \"${UPLEDGER_TEST_HOST}:${UPLEDGER_TEST_PORT}\"\n",
    );
    let output = upledger()
        .current_dir(config.dir())
        .env("UPLEDGER_TEST_HOST", "127.0.0.1")
        .env("UPLEDGER_TEST_PORT", "6379")
        .arg("validate")
        .run_blocking();
    assert_eq!(output.code, 0, "{}", output.stderr);
}

#[test]
fn config_is_found_through_the_environment_variable() {
    let config = TestConfig::new();
    config.probes(
        "a.toml",
        "[[probe]]\nname = \"a\"\nkind = \"tcp\"\naddress = \"127.0.0.1:1\"\n",
    );
    let elsewhere = tempfile::tempdir().expect("tempdir");
    let output = upledger()
        .current_dir(elsewhere.path())
        .env("UPLEDGER_CONFIG", &config.main_path().to_string_lossy())
        .arg("validate")
        .run_blocking();
    assert_eq!(output.code, 0, "{}", output.stderr);
}

#[test]
fn a_missing_config_file_is_a_usage_error() {
    let output = upledger()
        .arg("--config")
        .arg("/nonexistent/upledger.toml")
        .arg("validate")
        .run_blocking();
    assert_eq!(output.code, 2);
    assert!(
        output
            .stderr
            .contains("cannot read /nonexistent/upledger.toml"),
        "{}",
        output.stderr
    );
}

/// Issue 20 item 5: `monthly_fee = 1e308` was accepted and reports then printed "inf EUR".
#[test]
fn money_and_factors_are_bounded_with_their_place() {
    let config = TestConfig::new();
    config.main(
        "[daemon]\nledger = \"data/ledger\"\n\
         burn_rates = [{ long = \"1h\", short = \"5m\", factor = 1e300 }]\n\n\
         [[sla]]\nname = \"acme\"\nprobes = [\"*\"]\ntarget = \"99.9%\"\nmonthly_fee = 1e308\n",
    );
    config.probes(
        "a.toml",
        "[[probe]]\nname = \"a\"\nkind = \"tcp\"\naddress = \"127.0.0.1:1\"\n",
    );
    let output = upledger()
        .arg("--config")
        .arg(config.main_path())
        .arg("validate")
        .run_blocking();
    assert_eq!(output.code, 2, "{}", output.stderr);
    assert!(
        output.stderr.contains(
            "upledger.toml:9:15: sla \"acme\": monthly_fee: must be from 0 to 1000000000000"
        ),
        "{}",
        output.stderr
    );
    assert!(
        output
            .stderr
            .contains("upledger.toml:3:53: [daemon]: factor: must be positive and at most 1000000"),
        "{}",
        output.stderr
    );
}
