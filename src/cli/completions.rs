//! Shell completions and the man page, both generated from the same clap definitions as the
//! parser itself, so they never disagree with it.

use std::io::Write;

use clap::CommandFactory;

use super::{Cli, Exit};

/// Arguments of `upledger completions`.
#[derive(Debug, clap::Args)]
pub(super) struct CompletionsArgs {
    /// The shell: bash, zsh, fish, elvish or powershell.
    shell: clap_complete::Shell,
}

/// Prints the completion script for a shell (`source <(upledger completions bash)`, or install
/// it where the shell looks: /usr/share/bash-completion/completions/upledger, …).
pub(super) fn completions(args: &CompletionsArgs) -> anyhow::Result<Exit> {
    let mut command = Cli::command();
    let mut out = std::io::stdout().lock();
    clap_complete::generate(args.shell, &mut command, "upledger", &mut out);
    out.flush()?;
    Ok(Exit::Ok)
}

/// Prints the man page (roff): `upledger man > upledger.1; man -l upledger.1`.
pub(super) fn man() -> anyhow::Result<Exit> {
    let page = clap_mangen::Man::new(Cli::command());
    let mut out = std::io::stdout().lock();
    page.render(&mut out)?;
    out.flush()?;
    Ok(Exit::Ok)
}
