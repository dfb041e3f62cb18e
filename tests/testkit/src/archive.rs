//! Hostile ZIP archives for tests: a symbolic link, and the byte patches that make the ones the
//! writer refuses to produce (unsafe names, duplicates, device modes). Well-formed archives come
//! from [`bw_standin::archive::build`].

use std::io::{Cursor, Write as _};

use bw_standin::archive::stored;
use zip::ZipWriter;

/// A ZIP holding a regular file and a symbolic link `name` pointing at `target`.
///
/// # Panics
/// When the writer refuses a member.
pub fn with_symlink(name: &str, target: &str) -> Vec<u8> {
    let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
    zip.start_file("ok.txt", stored()).expect("start");
    zip.write_all(b"fine").expect("write");
    zip.add_symlink(name, target, stored().unix_permissions(0o120_777))
        .expect("symlink");
    zip.finish().expect("finish").into_inner()
}

/// Offsets of each entry's central header and local header, from the end of central directory
/// record (the writer adds no archive comment, so it is the last 22 bytes).
///
/// # Panics
/// When `zip` was not made by [`bw_standin::archive::build`].
pub fn headers(zip: &[u8]) -> Vec<(usize, usize)> {
    let eocd = zip.len() - 22;
    assert_eq!(&zip[eocd..eocd + 4], b"PK\x05\x06");
    let count = usize::from(u16_at(zip, eocd + 10));
    let mut cd = u32_at(zip, eocd + 16) as usize;
    let mut found = Vec::new();
    for _ in 0..count {
        assert_eq!(&zip[cd..cd + 4], b"PK\x01\x02");
        found.push((cd, u32_at(zip, cd + 42) as usize));
        cd += 46
            + usize::from(u16_at(zip, cd + 28))
            + usize::from(u16_at(zip, cd + 30))
            + usize::from(u16_at(zip, cd + 32));
    }
    found
}

/// The little-endian `u16` at `at`.
pub fn u16_at(bytes: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([bytes[at], bytes[at + 1]])
}

/// The little-endian `u32` at `at`.
pub fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

/// Writes a little-endian `u32` at `at`.
pub fn put_u32(bytes: &mut [u8], at: usize, value: u32) {
    bytes[at..at + 4].copy_from_slice(&value.to_le_bytes());
}

/// Replaces entry `index`'s name, in both headers, with one of the same length.
///
/// # Panics
/// When the lengths differ.
pub fn rename(zip: &mut [u8], index: usize, name: &[u8]) {
    let (cd, lh) = headers(zip)[index];
    assert_eq!(usize::from(u16_at(zip, cd + 28)), name.len());
    zip[cd + 46..cd + 46 + name.len()].copy_from_slice(name);
    zip[lh + 30..lh + 30 + name.len()].copy_from_slice(name);
}
