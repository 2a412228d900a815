//! `drplan provider serve sim|local`: a built-in provider behind the plugin protocol on stdin
//! and stdout. `drplan provider test -- ARGV...`: the contract suite against a plugin, a
//! pass/fail table and exit 0 only when every scenario passes (the conformance kit).

use std::path::PathBuf;

use super::{Format, Ui, exit};
use crate::contract::suite::{self, Fixture};
use crate::providers::plugin::Launch;
use crate::providers::plugin::fixture::PluginFixture;
use crate::spec::ProviderKind;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Serve a built-in provider over the plugin protocol on stdin/stdout.
    Serve {
        /// Which built-in provider.
        #[arg(value_enum)]
        provider: Builtin,
    },
    /// Run the provider contract suite against a plugin and print a pass/fail table.
    Test {
        /// Only the scenarios whose name contains this.
        #[arg(long)]
        only: Option<String>,
        /// `human` (a table) or `json` (one object per scenario).
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
        /// The plugin's command line (argv, never a shell string), after `--`.
        #[arg(last = true, required = true, value_name = "ARGV")]
        argv: Vec<String>,
    },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Builtin {
    Sim,
    Local,
}

pub async fn run(args: Args, _ui: Ui) -> u8 {
    match args.command {
        Command::Serve { provider } => {
            let kind = match provider {
                Builtin::Sim => ProviderKind::Sim,
                Builtin::Local => ProviderKind::Local,
            };
            crate::providers::plugin::serve::serve(kind).await
        }
        Command::Test { only, format, argv } => {
            let launch = Launch {
                name: argv.first().cloned().unwrap_or_default(),
                argv,
                dir: std::env::current_dir().unwrap_or_else(|_| PathBuf::from(".")),
            };
            let fixture = PluginFixture { launch };
            let results = suite::run(&fixture, only.as_deref()).await;
            match format {
                Format::Human => out!("{}", suite::table(&fixture.name(), &results)),
                Format::Json => super::output::json(&results),
            }
            if !results.is_empty() && results.iter().all(|r| r.passed) { exit::OK } else { exit::ERROR }
        }
    }
}
