//! The evidence of a run, rebuilt from its plan and its journal: every step with start, end
//! and result, measured RTO per group and overall, data loss, approvals.
//!
//! Built from the journal rather than from memory, so a run that paused, crashed or was
//! resumed several times still reports everything that happened.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::contract::{DataLoss, OpOutcome};
use crate::planner::{ActionKind, ActionPlan, Phase, RunKind};
use crate::spec::time_format::{self, opt_time};
use crate::state::{JournalEvent, JournalRecord};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunReport {
    pub run: String,
    pub plan: String,
    pub kind: RunKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    pub status: String,
    #[serde(with = "time_format")]
    pub started_at: SystemTime,
    #[serde(with = "time_format")]
    pub finished_at: SystemTime,
    pub document_hash: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git_commit: Option<String>,
    pub objectives: Objectives,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rto: Option<RtoReport>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_loss: Option<LossReport>,
    /// The recovery point each machine (or test copy) now runs from.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub points_used: BTreeMap<String, u64>,
    pub steps: Vec<StepReport>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub awaiting: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approvals: Vec<ApprovalReport>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Objectives {
    pub rto_ms: u64,
    pub rpo_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepReport {
    pub id: String,
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub machine: Option<String>,
    /// succeeded, failed, skipped, awaiting, interrupted or not-run.
    pub status: String,
    #[serde(default, with = "opt_time", skip_serializing_if = "Option::is_none")]
    pub started_at: Option<SystemTime>,
    #[serde(default, with = "opt_time", skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<SystemTime>,
    pub attempts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<OpOutcome>,
    /// Every attempt when there was more than one: retries, and the attempts of earlier
    /// sessions of the run (a failure, then `resume`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attempt_log: Vec<Attempt>,
}

/// One attempt at a step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attempt {
    #[serde(with = "time_format")]
    pub started_at: SystemTime,
    #[serde(default, with = "opt_time", skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<SystemTime>,
    /// succeeded, failed, or interrupted (cut short, or its process died).
    pub result: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl StepReport {
    /// Attempts that did not succeed, before the last one.
    pub fn failed_attempts(&self) -> impl Iterator<Item = &Attempt> {
        self.attempt_log.iter().filter(|a| a.result != "succeeded")
    }
    pub fn duration(&self) -> Option<Duration> {
        Some(self.finished_at?.duration_since(self.started_at?).unwrap_or_default())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RtoReport {
    /// When the first machine went down (or the first test copy was started): RTO counts from here.
    #[serde(with = "time_format")]
    pub since: SystemTime,
    /// From the first machine going down to the last group up.
    pub measured_ms: u64,
    pub objective_ms: u64,
    pub met: bool,
    /// Per group: when it was up, counted from the same start.
    pub groups: Vec<GroupRto>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupRto {
    pub group: String,
    /// When its last step ended, counted from the first machine going down.
    pub ready_ms: u64,
    /// Every machine of the group started (or, in a drill, got its test copy).
    #[serde(default = "yes")]
    pub up: bool,
    /// The machine steps that did not succeed, when it is not up.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed: Vec<String>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LossReport {
    pub max_time_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_bytes: Option<u64>,
    pub within_rpo: bool,
    pub machines: Vec<MachineLoss>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MachineLoss {
    pub machine: String,
    pub time_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    /// The recovery point used; none when the final sync made it lossless.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub point: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApprovalReport {
    pub step: String,
    pub by: String,
    #[serde(with = "time_format")]
    pub at: SystemTime,
}

fn kind_label(kind: &ActionKind) -> String {
    match kind {
        ActionKind::Provider { op } => op.kind().as_str().to_string(),
        ActionKind::Script { .. } => "script".into(),
        ActionKind::Manual { .. } => "approval".into(),
        ActionKind::Barrier => "barrier".into(),
    }
}

/// Rebuild the report of run `run` from its plan and journal.
pub fn build(
    run: &str,
    plan: &ActionPlan,
    journal: &[JournalRecord],
    status: &str,
    finished_at: SystemTime,
) -> RunReport {
    let mut steps: Vec<StepReport> = plan
        .actions
        .iter()
        .filter(|a| !matches!(a.kind, ActionKind::Barrier))
        .map(|a| StepReport {
            id: a.id.clone(),
            kind: kind_label(&a.kind),
            group: a.group.clone(),
            machine: a.machine.clone(),
            status: "not-run".into(),
            started_at: None,
            finished_at: None,
            attempts: 0,
            summary: None,
            error: None,
            output: None,
            outcome: None,
            attempt_log: Vec::new(),
        })
        .collect();
    let index: BTreeMap<String, usize> = steps.iter().enumerate().map(|(i, s)| (s.id.clone(), i)).collect();
    let mut approvals = Vec::new();
    let mut started_at = journal.first().map(|r| r.at);
    for record in journal {
        if let JournalEvent::RunStarted { .. } = record.event {
            started_at = Some(started_at.map_or(record.at, |s: SystemTime| s.min(record.at)));
        }
        let Some(&i) = index.get(&record.step) else { continue };
        if let Some(approval) = apply_event(&mut steps[i], record) {
            approvals.push(approval);
        }
    }
    for step in &mut steps {
        finish_step(step);
    }
    let awaiting = steps.iter().filter(|s| s.status == "awaiting").map(|s| s.id.clone()).collect();
    let started_at = started_at.unwrap_or(finished_at);
    RunReport {
        run: run.to_string(),
        plan: plan.plan.clone(),
        kind: plan.run,
        from: plan.from.clone(),
        to: plan.to.clone(),
        status: status.to_string(),
        started_at,
        finished_at,
        document_hash: plan.fingerprint.document_hash.clone(),
        git_commit: None,
        objectives: Objectives { rto_ms: plan.summary.rto_objective_ms, rpo_ms: plan.summary.rpo_objective_ms },
        rto: measure_rto(plan, &steps),
        data_loss: measure_loss(plan, &steps),
        points_used: steps
            .iter()
            .filter(|s| matches!(s.kind.as_str(), "failover" | "change-point" | "create-test-copy"))
            .filter_map(|s| Some((s.machine.clone()?, s.outcome.as_ref()?.point?)))
            .collect(),
        steps,
        awaiting,
        approvals,
        notes: Vec::new(),
    }
}

/// What one journal record says about its step; an approval is also returned for the list.
fn apply_event(step: &mut StepReport, record: &JournalRecord) -> Option<ApprovalReport> {
    match &record.event {
        JournalEvent::Started { .. } => {
            // A start after a start without an end: the earlier attempt's process died.
            if let Some(open) = running_attempt(step) {
                open.result = "interrupted".into();
            }
            step.attempt_log.push(Attempt {
                started_at: record.at,
                finished_at: None,
                result: "running".into(),
                error: None,
            });
            step.started_at.get_or_insert(record.at);
            step.status = "running".into();
        }
        JournalEvent::Succeeded { outcome } => {
            if let Some(open) = running_attempt(step) {
                open.result = "succeeded".into();
                open.finished_at = Some(record.at);
            }
            step.status = "succeeded".into();
            step.finished_at = Some(record.at);
            step.error = None;
            step.summary = Some(outcome.op.summary.clone());
            step.output = outcome.output.clone().filter(|s| !s.is_empty());
            step.outcome = Some(outcome.op.clone()).filter(|_| step.kind != "script");
        }
        JournalEvent::Failed { error, .. } => {
            if let Some(open) = running_attempt(step) {
                open.result = "failed".into();
                open.finished_at = Some(record.at);
                open.error = Some(error.clone());
            }
            // An interrupted transfer is also recorded as failed; "interrupted" says more.
            if step.status != "interrupted" {
                step.status = "failed".into();
                step.error = Some(error.clone());
            }
            step.finished_at = Some(record.at);
        }
        JournalEvent::Interrupted { reason } => {
            if let Some(open) = running_attempt(step) {
                open.result = "interrupted".into();
                open.finished_at = Some(record.at);
                open.error = Some(reason.clone());
            }
            step.status = "interrupted".into();
            step.finished_at = Some(record.at);
            step.error = Some(reason.clone());
        }
        JournalEvent::Skipped { reason } => {
            step.status = "skipped".into();
            step.error = Some(reason.clone());
        }
        JournalEvent::Awaiting { prompt } => {
            // A script waits only when its outcome is unknown; the prompt says why.
            if step.kind == "script" && !prompt.is_empty() {
                if let Some(open) = running_attempt(step) {
                    open.result = "unknown".into();
                }
                step.error = Some(prompt.clone());
            }
            step.status = "awaiting".into();
            step.started_at.get_or_insert(record.at);
        }
        JournalEvent::Approved { by } => {
            step.status = "succeeded".into();
            step.finished_at = Some(record.at);
            step.summary = Some(format!("approved by {by}"));
            return Some(ApprovalReport { step: step.id.clone(), by: by.clone(), at: record.at });
        }
        JournalEvent::RunStarted { .. } | JournalEvent::RunFinished { .. } | JournalEvent::Spawned { .. } => {}
    }
    None
}

/// The attempt in progress, if the last one is.
fn running_attempt(step: &mut StepReport) -> Option<&mut Attempt> {
    step.attempt_log.last_mut().filter(|a| a.result == "running")
}

/// After the whole journal: a step whose process died mid-operation has a start and no end;
/// the attempt count covers every session of the run, and the log is kept when it tells more
/// than one attempt.
fn finish_step(step: &mut StepReport) {
    if step.status == "running" {
        step.status = "interrupted".into();
    }
    for attempt in &mut step.attempt_log {
        if attempt.result == "running" {
            attempt.result = "interrupted".into();
        }
    }
    step.attempts = step.attempt_log.len() as u32;
    if step.attempt_log.len() <= 1 {
        step.attempt_log.clear();
    }
}

fn measure_rto(plan: &ActionPlan, steps: &[StepReport]) -> Option<RtoReport> {
    let phase_of: BTreeMap<&str, Phase> = plan.actions.iter().map(|a| (a.id.as_str(), a.phase)).collect();
    let down = steps
        .iter()
        .filter(|s| {
            matches!(
                phase_of.get(s.id.as_str()),
                Some(Phase::Shutdown | Phase::FinalSync | Phase::Failover | Phase::Drill)
            )
        })
        .filter_map(|s| s.started_at)
        .min()?;
    // Per group: when its last successful step ended, and the machines that did not come up.
    let mut groups: BTreeMap<&str, (Option<SystemTime>, Vec<String>)> = BTreeMap::new();
    for s in steps {
        if !matches!(phase_of.get(s.id.as_str()), Some(Phase::Boot | Phase::Drill)) {
            continue;
        }
        let Some(group) = &s.group else { continue };
        let entry = groups.entry(group.as_str()).or_default();
        match s.finished_at.filter(|_| s.status == "succeeded") {
            Some(done) => entry.0 = Some(entry.0.map_or(done, |t| t.max(done))),
            None if s.machine.is_some() => entry.1.push(s.id.clone()),
            None => {}
        }
    }
    let mut group_rto: Vec<GroupRto> = groups
        .into_iter()
        .filter(|(_, (done, failed))| done.is_some() || !failed.is_empty())
        .map(|(g, (done, failed))| GroupRto {
            group: g.to_string(),
            ready_ms: done.map_or(0, |t| t.duration_since(down).unwrap_or_default().as_millis() as u64),
            up: failed.is_empty(),
            failed,
        })
        .collect();
    // Boot order reads best.
    let order: Vec<&str> = plan.actions.iter().filter_map(|a| a.id.strip_prefix("begin/")).collect();
    group_rto.sort_by_key(|g| order.iter().position(|o| *o == g.group).unwrap_or(usize::MAX));
    let measured = group_rto.iter().map(|g| g.ready_ms).max().unwrap_or(0);
    // A recovery with a group that never came up did not meet any objective.
    let all_up = group_rto.iter().all(|g| g.up);
    Some(RtoReport {
        since: down,
        measured_ms: measured,
        objective_ms: plan.summary.rto_objective_ms,
        met: all_up && measured <= plan.summary.rto_objective_ms,
        groups: group_rto,
    })
}

fn measure_loss(plan: &ActionPlan, steps: &[StepReport]) -> Option<LossReport> {
    let mut machines = Vec::new();
    for s in steps {
        let Some(outcome) = &s.outcome else { continue };
        let Some(DataLoss { time, bytes }) = outcome.data_loss else { continue };
        machines.push(MachineLoss {
            machine: s.machine.clone().unwrap_or_default(),
            time_ms: time.as_millis() as u64,
            bytes,
            point: outcome.point,
        });
    }
    if machines.is_empty() {
        return None;
    }
    let max_time_ms = machines.iter().map(|m| m.time_ms).max().unwrap_or(0);
    let total_bytes = machines.iter().map(|m| m.bytes).sum::<Option<u64>>();
    Some(LossReport { max_time_ms, total_bytes, within_rpo: max_time_ms <= plan.summary.rpo_objective_ms, machines })
}
