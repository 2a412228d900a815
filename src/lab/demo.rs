//! `drplan lab demo`: the whole recovery story on a lab, each step a real `drplan` command
//! (printed so it can be pasted into a shell), and proofs read from the machines' disks.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::records;

/// Where the demo's narration goes (the command line prints it).
pub type Say<'a> = &'a dyn Fn(&str);

/// An argument as a shell would need it to be typed: as is when it is plain, else quoted.
pub fn shell_quote(arg: &str) -> String {
    let plain = !arg.is_empty() && arg.chars().all(|c| c.is_ascii_alphanumeric() || "_./:=@%+-,".contains(c));
    if plain { arg.to_string() } else { format!("'{}'", arg.replace('\'', r"'\''")) }
}

/// Runs the steps of a demo in the lab directory.
pub struct Demo<'a> {
    pub dir: PathBuf,
    pub plan: PathBuf,
    pub say: Say<'a>,
}

impl Demo<'_> {
    /// One step: print the command, run it, let its output through.
    pub fn step(&self, args: &[&str], expect: &[i32]) -> Result<i32, String> {
        let display: Vec<String> = args.iter().map(|a| shell_quote(a)).collect();
        (self.say)(&format!("\n$ drplan {}", display.join(" ")));
        let status = Command::new(std::env::current_exe().map_err(|e| e.to_string())?)
            .current_dir(&self.dir)
            .args(args)
            .env("NO_COLOR", "1")
            .status()
            .map_err(|e| format!("cannot run drplan: {e}"))?;
        let code = status.code().unwrap_or(-1);
        if !expect.contains(&code) {
            return Err(format!("`drplan {}` exited {code}", display.join(" ")));
        }
        Ok(code)
    }

    pub fn plan_name(&self) -> String {
        self.plan.file_name().and_then(|n| n.to_str()).unwrap_or("lab.yaml").to_string()
    }

    pub fn note(&self, text: &str) {
        (self.say)(&format!("\n# {text}"));
    }

    pub fn pause(&self, what: &str, secs: u64) {
        self.note(what);
        std::thread::sleep(Duration::from_secs(secs));
    }

    /// Change the plan's desired state: `target.active`, and how the move is made.
    pub fn set_target(&self, site: &str, via: Option<&str>) -> Result<(), String> {
        let text = std::fs::read_to_string(&self.plan).map_err(|e| e.to_string())?;
        let mut out = String::new();
        let mut in_target = false;
        for line in text.lines() {
            if line.starts_with("target:") {
                in_target = true;
                out.push_str("target:\n");
                out.push_str(&format!("  active: {site}\n"));
                if let Some(via) = via {
                    out.push_str(&format!("  via: {via}\n"));
                }
                continue;
            }
            if in_target && line.starts_with(' ') {
                continue;
            }
            in_target = false;
            out.push_str(line);
            out.push('\n');
        }
        std::fs::write(&self.plan, out).map_err(|e| e.to_string())?;
        let how = via.map(|v| format!(", via {v}")).unwrap_or_default();
        self.note(&format!("The plan's desired state changes: target.active is now {site}{how}."));
        Ok(())
    }

    /// Fail over or back to `site` as the plan now says, through the "complete failover" gate
    /// when the run stops there.
    pub fn apply_through_gate(&self, extra: &[&str]) -> Result<(), String> {
        let name = self.plan_name();
        let mut args = vec!["apply", name.as_str(), "--auto-approve"];
        args.extend_from_slice(extra);
        if self.step(&args, &[0, 3])? == 3 {
            self.step(&["approve", &name, "gate/complete-failover", "--by", "demo"], &[0])?;
            self.step(&["resume", &name], &[0])?;
        }
        Ok(())
    }
}

/// The local lab's story: protect, drill, planned failover, failback with delta sync,
/// reprotect, and the records check.
pub fn local(demo: &Demo) -> Result<(), String> {
    let p = &demo.plan_name();
    (demo.say)(&format!(
        "# A lab in {}: sites dc1 and dc2 are directories; db1, app1 and web1 live at dc1.",
        demo.dir.display()
    ));
    demo.step(&["validate", p], &[0])?;
    demo.note("1. Protect: initial replication dc1 → dc2, and start the machines.");
    demo.step(&["apply", p, "--auto-approve"], &[0])?;
    demo.pause("The machines write records for two seconds; then a new recovery point moves only what changed.", 2);
    demo.step(&["replicate", p], &[0])?;
    demo.note("2. Drill: test copies from the latest point, in the isolated lab-drill network; production untouched.");
    demo.step(
        &["drill", p, "--auto-complete", "--notes", "lab demo: the test copies booted", "--report", "reports/drill"],
        &[0],
    )?;
    demo.note("3. Planned failover to dc2: shut down in reverse group order, final sync, fail over, boot in order.");
    demo.set_target("dc2", None)?;
    demo.step(&["apply", p, "--auto-approve", "--report", "reports/failover"], &[0])?;
    demo.pause("The machines now run at dc2 and keep writing for two seconds.", 2);
    demo.note("4. Fail back with delta sync: copy while running, approve the switch, final delta, boot at dc1.");
    demo.set_target("dc1", None)?;
    demo.apply_through_gate(&[])?;
    demo.pause("Back at dc1, writing again.", 1);
    demo.note("5. Nothing was lost: every record from 1 to the last is on the disks, and each site");
    (demo.say)("#    went on exactly where the other stopped (dc1, then dc2, then dc1 again).");
    demo.step(&["lab", "verify", "."], &[0])?;
    demo.note("6. Protected again (dc1 → dc2) and nothing left to do:");
    demo.step(&["plan", p, "--detailed-exitcode"], &[0])?;
    demo.step(&["history", p], &[0])?;
    Ok(())
}

