//! Publishing archive members into a package prefix and pruning what an earlier export left,
//! each scenario against the filesystem store in a temporary directory and against S3 in moto
//! (a fresh bucket per test).

use std::io::{Cursor, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;

use bw_exporter::archive::{Archive, ArchiveError, ArchiveLimits};
use bw_exporter::publish::{
    PACKAGER_FILES, UploadError, UploadOptions, WrittenFile, prune_stale, upload_members,
};
use bw_store::{
    DeleteFailure, FsStore, Key, ListedObject, MultipartOptions, ObjectChunks, ObjectMeta,
    ObjectReader, ObjectStore, Prefix, PutOptions, S3Store, StoreError,
};
use bw_testkit::moto::Moto;
use bw_testkit::sample::pattern;
use bytes::Bytes;
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipWriter};

const MIB: usize = 1024 * 1024;

#[derive(Clone, Copy, Debug)]
enum Backend {
    Fs,
    S3,
}

const BACKENDS: [Backend; 2] = [Backend::Fs, Backend::S3];

/// A store under test and the scratch directory that must outlive it.
struct Fixture {
    store: Arc<dyn ObjectStore>,
    /// The S3 bucket, for checks the trait cannot make.
    bucket: Option<String>,
    scratch: tempfile::TempDir,
}

impl Backend {
    async fn fixture(self) -> Fixture {
        let scratch = tempfile::tempdir().unwrap();
        match self {
            Backend::Fs => Fixture {
                store: Arc::new(FsStore::new(scratch.path().join("store"))),
                bucket: None,
                scratch,
            },
            Backend::S3 => {
                let moto = Moto::shared();
                let bucket = Moto::unique_name("publish");
                moto.create_bucket(&bucket).await;
                let client = bw_store::s3_client(&moto.sdk_config().await);
                // S3's smallest parts, so a 6 MiB member goes up as a multipart upload.
                let store = S3Store::new(client, &bucket).with_multipart(MultipartOptions {
                    threshold: 5 * MIB as u64,
                    part_size: 5 * MIB as u64,
                });
                Fixture {
                    store: Arc::new(store),
                    bucket: Some(bucket),
                    scratch,
                }
            }
        }
    }
}

impl Fixture {
    /// Spools `zip` and uploads its members under `prefix`, three at a time.
    async fn upload(&self, zip: &[u8], prefix: &Prefix) -> Result<Vec<WrittenFile>, UploadError> {
        let mut spool = tempfile::NamedTempFile::new_in(self.scratch.path()).unwrap();
        spool.write_all(zip).unwrap();
        let archive = Archive::open(spool.path(), ArchiveLimits::default()).unwrap();
        let options = UploadOptions { concurrency: 3 };
        upload_members(archive, Arc::clone(&self.store), prefix, &options).await
    }

    /// S3 multipart uploads begun and neither completed nor aborted; none on the filesystem.
    async fn open_uploads(&self) -> usize {
        match &self.bucket {
            Some(bucket) => Moto::shared().open_multipart_uploads(bucket).await,
            None => 0,
        }
    }

    async fn keys_under(&self, under: &Prefix) -> Vec<String> {
        self.store
            .list(under)
            .await
            .unwrap()
            .into_iter()
            .map(|listed| listed.key.to_string())
            .collect()
    }

    async fn read(&self, key: &str) -> Vec<u8> {
        self.store
            .get_bytes(&Key::new(key).unwrap(), 64 * MIB as u64)
            .await
            .unwrap()
            .to_vec()
    }

    async fn put(&self, key: &str, bytes: &'static [u8]) {
        self.store
            .put_bytes(
                &Key::new(key).unwrap(),
                Bytes::from_static(bytes),
                PutOptions::default(),
            )
            .await
            .unwrap();
    }
}

fn prefix(prefix: &str) -> Prefix {
    Prefix::new(prefix).unwrap()
}

/// A ZIP holding `files` (name, bytes) in order; names ending in `/` are directories.
fn build(files: &[(&str, &[u8])]) -> Vec<u8> {
    let options = SimpleFileOptions::default().compression_method(CompressionMethod::Deflated);
    let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
    for (name, data) in files {
        if let Some(dir) = name.strip_suffix('/') {
            zip.add_directory(dir, options).unwrap();
        } else {
            zip.start_file(*name, options).unwrap();
            zip.write_all(data).unwrap();
        }
    }
    zip.finish().unwrap().into_inner()
}

