//! `drplan export asr PLAN`: a plan document as an Azure Site Recovery recovery plan.

use std::path::PathBuf;

use clap::ValueEnum;

use super::session::report_all;
use super::{Ui, exit};
use crate::interop::asr::{API_VERSION, AsrError, bicep_resource, export};
use crate::spec::FileDiagnostic;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    to: To,
}

#[derive(Debug, clap::Subcommand)]
enum To {
    /// An Azure Site Recovery recovery plan: the body of a create request, or Bicep.
    Asr(AsrArgs),
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum AsrFormat {
    /// `{"properties": …}` for `PUT …/replicationRecoveryPlans/NAME` (and ARM templates).
    Arm,
    /// A Bicep resource with the vault as a parameter.
    Bicep,
}

#[derive(Debug, clap::Args)]
struct AsrArgs {
    /// The plan document.
    #[arg(value_name = "PLAN")]
    plan: PathBuf,
    /// `arm` (the create request body) or `bicep` (a resource with the vault as a parameter).
    #[arg(long, value_enum, default_value_t = AsrFormat::Arm)]
    format: AsrFormat,
    /// Write here instead of stdout.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

pub fn run(args: Args, ui: Ui) -> u8 {
    let To::Asr(args) = args.to;
    let loaded = match crate::spec::load_file(&args.plan) {
        Ok(loaded) => loaded,
        Err(problem) => return report_all(ui, &[*problem]),
    };
    let exported = export(&loaded.source, &loaded.document);
    report_all(ui, &exported.problems);
    let Some(plan) = exported.plan else { return exit::ERROR };
    let body = plan.to_arm();
    let text = match args.format {
        AsrFormat::Arm => format!("{}\n", serde_json::to_string_pretty(&body).unwrap_or_default()),
        AsrFormat::Bicep => {
            let name = plan.name.as_deref().unwrap_or(&loaded.document.name.value);
            bicep_resource(name, &body, API_VERSION, &args.plan.display().to_string())
        }
    };
    match &args.out {
        None => out!("{text}"),
        Some(path) => {
            if let Err(e) = crate::state::atomic::write_atomic(path, text.as_bytes()) {
                let problem = AsrError::Unreadable { path: path.clone(), reason: format!("cannot write it: {e}") };
                return report_all(ui, &[FileDiagnostic::without_source(path, problem)]);
            }
        }
    }
    exit::OK
}
