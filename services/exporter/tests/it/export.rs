//! Running an export and downloading its ZIP, over real HTTP on 127.0.0.1: the Benchling
//! stand-in for the API and the downloads, and a raw socket server for what the stand-in cannot
//! serve (chunked bodies without a length, redirects).

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_lc_rs::digest::{SHA256, digest};
use bw_benchling::{
    BenchlingClient, BenchlingError, ClientOptions, Credentials, RateLimit, RetryOptions,
};
use bw_config::Redacted;
use bw_contracts::EntryId;
use bw_exporter::download::{DownloadError, DownloadLimits, start_download};
use bw_exporter::export::{ExportError, ExportOptions, run_export};
use bw_standin::benchling::{BenchlingStandIn, FIXTURE_ENTRY_ID, Fault, TaskScript};
use bw_testkit::sample::pattern;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use url::Url;

const CLIENT_ID: &str = "standin-client";
const SECRET: &str = "very-secret-value";

fn client(stand_in: &BenchlingStandIn) -> BenchlingClient {
    let credentials = Credentials {
        tenant: "standin".to_owned(),
        client_id: CLIENT_ID.to_owned(),
        client_secret: Redacted::new(SECRET),
    };
    let options = ClientOptions {
        base_url: Some(Url::parse(&stand_in.url()).unwrap()),
        request_timeout: Duration::from_secs(5),
        connect_timeout: Duration::from_secs(2),
        retry: RetryOptions {
            max_attempts: 5,
            initial_backoff: Duration::from_millis(20),
            max_wait: Duration::from_secs(2),
        },
        rate_limit: RateLimit {
            requests: 1000,
            per: Duration::from_secs(1),
        },
        ..ClientOptions::default()
    };
    BenchlingClient::new(Arc::new(credentials), options).unwrap()
}

fn entry_id() -> EntryId {
    EntryId::parse(FIXTURE_ENTRY_ID).unwrap()
}

/// Test-sized polling: 10 ms doubling to 40 ms.
fn fast(deadline: Duration) -> ExportOptions {
    ExportOptions {
        first_poll: Duration::from_millis(10),
        max_poll_interval: Duration::from_millis(40),
        deadline,
    }
}

fn task_polls(stand_in: &BenchlingStandIn) -> usize {
    stand_in.requests_to("GET", "/api/v2/tasks/").len()
}

/// The client the worker uses for downloads: no redirects followed.
fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn limits(max_bytes: u64) -> DownloadLimits {
    DownloadLimits {
        max_bytes,
        timeout: Duration::from_secs(20),
        read_timeout: Duration::from_secs(5),
        ..DownloadLimits::default()
    }
}

/// Downloads `url` to `dest` as the worker does, waiting for the whole archive.
async fn download(
    http: &reqwest::Client,
    url: &Url,
    dest: &std::path::Path,
    limits: &DownloadLimits,
) -> Result<u64, DownloadError> {
    start_download(http, url, dest, limits)
        .await?
        .finish()
        .await
}

/// Serves one connection with `head` followed by `body`, written in 16 KiB pieces; returns the
/// base URL.
async fn serve_once(head: String, body: Vec<u8>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut request = Vec::new();
        let mut buf = [0u8; 1024];
        while !request.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = socket.read(&mut buf).await.unwrap();
            if n == 0 {
                return;
            }
            request.extend_from_slice(&buf[..n]);
        }
        // The client may hang up once it has seen enough; that is the point of some tests.
        let _ = socket.write_all(head.as_bytes()).await;
        for piece in body.chunks(16 * 1024) {
            if socket.write_all(piece).await.is_err() {
                return;
            }
        }
    });
    format!("http://{addr}")
}