/// How many lab VMs the QEMU demo uses, and whether it runs the whole story.
#[derive(Debug, Clone, Copy)]
pub struct QemuDemo {
    /// 1 to 3: db1, app1, web1 in that order.
    pub machines: usize,
    /// Only protect, planned failover, delta failback and the records check.
    pub short: bool,
}

/// The QEMU lab's story on real VMs; the full one adds a drill (the replica's files are
/// byte-identical afterwards) and an unplanned failover (exactly the records written after
/// the recovery point are lost).
pub fn qemu(demo: &Demo, options: QemuDemo) -> Result<(), String> {
    let p = &demo.plan_name();
    let machines: Vec<&str> = super::qemu::MACHINES.iter().take(options.machines).map(|m| m.0).collect();
    (demo.say)(&format!(
        "# A lab of real VMs in {}: {} boot(s) Debian's kernel at site dc1 and write numbered records.",
        demo.dir.display(),
        machines.join(", ")
    ));
    demo.step(&["validate", p], &[0])?;
    demo.note("1. Protect: initial replication dc1 → dc2 (the VMs' disks), and boot the VMs at dc1.");
    demo.step(&["apply", p, "--auto-approve"], &[0])?;
    writing(
        demo,
        "dc1",
        &machines,
        "The guests boot and write records; then a new recovery point moves only the blocks they changed.",
    )?;
    demo.step(&["replicate", p], &[0])?;
    if !options.short {
        demo.note("2. Drill: VMs boot from thin overlays on the latest point, on the isolated lab-drill network,");
        (demo.say)("#    with production's addresses; production keeps running.");
        let before = replica_digest(&demo.dir.join("dc2"))?;
        demo.step(&["drill", p, "--report", "reports/drill"], &[0])?;
        let seen = super::qemu::drill_isolated(&demo.dir, "dc1", "dc2", &machines, Duration::from_secs(120))?;
        demo.note(&format!("Seen on the drill VMs' consoles: {seen}."));
        demo.step(&["drill", "complete", p, "--notes", "lab demo: the drill VMs booted, isolated"], &[0])?;
        let after = replica_digest(&demo.dir.join("dc2"))?;
        if before != after {
            return Err("the drill changed the replica's files at dc2".into());
        }
        demo.note(&format!("The replica's {} qcow2 files at dc2 are byte-identical after the drill.", before.len()));
    }
    demo.note("3. Planned failover to dc2: ACPI power-down in reverse group order, final sync, boot at dc2.");
    demo.set_target("dc2", None)?;
    demo.step(&["apply", p, "--auto-approve", "--report", "reports/failover"], &[0])?;
    writing(demo, "dc2", &machines, "The VMs now run at dc2 and keep writing.")?;
    demo.note("4. Fail back with delta sync: only the blocks written at dc2 go back; boot at dc1.");
    demo.set_target("dc1", None)?;
    demo.apply_through_gate(&[])?;
    writing(demo, "dc1", &machines, "Back at dc1, writing again.")?;
    demo.note("5. Nothing was lost: every record is on the disks, each site went on where the other stopped.");
    demo.step(&["lab", "verify", "."], &[0])?;
    if !options.short {
        unplanned(demo, &machines)?;
    }
    Ok(())
}

/// Wait until each VM at `site` wrote ten more records, and say how far they got.
fn writing(demo: &Demo, site: &str, machines: &[&str], what: &str) -> Result<(), String> {
    demo.note(what);
    let last = super::qemu::wait_for_records(&demo.dir.join(site), machines, 10, Duration::from_secs(120))?;
    let at: Vec<String> = machines.iter().zip(&last).map(|(m, n)| format!("{m} at record {n}")).collect();
    (demo.say)(&format!("# ({})", at.join(", ")));
    Ok(())
}

