//! Quilt's package registry as it lies in a bucket: its pointers and manifests.
//!
//! Layout: `.quilt/named_packages/{name}/latest` holds the top hash as text (beside it, one
//! pointer per revision named by its Unix time); `.quilt/packages/{top hash}` is the manifest,
//! JSON Lines: a header (`user_meta`, `message`, …) then one entry per file (`logical_key`,
//! `physical_keys`, `size`, …).

use bw_contracts::EntryId;
use bw_store::{Key, ObjectStore, StoreError};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, BufReader};

/// Largest manifest read (about 100,000 entries).
const MAX_MANIFEST_BYTES: u64 = 64 * 1024 * 1024;

/// Largest `entry.json` read through the manifest.
const MAX_METADATA_BYTES: u64 = 16 * 1024 * 1024;

/// A file of a package revision, as the canvas lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PackageEntry {
    /// Its path in the package.
    pub logical_key: String,
    /// Size in bytes.
    pub size: u64,
}

/// A package revision's manifest.
#[derive(Clone, Debug, PartialEq)]
pub struct Manifest {
    /// The top hash.
    pub top_hash: String,
    /// The header's `user_meta` (`{}` when absent).
    pub user_meta: Value,
    /// The header's commit message.
    pub message: Option<String>,
    /// The files, sorted by logical key (`.quilt/` entries and entries without a physical key
    /// left out).
    pub entries: Vec<PackageEntry>,
    /// Where the package's `entry.json` is stored (`s3://bucket/key?versionId=…`), if it has
    /// one. The only physical key kept: manifests are cached, and keys are most of their size.
    pub entry_json: Option<String>,
}

/// Why a package could not be read.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The package has no `latest` pointer.
    #[error("package {0} does not exist")]
    NoSuchPackage(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The manifest is not JSON Lines of the expected shape.
    #[error("manifest {key}: {message}")]
    Malformed {
        /// Its key.
        key: String,
        /// What is wrong.
        message: String,
    },
}

/// The key of the manifest of revision `top_hash`.
pub fn manifest_key(top_hash: &str) -> String {
    format!(".quilt/packages/{top_hash}")
}

/// The key of a pointer of `package`: `latest`, or a revision's Unix time.
pub fn pointer_key(package: &str, pointer: &str) -> String {
    format!(".quilt/named_packages/{package}/{pointer}")
}

