//! `drplan export asr`: a plan document as an Azure Site Recovery recovery plan. The
//! phases' steps become the Shutdown and Failover groups' actions, the boot groups Boot
//! groups in an order that keeps every `depends_on`, steps actions; `asr:` keys give back
//! what import kept. What ASR cannot say is a warning; what it needs and the plan lacks, an
//! error.

use miette::SourceSpan;

use super::error::AsrError;
use super::model::{ActionDetails, GroupKind, Item, PlanAction, PlanGroup, RecoveryPlan};
use super::vocabulary::{ALL_OPERATIONS, direction_name, directions_meant, failover_types_of, operations_meant};
use crate::spec::asr::{AsrAction, AsrLocation};
use crate::spec::{Direction, FileDiagnostic, Group, Operation, PlanDocument, SourceFile, Step, span_of};

pub struct Exported {
    pub plan: Option<RecoveryPlan>,
    pub problems: Vec<FileDiagnostic>,
}

struct Exporter<'d> {
    source: SourceFile,
    doc: &'d PlanDocument,
    problems: Vec<FileDiagnostic>,
}

pub fn export(source: &SourceFile, doc: &PlanDocument) -> Exported {
    let mut e = Exporter { source: source.clone(), doc, problems: Vec::new() };
    let plan = e.plan();
    let failed = e.problems.iter().any(FileDiagnostic::is_error);
    Exported { plan: if failed { None } else { plan }, problems: e.problems }
}

