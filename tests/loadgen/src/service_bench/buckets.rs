//! Bucket chores around the timed runs: counting what landed, and removing a run's bucket so
//! moto does not hold every run's gigabytes until the end.

use anyhow::Context as _;
use aws_sdk_s3::Client;
use aws_sdk_s3::types::{Delete, ObjectIdentifier};

/// The number of objects below `prefix` in `bucket` and their total size.
pub async fn usage(s3: &Client, bucket: &str, prefix: &str) -> anyhow::Result<(usize, u64)> {
    let mut count = 0;
    let mut bytes = 0;
    let mut pages = s3
        .list_objects_v2()
        .bucket(bucket)
        .prefix(prefix)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.with_context(|| format!("listing s3://{bucket}/{prefix}"))?;
        for object in page.contents() {
            count += 1;
            bytes += object.size().unwrap_or(0).max(0) as u64;
        }
    }
    Ok((count, bytes))
}

/// Deletes every object of `bucket`, then the bucket.
pub async fn remove(s3: &Client, bucket: &str) -> anyhow::Result<()> {
    loop {
        let page = s3
            .list_objects_v2()
            .bucket(bucket)
            .send()
            .await
            .with_context(|| format!("listing s3://{bucket}"))?;
        let keys: Vec<ObjectIdentifier> = page
            .contents()
            .iter()
            .filter_map(|object| object.key())
            .map(|key| ObjectIdentifier::builder().key(key).build())
            .collect::<Result<_, _>>()?;
        if keys.is_empty() {
            break;
        }
        s3.delete_objects()
            .bucket(bucket)
            .delete(Delete::builder().set_objects(Some(keys)).build()?)
            .send()
            .await
            .with_context(|| format!("emptying s3://{bucket}"))?;
    }
    s3.delete_bucket()
        .bucket(bucket)
        .send()
        .await
        .with_context(|| format!("deleting s3://{bucket}"))?;
    Ok(())
}
