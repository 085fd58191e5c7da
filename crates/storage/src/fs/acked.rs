//! The record file of an upload session (`uploads/{id}/acked`): its acknowledged size, and the
//! commit record of a commit under way.
//!
//! Owns the file's byte format and nothing else: it must never decide when a size is
//! acknowledged or a commit begins (the session does), and never rename or create anything but
//! the record file.

use std::fs::OpenOptions;
use std::io::{self, Seek, SeekFrom, Write};
use std::path::Path;

use wharf_oci::Digest;

/// Name of the acknowledged-size record in a session directory.
pub(super) const ACKED_RECORD: &str = "acked";
/// Bytes of one slot of the acknowledged-size record; the record holds two.
const ACKED_SLOT_BYTES: usize = 64;
/// Where the commit record starts: after the two acknowledged-size slots.
const COMMIT_OFFSET: u64 = 2 * ACKED_SLOT_BYTES as u64;
/// Bytes of the commit record (a sha512 digest and a size fit with room to spare).
const COMMIT_SLOT_BYTES: usize = 256;

// ---- the acknowledged-size record ----
//
// Two slots of `ACKED_SLOT_BYTES`, each `{seq:020} {size:020} {check:016x}` padded with spaces
// and ended by a newline, where `check` is FNV-1a of the first two fields. Record `seq` goes to
// slot `seq % 2`, overwriting in place (no rename, so no directory change); the valid slot with
// the highest `seq` counts. A torn write spoils only the slot being written, whose append was
// not acknowledged yet.

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3))
}

fn acked_slot(seq: u64, size: u64) -> [u8; ACKED_SLOT_BYTES] {
    let fields = format!("{seq:020} {size:020}");
    let line = format!("{fields} {:016x}", fnv1a(fields.as_bytes()));
    let mut slot = [b' '; ACKED_SLOT_BYTES];
    slot[..line.len()].copy_from_slice(line.as_bytes());
    slot[ACKED_SLOT_BYTES - 1] = b'\n';
    slot
}

fn parse_acked_slot(slot: &[u8]) -> Option<(u64, u64)> {
    let mut words = std::str::from_utf8(slot).ok()?.split_ascii_whitespace();
    let (seq, size, check) = (words.next()?, words.next()?, words.next()?);
    if words.next().is_some() || check != format!("{:016x}", fnv1a(format!("{seq} {size}").as_bytes())) {
        return None;
    }
    Some((seq.parse().ok()?, size.parse().ok()?))
}

/// A new session's record: size 0 in slot 0, slot 1 blank.
pub(super) fn create_acked(dir: &Path) -> io::Result<()> {
    let mut record = acked_slot(0, 0).to_vec();
    record.extend_from_slice(&[b' '; ACKED_SLOT_BYTES - 1]);
    record.push(b'\n');
    std::fs::write(dir.join(ACKED_RECORD), record)
}

/// The newest valid slot of a session's record: (sequence number, acknowledged size).
pub(super) fn newest_acked(record: &[u8]) -> Option<(u64, u64)> {
    let slots = &record[..record.len().min(COMMIT_OFFSET as usize)];
    slots.chunks(ACKED_SLOT_BYTES).filter_map(parse_acked_slot).max_by_key(|&(seq, _)| seq)
}

/// Writes `size` as record `seq` into its slot, flushing it when `durable`.
pub(super) fn write_acked(dir: &Path, seq: u64, size: u64, durable: bool) -> io::Result<()> {
    let mut file = OpenOptions::new().write(true).create(true).truncate(false).open(dir.join(ACKED_RECORD))?;
    file.seek(SeekFrom::Start((seq % 2) * ACKED_SLOT_BYTES as u64))?;
    file.write_all(&acked_slot(seq, size))?;
    if durable {
        file.sync_data()?;
    }
    Ok(())
}

// ---- the commit record ----
//
// One slot of `COMMIT_SLOT_BYTES` after the two acknowledged-size slots:
// `commit {size:020} {digest} {check:016x}` padded with spaces and ended by a newline, `check`
// being FNV-1a of the first three fields. Written and flushed before a commit renames the
// session's data into the content store; removed (the file cut back to the two slots) when a
// commit is rolled back or a crash interrupted it before the rename. Whether the data file still
// exists tells which side of the rename a crash fell on.

fn commit_slot(digest: &Digest, size: u64) -> Vec<u8> {
    let fields = format!("commit {size:020} {digest}");
    let line = format!("{fields} {:016x}", fnv1a(fields.as_bytes()));
    let mut slot = vec![b' '; COMMIT_SLOT_BYTES];
    slot[..line.len()].copy_from_slice(line.as_bytes());
    slot[COMMIT_SLOT_BYTES - 1] = b'\n';
    slot
}

