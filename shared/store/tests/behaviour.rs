//! One behavioural suite for every `ObjectStore` backend: each scenario runs against the
//! filesystem store in a temporary directory and against S3 in moto (a fresh bucket per test),
//! through the real SDK over 127.0.0.1.

use std::sync::Arc;

use bw_store::{
    FsStore, Key, MultipartOptions, ObjectStore, Prefix, PutOptions, S3Store, StoreError,
};
use bw_testkit::moto::Moto;
use bw_testkit::sample::pattern;
use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt, stream};
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;

const MIB: usize = 1024 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Backend {
    Fs,
    S3,
}

/// A store under test and what must outlive it.
struct Fixture {
    store: Arc<dyn ObjectStore>,
    /// The S3 client and bucket, for checks the trait cannot make.
    s3: Option<(aws_sdk_s3::Client, String)>,
    /// A scratch directory (the filesystem store's root lives inside it).
    scratch: tempfile::TempDir,
}

impl Backend {
    async fn fixture(self) -> Fixture {
        let scratch = tempfile::tempdir().unwrap();
        match self {
            Backend::Fs => Fixture {
                store: Arc::new(FsStore::new(scratch.path().join("store"))),
                s3: None,
                scratch,
            },
            Backend::S3 => {
                let moto = Moto::shared();
                let bucket = Moto::unique_name("store");
                moto.create_bucket(&bucket).await;
                let client = bw_store::s3_client(&moto.sdk_config().await);
                // S3's smallest parts, so an 11 MiB file makes three.
                let store =
                    S3Store::new(client.clone(), &bucket).with_multipart(MultipartOptions {
                        threshold: 5 * MIB as u64,
                        part_size: 5 * MIB as u64,
                    });
                Fixture {
                    store: Arc::new(store),
                    s3: Some((client, bucket)),
                    scratch,
                }
            }
        }
    }
}

fn key(key: &str) -> Key {
    Key::new(key).unwrap()
}

fn prefix(prefix: &str) -> Prefix {
    Prefix::new(prefix).unwrap()
}

async fn read_all(store: &dyn ObjectStore, key: &Key) -> Vec<u8> {
    let mut body = Vec::new();
    store
        .get(key)
        .await
        .unwrap()
        .read_to_end(&mut body)
        .await
        .unwrap();
    body
}

async fn keys_under(store: &dyn ObjectStore, under: &Prefix) -> Vec<String> {
    store
        .list(under)
        .await
        .unwrap()
        .into_iter()
        .map(|listed| listed.key.to_string())
        .collect()
}

/// The CRC32 checksum S3 stored for `key` (sent by the SDK with the upload).
async fn stored_crc32(client: &aws_sdk_s3::Client, bucket: &str, key: &str) -> Option<String> {
    client
        .head_object()
        .bucket(bucket)
        .key(key)
        .checksum_mode(aws_sdk_s3::types::ChecksumMode::Enabled)
        .send()
        .await
        .unwrap()
        .checksum_crc32()
        .map(str::to_owned)
}

/// Chunks of an odd size, so that S3 parts (5 MiB here) split them.
const CHUNK: usize = 100_000;

/// `bytes` in [`CHUNK`]-byte chunks, the way the exporter streams a member.
fn chunks(bytes: &[u8]) -> Vec<std::io::Result<Bytes>> {
    bytes
        .chunks(CHUNK)
        .map(|chunk| Ok(Bytes::copy_from_slice(chunk)))
        .collect()
}

/// Puts `size` declared bytes while sending `items` one by one, then closing the channel.
async fn put_streamed(
    store: &dyn ObjectStore,
    key: &Key,
    size: u64,
    items: Vec<std::io::Result<Bytes>>,
    options: PutOptions,
) -> Result<(), StoreError> {
    let (sender, receiver) = mpsc::channel(2);
    let feed = async move {
        for item in items {
            if sender.send(item).await.is_err() {
                break;
            }
        }
    };
    let ((), put) = tokio::join!(feed, store.put_stream(key, size, receiver, options));
    put
}

