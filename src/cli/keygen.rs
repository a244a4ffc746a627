//! `upledger keygen`: writes a new Ed25519 signing key in OpenSSH format (`PATH`, mode 0600,
//! and `PATH.pub`) and prints the `allowed_signers` line a client needs to check signed
//! reports with `ssh-keygen -Y verify` (SPEC §8). Exit 0, or 2 when the key cannot be written.
//! Uses `evidence::key` only; needs no configuration.

use std::path::{Path, PathBuf};

use anyhow::Context as _;

use super::Exit;
use crate::evidence::key::{KeyError, REPORT_NAMESPACE, SigningKey, public_path};

#[derive(Debug, clap::Args)]
pub(super) struct KeygenArgs {
    /// Where to write the private key; the public key goes to PATH.pub.
    #[arg(long, value_name = "PATH", default_value = "upledger-signing-key")]
    out: PathBuf,
    /// The identity clients name with `ssh-keygen -Y verify -I` [default: upledger@<hostname>]
    #[arg(long, value_name = "NAME")]
    identity: Option<String>,
    /// Replace an existing key at PATH (and PATH.pub): what it signed will no longer verify
    /// against the new key.
    #[arg(long)]
    force: bool,
}

pub(super) fn keygen(args: &KeygenArgs) -> anyhow::Result<Exit> {
    let identity = match &args.identity {
        Some(identity) => identity.clone(),
        None => format!("upledger@{}", hostname()),
    };
    let key = SigningKey::generate(&identity)?;
    // Checked before anything is written or removed: a bad identity leaves the old key.
    let line = key.public().allowed_signers_line(&identity)?;
    let public = public_path(&args.out);
    if args.force {
        replace_existing(&args.out, &public)?;
    }
    key.write_openssh(&args.out).map_err(|error| match error {
        KeyError::Exists { .. } => anyhow::anyhow!(
            "{error} (--force replaces it; what the old key signed then no longer verifies \
             against the new one)"
        ),
        error => error.into(),
    })?;

    println!("{line}");
    let absolute = std::path::absolute(&args.out).unwrap_or_else(|_| args.out.clone());
    let config_value = toml::Value::String(absolute.display().to_string());
    eprintln!(
        "wrote the private key to {} (mode 0600) and the public key to {}",
        args.out.display(),
        public.display()
    );
    eprintln!("key fingerprint: {}", key.public().fingerprint());
    eprintln!(
        "to sign with it, put in upledger.toml:\n\n[evidence]\nsigning_key = {config_value}\n"
    );
    eprintln!(
        "clients add the line printed above to their allowed_signers file and check a signed \
         report with:\n  ssh-keygen -Y verify -f allowed_signers -I {identity} -n \
         {REPORT_NAMESPACE} -s report.json.sig < report.json"
    );
    Ok(Exit::Ok)
}

/// Removes the key files `--force` replaces, saying so first.
fn replace_existing(private: &Path, public: &Path) -> anyhow::Result<()> {
    for path in [private, public] {
        if path.symlink_metadata().is_err() {
            continue;
        }
        eprintln!("replacing the existing {} (--force)", path.display());
        std::fs::remove_file(path).with_context(|| format!("cannot remove {}", path.display()))?;
    }
    Ok(())
}

/// The machine's name for the default identity; `localhost` if it has none.
fn hostname() -> String {
    let uname = rustix::system::uname();
    let name = uname.nodename().to_string_lossy();
    if name.is_empty() {
        "localhost".to_owned()
    } else {
        name.into_owned()
    }
}
