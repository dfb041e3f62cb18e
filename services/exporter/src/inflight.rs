//! Entry versions in flight between the exporter and Quilt's registry.
//!
//! Quilt's packager builds a revision from the live package prefix when it takes an
//! announcement off its queue, which may be well after the announcement was sent. A newer
//! version written into the prefix meanwhile would be built under the older announcement: one
//! version in two different manifests, or an older announcement holding newer files. So an
//! export writes the prefix only once no other version of its entry is in flight: none handed
//! to the packager and not yet announced (its claim check is still stored), and the last
//! announcement held by the registry. A version in flight for longer than [`REANNOUNCE_AFTER`]
//! is taken as abandoned (its render job dead-lettered, its message lost), which bounds the
//! wait.

use std::fmt;
use std::time::SystemTime;

use bw_contracts::EntryId;
use bw_contracts::bookkeeping::{self, PublishedRecord};
use bw_registry::RegistryError;
use bw_store::{ObjectStore, Prefix};
use chrono::{DateTime, Utc};

use crate::handler::JobError;

/// How long an announcement may take to reach Quilt's registry before it is taken as lost:
/// "Update Package" then announces it again, and a newer version stops waiting for it.
pub const REANNOUNCE_AFTER: chrono::TimeDelta = chrono::TimeDelta::minutes(15);

/// Whether the registry holds an announced version.
pub(crate) enum Registry {
    /// The package's latest revision (this top hash) holds it.
    Holds(String),
    /// Not yet, but Quilt may still be building it.
    Building,
    /// No, and the announcement is too old to be still building.
    Lacks,
}

/// Whether Quilt's registry holds the version `record` announced: the package's latest
/// revision carries it (the record is always the latest version announced).
pub(crate) async fn registry_state(
    store: &dyn ObjectStore,
    record: &PublishedRecord,
) -> Result<Registry, JobError> {
    let found = match bw_registry::latest_revision(store, &record.package_name).await {
        Ok(revision) => revision
            .holds(&record.entry_id, &record.modified_at)
            .then_some(revision.top_hash),
        Err(RegistryError::NoSuchPackage(_)) => None,
        Err(RegistryError::Store(e)) if e.is_transient() => {
            return Err(JobError::Bookkeeping(e));
        }
        Err(e) => {
            tracing::warn!(error = %e, "reading the package's latest revision");
            None
        }
    };
    Ok(match found {
        Some(top_hash) => Registry::Holds(top_hash),
        None if chrono::Utc::now() - record.published_at < REANNOUNCE_AFTER => Registry::Building,
        None => Registry::Lacks,
    })
}

/// Another version of the entry, on its way to Quilt's registry.
#[derive(Debug)]
pub(crate) enum InFlight {
    /// Handed to the packager and not yet announced (this version tag).
    Rendering(String),
    /// Announced, and not yet in the registry.
    Building(String),
}

impl InFlight {
    /// The metric label.
    pub(crate) fn cause(&self) -> &'static str {
        match self {
            Self::Rendering(_) => "rendering",
            Self::Building(_) => "building",
        }
    }
}

impl fmt::Display for InFlight {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Rendering(version) => write!(f, "version {version} is with the packager"),
            Self::Building(version) => {
                write!(
                    f,
                    "version {version} is announced and not yet in Quilt's registry"
                )
            }
        }
    }
}

