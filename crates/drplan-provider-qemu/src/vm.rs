//! QEMU processes: a machine's VM (daemonized, so it outlives the plugin that started it)
//! and a short-lived block helper that opens the disks of a machine that is off, so data
//! always moves the same way: through QMP's dirty bitmaps and backup jobs.

use std::path::{Path, PathBuf};
use std::time::Duration;

use drplan_protocol::NicAssignment;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::errors::{Answer, failed, failed_hint, io, setup};
use crate::kvm;
use crate::qmp::Qmp;

/// A machine's hardware, `machine.json` in its folder (it moves with the machine). Boot
/// files are named relative to the folder.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Hardware {
    #[serde(default = "default_memory")]
    pub memory_mib: u32,
    #[serde(default = "default_cpus")]
    pub cpus: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initrd: Option<String>,
    #[serde(default)]
    pub append: String,
    /// Without a kernel the VM boots from a disk (its firmware reads the boot sector): this
    /// one (named as its file, without `.qcow2`), or else the first by name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot_disk: Option<String>,
    /// A line the guest prints on its serial console once it is up (an application's "ready"
    /// message). With it, a start waits for the line (up to the machine's boot timeout), so
    /// the measured RTO includes the guest's boot; without it, a start ends when QEMU runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_line: Option<String>,
    /// A virtio-serial port named `drplan.agent` whose other end is the unix socket
    /// `vm.agent` in the machine's folder: the channel its freeze and thaw programs can use
    /// to reach an agent in the guest.
    #[serde(default)]
    pub agent: bool,
    /// The machine's NICs where it was set up (a failover gives it the plan's instead).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nics: Vec<NicAssignment>,
}

fn default_memory() -> u32 {
    256
}

fn default_cpus() -> u32 {
    1
}

impl Default for Hardware {
    fn default() -> Self {
        Hardware {
            memory_mib: default_memory(),
            cpus: default_cpus(),
            kernel: None,
            initrd: None,
            append: String::new(),
            boot_disk: None,
            ready_line: None,
            agent: false,
            nics: Vec::new(),
        }
    }
}

impl Hardware {
    pub fn read(folder: &Path) -> Answer<Hardware> {
        let path = folder.join("machine.json");
        let hardware: Hardware = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                setup(format!("{} is not a machine description: {e}", path.display()), "see the QEMU provider's README")
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Hardware::default(),
            Err(e) => return Err(io("cannot read", &path, e)),
        };
        for file in hardware.boot_files() {
            inside(folder, file)?;
        }
        Ok(hardware)
    }

    pub fn boot_files(&self) -> impl Iterator<Item = &String> {
        self.kernel.iter().chain(self.initrd.iter())
    }

    /// The files of `folder` that go with the machine's disks: its description, boot files
    /// and freeze/thaw programs (names inside the folder).
    pub fn travelling_files(&self, folder: &Path) -> Vec<String> {
        let mut files: Vec<String> = self.boot_files().cloned().collect();
        for file in ["machine.json", "freeze", "thaw"] {
            if folder.join(file).exists() {
                files.push(file.into());
            }
        }
        files
    }

    /// Which of `disks` (name, image) the firmware boots: `boot_disk`, or the first.
    pub fn boot_disk<'d>(&self, disks: &'d [(String, PathBuf)]) -> Answer<Option<&'d str>> {
        let Some(wanted) = &self.boot_disk else { return Ok(disks.first().map(|(name, _)| name.as_str())) };
        match disks.iter().find(|(name, _)| name == wanted) {
            Some((name, _)) => Ok(Some(name.as_str())),
            None => {
                let names: Vec<&str> = disks.iter().map(|(name, _)| name.as_str()).collect();
                Err(setup(
                    format!("boot_disk `{wanted}` is not one of the machine's disks ({})", names.join(", ")),
                    "name the disk as its file in the machine's folder, without `.qcow2`",
                ))
            }
        }
    }
}