#[tokio::test]
async fn members_arrive_with_their_bytes_in_archive_order() {
    let large = pattern(6 * MIB, 1);
    let small = pattern(70_000, 2);
    let files: [(&str, &[u8]); 6] = [
        ("results/plate.csv", b"well,value\nA1,3\n"),
        ("results/", b""),
        ("large.bin", &large),
        ("empty.txt", b""),
        ("docs/README.md", b"# nested readmes are attachments\n"),
        ("a.pdf", &small),
    ];
    let zip = build(&files);
    for backend in BACKENDS {
        let fixture = backend.fixture().await;
        let under = prefix("benchling/EXP1");
        let written = fixture.upload(&zip, &under).await.unwrap();

        let expected: Vec<(&str, &[u8])> = files
            .iter()
            .filter(|(name, _)| !name.ends_with('/'))
            .copied()
            .collect();
        let names: Vec<&str> = written.iter().map(|file| file.name.as_str()).collect();
        let wanted: Vec<&str> = expected.iter().map(|(name, _)| *name).collect();
        assert_eq!(names, wanted, "{backend:?}");
        for (file, (name, data)) in written.iter().zip(&expected) {
            assert_eq!(file.key.as_str(), format!("benchling/EXP1/{name}"));
            assert_eq!(file.size, data.len() as u64, "{backend:?} {name}");
            assert!(
                fixture.read(file.key.as_str()).await == *data,
                "{backend:?}: {name} differs"
            );
        }
        if let Backend::S3 = backend {
            // A multipart ETag ends in the part count.
            let meta = fixture.store.head(&written[1].key).await.unwrap().unwrap();
            assert!(
                meta.etag
                    .as_deref()
                    .is_some_and(|etag| etag.ends_with("-2")),
                "{meta:?}"
            );
        }
        let mut keys: Vec<String> = written.iter().map(|file| file.key.to_string()).collect();
        keys.sort();
        assert_eq!(
            fixture.keys_under(&Prefix::root()).await,
            keys,
            "{backend:?}"
        );
        assert_eq!(fixture.open_uploads().await, 0, "{backend:?}");
    }
}

#[tokio::test]
async fn a_reserved_top_level_name_is_refused_before_anything_is_written() {
    let zip = build(&[
        ("first.csv", b"a,b\n"),
        ("README.md", b"# not the packager's"),
        ("last.csv", b"c,d\n"),
    ]);
    for backend in BACKENDS {
        let fixture = backend.fixture().await;
        let error = fixture
            .upload(&zip, &prefix("benchling/EXP1"))
            .await
            .unwrap_err();
        assert!(
            matches!(&error, UploadError::ReservedName { name } if name.as_str() == "README.md"),
            "{backend:?}: {error}"
        );
        assert!(error.is_permanent());
        assert_eq!(
            fixture.keys_under(&Prefix::root()).await,
            Vec::<String>::new(),
            "{backend:?}"
        );
    }
}

#[tokio::test]
async fn every_packager_file_name_is_reserved() {
    let fixture = Backend::Fs.fixture().await;
    for name in PACKAGER_FILES {
        let zip = build(&[(name, b"{}")]);
        let error = fixture.upload(&zip, &prefix("p")).await.unwrap_err();
        assert!(
            matches!(error, UploadError::ReservedName { .. }),
            "{name}: {error}"
        );
    }
    assert_eq!(
        fixture.keys_under(&Prefix::root()).await,
        Vec::<String>::new()
    );
}

