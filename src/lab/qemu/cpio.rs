//! A writer of the "newc" cpio format, the one Linux unpacks as an initramfs. Written here
//! because the archive needs a device node (`/dev/console`) that an unprivileged `cpio` run
//! could not create from the file system.

/// One archive being written, in memory (an initramfs is a few MiB).
pub struct Archive {
    bytes: Vec<u8>,
    inode: u32,
}

const DIR: u32 = 0o040000;
const FILE: u32 = 0o100000;
const CHAR_DEVICE: u32 = 0o020000;

impl Archive {
    pub fn new() -> Archive {
        Archive { bytes: Vec::new(), inode: 1 }
    }

    pub fn dir(&mut self, path: &str) {
        self.entry(path, DIR | 0o755, (0, 0), &[]);
    }

    pub fn file(&mut self, path: &str, mode: u32, content: &[u8]) {
        self.entry(path, FILE | mode, (0, 0), content);
    }

    pub fn char_device(&mut self, path: &str, mode: u32, major: u32, minor: u32) {
        self.entry(path, CHAR_DEVICE | mode, (major, minor), &[]);
    }

    /// The archive with its trailer.
    pub fn finish(mut self) -> Vec<u8> {
        self.entry("TRAILER!!!", 0, (0, 0), &[]);
        self.bytes
    }

    fn entry(&mut self, path: &str, mode: u32, (rmajor, rminor): (u32, u32), content: &[u8]) {
        let name_size = path.len() + 1;
        let fields = [
            self.inode,
            mode,
            0, // uid
            0, // gid
            if mode & DIR != 0 { 2 } else { 1 },
            0, // mtime: fixed, so the same inputs give the same archive
            content.len() as u32,
            0, // device major
            0, // device minor
            rmajor,
            rminor,
            name_size as u32,
            0, // checksum (unused by newc)
        ];
        self.inode += 1;
        self.bytes.extend_from_slice(b"070701");
        for field in fields {
            self.bytes.extend_from_slice(format!("{field:08X}").as_bytes());
        }
        self.bytes.extend_from_slice(path.as_bytes());
        self.bytes.push(0);
        self.align();
        self.bytes.extend_from_slice(content);
        self.align();
    }

    fn align(&mut self) {
        while !self.bytes.len().is_multiple_of(4) {
            self.bytes.push(0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Archive;

    #[test]
    fn cpio_reads_back_what_was_written() {
        if !std::process::Command::new("cpio").arg("--version").output().is_ok_and(|o| o.status.success()) {
            // `.ci/run` installs cpio and sets DRPLAN_REQUIRE_TOOLS: there a missing one fails.
            assert!(std::env::var_os("DRPLAN_REQUIRE_TOOLS").is_none(), "cpio is not installed");
            eprintln!("skipped: cpio is not installed here");
            return;
        }
        let mut archive = Archive::new();
        archive.dir("bin");
        archive.file("bin/hello", 0o755, b"#!/bin/sh\necho hi\n");
        archive.file("odd", 0o644, b"12345");
        archive.char_device("console", 0o600, 5, 1);
        let bytes = archive.finish();
        assert_eq!(bytes.len() % 4, 0);
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.cpio"), &bytes).unwrap();
        let list =
            std::process::Command::new("cpio").args(["-itv", "-F"]).arg(dir.path().join("a.cpio")).output().unwrap();
        let text = String::from_utf8_lossy(&list.stdout);
        assert!(list.status.success(), "{}", String::from_utf8_lossy(&list.stderr));
        assert!(text.contains("drwxr-xr-x") && text.contains("bin/hello"), "{text}");
        assert!(text.contains("-rwxr-xr-x") && text.contains("odd"), "{text}");
        assert!(text.contains("crw-------") && text.contains("5,") && text.contains("console"), "{text}");
    }
}
