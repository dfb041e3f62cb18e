//! Pre-signed webhook requests for wrk.
//!
//! Signing is done ahead of the run so the load generator spends no CPU on it, and every
//! request is distinct: its own `webhook-id` (a repeated id would be answered from the replay
//! window without verification or queueing), its own event id, and an entry from a pool of
//! [`ENTRIES`] (so the FIFO queues see many message groups, as with real tenants).
//!
//! File format, read by `scripts/bench/signed.lua`: `{prefix}.{k}` holds slice `k` of
//! `slices` (request `i` goes to slice `i % slices`, one slice per wrk thread, so no thread
//! sends another's ids). Each record is a complete raw HTTP/1.1 request followed by `"\n\n"`.
//! That separator cannot occur inside a record: header lines end in `"\r\n"` and the body is
//! compact JSON, which has no raw newline.

use std::fs::File;
use std::io::{BufWriter, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::Context as _;
use bw_testkit::signer::{SigningKey, now_unix};
use serde_json::Value;

/// The webhook every request carries, with its ids changed per request.
pub const FIXTURE: &str = include_str!("../../fixtures/benchling-events/entry-updated.json");

/// How many distinct entries (FIFO message groups) the requests spread over.
pub const ENTRIES: usize = 1_000;

/// Requests signed per unit of work; bounds the signer's memory to a few MiB whatever `count`.
const CHUNK: usize = 1_024;

/// What to write and where.
#[derive(Clone, Debug)]
pub struct RequestSet {
    /// How many requests in total.
    pub count: usize,
    /// How many slice files (one per wrk thread).
    pub slices: usize,
    /// The slice files are `{prefix}.0`, `{prefix}.1`, ….
    pub prefix: PathBuf,
    /// The ingress port, for the `Host` header.
    pub port: u16,
    /// The app definition the body names (the one the JWKS stand-in serves).
    pub app_definition_id: String,
}

impl RequestSet {
    /// Signs `count` requests with `key`, stamped now, and writes the slice files. Each file
    /// appears under its final name only once complete, so a script can wait for it.
    pub fn write(&self, key: &SigningKey) -> anyhow::Result<()> {
        let template = self.template()?;
        let timestamp = now_unix();
        let slices = self.slices.max(1);
        let writers = (0..slices)
            .map(|k| -> anyhow::Result<_> {
                let path = partial(&self.slice_path(k));
                let file =
                    File::create(&path).with_context(|| format!("creating {}", path.display()))?;
                Ok(Mutex::new(BufWriter::new(file)))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let next_chunk = AtomicUsize::new(0);
        let workers = std::thread::available_parallelism().map_or(1, usize::from);
        std::thread::scope(|scope| {
            let handles: Vec<_> = (0..workers)
                .map(|_| {
                    scope.spawn(|| -> anyhow::Result<()> {
                        let mut buffers = vec![Vec::new(); slices];
                        loop {
                            let start = next_chunk.fetch_add(1, Ordering::Relaxed) * CHUNK;
                            if start >= self.count {
                                return Ok(());
                            }
                            for i in start..(start + CHUNK).min(self.count) {
                                let record = self.record(key, &template, timestamp, i)?;
                                buffers[i % slices].extend_from_slice(&record);
                            }
                            for (writer, buffer) in writers.iter().zip(&mut buffers) {
                                let mut writer = writer.lock().unwrap_or_else(|e| e.into_inner());
                                writer.write_all(&buffer[..])?;
                                buffer.clear();
                            }
                        }
                    })
                })
                .collect();
            handles.into_iter().try_for_each(|h| {
                h.join()
                    .unwrap_or_else(|_| anyhow::bail!("signer panicked"))
            })
        })?;
        for (k, writer) in writers.into_iter().enumerate() {
            let writer = writer.into_inner().unwrap_or_else(|e| e.into_inner());
            writer
                .into_inner()
                .map_err(|e| e.into_error())?
                .sync_all()?;
            let path = self.slice_path(k);
            std::fs::rename(partial(&path), &path)
                .with_context(|| format!("renaming to {}", path.display()))?;
        }
        Ok(())
    }

    fn slice_path(&self, k: usize) -> PathBuf {
        let mut name = self.prefix.clone().into_os_string();
        name.push(format!(".{k}"));
        PathBuf::from(name)
    }

    fn template(&self) -> anyhow::Result<Value> {
        let mut body: Value = serde_json::from_str(FIXTURE).context("reading the fixture")?;
        body["appDefinition"]["id"] = Value::from(self.app_definition_id.as_str());
        Ok(body)
    }

    /// Request `i`: ids unique to this signing run (the timestamp is part of them, so two runs
    /// against one long-lived queue never collide in FIFO deduplication).
    fn record(
        &self,
        key: &SigningKey,
        template: &Value,
        timestamp: i64,
        i: usize,
    ) -> anyhow::Result<Vec<u8>> {
        let mut body = template.clone();
        body["message"]["id"] = Value::from(format!("evt_bench_{timestamp}_{i}"));
        body["message"]["resourceId"] = Value::from(format!("etr_bench_{}", i % ENTRIES));
        let body = serde_json::to_vec(&body)?;
        let id = format!("msg_bench_{timestamp}_{i}");
        let headers = key.sign(&id, timestamp, &body);
        let mut record = format!(
            "POST /event HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\ncontent-type: application/json\r\n\
             content-length: {len}\r\nwebhook-id: {id}\r\nwebhook-timestamp: {ts}\r\n\
             webhook-signature: {sig}\r\n\r\n",
            port = self.port,
            len = body.len(),
            id = headers.id,
            ts = headers.timestamp,
            sig = headers.signature,
        )
        .into_bytes();
        record.extend_from_slice(&body);
        record.extend_from_slice(b"\n\n");
        Ok(record)
    }
}

fn partial(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".partial");
    PathBuf::from(name)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn every_request_is_distinct_and_in_one_slice() {
        let dir = std::env::temp_dir().join(format!("webhook-bench-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let set = RequestSet {
            count: 2_500,
            slices: 2,
            prefix: dir.join("requests"),
            port: 8080,
            app_definition_id: "appdef_bench".into(),
        };
        set.write(&SigningKey::generate("k")).unwrap();
        let mut ids = HashSet::new();
        for k in 0..2 {
            let text = std::fs::read_to_string(set.slice_path(k)).unwrap();
            let records: Vec<&str> = text.split_terminator("\n\n").collect();
            assert_eq!(records.len(), 1_250);
            for record in records {
                let (head, body) = record.split_once("\r\n\r\n").unwrap();
                let id = head
                    .lines()
                    .find_map(|l| l.strip_prefix("webhook-id: "))
                    .unwrap();
                let index: usize = id.rsplit('_').next().unwrap().trim().parse().unwrap();
                assert_eq!(index % 2, k);
                assert!(ids.insert(id.trim().to_owned()), "{id} sent twice");
                let length = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length: "))
                    .unwrap();
                assert_eq!(length.trim().parse::<usize>().unwrap(), body.len());
                let body: Value = serde_json::from_str(body).unwrap();
                assert_eq!(body["appDefinition"]["id"], "appdef_bench");
            }
        }
        assert_eq!(ids.len(), 2_500);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
