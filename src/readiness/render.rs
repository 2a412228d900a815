//! A readiness check for a terminal, a pipeline's job summary, programs and test reports.

use std::fmt::Write as _;

use super::Readiness;
use crate::report::evidence::xml_escape;

pub fn human(r: &Readiness) -> String {
    let mut out = String::new();
    let route = match (&r.from, &r.to) {
        (Some(from), Some(to)) => format!(" ({from} → {to})"),
        _ => String::new(),
    };
    let blocked = r.machines.iter().filter(|m| !m.ready).count();
    let _ = writeln!(
        out,
        "{} `{}`{route}: {}",
        if r.ready { "✓" } else { "✗" },
        r.plan,
        if r.ready {
            format!("all {} machines can fail over now", r.machines.len())
        } else {
            format!("{blocked} of {} machines cannot fail over now", r.machines.len())
        }
    );
    for m in &r.machines {
        let _ = writeln!(out, "  {} {} (group {})", if m.ready { "✓" } else { "✗" }, m.machine, m.group);
        for reason in &m.reasons {
            let _ = writeln!(out, "      - {reason}");
        }
        for warning in &m.warnings {
            let _ = writeln!(out, "      ! {warning}");
        }
    }
    out
}

pub fn markdown(r: &Readiness) -> String {
    let mut out = format!(
        "### drplan check: `{}` {}\n\n| machine | group | ready | why not | warnings |\n|---|---|---|---|---|\n",
        r.plan,
        if r.ready { "✅ ready" } else { "❌ not ready" }
    );
    for m in &r.machines {
        let cell = |items: &[String]| items.iter().map(|i| i.replace('|', "\\|")).collect::<Vec<_>>().join("<br>");
        let _ = writeln!(
            out,
            "| `{}` | `{}` | {} | {} | {} |",
            m.machine,
            m.group,
            if m.ready { "✅" } else { "❌" },
            cell(&m.reasons),
            cell(&m.warnings)
        );
    }
    out
}

pub fn json(r: &Readiness) -> String {
    serde_json::to_string_pretty(r).unwrap_or_default()
}

/// One test case per machine; a blocked machine fails with its reasons.
pub fn junit(r: &Readiness) -> String {
    let failures = r.machines.iter().filter(|m| !m.ready).count();
    let mut out = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"drplan check\" tests=\"{}\" failures=\"{failures}\">\n  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\">\n",
        r.machines.len(),
        xml_escape(&r.plan),
        r.machines.len()
    );
    for m in &r.machines {
        let name = format!("{} can fail over", m.machine);
        let _ = write!(
            out,
            "    <testcase classname=\"{}.{}\" name=\"{}\"",
            xml_escape(&r.plan),
            xml_escape(&m.group),
            xml_escape(&name)
        );
        if m.ready && m.warnings.is_empty() {
            out.push_str("/>\n");
            continue;
        }
        out.push_str(">\n");
        if !m.ready {
            let _ = writeln!(
                out,
                "      <failure message=\"{}\">{}</failure>",
                xml_escape(m.reasons.first().map(String::as_str).unwrap_or_default()),
                xml_escape(&m.reasons.join("\n"))
            );
        }
        if !m.warnings.is_empty() {
            let _ = writeln!(out, "      <system-out>{}</system-out>", xml_escape(&m.warnings.join("\n")));
        }
        out.push_str("    </testcase>\n");
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}
