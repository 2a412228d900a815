//! Block-level replication of disk images: blake3 block hashes (computed in parallel), delta
//! transfer of changed blocks only, undo logs that keep older recovery points restorable,
//! and verification of a copy against a point.

use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use tokio_util::sync::CancellationToken;

use super::layout::disks_in;
use crate::os::fs;

pub type Hash = [u8; 32];

/// Per disk: its size and the hash of every block.
pub type Manifests = BTreeMap<String, (u64, Vec<Hash>)>;

/// Disks larger than this are hashed by several threads, each taking a range.
const PARALLEL_RANGE: u64 = 64 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum BlockError {
    #[error("{0}")]
    Io(String),
    #[error("cancelled")]
    Cancelled,
    #[error("{0}")]
    Mismatch(String),
}

fn io_err(what: &str, path: &Path, e: io::Error) -> BlockError {
    BlockError::Io(format!("cannot {what} {}: {e}", path.display()))
}

fn check(cancel: &CancellationToken) -> Result<(), BlockError> {
    if cancel.is_cancelled() { Err(BlockError::Cancelled) } else { Ok(()) }
}

fn threads() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get()).clamp(1, 16)
}

/// The blake3 hash of every block of a file.
pub fn hash_file(path: &Path, block_size: u64, cancel: &CancellationToken) -> Result<(u64, Vec<Hash>), BlockError> {
    let file = File::open(path).map_err(|e| io_err("open", path, e))?;
    let size = file.metadata().map_err(|e| io_err("stat", path, e))?.len();
    let blocks = size.div_ceil(block_size) as usize;
    let mut hashes = vec![[0u8; 32]; blocks];
    let workers = if size > PARALLEL_RANGE { threads().min(blocks.max(1)) } else { 1 };
    let per = blocks.div_ceil(workers.max(1)).max(1);
    let result: Result<(), BlockError> = std::thread::scope(|scope| {
        let mut handles = Vec::new();
        for (w, chunk) in hashes.chunks_mut(per).enumerate() {
            let file = &file;
            handles.push(scope.spawn(move || -> Result<(), BlockError> {
                let mut buf = vec![0u8; block_size as usize];
                for (k, slot) in chunk.iter_mut().enumerate() {
                    if k % 256 == 0 {
                        check(cancel)?;
                    }
                    let index = (w * per + k) as u64;
                    let len =
                        read_block(file, index, block_size, size, &mut buf).map_err(|e| io_err("read", path, e))?;
                    *slot = *blake3::hash(&buf[..len]).as_bytes();
                }
                Ok(())
            }));
        }
        for h in handles {
            h.join().map_err(|_| BlockError::Io("a hashing thread panicked".into()))??;
        }
        Ok(())
    });
    result?;
    Ok((size, hashes))
}

/// Read block `index` into `buf`; returns its length (the last block may be short).
fn read_block(file: &File, index: u64, block_size: u64, size: u64, buf: &mut [u8]) -> io::Result<usize> {
    let offset = index * block_size;
    let len = block_size.min(size.saturating_sub(offset)) as usize;
    file.read_exact_at(&mut buf[..len], offset)?;
    Ok(len)
}

pub fn write_hashes(path: &Path, hashes: &[Hash]) -> Result<(), BlockError> {
    let bytes: Vec<u8> = hashes.iter().flatten().copied().collect();
    crate::state::atomic::write_atomic(path, &bytes).map_err(|e| io_err("write", path, e))
}

pub fn read_hashes(path: &Path) -> Result<Option<Vec<Hash>>, BlockError> {
    match std::fs::read(path) {
        Ok(bytes) if bytes.len() % 32 == 0 => {
            Ok(Some(bytes.chunks_exact(32).map(|c| c.try_into().expect("32 bytes")).collect()))
        }
        Ok(_) => Err(BlockError::Io(format!("{} is truncated", path.display()))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err("read", path, e)),
    }
}

/// An undo log: `(index u64, length u32, bytes)` records, first write per block wins.
struct UndoLog {
    path: PathBuf,
    recorded: HashSet<u64>,
}

impl UndoLog {
    fn open(path: PathBuf) -> Result<UndoLog, BlockError> {
        let mut recorded = HashSet::new();
        for (index, _) in read_undo(&path)? {
            recorded.insert(index);
        }
        Ok(UndoLog { path, recorded })
    }
}

