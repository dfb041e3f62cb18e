//! The crash soak: signed webhooks for many entries (updates, duplicate deliveries, replays of a
//! webhook id, canvas clicks, entries that do not exist) through the release binaries on moto,
//! while a chaos loop kills a random worker with SIGKILL and restarts it. At the end every entry
//! is packaged exactly once in effect per version (one manifest each), byte for byte as
//! exported, every source queue is empty, the export dead-letter queue holds exactly the jobs made to fail for good,
//! and no log holds a panic.
//!
//! The reduced size (100 webhooks, 20 entries, 5 kills) is the default; the full size is
//! `SOAK_WEBHOOKS=1000 SOAK_ENTRIES=200 SOAK_KILLS=30 cargo test -p bw-e2e --test it -- soak --nocapture`
//! (docs/reliability.md records the figures).
//!
//! Quilt's stand-in waits 3 s before building each announcement, as Quilt's packager may:
//! a prefix that changed meanwhile would be built under the older announcement (the defect
//! the soak's first CI run found, fixed by the exporter's wait for its turn).

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use bw_contracts::{ButtonAction, QueueName};
use bw_standin::archive::{build, deflated};
use bw_standin::benchling::ENTRY_FIXTURE;
use bw_testkit::sample::pattern;
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};
use serde_json::{Value, json};

use crate::processes::{Options, Process, System};
use crate::system::{assert_drained_within, bounded_by, click_on, entry_updated, sample};

/// The soak's size, from the environment (the reduced size by default).
#[derive(Clone, Copy, Debug)]
struct Size {
    webhooks: usize,
    entries: usize,
    kills: usize,
}

impl Size {
    fn from_env() -> Self {
        let read = |name: &str, default: usize| {
            std::env::var(name)
                .ok()
                .map(|v| {
                    v.parse()
                        .unwrap_or_else(|_| panic!("{name}={v} is not a count"))
                })
                .unwrap_or(default)
        };
        Self {
            webhooks: read("SOAK_WEBHOOKS", 100),
            entries: read("SOAK_ENTRIES", 20),
            kills: read("SOAK_KILLS", 5),
        }
    }
}

/// What the soak sent, for the checks and the report.
#[derive(Debug, Default)]
struct Sent {
    updates: usize,
    versions_bumped: usize,
    redelivered: usize,
    replayed: usize,
    clicks: usize,
    missing: Vec<String>,
    /// The final version (`modifiedAt`) of each entry that got at least one webhook.
    latest: BTreeMap<usize, String>,
    /// How long sending took.
    took: Duration,
}

fn entry_id(n: usize) -> String {
    format!("etr_soak{n:04}")
}

fn display_id(n: usize) -> String {
    format!("SOAK{n:04}")
}

fn canvas_id(n: usize) -> String {
    format!("cnvs_soak{n:04}")
}

fn modified_at(version: u32) -> String {
    let base = chrono::DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z").unwrap();
    (base + chrono::Duration::seconds(i64::from(version)))
        .to_utc()
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, false)
}

/// Entry `n`'s files, distinct per entry.
fn files(n: usize) -> Vec<(String, Vec<u8>)> {
    vec![
        (
            format!("data/{n}.csv"),
            format!("well,od\nA{n},0.{n}\n").into_bytes(),
        ),
        ("raw/trace.bin".to_owned(), pattern(20 * 1024 + n, n as u64)),
    ]
}

/// Serves entry `n` at `version`, with its own export and canvas.
fn serve_entry(system: &System, n: usize, version: u32) {
    let fixture: Value = serde_json::from_str(ENTRY_FIXTURE).unwrap();
    let mut entry = fixture["entry"].clone();
    entry["id"] = json!(entry_id(n));
    entry["displayId"] = json!(display_id(n));
    entry["name"] = json!(format!("soak entry {n}"));
    entry["modifiedAt"] = json!(modified_at(version));
    system.benchling.add_entry(entry);
}

