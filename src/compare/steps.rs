//! Steps of one scope (a group's `before` or `after`, a phase's): added, removed, moved,
//! changed. Named steps are matched by name; unnamed ones (whose ids are positions) by
//! what they do, so that moving one is a move, not a remove and an add.

use super::change::Change;
use super::order::moved;
use crate::spec::{Direction, Operation};
use crate::validate::{EnvSpec, StepKind, StepSpec};

/// The changes between the steps `old` and `new` of `scope`.
pub fn compare(scope: &str, old: &[StepSpec], new: &[StepSpec], out: &mut Vec<Change>) {
    let pairs = match_steps(old, new);
    let mut matched_new = vec![false; new.len()];
    let mut matched_old = vec![false; old.len()];
    for &(o, n) in &pairs {
        matched_old[o] = true;
        matched_new[n] = true;
    }
    for (_, step) in old.iter().enumerate().filter(|(o, _)| !matched_old[*o]) {
        out.push(Change::StepRemoved { scope: scope.into(), step: step.id.clone(), what: what(step) });
    }
    for (_, step) in new.iter().enumerate().filter(|(n, _)| !matched_new[*n]) {
        out.push(Change::StepAdded { scope: scope.into(), step: step.id.clone(), what: what(step) });
    }
    // Order among the steps both revisions have, keyed by the new id.
    let old_keys: Vec<&str> = {
        let mut keyed: Vec<(usize, &str)> = pairs.iter().map(|&(o, n)| (o, new[n].id.as_str())).collect();
        keyed.sort();
        keyed.into_iter().map(|(_, k)| k).collect()
    };
    let new_keys: Vec<&str> = {
        let mut keyed: Vec<(usize, &str)> = pairs.iter().map(|&(_, n)| (n, new[n].id.as_str())).collect();
        keyed.sort();
        keyed.into_iter().map(|(_, k)| k).collect()
    };
    for (id, _, _) in moved(&old_keys, &new_keys) {
        let (o, n) = pairs.iter().copied().find(|&(_, n)| new[n].id == id).unwrap_or_default();
        out.push(Change::StepMoved { scope: scope.into(), step: id.to_string(), from: o + 1, to: n + 1 });
    }
    for &(o, n) in &pairs {
        settings(scope, &old[o], &new[n], out);
    }
}

/// Pairs (old index, new index) of the same step: same id and kind first, then same content.
fn match_steps(old: &[StepSpec], new: &[StepSpec]) -> Vec<(usize, usize)> {
    let mut pairs = Vec::new();
    let mut used_old = vec![false; old.len()];
    let mut used_new = vec![false; new.len()];
    // Same content anywhere: the same step (possibly moved, its position id changed).
    for (n, step) in new.iter().enumerate() {
        if let Some(o) = (0..old.len()).find(|&o| !used_old[o] && fingerprint(&old[o]) == fingerprint(step)) {
            pairs.push((o, n));
            used_old[o] = true;
            used_new[n] = true;
        }
    }
    // Same id, other content: changed.
    for (n, step) in new.iter().enumerate() {
        if used_new[n] {
            continue;
        }
        if let Some(o) = (0..old.len()).find(|&o| !used_old[o] && old[o].id == step.id && same_kind(&old[o], step)) {
            pairs.push((o, n));
            used_old[o] = true;
            used_new[n] = true;
        }
    }
    pairs
}

fn same_kind(a: &StepSpec, b: &StepSpec) -> bool {
    matches!(
        (&a.kind, &b.kind),
        (StepKind::Script(_), StepKind::Script(_)) | (StepKind::Manual(_), StepKind::Manual(_))
    )
}

/// Everything a step does (its id included when it has a name).
fn fingerprint(step: &StepSpec) -> String {
    let label = step.id.rsplit('/').next().unwrap_or_default();
    let named = !label.chars().all(|c| c.is_ascii_digit());
    let settings: Vec<String> = fields(step).into_iter().map(|f| format!("{}={}", f.key, f.token)).collect();
    format!("{}|{}", if named { label } else { "" }, settings.join("|"))
}

/// One setting of a step: what people see, and what is compared (an environment literal
/// may be a secret: it is compared, never shown).
struct Field {
    key: &'static str,
    shown: String,
    token: String,
}

fn field(key: &'static str, shown: String) -> Field {
    Field { key, token: shown.clone(), shown }
}

fn fields(step: &StepSpec) -> Vec<Field> {
    let mut out = Vec::new();
    match &step.kind {
        StepKind::Manual(m) => {
            out.push(field("prompt", format!("{:?}", m.prompt)));
            out.push(field("approvers", list_or(&m.approvers, "anyone")));
        }
        StepKind::Script(s) => {
            out.push(field("run", s.argv.join(" ")));
            out.push(field("timeout", humantime::format_duration(s.timeout).to_string()));
            out.push(field("retries", s.retries.to_string()));
            out.push(field(
                "on_failure",
                s.on_failure.map_or("the run's policy".into(), |f| format!("{f:?}").to_lowercase()),
            ));
            for (name, value) in &s.env {
                let (shown, token) = match value {
                    EnvSpec::Literal(v) => (format!("{name}: a value"), format!("{name}={v}")),
                    EnvSpec::FromEnv(var) => (format!("{name}: from ${var}"), format!("{name}=${var}")),
                };
                out.push(Field { key: "env", shown, token });
            }
        }
    }
    out.push(field("only", step.only.as_ref().map_or("every run".into(), |o| operations(o))));
    out.push(field("direction", step.direction.as_ref().map_or("both".into(), |d| directions(d))));
    out
}

fn settings(scope: &str, old: &StepSpec, new: &StepSpec, out: &mut Vec<Change>) {
    let (a, b) = (fields(old), fields(new));
    let keys: Vec<&str> = a.iter().chain(&b).map(|f| f.key).fold(Vec::new(), |mut keys, k| {
        if !keys.contains(&k) {
            keys.push(k);
        }
        keys
    });
    for key in keys {
        let tokens = |f: &[Field]| f.iter().filter(|f| f.key == key).map(|f| f.token.clone()).collect::<Vec<_>>();
        if tokens(&a) != tokens(&b) {
            let shown = |f: &[Field]| f.iter().filter(|f| f.key == key).map(|f| f.shown.clone()).collect::<Vec<_>>();
            let (from, mut to) = (shown(&a), shown(&b));
            if from == to {
                // Only a literal's value changed.
                to = to.into_iter().map(|v| v.replace("a value", "a new value")).collect();
            }
            let text = |v: Vec<String>| if v.is_empty() { "none".to_string() } else { v.join(", ") };
            out.push(Change::StepChanged {
                scope: scope.into(),
                step: new.id.clone(),
                setting: key.into(),
                from: text(from),
                to: text(to),
            });
        }
    }
}

fn what(step: &StepSpec) -> String {
    match &step.kind {
        StepKind::Manual(m) => format!("manual {:?}", m.prompt),
        StepKind::Script(s) => format!("script `{}`", s.argv.join(" ")),
    }
}

fn list_or(items: &[String], none: &str) -> String {
    if items.is_empty() { none.into() } else { items.join(", ") }
}

fn operations(ops: &[Operation]) -> String {
    let names: Vec<&str> = ops.iter().map(|o| o.as_str()).collect();
    if names.is_empty() { "no run".into() } else { names.join(", ") }
}

fn directions(dirs: &[Direction]) -> String {
    let names: Vec<&str> = dirs.iter().map(|d| d.as_str()).collect();
    if names.is_empty() { "neither".into() } else { names.join(", ") }
}
