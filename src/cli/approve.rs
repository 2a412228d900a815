//! `drplan approve PLAN STEP [--by NAME]`: record an approval of a manual step of the
//! unfinished run; `drplan resume` then continues past it.

use std::path::PathBuf;

use super::session::{fail, open};
use super::{Ui, exit};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The plan document whose unfinished run waits for the approval.
    #[arg(value_name = "PLAN")]
    plan: PathBuf,
    /// The step id, e.g. `app/before/dns` or `gate/complete-failover`.
    #[arg(value_name = "STEP")]
    step: String,
    /// Who approves (default: $USER). Must be one of the step's approvers, if it names any.
    #[arg(long)]
    by: Option<String>,
}

pub fn run(args: Args, ui: Ui) -> u8 {
    let result = (|| {
        let workspace = open(&args.plan, ui)?;
        let mut held = workspace.lock("drplan approve").map_err(|f| fail(ui, f))?;
        let by = args.by.clone().unwrap_or_else(|| std::env::var("USER").unwrap_or_else(|_| "unknown".into()));
        match held.approve(&args.step, &by).map_err(|f| fail(ui, f))? {
            None => outln!("Approved {} by {by}. Continue with `drplan resume {}`.", args.step, args.plan.display()),
            Some(earlier) => outln!(
                "{} was already approved by {} at {}; nothing recorded. Continue with `drplan resume {}`.",
                args.step,
                earlier.by,
                humantime::format_rfc3339_seconds(earlier.at),
                args.plan.display()
            ),
        }
        Ok(exit::OK)
    })();
    match result {
        Ok(code) | Err(code) => code,
    }
}