async fn bytes_round_trip(backend: Backend) {
    let fixture = backend.fixture().await;
    let store = fixture.store.as_ref();
    let entry = key("pkg/EXP-1/entry.json");
    let body = Bytes::from_static(br#"{"id":"etr_1"}"#);

    store
        .put_bytes(&entry, body.clone(), PutOptions::default())
        .await
        .unwrap();
    assert_eq!(read_all(store, &entry).await, body);
    assert_eq!(store.get_bytes(&entry, 1024).await.unwrap(), body);

    let meta = store.head(&entry).await.unwrap().unwrap();
    assert_eq!(meta.key, entry);
    assert_eq!(meta.size, body.len() as u64);
    if backend == Backend::S3 {
        // Derived from the extension when not given.
        assert_eq!(meta.content_type.as_deref(), Some("application/json"));
        assert!(meta.etag.is_some());
    } else {
        assert_eq!(meta.content_type, None);
    }

    // A put replaces the object whole, with an explicit type.
    let replacement = Bytes::from_static(b"second");
    store
        .put_bytes(
            &entry,
            replacement.clone(),
            PutOptions::content_type("text/x-test"),
        )
        .await
        .unwrap();
    assert_eq!(read_all(store, &entry).await, replacement);
    if backend == Backend::S3 {
        let meta = store.head(&entry).await.unwrap().unwrap();
        assert_eq!(meta.content_type.as_deref(), Some("text/x-test"));
    }

    // An empty object is an object.
    let empty = key("pkg/empty");
    store
        .put_bytes(&empty, Bytes::new(), PutOptions::default())
        .await
        .unwrap();
    assert_eq!(store.head(&empty).await.unwrap().unwrap().size, 0);
    assert!(read_all(store, &empty).await.is_empty());
}

async fn stream_round_trip(backend: Backend) {
    let fixture = backend.fixture().await;
    let store = fixture.store.as_ref();
    let bytes = pattern(300 * 1024 + 7, 1);
    let report = key("pkg/EXP-1/attachments/report.pdf");

    put_streamed(
        store,
        &report,
        bytes.len() as u64,
        chunks(&bytes),
        PutOptions::for_name("report.pdf"),
    )
    .await
    .unwrap();
    assert_eq!(read_all(store, &report).await, bytes);
    let meta = store.head(&report).await.unwrap().unwrap();
    assert_eq!(meta.size, bytes.len() as u64);
    if let Some((client, bucket)) = &fixture.s3 {
        assert_eq!(meta.content_type.as_deref(), Some("application/pdf"));
        let crc = stored_crc32(client, bucket, report.as_str()).await;
        assert!(crc.is_some(), "no CRC32 stored");
    }

    // An empty stream is an empty object.
    let empty = key("pkg/EXP-1/empty.txt");
    put_streamed(store, &empty, 0, Vec::new(), PutOptions::default())
        .await
        .unwrap();
    assert_eq!(store.head(&empty).await.unwrap().unwrap().size, 0);
}

async fn multipart_stream_round_trip(backend: Backend) {
    let fixture = backend.fixture().await;
    let store = fixture.store.as_ref();
    let bytes = pattern(11 * MIB + 123, 2);
    let plate = key("pkg/EXP-1/plate.csv");

    put_streamed(
        store,
        &plate,
        bytes.len() as u64,
        chunks(&bytes),
        PutOptions::default(),
    )
    .await
    .unwrap();
    let got = read_all(store, &plate).await;
    assert_eq!(got.len(), bytes.len());
    assert!(got == bytes, "multipart object differs from the stream");

    let meta = store.head(&plate).await.unwrap().unwrap();
    assert_eq!(meta.size, bytes.len() as u64);
    if let Some((client, bucket)) = &fixture.s3 {
        // A multipart ETag is "<md5 of part md5s>-<part count>": 5 + 5 + 1.x MiB.
        let etag = meta.etag.unwrap();
        assert!(etag.ends_with("-3"), "not a 3-part upload: {etag}");
        assert_eq!(
            meta.content_type.as_deref(),
            Some("text/csv; charset=utf-8")
        );
        assert_eq!(Moto::shared().open_multipart_uploads(bucket).await, 0);
        let crc = stored_crc32(client, bucket, plate.as_str()).await;
        assert!(crc.is_some(), "no CRC32 stored");
    }
}

/// A stream that fails, ends early or runs long stores nothing and leaves the previous object
/// as it was, whether it would have been one PutObject or a multipart upload.
async fn abandoned_streams_store_nothing(backend: Backend) {
    let fixture = backend.fixture().await;
    let store = fixture.store.as_ref();
    let target = key("pkg/EXP-1/data.bin");
    let previous = Bytes::from_static(b"the previous version");
    store
        .put_bytes(&target, previous.clone(), PutOptions::default())
        .await
        .unwrap();

    // Below and above the 5 MiB multipart threshold of the S3 fixture.
    for size in [300 * 1024, 11 * MIB + 123] {
        let bytes = pattern(size, 3);
        let declared = size as u64;
        let mut failing = chunks(&bytes);
        let last = failing.len() - 1;
        failing[last] = Err(std::io::Error::other("CRC mismatch"));
        let mut short = chunks(&bytes);
        short.pop();
        let mut long = chunks(&bytes);
        long.push(Ok(Bytes::from_static(b"x")));
        for (case, items) in [("failing", failing), ("short", short), ("long", long)] {
            let outcome =
                put_streamed(store, &target, declared, items, PutOptions::default()).await;
            assert!(outcome.is_err(), "{case} stream of {size} bytes was stored");
            assert_eq!(
                read_all(store, &target).await,
                previous,
                "{case} stream of {size} bytes changed the object"
            );
        }
    }
    assert_eq!(
        keys_under(store, &prefix("pkg")).await,
        ["pkg/EXP-1/data.bin"]
    );
    if let Some((_, bucket)) = &fixture.s3 {
        assert_eq!(Moto::shared().open_multipart_uploads(bucket).await, 0);
    } else {
        // No temporary file is left behind.
        let names = std::fs::read_dir(fixture.scratch.path().join("store/pkg/EXP-1"))
            .unwrap()
            .count();
        assert_eq!(names, 1);
    }
}

async fn missing_objects(backend: Backend) {
    let fixture = backend.fixture().await;
    let store = fixture.store.as_ref();
    let missing = key("pkg/missing.txt");

    assert_eq!(store.head(&missing).await.unwrap(), None);
    let error = store.get(&missing).await.err().unwrap();
    assert!(error.is_not_found(), "{error:?}");
    assert!(!error.is_transient());
    assert!(error.to_string().contains("pkg/missing.txt"), "{error}");
    let error = store.get_bytes(&missing, 10).await.unwrap_err();
    assert!(error.is_not_found(), "{error:?}");
    assert!(store.list(&Prefix::root()).await.unwrap().is_empty());
    assert!(store.list(&prefix("no/such")).await.unwrap().is_empty());

    // A "directory" of other keys is not an object.
    store
        .put_bytes(
            &key("dir/child"),
            Bytes::from_static(b"x"),
            PutOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(store.head(&key("dir")).await.unwrap(), None);
    assert!(store.get(&key("dir")).await.err().unwrap().is_not_found());
}

async fn get_bytes_enforces_the_limit(backend: Backend) {
    let fixture = backend.fixture().await;
    let store = fixture.store.as_ref();
    let big = key("big.bin");
    store
        .put_bytes(&big, Bytes::from(pattern(1000, 3)), PutOptions::default())
        .await
        .unwrap();
    assert_eq!(store.get_bytes(&big, 1000).await.unwrap().len(), 1000);
    let error = store.get_bytes(&big, 999).await.unwrap_err();
    assert!(
        matches!(error, StoreError::TooLarge { limit: 999, .. }),
        "{error:?}"
    );
}

async fn list_paginates_and_delete_many_chunks(backend: Backend) {
    let fixture = backend.fixture().await;
    let store = Arc::clone(&fixture.store);
    // Over S3's 1000 keys per ListObjectsV2 page and per DeleteObjects request.
    let keys: Vec<Key> = (0..1100)
        .map(|i| key(&format!("many/{:02}/{i:04}.txt", i % 7)))
        .collect();
    stream::iter(keys.clone())
        .map(|key| {
            let store = Arc::clone(&store);
            async move {
                let body = Bytes::from(key.to_string());
                store.put_bytes(&key, body, PutOptions::default()).await
            }
        })
        .buffer_unordered(16)
        .try_collect::<Vec<()>>()
        .await
        .unwrap();
    store
        .put_bytes(
            &key("other.txt"),
            Bytes::from_static(b"o"),
            PutOptions::default(),
        )
        .await
        .unwrap();

    let listed = store.list(&prefix("many")).await.unwrap();
    let mut expected = keys.clone();
    expected.sort();
    assert_eq!(
        listed.iter().map(|l| l.key.clone()).collect::<Vec<_>>(),
        expected
    );
    assert!(listed.iter().all(|l| l.size == l.key.as_str().len() as u64));
    // Each listed object says when it was written: just now, give or take clock skew.
    let now = std::time::SystemTime::now();
    for listed in &listed {
        let written = listed.modified.expect("a listed object's write time");
        let skew = now.duration_since(written).unwrap_or_else(|e| e.duration());
        assert!(skew < std::time::Duration::from_secs(300), "{listed:?}");
    }
    assert_eq!(store.list(&Prefix::root()).await.unwrap().len(), 1101);
    if let Some((client, bucket)) = &fixture.s3 {
        // The listing above really took more than one page.
        let first = client
            .list_objects_v2()
            .bucket(bucket)
            .prefix("many/")
            .send()
            .await
            .unwrap();
        assert_eq!(first.contents().len(), 1000);
        assert!(first.next_continuation_token().is_some());
    }

    // Missing keys are not failures.
    let mut doomed = keys.clone();
    doomed.push(key("many/never-written"));
    let failures = store.delete_many(&doomed).await.unwrap();
    assert!(failures.is_empty(), "{failures:?}");
    assert!(store.list(&prefix("many")).await.unwrap().is_empty());
    assert_eq!(
        keys_under(store.as_ref(), &Prefix::root()).await,
        ["other.txt"]
    );
}

async fn list_under_a_prefix_excludes_siblings(backend: Backend) {
    let fixture = backend.fixture().await;
    let store = fixture.store.as_ref();
    for name in ["a/b/x", "a/b/y/z", "a/bc", "a/bc/w", "ab", "b/a/b/x"] {
        // The filesystem cannot hold "a/bc" as both a file and a directory: skip the file.
        if backend == Backend::Fs && name == "a/bc" {
            continue;
        }
        store
            .put_bytes(&key(name), Bytes::from_static(b"."), PutOptions::default())
            .await
            .unwrap();
    }
    assert_eq!(
        keys_under(store, &prefix("a/b")).await,
        ["a/b/x", "a/b/y/z"]
    );
    assert_eq!(
        keys_under(store, &prefix("a/b/")).await,
        ["a/b/x", "a/b/y/z"]
    );
    assert_eq!(keys_under(store, &prefix("a/bc")).await, ["a/bc/w"]);
    assert_eq!(
        keys_under(store, &prefix("a/b/x")).await,
        Vec::<String>::new()
    );
    let everything = keys_under(store, &Prefix::root()).await;
    assert_eq!(everything.len(), if backend == Backend::Fs { 5 } else { 6 });
}

async fn delete_objects(backend: Backend) {
    let fixture = backend.fixture().await;
    let store = fixture.store.as_ref();
    let keys = [key("d/one"), key("d/two"), key("d/sub/three")];
    for key in &keys {
        store
            .put_bytes(key, Bytes::from_static(b"bytes"), PutOptions::default())
            .await
            .unwrap();
    }

    store.delete(&keys[0]).await.unwrap();
    assert_eq!(store.head(&keys[0]).await.unwrap(), None);
    // Deleting again, or a key never written, is fine.
    store.delete(&keys[0]).await.unwrap();
    store.delete(&key("d/never")).await.unwrap();
    assert_eq!(
        keys_under(store, &prefix("d")).await,
        ["d/sub/three", "d/two"]
    );

    let failures = store
        .delete_many(&[keys[1].clone(), keys[2].clone(), key("d/never")])
        .await
        .unwrap();
    assert!(failures.is_empty(), "{failures:?}");
    assert!(store.list(&Prefix::root()).await.unwrap().is_empty());
    assert!(store.delete_many(&[]).await.unwrap().is_empty());

    // A key whose "directory" was emptied can become an object itself.
    store
        .put_bytes(
            &key("d/sub"),
            Bytes::from_static(b"now a file"),
            PutOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(read_all(store, &key("d/sub")).await, b"now a file");
}

async fn invalid_keys_are_refused(backend: Backend) {
    let fixture = backend.fixture().await;
    for bad in [
        "../x", "/abs", "a//b", "a\\b", "a/./b", "a/..", "", "a\0b", "x/",
    ] {
        let error = Key::new(bad).unwrap_err();
        assert!(
            matches!(error, StoreError::Invalid { .. }),
            "{bad:?}: {error:?}"
        );
        assert!(!error.is_transient());
    }
    assert!(Prefix::new("../a").is_err());
    assert!(Prefix::new("/a").is_err());
    // Joining cannot smuggle a `..` past validation.
    assert!(prefix("pkg").join("../escape").is_err());
    // Nothing reached the backend: it is still empty.
    assert!(
        fixture
            .store
            .list(&Prefix::root())
            .await
            .unwrap()
            .is_empty()
    );
    if backend == Backend::Fs {
        assert!(!fixture.scratch.path().join("store").exists());
    }
}

async fn concurrent_puts_of_one_key_leave_one_whole_object(backend: Backend) {
    let fixture = backend.fixture().await;
    let store = Arc::clone(&fixture.store);
    let target = key("race/object.bin");
    let bodies: Vec<Vec<u8>> = (0..6).map(|seed| pattern(64 * 1024, seed)).collect();
    stream::iter(bodies.clone())
        .map(|body| {
            let store = Arc::clone(&store);
            let target = target.clone();
            async move {
                store
                    .put_bytes(&target, Bytes::from(body), PutOptions::default())
                    .await
            }
        })
        .buffer_unordered(6)
        .try_collect::<Vec<()>>()
        .await
        .unwrap();
    let got = read_all(store.as_ref(), &target).await;
    assert!(bodies.contains(&got), "a torn or mixed object was stored");
    assert_eq!(
        keys_under(store.as_ref(), &prefix("race")).await,
        ["race/object.bin"]
    );
}

macro_rules! suite {
    ($($scenario:ident),* $(,)?) => {
        mod fs {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    super::$scenario(super::Backend::Fs).await;
                }
            )*
        }
        mod s3 {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    super::$scenario(super::Backend::S3).await;
                }
            )*
        }
    };
}

