//! `upledger report --sign`, `upledger evidence` and `upledger verify` (SPEC §8).
//!
//! Signing and bundles come from the daemon when it runs (it holds the ledger and the key),
//! else from the ledger opened here with the key the configuration names. `verify` needs
//! neither: it reads a bundle directory and nothing else.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use jiff::Timestamp;

use super::{
    Exit,
    client::{self, Source},
    progress::Progress,
};
use crate::{
    api::socket::Request,
    evidence::{
        bundle::{Bundle, SignedReport, files},
        keeper::Keeper,
        verify::{self, KeySource, VerifyError, VerifyOptions},
    },
    query::monthly::Selection,
    report::Month,
};

/// Arguments of `upledger evidence`.
#[derive(Debug, clap::Args)]
pub(super) struct EvidenceArgs {
    /// The month, `YYYY-MM` [default: the current month in the daemon's time zone].
    #[arg(long)]
    month: Option<String>,
    /// Only this probe.
    #[arg(long, conflicts_with = "sla")]
    probe: Option<String>,
    /// Only this SLA and its probes.
    #[arg(long)]
    sla: Option<String>,
    /// The directory to write the bundle into (created if missing).
    #[arg(long)]
    out: PathBuf,
}

/// Arguments of `upledger verify`.
#[derive(Debug, clap::Args)]
pub(super) struct VerifyArgs {
    /// The bundle directory (`upledger evidence --out`).
    dir: PathBuf,
    /// The vendor's public key (`ssh-ed25519 AAAA…`, as `keygen` wrote it).
    #[arg(long, conflicts_with = "allowed_signers")]
    key: Option<PathBuf>,
    /// An OpenSSH allowed_signers file holding the vendor's key (with `--identity`).
    #[arg(long, requires = "identity")]
    allowed_signers: Option<PathBuf>,
    /// The identity to look up in `--allowed-signers` (the vendor's log origin).
    #[arg(long, requires = "allowed_signers")]
    identity: Option<String>,
    /// A checkpoint you kept from an earlier bundle (its `checkpoint` or `month-end.json`):
    /// the log must extend it.
    #[arg(long)]
    previous: Option<PathBuf>,
    /// A witness's public key (`ssh-ed25519 AAAA…`, its `.pub` file); repeat for several.
    #[arg(long = "witness-key", value_name = "FILE")]
    witness_keys: Vec<PathBuf>,
    /// How many of the witnesses given must have cosigned the checkpoint (default: all).
    #[arg(long, value_name = "K")]
    quorum: Option<usize>,
}

fn selection(probe: &Option<String>, sla: &Option<String>) -> Selection {
    Selection {
        probe: probe.clone(),
        sla: sla.clone(),
    }
}

fn month_text(config_path: &Path, month: &Option<String>) -> anyhow::Result<String> {
    Ok(match month {
        Some(month) => month.clone(),
        None => {
            let config = crate::config::load(config_path)?;
            Month::containing(Timestamp::now(), &config.daemon.timezone).to_string()
        }
    })
}

/// The signed report of a month, from the daemon or the ledger.
pub(super) fn signed_report(
    config_path: &Path,
    month: &Option<String>,
    probe: &Option<String>,
    sla: &Option<String>,
) -> anyhow::Result<Option<SignedReport>> {
    let month = month_text(config_path, month)?;
    let Some(source) = client::connect(config_path)? else {
        return Ok(None);
    };
    let report = match source {
        Source::Daemon(mut stream) => {
            let request = Request::SignedReport {
                month,
                probe: probe.clone(),
                sla: sla.clone(),
            };
            serde_json::from_value(client::ask(&mut stream, &request)?)
                .context("the daemon's signed report is malformed")?
        }
        Source::Ledger(config, ledger) => {
            let month: Month = month.parse().with_context(|| format!("--month {month}"))?;
            let keeper = Keeper::load(&config)?;
            let selection = selection(probe, sla);
            ledger
                .guard(|ledger| {
                    keeper.signed_report(ledger, &config, month, &selection, Timestamp::now())
                })?
                .0
        }
    };
    Ok(Some(report))
}