/// A chunked body of `len` bytes: no Content-Length for the client to check up front.
fn chunked(len: usize) -> (String, Vec<u8>) {
    let head =
        "HTTP/1.1 200 OK\r\ncontent-type: application/zip\r\ntransfer-encoding: chunked\r\n\r\n";
    let mut body = Vec::new();
    for piece in pattern(len, 7).chunks(8 * 1024) {
        body.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        body.extend_from_slice(piece);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(b"0\r\n\r\n");
    (head.to_owned(), body)
}

#[tokio::test]
async fn export_polls_with_growing_intervals_until_it_succeeds() {
    let stand_in = BenchlingStandIn::start(CLIENT_ID, SECRET);
    stand_in.push_task(TaskScript::Succeed {
        running: 6,
        download: "export.zip".to_owned(),
    });

    let started = Instant::now();
    let url = run_export(
        &client(&stand_in),
        &entry_id(),
        &fast(Duration::from_secs(10)),
    )
    .await
    .unwrap();
    let elapsed = started.elapsed();

    assert_eq!(url.as_str(), stand_in.download_url("export.zip"));
    assert_eq!(stand_in.requests_to("POST", "/api/v2/exports").len(), 1);
    assert_eq!(task_polls(&stand_in), 7);
    // Waits of 10, 20, 40, 40, 40, 40, 40 ms: 230 ms. A fixed 10 ms would take 70 ms, and
    // doubling without the cap at least 1,270 ms.
    assert!(elapsed >= Duration::from_millis(230), "{elapsed:?}");
    assert!(elapsed < Duration::from_millis(1200), "{elapsed:?}");
}

#[tokio::test]
async fn failed_export_carries_the_reason_and_is_permanent() {
    let stand_in = BenchlingStandIn::start(CLIENT_ID, SECRET);
    stand_in.push_task(TaskScript::Fail {
        running: 1,
        message: "Export failed".to_owned(),
        errors: vec!["entry is locked".to_owned()],
    });

    let err = run_export(
        &client(&stand_in),
        &entry_id(),
        &fast(Duration::from_secs(10)),
    )
    .await
    .unwrap_err();

    match &err {
        ExportError::Benchling(BenchlingError::ExportFailed { message, .. }) => {
            assert_eq!(message, "Export failed; entry is locked");
        }
        other => panic!("unexpected error: {other:?}"),
    }
    assert!(err.to_string().contains("entry is locked"), "{err}");
    assert!(err.is_permanent());
}

#[tokio::test]
async fn export_still_running_at_the_deadline_is_a_transient_error() {
    let stand_in = BenchlingStandIn::start(CLIENT_ID, SECRET);
    stand_in.push_task(TaskScript::Succeed {
        running: 100_000,
        download: "export.zip".to_owned(),
    });

    let started = Instant::now();
    let err = run_export(
        &client(&stand_in),
        &entry_id(),
        &fast(Duration::from_millis(200)),
    )
    .await
    .unwrap_err();
    let elapsed = started.elapsed();

    assert!(
        matches!(err, ExportError::DeadlineExceeded { .. }),
        "{err:?}"
    );
    assert!(!err.is_permanent());
    assert!(elapsed >= Duration::from_millis(200), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(2), "{elapsed:?}");
    assert!(task_polls(&stand_in) >= 2);
}

#[tokio::test]
async fn a_503_burst_while_polling_is_retried_through() {
    let stand_in = BenchlingStandIn::start(CLIENT_ID, SECRET);
    stand_in.push_task(TaskScript::Succeed {
        running: 1,
        download: "export.zip".to_owned(),
    });
    let client = client(&stand_in);
    let entry = entry_id();
    let options = ExportOptions {
        first_poll: Duration::from_millis(300),
        ..fast(Duration::from_secs(10))
    };

    // Inject once the export has started, so the burst hits the first poll, not the start.
    let (result, ()) = tokio::join!(run_export(&client, &entry, &options), async {
        while stand_in.requests_to("POST", "/api/v2/exports").is_empty() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        stand_in.inject(Fault::Status(503), 3);
    });

    assert_eq!(
        result.unwrap().as_str(),
        stand_in.download_url("export.zip")
    );
    // Three 503s, RUNNING, SUCCEEDED.
    assert_eq!(task_polls(&stand_in), 5);
}

#[tokio::test]
async fn download_arrives_byte_identical_and_alone() {
    let stand_in = BenchlingStandIn::start(CLIENT_ID, SECRET);
    let body = pattern(3 * 1024 * 1024, 7);
    stand_in.add_download("export.zip", body.clone());
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("export.zip");
    let url = Url::parse(&stand_in.download_url("export.zip")).unwrap();

    let written = download(&http(), &url, &dest, &DownloadLimits::default())
        .await
        .unwrap();

    let on_disk = std::fs::read(&dest).unwrap();
    assert_eq!(written, 3 * 1024 * 1024);
    assert_eq!(on_disk.len(), body.len());
    assert_eq!(
        digest(&SHA256, &on_disk).as_ref(),
        digest(&SHA256, &body).as_ref()
    );
    let files: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(files.len(), 1, "only the destination is written");
}

#[tokio::test]
async fn insecure_urls_are_refused_without_a_request() {
    let stand_in = BenchlingStandIn::start(CLIENT_ID, SECRET);
    // Every request this client makes would reach the stand-in, as a proxy.
    let proxied = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .proxy(reqwest::Proxy::all(stand_in.url()).unwrap())
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("export.zip");

    for raw in [
        "http://example.com/x",
        "http://10.0.0.1/x?X-Amz-Signature=secret",
        "ftp://127.0.0.1/x",
    ] {
        let url = Url::parse(raw).unwrap();
        let err = download(&proxied, &url, &dest, &limits(1024))
            .await
            .unwrap_err();
        assert!(
            matches!(err, DownloadError::InsecureUrl { .. }),
            "{raw}: {err:?}"
        );
        assert!(err.is_permanent());
        assert!(!err.to_string().contains("secret"), "{err}");
    }
    assert!(stand_in.requests().is_empty());
    assert!(!dest.exists());
}

#[tokio::test]
async fn announced_size_over_the_limit_is_refused_before_the_body() {
    let stand_in = BenchlingStandIn::start(CLIENT_ID, SECRET);
    stand_in.add_download("big.zip", pattern(64 * 1024, 7));
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("export.zip");
    let url = Url::parse(&stand_in.download_url("big.zip")).unwrap();

    let err = download(&http(), &url, &dest, &limits(1024))
        .await
        .unwrap_err();

    assert!(
        matches!(err, DownloadError::TooLarge { limit: 1024, .. }),
        "{err:?}"
    );
    assert!(err.is_permanent());
    assert!(!dest.exists());
}

#[tokio::test]
async fn body_over_the_limit_while_streaming_fails_and_leaves_no_file() {
    let (head, body) = chunked(256 * 1024);
    let base = serve_once(head, body).await;
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("export.zip");
    let url = Url::parse(&format!("{base}/export.zip?X-Amz-Signature=secret")).unwrap();

    let err = download(&http(), &url, &dest, &limits(64 * 1024))
        .await
        .unwrap_err();

    assert!(
        matches!(err, DownloadError::TooLarge { limit: 65_536, .. }),
        "{err:?}"
    );
    assert!(err.is_permanent());
    assert!(!err.to_string().contains("secret"), "{err}");
    assert!(!dest.exists(), "the partial file is removed");
}

#[tokio::test]
async fn chunked_body_within_the_limit_is_written_whole() {
    let (head, body) = chunked(100 * 1024);
    let base = serve_once(head, body).await;
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("export.zip");
    let url = Url::parse(&format!("{base}/export.zip")).unwrap();

    let written = download(&http(), &url, &dest, &limits(100 * 1024))
        .await
        .unwrap();

    assert_eq!(written, 100 * 1024);
    assert_eq!(std::fs::read(&dest).unwrap(), pattern(100 * 1024, 7));
}

#[tokio::test]
async fn redirects_are_refused() {
    let head = "HTTP/1.1 302 Found\r\nlocation: http://169.254.169.254/latest/meta-data?token=secret\r\ncontent-length: 0\r\n\r\n";
    let base = serve_once(head.to_owned(), Vec::new()).await;
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("export.zip");
    let url = Url::parse(&format!("{base}/export.zip")).unwrap();

    let err = download(&http(), &url, &dest, &limits(1024))
        .await
        .unwrap_err();

    match &err {
        DownloadError::Redirected { location, .. } => {
            assert_eq!(location, "http://169.254.169.254/latest/meta-data");
        }
        other => panic!("unexpected error: {other:?}"),
    }
    assert!(err.is_permanent());
    assert!(!dest.exists());
}

#[tokio::test]
async fn expired_url_404_is_transient_and_masked() {
    let stand_in = BenchlingStandIn::start(CLIENT_ID, SECRET);
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("export.zip");
    let url = Url::parse(&format!(
        "{}?X-Amz-Signature=secret",
        stand_in.download_url("gone.zip")
    ))
    .unwrap();

    let err = download(&http(), &url, &dest, &limits(1024))
        .await
        .unwrap_err();

    assert!(
        matches!(err, DownloadError::Status { status: 404, .. }),
        "{err:?}"
    );
    assert!(!err.is_permanent());
    assert!(!err.to_string().contains("secret"), "{err}");
    assert!(!dest.exists());
}
