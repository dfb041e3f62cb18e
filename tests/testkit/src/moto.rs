//! One moto server (the AWS emulator) per test process, started on first use, and helpers to
//! create SQS queues and S3 buckets in it.
//!
//! Tests share the server, so they must name their resources with [`Moto::unique_name`].

use std::ffi::OsString;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use aws_sdk_sqs::types::QueueAttributeName;

/// The region every helper uses; moto keeps regions apart.
const REGION: &str = "us-east-1";

/// How long moto may take to start (about 0.4 s idle, more while cargo builds).
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);

const MISSING: &str = "moto_server not found: run ./scripts/test, or pip install 'moto[server]'";

/// A running moto server. It lives as long as the test process and is killed with it.
#[derive(Debug)]
pub struct Moto {
    endpoint: String,
}

impl Moto {
    /// The process-wide server, started on first use: `$MOTO_SERVER` if set, else `moto_server`
    /// from `PATH`.
    ///
    /// # Panics
    ///
    /// If moto cannot be started or does not answer within 30 seconds.
    pub fn shared() -> &'static Moto {
        static SHARED: OnceLock<Moto> = OnceLock::new();
        SHARED.get_or_init(Moto::start)
    }

    fn start() -> Moto {
        let program = std::env::var_os("MOTO_SERVER").unwrap_or_else(|| "moto_server".into());
        let (port_sender, port) = mpsc::channel();
        thread::Builder::new()
            .name("moto-server".into())
            .spawn(move || run_server(program, port_sender))
            .expect("cannot start the moto-server thread");
        let port = match port.recv_timeout(STARTUP_TIMEOUT) {
            Ok(Ok(port)) => port,
            Ok(Err(message)) => panic!("{message}"),
            Err(RecvTimeoutError::Timeout) => {
                panic!("moto_server did not print its port within {STARTUP_TIMEOUT:?}")
            }
            Err(RecvTimeoutError::Disconnected) => {
                panic!("moto_server exited before printing its port; run it by hand to see why")
            }
        };
        wait_until_ready(port);
        Moto {
            endpoint: format!("http://127.0.0.1:{port}"),
        }
    }

    /// The server's base URL, e.g. `http://127.0.0.1:41234`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// AWS SDK configuration for the server: region us-east-1, static credentials `test`/`test`.
    pub async fn sdk_config(&self) -> aws_config::SdkConfig {
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .endpoint_url(&self.endpoint)
            .region(aws_config::Region::new(REGION))
            .credentials_provider(aws_sdk_sqs::config::Credentials::new(
                "test", "test", None, None, "moto",
            ))
            .load()
            .await
    }

    /// An SQS client for the server. Make one per test: the SDK's pooled connections belong to
    /// the runtime that opened them, and each `#[tokio::test]` has its own.
    pub async fn sqs_client(&self) -> aws_sdk_sqs::Client {
        aws_sdk_sqs::Client::new(&self.sdk_config().await)
    }

    /// An S3 client for the server, with path-style addressing (one host serves every bucket).
    /// Make one per test, as for [`Moto::sqs_client`].
    pub async fn s3_client(&self) -> aws_sdk_s3::Client {
        aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&self.sdk_config().await)
                .force_path_style(true)
                .build(),
        )
    }

    /// Creates an S3 bucket named `name` (use [`Moto::unique_name`]).
    ///
    /// # Panics
    ///
    /// If moto refuses the bucket.
    pub async fn create_bucket(&self, name: &str) {
        self.s3_client()
            .await
            .create_bucket()
            .bucket(name)
            .send()
            .await
            .unwrap_or_else(|error| panic!("cannot create bucket {name}: {error:?}"));
    }

    /// Puts an object into `bucket`.
    ///
    /// # Panics
    /// If moto refuses it.
    pub async fn put_object(&self, bucket: &str, key: &str, body: Vec<u8>) {
        self.s3_client()
            .await
            .put_object()
            .bucket(bucket)
            .key(key)
            .body(body.into())
            .send()
            .await
            .unwrap_or_else(|error| panic!("cannot put {key}: {error:?}"));
    }

    /// How many multipart uploads to `bucket` were begun and neither completed nor aborted.
    ///
    /// # Panics
    /// If moto cannot list them.
    pub async fn open_multipart_uploads(&self, bucket: &str) -> usize {
        self.s3_client()
            .await
            .list_multipart_uploads()
            .bucket(bucket)
            .send()
            .await
            .unwrap_or_else(|error| panic!("cannot list the uploads to {bucket}: {error:?}"))
            .uploads()
            .len()
    }

    /// The bytes of an object, or `None` when it cannot be read.
    pub async fn get_object(&self, bucket: &str, key: &str) -> Option<Vec<u8>> {
        let object = self
            .s3_client()
            .await
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .ok()?;
        Some(object.body.collect().await.ok()?.into_bytes().to_vec())
    }

    /// Environment for a spawned service binary so that its SDK clients use this server.
    pub fn env(&self) -> Vec<(String, String)> {
        [
            ("AWS_ENDPOINT_URL", self.endpoint.as_str()),
            ("AWS_REGION", REGION),
            ("AWS_ACCESS_KEY_ID", "test"),
            ("AWS_SECRET_ACCESS_KEY", "test"),
        ]
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect()
    }

    /// Hold for the whole test when it queues Athena results: moto answers the next query of
    /// the whole server with the result queued last, so such tests of one process take turns.
    pub async fn athena_turn(&self) -> tokio::sync::MutexGuard<'static, ()> {
        static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
        TURN.lock().await
    }

    /// Queues one Athena query result (the first row is the header): moto answers the next
    /// query execution of the whole server with it.
    ///
    /// # Panics
    ///
    /// If moto refuses it.
    pub async fn queue_athena_result(&self, rows: &[&[&str]]) {
        let rows: Vec<serde_json::Value> = rows
            .iter()
            .map(|row| {
                let cells: Vec<_> = row
                    .iter()
                    .map(|v| serde_json::json!({"VarCharValue": v}))
                    .collect();
                serde_json::json!({"Data": cells})
            })
            .collect();
        let status = reqwest::Client::new()
            .post(format!(
                "{}/moto-api/static/athena/query-results",
                self.endpoint()
            ))
            .json(&serde_json::json!({"results": [{"rows": rows, "column_info": []}]}))
            .send()
            .await
            .expect("moto answers")
            .status();
        assert_eq!(status, 201, "moto refused the Athena result");
    }

    /// `prefix` plus a short random suffix, so resources of tests sharing the server don't collide.
    pub fn unique_name(prefix: &str) -> String {
        let suffix = uuid::Uuid::new_v4().simple().to_string();
        format!("{prefix}-{}", &suffix[..8])
    }

    /// Creates an SQS queue and returns its URL. A FIFO queue gets the `.fifo` suffix if `name`
    /// lacks it, and content-based deduplication. `dead_letter` is the dead-letter queue's ARN
    /// and the max receive count.
    ///
    /// # Panics
    ///
    /// If moto refuses the queue.
    pub async fn create_queue(
        &self,
        name: &str,
        fifo: bool,
        visibility_timeout_secs: u32,
        dead_letter: Option<(String, u32)>,
    ) -> String {
        let name = if fifo && !name.ends_with(".fifo") {
            format!("{name}.fifo")
        } else {
            name.to_owned()
        };
        let mut request = self
            .sqs_client()
            .await
            .create_queue()
            .queue_name(&name)
            .attributes(
                QueueAttributeName::VisibilityTimeout,
                visibility_timeout_secs.to_string(),
            );
        if fifo {
            request = request
                .attributes(QueueAttributeName::FifoQueue, "true")
                .attributes(QueueAttributeName::ContentBasedDeduplication, "true");
        }
        if let Some((arn, max_receives)) = dead_letter {
            request = request.attributes(
                QueueAttributeName::RedrivePolicy,
                format!(r#"{{"deadLetterTargetArn":"{arn}","maxReceiveCount":"{max_receives}"}}"#),
            );
        }
        let output = request
            .send()
            .await
            .unwrap_or_else(|error| panic!("cannot create queue {name}: {error:?}"));
        output
            .queue_url
            .unwrap_or_else(|| panic!("moto returned no URL for queue {name}"))
    }

    /// Creates a queue and its dead-letter queue `{name}-dlq` (same kind), with messages moving
    /// to it after `max_receives` receives. Returns (queue URL, dead-letter queue URL).
    ///
    /// # Panics
    ///
    /// If moto refuses either queue.
    pub async fn create_queue_with_dead_letter(
        &self,
        name: &str,
        fifo: bool,
        visibility_timeout_secs: u32,
        max_receives: u32,
    ) -> (String, String) {
        let base = name.strip_suffix(".fifo").unwrap_or(name);
        let dead_letter_url = self
            .create_queue(&format!("{base}-dlq"), fifo, visibility_timeout_secs, None)
            .await;
        let attributes = self
            .sqs_client()
            .await
            .get_queue_attributes()
            .queue_url(&dead_letter_url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .unwrap_or_else(|error| panic!("cannot read the ARN of {base}-dlq: {error:?}"));
        let arn = attributes
            .attributes
            .and_then(|mut attributes| attributes.remove(&QueueAttributeName::QueueArn))
            .unwrap_or_else(|| panic!("moto returned no ARN for {base}-dlq"));
        let url = self
            .create_queue(
                base,
                fifo,
                visibility_timeout_secs,
                Some((arn, max_receives)),
            )
            .await;
        (url, dead_letter_url)
    }
}

/// The FIFO queues of a worker stage: its input queue with a dead-letter queue, and the render
/// and canvas queues it writes to.
#[derive(Clone, Debug)]
pub struct WorkerQueues {
    /// `EXPORT_QUEUE_URL`.
    pub export: String,
    /// The export queue's dead-letter queue.
    pub export_dead_letter: String,
    /// `RENDER_QUEUE_URL`.
    pub render: String,
    /// `CANVAS_QUEUE_URL`.
    pub canvas: String,
}

impl Moto {
    /// Creates uniquely named [`WorkerQueues`]: the export queue with the given visibility
    /// timeout and receives before dead-lettering, the others with 30 s and none.
    ///
    /// # Panics
    ///
    /// If moto refuses a queue.
    pub async fn create_worker_queues(
        &self,
        visibility_timeout_secs: u32,
        max_receives: u32,
    ) -> WorkerQueues {
        let (export, export_dead_letter) = self
            .create_queue_with_dead_letter(
                &Self::unique_name("export"),
                true,
                visibility_timeout_secs,
                max_receives,
            )
            .await;
        WorkerQueues {
            export,
            export_dead_letter,
            render: self
                .create_queue(&Self::unique_name("render"), true, 30, None)
                .await,
            canvas: self
                .create_queue(&Self::unique_name("canvas"), true, 30, None)
                .await,
        }
    }
}

/// Starts moto and then parks forever: `PR_SET_PDEATHSIG` fires when the *thread* that spawned
/// the child exits, so this thread must last as long as the process.
/// The Python that runs moto (`.venv/bin/python3` under `./scripts/test`), which also has the
/// Python tools the tests drive: quilt3 and boto3. Found beside `$MOTO_SERVER` or the
/// `moto_server` on `PATH`; plain `python3` otherwise.
pub fn python() -> std::path::PathBuf {
    let moto = std::env::var_os("MOTO_SERVER")
        .map(std::path::PathBuf::from)
        .or_else(|| {
            std::env::split_paths(&std::env::var_os("PATH")?)
                .map(|dir| dir.join("moto_server"))
                .find(|path| path.is_file())
        });
    moto.and_then(|path| Some(path.parent()?.join("python3")))
        .filter(|python| python.is_file())
        .unwrap_or_else(|| "python3".into())
}

fn run_server(program: OsString, port: mpsc::Sender<Result<u16, String>>) {
    let parent = std::process::id();
    let mut command = Command::new(&program);
    command
        .args(["-H", "127.0.0.1", "-p", "0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: the closure runs between fork and exec and makes only async-signal-safe calls
    // without allocating.
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(io::Error::last_os_error());
            }
            // The test process may have exited before the death signal was armed.
            if u32::try_from(libc::getppid()) != Ok(parent) {
                return Err(io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        });
    }
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(error) => {
            let message = if error.kind() == io::ErrorKind::NotFound {
                MISSING.to_owned()
            } else {
                format!("cannot start {}: {error}", program.to_string_lossy())
            };
            // The receiver only goes away if the test already gave up.
            let _ = port.send(Err(message));
            return;
        }
    };
    // Werkzeug prints the address on stderr, but look at both streams. Both must be drained
    // for good: moto logs every request and would block on a full pipe.
    let outputs: [Option<Box<dyn Read + Send>>; 2] = [
        child
            .stdout
            .take()
            .map(|out| Box::new(out) as Box<dyn Read + Send>),
        child
            .stderr
            .take()
            .map(|err| Box::new(err) as Box<dyn Read + Send>),
    ];
    for output in outputs.into_iter().flatten() {
        let port = port.clone();
        thread::spawn(move || scan_for_port(output, &port));
    }
    drop(port);
    loop {
        thread::park();
    }
}

