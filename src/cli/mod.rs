//! The command line: argument parsing, logging set-up and exit codes. The only module that
//! uses `anyhow`; everything below it returns typed errors.

mod alerts;
mod check;
mod client;
mod completions;
mod evidence;
mod fsck;
mod init;
mod keygen;
mod progress;
mod query;
mod reload;
mod report;
mod run;
mod stats;
mod validate;

use std::{path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand};

use crate::config::{self, Config, ConfigError};

/// upledger — uptime monitor with an SLA ledger.
#[derive(Debug, Parser)]
#[command(name = "upledger", version, about, propagate_version = true)]
pub struct Cli {
    /// Main config file [default: $UPLEDGER_CONFIG, ./upledger.toml, /etc/upledger/upledger.toml]
    #[arg(long, short = 'c', global = true, value_name = "FILE")]
    config: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check the configuration and print every problem (exit 0 valid, 2 invalid).
    Validate,
    /// Run the daemon in the foreground: schedule probes, record results (systemd Type=notify).
    Run,
    /// Have the running daemon reload its configuration; prints whether it was taken, with
    /// every problem if not (exit 0 taken, 2 rejected: the daemon keeps the running one).
    Reload,
    /// Run probes once, now, concurrently, and print the results (exit 1 if any is down).
    Check(check::CheckArgs),
    /// Current state of every probe (exit 1 if any is down).
    Status(query::StatusArgs),
    /// One probe's recent results and the time no result covers.
    History(query::HistoryArgs),
    /// Results as JSON lines on stdout, with the corrections that go with them (a reliable
    /// backup).
    Export(query::ExportArgs),
    /// Results and corrections from JSON lines into the ledger; refuses unknown probes and
    /// duplicates.
    Import(query::ImportArgs),
    /// Take a stretch of a probe's (or an SLA's) time out of its availability (force majeure,
    /// the monitor's own fault), or revoke such an exclusion; recorded with the reason, never
    /// rewriting results.
    Exclude(query::ExcludeArgs),
    /// Every exclusion (of a month): id, probe or SLA, span, reason, and whether it was revoked.
    Exclusions(query::ExclusionsArgs),
    /// Monthly availability against targets, SLAs and credits (exit 1 if a target is missed).
    Report(report::ReportArgs),
    /// A month's outages: start, end, duration, cause.
    Incidents(report::IncidentsArgs),
    /// Recent alerts and their delivery; `alerts test CHANNEL` sends a test alert.
    Alerts(alerts::AlertsArgs),
    /// What the ledger holds: results, blocks, bytes per result (daemon stopped; decodes and
    /// so checks every block).
    Stats(stats::StatsArgs),
    /// An evidence bundle for a month (SPEC §8): the signed report, its checkpoint, the
    /// results, leaves with inclusion proofs, the configuration and the public key.
    Evidence(evidence::EvidenceArgs),
    /// Check an evidence bundle offline (no ledger, no network) and recompute every figure
    /// (exit 0 valid, 1 invalid with the first discrepancy, 2 usage).
    Verify(evidence::VerifyArgs),
    /// Check the whole ledger (daemon stopped): every checksum, digests against results,
    /// counts against the seal; names each damaged range (exit 0 clean, 1 damage, 2 cannot run).
    Fsck(fsck::FsckArgs),
    /// Write a new Ed25519 signing key (OpenSSH format, PATH and PATH.pub) and print the
    /// allowed_signers line clients need to check signed reports.
    Keygen(keygen::KeygenArgs),
    /// Write a commented starter configuration (upledger.toml and probes.d/) that validates.
    Init(init::InitArgs),
    /// Print the shell completion script (bash, zsh, fish, …).
    Completions(completions::CompletionsArgs),
    /// Print the man page (roff), made from the same definitions as `--help`.
    Man,
}

/// Exit codes shared by every command (SPEC §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Everything as expected.
    Ok = 0,
    /// A check failed or a target was missed.
    Failed = 1,
    /// Usage or configuration error.
    Usage = 2,
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> Self {
        ExitCode::from(exit as u8)
    }
}

