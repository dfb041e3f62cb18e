//! Where the services keep their own records in the registry bucket.
//!
//! Everything lives under [`BOOKKEEPING_ROOT`] at the bucket root, outside every package prefix,
//! so a Quilt package built from a prefix holds only the entry's files and metadata. One entry's
//! records sit under `.benchling-webhook/entries/{entry id}/`:
//!
//! - `{version}/entry.json`: the raw entry as the exporter fetched it (the render job's claim
//!   check), `{version}` being [`version_tag`] of the entry's `modifiedAt`;
//! - `{version}/files.json`: the files written, when too many for the render message;
//! - `published.json`: a [`PublishedRecord`] for the last version announced to Quilt. The
//!   packager writes it right after sending the packager message; the exporter skips a job
//!   whose entry version it names;
//! - `canvas.json`: a [`CanvasRecord`], the entry's canvas and its last failed update, kept by
//!   the canvas worker so later renders and package events find both.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::id::{CanvasId, EntryId};

/// The folder at the bucket root that holds every record of this system.
pub const BOOKKEEPING_ROOT: &str = ".benchling-webhook";

/// An entry version as it appears in keys and deduplication ids: `modifiedAt` in UTC, compact,
/// to the microsecond (`20240607T214648.111811Z`). Sorting the tags sorts the versions.
pub fn version_tag(modified_at: &DateTime<Utc>) -> String {
    modified_at.format("%Y%m%dT%H%M%S%.6fZ").to_string()
}

/// The folder of one entry's records, with a trailing slash.
pub fn entry_records(entry: &EntryId) -> String {
    format!("{BOOKKEEPING_ROOT}/entries/{entry}/")
}

/// Key of the raw entry JSON of one version (the render job's claim check).
pub fn entry_snapshot_key(entry: &EntryId, modified_at: &DateTime<Utc>) -> String {
    format!(
        "{}{}/entry.json",
        entry_records(entry),
        version_tag(modified_at)
    )
}

/// Key of the file list of one version, when it does not fit in the render message.
pub fn file_list_key(entry: &EntryId, modified_at: &DateTime<Utc>) -> String {
    format!(
        "{}{}/files.json",
        entry_records(entry),
        version_tag(modified_at)
    )
}

/// Key of the entry's [`PublishedRecord`].
pub fn published_key(entry: &EntryId) -> String {
    format!("{}published.json", entry_records(entry))
}

/// Key of the entry's [`CanvasRecord`].
pub fn canvas_key(entry: &EntryId) -> String {
    format!("{}canvas.json", entry_records(entry))
}

/// What the canvas worker remembers about an entry's canvas.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CanvasRecord {
    /// The entry's canvas, once one was created or rendered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canvas_id: Option<CanvasId>,
    /// The last update that failed, kept so every later render can show it until a newer
    /// version is announced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<UpdateFailure>,
    /// When "Update Package" was last clicked, until the update is announced or fails; every
    /// render meanwhile shows "Updating…".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_requested_at: Option<DateTime<Utc>>,
    /// The last time "Update Package" found the announced version in Quilt's registry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified: Option<Verified>,
}

/// An announced version found in Quilt's registry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verified {
    /// When the version was announced (the published record's time).
    pub published_at: DateTime<Utc>,
    /// The revision holding it.
    pub top_hash: String,
}

/// An update that failed for good.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdateFailure {
    /// Why, in words a user can act on.
    pub reason: String,
    /// When it was reported.
    pub at: DateTime<Utc>,
}

/// The last entry version announced to Quilt's packager.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishedRecord {
    /// The entry.
    pub entry_id: EntryId,
    /// The version announced: the entry's `modifiedAt`.
    pub modified_at: DateTime<Utc>,
    /// The Quilt package name (`benchling/EXP25000007`).
    pub package_name: String,
    /// When the packager message was sent.
    pub published_at: DateTime<Utc>,
}

impl PublishedRecord {
    /// Whether this record announces exactly this version.
    pub fn covers(&self, modified_at: &DateTime<Utc>) -> bool {
        self.modified_at == *modified_at
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_sit_outside_packages_and_sort_by_version() {
        let entry = EntryId::parse("etr_1").unwrap();
        let earlier: DateTime<Utc> = "2024-06-07T21:46:48.111811Z".parse().unwrap();
        let later: DateTime<Utc> = "2024-06-07T21:46:49Z".parse().unwrap();
        assert_eq!(
            entry_snapshot_key(&entry, &earlier),
            ".benchling-webhook/entries/etr_1/20240607T214648.111811Z/entry.json"
        );
        assert_eq!(
            file_list_key(&entry, &later),
            ".benchling-webhook/entries/etr_1/20240607T214649.000000Z/files.json"
        );
        assert_eq!(
            published_key(&entry),
            ".benchling-webhook/entries/etr_1/published.json"
        );
        assert!(version_tag(&earlier) < version_tag(&later));
    }

    #[test]
    fn a_record_covers_only_its_own_version() {
        let at: DateTime<Utc> = "2024-06-07T21:46:48.111811Z".parse().unwrap();
        let record = PublishedRecord {
            entry_id: EntryId::parse("etr_1").unwrap(),
            modified_at: at,
            package_name: "benchling/EXP1".into(),
            published_at: at,
        };
        let json = serde_json::to_string(&record).unwrap();
        let back: PublishedRecord = serde_json::from_str(&json).unwrap();
        assert!(back.covers(&at));
        assert!(!back.covers(&(at + chrono::Duration::microseconds(1))));
    }
}