/// Reads a moto output stream to its end, reporting the port from
/// ` * Running on http://127.0.0.1:PORT`.
fn scan_for_port(output: Box<dyn Read + Send>, port: &mpsc::Sender<Result<u16, String>>) {
    let mut output = BufReader::new(output);
    let mut line = Vec::new();
    while output
        .read_until(b'\n', &mut line)
        .is_ok_and(|read| read > 0)
    {
        if let Some(found) = parse_port(&String::from_utf8_lossy(&line)) {
            let _ = port.send(Ok(found));
        }
        line.clear();
    }
}

fn parse_port(line: &str) -> Option<u16> {
    let (_, address) = line.split_once("Running on http://127.0.0.1:")?;
    let digits = address.trim_start();
    let end = digits
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(digits.len());
    digits[..end].parse().ok()
}

/// Waits until `GET /moto-api/` answers 200.
fn wait_until_ready(port: u16) {
    let address = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + STARTUP_TIMEOUT;
    while Instant::now() < deadline {
        if answers(address) {
            return;
        }
        thread::sleep(Duration::from_millis(50));
    }
    panic!("moto_server on port {port} did not answer GET /moto-api/ within {STARTUP_TIMEOUT:?}");
}

fn answers(address: SocketAddr) -> bool {
    let probe = || -> io::Result<bool> {
        let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(1))?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        stream.write_all(b"GET /moto-api/ HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")?;
        let mut status = String::new();
        BufReader::new(stream).read_line(&mut status)?;
        Ok(status.split_whitespace().nth(1) == Some("200"))
    };
    probe().unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_is_parsed_from_werkzeug_banner() {
        assert_eq!(
            parse_port(" * Running on http://127.0.0.1:37583\n"),
            Some(37583)
        );
        assert_eq!(
            parse_port(" * Running on http://127.0.0.1:5000 (Press CTRL+C to quit)"),
            Some(5000)
        );
        assert_eq!(
            parse_port("127.0.0.1 - - \"GET /moto-api/ HTTP/1.1\" 200 -"),
            None
        );
    }
}
