//! File operations that never follow a symbolic link where drplan creates or overwrites, and
//! that give what drplan creates for itself (state, journals, locks, reports) private modes
//! regardless of the umask.

use std::fs::{DirBuilder, File, OpenOptions, Permissions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Mode of the files drplan keeps for itself.
pub const PRIVATE_FILE: u32 = 0o600;
/// Mode of the directories drplan keeps for itself.
pub const PRIVATE_DIR: u32 = 0o700;

fn no_follow(options: &mut OpenOptions) -> &mut OpenOptions {
    options.custom_flags(libc::O_NOFOLLOW)
}

/// A new file (it must not exist yet), never through a link.
pub fn create_new(path: &Path, mode: u32) -> io::Result<File> {
    no_follow(OpenOptions::new().write(true).create_new(true).mode(mode)).open(path)
}

/// Open for writing, creating it when absent, never through a link; the content is kept.
pub fn open_write(path: &Path, mode: u32) -> io::Result<File> {
    no_follow(OpenOptions::new().read(true).write(true).create(true).truncate(false).mode(mode)).open(path)
}

/// Open for appending, creating it when absent, never through a link.
pub fn open_append(path: &Path, mode: u32) -> io::Result<File> {
    no_follow(OpenOptions::new().create(true).append(true).mode(mode)).open(path)
}

/// Open an existing file for reading, refusing a link.
pub fn open_read(path: &Path) -> io::Result<File> {
    no_follow(OpenOptions::new().read(true)).open(path)
}

/// A directory and its parents, created private (0700 whatever the umask); existing ones are
/// left as they are.
pub fn create_private_dir(path: &Path) -> io::Result<()> {
    DirBuilder::new().recursive(true).mode(PRIVATE_DIR).create(path)
}

/// Set a file's mode exactly (the umask applies to modes given at creation).
pub fn set_mode(file: &File, mode: u32) -> io::Result<()> {
    file.set_permissions(Permissions::from_mode(mode))
}

/// The permission bits of a file, to give its copy the same.
pub fn mode_of(path: &Path) -> io::Result<u32> {
    Ok(std::fs::symlink_metadata(path)?.permissions().mode() & 0o7777)
}

/// Copy `src` (a regular file, not a link) over `dst` (never written through a link), with
/// the source's mode; returns the bytes copied.
pub fn copy_file(src: &Path, dst: &Path) -> io::Result<u64> {
    let mut from = open_read(src)?;
    let meta = from.metadata()?;
    if !meta.is_file() {
        return Err(io::Error::other(format!("{} is not a regular file", src.display())));
    }
    let mode = meta.permissions().mode() & 0o7777;
    let mut to = no_follow(OpenOptions::new().write(true).create(true).truncate(true).mode(mode)).open(dst)?;
    let bytes = io::copy(&mut from, &mut to)?;
    set_mode(&to, mode)?;
    Ok(bytes)
}

/// Refuse when any existing component of `path` below `root` is a symbolic link: whatever
/// drplan writes there would land outside the site.
pub fn no_links_below(root: &Path, path: &Path) -> io::Result<()> {
    let rest = path
        .strip_prefix(root)
        .map_err(|_| io::Error::other(format!("{} is outside {}", path.display(), root.display())))?;
    let mut at = root.to_path_buf();
    for component in rest.components() {
        at.push(component);
        match std::fs::symlink_metadata(&at) {
            Ok(meta) if meta.file_type().is_symlink() => {
                return Err(io::Error::other(format!(
                    "{} is a symbolic link; drplan does not write through links",
                    at.display()
                )));
            }
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// A plain name that is safe as one path component: not empty, no separator, no NUL, not
/// `.`/`..`, not hidden (a leading `.` could collide with drplan's own `.drplan`).
pub fn is_plain_name(name: &str) -> bool {
    !name.is_empty() && !name.starts_with('.') && !name.contains(['/', '\\', '\0']) && name.len() <= 255
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_never_follow_links_and_modes_ignore_the_umask() {
        let dir = std::env::temp_dir().join(format!("drplan-os-{}", std::process::id()));
        create_private_dir(&dir.join("a/b")).unwrap();
        assert_eq!(std::fs::metadata(dir.join("a/b")).unwrap().permissions().mode() & 0o777, 0o700);
        let outside = dir.join("outside.txt");
        std::fs::write(&outside, b"keep").unwrap();
        std::os::unix::fs::symlink(&outside, dir.join("a/link")).unwrap();
        assert!(open_write(&dir.join("a/link"), PRIVATE_FILE).is_err());
        assert!(create_new(&dir.join("a/link"), PRIVATE_FILE).is_err());
        assert!(copy_file(&dir.join("outside.txt"), &dir.join("a/link")).is_err());
        assert_eq!(std::fs::read(&outside).unwrap(), b"keep");
        std::os::unix::fs::symlink(&dir, dir.join("a/b/up")).unwrap();
        assert!(no_links_below(&dir, &dir.join("a/b/up/x")).is_err());
        assert!(no_links_below(&dir, &dir.join("a/b/missing/x")).is_ok());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn plain_names() {
        assert!(is_plain_name("vm-01.db"));
        for bad in ["", ".", "..", ".drplan", "a/b", "/abs", "../../x", "a\0b"] {
            assert!(!is_plain_name(bad), "{bad:?}");
        }
    }
}