suite!(
    bytes_round_trip,
    stream_round_trip,
    multipart_stream_round_trip,
    abandoned_streams_store_nothing,
    missing_objects,
    get_bytes_enforces_the_limit,
    list_paginates_and_delete_many_chunks,
    list_under_a_prefix_excludes_siblings,
    delete_objects,
    invalid_keys_are_refused,
    concurrent_puts_of_one_key_leave_one_whole_object,
);

/// Two stores on one bucket with different roots see only their own keys.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_roots_keep_stores_apart() {
    let moto = Moto::shared();
    let bucket = Moto::unique_name("store");
    moto.create_bucket(&bucket).await;
    let client = moto.s3_client().await;
    let left = S3Store::new(client.clone(), &bucket).with_root(prefix("left"));
    let right = S3Store::new(client.clone(), &bucket).with_root(prefix("right/"));
    let shared = key("pkg/a.txt");
    left.put_bytes(&shared, Bytes::from_static(b"L"), PutOptions::default())
        .await
        .unwrap();
    right
        .put_bytes(&shared, Bytes::from_static(b"R"), PutOptions::default())
        .await
        .unwrap();

    assert_eq!(read_all(&left, &shared).await, b"L");
    assert_eq!(keys_under(&right, &Prefix::root()).await, ["pkg/a.txt"]);
    assert_eq!(left.location(), format!("s3://{bucket}/left/"));
    let raw = client
        .get_object()
        .bucket(&bucket)
        .key("right/pkg/a.txt")
        .send()
        .await
        .unwrap();
    assert_eq!(
        raw.body.collect().await.unwrap().into_bytes().as_ref(),
        b"R"
    );

    left.delete_many(std::slice::from_ref(&shared))
        .await
        .unwrap();
    assert_eq!(left.head(&shared).await.unwrap(), None);
    assert!(right.head(&shared).await.unwrap().is_some());
}

