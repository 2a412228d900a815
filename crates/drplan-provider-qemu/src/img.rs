//! `qemu-img` for images nobody has open: create, layer, compare, merge, measure. Arguments
//! are passed as a list (never through a shell).

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::errors::{Answer, failed, setup};

#[derive(Debug, Clone)]
pub struct QemuImg {
    pub program: PathBuf,
}

#[derive(Debug, Deserialize)]
pub struct ImageInfo {
    #[serde(rename = "virtual-size")]
    pub virtual_size: u64,
    /// The backing file as the image names it.
    #[serde(rename = "backing-filename", default)]
    pub backing_filename: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Extent {
    length: u64,
    depth: u64,
    data: bool,
}

impl QemuImg {
    /// `qemu-img` with `args`, killed when the call waiting for it is dropped (a cancelled
    /// transfer: its target stays marked inconsistent and the next transfer redoes it).
    fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(&self.program);
        command.args(args).kill_on_drop(true);
        command
    }

    fn cannot_run(&self, e: std::io::Error) -> drplan_protocol::rpc::RpcError {
        setup(
            format!("`{}` could not be run: {e}", self.program.display()),
            "install qemu-utils, or set the site's `qemu_img` setting",
        )
    }

    /// Run with `args`; exit codes in `ok` succeed. Returns stdout.
    pub async fn run(&self, args: &[&str], ok: &[i32]) -> Answer<(i32, String)> {
        let output = self.command(args).output().await.map_err(|e| self.cannot_run(e))?;
        let code = output.status.code().unwrap_or(-1);
        if !ok.contains(&code) {
            let stderr = String::from_utf8_lossy(&output.stderr);
            return Err(failed(format!("qemu-img {} failed: {}", args[0], stderr.trim())));
        }
        Ok((code, String::from_utf8_lossy(&output.stdout).into_owned()))
    }

    pub async fn info(&self, image: &Path) -> Answer<ImageInfo> {
        let (_, out) = self.run(&["info", "-U", "--output=json", &text(image)], &[0]).await?;
        serde_json::from_str(&out).map_err(|e| failed(format!("qemu-img info of {}: {e}", image.display())))
    }

    pub async fn size(&self, image: &Path) -> Answer<u64> {
        Ok(self.info(image).await?.virtual_size)
    }

    /// Bytes of guest data the image itself holds (not its backing files).
    pub async fn own_bytes(&self, image: &Path) -> Answer<u64> {
        let (_, out) = self.run(&["map", "--output=json", &text(image)], &[0]).await?;
        let extents: Vec<Extent> =
            serde_json::from_str(&out).map_err(|e| failed(format!("qemu-img map of {}: {e}", image.display())))?;
        Ok(extents.iter().filter(|e| e.depth == 0 && e.data).map(|e| e.length).sum())
    }

    pub async fn create(&self, image: &Path, size: u64) -> Answer<()> {
        self.run(&["create", "-q", "-f", "qcow2", &text(image), &size.to_string()], &[0]).await.map(drop)
    }

    /// An empty image layered on `backing`, named relative to it (both are in one folder, so
    /// the chain survives moving the site).
    pub async fn overlay(&self, image: &Path, backing: &Path) -> Answer<()> {
        let name = backing.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        self.overlay_named(image, &name, "qcow2").await
    }

    /// An empty image layered on the backing file named `backing` (relative to the image's
    /// folder, absolute, or a URI such as an NBD export's) in `format`.
    pub async fn overlay_named(&self, image: &Path, backing: &str, format: &str) -> Answer<()> {
        self.run(&["create", "-q", "-f", "qcow2", "-F", format, "-b", backing, &text(image)], &[0]).await.map(drop)
    }

    /// Whether two images show the guest the same data.
    pub async fn same(&self, a: &Path, b: &Path) -> Answer<bool> {
        Ok(self.run(&["compare", "-q", &text(a), &text(b)], &[0, 1]).await?.0 == 0)
    }

    /// The image made standalone: its backing chain's data pulled into it.
    pub async fn standalone(&self, image: &Path) -> Answer<()> {
        self.run(&["rebase", "-q", "-f", "qcow2", "-b", "", &text(image)], &[0]).await.map(drop)
    }