fn read_undo(path: &Path) -> Result<Vec<(u64, Vec<u8>)>, BlockError> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err("open", path, e)),
    };
    let mut reader = BufReader::new(file);
    let mut out = Vec::new();
    loop {
        let mut head = [0u8; 12];
        match reader.read_exact(&mut head) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => break,
            Err(e) => return Err(io_err("read", path, e)),
        }
        let index = u64::from_le_bytes(head[..8].try_into().expect("8 bytes"));
        let len = u32::from_le_bytes(head[8..].try_into().expect("4 bytes")) as usize;
        let mut data = vec![0u8; len];
        match reader.read_exact(&mut data) {
            Ok(()) => out.push((index, data)),
            // A record torn by a crash was never followed by overwriting its block.
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => break,
            Err(e) => return Err(io_err("read", path, e)),
        }
    }
    Ok(out)
}

/// What a transfer did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Transfer {
    pub bytes_total: u64,
    pub bytes_transferred: u64,
    pub blocks_changed: u64,
}

impl std::ops::AddAssign for Transfer {
    fn add_assign(&mut self, other: Transfer) {
        self.bytes_total += other.bytes_total;
        self.bytes_transferred += other.bytes_transferred;
        self.blocks_changed += other.blocks_changed;
    }
}

/// The previous point a delta transfer builds on.
pub struct Baseline<'a> {
    /// Where that point's block hashes are (`<disk>.hashes`), if it has them.
    pub hashes_dir: &'a Path,
    /// Where its undo log goes (`<disk>.undo`): the old content of every block this transfer
    /// overwrites. None: no older point needs keeping (initial copy, or a full resync).
    pub undo_dir: Option<&'a Path>,
}

/// Make the images in `target` equal to those in `source`, moving only changed blocks.
/// Returns per disk its size and the hashes of what was written (so a source that changes
/// while it is read still yields hashes that match the target).
pub fn delta_sync(
    source: &Path,
    target: &Path,
    baseline: Option<&Baseline>,
    block_size: u64,
    cancel: &CancellationToken,
) -> Result<(Transfer, Manifests), BlockError> {
    fs::create_private_dir(target).map_err(|e| io_err("create", target, e))?;
    let disks = disks_in(source).map_err(|e| io_err("list", source, e))?;
    let mut total = Transfer::default();
    let mut manifests = BTreeMap::new();
    for (name, src_path) in disks {
        check(cancel)?;
        let dst_path = target.join(&name);
        let (size, mut new_hashes) = hash_file(&src_path, block_size, cancel)?;
        // What the target holds now: the baseline point's hashes, or (when unknown) the
        // target's own blocks.
        let old_hashes = match baseline.map(|b| b.hashes_dir.join(format!("{name}.hashes"))) {
            Some(p) => read_hashes(&p)?,
            None => None,
        };
        let old_hashes = match old_hashes {
            Some(h) => Some(h),
            None if dst_path.exists() => Some(hash_file(&dst_path, block_size, cancel)?.1),
            None => None,
        };
        let mut undo = match baseline.and_then(|b| b.undo_dir) {
            Some(dir) => Some(UndoLog::open(dir.join(format!("{name}.undo")))?),
            None => None,
        };
        let old_count = old_hashes.as_ref().map_or(0, Vec::len);
        let mut changed: Vec<u64> = (0..new_hashes.len() as u64)
            .filter(|&i| {
                old_hashes.as_ref().and_then(|h| h.get(i as usize)) != Some(&new_hashes[i as usize])
                    || undo.as_ref().is_some_and(|u| u.recorded.contains(&i))
            })
            .collect();
        // Blocks past the new end (a shrunk disk) also change, for the undo log.
        let shrunk: Vec<u64> = (new_hashes.len() as u64..old_count as u64).collect();

        // The copy keeps the source's mode, and is never written through a link.
        let mode = fs::mode_of(&src_path).map_err(|e| io_err("stat", &src_path, e))?;
        let dst = fs::open_write(&dst_path, mode).map_err(|e| io_err("open", &dst_path, e))?;
        fs::set_mode(&dst, mode).map_err(|e| io_err("chmod", &dst_path, e))?;
        let dst_size = dst.metadata().map_err(|e| io_err("stat", &dst_path, e))?.len();
        let mut buf = vec![0u8; block_size as usize];
        // 1. Record the old content of every block about to be overwritten, durably, before
        //    touching any of them: a crash in step 2 then loses nothing an older point needs.
        if let Some(undo) = undo.as_mut() {
            let file = fs::open_append(&undo.path, fs::PRIVATE_FILE).map_err(|e| io_err("open", &undo.path, e))?;
            let mut writer = BufWriter::new(file);
            for &i in changed.iter().chain(&shrunk) {
                if i as usize >= old_count || undo.recorded.contains(&i) || i * block_size >= dst_size {
                    continue;
                }
                let len =
                    read_block(&dst, i, block_size, dst_size, &mut buf).map_err(|e| io_err("read", &dst_path, e))?;
                writer
                    .write_all(&i.to_le_bytes())
                    .and_then(|_| writer.write_all(&(len as u32).to_le_bytes()))
                    .and_then(|_| writer.write_all(&buf[..len]))
                    .map_err(|e| io_err("write", &undo.path, e))?;
                undo.recorded.insert(i);
            }
            let file = writer.into_inner().map_err(|e| io_err("write", &undo.path, e.into_error()))?;
            file.sync_all().map_err(|e| io_err("fsync", &undo.path, e))?;
        }
        // 2. Copy the changed blocks, hashing exactly what is written.
        let src = File::open(&src_path).map_err(|e| io_err("open", &src_path, e))?;
        let mut transferred = 0;
        for (k, &i) in changed.iter().enumerate() {
            if k % 256 == 0 {
                check(cancel)?;
            }
            let len = read_block(&src, i, block_size, size, &mut buf).map_err(|e| io_err("read", &src_path, e))?;
            dst.write_all_at(&buf[..len], i * block_size).map_err(|e| io_err("write", &dst_path, e))?;
            new_hashes[i as usize] = *blake3::hash(&buf[..len]).as_bytes();
            transferred += len as u64;
        }
        dst.set_len(size).map_err(|e| io_err("resize", &dst_path, e))?;
        dst.sync_all().map_err(|e| io_err("fsync", &dst_path, e))?;
        changed.extend(shrunk);
        total += Transfer { bytes_total: size, bytes_transferred: transferred, blocks_changed: changed.len() as u64 };
        manifests.insert(name, (size, new_hashes));
    }
    Ok((total, manifests))
}

