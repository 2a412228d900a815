//! `drplan import asr FILE`: an Azure Site Recovery recovery plan as a plan document.

use std::path::{Path, PathBuf};

use super::session::report_all;
use super::{Ui, exit};
use crate::interop::asr::{AsrError, Input, import, read};
use crate::spec::FileDiagnostic;

/// The largest input read: recovery plans are small; a template of a whole estate is not huge.
const MAX_INPUT_BYTES: u64 = 64 << 20;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    from: From,
}

#[derive(Debug, clap::Subcommand)]
enum From {
    /// An Azure Site Recovery recovery plan: its GET body, a `value` list, a create request
    /// body or an ARM template.
    Asr(AsrArgs),
}

#[derive(Debug, clap::Args)]
struct AsrArgs {
    /// The JSON document.
    #[arg(value_name = "FILE")]
    file: PathBuf,
    /// Which recovery plan, when the document holds several.
    #[arg(long, value_name = "NAME")]
    plan: Option<String>,
    /// Write the plan document here instead of stdout.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Replace `--out` when it exists.
    #[arg(long)]
    force: bool,
}

pub fn run(args: Args, ui: Ui) -> u8 {
    let From::Asr(args) = args.from;
    let text = match read_text(&args.file) {
        Ok(text) => text,
        Err(problem) => return report_all(ui, &[FileDiagnostic::without_source(&args.file, problem)]),
    };
    let mut input = Input::new(&args.file, text);
    let Some(plan) = read(&mut input, args.plan.as_deref()) else {
        report_all(ui, &input.problems);
        return exit::ERROR;
    };
    let yaml = import(&mut input, &plan, &args.file.display().to_string());
    // The document drplan wrote must read back as a plan document.
    if let Err(problem) = crate::spec::load_str(Path::new("imported.yaml"), yaml.clone()) {
        report_all(ui, &input.problems);
        return report_all(ui, &[*problem]);
    }
    report_all(ui, &input.problems);
    let machines: usize = plan.groups.iter().map(|g| g.items.len()).sum();
    let actions: usize = plan.groups.iter().map(|g| g.start.len() + g.end.len()).sum();
    let boot = plan.groups.iter().filter(|g| g.kind == crate::interop::asr::GroupKind::Boot).count();
    let summary = format!(
        "Imported recovery plan `{}`: {machines} machines in {boot} boot groups, {actions} actions as steps.",
        plan.name.as_deref().unwrap_or("(unnamed)")
    );
    match &args.out {
        None => out!("{yaml}"),
        Some(path) => {
            if path.exists() && !args.force {
                let problem =
                    AsrError::Unreadable { path: path.clone(), reason: "it exists; pass --force to replace it".into() };
                return report_all(ui, &[FileDiagnostic::without_source(path, problem)]);
            }
            if let Err(e) = crate::state::atomic::write_atomic(path, yaml.as_bytes()) {
                let problem = AsrError::Unreadable { path: path.clone(), reason: format!("cannot write it: {e}") };
                return report_all(ui, &[FileDiagnostic::without_source(path, problem)]);
            }
        }
    }
    errln!("{summary} Replace each TODO, then run `drplan validate`.");
    exit::OK
}

fn read_text(path: &Path) -> Result<String, AsrError> {
    let unreadable = |reason: String| AsrError::Unreadable { path: path.to_path_buf(), reason };
    let meta = std::fs::metadata(path).map_err(|e| unreadable(e.to_string()))?;
    if meta.len() > MAX_INPUT_BYTES {
        return Err(unreadable(format!("it is {} bytes; the limit is {MAX_INPUT_BYTES}", meta.len())));
    }
    let bytes = std::fs::read(path).map_err(|e| unreadable(e.to_string()))?;
    String::from_utf8(bytes).map_err(|_| unreadable("it is not UTF-8 text".into()))
}