/// A missing bucket is permanent; an unreachable endpoint is transient. Both name the bucket.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_errors_are_classified() {
    let moto = Moto::shared();
    let missing = S3Store::new(moto.s3_client().await, "no-such-bucket-here");
    let error = missing
        .put_bytes(&key("k"), Bytes::from_static(b"x"), PutOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::Failed { .. }), "{error:?}");
    assert!(!error.is_transient());
    assert!(
        error.to_string().contains("s3://no-such-bucket-here/k"),
        "{error}"
    );
    let error = missing.list(&Prefix::root()).await.unwrap_err();
    assert!(!error.is_transient(), "{error:?}");

    let config = moto.sdk_config().await;
    let unreachable = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&config)
            .endpoint_url("http://127.0.0.1:9")
            .force_path_style(true)
            .retry_config(aws_sdk_s3::config::retry::RetryConfig::disabled())
            .build(),
    );
    let store = S3Store::new(unreachable, "bucket");
    let error = store.get(&key("k")).await.err().unwrap();
    assert!(error.is_transient(), "{error:?}");
    assert!(error.to_string().contains("s3://bucket/k"), "{error}");
    assert!(!error.to_string().contains("test"), "{error}");
}

/// A write interrupted before its rename leaves only a temporary file, which is not an object.
#[tokio::test]
async fn fs_leftover_temporary_files_are_not_objects() {
    let scratch = tempfile::tempdir().unwrap();
    let store = FsStore::new(scratch.path());
    let real = key("pkg/data.csv");
    store
        .put_bytes(&real, Bytes::from_static(b"a,b\n"), PutOptions::default())
        .await
        .unwrap();
    // What a crash between writing and renaming leaves behind.
    std::fs::write(
        scratch.path().join("pkg/.bw-store-tmp-0123-data.csv"),
        b"partial",
    )
    .unwrap();

    assert_eq!(keys_under(&store, &Prefix::root()).await, ["pkg/data.csv"]);
    assert_eq!(read_all(&store, &real).await, b"a,b\n");
    let error = store
        .head(&key("pkg/.bw-store-tmp-0123-data.csv"))
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::Invalid { .. }), "{error:?}");
    // No temporary file is left by a successful put.
    let names: Vec<_> = std::fs::read_dir(scratch.path().join("pkg"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
}

/// A multipart upload whose task is cancelled part-way is aborted, leaving no parts behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_cancelled_multipart_upload_is_aborted() {
    let moto = Moto::shared();
    let bucket = Moto::unique_name("store");
    moto.create_bucket(&bucket).await;
    let client = moto.s3_client().await;
    let store = S3Store::new(client.clone(), &bucket).with_multipart(MultipartOptions {
        threshold: 5 * MIB as u64,
        part_size: 5 * MIB as u64,
    });
    // Six parts declared; the producer sends the first part and a bit, then stalls.
    let (sender, receiver) = mpsc::channel(2);
    let upload = tokio::spawn(async move {
        store
            .put_stream(
                &key("big.bin"),
                30 * MIB as u64,
                receiver,
                PutOptions::default(),
            )
            .await
    });
    for chunk in chunks(&pattern(6 * MIB, 9)) {
        sender.send(chunk).await.unwrap();
    }

    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while moto.open_multipart_uploads(&bucket).await == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the upload never started"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    assert!(!upload.is_finished(), "{:?}", upload.await);
    upload.abort();
    assert!(upload.await.unwrap_err().is_cancelled());

    drop(sender);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while moto.open_multipart_uploads(&bucket).await != 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the upload was not aborted"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let head = client
        .head_object()
        .bucket(&bucket)
        .key("big.bin")
        .send()
        .await;
    assert!(head.is_err(), "a cancelled upload produced an object");
}

/// With an endpoint override the client addresses buckets by path: `bucket.localhost` would
/// not resolve.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_client_uses_path_style_with_an_endpoint_override() {
    let moto = Moto::shared();
    let bucket = Moto::unique_name("store");
    moto.create_bucket(&bucket).await;
    let config = moto
        .sdk_config()
        .await
        .into_builder()
        .endpoint_url(moto.endpoint().replace("127.0.0.1", "localhost"))
        .build();
    let store = S3Store::new(bw_store::s3_client(&config), &bucket);
    let note = key("note.md");
    store
        .put_bytes(&note, Bytes::from_static(b"# hi"), PutOptions::default())
        .await
        .unwrap();
    assert_eq!(read_all(&store, &note).await, b"# hi");
}