#[tokio::test]
async fn prune_removes_stale_attachments_but_keeps_metadata_and_siblings() {
    let earlier = build(&[
        ("kept.csv", b"old"),
        ("gone.csv", b"deleted in Benchling"),
        ("dir/gone.txt", b"also deleted"),
    ]);
    let current = build(&[("kept.csv", b"new"), ("dir/new.txt", b"added")]);
    for backend in BACKENDS {
        let fixture = backend.fixture().await;
        let package = prefix("benchling/EXP1");
        fixture.upload(&earlier, &package).await.unwrap();
        for name in PACKAGER_FILES {
            fixture
                .put(&format!("benchling/EXP1/{name}"), b"packager")
                .await;
        }
        fixture.put("benchling/EXP10/gone.csv", b"sibling").await;
        fixture.put("benchling/EXP1.csv", b"neighbour").await;
        fixture
            .put(".benchling-webhook/marker", b"bookkeeping")
            .await;

        let written = fixture.upload(&current, &package).await.unwrap();
        let deleted = prune_stale(&*fixture.store, &package, &written, &PACKAGER_FILES)
            .await
            .unwrap();

        let deleted: Vec<&str> = deleted.iter().map(Key::as_str).collect();
        assert_eq!(
            deleted,
            ["benchling/EXP1/dir/gone.txt", "benchling/EXP1/gone.csv"],
            "{backend:?}"
        );
        let mut expected: Vec<String> = PACKAGER_FILES
            .iter()
            .map(|name| format!("benchling/EXP1/{name}"))
            .chain([
                "benchling/EXP1/kept.csv".to_owned(),
                "benchling/EXP1/dir/new.txt".to_owned(),
            ])
            .collect();
        expected.sort();
        assert_eq!(fixture.keys_under(&package).await, expected, "{backend:?}");
        assert_eq!(fixture.read("benchling/EXP1/kept.csv").await, b"new");
        assert_eq!(
            fixture.keys_under(&Prefix::root()).await.len(),
            expected.len() + 3,
            "{backend:?}: something outside the package was deleted"
        );
        assert_eq!(fixture.read("benchling/EXP10/gone.csv").await, b"sibling");
        assert_eq!(fixture.read("benchling/EXP1.csv").await, b"neighbour");
        assert_eq!(
            fixture.read(".benchling-webhook/marker").await,
            b"bookkeeping"
        );

        // Nothing left to prune the second time.
        let again = prune_stale(&*fixture.store, &package, &written, &PACKAGER_FILES)
            .await
            .unwrap();
        assert!(again.is_empty(), "{backend:?}: {again:?}");
    }
}

#[tokio::test]
async fn pruning_the_store_root_is_refused() {
    let fixture = Backend::Fs.fixture().await;
    fixture.put("pkg/a.csv", b"a").await;
    let error = prune_stale(&*fixture.store, &Prefix::root(), &[], &PACKAGER_FILES)
        .await
        .unwrap_err();
    assert!(matches!(error, UploadError::RootPrefix), "{error}");
    assert!(error.is_permanent());
    assert_eq!(fixture.keys_under(&Prefix::root()).await, ["pkg/a.csv"]);
}

#[tokio::test]
async fn a_redelivered_upload_leaves_the_same_objects() {
    let zip = build(&[
        ("a.csv", b"1,2,3\n"),
        ("b/c.json", b"{\"x\":1}"),
        ("d.png", &[0x89, b'P', b'N', b'G']),
    ]);
    for backend in BACKENDS {
        let fixture = backend.fixture().await;
        let package = prefix("benchling/EXP1");
        let first = fixture.upload(&zip, &package).await.unwrap();
        let before = fixture.keys_under(&Prefix::root()).await;
        let second = fixture.upload(&zip, &package).await.unwrap();
        assert_eq!(first, second, "{backend:?}");
        assert_eq!(
            fixture.keys_under(&Prefix::root()).await,
            before,
            "{backend:?}"
        );
        assert_eq!(fixture.read("benchling/EXP1/b/c.json").await, b"{\"x\":1}");
        let deleted = prune_stale(&*fixture.store, &package, &second, &PACKAGER_FILES)
            .await
            .unwrap();
        assert!(deleted.is_empty(), "{backend:?}: {deleted:?}");
    }
}

/// A member whose bytes fail its CRC-32 is not stored: the object already at its key stays as
/// it was, whether the member would have gone up as one request, in parts, or empty.
#[tokio::test]
async fn a_member_failing_its_crc_is_a_permanent_error_and_replaces_nothing() {
    let large = pattern(6 * MIB, 4);
    let cases: [(&str, &[u8]); 3] = [
        ("b.csv", b"will be corrupted"),
        ("large.bin", &large),
        ("empty.txt", b""),
    ];
    for (name, data) in cases {
        let mut zip = build(&[("a.csv", b"fine"), (name, data)]);
        // Flip one byte of the last member's stored CRC-32 in its central-directory header.
        let position = find_last(&zip, b"PK\x01\x02");
        zip[position + 16] ^= 0xFF;
        for backend in BACKENDS {
            let fixture = backend.fixture().await;
            let key = format!("p/{name}");
            fixture.put(&key, b"the previous version").await;
            let error = fixture.upload(&zip, &prefix("p")).await.unwrap_err();
            assert!(
                matches!(
                    &error,
                    UploadError::Archive(ArchiveError::CrcMismatch { .. })
                ),
                "{backend:?} {name}: {error}"
            );
            assert!(error.is_permanent(), "{error}");
            assert_eq!(
                fixture.read(&key).await,
                b"the previous version",
                "{backend:?} {name}"
            );
            assert_eq!(fixture.open_uploads().await, 0, "{backend:?} {name}");
        }
    }
}

