//! Small JSON records the services keep beside the packages (published versions, canvases): one
//! way to read them, so every reader treats a missing or damaged record alike.

use serde::de::DeserializeOwned;

use crate::{Key, ObjectStore, StoreError};

/// Largest record read.
pub const MAX_RECORD_BYTES: u64 = 64 * 1024;

/// Reads the JSON record at `key`: `None` when there is none, and also when it is not the
/// expected JSON (logged; the next write replaces it).
///
/// # Errors
/// When the store fails, or the record is over [`MAX_RECORD_BYTES`]; what that means is the
/// caller's to decide.
pub async fn get_record<T: DeserializeOwned>(
    store: &dyn ObjectStore,
    key: &Key,
) -> Result<Option<T>, StoreError> {
    let bytes = match store.get_bytes(key, MAX_RECORD_BYTES).await {
        Ok(bytes) => bytes,
        Err(e) if e.is_not_found() => return Ok(None),
        Err(e) => return Err(e),
    };
    match serde_json::from_slice(&bytes) {
        Ok(record) => Ok(Some(record)),
        Err(e) => {
            tracing::warn!(%key, error = %e, "ignoring a malformed record");
            Ok(None)
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::{FsStore, PutOptions};

    #[tokio::test]
    async fn missing_and_malformed_records_read_as_none() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsStore::new(dir.path());
        let key = Key::new(".benchling-webhook/record.json").unwrap();
        assert_eq!(get_record::<u32>(&store, &key).await.unwrap(), None);
        store
            .put_bytes(&key, Bytes::from_static(b"7"), PutOptions::default())
            .await
            .unwrap();
        assert_eq!(get_record::<u32>(&store, &key).await.unwrap(), Some(7));
        store
            .put_bytes(
                &key,
                Bytes::from_static(b"{not json"),
                PutOptions::default(),
            )
            .await
            .unwrap();
        assert_eq!(get_record::<u32>(&store, &key).await.unwrap(), None);
        let huge = Bytes::from(vec![b' '; MAX_RECORD_BYTES as usize + 1]);
        store
            .put_bytes(&key, huge, PutOptions::default())
            .await
            .unwrap();
        let error = get_record::<u32>(&store, &key).await.unwrap_err();
        assert!(matches!(error, StoreError::TooLarge { .. }), "{error}");
    }
}