/// Writes a signed report to `out` and its signature beside it (`out.sig`).
pub(super) fn write_signed(report: &SignedReport, out: &Path) -> anyhow::Result<()> {
    std::fs::write(out, &report.json).with_context(|| format!("writing {}", out.display()))?;
    let Some(signature) = &report.signature else {
        eprintln!(
            "wrote {} UNSIGNED: no [evidence] signing_key is configured (make one with \
             `upledger keygen`)",
            out.display()
        );
        return Ok(());
    };
    let sig_path = signature_path(out);
    std::fs::write(&sig_path, signature)
        .with_context(|| format!("writing {}", sig_path.display()))?;
    eprintln!(
        "wrote {} and {}; a client checks it with:\n  ssh-keygen -Y verify -f allowed_signers \
         -I <origin> -n upledger-report -s {} < {}",
        out.display(),
        sig_path.display(),
        sig_path.display(),
        out.display()
    );
    Ok(())
}

/// `FILE.sig` beside `FILE`.
fn signature_path(out: &Path) -> PathBuf {
    let mut name = out.as_os_str().to_owned();
    name.push(".sig");
    PathBuf::from(name)
}

/// `upledger evidence`.
pub(super) fn evidence(config_path: &Path, args: &EvidenceArgs) -> anyhow::Result<Exit> {
    let month = month_text(config_path, &args.month)?;
    let Some(source) = client::connect(config_path)? else {
        return Ok(Exit::Usage);
    };
    // A large month takes a while: say what is under way (on a terminal only).
    let mut progress = Progress::stages();
    let bundle: Bundle = match source {
        Source::Daemon(mut stream) => {
            let request = Request::Evidence {
                month,
                probe: args.probe.clone(),
                sla: args.sla.clone(),
            };
            progress.waiting("the daemon builds the bundle");
            serde_json::from_value(client::ask(&mut stream, &request)?)
                .context("the daemon's evidence bundle is malformed")?
        }
        Source::Ledger(config, ledger) => {
            let month: Month = month.parse().with_context(|| format!("--month {month}"))?;
            let keeper = Keeper::load(&config)?;
            let selection = selection(&args.probe, &args.sla);
            ledger.guard(|ledger| {
                keeper.bundle_watched(
                    ledger,
                    &config,
                    month,
                    &selection,
                    Timestamp::now(),
                    &mut progress,
                )
            })?
        }
    };
    if bundle.report.signature.is_none() {
        bail!(
            "no [evidence] signing_key is configured: a bundle without signatures proves \
             nothing (make a key with `upledger keygen`)"
        );
    }
    progress.waiting("writing the bundle");
    let written = bundle
        .write_to(&args.out)
        .with_context(|| format!("writing the bundle into {}", args.out.display()))?;
    drop(progress);
    eprintln!(
        "wrote {} files into {}; the client runs: upledger verify {} --allowed-signers \
         allowed_signers --identity <origin>",
        written.len(),
        args.out.display(),
        args.out.display()
    );
    Ok(Exit::Ok)
}

/// `upledger verify`: exit 0 valid, 1 invalid (the first discrepancy named), 2 usage.
pub(super) fn verify(args: &VerifyArgs) -> Exit {
    let key = match (&args.key, &args.allowed_signers, &args.identity) {
        (Some(key), _, _) => KeySource::Key(key.clone()),
        (None, Some(path), Some(identity)) => KeySource::AllowedSigners {
            path: path.clone(),
            identity: identity.clone(),
        },
        _ => KeySource::Bundle,
    };
    let options = VerifyOptions {
        dir: args.dir.clone(),
        key,
        previous: args.previous.clone(),
        witness_keys: args.witness_keys.clone(),
        quorum: args.quorum,
    };
    let mut progress = Progress::stages();
    let outcome = verify::verify_watched(&options, &mut progress);
    drop(progress);
    match outcome {
        Ok(verified) => {
            for line in &verified.checked {
                println!("ok: {line}");
            }
            for warning in &verified.warnings {
                eprintln!("warning: {warning}");
            }
            println!("valid: {}", args.dir.join(files::REPORT).display());
            Exit::Ok
        }
        Err(VerifyError::Invalid(message)) => {
            println!("invalid: {message}");
            Exit::Failed
        }
        Err(VerifyError::Usage(message)) => {
            eprintln!("error: {message}");
            Exit::Usage
        }
    }
}