impl Exporter<'_> {
    fn error(&mut self, what: String, help: String, at: SourceSpan) {
        self.problems.push(FileDiagnostic::new(self.source.clone(), AsrError::Export { what, help, at }));
    }

    fn warn(&mut self, what: String, help: String, at: SourceSpan) {
        self.problems.push(FileDiagnostic::new(self.source.clone(), AsrError::ExportChanges { what, help, at }));
    }

    fn plan(&mut self) -> Option<RecoveryPlan> {
        let doc = self.doc;
        let asr = doc.asr.clone().unwrap_or_default();
        let fabric = |id: Option<String>, key: &str, site: &serde_saphyr::Spanned<String>, e: &mut Self| {
            if id.is_none() {
                e.error(
                    format!("site `{}` has no ASR fabric", site.value),
                    format!("set `asr: {{ {key}: ARM-ID }}` at the end of the plan (the fabric's id in the vault)"),
                    span_of(site),
                );
            }
            id
        };
        let primary = fabric(asr.primary_fabric_id, "primary_fabric_id", &doc.protection.primary, self);
        let recovery = fabric(asr.recovery_fabric_id, "recovery_fabric_id", &doc.protection.recovery, self);
        let phases = doc.phases.as_ref();
        let mut groups = Vec::new();
        for (kind, steps) in [
            (GroupKind::Shutdown, phases.and_then(|p| p.shutdown.as_ref())),
            (GroupKind::Failover, phases.and_then(|p| p.failover.as_ref())),
        ] {
            let (start, end) = match steps {
                Some(steps) => (self.actions(&steps.value.before), self.actions(&steps.value.after)),
                None => (Vec::new(), Vec::new()),
            };
            groups.push(PlanGroup { kind, items: Vec::new(), start, end });
        }
        for g in self.boot_order()? {
            let group = &doc.groups[g];
            let items = self.items(group);
            let (start, end) = (self.actions(&group.before), self.actions(&group.after));
            groups.push(PlanGroup { kind: GroupKind::Boot, items, start, end });
        }
        Some(RecoveryPlan {
            name: Some(asr.name.unwrap_or_else(|| doc.name.value.clone())),
            primary_fabric_id: primary?,
            primary_fabric_name: None,
            recovery_fabric_id: recovery?,
            recovery_fabric_name: None,
            failover_deployment_model: asr.failover_deployment_model,
            provider_specific_input: asr.provider_specific_input,
            groups,
        })
    }

    /// The boot groups in document order where their `depends_on` allows, one after
    /// another (ASR runs boot groups in sequence; groups drplan runs side by side are
    /// said to be serialized).
    fn boot_order(&mut self) -> Option<Vec<usize>> {
        let groups = &self.doc.groups;
        let index = |name: &str| groups.iter().position(|g| g.name.value == name);
        let mut deps: Vec<Vec<usize>> = Vec::new();
        for (g, group) in groups.iter().enumerate() {
            match &group.depends_on {
                None => deps.push(if g == 0 { Vec::new() } else { vec![g - 1] }),
                Some(list) => {
                    let mut found = Vec::new();
                    for name in list {
                        match index(&name.value) {
                            Some(d) => found.push(d),
                            None => {
                                let help = "run `drplan validate` on the plan first".to_string();
                                self.error(format!("unknown group `{}`", name.value), help, span_of(name));
                                return None;
                            }
                        }
                    }
                    deps.push(found);
                }
            }
        }
        let mut order = Vec::new();
        let mut placed = vec![false; groups.len()];
        while order.len() < groups.len() {
            let next = (0..groups.len()).find(|&g| !placed[g] && deps[g].iter().all(|&d| placed[d]));
            let Some(g) = next else {
                let help = "run `drplan validate` on the plan first".to_string();
                self.error("the groups' `depends_on` form a cycle".into(), help, span_of(&groups[0].name));
                return None;
            };
            placed[g] = true;
            order.push(g);
        }
        for (position, &g) in order.iter().enumerate() {
            let sequential = if position == 0 { deps[g].is_empty() } else { deps[g] == [order[position - 1]] };
            if !sequential {
                let after = if position == 0 {
                    "first".to_string()
                } else {
                    format!("after `{}`", groups[order[position - 1]].name.value)
                };
                self.warn(
                    format!("group `{}` runs {after} in ASR", groups[g].name.value),
                    "ASR runs boot groups one after another; drplan's `depends_on` lets groups run side by side".into(),
                    span_of(&groups[g].name),
                );
            }
        }
        Some(order)
    }

    fn items(&mut self, group: &Group) -> Vec<Item> {
        let mut items = Vec::new();
        for name in &group.machines {
            let Some(machine) = self.doc.machines.iter().find(|m| m.name.value == name.value) else {
                let help = "run `drplan validate` on the plan first".to_string();
                self.error(format!("unknown machine `{}`", name.value), help, span_of(name));
                continue;
            };
            let id = match &machine.id {
                Some(id) => id.value.clone(),
                None => {
                    self.warn(
                        format!("machine `{}` has no `id`", machine.name.value),
                        "ASR names a protected item by its ARM id: set `id:` to it (its name is used)".into(),
                        span_of(&machine.name),
                    );
                    machine.name.value.clone()
                }
            };
            let virtual_machine_id = machine.asr.as_ref().and_then(|a| a.virtual_machine_id.clone());
            items.push(Item { id, virtual_machine_id });
        }
        items
    }

    fn actions(&mut self, steps: &[Step]) -> Vec<PlanAction> {
        steps.iter().enumerate().map(|(i, step)| self.action(step, i)).collect()
    }

    fn action(&mut self, step: &Step, position: usize) -> PlanAction {
        let (name, only, direction, asr, at) = match step {
            Step::Script(s) => (&s.name, &s.only, &s.direction, &s.asr, span_of(&s.run)),
            Step::Manual(m) => (&m.name, &m.only, &m.direction, &m.asr, name_span(&m.name)),
        };
        let asr = asr.clone().unwrap_or_default();
        let label = name.as_ref().map_or_else(|| (position + 1).to_string(), |n| n.value.clone());
        let action_name = asr.name.clone().unwrap_or_else(|| label.clone());
        let operations = only.clone().unwrap_or_else(|| ALL_OPERATIONS.to_vec());
        let directions = direction.clone().unwrap_or_else(|| vec![Direction::Forward, Direction::Back]);
        let (failover_types, failover_directions) = self.filters(&asr, &operations, &directions, &label, at);
        let location = |e: &mut Self| match asr.location {
            Some(AsrLocation::Primary) => "Primary".to_string(),
            Some(AsrLocation::Recovery) => "Recovery".to_string(),
            None => {
                let help = "set `asr: { location: primary }` to run it at the primary fabric".into();
                e.warn(format!("step `{label}` runs at the recovery fabric in ASR"), help, at);
                "Recovery".to_string()
            }
        };
        let details = match (step, &asr.runbook_id) {
            (Step::Manual(_), Some(id)) => ActionDetails::Runbook {
                runbook_id: (!id.is_empty()).then(|| id.clone()),
                location: location(self),
                timeout: asr.timeout.clone(),
            },
            (Step::Manual(m), None) => {
                ActionDetails::Manual { description: (!m.prompt.is_empty()).then(|| m.prompt.clone()) }
            }
            (Step::Script(s), _) => {
                let path = match &asr.script_path {
                    Some(path) => path.clone(),
                    None => {
                        if s.run.value.len() > 1 {
                            let help = "ASR runs a script by its path alone; set `asr: { script_path: … }`".into();
                            self.warn(format!("step `{label}`'s arguments are dropped"), help, at);
                        }
                        s.run.value.first().map(|p| p.value.clone()).unwrap_or_default()
                    }
                };
                let timeout = asr.timeout.clone().or_else(|| {
                    let d = s.timeout.as_ref().and_then(|t| humantime::parse_duration(t.value.trim()).ok())?;
                    Some(format!("PT{}S", d.as_secs()))
                });
                ActionDetails::Script { path, location: location(self), timeout }
            }
        };
        PlanAction { name: action_name, failover_types, failover_directions, details }
    }

    /// ASR's failover types and directions for a step: the lists import kept, while they
    /// still mean the step's `only` and `direction`; else the ones that say them.
    fn filters(
        &mut self,
        asr: &AsrAction,
        operations: &[Operation],
        directions: &[Direction],
        label: &str,
        at: SourceSpan,
    ) -> (Vec<String>, Vec<String>) {
        let canonical_directions: Vec<String> = directions.iter().map(|d| direction_name(*d).to_string()).collect();
        let kept_directions = asr.failover_directions.clone().filter(|kept| directions_meant(kept) == directions);
        let kept_types = asr.failover_types.clone().filter(|kept| operations_meant(kept, directions) == operations);
        if asr.failover_types.is_some() && kept_types.is_none()
            || asr.failover_directions.is_some() && kept_directions.is_none()
        {
            self.warn(
                format!("step `{label}`'s `only` or `direction` changed since import"),
                "the ASR lists kept under `asr:` no longer say the same; they are written from `only` and `direction`"
                    .into(),
                at,
            );
        }
        let types =
            kept_types.unwrap_or_else(|| failover_types_of(operations).into_iter().map(str::to_string).collect());
        (types, kept_directions.unwrap_or(canonical_directions))
    }
}

fn name_span(name: &Option<serde_saphyr::Spanned<String>>) -> SourceSpan {
    name.as_ref().map_or_else(|| SourceSpan::new(0.into(), 0), span_of)
}