/// Crash dc1 after a recovery point and fail over unplanned: the records written after the
/// point are lost, exactly those, and the guests go on from the point.
fn unplanned(demo: &Demo, machines: &[&str]) -> Result<(), String> {
    let p = &demo.plan_name();
    demo.note("6. Unplanned failover: a recovery point, more records, then dc1 loses power.");
    demo.step(&["replicate", p], &[0])?;
    let scratch = demo.dir.join(".demo");
    std::fs::create_dir_all(&scratch).map_err(|e| e.to_string())?;
    let mut at_point = Vec::new();
    for m in machines {
        let raw = scratch.join(format!("{m}.point.raw"));
        super::qemu::read_data_disk(&demo.dir.join("dc2"), m, &raw)?;
        at_point.push(raw);
    }
    writing(demo, "dc1", machines, "The guests keep writing after the point.")?;
    super::qemu::crash(&demo.dir, "dc1");
    demo.note("dc1's VMs were killed (SIGKILL to QEMU: a power failure).");
    let mut at_crash = Vec::new();
    for m in machines {
        let raw = scratch.join(format!("{m}.crash.raw"));
        super::qemu::read_data_disk(&demo.dir.join("dc1"), m, &raw)?;
        at_crash.push(raw);
    }
    demo.set_target("dc2", Some("unplanned"))?;
    demo.step(&["apply", p, "--auto-approve", "--report", "reports/unplanned"], &[0])?;
    writing(demo, "dc2", machines, "The VMs run at dc2 from the point and write again.")?;
    for (i, m) in machines.iter().enumerate() {
        let raw = scratch.join(format!("{m}.after.raw"));
        super::qemu::read_data_disk(&demo.dir.join("dc2"), m, &raw)?;
        let verdict = exactly_after_point_lost(m, &at_point[i], &at_crash[i], &raw)?;
        (demo.say)(&format!("# {m}: {verdict}"));
    }
    let _ = std::fs::remove_dir_all(&scratch);
    demo.note("7. dc1 has power again. Fail back: commit at dc2, reprotect dc2 → dc1 (no bitmap says what dc1");
    (demo.say)("#    wrote after the point, so the running disks are compared and only the blocks that differ go),");
    (demo.say)("#    then a delta failback.");
    demo.set_target("dc1", None)?;
    demo.apply_through_gate(&["--report", "reports/failback"])?;
    writing(demo, "dc1", machines, "Back at dc1, writing again.")?;
    demo.step(&["lab", "verify", "."], &[0])?;
    demo.step(&["history", p], &[0])?;
    Ok(())
}

/// Compare the disk at the point, at the crash and after the failover: records up to the
/// point's last are the crashed site's own, byte for byte; the ones after it on the crashed
/// disk are gone; the new site went on from the point's last record.
pub fn exactly_after_point_lost(machine: &str, point: &Path, crashed: &Path, after: &Path) -> Result<String, String> {
    let open = |p: &Path| std::fs::File::open(p).map_err(|e| format!("cannot open {}: {e}", p.display()));
    let (point, crashed, after) = (open(point)?, open(crashed)?, open(after)?);
    let io = |e: std::io::Error| e.to_string();
    let (kept, written) = (records::read_header(&point).map_err(io)?, records::read_header(&crashed).map_err(io)?);
    let now = records::read_header(&after).map_err(io)?;
    if written < kept {
        return Err(format!("{machine}: the crashed disk ends at {written}, before the point's {kept}"));
    }
    for n in 1..=kept {
        let (a, b) = (
            records::read_record(&after, n, machine).map_err(io)?,
            records::read_record(&crashed, n, machine).map_err(io)?,
        );
        match (a, b) {
            (Ok(a), Ok(b)) if a.bytes == b.bytes => {}
            (a, b) => return Err(format!("{machine}: record {n} differs after the failover: {a:?} vs {b:?}")),
        }
    }
    let first_new = records::read_record(&after, kept + 1, machine).map_err(io)?;
    match first_new {
        Ok(r) if r.site == "dc2" && now > kept => {}
        other => return Err(format!("{machine}: after the point's record {kept} comes {other:?}, not a dc2 record")),
    }
    let lost = written - kept;
    let range = if lost == 0 { "none".to_string() } else { format!("{}..{}", kept + 1, written) };
    Ok(format!(
        "the point held records 1..{kept}; dc1 had written to {written} when it failed; lost exactly {lost} ({range}); dc2 went on from {} to {now}",
        kept + 1
    ))
}

/// A digest of every qcow2 file of the replicas at a site (name and content).
fn replica_digest(site: &Path) -> Result<Vec<(String, blake3::Hash)>, String> {
    let mut files = Vec::new();
    for machine in std::fs::read_dir(site).map_err(|e| e.to_string())?.flatten() {
        for file in std::fs::read_dir(machine.path()).into_iter().flatten().flatten() {
            let path = file.path();
            if path.extension().is_some_and(|e| e == "qcow2") {
                let bytes = std::fs::read(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
                files.push((path.display().to_string(), blake3::hash(&bytes)));
            }
        }
    }
    files.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::shell_quote;

    #[test]
    fn echoed_commands_can_be_pasted_into_a_shell() {
        assert_eq!(shell_quote("--notes"), "--notes");
        assert_eq!(shell_quote("lab demo: the copies booted"), "'lab demo: the copies booted'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("$HOME"), "'$HOME'");
    }
}
