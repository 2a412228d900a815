//! `drplan sim ...`: create and steer simulated datacenters.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Subcommand;

use super::session::{open, report};
use super::{Ui, exit};
use crate::contract::OpKind;
use crate::contract::Power;
use crate::contract::ProviderError;
use crate::providers::sim::generate::{EstateShape, WorldOptions, generate_plan, world_for};
use crate::providers::sim::world::{Fault, FaultKind};
use crate::providers::sim::{World, WorldStore};
use crate::spec::ProviderKind;
use crate::spec::time_format::parse_rfc3339;
use crate::validate::Model;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: SimCommand,
}

#[derive(Debug, Subcommand)]
enum SimCommand {
    /// Create the world file of a plan whose sites use `provider: sim`.
    Init {
        /// A plan document whose sites use `provider: sim` (its world file is theirs).
        #[arg(value_name = "PLAN")]
        plan: PathBuf,
        #[command(flatten)]
        world: WorldArgs,
        /// Replace an existing world.
        #[arg(long)]
        force: bool,
    },
    /// Write a valid plan of any size plus its world (for benchmarks, tests and rehearsals).
    Generate {
        /// How many machines the estate has.
        #[arg(long)]
        machines: usize,
        /// How many boot groups they are spread over.
        #[arg(long, default_value_t = 10)]
        groups: usize,
        /// Directory for `plan.yaml` and `world.json`.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Add a script step (`true`) after every n-th group.
        #[arg(long, default_value_t = 0)]
        scripts_every: usize,
        /// Start without replication (the first apply then protects everything).
        #[arg(long)]
        unprotected: bool,
        #[command(flatten)]
        world: WorldArgs,
    },
    /// Move a fixed simulated clock forward: machines write, replication takes points.
    Advance {
        /// A plan document whose sites use `provider: sim` (its world file is theirs).
        #[arg(value_name = "PLAN")]
        plan: PathBuf,
        /// How far, e.g. `10m`.
        #[arg(value_name = "DURATION")]
        by: String,
    },
    /// Take a site down (a disaster) or bring it back.
    Site {
        /// A plan document whose sites use `provider: sim` (its world file is theirs).
        #[arg(value_name = "PLAN")]
        plan: PathBuf,
        /// The site to take down or bring back.
        site: String,
        /// Take it down (a disaster): its machines stop counting writes, nothing reaches it.
        #[arg(long, conflicts_with = "up", required_unless_present = "up")]
        down: bool,
        /// Bring it back.
        #[arg(long)]
        up: bool,
    },
    /// Inject a fault into matching operations, or clear all faults.
    Fault {
        /// A plan document whose sites use `provider: sim` (its world file is theirs).
        #[arg(value_name = "PLAN")]
        plan: PathBuf,
        /// Operation kind to match (any when absent).
        #[arg(long, value_parser = parse_op_kind)]
        op: Option<OpKind>,
        /// Machine to match, by its name in the plan (any when absent).
        #[arg(long)]
        machine: Option<String>,
        /// Site to match (any when absent).
        #[arg(long)]
        site: Option<String>,
        /// What happens: the operation fails, never returns, or is throttled (retried).
        #[arg(long, value_enum, required_unless_present = "clear")]
        kind: Option<FaultArg>,
        /// Trigger at most this many times.
        #[arg(long)]
        times: Option<u32>,
        /// The error message the failing operation reports.
        #[arg(long)]
        message: Option<String>,
        /// Remove every fault.
        #[arg(long, conflicts_with_all = ["op", "machine", "site", "kind", "times", "message"])]
        clear: bool,
    },
    /// Summarise the world: clock, sites, where machines run, faults.
    Show {
        /// A plan document whose sites use `provider: sim` (its world file is theirs).
        #[arg(value_name = "PLAN")]
        plan: PathBuf,
    },
}

