//! A package revision as Quilt writes it: the JSON Lines manifest, the `sha2-256-chunked`
//! object hashes and the top hash, computed exactly as `quilt3` computes them so that quilt3
//! reads and verifies what this stand-in writes.

use base64::Engine as _;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use crate::pyjson;

/// Quilt's default object hash type.
pub const HASH_TYPE: &str = "sha2-256-chunked";

/// The part size of a `sha2-256-chunked` hash for an object of `size` bytes: 8 MiB, doubled
/// until the object has at most 10,000 parts (S3's multipart limit).
pub fn chunk_size(size: u64) -> u64 {
    let mut chunk = 8 * 1024 * 1024;
    while size.div_ceil(chunk) > 10_000 {
        chunk *= 2;
    }
    chunk
}

/// Computes a `sha2-256-chunked` hash from bytes fed in any pieces: SHA-256 of each part's
/// SHA-256, base64. An empty object has no parts, so its hash is SHA-256 of nothing.
pub struct ChunkedHasher {
    chunk: u64,
    filled: u64,
    part: Sha256,
    parts: Sha256,
}

impl ChunkedHasher {
    /// A hasher for an object of `size` bytes.
    pub fn new(size: u64) -> Self {
        Self {
            chunk: chunk_size(size),
            filled: 0,
            part: Sha256::new(),
            parts: Sha256::new(),
        }
    }

    /// Feeds the next bytes of the object.
    pub fn update(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let room = usize::try_from(self.chunk - self.filled).unwrap_or(usize::MAX);
            let (now, later) = bytes.split_at(room.min(bytes.len()));
            self.part.update(now);
            self.filled += now.len() as u64;
            bytes = later;
            if self.filled == self.chunk {
                self.close_part();
            }
        }
    }

    fn close_part(&mut self) {
        let part = std::mem::replace(&mut self.part, Sha256::new()).finalize();
        self.parts.update(part);
        self.filled = 0;
    }

    /// The hash value (base64).
    pub fn finish(mut self) -> String {
        if self.filled > 0 {
            self.close_part();
        }
        base64::engine::general_purpose::STANDARD.encode(self.parts.finalize())
    }
}

/// One file of a revision.
#[derive(Clone, Debug, PartialEq)]
pub struct ManifestEntry {
    /// Its path in the package.
    pub logical_key: String,
    /// Where its bytes are: `s3://bucket/key`, the key percent-encoded as quilt3 does.
    pub physical_key: String,
    /// Size in bytes.
    pub size: u64,
    /// Its `sha2-256-chunked` hash (base64).
    pub hash: String,
}

/// A revision: the header's fields and the files.
#[derive(Clone, Debug, PartialEq)]
pub struct Manifest {
    /// The commit message.
    pub message: String,
    /// The package metadata (`user_meta`), when there is any.
    pub user_meta: Option<Value>,
    /// The files, in any order.
    pub entries: Vec<ManifestEntry>,
}

impl Manifest {
    /// The header as quilt3 keeps it (`Package._meta`).
    fn header(&self) -> Value {
        let mut header = json!({"version": "v0", "message": self.message});
        if let Some(meta) = &self.user_meta {
            header["user_meta"] = meta.clone();
        }
        header
    }

    /// The entries in the order quilt3 walks a package: directory by directory, names sorted
    /// at each level (so `a/b` comes before `a.txt`, unlike a plain string sort).
    fn walk(&self) -> Vec<&ManifestEntry> {
        let mut entries: Vec<&ManifestEntry> = self.entries.iter().collect();
        entries.sort_by(|a, b| a.logical_key.split('/').cmp(b.logical_key.split('/')));
        entries
    }

    fn hash_part(entry: &ManifestEntry) -> Value {
        json!({
            "hash": {"type": HASH_TYPE, "value": entry.hash},
            "logical_key": entry.logical_key,
            "meta": {},
            "size": entry.size,
        })
    }