/// Copy every image from `source` to `target` whole: no hashing, as fast as the filesystem
/// copies (copy_file_range, reflinks where supported).
pub fn full_copy(source: &Path, target: &Path, cancel: &CancellationToken) -> Result<Transfer, BlockError> {
    fs::create_private_dir(target).map_err(|e| io_err("create", target, e))?;
    let mut total = Transfer::default();
    for (name, src) in disks_in(source).map_err(|e| io_err("list", source, e))? {
        check(cancel)?;
        let dst = target.join(&name);
        let bytes = fs::copy_file(&src, &dst).map_err(|e| io_err("copy", &src, e))?;
        fs::open_read(&dst).and_then(|f| f.sync_all()).map_err(|e| io_err("fsync", &dst, e))?;
        total += Transfer { bytes_total: bytes, bytes_transferred: bytes, blocks_changed: 0 };
    }
    Ok(total)
}

/// Turn the images in `dir` (a copy of the newest point) back into an older point by applying
/// the undo logs of the points in between, newest first.
pub fn apply_undo(
    dir: &Path,
    undo_dirs_newest_first: &[PathBuf],
    sizes: &BTreeMap<String, u64>,
    block_size: u64,
) -> Result<(), BlockError> {
    for undo_dir in undo_dirs_newest_first {
        for (name, _) in disks_in(dir).map_err(|e| io_err("list", dir, e))? {
            let path = dir.join(&name);
            let records = read_undo(&undo_dir.join(format!("{name}.undo")))?;
            if records.is_empty() {
                continue;
            }
            let file = fs::open_write(&path, fs::PRIVATE_FILE).map_err(|e| io_err("open", &path, e))?;
            for (index, data) in records {
                file.write_all_at(&data, index * block_size).map_err(|e| io_err("write", &path, e))?;
            }
        }
    }
    for (name, size) in sizes {
        let path = dir.join(name);
        let file = fs::open_write(&path, fs::PRIVATE_FILE).map_err(|e| io_err("open", &path, e))?;
        file.set_len(*size).map_err(|e| io_err("resize", &path, e))?;
        file.sync_all().map_err(|e| io_err("fsync", &path, e))?;
    }
    Ok(())
}

/// Check every disk in `dir` against the expected block hashes; returns the bytes verified.
pub fn verify(
    dir: &Path,
    expected: &BTreeMap<String, Vec<Hash>>,
    block_size: u64,
    cancel: &CancellationToken,
) -> Result<u64, BlockError> {
    let mut bytes = 0;
    for (name, hashes) in expected {
        let path = dir.join(name);
        let (size, actual) = hash_file(&path, block_size, cancel)?;
        if &actual != hashes {
            let first = actual.iter().zip(hashes).position(|(a, b)| a != b).unwrap_or(actual.len().min(hashes.len()));
            return Err(BlockError::Mismatch(format!(
                "{name}: block {first} (offset {}) differs from the recovery point",
                first as u64 * block_size
            )));
        }
        bytes += size;
    }
    Ok(bytes)
}

