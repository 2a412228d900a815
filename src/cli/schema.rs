//! `drplan schema`: the plan document's JSON Schema.

use std::io::Write;

use super::{Ui, exit};
use crate::spec::schema::plan_schema_json;

#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(_args: Args, _ui: Ui) -> u8 {
    let mut out = std::io::stdout().lock();
    match out.write_all(plan_schema_json().as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => exit::OK,
        // The reader took what it wanted (`| head`).
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => exit::OK,
        Err(e) => {
            errln!("error: cannot write the schema: {e}");
            exit::ERROR
        }
    }
}