    /// The top hash: SHA-256 over the header, then each entry's hash, key, metadata and size,
    /// each encoded as Python's compact key-sorted JSON (`Package._calculate_top_hash`).
    pub fn top_hash(&self) -> String {
        let mut hasher = Sha256::new();
        hasher.update(pyjson::encode(&self.header()));
        for entry in self.walk() {
            hasher.update(pyjson::encode(&Self::hash_part(entry)));
        }
        hasher
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// The manifest file: the header line, then one line per entry.
    pub fn to_jsonl(&self) -> String {
        let mut lines = vec![self.header().to_string()];
        for entry in self.walk() {
            let mut line = Self::hash_part(entry);
            line["physical_keys"] = json!([entry.physical_key]);
            lines.push(line.to_string());
        }
        lines.join("\n") + "\n"
    }
}

/// `s3://{bucket}/{key}` with the key percent-encoded as Python's `urllib.parse.quote` does
/// (`/` and `A–Z a–z 0–9 _ . - ~` kept).
pub fn physical_key(bucket: &str, key: &str) -> String {
    let mut url = format!("s3://{bucket}/");
    for byte in key.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'.' | b'-' | b'~' | b'/' => {
                url.push(byte as char);
            }
            _ => url.push_str(&format!("%{byte:02X}")),
        }
    }
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash_of(bytes: &[u8]) -> String {
        let mut hasher = ChunkedHasher::new(bytes.len() as u64);
        hasher.update(bytes);
        hasher.finish()
    }

    #[test]
    fn chunked_hash_is_the_hash_of_part_hashes() {
        // quilt3: base64(sha256(sha256(b"hello"))).
        let part = Sha256::digest(b"hello");
        let expected = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(part));
        assert_eq!(hash_of(b"hello"), expected);
        // No parts at all: sha256 of nothing.
        assert_eq!(
            hash_of(b""),
            base64::engine::general_purpose::STANDARD.encode(Sha256::digest(b""))
        );
    }

    #[test]
    fn parts_split_at_the_chunk_size_however_the_bytes_arrive() {
        let size = 8 * 1024 * 1024 + 3;
        let bytes: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
        let (first, second) = bytes.split_at(8 * 1024 * 1024);
        let mut parts = Sha256::new();
        parts.update(Sha256::digest(first));
        parts.update(Sha256::digest(second));
        let expected = base64::engine::general_purpose::STANDARD.encode(parts.finalize());
        let mut hasher = ChunkedHasher::new(size as u64);
        for piece in bytes.chunks(777_777) {
            hasher.update(piece);
        }
        assert_eq!(hasher.finish(), expected);
    }

    #[test]
    fn chunks_grow_past_ten_thousand_parts() {
        assert_eq!(chunk_size(0), 8 << 20);
        assert_eq!(chunk_size(10_000 * (8 << 20)), 8 << 20);
        assert_eq!(chunk_size(10_000 * (8 << 20) + 1), 16 << 20);
    }

    #[test]
    fn walk_order_is_per_directory() {
        let entry = |key: &str| ManifestEntry {
            logical_key: key.to_owned(),
            physical_key: physical_key("b", key),
            size: 0,
            hash: String::new(),
        };
        let manifest = Manifest {
            message: "m".to_owned(),
            user_meta: None,
            entries: vec![entry("a.txt"), entry("a/b"), entry("B")],
        };
        let order: Vec<&str> = manifest
            .walk()
            .iter()
            .map(|e| e.logical_key.as_str())
            .collect();
        assert_eq!(order, ["B", "a/b", "a.txt"]);
    }

    #[test]
    fn physical_keys_are_quoted_like_python() {
        assert_eq!(
            physical_key("bkt", "benchling/EXP 1/ä+b.csv"),
            "s3://bkt/benchling/EXP%201/%C3%A4%2Bb.csv"
        );
    }
}