/// The top hash `latest` points at, or `None` when the package does not exist.
pub async fn latest_top_hash(
    store: &dyn ObjectStore,
    package: &str,
) -> Result<Option<String>, RegistryError> {
    let key = Key::new(pointer_key(package, "latest"))?;
    match store.get_bytes(&key, 1024).await {
        Ok(bytes) => Ok(Some(String::from_utf8_lossy(&bytes).trim().to_owned())),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Reads the latest revision of `package`.
///
/// # Errors
/// [`RegistryError::NoSuchPackage`] when it does not exist (the canvas shows "not created").
pub async fn latest_manifest(
    store: &dyn ObjectStore,
    package: &str,
) -> Result<Manifest, RegistryError> {
    let top_hash = latest_top_hash(store, package)
        .await?
        .ok_or_else(|| RegistryError::NoSuchPackage(package.to_owned()))?;
    manifest(store, &top_hash).await
}

/// Reads the manifest of the revision `top_hash`.
///
/// # Errors
/// When it cannot be read or is not a manifest.
pub async fn manifest(store: &dyn ObjectStore, top_hash: &str) -> Result<Manifest, RegistryError> {
    let key = Key::new(manifest_key(top_hash))?;
    let bytes = store.get_bytes(&key, MAX_MANIFEST_BYTES).await?;
    parse_manifest(top_hash, &bytes).map_err(|message| RegistryError::Malformed {
        key: key.to_string(),
        message,
    })
}

/// A revision as its manifest's header describes it.
#[derive(Clone, Debug, PartialEq)]
pub struct Revision {
    /// The top hash.
    pub top_hash: String,
    /// The header's `user_meta` (`{}` when absent).
    pub user_meta: Value,
}

impl Revision {
    /// Whether this revision holds version `modified_at` of `entry`: its metadata (which
    /// Quilt's packager copies from the `entry.json` we hand it) names both.
    pub fn holds(&self, entry: &EntryId, modified_at: &DateTime<Utc>) -> bool {
        let meta = &self.user_meta;
        meta["entry_id"].as_str() == Some(entry.as_str())
            && meta["modified_at"]
                .as_str()
                .and_then(|text| DateTime::parse_from_rfc3339(text).ok())
                .is_some_and(|at| at == *modified_at)
    }
}

/// The latest revision of `package`, read from its manifest's first line only (see
/// [`revision`]).
///
/// # Errors
/// [`RegistryError::NoSuchPackage`] when it does not exist; as [`revision`] otherwise.
pub async fn latest_revision(
    store: &dyn ObjectStore,
    package: &str,
) -> Result<Revision, RegistryError> {
    let top_hash = latest_top_hash(store, package)
        .await?
        .ok_or_else(|| RegistryError::NoSuchPackage(package.to_owned()))?;
    revision(store, top_hash).await
}

/// Every revision of `package` its pointers name, oldest first: each pointer's Unix time and
/// top hash (`latest` left out). None when the package does not exist.
///
/// # Errors
/// When the store cannot be listed or a pointer read.
pub async fn revisions(
    store: &dyn ObjectStore,
    package: &str,
) -> Result<Vec<(i64, String)>, RegistryError> {
    let folder = pointer_key(package, "");
    let listed = store.list(&bw_store::Prefix::new(folder.clone())?).await?;
    let mut found = Vec::new();
    for object in listed {
        let Some(time) = object
            .key
            .as_str()
            .strip_prefix(&folder)
            .and_then(|pointer| pointer.parse::<i64>().ok())
        else {
            continue;
        };
        let bytes = store.get_bytes(&object.key, 1024).await?;
        found.push((time, String::from_utf8_lossy(&bytes).trim().to_owned()));
    }
    found.sort();
    Ok(found)
}

/// The revision `top_hash`, read from its manifest's first line only: a manifest lists every
/// file and may run to tens of MiB, while the header is all that names the version.
///
/// # Errors
/// `Malformed` when the header is not a JSON line of at most 16 MiB; a store error when the
/// manifest cannot be read.
pub async fn revision(
    store: &dyn ObjectStore,
    top_hash: String,
) -> Result<Revision, RegistryError> {
    let key = Key::new(manifest_key(&top_hash))?;
    let malformed = |message: String| RegistryError::Malformed {
        key: key.to_string(),
        message,
    };
    // One byte past the limit tells an oversized header without reading on.
    let mut lines = BufReader::new(store.get(&key).await?.take(MAX_METADATA_BYTES + 1));
    let mut line = Vec::new();
    // Like the full parse, blank lines before the header are skipped.
    while line.iter().all(u8::is_ascii_whitespace) {
        line.clear();
        let read =
            lines
                .read_until(b'\n', &mut line)
                .await
                .map_err(|e| StoreError::Unavailable {
                    location: format!("{}{key}", store.location()),
                    operation: "read",
                    message: e.to_string(),
                })?;
        if read == 0 {
            return Err(malformed("empty manifest".to_owned()));
        }
    }
    if line.len() as u64 > MAX_METADATA_BYTES {
        return Err(malformed(format!("header over {MAX_METADATA_BYTES} bytes")));
    }
    let header: Value =
        serde_json::from_slice(&line).map_err(|e| malformed(format!("header: {e}")))?;
    Ok(Revision {
        top_hash,
        user_meta: user_meta(&header),
    })
}

/// A header's `user_meta`, `{}` when absent or not an object.
fn user_meta(header: &Value) -> Value {
    header
        .get("user_meta")
        .filter(|meta| meta.is_object())
        .cloned()
        .unwrap_or_else(|| Value::Object(Default::default()))
}

/// One file line of a manifest: only what the canvas reads (the rest, hashes and per-file
/// metadata included, is skipped while parsing).
#[derive(Deserialize)]
struct ManifestLine {
    #[serde(default)]
    logical_key: Option<String>,
    #[serde(default)]
    physical_keys: Vec<Value>,
    #[serde(default)]
    size: Option<Value>,
}

fn parse_manifest(top_hash: &str, bytes: &[u8]) -> Result<Manifest, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "not UTF-8".to_owned())?;
    let mut lines = text.lines().filter(|line| !line.trim().is_empty());
    let header: Value = serde_json::from_str(lines.next().ok_or("empty manifest")?)
        .map_err(|e| format!("header: {e}"))?;
    let mut entries = Vec::new();
    let mut entry_json = None;
    for (number, line) in lines.enumerate() {
        let entry: ManifestLine =
            serde_json::from_str(line).map_err(|e| format!("entry {}: {e}", number + 1))?;
        let Some(logical_key) = entry.logical_key else {
            return Err(format!("entry {} has no logical_key", number + 1));
        };
        if logical_key.starts_with(".quilt/") {
            continue;
        }
        let Some(physical_key) = entry.physical_keys.first().and_then(Value::as_str) else {
            continue;
        };
        if logical_key == "entry.json" {
            entry_json = Some(physical_key.to_owned());
        }
        entries.push(PackageEntry {
            logical_key,
            size: entry.size.as_ref().and_then(Value::as_u64).unwrap_or(0),
        });
    }
    entries.sort_by(|a, b| a.logical_key.cmp(&b.logical_key));
    Ok(Manifest {
        top_hash: top_hash.to_owned(),
        user_meta: user_meta(&header),
        message: header["message"].as_str().map(str::to_owned),
        entries,
        entry_json,
    })
}

