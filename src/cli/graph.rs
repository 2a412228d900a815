//! `drplan graph PLAN`: the boot-group and step DAG as Graphviz dot or Mermaid.

use std::path::PathBuf;

use clap::ValueEnum;

use super::session::open;
use super::{Ui, exit};
use crate::report::graph::{to_dot, to_mermaid};

#[derive(Debug, Clone, Copy, ValueEnum)]
enum GraphFormat {
    Dot,
    Mermaid,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The plan document to draw.
    #[arg(value_name = "PLAN")]
    plan: PathBuf,
    /// `dot` (Graphviz) or `mermaid`.
    #[arg(long, value_enum, default_value_t = GraphFormat::Dot)]
    format: GraphFormat,
}

pub fn run(args: Args, ui: Ui) -> u8 {
    let session = match open(&args.plan, ui) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let text = match args.format {
        GraphFormat::Dot => to_dot(&session.model),
        GraphFormat::Mermaid => to_mermaid(&session.model),
    };
    out!("{text}");
    exit::OK
}
