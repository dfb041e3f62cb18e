//! What the canvas knows about an entry between jobs, from the bookkeeping records in the
//! registry bucket: the packager's published record and the canvas worker's own
//! [`CanvasRecord`] (the canvas id and the last failed update). The footer status comes from
//! them, so "Updated at" appears only for a version the packager really announced.

use bw_contracts::EntryId;
use bw_contracts::bookkeeping::{self, CanvasRecord, PublishedRecord};
use bw_store::{Key, ObjectStore, PutOptions, StoreError, get_record};
use bytes::Bytes;
use chrono::{DateTime, Utc};

use crate::view::Status;

/// Longest an update is shown as running: beyond the exporter's 30-minute export deadline, the
/// download, and the packager, with room for retries.
pub const PENDING_LIMIT: chrono::TimeDelta = chrono::TimeDelta::hours(2);

/// The entry's canvas record; empty when there is none or it is unreadable (the next update
/// rewrites it).
///
/// # Errors
/// When the store fails or the entry id makes no valid key.
pub async fn canvas(store: &dyn ObjectStore, entry: &EntryId) -> Result<CanvasRecord, StoreError> {
    let key = Key::new(bookkeeping::canvas_key(entry))?;
    Ok(get_record(store, &key).await?.unwrap_or_default())
}

/// When the packager last announced a version of the entry, from its published record. Read
/// only for the views that show the footer: browsing a package does not need it.
///
/// # Errors
/// When the store fails or the entry id makes no valid key.
pub async fn published_at(
    store: &dyn ObjectStore,
    entry: &EntryId,
) -> Result<Option<DateTime<Utc>>, StoreError> {
    let key = Key::new(bookkeeping::published_key(entry))?;
    let record: Option<PublishedRecord> = get_record(store, &key).await?;
    Ok(record.map(|record| record.published_at))
}

/// The footer at `now`: "Updating…" while a requested update has not ended (for at most
/// [`PENDING_LIMIT`], in case its notice was lost), else a failure newer than the last
/// announcement, else the announcement (up to date when Quilt's registry was seen to hold
/// it), else nothing known yet.
pub fn status(
    canvas: &CanvasRecord,
    published_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Status {
    if canvas
        .update_requested_at
        .is_some_and(|requested| now - requested < PENDING_LIMIT)
    {
        return Status::Updating;
    }
    let announced = |published: DateTime<Utc>| match &canvas.verified {
        Some(verified) if verified.published_at == published => Status::UpToDate {
            published_at: published,
            top_hash: verified.top_hash.clone(),
        },
        _ => Status::UpdatedAt(published),
    };
    match (&canvas.failure, published_at) {
        (Some(failure), Some(published)) if failure.at <= published => announced(published),
        (Some(failure), _) => Status::Failed(failure.reason.clone()),
        (None, Some(published)) => announced(published),
        (None, None) => Status::Pending,
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

#[cfg(test)]
mod tests {
    use bw_contracts::bookkeeping::UpdateFailure;

    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    /// The footer for a canvas record with the failure at `failed` and an announcement at
    /// `published`.
    fn footer(published: Option<&str>, failed: Option<&str>, now: DateTime<Utc>) -> Status {
        status(&failed_at(failed), published.map(at), now)
    }

    fn failed_at(failed: Option<&str>) -> CanvasRecord {
        CanvasRecord {
            canvas_id: None,
            failure: failed.map(|t| UpdateFailure {
                reason: "export FAILED".to_owned(),
                at: at(t),
            }),
            update_requested_at: None,
            verified: None,
        }
    }

    #[test]
    fn the_newer_of_failure_and_announcement_wins() {
        let now = at("2026-01-03T00:00:00Z");
        let (early, late) = (Some("2026-01-01T00:00:00Z"), Some("2026-01-02T00:00:00Z"));
        assert_eq!(footer(None, None, now), Status::Pending);
        assert_eq!(
            footer(early, None, now),
            Status::UpdatedAt(at(early.unwrap()))
        );
        assert_eq!(
            footer(early, late, now),
            Status::Failed("export FAILED".to_owned())
        );
        assert_eq!(
            footer(late, early, now),
            Status::UpdatedAt(at(late.unwrap()))
        );
        assert_eq!(
            footer(None, early, now),
            Status::Failed("export FAILED".to_owned())
        );
    }

    #[test]
    fn an_announcement_seen_in_the_registry_is_up_to_date_until_a_newer_one() {
        let now = at("2026-01-03T00:00:00Z");
        let first = at("2026-01-01T00:00:00Z");
        let mut record = failed_at(None);
        record.verified = Some(bw_contracts::bookkeeping::Verified {
            published_at: first,
            top_hash: "abc".to_owned(),
        });
        let up_to_date = Status::UpToDate {
            published_at: first,
            top_hash: "abc".to_owned(),
        };
        assert_eq!(status(&record, Some(first), now), up_to_date);
        let second = at("2026-01-02T00:00:00Z");
        assert_eq!(
            status(&record, Some(second), now),
            Status::UpdatedAt(second)
        );
        record.failure = Some(UpdateFailure {
            reason: "export FAILED".to_owned(),
            at: second,
        });
        assert_eq!(
            status(&record, Some(first), now),
            Status::Failed("export FAILED".to_owned())
        );
    }

    #[test]
    fn a_requested_update_shows_as_running_until_the_limit() {
        let requested = at("2026-01-03T00:00:00Z");
        let published = Some(at("2026-01-01T00:00:00Z"));
        let mut pending = failed_at(None);
        pending.update_requested_at = Some(requested);
        assert_eq!(status(&pending, published, requested), Status::Updating);
        let later = requested + PENDING_LIMIT;
        assert_eq!(
            status(&pending, published, later),
            Status::UpdatedAt(at("2026-01-01T00:00:00Z"))
        );
    }

    #[tokio::test]
    async fn records_round_trip_and_bad_ones_read_as_empty() {
        let dir = tempfile::tempdir().unwrap();
        let store = bw_store::FsStore::new(dir.path());
        let entry = EntryId::parse("etr_1").unwrap();
        assert_eq!(
            canvas(&store, &entry).await.unwrap(),
            CanvasRecord::default()
        );
        assert_eq!(published_at(&store, &entry).await.unwrap(), None);
        let record = CanvasRecord {
            canvas_id: Some(bw_contracts::CanvasId::parse("cnvs_1").unwrap()),
            failure: None,
            update_requested_at: Some(at("2026-01-01T00:00:00Z")),
            verified: None,
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
        assert_eq!(canvas(&store, &entry).await.unwrap(), record);
        assert_eq!(published_at(&store, &entry).await.unwrap(), None);
    }
}