/// The package's metadata: its `entry.json` file when the manifest has one in `bucket` and it
/// reads as JSON, else the header's `user_meta`.
///
/// # Errors
/// When the store fails in a way a retry may fix (the fallback would hide the entry and canvas
/// ids `entry.json` holds); a missing or unreadable `entry.json` falls back.
pub async fn package_metadata(
    store: &dyn ObjectStore,
    bucket: &str,
    manifest: &Manifest,
) -> Result<Value, RegistryError> {
    let stored = manifest
        .entry_json
        .as_deref()
        .and_then(|physical_key| object_key(bucket, physical_key));
    if let Some(key) = stored {
        match store.get_bytes(&key, MAX_METADATA_BYTES).await {
            Ok(bytes) => match serde_json::from_slice(&bytes) {
                Ok(value) => return Ok(value),
                Err(e) => {
                    tracing::warn!(%key, error = %e, "entry.json is not JSON; using user_meta")
                }
            },
            Err(e) if e.is_transient() => return Err(e.into()),
            Err(e) => tracing::warn!(%key, error = %e, "entry.json unreadable; using user_meta"),
        }
    }
    Ok(manifest.user_meta.clone())
}

/// The key of an `s3://{bucket}/{key}?versionId=…` URL in `bucket` (percent-decoded), or
/// `None` for another bucket or a malformed URL.
fn object_key(bucket: &str, physical_key: &str) -> Option<Key> {
    let rest = physical_key
        .strip_prefix("s3://")?
        .strip_prefix(bucket)?
        .strip_prefix('/')?;
    let encoded = rest.split('?').next()?;
    Key::new(percent_decode(encoded)?).ok()
}

fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use bw_store::{FsStore, PutOptions};
    use bytes::Bytes;

    #[test]
    fn a_revision_holds_the_version_its_metadata_names() {
        let entry = EntryId::parse("etr_1").unwrap();
        let version: DateTime<Utc> = "2025-03-30T23:37:23.123456Z".parse().unwrap();
        let revision = |user_meta: Value| Revision {
            top_hash: "abc".to_owned(),
            user_meta,
        };
        // Benchling's own offset form and ours name the same instant.
        for modified_at in [
            "2025-03-30T23:37:23.123456+00:00",
            "2025-03-30T23:37:23.123456Z",
        ] {
            let meta = serde_json::json!({"entry_id": "etr_1", "modified_at": modified_at});
            assert!(revision(meta).holds(&entry, &version), "{modified_at}");
        }
        for meta in [
            serde_json::json!({"entry_id": "etr_1", "modified_at": "2025-03-30T23:37:23.123457Z"}),
            serde_json::json!({"entry_id": "etr_2", "modified_at": "2025-03-30T23:37:23.123456Z"}),
            serde_json::json!({"entry_id": "etr_1", "modified_at": "yesterday"}),
            serde_json::json!({"entry_id": "etr_1"}),
            serde_json::json!({}),
        ] {
            assert!(!revision(meta.clone()).holds(&entry, &version), "{meta}");
        }
    }

    async fn put(store: &FsStore, key: &str, body: &str) {
        store
            .put_bytes(
                &Key::new(key).unwrap(),
                Bytes::from(body.to_owned()),
                PutOptions::default(),
            )
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn manifests_list_files_and_metadata_prefers_entry_json() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsStore::new(dir.path());
        assert!(matches!(
            latest_manifest(&store, "benchling/EXP1").await,
            Err(RegistryError::NoSuchPackage(_))
        ));
        put(
            &store,
            ".quilt/named_packages/benchling/EXP1/latest",
            "abc123\n",
        )
        .await;
        put(
            &store,
            ".quilt/packages/abc123",
            concat!(
                r#"{"version":"v0","message":"Benchling v2.entry.updated.fields","user_meta":{"entry_id":"etr_1"}}"#, "\n",
                r#"{"logical_key":"z.csv","physical_keys":["s3://quilt-example/benchling/EXP1/z.csv?versionId=1"],"size":5}"#, "\n",
                r#"{"logical_key":"entry.json","physical_keys":["s3://quilt-example/benchling/EXP1/entry%20data.json"],"size":9}"#, "\n",
                r#"{"logical_key":".quilt/x","physical_keys":["s3://quilt-example/x"],"size":1}"#, "\n",
                r#"{"logical_key":"a.csv","physical_keys":[],"size":3}"#, "\n",
            ),
        )
        .await;
        let manifest = latest_manifest(&store, "benchling/EXP1").await.unwrap();
        let keys: Vec<_> = manifest
            .entries
            .iter()
            .map(|e| e.logical_key.as_str())
            .collect();
        assert_eq!(keys, ["entry.json", "z.csv"]);
        assert_eq!(
            manifest.message.as_deref(),
            Some("Benchling v2.entry.updated.fields")
        );
        // entry.json is missing from the store: user_meta is the fallback.
        assert_eq!(
            package_metadata(&store, "quilt-example", &manifest)
                .await
                .unwrap(),
            serde_json::json!({"entry_id": "etr_1"})
        );
        put(
            &store,
            "benchling/EXP1/entry data.json",
            r#"{"canvas_id":"cnvs_1"}"#,
        )
        .await;
        assert_eq!(
            package_metadata(&store, "quilt-example", &manifest)
                .await
                .unwrap()["canvas_id"],
            "cnvs_1"
        );
        put(&store, ".quilt/packages/abc123", "not json").await;
        assert!(matches!(
            latest_manifest(&store, "benchling/EXP1").await,
            Err(RegistryError::Malformed { .. })
        ));
    }

    #[tokio::test]
    async fn revisions_are_listed_by_their_pointers_oldest_first() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsStore::new(dir.path());
        assert_eq!(revisions(&store, "benchling/EXP1").await.unwrap(), []);
        for (pointer, hash) in [("1764493265", "b"), ("latest", "b"), ("1764400000", "a")] {
            put(
                &store,
                &pointer_key("benchling/EXP1", pointer),
                &format!("{hash}\n"),
            )
            .await;
        }
        put(&store, &pointer_key("benchling/EXP10", "1764500000"), "c").await;
        assert_eq!(
            revisions(&store, "benchling/EXP1").await.unwrap(),
            [
                (1_764_400_000, "a".to_owned()),
                (1_764_493_265, "b".to_owned())
            ]
        );
    }

    #[tokio::test]
    async fn the_latest_revision_is_read_from_the_header_line_alone() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsStore::new(dir.path());
        assert!(matches!(
            latest_revision(&store, "benchling/EXP1").await,
            Err(RegistryError::NoSuchPackage(_))
        ));
        put(
            &store,
            ".quilt/named_packages/benchling/EXP1/latest",
            "abc\n",
        )
        .await;
        let revision = |manifest: String| {
            let store = &store;
            async move {
                put(store, ".quilt/packages/abc", &manifest).await;
                latest_revision(store, "benchling/EXP1").await
            }
        };
        // The file lines after the header are never read: here they are not even JSON.
        let read = revision(
            "\n{\"version\":\"v0\",\"user_meta\":{\"entry_id\":\"etr_1\"}}\nnot json\n".to_owned(),
        )
        .await
        .unwrap();
        assert_eq!(read.top_hash, "abc");
        assert_eq!(read.user_meta, serde_json::json!({"entry_id": "etr_1"}));
        let read = revision("{\"user_meta\":[1]}".to_owned()).await.unwrap();
        assert_eq!(read.user_meta, serde_json::json!({}));
        let oversized = format!(
            "{{\"user_meta\":{{\"pad\":\"{}\"}}}}\n",
            "x".repeat(MAX_METADATA_BYTES as usize)
        );
        for (manifest, why) in [
            (String::new(), "empty manifest"),
            ("\n\n".to_owned(), "empty manifest"),
            ("not json\n".to_owned(), "header:"),
            (oversized, "header over"),
        ] {
            match revision(manifest).await {
                Err(RegistryError::Malformed { message, .. }) => {
                    assert!(message.starts_with(why), "{message}")
                }
                other => panic!("{why}: {other:?}"),
            }
        }
    }
}
