//! Shared test support: a builder around the binary, temporary configs, loopback servers.

#![allow(dead_code)]

pub mod chromium;
pub mod daemon;
pub mod dns;
pub mod http;
pub mod nats;
pub mod switch;
pub mod tcp;
pub mod tls;
pub mod tmpfs;
pub mod webhook;

use std::{
    ffi::OsString,
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

/// How a run of the binary ended.
#[derive(Debug)]
pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// The stdout as JSON, with a readable panic if it is not.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }
}

/// A command line for the compiled `upledger` binary.
pub struct Cmd {
    args: Vec<OsString>,
    dir: Option<PathBuf>,
    env: Vec<(String, String)>,
    removed: Vec<String>,
    timeout: Duration,
    open_files: Option<u64>,
}

/// A command that runs the compiled `upledger`, under an open-file limit of `open_files` (soft
/// and hard alike, so it cannot raise it) when given: set by a shell that then becomes it.
pub fn binary_command(open_files: Option<u64>) -> tokio::process::Command {
    let binary = env!("CARGO_BIN_EXE_upledger");
    match open_files {
        Some(limit) => {
            let mut shell = tokio::process::Command::new("sh");
            shell
                .arg("-c")
                .arg(format!("ulimit -n {limit} && exec \"$0\" \"$@\""))
                .arg(binary);
            shell
        }
        None => tokio::process::Command::new(binary),
    }
}

/// Starts building a run of `upledger`.
pub fn upledger() -> Cmd {
    Cmd {
        args: Vec::new(),
        dir: None,
        env: Vec::new(),
        removed: Vec::new(),
        timeout: Duration::from_secs(60),
        open_files: None,
    }
}

impl Cmd {
    pub fn arg(mut self, arg: impl Into<OsString>) -> Self {
        self.args.push(arg.into());
        self
    }

    pub fn args<I: IntoIterator<Item = S>, S: Into<OsString>>(mut self, args: I) -> Self {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    pub fn current_dir(mut self, dir: impl AsRef<Path>) -> Self {
        self.dir = Some(dir.as_ref().to_owned());
        self
    }

    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    /// Leaves `key` out of the environment the test runs in.
    pub fn env_remove(mut self, key: &str) -> Self {
        self.removed.push(key.to_owned());
        self
    }

    /// Runs under an open-file limit of `limit` (soft and hard), set by a shell that then
    /// becomes `upledger`.
    pub fn limit_open_files(mut self, limit: u64) -> Self {
        self.open_files = Some(limit);
        self
    }

    fn command(&self) -> tokio::process::Command {
        let mut command = binary_command(self.open_files);
        command
            .args(&self.args)
            .env_remove("UPLEDGER_CONFIG")
            .env_remove("RUST_LOG")
            .env("UPLEDGER_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        for key in &self.removed {
            command.env_remove(key);
        }
        for (key, value) in &self.env {
            command.env(key, value);
        }
        if let Some(dir) = &self.dir {
            command.current_dir(dir);
        }
        command
    }

    /// Runs to completion without blocking the test's runtime, so loopback servers served by
    /// the same runtime keep answering.
    pub async fn run(self) -> Output {
        let output = tokio::time::timeout(self.timeout, self.command().output())
            .await
            .expect("upledger did not finish in time")
            .expect("cannot run upledger");
        Output {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Runs from a synchronous test.
    pub fn run_blocking(self) -> Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(self.run())
    }
}

/// A configuration in a temporary folder: `upledger.toml` plus `probes.d/*.toml`.
pub struct TestConfig {
    dir: tempfile::TempDir,
}

impl TestConfig {
    /// Runs a CLI command against this configuration (its daemon if one runs, else its
    /// ledger).
    pub async fn cli(&self, args: &[&str]) -> Output {
        upledger()
            .arg("--config")
            .arg(self.main_path())
            .args(args.iter().copied())
            .run()
            .await
    }

    /// An empty configuration with a minimal main file whose ledger lives in the temp folder.
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("probes.d")).expect("probes.d");
        let config = TestConfig { dir };
        config.main(
            r#"
[daemon]
ledger = "data/ledger"
socket = "data/upledger.sock"
"#,
        );
        config
    }

