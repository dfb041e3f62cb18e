//! The ceilings the exporter is compared with, measured in the same run on the same bytes: what
//! the target can take with nothing in front of it.
//!
//! - S3: the members, already extracted to disk, sent by parallel plain `PutObject`s (one per
//!   member, as many at once as the exporter's uploads) to a fresh bucket. No download, no
//!   decompression, no multipart.
//! - Directory: `unzip` of the archive into a fresh directory: download and uploads excluded,
//!   decompression and writing included, no fsync.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::ChecksumAlgorithm;
use bw_testkit::moto::Moto;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::exporter::Setup;
use crate::shapes::{self, Shape};
use crate::sync_disks;
use bw_loadgen::service_bench::buckets;
use bw_loadgen::service_bench::procfs::CpuMeter;

/// The key prefix the ceiling writes under: where the exporter puts the fixture entry's files.
const PREFIX: &str = "benchling/EXP25000007/";

/// One ceiling measurement.
#[derive(Clone, Copy, Debug)]
pub struct Ceiling {
    /// The timed stretch.
    pub elapsed: Duration,
    /// CPU moto used meanwhile (S3 only, when its process was found).
    pub moto_cpu: Option<Duration>,
}

/// Uploads the `files` (paths and their member names) with `concurrency` PUTs in flight to a
/// fresh bucket, timed from the first PUT to the last completion. The bucket is checked and
/// removed afterwards.
pub async fn s3_puts(
    setup: &Setup,
    shape: Shape,
    files: &[(PathBuf, String)],
    concurrency: usize,
) -> anyhow::Result<Ceiling> {
    let bucket = Moto::unique_name("ceiling");
    setup.moto.create_bucket(&bucket).await;
    let ceiling = put_all(setup, &bucket, files, concurrency).await?;
    let (count, bytes) = buckets::usage(&setup.s3, &bucket, PREFIX).await?;
    shapes::check(shape, "the ceiling bucket", count, bytes)?;
    buckets::remove(&setup.s3, &bucket).await?;
    Ok(ceiling)
}

async fn put_all(
    setup: &Setup,
    bucket: &str,
    files: &[(PathBuf, String)],
    concurrency: usize,
) -> anyhow::Result<Ceiling> {
    sync_disks()?;
    let slots = Arc::new(Semaphore::new(concurrency.max(1)));
    let mut puts = JoinSet::new();
    let moto_meter = CpuMeter::start(setup.moto_pid);
    let started = Instant::now();
    for (path, name) in files {
        let permit = Arc::clone(&slots).acquire_owned().await?;
        let request = setup
            .s3
            .put_object()
            .bucket(bucket)
            .key(format!("{PREFIX}{name}"))
            .content_type("application/octet-stream")
            // As the exporter's uploads do, so both send the same bytes with the same trailer.
            .checksum_algorithm(ChecksumAlgorithm::Crc32);
        let path = path.clone();
        puts.spawn(async move {
            let body = ByteStream::from_path(&path)
                .await
                .with_context(|| format!("reading {}", path.display()))?;
            request.body(body).send().await.context("PutObject")?;
            drop(permit);
            anyhow::Ok(())
        });
        // Collect finished PUTs as we go, so the first failure stops the run.
        while let Some(done) = puts.try_join_next() {
            done??;
        }
    }
    while let Some(done) = puts.join_next().await {
        done??;
    }
    Ok(Ceiling {
        elapsed: started.elapsed(),
        moto_cpu: moto_meter.and_then(|meter| meter.used()),
    })
}

/// Times `unzip -q -o zip -d <fresh dir>`; the directory is checked and removed afterwards.
pub fn unzip(shape: Shape, zip: &Path, dest: &Path) -> anyhow::Result<Ceiling> {
    let _ = fs::remove_dir_all(dest);
    sync_disks()?;
    let started = Instant::now();
    shapes::unzip(zip, dest)?;
    let elapsed = started.elapsed();
    let files = shapes::files_below(dest)?;
    let bytes = files.iter().map(|(_, size)| size).sum();
    shapes::check(shape, "the unzip directory", files.len(), bytes)?;
    fs::remove_dir_all(dest).with_context(|| format!("removing {}", dest.display()))?;
    Ok(Ceiling {
        elapsed,
        moto_cpu: None,
    })
}
