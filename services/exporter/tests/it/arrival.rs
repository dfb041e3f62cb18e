//! Reading an export ZIP while it downloads: the tail first (central directory), then the rest,
//! with readers of bytes not yet there waiting for them. Over real HTTP on 127.0.0.1: the
//! Benchling stand-in, and a raw server whose second answer can be held back, cut short or
//! changed.

use std::io::{Cursor, Read, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bw_exporter::archive::{Archive, ArchiveLimits};
use bw_exporter::download::{Download, DownloadError, DownloadLimits, TAIL_BYTES, start_download};
use bw_standin::benchling::BenchlingStandIn;
use bw_testkit::sample::pattern;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use url::Url;
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipWriter};

const MIB: usize = 1024 * 1024;

/// A fresh temporary directory to download `export.zip` into.
struct Target {
    _dir: tempfile::TempDir,
    dest: PathBuf,
}

impl Target {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("export.zip");
        Self { _dir: dir, dest }
    }

    /// Starts the download of `url`, as the exporter does: no redirects, short limits.
    async fn start(&self, url: &str) -> Download {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let limits = DownloadLimits {
            timeout: Duration::from_secs(20),
            read_timeout: Duration::from_secs(5),
            ..DownloadLimits::default()
        };
        let url = Url::parse(url).unwrap();
        start_download(&http, &url, &self.dest, &limits)
            .await
            .unwrap()
    }
}

/// Three stored 3 MiB members: 9 MiB, so the tail holds the central directory and only part of
/// the last member.
fn three_members() -> (Vec<u8>, Vec<Vec<u8>>) {
    let members: Vec<Vec<u8>> = (0..3).map(|seed| pattern(3 * MIB, seed)).collect();
    let options = SimpleFileOptions::default().compression_method(CompressionMethod::Stored);
    let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
    for (n, member) in members.iter().enumerate() {
        zip.start_file(format!("m{n}.bin"), options).unwrap();
        zip.write_all(member).unwrap();
    }
    (zip.finish().unwrap().into_inner(), members)
}

/// How the raw server answers the request for the bytes before the tail.
#[derive(Clone)]
enum Rest {
    /// Only once the test says so.
    HeldUntil(Arc<Notify>),
    /// The promised length, then only this many bytes and a closed connection.
    CutAfter(usize),
    /// As if the object had been replaced by a longer one.
    Resized,
}

/// Serves `object` on 127.0.0.1, answering `bytes=-N` at once and `bytes=0-X` as `rest` says.
async fn range_server(object: Vec<u8>, rest: Rest) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let object = Arc::new(object);
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            tokio::spawn(serve(socket, Arc::clone(&object), rest.clone()));
        }
    });
    format!("http://{addr}/export.zip")
}

async fn serve(mut socket: TcpStream, object: Arc<Vec<u8>>, rest: Rest) {
    let len = object.len();
    loop {
        let mut request = Vec::new();
        let mut byte = [0u8; 1];
        while !request.ends_with(b"\r\n\r\n") {
            if socket.read(&mut byte).await.unwrap_or(0) == 0 {
                return;
            }
            request.push(byte[0]);
        }
        let request = String::from_utf8_lossy(&request).to_ascii_lowercase();
        let range = request
            .lines()
            .find_map(|line| line.strip_prefix("range: bytes="))
            .unwrap_or("")
            .to_owned();
        let (start, end, mut size) = match range.split_once('-') {
            Some(("", suffix)) => (len - suffix.parse::<usize>().unwrap().min(len), len, len),
            Some((first, last)) => (
                first.parse().unwrap(),
                last.parse::<usize>().unwrap() + 1,
                len,
            ),
            None => (0, len, len),
        };
        let mut sent = end - start;
        if start == 0 && end < len {
            match &rest {
                Rest::HeldUntil(gate) => gate.notified().await,
                Rest::CutAfter(bytes) => sent = *bytes,
                Rest::Resized => size += 1,
            }
        }
        let head = format!(
            "HTTP/1.1 206 Partial Content\r\ncontent-length: {}\r\ncontent-range: bytes {start}-{}/{size}\r\n\r\n",
            end - start,
            end - 1
        );
        if socket.write_all(head.as_bytes()).await.is_err()
            || socket
                .write_all(&object[start..start + sent])
                .await
                .is_err()
            || sent < end - start
        {
            return;
        }
    }
}

/// Reads member `index` whole on a blocking thread.
fn read_member(
    archive: &Archive,
    index: usize,
) -> tokio::task::JoinHandle<std::io::Result<Vec<u8>>> {
    let mut archive = archive.clone();
    tokio::task::spawn_blocking(move || {
        let mut bytes = Vec::new();
        archive
            .open_member(index)
            .map_err(std::io::Error::other)?
            .read_to_end(&mut bytes)?;
        Ok(bytes)
    })
}

