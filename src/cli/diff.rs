//! `drplan diff OLD NEW` (or `drplan diff PLAN --git REV`): what a change to a plan does, for
//! review.

use std::path::{Path, PathBuf};

use clap::ValueEnum;

use super::session::report_all;
use super::{Ui, exit};
use crate::compare::{compare, git, human, json, markdown};
use crate::spec::FileDiagnostic;
use crate::validate::Model;

#[derive(Debug, Clone, Copy, ValueEnum)]
enum DiffFormat {
    Human,
    /// For a pull-request comment or a job summary.
    Markdown,
    Json,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The old and the new plan file; or one plan file with --git.
    #[arg(value_name = "PLAN", num_args = 1..=2, required = true)]
    plans: Vec<PathBuf>,
    /// Compare the plan file with itself at this git revision (`main`, `HEAD~1`, a commit).
    #[arg(long, value_name = "REV")]
    git: Option<String>,
    /// `human`, `markdown` (for a pull-request comment) or `json`.
    #[arg(long, value_enum, default_value_t = DiffFormat::Human)]
    format: DiffFormat,
    /// Exit 2 when there are changes (0 when there are none).
    #[arg(long)]
    detailed_exitcode: bool,
}

pub fn run(args: Args, ui: Ui) -> u8 {
    let (old, new) = match (&args.git, args.plans.as_slice()) {
        (Some(rev), [plan]) => match git::text_at(plan, rev) {
            Ok(text) => ((format!("{}@{rev}", plan.display()), text, plan.clone()), read(plan)),
            Err(e) => return report_all(ui, &[FileDiagnostic::without_source(plan, e)]),
        },
        (None, [old, new]) => (read(old), read(new)),
        _ => {
            errln!("error: give two plan files, or one plan file and --git REV");
            return exit::ERROR;
        }
    };
    let Some(old_model) = model(ui, &old.0, old.1, &old.2) else { return exit::ERROR };
    let Some(new_model) = model(ui, &new.0, new.1, &new.2) else { return exit::ERROR };
    let comparison = compare(&old_model, &new_model);
    let text = match args.format {
        DiffFormat::Human => human(&comparison, &old.0, &new.0),
        DiffFormat::Markdown => markdown(&comparison, &old.0, &new.0),
        DiffFormat::Json => format!("{}\n", json(&comparison, &old.0, &new.0)),
    };
    out!("{text}");
    if args.detailed_exitcode && !comparison.changes.is_empty() { exit::CHANGES } else { exit::OK }
}

/// A plan file's label, text (empty when unreadable: loading then says why) and path.
fn read(path: &Path) -> (String, String, PathBuf) {
    (path.display().to_string(), std::fs::read_to_string(path).unwrap_or_default(), path.to_path_buf())
}

/// The validated model of one revision; its errors (not its warnings) are shown.
fn model(ui: Ui, label: &str, text: String, path: &Path) -> Option<Model> {
    let loaded = if text.is_empty() {
        crate::spec::load_file(path)
    } else {
        // Scripts and sites are resolved against the plan's real folder.
        crate::spec::load_str(&path.with_file_name(Path::new(label).file_name().unwrap_or_default()), text)
    };
    let validation = match loaded {
        Ok(loaded) => crate::validate::validate(loaded),
        Err(problem) => {
            report_all(ui, &[*problem]);
            return None;
        }
    };
    let errors: Vec<FileDiagnostic> = validation.diagnostics.into_iter().filter(FileDiagnostic::is_error).collect();
    if !errors.is_empty() {
        report_all(ui, &errors);
    }
    validation.model
}