fn find_last(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .rposition(|window| window == needle)
        .unwrap()
}

/// A filesystem store that records how many uploads run at once, and can fail the upload of
/// one key.
#[derive(Debug)]
struct Probe {
    inner: FsStore,
    fail_on: Option<String>,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
}

#[async_trait]
impl ObjectStore for Probe {
    fn location(&self) -> String {
        self.inner.location()
    }

    async fn put_stream(
        &self,
        key: &Key,
        size: u64,
        chunks: ObjectChunks,
        options: PutOptions,
    ) -> Result<(), StoreError> {
        let running = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(running, Ordering::SeqCst);
        // Long enough for every free slot to start its member.
        tokio::time::sleep(Duration::from_millis(30)).await;
        let result = if self.fail_on.as_deref() == Some(key.as_str()) {
            Err(StoreError::backend(
                true,
                key.to_string(),
                "PutObject",
                "slow down".into(),
            ))
        } else {
            self.inner.put_stream(key, size, chunks, options).await
        };
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        result
    }

    async fn put_bytes(
        &self,
        key: &Key,
        bytes: Bytes,
        options: PutOptions,
    ) -> Result<(), StoreError> {
        self.inner.put_bytes(key, bytes, options).await
    }

    async fn get(&self, key: &Key) -> Result<ObjectReader, StoreError> {
        self.inner.get(key).await
    }

    async fn head(&self, key: &Key) -> Result<Option<ObjectMeta>, StoreError> {
        self.inner.head(key).await
    }

    async fn list(&self, prefix: &Prefix) -> Result<Vec<ListedObject>, StoreError> {
        self.inner.list(prefix).await
    }

    async fn delete(&self, key: &Key) -> Result<(), StoreError> {
        self.inner.delete(key).await
    }

    async fn delete_many(&self, keys: &[Key]) -> Result<Vec<DeleteFailure>, StoreError> {
        self.inner.delete_many(keys).await
    }
}

fn probe(scratch: &tempfile::TempDir, fail_on: Option<&str>) -> (Arc<Probe>, UploadOptions) {
    let probe = Arc::new(Probe {
        inner: FsStore::new(scratch.path().join("store")),
        fail_on: fail_on.map(str::to_owned),
        in_flight: AtomicUsize::new(0),
        max_in_flight: AtomicUsize::new(0),
    });
    (probe, UploadOptions { concurrency: 3 })
}

fn twenty_members() -> Vec<u8> {
    let names: Vec<String> = (0..20).map(|n| format!("m{n:02}.bin")).collect();
    let data: Vec<Vec<u8>> = (0..20).map(|n| pattern(10_000, n)).collect();
    let files: Vec<(&str, &[u8])> = names
        .iter()
        .zip(&data)
        .map(|(name, data)| (name.as_str(), data.as_slice()))
        .collect();
    build(&files)
}

fn open_spooled(scratch: &tempfile::TempDir, zip: &[u8]) -> Archive {
    let path = scratch.path().join("export.zip");
    std::fs::write(&path, zip).unwrap();
    Archive::open(&path, ArchiveLimits::default()).unwrap()
}

#[tokio::test]
async fn uploads_stay_within_the_concurrency() {
    let scratch = tempfile::tempdir().unwrap();
    let (probe, options) = probe(&scratch, None);
    let archive = open_spooled(&scratch, &twenty_members());
    let store: Arc<dyn ObjectStore> = probe.clone();
    let written = upload_members(archive, store, &prefix("p"), &options)
        .await
        .unwrap();
    assert_eq!(written.len(), 20);
    let max_in_flight = probe.max_in_flight.load(Ordering::SeqCst);
    assert!(
        (2..=3).contains(&max_in_flight),
        "{max_in_flight} uploads at once"
    );
}

#[tokio::test]
async fn a_failed_upload_stops_the_rest_and_stays_retryable() {
    let scratch = tempfile::tempdir().unwrap();
    let (probe, options) = probe(&scratch, Some("p/m03.bin"));
    let archive = open_spooled(&scratch, &twenty_members());
    let store: Arc<dyn ObjectStore> = probe.clone();
    let error = upload_members(archive, store, &prefix("p"), &options)
        .await
        .unwrap_err();
    assert!(matches!(error, UploadError::Store(_)), "{error}");
    assert!(!error.is_permanent(), "{error}");
    let written = probe.list(&prefix("p")).await.unwrap().len();
    assert!(written < 19, "{written} members uploaded after the failure");
}
