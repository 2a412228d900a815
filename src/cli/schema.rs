//! `drplan schema`: the plan document's JSON Schema.

use super::{Ui, exit};
use crate::spec::schema::plan_schema_json;

#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(_args: Args, _ui: Ui) -> u8 {
    // A write that fails (other than a reader that stopped reading) fails the command.
    out!("{}", plan_schema_json());
    exit::OK
}