    /// Replaces the main file.
    pub fn main(&self, text: &str) -> &Self {
        std::fs::write(self.dir.path().join("upledger.toml"), text).expect("write main");
        self
    }

    /// Writes `probes.d/<file>`.
    pub fn probes(&self, file: &str, text: &str) -> &Self {
        std::fs::write(self.dir.path().join("probes.d").join(file), text).expect("write probes");
        self
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn main_path(&self) -> PathBuf {
        self.dir.path().join("upledger.toml")
    }

    /// `upledger check --json` on this configuration.
    pub async fn check_json(&self, probes: &[&str]) -> (Output, serde_json::Value) {
        let output = upledger()
            .arg("--config")
            .arg(self.main_path())
            .arg("check")
            .arg("--json")
            .args(probes.iter().copied())
            .run()
            .await;
        let json = output.json();
        (output, json)
    }

    /// Runs one probe (written as `[[probe]]` TOML) and returns its JSON result.
    pub async fn check_one(&self, probe_toml: &str) -> serde_json::Value {
        self.probes("p.toml", probe_toml);
        let (output, json) = self.check_json(&[]).await;
        let probes = json["probes"].as_array().expect("probes array");
        assert_eq!(probes.len(), 1, "one probe expected: {}", output.stdout);
        let result = probes[0].clone();
        let down = result["outcome"] == "down";
        assert_eq!(
            output.code,
            if down { 1 } else { 0 },
            "exit code; stderr: {}",
            output.stderr
        );
        result
    }
}

/// The repository root (for shipped configs and fixtures).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The results of a `check --json` document, by probe name.
/// The `name` of every object in a JSON list (`status --json`'s or a report's `probes`).
pub fn names(list: &serde_json::Value) -> Vec<&str> {
    list.as_array()
        .expect("a list")
        .iter()
        .filter_map(|item| item["name"].as_str())
        .collect()
}

pub fn results_by_name(
    json: &serde_json::Value,
) -> std::collections::HashMap<String, serde_json::Value> {
    json["probes"]
        .as_array()
        .expect("probes array")
        .iter()
        .map(|r| (r["name"].as_str().expect("name").to_owned(), r.clone()))
        .collect()
}

/// Asserts a result's outcome, error class and that its detail contains `detail`.
#[track_caller]
pub fn assert_result(result: &serde_json::Value, outcome: &str, class: Option<&str>, detail: &str) {
    assert_eq!(result["outcome"], outcome, "{result:#}");
    match class {
        Some(class) => assert_eq!(result["error_class"], class, "{result:#}"),
        None => assert!(result["error_class"].is_null(), "{result:#}"),
    }
    let text = result["detail"].as_str().expect("detail is a string");
    assert!(
        text.contains(detail),
        "detail {text:?} lacks {detail:?}: {result:#}"
    );
}

/// A free loopback port (bound, read, released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// `upledger keygen --identity <identity> --out <dir>/<name>`; the path of the key.
pub async fn keygen(dir: &Path, name: &str, identity: &str) -> PathBuf {
    let path = dir.join(name);
    let output = upledger()
        .args(["keygen", "--identity", identity, "--out"])
        .arg(&path)
        .run()
        .await;
    assert_eq!(output.code, 0, "keygen: {}", output.stderr);
    path
}

/// A key's `.pub` file.
pub fn public(key: &Path) -> PathBuf {
    let mut name = key.as_os_str().to_owned();
    name.push(".pub");
    PathBuf::from(name)
}

/// Copies directory `from` (sled's files, the seal) to `to`, replacing it.
pub fn copy_dir(from: &Path, to: &Path) {
    let _ = std::fs::remove_dir_all(to);
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}
