//! Crash-safe file replacement: a reader sees the old file or the new one, never half of one.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Write `bytes` to `path` via a temporary file in the same directory: write, fsync, rename,
/// then fsync the directory so the rename itself survives a crash.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_atomic_parts(path, &[bytes])
}

/// [`write_atomic`] of the concatenation of `parts`, without building it in memory.
pub fn write_atomic_parts(path: &Path, parts: &[&[u8]]) -> io::Result<()> {
    write_atomic_with(path, |out| parts.iter().try_for_each(|part| out.write_all(part)))
}

/// [`write_atomic`] of what `write` writes (buffered): a large file is never held whole.
pub fn write_atomic_with(path: &Path, write: impl FnOnce(&mut dyn Write) -> io::Result<()>) -> io::Result<()> {
    let dir = parent_dir(path);
    crate::os::fs::create_private_dir(&dir)?;
    let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "file".into());
    let temp = dir.join(format!(".{file_name}.tmp-{}", std::process::id()));
    // A temporary file of this name is a leftover of a crashed writer of this pid (or a planted
    // link): it goes, and the new one is created afresh, private, never through a link.
    let _ = fs::remove_file(&temp);
    let result = (|| {
        let mut out =
            io::BufWriter::with_capacity(1 << 20, crate::os::fs::create_new(&temp, crate::os::fs::PRIVATE_FILE)?);
        write(&mut out)?;
        let file = out.into_inner().map_err(io::IntoInnerError::into_error)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&temp, path)?;
        sync_dir(&dir)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result
}

/// fsync a directory so that entries created or renamed in it are durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_content_and_leaves_no_temp_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from("state.json")]);
    }

    #[test]
    fn a_writer_that_fails_leaves_the_old_file_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("world.json");
        write_atomic_with(&path, |out| out.write_all(&[b'a'; 3 << 20])).unwrap();
        let failed = write_atomic_with(&path, |out| {
            out.write_all(b"half of a new world")?;
            Err(io::Error::other("the serializer failed"))
        });
        assert_eq!(failed.unwrap_err().to_string(), "the serializer failed");
        assert_eq!(fs::read(&path).unwrap(), vec![b'a'; 3 << 20]);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1, "no temporary file is left");
    }
}