/// `name` as a path inside `folder`: never absolute, never upwards (a machine description
/// must not make drplan read outside the site).
pub fn inside(folder: &Path, name: &str) -> Answer<PathBuf> {
    let relative = Path::new(name);
    if relative.is_absolute() || relative.components().any(|c| !matches!(c, std::path::Component::Normal(_))) {
        return Err(setup(
            format!("boot file `{name}` is outside the machine's folder {}", folder.display()),
            "name boot files relative to the machine's folder (they replicate with it)",
        ));
    }
    Ok(folder.join(relative))
}

/// How guests execute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accel {
    /// KVM when it runs guests here (see [`crate::kvm`]), else TCG.
    Auto,
    Kvm,
    Tcg,
}

impl Accel {
    pub fn parse(text: &str) -> Option<Accel> {
        match text {
            "auto" => Some(Accel::Auto),
            "kvm" => Some(Accel::Kvm),
            "tcg" => Some(Accel::Tcg),
            _ => None,
        }
    }

    /// The `-accel` options of a VM in `folder` that boots `kernel` (`None`: from a disk)
    /// with QEMU `program`. `auto` is KVM when `/dev/kvm` opens and, for a kernel, a probe
    /// boot printed under KVM ([`crate::kvm`]); QEMU itself falls back to TCG when KVM does
    /// not start.
    async fn args(self, program: &Path, kernel: Option<&Path>, folder: &Path) -> Vec<&'static str> {
        match self {
            Accel::Kvm => vec!["-accel", "kvm"],
            Accel::Tcg => vec!["-accel", "tcg"],
            Accel::Auto if !kvm::usable() => vec!["-accel", "tcg"],
            Accel::Auto => match kernel {
                Some(kernel) if !kvm::runs(program, kernel, folder).await => vec!["-accel", "tcg"],
                _ => vec!["-accel", "kvm", "-accel", "tcg"],
            },
        }
    }
}

/// What runs a VM: the program and how guests execute.
#[derive(Debug, Clone)]
pub struct Qemu {
    pub program: PathBuf,
    pub accel: Accel,
    /// Networks of the same name are one network within a scope (the site setting
    /// `network_scope`): two estates on one host stay apart by naming different scopes.
    pub network_scope: String,
}

/// One VM: the machine's own (`instance` "vm") or a drill's copy (`drill-NAME`).
pub struct Instance {
    pub folder: PathBuf,
    pub instance: String,
    pub label: String,
}

impl Instance {
    /// The machine's own VM in `folder`; `label` names it to QEMU (`-name`).
    pub fn vm(folder: &Path, label: String) -> Instance {
        Instance { folder: folder.to_path_buf(), instance: "vm".into(), label }
    }

    /// Drill `drill`'s copy of the machine in `folder`.
    pub fn drill(folder: &Path, drill: &str, label: String) -> Instance {
        Instance { folder: folder.to_path_buf(), instance: format!("drill-{drill}"), label }
    }

    pub fn socket(&self) -> PathBuf {
        self.folder.join(format!("{}.qmp", self.instance))
    }

    fn pidfile(&self) -> PathBuf {
        self.folder.join(format!("{}.pid", self.instance))
    }

    pub fn console(&self) -> PathBuf {
        self.folder.join(format!("{}.console.log", self.instance))
    }

    /// Whether the VM runs (its control socket answers).
    pub async fn running(&self) -> bool {
        self.socket().exists() && Qmp::connect(&self.socket()).await.is_some()
    }