/// The combined hash of a set of images (for reports and tests).
pub fn digest(dir: &Path) -> Result<String, BlockError> {
    let mut hasher = blake3::Hasher::new();
    for (name, path) in disks_in(dir).map_err(|e| io_err("list", dir, e))? {
        hasher.update(name.as_bytes());
        let mut file = File::open(&path).map_err(|e| io_err("open", &path, e))?;
        hasher.update_reader(&mut file).map_err(|e| io_err("read", &path, e))?;
    }
    Ok(hasher.finalize().to_hex().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(path: &Path, data: &[u8]) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, data).unwrap();
    }

    #[test]
    fn delta_moves_only_changed_blocks_and_undo_restores_the_older_point() {
        let dir = tempfile::tempdir().unwrap();
        let (src, dst, p1) = (dir.path().join("src"), dir.path().join("dst"), dir.path().join("p1"));
        let cancel = CancellationToken::new();
        let bs = 4096;
        let v1: Vec<u8> = (0..bs * 10).map(|i| (i % 251) as u8).collect();
        write(&src.join("a.img"), &v1);
        let (t, m) = delta_sync(&src, &dst, None, bs as u64, &cancel).unwrap();
        assert_eq!(t.bytes_transferred, v1.len() as u64);
        std::fs::create_dir_all(&p1).unwrap();
        write_hashes(&p1.join("a.img.hashes"), &m["a.img"].1).unwrap();

        let mut v2 = v1.clone();
        v2[bs * 3] ^= 0xff;
        v2[bs * 7 + 5] ^= 0xff;
        write(&src.join("a.img"), &v2);
        let baseline = Baseline { hashes_dir: &p1, undo_dir: Some(&p1) };
        let (t, m2) = delta_sync(&src, &dst, Some(&baseline), bs as u64, &cancel).unwrap();
        assert_eq!((t.bytes_transferred, t.blocks_changed), (2 * bs as u64, 2));
        assert_eq!(std::fs::read(dst.join("a.img")).unwrap(), v2);
        assert_eq!(m2["a.img"].1.len(), 10);

        let restored = dir.path().join("restored");
        std::fs::create_dir_all(&restored).unwrap();
        std::fs::copy(dst.join("a.img"), restored.join("a.img")).unwrap();
        let sizes = BTreeMap::from([("a.img".to_string(), v1.len() as u64)]);
        apply_undo(&restored, std::slice::from_ref(&p1), &sizes, bs as u64).unwrap();
        assert_eq!(std::fs::read(restored.join("a.img")).unwrap(), v1);
        let expected = BTreeMap::from([("a.img".to_string(), read_hashes(&p1.join("a.img.hashes")).unwrap().unwrap())]);
        assert_eq!(verify(&restored, &expected, bs as u64, &cancel).unwrap(), v1.len() as u64);
    }

    #[test]
    fn verification_names_the_first_bad_block() {
        let dir = tempfile::tempdir().unwrap();
        let cancel = CancellationToken::new();
        write(&dir.path().join("d/a.img"), &[7u8; 8192]);
        let (_, h) = hash_file(&dir.path().join("d/a.img"), 4096, &cancel).unwrap();
        write(&dir.path().join("d/a.img"), &[[7u8; 4096], [8u8; 4096]].concat());
        let err =
            verify(&dir.path().join("d"), &BTreeMap::from([("a.img".to_string(), h)]), 4096, &cancel).unwrap_err();
        assert!(err.to_string().contains("block 1 (offset 4096)"), "{err}");
    }

    #[test]
    fn a_grown_and_shrunk_disk_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let (src, dst, p1) = (dir.path().join("src"), dir.path().join("dst"), dir.path().join("p1"));
        let cancel = CancellationToken::new();
        write(&src.join("a.img"), &[1u8; 10_000]);
        let (_, m) = delta_sync(&src, &dst, None, 4096, &cancel).unwrap();
        std::fs::create_dir_all(&p1).unwrap();
        write_hashes(&p1.join("a.img.hashes"), &m["a.img"].1).unwrap();
        write(&src.join("a.img"), &[2u8; 3000]);
        let baseline = Baseline { hashes_dir: &p1, undo_dir: Some(&p1) };
        delta_sync(&src, &dst, Some(&baseline), 4096, &cancel).unwrap();
        assert_eq!(std::fs::read(dst.join("a.img")).unwrap(), vec![2u8; 3000]);
        apply_undo(&dst, std::slice::from_ref(&p1), &BTreeMap::from([("a.img".to_string(), 10_000)]), 4096).unwrap();
        assert_eq!(std::fs::read(dst.join("a.img")).unwrap(), vec![1u8; 10_000]);
    }
}