/// Sends the workload: each webhook picks its kind at random (seeded, so a run can be
/// repeated), paced so the chaos loop's kills land while work is in flight.
async fn send(system: &System, size: Size, rng: &mut StdRng) -> Sent {
    let started = Instant::now();
    let mut sent = Sent::default();
    let mut versions = vec![0u32; size.entries];
    let mut delivered: Vec<(String, String, Value)> = Vec::new();
    for _ in 0..size.webhooks {
        let roll = rng.random_range(0..100);
        let n = rng.random_range(0..size.entries);
        if roll < 50 || delivered.is_empty() {
            if rng.random_bool(0.6) || !sent.latest.contains_key(&n) {
                versions[n] += 1;
                sent.versions_bumped += 1;
                serve_entry(system, n, versions[n]);
            }
            sent.latest.insert(n, modified_at(versions[n]));
            let (path, body) = ("/event".to_owned(), entry_updated(&entry_id(n)));
            let id = system.deliver_with_id("/event", &body, None).await;
            delivered.push((path, id, body));
            sent.updates += 1;
        } else if roll < 65 {
            // Benchling delivers the same webhook again under a new id.
            let (path, _, body) = delivered[rng.random_range(0..delivered.len())].clone();
            system.deliver_with_id(&path, &body, None).await;
            sent.redelivered += 1;
        } else if roll < 80 {
            // A replay of a webhook id already accepted: acknowledged, queued once.
            let (path, id, body) = delivered[rng.random_range(0..delivered.len())].clone();
            system.deliver_with_id(&path, &body, Some(&id)).await;
            sent.replayed += 1;
        } else if roll < 95 && sent.latest.contains_key(&n) {
            let action = if rng.random_bool(0.5) {
                ButtonAction::Update
            } else {
                ButtonAction::Main
            };
            let body = click_on(&canvas_id(n), &entry_id(n), action);
            let id = system.deliver_with_id("/canvas", &body, None).await;
            delivered.push(("/canvas".to_owned(), id, body));
            sent.clicks += 1;
        } else {
            // An entry Benchling does not have: its export fails for good.
            let missing = format!("etr_gone{:04}", sent.missing.len());
            system
                .deliver_with_id("/event", &entry_updated(&missing), None)
                .await;
            sent.missing.push(missing);
        }
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
    sent.took = started.elapsed();
    sent
}

/// The workers the chaos loop kills.
const WORKERS: [&str; 3] = ["exporter", "packager", "canvas"];

/// Kills a random worker every `every` until `kills` are done, restarting it at once: a crash
/// and the orchestrator's replacement.
async fn chaos(
    workers: &mut [(&'static str, Process)],
    kills: usize,
    every: Duration,
) -> Vec<&'static str> {
    let mut rng = StdRng::seed_from_u64(0xc4a05);
    let mut killed = Vec::new();
    for _ in 0..kills {
        tokio::time::sleep(every).await;
        let (name, victim) = &mut workers[rng.random_range(0..WORKERS.len())];
        victim.restart();
        killed.push(*name);
    }
    killed
}

/// Quilt's revisions of `package`, oldest first: each one's version and commit message (from
/// its manifest's header) and top hash.
async fn revisions(system: &System, package: &str) -> Vec<(String, String, String)> {
    let mark = format!("revision {package}@");
    let hashes: Vec<String> = system.processes["quilt-standin"]
        .log()
        .lines()
        .filter_map(|line| line.split_once(&mark))
        .map(|(_, rest)| rest.split(' ').next().unwrap_or_default().to_owned())
        .collect();
    let mut revisions = Vec::new();
    for hash in hashes {
        let manifest = system.object(&format!(".quilt/packages/{hash}")).await;
        let header: Value =
            serde_json::from_slice(manifest.split(|&b| b == b'\n').next().unwrap()).unwrap();
        let version = header["user_meta"]["modified_at"].as_str().unwrap_or("");
        let message = header["message"].as_str().unwrap_or("");
        revisions.push((version.to_owned(), hash, message.to_owned()));
    }
    revisions
}

/// Every line the exporter, the packager and Quilt's stand-in logged about `entry` or
/// `package`: what a failure needs, since the logs go with the run's temporary folder.
fn entry_story(system: &System, entry: &str, package: &str) -> String {
    let mut story = String::new();
    for process in ["exporter", "packager", "quilt-standin"] {
        story.push_str(&format!("\n--- {process} ---\n"));
        for line in system.processes[process].log().lines() {
            if line.contains(entry) || line.contains(package) {
                story.push_str(line);
                story.push('\n');
            }
        }
    }
    story
}

#[tokio::test(flavor = "multi_thread")]
async fn soak_crashes_lose_nothing_and_package_each_version_once() {
    let size = Size::from_env();
    // Sending, then draining at a worst case of half a second a webhook, then the checks.
    let limit = Duration::from_secs(300) + Duration::from_millis(size.webhooks as u64 * 600);
    bounded_by(limit, soak(size)).await;
}

async fn soak(size: Size) {
    let mut system = System::start(Options {
        quilt_build_delay: Duration::from_secs(3),
        ..Options::default()
    })
    .await;
    for n in 0..size.entries {
        let members: Vec<(String, Vec<u8>)> = files(n);
        let archive: Vec<_> = members
            .iter()
            .map(|(name, bytes)| (name.as_str(), deflated(), bytes.as_slice()))
            .collect();
        system
            .benchling
            .add_download(&format!("{}.zip", entry_id(n)), build(&archive));
        system.benchling.add_canvas(json!({
            "id": canvas_id(n), "resourceId": entry_id(n), "featureId": "quilt_entry",
            "blocks": [], "enabled": true, "sessionId": null,
        }));
    }

    let started = Instant::now();
    let mut rng = StdRng::seed_from_u64(0x5eed);
    // Kills spread over the sending (about 45 ms a webhook), at least two seconds apart.
    let sending = Duration::from_millis(size.webhooks as u64 * 45);
    let every = (sending / u32::try_from(size.kills.max(1)).unwrap()).max(Duration::from_secs(2));
    // The chaos loop owns the workers while it runs; the sender needs the system only shared.
    let mut workers: Vec<(&'static str, Process)> = WORKERS
        .iter()
        .map(|name| (*name, system.processes.remove(name).expect("a worker")))
        .collect();
    let (sent, killed) = tokio::join!(
        send(&system, size, &mut rng),
        chaos(&mut workers, size.kills, every)
    );
    system.processes.extend(workers);

    // Drained: every source queue empty, the export dead-letter queue holding exactly the
    // missing entries' jobs, the others empty.
    let limit = Duration::from_secs(120) + Duration::from_millis(size.webhooks as u64 * 500);
    let missing = sent.missing.len() as u64;
    assert_drained_within(&system, limit, |queue| {
        if queue == QueueName::EXPORT {
            missing
        } else {
            0
        }
    })
    .await;
    let drained_in = started.elapsed();

    // Each entry: its files as exported, each version in one manifest, the newest the entry's
    // last.
    let (mut versions, mut reannounced) = (0, 0);
    for (&n, latest) in &sent.latest {
        let package = format!("benchling/{}", display_id(n));
        for (name, bytes) in files(n) {
            let stored = system.object(&format!("{package}/{name}")).await;
            assert!(stored == bytes, "{package}/{name} differs from the export");
        }
        // Exactly once in effect: a version's revisions are all one manifest (one top hash).
        // The packager records an announcement right after sending it, so a worker killed
        // between the two announces the same message again, which Quilt builds into the same
        // top hash; a second job announcing the version would carry another commit message.
        let built = revisions(&system, &package).await;
        let mut manifests: BTreeMap<&String, BTreeSet<&String>> = BTreeMap::new();
        for (version, hash, _) in &built {
            manifests.entry(version).or_default().insert(hash);
        }
        assert!(
            manifests.values().all(|hashes| hashes.len() == 1),
            "{package}: a version packaged as two different revisions: {built:?}{}",
            entry_story(&system, &entry_id(n), &package)
        );
        reannounced += built.len() - manifests.len();
        let newest = *manifests.keys().max().expect("a revision");
        assert_eq!(
            chrono::DateTime::parse_from_rfc3339(newest).unwrap(),
            chrono::DateTime::parse_from_rfc3339(latest).unwrap(),
            "{package}: the newest revision holds the last version"
        );
        versions += manifests.len();
    }
    let parked = system.dead_letters(QueueName::EXPORT).await;
    let parked_entries: BTreeSet<String> = parked
        .iter()
        .map(|body| {
            body["job"]["entry_id"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    assert_eq!(
        parked_entries,
        sent.missing.iter().cloned().collect(),
        "dead letters"
    );

    let ingress = system.processes["ingress"].metrics().await;
    let replays = sample(&ingress, "bw_webhooks_total", &[r#"outcome="duplicate""#]);
    let skipped = system.processes["exporter"]
        .log()
        .matches("export skipped")
        .count();
    let waits = system.processes["exporter"]
        .log()
        .matches("waiting to write the package prefix")
        .count();
    eprintln!(
        "soak: {} webhooks for {} entries ({} updates, {} new versions, {} redelivered, {} replayed ids, {} clicks, {} missing entries); {} kills ({:?}); {versions} versions packaged, {reannounced} announced again after a kill (the same manifest); duplicates suppressed: {replays} replayed ids at the ingress, {skipped} exports of a published version skipped; {waits} exports waited for an earlier version to reach the registry; sent in {:.1} s, drained {:.1} s after the first webhook",
        size.webhooks,
        size.entries,
        sent.updates,
        sent.versions_bumped,
        sent.redelivered,
        sent.replayed,
        sent.clicks,
        sent.missing.len(),
        killed.len(),
        killed,
        sent.took.as_secs_f64(),
        drained_in.as_secs_f64(),
    );
    assert_eq!(
        replays, sent.replayed as f64,
        "every replayed id acknowledged as a duplicate"
    );
    system.stop().await;
}