#[derive(Debug, Clone, clap::Args)]
struct WorldArgs {
    /// Seed for machine sizes, write rates and latency jitter.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Start with replication running and recovery points.
    #[arg(long)]
    protected: bool,
    /// A fixed simulated time (RFC 3339), or `now` to follow the wall clock.
    #[arg(long, default_value = "now")]
    clock: String,
    /// Real seconds slept per simulated second of latency.
    #[arg(long, default_value_t = 0.001)]
    time_scale: f64,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum FaultArg {
    Error,
    Hang,
    Throttle,
}

fn parse_op_kind(text: &str) -> Result<OpKind, String> {
    OpKind::ALL
        .into_iter()
        .find(|k| k.as_str() == text)
        .ok_or_else(|| format!("unknown operation; one of: {}", OpKind::ALL.map(|k| k.as_str()).join(", ")))
}

impl WorldArgs {
    fn options(&self, protected: bool) -> Result<WorldOptions, String> {
        let clock = match self.clock.as_str() {
            "now" => None,
            text => Some(parse_rfc3339(text).ok_or_else(|| format!("`{text}` is not an RFC 3339 time or `now`"))?),
        };
        Ok(WorldOptions { seed: self.seed, protected, clock, time_scale: self.time_scale })
    }
}

pub fn run(args: Args, ui: Ui) -> u8 {
    match run_inner(args, ui) {
        Ok(()) => exit::OK,
        Err(code) => code,
    }
}

fn fail(ui: Ui, message: String, help: &str) -> u8 {
    report(ui, &ProviderError::setup(message, help))
}

fn world_path(model: &Model, ui: Ui) -> Result<PathBuf, u8> {
    let site = model.site(model.protection.primary);
    match (&site.provider, &site.path) {
        (ProviderKind::Sim, Some(path)) => Ok(path.clone()),
        _ => Err(fail(
            ui,
            format!("plan `{}` does not use the sim provider", model.name),
            "sim commands need `provider: sim` sites",
        )),
    }
}

/// Change a plan's world under the plan's lock and the world's.
fn edit_world(
    plan: &Path,
    ui: Ui,
    command: &str,
    change: impl FnOnce(&mut World) -> Result<String, String>,
) -> Result<(), u8> {
    let session = open(plan, ui)?;
    let _lock = session.store.lock(command).map_err(|e| report(ui, &e))?;
    let path = world_path(&session.model, ui)?;
    // Under the world's own lock, re-read inside it: other plans may share the world.
    let mut store = WorldStore::new(&path);
    let outcome = store.update(change).map_err(|e| report(ui, &e))?;
    let message = outcome.map_err(|m| fail(ui, m, "see `drplan sim --help`"))?;
    outln!("{message}");
    Ok(())
}

fn run_inner(args: Args, ui: Ui) -> Result<(), u8> {
    match args.command {
        SimCommand::Init { plan, world, force } => {
            let session = open(&plan, ui)?;
            let _lock = session.store.lock("drplan sim init").map_err(|e| report(ui, &e))?;
            let path = world_path(&session.model, ui)?;
            if path.exists() && !force {
                return Err(fail(
                    ui,
                    format!("sim world `{}` already exists", path.display()),
                    "pass --force to replace it",
                ));
            }
            let options =
                world.options(world.protected).map_err(|m| fail(ui, m, "e.g. --clock 2026-11-01T00:00:00Z"))?;
            let w = world_for(&session.model, &options);
            WorldStore::new(&path).save(&w).map_err(|e| report(ui, &e))?;
            outln!(
                "Created sim world {} with {} machines at {}{}.",
                path.display(),
                w.machines.len(),
                session.model.site(session.model.protection.primary).name,
                if options.protected { ", replicating" } else { ", not yet protected" }
            );
            Ok(())
        }
        SimCommand::Generate { machines, groups, out, scripts_every, unprotected, world } => {
            let options = world.options(!unprotected).map_err(|m| fail(ui, m, "e.g. --clock 2026-11-01T00:00:00Z"))?;
            let mut shape = EstateShape::new(machines, groups);
            shape.script_every = scripts_every;
            std::fs::create_dir_all(&out)
                .map_err(|e| fail(ui, format!("cannot create {}: {e}", out.display()), "check the path"))?;
            let plan_path = out.join("plan.yaml");
            let text = generate_plan(&shape);
            crate::state::atomic::write_atomic(&plan_path, text.as_bytes())
                .map_err(|e| fail(ui, format!("cannot write {}: {e}", plan_path.display()), "check the path"))?;
            let schema = out.join(crate::spec::schema::SCHEMA_FILE);
            crate::state::atomic::write_atomic(&schema, crate::spec::schema::plan_schema_json().as_bytes())
                .map_err(|e| fail(ui, format!("cannot write {}: {e}", schema.display()), "check the path"))?;
            let session = open(&plan_path, ui)?;
            let w = world_for(&session.model, &options);
            WorldStore::new(&out.join("world.json")).save(&w).map_err(|e| report(ui, &e))?;
            outln!(
                "Wrote {} ({machines} machines, {groups} groups) and {}.",
                plan_path.display(),
                out.join("world.json").display()
            );
            Ok(())
        }
        SimCommand::Advance { plan, by } => {
            let by: Duration = humantime::parse_duration(&by)
                .map_err(|e| fail(ui, format!("`{by}` is not a duration: {e}"), "e.g. `10m` or `2h`"))?;
            edit_world(&plan, ui, "drplan sim advance", |world| {
                let Some(clock) = world.clock else {
                    return Err(
                        "this world follows the wall clock; recreate it with a fixed `--clock` to advance it".into()
                    );
                };
                let now = clock + by;
                world.clock = Some(now);
                Ok(format!("Sim clock is now {}.", humantime::format_rfc3339_seconds(now)))
            })
        }
        SimCommand::Site { plan, site, down, .. } => edit_world(&plan, ui, "drplan sim site", |world| {
            let now = world.now();
            let entry = world.sites.get_mut(&site).ok_or_else(|| format!("the world has no site `{site}`"))?;
            entry.reachable = !down;
            entry.dark_since = down.then_some(now);
            Ok(format!("Site {site} is {}.", if down { "down" } else { "up" }))
        }),
        SimCommand::Fault { plan, op, machine, site, kind, times, message, clear } => {
            edit_world(&plan, ui, "drplan sim fault", |world| {
                if clear {
                    let n = world.faults.len();
                    world.faults.clear();
                    return Ok(format!("Cleared {n} fault(s)."));
                }
                let kind = match kind {
                    Some(FaultArg::Error) => FaultKind::Error,
                    Some(FaultArg::Hang) => FaultKind::Hang,
                    Some(FaultArg::Throttle) => FaultKind::Throttle,
                    None => return Err("--kind is required".into()),
                };
                world.faults.push(Fault { op, machine, site, kind, times, triggered: 0, message });
                Ok(format!("Added fault {} ({} in all).", world.faults.len(), world.faults.len()))
            })
        }
        SimCommand::Show { plan } => {
            let session = open(&plan, ui)?;
            let path = world_path(&session.model, ui)?;
            let world = WorldStore::new(&path).load().map_err(|e| report(ui, &e))?;
            out!("{}", describe(&world));
            Ok(())
        }
    }
}

fn describe(world: &World) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let clock =
        world.clock.map_or_else(|| "wall clock".to_string(), |c| humantime::format_rfc3339_seconds(c).to_string());
    let _ = writeln!(out, "clock: {clock} (time scale {})", world.time_scale);
    for (name, site) in &world.sites {
        let machines: Vec<_> = world.machines.values().filter(|m| &m.active == name).collect();
        let on = machines.iter().filter(|m| m.copies.get(name).is_some_and(|c| c.power == Power::On)).count();
        let protected = machines.iter().filter(|m| m.replication.is_some()).count();
        let _ = writeln!(
            out,
            "site {name}: {}, {} machines live ({on} running, {protected} replicating)",
            if site.reachable { "up" } else { "DOWN" },
            machines.len()
        );
    }
    let _ = writeln!(out, "faults: {}", world.faults.len());
    out
}