    /// Start the VM on `disks` (name, image) with `nics`; returns which accelerator it got.
    pub async fn start(
        &self,
        qemu: &Qemu,
        hardware: &Hardware,
        disks: &[(String, PathBuf)],
        nics: &[NicAssignment],
    ) -> Answer<String> {
        let socket = self.socket();
        if socket.as_os_str().len() > 100 {
            return Err(setup(
                format!("the control socket path {} is too long for a unix socket", socket.display()),
                "use a shorter site path",
            ));
        }
        let _ = std::fs::remove_file(&socket);
        let mut args: Vec<String> = ["-name", &self.label, "-nodefaults", "-no-user-config", "-display", "none"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let kernel = hardware.kernel.as_deref().map(|k| inside(&self.folder, k)).transpose()?;
        let accel = qemu.accel.args(&qemu.program, kernel.as_deref(), &self.folder).await;
        args.extend(accel.iter().map(|s| s.to_string()));
        args.extend(["-m".into(), hardware.memory_mib.to_string(), "-smp".into(), hardware.cpus.to_string()]);
        let mut append = hardware.append.clone();
        // Which machine and site the guest is (the lab guest writes them into its records).
        if !self.label.is_empty() && !self.label.contains(char::is_whitespace) {
            append.push_str(&format!(" drplan.vm={}", self.label));
        }
        for (i, nic) in nics.iter().enumerate() {
            let (group, port) = network_address(&qemu.network_scope, &nic.network);
            args.push("-netdev".into());
            args.push(format!("socket,id=n{i},mcast={group}:{port},localaddr=127.0.0.1"));
            args.push("-device".into());
            args.push(format!("virtio-net-pci,netdev=n{i},mac={}", mac(&qemu.network_scope, &self.label, i)));
            if let Some(ip) = nic.ip {
                append.push_str(&format!(" drplan.ip{i}={ip}/24"));
            }
        }
        if let Some(kernel) = &kernel {
            args.extend(["-kernel".into(), kernel.to_string_lossy().into_owned()]);
            if let Some(initrd) = &hardware.initrd {
                args.extend(["-initrd".into(), inside(&self.folder, initrd)?.to_string_lossy().into_owned()]);
            }
            args.extend(["-append".into(), append.trim().to_string()]);
        }
        let boot_disk = if hardware.kernel.is_none() { hardware.boot_disk(disks)? } else { None };
        for (name, image) in disks {
            args.push("-blockdev".into());
            args.push(node_json(&format!("d-{name}"), image).to_string());
            let boot = if boot_disk == Some(name.as_str()) { ",bootindex=0" } else { "" };
            args.push("-device".into());
            // share-rw: writers on QEMU's own side (the test kit's and the lab's `qemu-io`
            // over the monitor) may write beside the guest; the image lock still keeps
            // every other process out.
            args.push(format!("virtio-blk-pci,drive=d-{name},serial={name},share-rw=on{boot}"));
        }
        if hardware.agent {
            let agent = self.folder.join(format!("{}.agent", self.instance));
            let _ = std::fs::remove_file(&agent);
            args.extend(["-chardev".into(), format!("socket,id=agent,path={},server=on,wait=off", agent.display())]);
            args.extend(["-device".into(), "virtio-serial-pci,id=vser".into()]);
            args.extend(["-device".into(), "virtserialport,bus=vser.0,chardev=agent,name=drplan.agent".into()]);
        }
        args.extend(["-chardev".into(), format!("file,id=console,path={},append=on", self.console().display())]);
        args.extend(["-serial".into(), "chardev:console".into()]);
        args.extend(["-qmp".into(), format!("unix:{},server=on,wait=off", socket.display())]);
        args.extend(["-daemonize".into(), "-pidfile".into(), self.pidfile().to_string_lossy().into_owned()]);
        let output = tokio::process::Command::new(&qemu.program).args(&args).output().await.map_err(|e| {
            setup(
                format!("`{}` could not be run: {e}", qemu.program.display()),
                "install qemu-system-x86, or set the site's `qemu_system` setting",
            )
        })?;
        if !output.status.success() {
            return Err(failed(format!(
                "QEMU did not start {}: {}",
                self.label,
                String::from_utf8_lossy(&output.stderr).trim()
            )));
        }
        let mut qmp = Qmp::connect_within(&socket, Duration::from_secs(10)).await?;
        accel_of(&mut qmp).await
    }

    /// Which accelerator the running VM uses, when it runs.
    async fn accel(&self) -> Option<String> {
        accel_of(&mut Qmp::connect(&self.socket()).await?).await.ok()
    }

    /// How much the console log holds now (a start then looks only at what comes after).
    pub fn console_mark(&self) -> u64 {
        std::fs::metadata(self.console()).map_or(0, |m| m.len())
    }

    /// What the guest printed on its console after `mark` (read from there: a guest that has
    /// run for long may have printed much before it).
    async fn console_since(&self, mark: u64) -> Vec<u8> {
        use tokio::io::{AsyncReadExt, AsyncSeekExt};
        let mut new = Vec::new();
        if let Ok(mut console) = tokio::fs::File::open(self.console()).await
            && console.seek(std::io::SeekFrom::Start(mark)).await.is_ok()
        {
            let _ = console.read_to_end(&mut new).await;
        }
        new
    }

    /// Whether the guest printed `line` on its console after `mark`.
    pub async fn printed(&self, line: &str, mark: u64) -> bool {
        String::from_utf8_lossy(&self.console_since(mark).await).contains(line)
    }

    /// Wait until the guest prints `line` on its console after `mark`, while the VM runs.
    pub async fn wait_ready(&self, line: &str, mark: u64, timeout: Duration) -> Answer<Duration> {
        let began = tokio::time::Instant::now();
        loop {
            let new = self.console_since(mark).await;
            if String::from_utf8_lossy(&new).contains(line) {
                return Ok(began.elapsed());
            }
            if began.elapsed() > timeout {
                let message = format!(
                    "{} did not print `{line}` on its console within {timeout:?} (see {})",
                    self.label,
                    self.console().display()
                );
                // KVM can be there and still run no guest (the project's own CI machine).
                let hint = if new.is_empty() && self.accel().await.as_deref() == Some("kvm") {
                    "its console stayed empty under KVM, which on some hosts runs no guest: set the site's \
                     `accel: tcg` and stop this VM"
                } else {
                    "the VM still runs: asking again waits on for the line (a slow boot wants a longer \
                     `boot_timeout`)"
                };
                return Err(failed_hint(message, hint));
            }
            if !self.running().await {
                return Err(failed(format!(
                    "{} stopped before it printed `{line}` (see {})",
                    self.label,
                    self.console().display()
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// ACPI power-down, then a hard stop when the guest has not gone within `timeout`.
    /// Returns whether the guest shut down by itself.
    pub async fn stop(&self, timeout: Duration) -> Answer<bool> {
        let Some(mut qmp) = Qmp::connect(&self.socket()).await else { return Ok(true) };
        let pid = self.pid();
        let _ = qmp.execute("system_powerdown", json!({})).await;
        let clean = qmp.closed_within(timeout).await;
        if !clean {
            let _ = qmp.execute("quit", json!({})).await;
            if !qmp.closed_within(Duration::from_secs(10)).await {
                kill(pid);
            }
        }
        self.reap(pid).await;
        Ok(clean)
    }

    /// Stop at once (a drill's copy: nothing in it is kept).
    pub async fn quit(&self) {
        let pid = self.pid();
        if let Some(mut qmp) = Qmp::connect(&self.socket()).await {
            let _ = qmp.execute("quit", json!({})).await;
            if !qmp.closed_within(Duration::from_secs(10)).await {
                kill(pid);
            }
        }
        self.reap(pid).await;
    }

    /// The pid of the daemonized QEMU (read while it runs: QEMU removes the file as it exits).
    fn pid(&self) -> Option<i32> {
        std::fs::read_to_string(self.pidfile()).ok()?.trim().parse().ok()
    }

    /// Wait until the process is gone: its socket closes before it releases its image locks.
    async fn reap(&self, pid: Option<i32>) {
        for _ in 0..400 {
            if !alive(pid) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        if alive(pid) {
            kill(pid);
        }
        let _ = std::fs::remove_file(self.socket());
        let _ = std::fs::remove_file(self.pidfile());
    }
}

/// Whether the process runs. A daemonized QEMU's parent is whoever adopts orphans, which may
/// never reap it: an exited one can linger as a zombie, and a zombie holds no locks.
fn alive(pid: Option<i32>) -> bool {
    let Some(pid) = pid else { return false };
    // SAFETY: signal 0 only checks that the process exists.
    if unsafe { libc::kill(pid, 0) } != 0 {
        return false;
    }
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let state = stat.rsplit_once(')').and_then(|(_, rest)| rest.trim_start().chars().next());
    !matches!(state, Some('Z' | 'X'))
}

fn kill(pid: Option<i32>) {
    if let Some(pid) = pid.filter(|_| alive(pid)) {
        // SAFETY: a plain signal to the QEMU this instance started (its pidfile).
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
}

/// A qcow2 node of `image` named `node`, for `-blockdev` and `blockdev-add`.
pub fn node_json(node: &str, image: &Path) -> serde_json::Value {
    json!({ "driver": "qcow2", "node-name": node, "file": { "driver": "file", "filename": image } })
}

/// Each plan network is one multicast group on the loopback interface: VMs on one network
/// reach each other, VMs on different networks (a drill's test network) cannot.
pub fn network_address(scope: &str, network: &str) -> (String, u16) {
    let hash = blake3::hash(format!("{scope}/{network}").as_bytes());
    let b = hash.as_bytes();
    let port = 20_000 + (u16::from_le_bytes([b[0], b[1]]) % 20_000);
    (format!("239.192.{}.{}", b[2], b[3]), port)
}

/// A stable, locally administered MAC for a VM's `index`th NIC.
fn mac(scope: &str, label: &str, index: usize) -> String {
    let hash = blake3::hash(format!("{scope}/{label}/{index}").as_bytes());
    let b = hash.as_bytes();
    format!("52:54:00:{:02x}:{:02x}:{:02x}", b[0], b[1], b[2])
}

/// Block access to the disks of a machine that is off: a QEMU with no machine that only
/// opens them, so a backup job can run on them. It saves persistent bitmaps when it quits.
pub struct Helper {
    child: tokio::process::Child,
    socket: PathBuf,
}

impl Helper {
    pub async fn open(qemu: &Qemu, folder: &Path, disks: &[(String, PathBuf)]) -> Answer<(Helper, Qmp)> {
        let socket = folder.join("helper.qmp");
        let _ = std::fs::remove_file(&socket);
        let mut args: Vec<String> = ["-machine", "none", "-nodefaults", "-no-user-config", "-display", "none"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        for (name, image) in disks {
            args.push("-blockdev".into());
            args.push(node_json(&format!("d-{name}"), image).to_string());
        }
        args.extend(["-qmp".into(), format!("unix:{},server=on,wait=off", socket.display())]);
        let child = tokio::process::Command::new(&qemu.program)
            .args(&args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| {
                setup(format!("`{}` could not be run: {e}", qemu.program.display()), "install qemu-system-x86")
            })?;
        let mut helper = Helper { child, socket };
        match Qmp::connect_within(&helper.socket, Duration::from_secs(10)).await {
            Ok(qmp) => Ok((helper, qmp)),
            Err(e) => {
                let _ = helper.child.kill().await;
                let mut stderr = String::new();
                if let Some(mut err) = helper.child.stderr.take() {
                    use tokio::io::AsyncReadExt;
                    let _ = err.read_to_string(&mut stderr).await;
                }
                Err(failed(format!("{} ({})", e.message, stderr.trim())))
            }
        }
    }

    /// Quit cleanly (persistent bitmaps are written to the images now).
    pub async fn close(mut self, mut qmp: Qmp) {
        let _ = qmp.execute("quit", json!({})).await;
        let _ = tokio::time::timeout(Duration::from_secs(20), self.child.wait()).await;
        let _ = self.child.kill().await;
        let _ = std::fs::remove_file(&self.socket);
    }
}

/// `kvm` or `tcg`, as the VM behind `qmp` runs.
async fn accel_of(qmp: &mut Qmp) -> Answer<String> {
    let kvm = qmp.execute("query-kvm", json!({})).await?;
    Ok(if kvm.get("enabled").and_then(|e| e.as_bool()) == Some(true) { "kvm" } else { "tcg" }.into())
}
