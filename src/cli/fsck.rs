//! `upledger fsck`: reads the whole ledger, checks every checksum, every digest against its
//! results and every probe's count against the seal, and names each damaged range. Exit 0
//! clean, 1 damage found, 2 cannot run (the daemon holds the ledger, a bad configuration).
//! It needs the daemon stopped: it reads every block, and sled admits one process.

use std::path::Path;

use serde::Serialize;

use super::{Exit, load_or_report};
use crate::{
    config,
    ledger::{Damage, Ledger, LedgerError},
};

#[derive(Debug, clap::Args)]
pub(super) struct FsckArgs {
    /// Print one JSON document.
    #[arg(long)]
    json: bool,
}

/// What `fsck --json` prints.
#[derive(Debug, Serialize)]
struct FsckOutput {
    ledger: String,
    clean: bool,
    probes: u64,
    blocks: u64,
    results: u64,
    hours_compared: u64,
    damage: Vec<DamageLine>,
}

/// One damaged range as printed.
#[derive(Debug, Serialize)]
struct DamageLine {
    probe: Option<String>,
    from: Option<jiff::Timestamp>,
    to: Option<jiff::Timestamp>,
    what: String,
}

impl From<&Damage> for DamageLine {
    fn from(damage: &Damage) -> Self {
        DamageLine {
            probe: damage.probe.as_ref().map(|p| p.as_str().to_owned()),
            from: damage.from,
            to: damage.to,
            what: damage.what.clone(),
        }
    }
}

pub(super) fn fsck(config_path: &Path, args: &FsckArgs) -> anyhow::Result<Exit> {
    let socket = config::socket_path(config_path);
    if std::os::unix::net::UnixStream::connect(&socket).is_ok() {
        eprintln!(
            "error: the daemon is running (it answers on {}): stop it first, fsck reads the \
             whole ledger",
            socket.display()
        );
        return Ok(Exit::Usage);
    }
    let Some(config) = load_or_report(config_path) else {
        return Ok(Exit::Usage);
    };
    let path = &config.daemon.ledger;
    // sled 0.34 may panic on a damaged log instead of returning an error: for fsck that is
    // damage to name, not a crash.
    let opened = std::panic::catch_unwind(|| Ledger::open(path)).unwrap_or_else(|panic| {
        let message = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_else(|| "a panic".to_owned());
        Err(LedgerError::Corrupt {
            path: path.clone(),
            context: "sled log".to_owned(),
            reason: format!("sled failed reading it: {message}"),
        })
    });
    let ledger = match opened {
        Ok(ledger) => ledger,
        Err(e @ LedgerError::Locked { .. }) => {
            eprintln!("error: {e}");
            return Ok(Exit::Usage);
        }
        // sled itself refuses the log, or the ledger cannot be opened: damage, and the worst
        // kind — say what is left to do.
        Err(e @ LedgerError::Corrupt { .. }) => {
            let what = match &e {
                LedgerError::Corrupt {
                    context, reason, ..
                } if context == "sled log" => format!(
                    "the sled log is corrupt ({reason}); nothing can be read; restore from a \
                     backup or export"
                ),
                _ => format!("the ledger cannot be opened, nothing can be read: {e}"),
            };
            print_damage(
                args.json,
                path,
                None,
                &[DamageLine {
                    probe: None,
                    from: None,
                    to: None,
                    what,
                }],
            )?;
            return Ok(Exit::Failed);
        }
        Err(e) => return Err(e.into()),
    };
    let report = ledger.fsck()?;
    let lines: Vec<DamageLine> = report.damage.iter().map(DamageLine::from).collect();
    let counts = (
        report.probes,
        report.blocks,
        report.results,
        report.hours_compared,
    );
    print_damage(args.json, path, Some(counts), &lines)?;
    Ok(if lines.is_empty() {
        Exit::Ok
    } else {
        Exit::Failed
    })
}

/// Prints the outcome: one line per damaged range (stdout), then a summary.
fn print_damage(
    json: bool,
    path: &Path,
    counts: Option<(u64, u64, u64, u64)>,
    damage: &[DamageLine],
) -> anyhow::Result<()> {
    let (probes, blocks, results, hours_compared) = counts.unwrap_or_default();
    if json {
        let output = FsckOutput {
            ledger: path.display().to_string(),
            clean: damage.is_empty(),
            probes,
            blocks,
            results,
            hours_compared,
            damage: damage
                .iter()
                .map(|d| DamageLine {
                    probe: d.probe.clone(),
                    from: d.from,
                    to: d.to,
                    what: d.what.clone(),
                })
                .collect(),
        };
        println!("{}", serde_json::to_string(&output)?);
        return Ok(());
    }
    for line in damage {
        let probe = line.probe.as_deref().unwrap_or("(whole ledger)");
        match (line.from, line.to) {
            (Some(from), Some(to)) => {
                println!("damaged: probe {probe} from {from} to {to}: {}", line.what)
            }
            _ => println!("damaged: {probe}: {}", line.what),
        }
    }
    if counts.is_some() {
        println!(
            "{}: {probes} probes, {blocks} blocks, {results} results, {hours_compared} digested \
             hours compared; {}",
            path.display(),
            if damage.is_empty() {
                "no damage".to_owned()
            } else {
                format!("{} damaged range(s)", damage.len())
            }
        );
    }
    Ok(())
}
