//! The lab's record format, written by every lab machine (the local lab's program and the
//! QEMU lab's guest alike), so "nothing was lost" is proved the same way for both.
//!
//! A data disk holds a 64-byte header `DRPLANLAB <last record>` at offset 0, then record `n`
//! at offset `64 * n`: `rec <n> <machine> <site> <time> <crc>`, padded with spaces and
//! newline-terminated, where `<crc>` is the CRC-32 (as zlib and busybox `crc32` compute it)
//! of the text before it, in 8 lowercase hex digits.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

pub const RECORD: u64 = 64;

/// The 64 bytes of record `n`.
pub fn record(n: u64, machine: &str, site: &str, time: &str) -> Vec<u8> {
    let text = format!("rec {n} {machine} {site} {time}");
    pad(&format!("{text} {:08x}", crc32(text.as_bytes())))
}

/// The 64 bytes of the header naming the last record written.
pub fn header(last: u64) -> Vec<u8> {
    pad(&format!("DRPLANLAB {last}"))
}

fn pad(text: &str) -> Vec<u8> {
    let mut bytes = text.as_bytes().to_vec();
    bytes.resize(RECORD as usize - 1, b' ');
    bytes.push(b'\n');
    bytes
}

/// CRC-32 (IEEE, reflected), bit by bit: records are short and few.
pub fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

/// The last record the header names (0 on a fresh disk).
pub fn read_header(disk: &File) -> std::io::Result<u64> {
    let mut buf = [0u8; RECORD as usize];
    disk.read_exact_at(&mut buf, 0)?;
    let text = String::from_utf8_lossy(&buf);
    Ok(text
        .strip_prefix("DRPLANLAB ")
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0))
}

/// One record as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub n: u64,
    pub site: String,
    /// The raw 64 bytes (to compare two disks record by record).
    pub bytes: Vec<u8>,
}

/// Record `n` of `disk`, when it is intact: right number, right machine, checksum matches.
pub fn read_record(disk: &File, n: u64, machine: &str) -> std::io::Result<Result<Record, String>> {
    let mut buf = vec![0u8; RECORD as usize];
    disk.read_exact_at(&mut buf, n * RECORD)?;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let fields: Vec<&str> = text.split_whitespace().collect();
    Ok(match fields.as_slice() {
        ["rec", k, m, site, time, crc] if *k == n.to_string() && *m == machine => {
            let body = format!("rec {k} {m} {site} {time}");
            if format!("{:08x}", crc32(body.as_bytes())) == *crc {
                Ok(Record { n, site: site.to_string(), bytes: buf })
            } else {
                Err(format!("record {n} fails its checksum: {:?}", text.trim_end()))
            }
        }
        _ => Err(format!("record {n} is missing or damaged: {:?}", text.trim_end())),
    })
}

/// What the records on a data disk say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordCheck {
    pub last: u64,
    /// Consecutive runs of records written at one site: (site, first, last).
    pub runs: Vec<(String, u64, u64)>,
    /// Records that are missing, damaged or fail their checksum (the first few).
    pub problems: Vec<String>,
}

/// Read every record up to the header's last one and check that none is missing.
pub fn check_records(disk_path: &Path, machine: &str) -> std::io::Result<RecordCheck> {
    let disk = File::open(disk_path)?;
    let last = read_header(&disk)?;
    let mut runs: Vec<(String, u64, u64)> = Vec::new();
    let mut problems = Vec::new();
    for n in 1..=last {
        match read_record(&disk, n, machine)? {
            Ok(record) => match runs.last_mut() {
                Some((s, _, end)) if *s == record.site => *end = n,
                _ => runs.push((record.site, n, n)),
            },
            Err(problem) if problems.len() < 5 => problems.push(problem),
            Err(_) => {}
        }
    }
    Ok(RecordCheck { last, runs, problems })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_checksum_is_the_one_busybox_crc32_prints() {
        // `printf 'rec 1 db1 dc1 1700000000' | busybox crc32` → cf3fcbc8 (zlib's CRC-32 too).
        assert_eq!(crc32(b"rec 1 db1 dc1 1700000000"), 0xcf3f_cbc8);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn records_read_back_and_a_flipped_byte_is_caught() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data.img");
        let file = std::fs::OpenOptions::new().create(true).truncate(true).read(true).write(true).open(&path).unwrap();
        file.set_len(RECORD * 8).unwrap();
        for n in 1..=3 {
            let site = if n < 3 { "dc1" } else { "dc2" };
            file.write_all_at(&record(n, "db1", site, "1700000000"), n * RECORD).unwrap();
        }
        file.write_all_at(&header(3), 0).unwrap();
        let check = check_records(&path, "db1").unwrap();
        assert_eq!(check.runs, vec![("dc1".into(), 1, 2), ("dc2".into(), 3, 3)]);
        assert!(check.problems.is_empty());
        file.write_all_at(b"2", 2 * RECORD + 14).unwrap(); // the time of record 2
        let check = check_records(&path, "db1").unwrap();
        assert_eq!(check.problems.len(), 1, "{:?}", check.problems);
        assert!(check.problems[0].contains("checksum"));
    }
}