/// A version of `entry` other than `own` in flight, if any; `record` is the entry's published
/// record.
pub(crate) async fn in_flight(
    store: &dyn ObjectStore,
    entry: &EntryId,
    own: &DateTime<Utc>,
    record: Option<&PublishedRecord>,
) -> Result<Option<InFlight>, JobError> {
    let announced = record.map(|record| bookkeeping::version_tag(&record.modified_at));
    let own = bookkeeping::version_tag(own);
    let folder = Prefix::new(bookkeeping::entry_records(entry)).map_err(JobError::Bookkeeping)?;
    let folder_path = folder.with_slash();
    let abandoned = REANNOUNCE_AFTER.to_std().expect("a positive delay");
    let now = SystemTime::now();
    for object in store.list(&folder).await.map_err(JobError::Bookkeeping)? {
        let Some(version) = object
            .key
            .as_str()
            .strip_prefix(folder_path.as_str())
            .and_then(|rest| rest.strip_suffix("/entry.json"))
        else {
            continue;
        };
        // This version's own claim check means an earlier delivery of this job got that far,
        // and one older than the announcement is a render that found it superseded.
        let pending = version != own && announced.as_deref().is_none_or(|last| version > last);
        let fresh = object
            .modified
            .is_none_or(|at| now.duration_since(at).unwrap_or_default() < abandoned);
        if pending && fresh {
            return Ok(Some(InFlight::Rendering(version.to_owned())));
        }
    }
    if let Some(record) = record
        && matches!(registry_state(store, record).await?, Registry::Building)
    {
        return Ok(Some(InFlight::Building(
            announced.expect("a record has a version"),
        )));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use bw_store::{FsStore, Key, PutOptions};
    use bytes::Bytes;

    use super::*;

    const PACKAGE: &str = "benchling/EXP1";

    fn at(minute: u32) -> DateTime<Utc> {
        format!("2025-06-01T10:{minute:02}:00Z").parse().unwrap()
    }

    fn entry() -> EntryId {
        "etr_inflight".parse().unwrap()
    }

    struct Bucket {
        dir: tempfile::TempDir,
        store: FsStore,
    }

    impl Bucket {
        fn new() -> Self {
            let dir = tempfile::tempdir().unwrap();
            let store = FsStore::new(dir.path());
            Self { dir, store }
        }

        async fn put(&self, key: &str, body: &str) {
            let key = Key::new(key).unwrap();
            let body = Bytes::from(body.to_owned());
            self.store
                .put_bytes(&key, body, PutOptions::default())
                .await
                .unwrap();
        }

        /// A claim check for version `minute`, written `age` ago.
        async fn claim_check(&self, minute: u32, age: Duration) {
            let key = bookkeeping::entry_snapshot_key(&entry(), &at(minute));
            self.put(&key, "{}").await;
            let file = std::fs::File::options()
                .write(true)
                .open(self.dir.path().join(&key))
                .unwrap();
            file.set_modified(SystemTime::now() - age).unwrap();
        }

        /// Quilt's latest revision of the package holds version `minute`.
        async fn built(&self, minute: u32) {
            let meta = serde_json::json!({"entry_id": entry(), "modified_at": at(minute)});
            let header = serde_json::json!({"version": "v0", "message": "m", "user_meta": meta});
            self.put(".quilt/packages/cafe", &format!("{header}\n"))
                .await;
            self.put(&format!(".quilt/named_packages/{PACKAGE}/latest"), "cafe")
                .await;
        }

        async fn in_flight(&self, own: u32, record: Option<&PublishedRecord>) -> Option<InFlight> {
            in_flight(&self.store, &entry(), &at(own), record)
                .await
                .unwrap()
        }
    }

    fn record(minute: u32, age: chrono::TimeDelta) -> PublishedRecord {
        PublishedRecord {
            entry_id: entry(),
            modified_at: at(minute),
            package_name: PACKAGE.to_owned(),
            published_at: chrono::Utc::now() - age,
        }
    }

    #[tokio::test]
    async fn a_version_handed_to_the_packager_and_not_yet_announced_is_in_flight() {
        let bucket = Bucket::new();
        assert!(bucket.in_flight(30, None).await.is_none());

        // The job's own version: an earlier delivery of the same job got that far.
        bucket.claim_check(30, Duration::ZERO).await;
        assert!(bucket.in_flight(30, None).await.is_none());

        bucket.claim_check(20, Duration::from_secs(60)).await;
        let other = bucket.in_flight(30, None).await;
        assert!(
            matches!(&other, Some(InFlight::Rendering(v)) if *v == bookkeeping::version_tag(&at(20))),
            "{other:?}"
        );
        // Once version 20 is announced and built, its claim check no longer counts.
        bucket.built(20).await;
        let announced = record(20, chrono::TimeDelta::zero());
        assert!(bucket.in_flight(30, Some(&announced)).await.is_none());
    }

    #[tokio::test]
    async fn an_announcement_quilt_has_not_built_is_in_flight_until_it_is_taken_as_lost() {
        let bucket = Bucket::new();
        let fresh = record(20, chrono::TimeDelta::seconds(5));
        let other = bucket.in_flight(30, Some(&fresh)).await;
        assert!(
            matches!(&other, Some(InFlight::Building(v)) if *v == bookkeeping::version_tag(&at(20))),
            "{other:?}"
        );
        assert_eq!(other.unwrap().cause(), "building");

        let lost = record(20, REANNOUNCE_AFTER + chrono::TimeDelta::seconds(1));
        assert!(bucket.in_flight(30, Some(&lost)).await.is_none());

        bucket.built(20).await;
        assert!(bucket.in_flight(30, Some(&fresh)).await.is_none());
    }

    #[tokio::test]
    async fn a_claim_check_older_than_the_reannounce_delay_is_abandoned() {
        let bucket = Bucket::new();
        let stale = REANNOUNCE_AFTER.to_std().unwrap() + Duration::from_secs(1);
        bucket.claim_check(20, stale).await;
        assert!(bucket.in_flight(30, None).await.is_none());
        // A render that found its version superseded leaves its claim check behind too.
        bucket.claim_check(10, Duration::ZERO).await;
        bucket.built(20).await;
        let announced = record(20, chrono::TimeDelta::zero());
        assert!(bucket.in_flight(30, Some(&announced)).await.is_none());
        assert!(matches!(
            bucket.in_flight(30, None).await,
            Some(InFlight::Rendering(_))
        ));
    }
}