async fn open(download: &Download) -> Archive {
    let file = download.file();
    let read = tokio::task::spawn_blocking(move || Archive::read(file, ArchiveLimits::default()));
    tokio::time::timeout(Duration::from_secs(5), read)
        .await
        .expect("validating the archive waited for the rest of the download")
        .unwrap()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_archive_opens_before_the_rest_arrives_and_readers_wait_for_their_bytes() {
    let (zip, members) = three_members();
    let gate = Arc::new(Notify::new());
    let target = Target::new();
    let download = target
        .start(&range_server(zip.clone(), Rest::HeldUntil(Arc::clone(&gate))).await)
        .await;
    let archive = open(&download).await;
    assert_eq!(archive.members().len(), 3);

    let first = read_member(&archive, archive.members()[0].index);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !first.is_finished(),
        "read a member before its bytes arrived"
    );
    gate.notify_one();
    assert_eq!(first.await.unwrap().unwrap(), members[0]);
    let last = read_member(&archive, archive.members()[2].index);
    assert_eq!(last.await.unwrap().unwrap(), members[2]);
    assert_eq!(download.finish().await.unwrap(), zip.len() as u64);
    assert_eq!(std::fs::read(&target.dest).unwrap(), zip);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_download_cut_short_fails_the_waiting_readers_and_the_download() {
    let (zip, _) = three_members();
    let target = Target::new();
    let download = target
        .start(&range_server(zip, Rest::CutAfter(MIB)).await)
        .await;
    let archive = open(&download).await;
    let read = read_member(&archive, archive.members()[0].index);
    let error = tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .expect("a reader kept waiting after the download failed")
        .unwrap()
        .unwrap_err();
    assert!(error.to_string().contains("download failed"), "{error}");
    assert!(download.has_failed());
    let error = download.finish().await.unwrap_err();
    assert!(
        matches!(error, DownloadError::Transport { .. }),
        "{error:?}"
    );
    assert!(!error.is_permanent());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rest_from_a_changed_object_is_refused() {
    let (zip, _) = three_members();
    let target = Target::new();
    let download = target.start(&range_server(zip, Rest::Resized).await).await;
    let error = download.finish().await.unwrap_err();
    assert!(error.to_string().contains("content-range"), "{error}");
    assert!(!error.is_permanent());
}

#[tokio::test]
async fn the_stand_in_is_asked_for_the_tail_then_the_rest() {
    let stand_in = BenchlingStandIn::start("client", "secret");
    let body = pattern(9 * MIB, 3);
    stand_in.add_download("export.zip", body.clone());
    let target = Target::new();
    let download = target.start(&stand_in.download_url("export.zip")).await;
    assert_eq!(download.finish().await.unwrap(), body.len() as u64);
    assert!(
        std::fs::read(&target.dest).unwrap() == body,
        "the file differs"
    );
    let ranges: Vec<String> = stand_in
        .requests_to("GET", "/downloads/")
        .iter()
        .map(|request| request.header("range").unwrap_or("none").to_owned())
        .collect();
    let rest_end = body.len() as u64 - TAIL_BYTES - 1;
    assert_eq!(
        ranges,
        [
            format!("bytes=-{TAIL_BYTES}"),
            format!("bytes=0-{rest_end}")
        ]
    );
}

#[tokio::test]
async fn a_server_that_ignores_ranges_is_downloaded_whole_at_once() {
    let stand_in = BenchlingStandIn::start("client", "secret");
    stand_in.ignore_ranges();
    let body = pattern(9 * MIB, 4);
    stand_in.add_download("export.zip", body.clone());
    let target = Target::new();
    let download = target.start(&stand_in.download_url("export.zip")).await;
    assert!(!download.has_failed());
    assert_eq!(download.finish().await.unwrap(), body.len() as u64);
    assert!(
        std::fs::read(&target.dest).unwrap() == body,
        "the file differs"
    );
    assert_eq!(stand_in.requests_to("GET", "/downloads/").len(), 1);
}

#[tokio::test]
async fn an_empty_download_falls_back_to_a_plain_request() {
    let stand_in = BenchlingStandIn::start("client", "secret");
    stand_in.add_download("empty.zip", Vec::new());
    let target = Target::new();
    let download = target.start(&stand_in.download_url("empty.zip")).await;
    assert_eq!(download.finish().await.unwrap(), 0);
    assert_eq!(stand_in.requests_to("GET", "/downloads/").len(), 2);
}
