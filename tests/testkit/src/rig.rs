//! What every worker's end-to-end rig starts from: a fresh bucket on the shared moto server, the
//! Benchling stand-in with its OAuth client, the secret file naming both, queue clients, and the
//! service itself running in this process until the rig stops it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use bw_config::{SecretSource, SecretWatch, SecretWatchOptions};
use bw_queue::{Queue, SqsQueue};
use bw_standin::benchling::{BenchlingStandIn, secret_json};
use bw_store::Buckets;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::moto::Moto;

/// A bucket, the Benchling stand-in and the secret file, on the shared moto server.
pub struct ServiceRig {
    /// The moto server.
    pub moto: &'static Moto,
    /// The bucket (the secret's `user_bucket`).
    pub bucket: String,
    /// The Benchling API stand-in.
    pub benchling: BenchlingStandIn,
    /// The secret file (`BenchlingSecret=file:…`).
    pub secret_path: PathBuf,
    sqs: aws_sdk_sqs::Client,
    _dir: tempfile::TempDir,
}

impl ServiceRig {
    /// A fresh rig whose bucket is named after `service`; the stand-in accepts `client_id` and
    /// `client_secret`, which the secret file holds.
    ///
    /// # Panics
    /// If moto refuses the bucket or the secret file cannot be written.
    pub async fn new(service: &str, client_id: &str, client_secret: &str) -> Self {
        let moto = Moto::shared();
        let bucket = Moto::unique_name(service);
        moto.create_bucket(&bucket).await;
        let benchling = BenchlingStandIn::start(client_id, client_secret);
        let dir = tempfile::tempdir().expect("a temporary directory");
        let secret_path = dir.path().join("secret.json");
        std::fs::write(&secret_path, secret_json(client_id, client_secret, &bucket))
            .expect("the secret file is written");
        Self {
            sqs: moto.sqs_client().await,
            moto,
            bucket,
            benchling,
            secret_path,
            _dir: dir,
        }
    }

    /// A queue client for the SQS queue at `url`.
    pub fn queue(&self, url: &str) -> Arc<dyn Queue> {
        Arc::new(SqsQueue::new(self.sqs.clone(), url))
    }

    /// The secret, watched from the rig's file.
    pub fn secret(&self) -> SecretWatch {
        SecretWatch::connect(
            Some(&SecretSource::File(self.secret_path.clone())),
            None,
            &SecretWatchOptions::default(),
        )
    }

    /// The buckets on moto's S3.
    pub async fn buckets(&self) -> Buckets {
        Buckets::S3(bw_store::s3_client(&self.moto.sdk_config().await))
    }
}

/// A worker service running in this process, stopped gracefully when dropped.
pub struct RunningService<E> {
    /// Where its probes answer.
    pub probes: SocketAddr,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<Result<(), E>>>,
}

impl<E: Send + 'static> RunningService<E> {
    /// Runs `service` over `connections`, its probes on a free loopback port.
    ///
    /// # Panics
    /// If no loopback port is free.
    pub async fn spawn<S>(service: S, connections: S::Connections) -> Self
    where
        S: bw_worker::Service<Error = E> + Send + Sync + 'static,
        S::Connections: Send + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a free loopback port");
        let probes = listener.local_addr().expect("a bound address");
        let (stop, stopped) = watch::channel(false);
        let task =
            tokio::spawn(
                async move { bw_worker::run(&service, connections, listener, stopped).await },
            );
        Self {
            probes,
            stop,
            task: Some(task),
        }
    }

    /// Stops the service gracefully and says how it ended.
    ///
    /// # Panics
    /// If the service panicked.
    pub async fn stop(mut self) -> Result<(), E> {
        let _ = self.stop.send(true);
        let task = self.task.take().expect("stopped once");
        task.await.expect("the service does not panic")
    }
}

impl<E> Drop for RunningService<E> {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}