    /// Safe rebase onto `backing` (the image keeps showing the same data), telling `seen` how
    /// far it got (percent) as `qemu-img` reports it (`-p`): a rebase that compares whole
    /// disks takes minutes on large ones.
    pub async fn rebase_reporting(&self, image: &Path, backing: &Path, seen: impl Fn(f64)) -> Answer<()> {
        use tokio::io::AsyncReadExt;
        let name = backing.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let args = ["rebase", "-p", "-f", "qcow2", "-F", "qcow2", "-b", &name, &text(image)];
        let mut child = self
            .command(&args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .map_err(|e| self.cannot_run(e))?;
        let (Some(mut stdout), Some(mut stderr)) = (child.stdout.take(), child.stderr.take()) else {
            return Err(failed("qemu-img's pipes were not set up"));
        };
        let errors = tokio::spawn(async move {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text).await;
            text
        });
        // Progress comes as `    (12.34/100%)` lines ended by a carriage return.
        let (mut buffer, mut chunk) = (String::new(), [0u8; 512]);
        while let Ok(n) = stdout.read(&mut chunk).await {
            if n == 0 {
                break;
            }
            buffer.push_str(&String::from_utf8_lossy(&chunk[..n]));
            while let Some(end) = buffer.find(['\r', '\n']) {
                let line: String = buffer.drain(..=end).collect();
                let percent = line.trim().strip_prefix('(').and_then(|l| l.split('/').next()?.parse::<f64>().ok());
                if let Some(percent) = percent {
                    seen(percent);
                }
            }
        }
        let status = child.wait().await.map_err(|e| failed(format!("qemu-img rebase: {e}")))?;
        if !status.success() {
            let stderr = errors.await.unwrap_or_default();
            return Err(failed(format!("qemu-img rebase failed: {}", stderr.trim())));
        }
        Ok(())
    }

    /// Write the image's own clusters into its backing file.
    pub async fn commit(&self, image: &Path) -> Answer<()> {
        self.run(&["commit", "-q", "-f", "qcow2", &text(image)], &[0]).await.map(drop)
    }

    /// Write the image's own clusters into its backing file and leave the image as it was
    /// (`-d`), so both stay readable if this is cut short.
    pub async fn commit_keep(&self, image: &Path) -> Answer<()> {
        self.run(&["commit", "-q", "-d", "-f", "qcow2", &text(image)], &[0]).await.map(drop)
    }

    pub async fn resize(&self, image: &Path, size: u64) -> Answer<()> {
        self.run(&["resize", "-q", &text(image), &size.to_string()], &[0]).await.map(drop)
    }

    /// Add a persistent dirty bitmap to an image nobody has open.
    pub async fn add_bitmap(&self, image: &Path, name: &str) -> Answer<()> {
        self.run(&["bitmap", "--add", &text(image), name], &[0]).await.map(drop)
    }

    pub async fn remove_bitmap(&self, image: &Path, name: &str) -> Answer<()> {
        self.run(&["bitmap", "--remove", &text(image), name], &[0]).await.map(drop)
    }

    /// The persistent bitmaps of an image: (name, usable). A bitmap of a VM that was killed
    /// is marked in use and no longer usable.
    pub async fn bitmaps(&self, image: &Path) -> Answer<Vec<(String, bool)>> {
        let (_, out) = self.run(&["info", "-U", "--output=json", &text(image)], &[0]).await?;
        let value: serde_json::Value = serde_json::from_str(&out).map_err(|e| failed(e.to_string()))?;
        let list =
            value.pointer("/format-specific/data/bitmaps").and_then(|b| b.as_array()).cloned().unwrap_or_default();
        Ok(list
            .iter()
            .filter_map(|b| {
                let name = b.get("name")?.as_str()?.to_string();
                let flags: Vec<&str> =
                    b.get("flags")?.as_array()?.iter().filter_map(|f| f.as_str()).collect::<Vec<_>>();
                Some((name, !flags.contains(&"in-use")))
            })
            .collect())
    }
}

pub fn text(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}
