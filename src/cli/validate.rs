//! `drplan validate PLAN...`: every problem in every file, in one run.

use std::path::PathBuf;

use super::{Format, Ui, exit};
use crate::report::diagnostics::{render, tally, to_json};
use crate::validate::validate_file;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Plan files to check.
    #[arg(required = true, value_name = "PLAN")]
    plans: Vec<PathBuf>,
    /// `human` (reports on stderr) or `json` (`{"diagnostics":[...]}` on stdout).
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,
}

pub async fn run(args: Args, ui: Ui) -> u8 {
    let mut results: Vec<_> = args.plans.iter().map(|p| (p, validate_file(p))).collect();
    // A plugin's site settings are checked against the schema it publishes.
    for (_, validation) in results.iter_mut() {
        if let Some(model) = &validation.model {
            let found = crate::providers::plugin::settings::check(model).await;
            validation.diagnostics.extend(found);
        }
    }
    // Plans validated together are also checked against each other.
    let validations: Vec<_> = results.iter().map(|(_, v)| v).collect();
    let across = crate::validate::across_plans(&validations);
    for found in across {
        if let Some((_, v)) = results.iter_mut().find(|(p, _)| p.as_path() == found.path()) {
            v.diagnostics.push(found);
        }
    }
    let all: Vec<_> = results.iter().flat_map(|(_, v)| v.diagnostics.iter()).collect();
    let failed = results.iter().any(|(_, v)| v.has_errors());
    match args.format {
        Format::Json => outln!("{}", to_json(&all)),
        Format::Human => {
            for (path, validation) in &results {
                for diagnostic in &validation.diagnostics {
                    err!("{}", render(diagnostic, ui.stderr_style));
                    errln!();
                }
                let found: Vec<_> = validation.diagnostics.iter().collect();
                if validation.has_errors() {
                    errln!("✗ {}: {}", path.display(), tally(&found));
                } else if found.is_empty() {
                    errln!("✓ {} is valid", path.display());
                } else {
                    errln!("✓ {} is valid ({})", path.display(), tally(&found));
                }
            }
        }
    }
    if failed { exit::ERROR } else { exit::OK }
}
