//! Semantic checks of a parsed plan. Every problem becomes a diagnostic with a span;
//! all of them are reported in one run. A plan without errors becomes a [`Model`].

mod across;
mod checker;
pub mod error;
mod groups;
pub mod model;
mod networks;
mod sites;
mod state;
mod steps;

use std::path::Path;

pub use across::across_plans;
pub use error::ValidationError;
pub use model::*;

use crate::spec::{FileDiagnostic, LoadedPlan, PlanDocument, SourceFile, span_of};
use checker::{Checker, NameTable};

/// What validation found: diagnostics in document order and, when there is no error, the model.
#[derive(Debug)]
pub struct Validation {
    pub diagnostics: Vec<FileDiagnostic>,
    pub model: Option<Model>,
}

impl Validation {
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(FileDiagnostic::is_error)
    }
}

/// Load and validate a plan file. Load failures come back as a single diagnostic.
pub fn validate_file(path: &Path) -> Validation {
    match crate::spec::load_file(path) {
        Ok(loaded) => validate(loaded),
        Err(diagnostic) => Validation { diagnostics: vec![*diagnostic], model: None },
    }
}

pub fn validate(loaded: LoadedPlan) -> Validation {
    let LoadedPlan { source, document } = loaded;
    let mut cx = Checker::default();
    let model = check(&mut cx, &document, &source);
    let mut problems = std::mem::take(&mut cx.problems);
    // Document order reads best; the sort is stable, so ties keep discovery order.
    problems.sort_by_key(|p| first_offset(p).unwrap_or(usize::MAX));
    let failed = problems.iter().any(|p| {
        use miette::Diagnostic;
        !matches!(p.severity(), Some(miette::Severity::Warning))
    });
    let diagnostics =
        crate::spec::collapse(problems.into_iter().map(|p| FileDiagnostic::new(source.clone(), p)).collect());
    Validation { diagnostics, model: if failed { None } else { model } }
}

fn first_offset(problem: &ValidationError) -> Option<usize> {
    use miette::Diagnostic;
    let labels: Vec<_> = problem.labels()?.collect();
    labels.iter().find(|l| l.primary()).or(labels.first()).map(|l| l.offset())
}

fn check(cx: &mut Checker, doc: &PlanDocument, source: &SourceFile) -> Option<Model> {
    if doc.version.value != 1 {
        cx.report(ValidationError::UnsupportedVersion { found: doc.version.value, at: span_of(&doc.version) });
    }
    cx.check_name("plan", &doc.name);
    // Absolute, so that script and site paths (and a saved plan) work from any directory.
    let base_dir = std::path::absolute(source.base_dir()).unwrap_or_else(|_| source.base_dir());

    let site_names = NameTable::build(cx, "site", doc.sites.iter().map(|(name, _)| name));
    let sites = sites::check_sites(cx, doc, &base_dir);
    let protection = sites::check_protection(cx, doc, &site_names);
    let target = sites::check_target(cx, doc, &site_names);
    let state = state::check_state(cx, doc, &sites, &base_dir);

    let nets = networks::check_networks(cx, doc);
    let machine_names = NameTable::build(cx, "machine", doc.machines.iter().map(|m| &m.name));
    let nics = networks::check_nics(cx, &doc.machines, &nets);
    let boot_timeouts: Vec<_> = doc
        .machines
        .iter()
        .map(|m| match &m.boot_timeout {
            Some(t) => cx.positive_duration(t, "a machine needs time to boot; omit `boot_timeout` for the 5m default"),
            None => Some(DEFAULT_BOOT_TIMEOUT),
        })
        .collect();

    let consistency: Vec<_> = doc
        .machines
        .iter()
        .map(|m| m.consistency.as_ref().map(|hooks| steps::check_consistency(cx, hooks, &base_dir)))
        .collect();

    sites::check_machine_ids(cx, doc);
    let group_names = NameTable::build(cx, "group", doc.groups.iter().map(|g| &g.name));
    let groups = groups::check_groups(cx, doc, &machine_names, &group_names);
    let steps: Vec<_> = doc.groups.iter().map(|g| steps::check_steps(cx, g, &base_dir)).collect();
    let phases = doc.phases.as_ref();
    let shutdown_steps = steps::check_phase_steps(cx, "shutdown", phases.and_then(|p| p.shutdown.as_ref()), &base_dir);
    let failover_steps = steps::check_phase_steps(cx, "failover", phases.and_then(|p| p.failover.as_ref()), &base_dir);

    if cx.has_errors() {
        return None;
    }
    let (protection, target, nics, groups) = (protection?, target?, nics?, groups?);
    let machines = doc
        .machines
        .iter()
        .zip(nics)
        .zip(boot_timeouts)
        .zip(consistency)
        .enumerate()
        .map(|(m, (((machine, nics), boot_timeout), consistency))| {
            Some(MachineSpec {
                name: machine.name.value.clone(),
                provider_id: machine.id.as_ref().map_or_else(|| machine.name.value.clone(), |id| id.value.clone()),
                nics,
                boot_timeout: boot_timeout?,
                group: groups.machine_group[m],
                consistency: consistency.map_or(Some(None), |c| c.map(Some))?,
            })
        })
        .collect::<Option<Vec<_>>>()?;
    let group_specs = doc
        .groups
        .iter()
        .zip(steps)
        .enumerate()
        .map(|(g, (group, steps))| {
            let [before, after] = steps?;
            Some(GroupSpec {
                name: group.name.value.clone(),
                depends_on: groups.depends_on[g].clone(),
                machines: groups.members[g].clone(),
                before,
                after,
            })
        })
        .collect::<Option<Vec<_>>>()?;
    Some(Model {
        source: source.clone(),
        name: doc.name.value.clone(),
        description: doc.description.clone(),
        document_hash: blake3::hash(source.text().as_bytes()).to_hex().to_string(),
        sites,
        protection,
        networks: nets.specs,
        machines,
        groups: group_specs,
        shutdown_steps: shutdown_steps?,
        failover_steps: failover_steps?,
        target,
        state,
    })
}
