//! `upledger init [DIR]`: a commented starter configuration that validates as written — the
//! main file and one probes file — so a new user edits a working file instead of a blank one.

use std::path::{Path, PathBuf};

use anyhow::Context;

use super::Exit;

/// Arguments of `upledger init`.
#[derive(Debug, clap::Args)]
pub(super) struct InitArgs {
    /// Where to write `upledger.toml` and `probes.d/` [default: the current directory].
    dir: Option<PathBuf>,
}

/// The starter main file. Paths are relative to it, so the folder runs as it is.
const MAIN: &str = r#"# upledger main configuration, written by `upledger init`.
# Check it with `upledger validate --config upledger.toml`; run with `upledger run --config
# upledger.toml`. Relative paths are relative to this file. Every key is described in the
# README's "Configuration reference".

[daemon]
ledger   = "data/ledger"          # the results (an embedded database, created on first run)
probes_dir = "probes.d"           # every *.toml here holds [[probe]] tables
listen   = "127.0.0.1:9474"       # status page, badges, /metrics and the JSON API (read-only)
socket   = "data/upledger.sock"   # the CLI talks to the running daemon through it
timezone = "UTC"                  # months for reports begin and end in this time zone
# location = "fra1"               # where the checks run from (default: the host name)

[defaults]                        # any probe key; a probe's own value wins
interval = "60s"
timeout  = "10s"
failure_threshold = 3             # consecutive failures before a probe is down
success_threshold = 2             # consecutive successes before it is up again
target = "99.9%"                  # monthly availability target

# Alerts: uncomment a channel and name it in a probe's `channels` (default: every channel).
# [[channel]]
# name = "ops"
# kind = "webhook"                # or "desktop" (needs a session bus)
# url  = "https://hooks.example.com/upledger"
# secret_file = "webhook.secret"  # HMAC-SHA256 of every body, in X-Upledger-Signature

# An agreement with a client: availability, error budget and service credits per month.
# [[sla]]
# name    = "acme"
# client  = "ACME Corp"
# probes  = ["web-*"]
# target  = "99.9%"
# credits = [ { below = "99.9%", credit = "10%" }, { below = "99.0%", credit = "25%" } ]
"#;

/// The starter probes file: one probe that works anywhere (the daemon's own listener), and a
/// commented one of each kind to copy.
const PROBES: &str = r#"# Probes, written by `upledger init`. Names are 1-64 characters of a-z, 0-9, '.', '_', '-'.

# upledger's own listener: works as soon as the daemon runs.
[[probe]]
name = "self"
kind = "http"
url  = "http://127.0.0.1:9474/healthz"
interval = "30s"
timeout  = "5s"

# A web page or API endpoint.
# [[probe]]
# name = "web-home"
# kind = "http"
# url  = "https://www.example.com/"
# expect_status = ["2xx"]
# body_contains = "Welcome"
# degraded_after = "800ms"        # slower answers count as degraded

# A TCP port.
# [[probe]]
# name = "db-port"
# kind = "tcp"
# address = "db.internal:5432"

# A DNS name, asked of a given server.
# [[probe]]
# name = "dns-www"
# kind = "dns"
# query = "www.example.com"
# record = "A"
# server = "192.0.2.53:53"         # your resolver (192.0.2.53 is a documentation address)
"#;

/// Writes the starter files, refusing to overwrite any that exist.
pub(super) fn init(args: &InitArgs) -> anyhow::Result<Exit> {
    let dir = args.dir.clone().unwrap_or_else(|| PathBuf::from("."));
    let main = dir.join("upledger.toml");
    let probes = dir.join("probes.d").join("probes.toml");
    for path in [&main, &probes] {
        if path.exists() {
            eprintln!(
                "error: {} exists; init writes only new files (move it away, or init another folder)",
                path.display()
            );
            return Ok(Exit::Usage);
        }
    }
    write(&main, MAIN)?;
    write(&probes, PROBES)?;
    println!("wrote {} and {}", main.display(), probes.display());
    println!(
        "next: upledger validate --config {0} && upledger run --config {0}",
        main.display()
    );
    Ok(Exit::Ok)
}

fn write(path: &Path, text: &str) -> anyhow::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_starter_configuration_validates_and_is_never_overwritten() {
        let dir = tempfile::tempdir().expect("dir");
        let args = InitArgs {
            dir: Some(dir.path().join("fresh")),
        };
        assert_eq!(init(&args).expect("init"), Exit::Ok);
        let config = crate::config::load(&dir.path().join("fresh/upledger.toml"))
            .unwrap_or_else(|e| panic!("the starter configuration is invalid: {e}"));
        assert_eq!(config.probes.len(), 1);
        assert_eq!(config.probes[0].name.as_str(), "self");
        let before = std::fs::read_to_string(dir.path().join("fresh/upledger.toml")).expect("read");
        assert_eq!(init(&args).expect("second init"), Exit::Usage);
        let after = std::fs::read_to_string(dir.path().join("fresh/upledger.toml")).expect("read");
        assert_eq!(before, after);
    }
}
