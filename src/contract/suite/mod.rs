//! The contract suite: the same scenarios, run against any provider, check that it follows the
//! rules of [`crate::contract`]: every operation does what it must, asking again is a no-op
//! that says so, an interrupted transfer is never mistaken for a finished one, a dark site is
//! reported and handled, drills never touch the replica or production, and data moved by a
//! planned operation arrives whole.
//!
//! A provider takes part through a [`Fixture`]: it makes fresh estates (three sites, machines
//! live at the first) and acts as the outside world on them (the machines write data, a site
//! goes dark, the content of a copy is read). `cargo test` runs the suite against `sim` and
//! `local`; `drplan provider test -- ARGV` runs it against a plugin.

mod scenarios;

pub use scenarios::scenario_names;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::Provider;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The sites of every test estate: machines start live at `PRIMARY`; `RECOVERY` is where they
/// fail over to; `ALTERNATE` is a third site for failback to an alternate location.
pub const PRIMARY: &str = "dc1";
pub const RECOVERY: &str = "dc2";
pub const ALTERNATE: &str = "dc3";

/// Makes test estates for one provider.
pub trait Fixture: Send + Sync {
    /// For the results table.
    fn name(&self) -> String;
    /// A fresh estate: machines `m1`..`mN`, live and running at [`PRIMARY`], not protected.
    fn create(&self, machines: usize) -> BoxFuture<'_, Result<Box<dyn Estate>, String>>;
}

/// One test estate, and the outside world's hands on it.
pub trait Estate: Send + Sync {
    fn provider(&self) -> Arc<dyn Provider>;
    /// The machine writes new data at its live copy (which runs).
    fn write<'a>(&'a self, machine: &'a str) -> BoxFuture<'a, Result<(), String>>;
    /// A site goes dark, or comes back.
    fn set_reachable<'a>(&'a self, site: &'a str, reachable: bool) -> BoxFuture<'a, Result<(), String>>;
    /// A digest of the data of the machine's copy at `site` (live copy or replica), to compare
    /// copies with each other and with earlier readings.
    fn content<'a>(&'a self, machine: &'a str, site: &'a str) -> BoxFuture<'a, Result<String, String>>;
    /// The scenario is over: tear the estate down, and wait until that is done (a plugin's
    /// estate may have machines running).
    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }
}

/// How one scenario went.
#[derive(Debug, Clone, Serialize)]
pub struct ScenarioResult {
    pub scenario: &'static str,
    /// What the scenario checks, in a sentence.
    pub checks: &'static str,
    pub passed: bool,
    /// The first rule broken, when it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    #[serde(with = "crate::spec::time_format::duration_ms")]
    pub took: Duration,
}

/// Run every scenario (or those whose name contains `only`), each on a fresh estate.
pub async fn run(fixture: &dyn Fixture, only: Option<&str>) -> Vec<ScenarioResult> {
    let mut results = Vec::new();
    for scenario in scenarios::ALL.iter().filter(|s| only.is_none_or(|o| s.name.contains(o))) {
        let started = Instant::now();
        let outcome = match fixture.create(scenario.machines).await {
            Ok(estate) => {
                let outcome = (scenario.run)(estate.as_ref()).await;
                estate.close().await;
                outcome
            }
            Err(e) => Err(format!("the fixture could not create an estate: {e}")),
        };
        results.push(ScenarioResult {
            scenario: scenario.name,
            checks: scenario.checks,
            passed: outcome.is_ok(),
            failure: outcome.err(),
            took: started.elapsed(),
        });
    }
    results
}

/// The results as a table for people.
pub fn table(provider: &str, results: &[ScenarioResult]) -> String {
    use std::fmt::Write as _;
    let width = results.iter().map(|r| r.scenario.len()).max().unwrap_or(8).max(8);
    let mut out = format!("contract suite against {provider}\n\n");
    for r in results {
        let mark = if r.passed { "pass" } else { "FAIL" };
        let took = crate::spec::time_format::human_duration(r.took);
        let _ = writeln!(out, "  {mark}  {:<width$}  {took:>7}  {}", r.scenario, r.checks);
        if let Some(failure) = &r.failure {
            let _ = writeln!(out, "        {:<width$}           ↳ {failure}", "");
        }
    }
    let passed = results.iter().filter(|r| r.passed).count();
    let _ = writeln!(out, "\n{passed} of {} scenarios passed.", results.len());
    out
}

/// The plan document of a test estate: sites [`PRIMARY`], [`RECOVERY`] and [`ALTERNATE`] of
/// `provider` at `paths`, machines `m1`..`mN` in one group.
pub fn estate_plan(provider: &str, paths: [&str; 3], machines: usize) -> String {
    use std::fmt::Write as _;
    let mut text = format!(
        "version: 1\nname: contract\nsites:\n  {PRIMARY}: {{ provider: {provider}, path: {} }}\n  {RECOVERY}: {{ provider: {provider}, path: {} }}\n  {ALTERNATE}: {{ provider: {provider}, path: {} }}\n\
         protection: {{ primary: {PRIMARY}, recovery: {RECOVERY}, rpo: 5m, rto: 30m, keep_points: 8 }}\n\
         networks: [ {{ source: prod, target: dr, test: drill }} ]\nmachines:\n",
        paths[0], paths[1], paths[2]
    );
    let names: Vec<String> = (1..=machines).map(|i| format!("m{i}")).collect();
    for (i, name) in names.iter().enumerate() {
        let _ = writeln!(text, "  - {{ name: {name}, nics: [ {{ network: prod, ip: 10.0.0.{} }} ] }}", i + 10);
    }
    let _ = write!(
        text,
        "groups: [ {{ name: all, machines: [{}] }} ]\ntarget: {{ active: {PRIMARY} }}\n",
        names.join(", ")
    );
    text
}

/// A fresh directory for a test estate under the system's temporary directory, removed when
/// dropped.
pub struct ScratchDir(pub std::path::PathBuf);

impl ScratchDir {
    pub fn new(prefix: &str) -> std::io::Result<Self> {
        let dir = std::env::temp_dir().join(format!("{prefix}-{}", crate::state::new_id()));
        std::fs::create_dir_all(&dir)?;
        Ok(ScratchDir(dir))
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Validate an estate's plan document written into `dir`.
pub fn estate_model(dir: &std::path::Path, text: &str) -> Result<crate::validate::Model, String> {
    let path = dir.join("contract.yaml");
    std::fs::write(&path, text).map_err(|e| e.to_string())?;
    let validation = crate::validate::validate_file(&path);
    validation.model.ok_or_else(|| {
        let problems: Vec<String> = validation.diagnostics.iter().map(|d| d.to_string()).collect();
        format!("the estate's plan is invalid: {}", problems.join("; "))
    })
}
