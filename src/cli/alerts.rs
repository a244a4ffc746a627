//! `upledger alerts`: recent alert deliveries and where they stand; `upledger alerts test
//! CHANNEL`: a test alert through the normal delivery path.

use std::{path::Path, time::Duration};

use clap::{Args, Subcommand};
use jiff::Timestamp;

use super::{
    Exit,
    client::{self, Source},
};
use crate::{
    alert::{deliver::Deliverer, queue_test},
    api::socket::Request,
    ledger::{DeliveryStatus, OutboxItem},
    query::{self, AlertLine},
};

/// How long `alerts test` waits for the daemon's first attempt.
const TEST_PATIENCE: Duration = Duration::from_secs(20);

#[derive(Debug, Args)]
pub struct AlertsArgs {
    #[command(subcommand)]
    action: Option<AlertsAction>,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Show at most this many, newest first.
    #[arg(long, default_value_t = 50)]
    limit: usize,
}

#[derive(Debug, Subcommand)]
enum AlertsAction {
    /// Send a test alert to a channel and report whether it arrived (exit 1 if not).
    Test {
        /// The channel's name.
        channel: String,
    },
}

pub(super) fn run(config_path: &Path, args: &AlertsArgs) -> anyhow::Result<Exit> {
    match &args.action {
        Some(AlertsAction::Test { channel }) => test(config_path, channel),
        None => list(config_path, args),
    }
}

fn fetch(config_path: &Path, limit: usize) -> anyhow::Result<Option<Vec<AlertLine>>> {
    let Some(source) = client::connect(config_path)? else {
        return Ok(None);
    };
    Ok(Some(match source {
        Source::Daemon(mut stream) => {
            serde_json::from_value(client::ask(&mut stream, &Request::Alerts { limit })?)?
        }
        Source::Ledger(_, ledger) => ledger.guard(|ledger| query::alerts(ledger, limit))?,
    }))
}

fn list(config_path: &Path, args: &AlertsArgs) -> anyhow::Result<Exit> {
    let Some(lines) = fetch(config_path, args.limit)? else {
        return Ok(Exit::Usage);
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&lines)?);
        return Ok(Exit::Ok);
    }
    let mut rows = vec![[
        "RAISED".to_owned(),
        "EVENT".to_owned(),
        "SUBJECT".to_owned(),
        "CHANNEL".to_owned(),
        "STATUS".to_owned(),
        "ATTEMPTS".to_owned(),
        "LAST ERROR".to_owned(),
    ]];
    for line in &lines {
        rows.push([
            line.created.strftime("%Y-%m-%d %H:%M:%S").to_string(),
            line.event.clone(),
            line.subject.clone().unwrap_or_else(|| "-".to_owned()),
            line.channel.clone(),
            status_name(line.status).to_owned(),
            line.attempts.to_string(),
            line.last_error.clone(),
        ]);
    }
    print!("{}", crate::render::columns(&rows));
    Ok(Exit::Ok)
}

fn status_name(status: DeliveryStatus) -> &'static str {
    match status {
        DeliveryStatus::Pending => "pending",
        DeliveryStatus::Delivered => "delivered",
        DeliveryStatus::Failed => "failed",
    }
}

fn test(config_path: &Path, channel: &str) -> anyhow::Result<Exit> {
    let Some(source) = client::connect(config_path)? else {
        return Ok(Exit::Usage);
    };
    let id = match source {
        Source::Daemon(mut stream) => {
            let queued = client::ask(
                &mut stream,
                &Request::AlertTest {
                    channel: channel.to_owned(),
                },
            );
            match queued {
                Ok(item) => item["entry"]["id"].as_str().unwrap_or_default().to_owned(),
                Err(e) => {
                    eprintln!("error: {e}");
                    return Ok(Exit::Usage);
                }
            }
        }
        // No daemon: store the test alert and make the one attempt here.
        Source::Ledger(config, ledger) => {
            let now = Timestamp::now();
            let queued = ledger
                .guard(|ledger| {
                    Ok::<_, crate::ledger::LedgerError>(queue_test(&config, ledger, channel, now))
                })
                .map_err(|e| e.to_string())
                .and_then(|queued| queued);
            let item = match queued {
                Ok(item) => item,
                Err(e) => {
                    eprintln!("error: {e}");
                    return Ok(Exit::Usage);
                }
            };
            let outcome = attempt_once(&config, &item)?;
            let mut settled: OutboxItem = item;
            settled.entry.attempts = 1;
            settled.entry.settled = Some(Timestamp::now());
            match &outcome {
                Ok(()) => settled.entry.status = DeliveryStatus::Delivered,
                Err(reason) => {
                    settled.entry.status = DeliveryStatus::Failed;
                    settled.entry.last_error = reason.clone();
                }
            }
            ledger.guard(|ledger| ledger.outbox_update(&settled))?;
            return Ok(report(channel, &outcome));
        }
    };
    // The daemon delivers it; wait for its first attempt.
    let deadline = std::time::Instant::now() + TEST_PATIENCE;
    loop {
        let line = fetch(config_path, 200)?
            .unwrap_or_default()
            .into_iter()
            .find(|line| line.id == id);
        match line {
            Some(line) if line.status == DeliveryStatus::Delivered => {
                return Ok(report(channel, &Ok(())));
            }
            Some(line) if line.attempts > 0 || line.status == DeliveryStatus::Failed => {
                return Ok(report(
                    channel,
                    &Err(format!("{} (the daemon keeps retrying)", line.last_error)),
                ));
            }
            _ if std::time::Instant::now() >= deadline => {
                eprintln!("the daemon has not tried yet; see `upledger alerts`");
                return Ok(Exit::Failed);
            }
            _ => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

fn attempt_once(
    config: &crate::config::Config,
    item: &OutboxItem,
) -> anyhow::Result<Result<(), String>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let deliverer = Deliverer::new().map_err(anyhow::Error::msg)?;
    let channel = config
        .channels
        .iter()
        .find(|c| c.name == item.entry.channel)
        .ok_or_else(|| anyhow::anyhow!("channel {} vanished", item.entry.channel))?;
    Ok(runtime.block_on(deliverer.deliver(channel, &item.entry)))
}

fn report(channel: &str, outcome: &Result<(), String>) -> Exit {
    match outcome {
        Ok(()) => {
            println!("test alert delivered to {channel}");
            Exit::Ok
        }
        Err(reason) => {
            println!("test alert NOT delivered to {channel}: {reason}");
            Exit::Failed
        }
    }
}