/// The commit record in a session's record file, if a valid one is there: (digest, size).
pub(super) fn read_commit(record: &[u8]) -> Option<(Digest, u64)> {
    let slot = record.get(COMMIT_OFFSET as usize..COMMIT_OFFSET as usize + COMMIT_SLOT_BYTES)?;
    let mut words = std::str::from_utf8(slot).ok()?.split_ascii_whitespace();
    let (tag, size, digest, check) = (words.next()?, words.next()?, words.next()?, words.next()?);
    let fields = format!("{tag} {size} {digest}");
    if tag != "commit" || words.next().is_some() || check != format!("{:016x}", fnv1a(fields.as_bytes())) {
        return None;
    }
    Some((Digest::parse(digest).ok()?, size.parse().ok()?))
}

/// Writes the commit record of `digest` (`size` bytes), flushing it when `durable`.
pub(super) fn write_commit(dir: &Path, digest: &Digest, size: u64, durable: bool) -> io::Result<()> {
    let mut file = OpenOptions::new().write(true).create(true).truncate(false).open(dir.join(ACKED_RECORD))?;
    file.seek(SeekFrom::Start(COMMIT_OFFSET))?;
    file.write_all(&commit_slot(digest, size))?;
    if durable { file.sync_data() } else { Ok(()) }
}

/// Removes the commit record, if any (a session without a record file has none).
pub(super) fn clear_commit(dir: &Path) -> io::Result<()> {
    let file = match OpenOptions::new().write(true).open(dir.join(ACKED_RECORD)) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    if file.metadata()?.len() > COMMIT_OFFSET {
        file.set_len(COMMIT_OFFSET)?;
        file.sync_data()?;
    }
    Ok(())
}

/// The acknowledged size as sessions created before the record existed kept it (a `size` file
/// replaced by rename).
pub(super) fn read_legacy_acked(dir: &Path) -> Option<u64> {
    std::fs::read_to_string(dir.join("size")).ok()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acked_record_round_trips_and_rejects_damage() {
        let slot = acked_slot(7, 123_456);
        assert_eq!(slot.len(), ACKED_SLOT_BYTES);
        assert_eq!(parse_acked_slot(&slot), Some((7, 123_456)));
        let mut torn = slot;
        torn[30] = b'9';
        assert_eq!(parse_acked_slot(&torn), None);
        assert_eq!(parse_acked_slot(&[b' '; ACKED_SLOT_BYTES]), None);
        assert_eq!(parse_acked_slot(&[0; ACKED_SLOT_BYTES]), None);
    }

    #[test]
    fn newest_valid_slot_wins() {
        let dir = tempfile::tempdir().unwrap();
        let read = || newest_acked(&std::fs::read(dir.path().join(ACKED_RECORD)).unwrap());
        create_acked(dir.path()).unwrap();
        assert_eq!(read(), Some((0, 0)));
        write_acked(dir.path(), 1, 10, false).unwrap();
        write_acked(dir.path(), 2, 20, true).unwrap();
        assert_eq!(read(), Some((2, 20)));
        // A torn write of record 3 (slot 1) leaves record 2 in force.
        let path = dir.path().join(ACKED_RECORD);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[ACKED_SLOT_BYTES..ACKED_SLOT_BYTES + 10].copy_from_slice(b"0000000000");
        bytes[ACKED_SLOT_BYTES + 25] = b'x';
        std::fs::write(&path, bytes).unwrap();
        assert_eq!(read(), Some((2, 20)));
    }

    #[test]
    fn commit_record_round_trips_beside_the_size_slots_and_is_cleared() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(ACKED_RECORD);
        let read = || std::fs::read(&path).unwrap();
        create_acked(dir.path()).unwrap();
        write_acked(dir.path(), 1, 4096, true).unwrap();
        assert_eq!(read_commit(&read()), None);
        for digest in [Digest::sha256_of(b"x"), Digest::of(wharf_oci::DigestAlgorithm::Sha512, b"x")] {
            write_commit(dir.path(), &digest, 5000, true).unwrap();
            assert_eq!(read_commit(&read()), Some((digest, 5000)));
            // The size slots are untouched and not confused with it.
            assert_eq!(newest_acked(&read()), Some((1, 4096)));
        }
        let mut torn = read();
        torn[COMMIT_OFFSET as usize + 10] = b'7';
        assert_eq!(read_commit(&torn), None, "a damaged commit record is no commit record");
        clear_commit(dir.path()).unwrap();
        assert_eq!(read_commit(&read()), None);
        assert_eq!(read().len(), COMMIT_OFFSET as usize);
        assert_eq!(newest_acked(&read()), Some((1, 4096)));
    }
}
