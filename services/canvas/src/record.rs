//! What the canvas knows about an entry between jobs, from the bookkeeping records in the
//! registry bucket: the packager's published record and the canvas worker's own
//! [`CanvasRecord`] (the canvas id and the last failed update). The footer status comes from
//! them, so "Updated at" appears only for a version the packager really announced.

use bw_contracts::EntryId;
use bw_contracts::bookkeeping::{self, CanvasRecord, PublishedRecord};
use bw_store::{Key, ObjectStore, PutOptions, StoreError};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;

use crate::view::Status;

/// Largest record read.
const MAX_RECORD_BYTES: u64 = 64 * 1024;

/// Longest an update is shown as running: beyond the exporter's 30-minute export deadline, the
/// download, and the packager, with room for retries.
pub const PENDING_LIMIT: chrono::TimeDelta = chrono::TimeDelta::hours(2);

/// An entry's records as read at the start of a job.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EntryRecords {
    /// When the packager last announced a version.
    pub published_at: Option<DateTime<Utc>>,
    /// The canvas record.
    pub canvas: CanvasRecord,
}

impl EntryRecords {
    /// Reads both records; a missing one is empty and an unreadable one is ignored with a
    /// warning (it is rewritten by the next update).
    ///
    /// # Errors
    /// When the store fails (transient) or the entry id makes no valid key.
    pub async fn load(store: &dyn ObjectStore, entry: &EntryId) -> Result<Self, StoreError> {
        let published: Option<PublishedRecord> =
            read(store, bookkeeping::published_key(entry)).await?;
        let canvas: Option<CanvasRecord> = read(store, bookkeeping::canvas_key(entry)).await?;
        Ok(Self {
            published_at: published.map(|p| p.published_at),
            canvas: canvas.unwrap_or_default(),
        })
    }

    /// The footer at `now`: "Updating…" while a requested update has not ended (for at most
    /// [`PENDING_LIMIT`], in case its notice was lost), else a failure newer than the last
    /// announcement, else the announcement, else nothing known yet.
    pub fn status(&self, now: DateTime<Utc>) -> Status {
        if self
            .canvas
            .update_requested_at
            .is_some_and(|requested| now - requested < PENDING_LIMIT)
        {
            return Status::Updating;
        }
        match (&self.canvas.failure, self.published_at) {
            (Some(failure), Some(published)) if failure.at <= published => {
                Status::UpdatedAt(published)
            }
            (Some(failure), _) => Status::Failed(failure.reason.clone()),
            (None, Some(published)) => Status::UpdatedAt(published),
            (None, None) => Status::Pending,
        }
    }
}

/// Writes the canvas record.
///
/// # Errors
/// When the store fails.
pub async fn save_canvas(
    store: &dyn ObjectStore,
    entry: &EntryId,
    record: &CanvasRecord,
) -> Result<(), StoreError> {
    let key = Key::new(bookkeeping::canvas_key(entry))?;
    let bytes = serde_json::to_vec(record).expect("records serialize");
    store
        .put_bytes(
            &key,
            Bytes::from(bytes),
            PutOptions::for_name("canvas.json"),
        )
        .await
}

async fn read<T: DeserializeOwned>(
    store: &dyn ObjectStore,
    raw: String,
) -> Result<Option<T>, StoreError> {
    let key = Key::new(raw)?;
    match store.get_bytes(&key, MAX_RECORD_BYTES).await {
        Ok(bytes) => match serde_json::from_slice(&bytes) {
            Ok(record) => Ok(Some(record)),
            Err(e) => {
                tracing::warn!(%key, error = %e, "ignoring a malformed record");
                Ok(None)
            }
        },
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use bw_contracts::bookkeeping::UpdateFailure;

    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    fn records(published: Option<&str>, failed: Option<&str>) -> EntryRecords {
        EntryRecords {
            published_at: published.map(at),
            canvas: CanvasRecord {
                canvas_id: None,
                failure: failed.map(|t| UpdateFailure {
                    reason: "export FAILED".to_owned(),
                    at: at(t),
                }),
                update_requested_at: None,
            },
        }
    }

    #[test]
    fn the_newer_of_failure_and_announcement_wins() {
        let now = at("2026-01-03T00:00:00Z");
        let (early, late) = (Some("2026-01-01T00:00:00Z"), Some("2026-01-02T00:00:00Z"));
        assert_eq!(records(None, None).status(now), Status::Pending);
        assert_eq!(
            records(early, None).status(now),
            Status::UpdatedAt(at(early.unwrap()))
        );
        assert_eq!(
            records(early, late).status(now),
            Status::Failed("export FAILED".to_owned())
        );
        assert_eq!(
            records(late, early).status(now),
            Status::UpdatedAt(at(late.unwrap()))
        );
        assert_eq!(
            records(None, early).status(now),
            Status::Failed("export FAILED".to_owned())
        );
    }

    #[test]
    fn a_requested_update_shows_as_running_until_the_limit() {
        let requested = at("2026-01-03T00:00:00Z");
        let mut pending = records(Some("2026-01-01T00:00:00Z"), None);
        pending.canvas.update_requested_at = Some(requested);
        assert_eq!(pending.status(requested), Status::Updating);
        let later = requested + PENDING_LIMIT;
        assert_eq!(
            pending.status(later),
            Status::UpdatedAt(at("2026-01-01T00:00:00Z"))
        );
    }

    #[tokio::test]
    async fn records_round_trip_and_bad_ones_read_as_empty() {
        let dir = tempfile::tempdir().unwrap();
        let store = bw_store::FsStore::new(dir.path());
        let entry = EntryId::parse("etr_1").unwrap();
        assert_eq!(
            EntryRecords::load(&store, &entry).await.unwrap(),
            EntryRecords::default()
        );
        let record = CanvasRecord {
            canvas_id: Some(bw_contracts::CanvasId::parse("cnvs_1").unwrap()),
            failure: None,
            update_requested_at: Some(at("2026-01-01T00:00:00Z")),
        };
        save_canvas(&store, &entry, &record).await.unwrap();
        let key = Key::new(bookkeeping::published_key(&entry)).unwrap();
        store
            .put_bytes(
                &key,
                Bytes::from_static(b"{not json"),
                PutOptions::default(),
            )
            .await
            .unwrap();
        let loaded = EntryRecords::load(&store, &entry).await.unwrap();
        assert_eq!(loaded.canvas, record);
        assert_eq!(loaded.published_at, None);
    }
}