/// Parses the command line, runs the command and maps the outcome to an exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    quiet_caught_ledger_panics();
    // reqwest and tokio-rustls share one crypto provider; choose it once, explicitly. An error
    // only means one is installed already, which is fine.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    match run(cli) {
        Ok(exit) => exit.into(),
        Err(error) => {
            eprintln!("error: {error:#}");
            Exit::Usage.into()
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<Exit> {
    let config_path = config::locate(cli.config.as_deref());
    // Commands that print what they read end quietly when their reader goes away
    // (`upledger status | head -1`), as `ls | head` does. The daemon (`run`) and the commands
    // that send data to it (`import`, `exclude`) keep SIGPIPE ignored: a closed socket is an
    // error they report.
    if matches!(
        cli.command,
        Command::Status(_)
            | Command::History(_)
            | Command::Export(_)
            | Command::Stats(_)
            | Command::Exclusions(_)
            | Command::Report(_)
            | Command::Incidents(_)
            | Command::Validate
            | Command::Check(_)
            | Command::Completions(_)
            | Command::Man
    ) {
        end_quietly_on_closed_stdout();
    }
    match cli.command {
        Command::Validate => Ok(validate::run(&config_path)),
        Command::Run => run::run(&config_path),
        Command::Reload => reload::reload(&config_path),
        Command::Status(args) => query::status(&config_path, &args),
        Command::History(args) => query::history(&config_path, &args),
        Command::Export(args) => query::export(&config_path, &args),
        Command::Stats(args) => stats::stats(&config_path, &args),
        Command::Fsck(args) => fsck::fsck(&config_path, &args),
        Command::Import(args) => query::import(&config_path, &args),
        Command::Exclude(args) => query::exclude(&config_path, &args),
        Command::Exclusions(args) => query::exclusions(&config_path, &args),
        Command::Report(args) => report::report(&config_path, &args),
        Command::Evidence(args) => evidence::evidence(&config_path, &args),
        Command::Verify(args) => Ok(evidence::verify(&args)),
        Command::Incidents(args) => report::incidents(&config_path, &args),
        Command::Alerts(args) => alerts::run(&config_path, &args),
        Command::Keygen(args) => keygen::keygen(&args),
        Command::Init(args) => init::init(&args),
        Command::Completions(args) => completions::completions(&args),
        Command::Man => completions::man(),
        Command::Check(args) => match load_or_report(&config_path) {
            Some(config) => check::run(&config, &args),
            None => Ok(Exit::Usage),
        },
    }
}

/// Restores the default action of SIGPIPE (Rust ignores it, so `println!` to a closed pipe
/// panics): the process then ends silently with status 141 when its stdout is closed.
#[allow(unsafe_code)]
fn end_quietly_on_closed_stdout() {
    // SAFETY: setting a signal's disposition to SIG_DFL installs no handler, so no code runs
    // in signal context; it happens before this process starts any thread of its own.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// Loads the configuration, printing every problem to stderr when it is invalid.
fn load_or_report(path: &std::path::Path) -> Option<Config> {
    match config::load(path) {
        Ok(config) => Some(config),
        Err(error) => {
            report_config_error(&error);
            None
        }
    }
}

/// Prints a configuration error: one `error:` line per problem and a count.
fn report_config_error(error: &ConfigError) {
    match error {
        ConfigError::Invalid(diagnostics) => {
            for diagnostic in &diagnostics.0 {
                eprintln!("error: {diagnostic}");
            }
            let n = diagnostics.0.len();
            eprintln!(
                "{n} problem{} in the configuration",
                if n == 1 { "" } else { "s" }
            );
        }
        ConfigError::Read { .. } => eprintln!("error: {error}"),
    }
}

/// sled panics on some damaged ledgers; the ledger catches those panics and reports the
/// ledger as corrupt, with the path, the panic's text and what to do. The default hook would
/// first print the panic as if upledger had crashed: this one sends caught ones to the log at
/// debug level and leaves every other panic to the default hook.
fn quiet_caught_ledger_panics() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if crate::ledger::panic_is_caught() {
            tracing::debug!(panic = %info, "sled panicked on a damaged ledger");
        } else {
            default(info);
        }
    }));
}

/// Plain lines on stderr (journald adds the time under systemd); `UPLEDGER_LOG` or `RUST_LOG`
/// sets the filter, default `info`.
fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = std::env::var("UPLEDGER_LOG")
        .ok()
        .or_else(|| std::env::var("RUST_LOG").ok())
        .unwrap_or_else(|| "info".to_owned());
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .without_time()
        .init();
}
