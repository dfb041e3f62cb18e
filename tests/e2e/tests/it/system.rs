//! The whole flow through separate processes (see [`crate::processes`]): signed webhooks at the
//! ingress's port end as packages in moto's S3, Quilt revisions and canvases in the Benchling
//! stand-in, through faults a deployment meets: Benchling throttling, a secret created after
//! the services started, a worker killed mid-job. Each test is bounded in time and stops every
//! process by its pid.

use std::time::Duration;

use bw_contracts::{Button, ButtonAction, EntryId, PackageTarget, QueueName};
use bw_standin::archive::{build, deflated};
use bw_standin::benchling::{ENTRY_FIXTURE, FIXTURE_ENTRY_ID, Fault, TaskScript};
use bw_testkit::sample::pattern;
use serde_json::{Value, json};
use tokio::sync::Mutex;

use crate::harness::{fixture, markdown};
use crate::processes::{CLIENT_SECRET, Options, System, binaries, eventually};

/// The fixture entry's package.
const PACKAGE: &str = "benchling/EXP25000007";

/// The longest a test may run.
const LIMIT: Duration = Duration::from_secs(180);

/// Runs a test body within [`LIMIT`], one test at a time (they share moto's Athena results
/// and the machine's two cores), once the release binaries are built. Neither the build nor the
/// wait for the turn counts against the limit.
async fn bounded(test: impl std::future::Future<Output = ()>) {
    bounded_by(LIMIT, test).await;
}

/// [`bounded`] with a limit of its own.
pub async fn bounded_by(limit: Duration, test: impl std::future::Future<Output = ()>) {
    static TURN: Mutex<()> = Mutex::const_new(());
    tokio::task::spawn_blocking(binaries)
        .await
        .expect("the release binaries are built");
    let _turn = TURN.lock().await;
    tokio::time::timeout(limit, test)
        .await
        .expect("the test finished within its time limit");
}

/// The entry's attachments, as the stand-in's export serves them.
fn attachments() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("results/report.pdf", pattern(300 * 1024, 1)),
        ("plate.csv", b"well,od\nA1,0.5\n".to_vec()),
    ]
}

fn serve_export(system: &System, files: &[(&str, Vec<u8>)], running: usize) {
    let members: Vec<_> = files
        .iter()
        .map(|(name, bytes)| (*name, deflated(), bytes.as_slice()))
        .collect();
    system.benchling.add_download("export.zip", build(&members));
    system.benchling.push_task(TaskScript::Succeed {
        running,
        download: "export.zip".into(),
    });
}

/// A signed `v2.entry.updated.fields` webhook for `entry`.
pub fn entry_updated(entry: &str) -> Value {
    let mut webhook: Value = serde_json::from_slice(&fixture("entry-updated.json")).unwrap();
    webhook["message"]["resourceId"] = json!(entry);
    webhook
}

/// `v2.canvas.initialized` for the fixture entry: Benchling asks for a canvas on it.
fn canvas_initialized() -> Value {
    let mut webhook: Value = serde_json::from_slice(&fixture("canvas-initialized.json")).unwrap();
    let message = webhook["message"].as_object_mut().unwrap();
    message.remove("canvasId");
    message.insert("resourceId".to_owned(), json!(FIXTURE_ENTRY_ID));
    message.insert("featureId".to_owned(), json!("quilt_entry"));
    webhook
}

/// A click on `action` in the canvas `canvas` of the fixture entry.
fn click(canvas: &str, action: ButtonAction) -> Value {
    click_on(canvas, FIXTURE_ENTRY_ID, action)
}

/// A click on `action` in the canvas `canvas` of `entry`.
pub fn click_on(canvas: &str, entry: &str, action: ButtonAction) -> Value {
    let entry: EntryId = entry.parse().unwrap();
    click_button(canvas, &Button::new(entry, action).encode().unwrap())
}

/// A click on the button `button_id` in the canvas `canvas`, whatever that id holds.
pub fn click_button(canvas: &str, button_id: &str) -> Value {
    let mut webhook: Value = serde_json::from_slice(&fixture("canvas-interaction.json")).unwrap();
    webhook["message"]["canvasId"] = json!(canvas);
    webhook["message"]["buttonId"] = json!(button_id);
    webhook
}

/// Checks the package holds exactly `files` plus the packager's metadata files, byte for byte.
async fn assert_package(system: &System, package: &str, files: &[(&str, Vec<u8>)]) {
    for (name, bytes) in files {
        let stored = system.object(&format!("{package}/{name}")).await;
        assert!(stored == *bytes, "{package}/{name} differs from the export");
    }
    // The README is the packager's last file.
    system.object(&format!("{package}/README.md")).await;
    let mut keys = system.keys(&format!("{package}/")).await;
    keys.sort();
    let mut expected: Vec<String> = files
        .iter()
        .map(|(name, _)| format!("{package}/{name}"))
        .chain(
            bw_packager::metadata::METADATA_FILES
                .iter()
                .map(|name| format!("{package}/{name}")),
        )
        .collect();
    expected.sort();
    assert_eq!(keys, expected, "nothing else under the package prefix");
}

/// Waits for Quilt's stand-in to have built `count` revisions of `package`, then checks no
/// more come.
async fn assert_revisions(system: &System, package: &str, count: usize) {
    let built = eventually(Duration::from_secs(60), || async {
        (system.revisions(package) >= count).then_some(())
    })
    .await;
    assert!(built.is_some(), "no revision of {package}{}", system.logs());
    let latest = system
        .object(&format!(".quilt/named_packages/{package}/latest"))
        .await;
    system
        .object(&format!(
            ".quilt/packages/{}",
            String::from_utf8(latest).unwrap()
        ))
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        system.revisions(package),
        count,
        "one packager message per version{}",
        system.logs()
    );
}

/// An entry update through the whole pipeline: the export serves `files` after `running`
/// polls, and the package and its one revision exist at the end.
async fn publish(system: &System, files: &[(&str, Vec<u8>)], running: usize) {
    serve_export(system, files, running);
    system
        .deliver("/event", &entry_updated(FIXTURE_ENTRY_ID))
        .await;
    assert_package(system, PACKAGE, files).await;
    assert_revisions(system, PACKAGE, 1).await;
}

/// The id of the canvas the canvas worker created for the fixture entry, from its record.
async fn recorded_canvas(system: &System) -> String {
    eventually(Duration::from_secs(30), || async {
        let record = system
            .moto
            .get_object(
                &system.world.bucket,
                &format!(".benchling-webhook/entries/{FIXTURE_ENTRY_ID}/canvas.json"),
            )
            .await?;
        let record: Value = serde_json::from_slice(&record).ok()?;
        record["canvas_id"].as_str().map(str::to_owned)
    })
    .await
    .expect("the canvas id is recorded")
}

/// Clicks Update on `canvas` (which had `patches` updates so far) for a version Quilt's
/// registry holds: "Updating…", then "Up to date" naming the revision, with nothing exported
/// or announced again.
async fn update_finds_it_up_to_date(system: &System, canvas: &str, patches: usize) {
    let before = exports(system);
    system
        .deliver("/canvas", &click(canvas, ButtonAction::Update))
        .await;
    let patch = format!("/api/v2/app-canvases/{canvas}");
    let updating = system.request("PATCH", &patch, patches + 1).await;
    assert!(markdown(&updating).contains("Updating..."), "{updating}");
    let done = system.request("PATCH", &patch, patches + 2).await;
    assert!(
        markdown(&done).contains("✅ *Up to date:* revision `"),
        "{done}"
    );
    assert_revisions(system, PACKAGE, 1).await;
    assert_drained(system).await;
    assert_eq!(exports(system), before, "nothing exported again");
}

/// How many exports Benchling's stand-in was asked to start.
fn exports(system: &System) -> usize {
    system
        .benchling
        .requests_to("POST", "/api/v2/exports")
        .len()
}

/// Checks every job queue drained and nothing was dead-lettered.
async fn assert_drained(system: &System) {
    assert_drained_within(system, Duration::from_secs(30), |_| 0).await;
}

/// Checks, each within `limit`, that every job queue drained and its dead-letter queue holds
/// `parked(queue)` jobs.
pub async fn assert_drained_within(
    system: &System,
    limit: Duration,
    parked: impl Fn(QueueName) -> u64,
) {
    for queue in [
        QueueName::EXPORT,
        QueueName::RENDER,
        QueueName::CANVAS,
        QueueName::PACKAGE_EVENTS,
        QueueName::QUILT_PACKAGER,
    ] {
        let expected = (parked(queue), 0);
        let drained = eventually(limit, || async {
            (system.depths(queue).await == expected).then_some(())
        })
        .await;
        assert!(
            drained.is_some(),
            "{}: (dead-letter, source) = {:?}, expected {expected:?}{}",
            queue.name,
            system.depths(queue).await,
            system.logs()
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_entry_update_becomes_one_package_revision_and_an_updated_canvas() {
    bounded(async {
        let system = System::start(Options::default()).await;
        publish(&system, &attachments(), 1).await;

        // Benchling then asks for the entry's canvas: it shows the published version.
        system.deliver("/canvas", &canvas_initialized()).await;
        let created = system.request("POST", "/api/v2/app-canvases", 1).await;
        assert!(markdown(&created).contains("✅ *Updated at "), "{created}");
        assert_eq!(exports(&system), 1, "one export");
        assert_drained(&system).await;
        operator_sees_the_published_entry(&system).await;
        system.stop().await;
    })
    .await;
}

/// One trace per webhook across processes: with every process exporting to one OTLP receiver,
/// an entry webhook's ingress span is the root of the exporter's, the packager's and the canvas
/// worker's job spans, through the `traceparent` each job carries.
#[tokio::test(flavor = "multi_thread")]
async fn one_trace_follows_a_webhook_through_all_four_processes() {
    bounded(async {
        let sink = bw_testkit::otlp::OtlpSink::start();
        let system = System::start(Options {
            otlp_endpoint: Some(sink.endpoint()),
            ..Options::default()
        })
        .await;
        publish(&system, &attachments(), 0).await;
        let workers = ["exporter", "packager", "canvas"];
        let in_trace = |spans: &[bw_testkit::otlp::SinkSpan], root: &str, service: &str| {
            spans
                .iter()
                .any(|s| s.name == "job" && s.trace_id == root && s.service_name.contains(service))
        };
        let spans = tokio::task::block_in_place(|| {
            sink.wait_for(
                |spans| {
                    spans.iter().filter(|s| s.name == "webhook").any(|root| {
                        workers
                            .iter()
                            .all(|service| in_trace(spans, &root.trace_id, service))
                    })
                },
                Duration::from_secs(30),
            )
        });
        system.stop().await;
        let summary: Vec<String> = spans
            .iter()
            .map(|s| {
                format!(
                    "{} {} trace {} parent {:?}",
                    s.service_name, s.name, s.trace_id, s.parent_span_id
                )
            })
            .collect();
        let roots: Vec<_> = spans.iter().filter(|s| s.name == "webhook").collect();
        assert_eq!(roots.len(), 1, "one webhook span: {summary:#?}");
        let root = roots[0];
        assert!(root.service_name.contains("ingress"), "{summary:#?}");
        assert_eq!(
            root.parent_span_id, "",
            "the ingress span is the root: {summary:#?}"
        );
        for service in workers {
            assert!(
                in_trace(&spans, &root.trace_id, service),
                "the {service} job is in the webhook's trace: {summary:#?}"
            );
        }
        let others_rooted: Vec<&String> = spans
            .iter()
            .zip(&summary)
            .filter(|(s, _)| s.trace_id == root.trace_id && s.parent_span_id.is_empty())
            .map(|(_, line)| line)
            .filter(|line| !line.contains(" webhook "))
            .collect();
        assert!(
            others_rooted.is_empty(),
            "one root in the trace: {others_rooted:#?}"
        );
    })
    .await;
}

/// The operator CLI, pointed at this system as a deployed environment: `health` finds it
/// healthy, `status` shows its queues drained, and `status --entry` the version announced,
/// Quilt's revision holding it, and the canvas created.
async fn operator_sees_the_published_entry(system: &System) {
    let home = system.as_deployed().await;
    let json = |output: std::process::Output| -> Value {
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).unwrap()
    };
    let health = json(system.operator(home.path(), &["health", "--output", "json"]));
    assert_eq!(health["verdict"], "healthy", "{health:#}");
    assert_eq!(health["ready"]["status"], "ready");
    assert!(
        !health["config"].to_string().contains(CLIENT_SECRET),
        "/config shows no secret"
    );

    let status = json(system.operator(home.path(), &["status", "--output", "json"]));
    let queues = status["environments"][0]["queues"].as_array().unwrap();
    assert_eq!(queues.len(), 4, "{status:#}");
    for queue in queues {
        assert_eq!(
            (&queue["waiting"], &queue["deadLetters"]),
            (&json!(0), &json!(0)),
            "{status:#}"
        );
    }

    let entry = json(system.operator(
        home.path(),
        &["status", "--entry", FIXTURE_ENTRY_ID, "--output", "json"],
    ));
    assert_eq!(entry["awaitingPackaging"], json!([]), "{entry:#}");
    let revisions = entry["revisions"].as_array().unwrap();
    assert_eq!(revisions.len(), 1, "{entry:#}");
    let announced = entry["published"]["version"].as_str().unwrap();
    let built: chrono::DateTime<chrono::Utc> = revisions[0]["modifiedAt"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        bw_contracts::bookkeeping::version_tag(&built),
        announced,
        "Quilt built the version announced"
    );
    assert_eq!(entry["published"]["package"], PACKAGE);
    assert_eq!(
        entry["canvas"]["canvasId"],
        json!(recorded_canvas(system).await)
    );
    assert_eq!(entry["deadLettered"], json!([]));
    assert_eq!(entry["lastFailure"], Value::Null);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_canvas_lists_linked_packages_browses_and_updates() {
    bounded(async {
        let system = System::start(Options::default()).await;
        let files = attachments();
        publish(&system, &files, 0).await;
        // The revision's announcement found no canvas yet; nothing is left to arrive.
        assert_drained(&system).await;

        let meta = r#"{"experiment_id":"EXP25000007"}"#;
        system
            .moto
            .queue_athena_result(&[
                &["pkg_name", "timestamp", "message", "user_meta"],
                &["team/assay-7", "latest", "linked", meta],
            ])
            .await;
        system.deliver("/canvas", &canvas_initialized()).await;
        let created = system.request("POST", "/api/v2/app-canvases", 1).await;
        let shown = markdown(&created);
        assert!(
            shown.contains("team/assay-7") && shown.contains("✅ *Updated at "),
            "{created}{}",
            system.logs()
        );
        let canvas = recorded_canvas(&system).await;
        let patch = format!("/api/v2/app-canvases/{canvas}");

        // Browse: the package's files, read from the revision Quilt's stand-in wrote.
        let browse = ButtonAction::Browse {
            package: PackageTarget::Primary,
            page: 0,
            size: 15,
        };
        system.deliver("/canvas", &click(&canvas, browse)).await;
        let browser = system.request("PATCH", &patch, 1).await;
        for (name, _) in &files {
            // The browser names each file by its last path segment.
            let shown = format!("`{}`", name.rsplit('/').next().unwrap());
            assert!(markdown(&browser).contains(&shown), "{name}: {browser}");
        }

        // Update: Quilt's registry holds the announced version.
        update_finds_it_up_to_date(&system, &canvas, 1).await;
        system.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn stable_and_stage_prefixed_routes_reach_the_workers() {
    bounded(async {
        let system = System::start(Options::default()).await;
        let files = attachments();
        // A second entry, so each route's webhook makes its own package.
        let mut second: Value = serde_json::from_str(ENTRY_FIXTURE).unwrap();
        let second = second["entry"].take();
        let mut second = second;
        second["id"] = json!("etr_second01");
        second["displayId"] = json!("EXP25000099");
        system.benchling.add_entry(second);
        serve_export(&system, &files, 0);
        serve_export(&system, &files, 0);

        // Benchling's "Stable" routing posts every webhook to the app's one URL.
        system.deliver("/", &entry_updated(FIXTURE_ENTRY_ID)).await;
        // API Gateway passes the stage in the path.
        system
            .deliver("/prod/event", &entry_updated("etr_second01"))
            .await;
        assert_package(&system, PACKAGE, &files).await;
        assert_package(&system, "benchling/EXP25000099", &files).await;
        let staged = reqwest::get(format!("{}/prod/health/ready", system.url()))
            .await
            .unwrap();
        assert_eq!(staged.status(), 200);
        assert_revisions(&system, PACKAGE, 1).await;
        assert_revisions(&system, "benchling/EXP25000099", 1).await;
        system.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn benchling_throttling_during_an_export_delays_it_and_duplicates_nothing() {
    bounded(async {
        let system = System::start(Options::default()).await;
        let files = attachments();
        // Bursts of 429s and 503s across the entry read, the export start and its polls.
        system.benchling.inject(Fault::RateLimited(1), 3);
        system.benchling.inject(Fault::Status(503), 3);
        publish(&system, &files, 2).await;
        let throttled = system
            .benchling
            .requests()
            .iter()
            .filter(|r| r.path.starts_with("/api/v2/") && !r.path.contains("token"))
            .count();
        assert!(
            throttled >= 6 + 3,
            "the faults were served: {throttled} calls"
        );
        assert_drained(&system).await;
        // An unsigned webhook, refused, for the ingress's refusal count.
        let refused = reqwest::Client::new()
            .post(format!("{}/event", system.url()))
            .body(serde_json::to_vec(&entry_updated(FIXTURE_ENTRY_ID)).unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), 403);
        the_metrics_tell_what_happened(&system).await;
        system.stop().await;
    })
    .await;
}

/// The sum of the samples of `name` whose labels include every one of `labels` (`key="value"`).
pub fn sample(metrics: &str, name: &str, labels: &[&str]) -> f64 {
    metrics
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.rsplit_once(' '))
        .filter(|(series, _)| {
            let (series_name, series_labels) = series.split_once('{').unwrap_or((series, ""));
            series_name == name && labels.iter().all(|label| series_labels.contains(label))
        })
        .map(|(_, value)| value.parse::<f64>().expect("a numeric sample"))
        .sum()
}

/// Each process's `/metrics` after the throttled export: the ingress's outcomes, Benchling's
/// 429s and retries, the export's bytes, and jobs by queue and outcome with their lag.
async fn the_metrics_tell_what_happened(system: &System) {
    let ingress = system.processes["ingress"].metrics().await;
    let accepted = sample(
        &ingress,
        "bw_webhooks_total",
        &[r#"outcome="export_queued""#],
    );
    assert_eq!(accepted, 1.0, "{ingress}");
    let refused = sample(
        &ingress,
        "bw_webhooks_total",
        &[r#"outcome="missing_headers""#],
    );
    assert_eq!(refused, 1.0, "{ingress}");
    assert_eq!(
        sample(&ingress, "bw_webhook_duration_seconds_count", &[]),
        2.0
    );

    let exporter = system.processes["exporter"].metrics().await;
    assert_eq!(
        sample(&exporter, "bw_benchling_throttled_total", &[]),
        3.0,
        "{exporter}"
    );
    let retried = |cause: &str| {
        sample(
            &exporter,
            "bw_benchling_retries_total",
            &[&format!("cause=\"{cause}\"")],
        )
    };
    assert_eq!(retried("throttled"), 3.0, "{exporter}");
    assert!(retried("unavailable") >= 1.0, "{exporter}");
    let (archive, stored) = (
        sample(&exporter, "bw_export_bytes_total", &[r#"stage="archive""#]),
        sample(&exporter, "bw_export_bytes_total", &[r#"stage="stored""#]),
    );
    let attached: usize = attachments().iter().map(|(_, bytes)| bytes.len()).sum();
    assert_eq!(stored, attached as f64, "{exporter}");
    assert!(archive > 0.0, "{exporter}");

    for (process, queue) in [
        ("exporter", QueueName::EXPORT),
        ("packager", QueueName::RENDER),
    ] {
        let metrics = system.processes[process].metrics().await;
        let queue = format!("queue=\"{}\"", system.world.queue_name(queue));
        let done = sample(
            &metrics,
            "bw_job_duration_seconds_count",
            &[&queue, r#"outcome="success""#],
        );
        assert_eq!(done, 1.0, "{process}: {metrics}");
        assert!(
            sample(&metrics, "bw_queue_lag_seconds_count", &[&queue]) >= 1.0,
            "{metrics}"
        );
        assert_eq!(
            sample(&metrics, "bw_dead_letters_total", &[]),
            0.0,
            "{metrics}"
        );
        assert!(
            metrics.contains("# TYPE bw_dead_letters_total counter"),
            "{metrics}"
        );
    }
    let canvas = system.processes["canvas"].metrics().await;
    for family in [
        "bw_job_duration_seconds histogram",
        "bw_benchling_retries_total counter",
    ] {
        assert!(canvas.contains(&format!("# TYPE {family}")), "{canvas}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn services_started_before_their_secret_wait_for_it_then_work_without_a_restart() {
    // The secret created late is the four-key form: the bucket comes from PACKAGE_BUCKET.
    bounded(async {
        let mut system = System::start(Options {
            secret_missing: true,
            ..Options::default()
        })
        .await;
        let pids: Vec<u32> = system.processes.values().map(|p| p.pid()).collect();
        // Give every service time to look for the secret and fail.
        tokio::time::sleep(Duration::from_secs(3)).await;
        for (name, process) in &system.processes {
            if *name != "quilt-standin" {
                assert_eq!(
                    process.readiness().await,
                    503,
                    "{name} is not ready without its secret:\n{}",
                    process.log()
                );
            }
        }
        // The operator's health check says why, from the ingress's own readiness.
        let home = system.as_deployed().await;
        let unready = system.operator(home.path(), &["health", "--output", "json"]);
        assert_eq!(unready.status.code(), Some(1));
        let said: Value = serde_json::from_slice(&unready.stdout).unwrap();
        assert_eq!(said["verdict"], "not ready", "{said:#}");
        assert!(
            said["problems"][0]
                .as_str()
                .unwrap()
                .starts_with("secret: "),
            "{said:#}"
        );
        system.create_secret().await;
        system.wait_ready().await;
        for name in ["ingress", "exporter", "packager", "canvas", "quilt-standin"] {
            assert!(system.process(name).is_running(), "{name} kept running");
        }
        let now: Vec<u32> = system.processes.values().map(|p| p.pid()).collect();
        assert_eq!(pids, now, "no process was restarted");

        publish(&system, &attachments(), 0).await;
        system.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_worker_killed_mid_job_is_finished_once_by_its_restart() {
    bounded(async {
        let mut system = System::start(Options::default()).await;
        let files = attachments();
        // A long export: the exporter polls it many times, and is killed while it does.
        serve_export(&system, &files, 40);
        serve_export(&system, &files, 0);
        system
            .deliver("/event", &entry_updated(FIXTURE_ENTRY_ID))
            .await;
        let polling = eventually(Duration::from_secs(30), || async {
            (system.benchling.requests_to("GET", "/api/v2/tasks/").len() >= 2).then_some(())
        })
        .await;
        assert!(
            polling.is_some(),
            "the export never started{}",
            system.logs()
        );
        let exporter = system.process("exporter");
        exporter.kill();
        assert!(!exporter.is_running());
        exporter.restart();
        // The killed job's message comes back after the queue's visibility timeout.
        assert_package(&system, PACKAGE, &files).await;
        assert_revisions(&system, PACKAGE, 1).await;
        assert_eq!(
            exports(&system),
            2,
            "the restarted exporter ran the interrupted job again"
        );
        assert_drained(&system).await;
        system.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn update_package_announces_again_a_version_quilt_never_built() {
    bounded(async {
        let mut system = System::start(Options::default()).await;
        let files = attachments();
        // Quilt's packager is down, and its message is lost.
        system.process("quilt-standin").kill();
        serve_export(&system, &files, 0);
        system
            .deliver("/event", &entry_updated(FIXTURE_ENTRY_ID))
            .await;
        let announced = eventually(Duration::from_secs(60), || async {
            (system.depths(QueueName::QUILT_PACKAGER).await == (0, 1)).then_some(())
        })
        .await;
        assert!(announced.is_some(), "never announced{}", system.logs());
        system.purge(QueueName::QUILT_PACKAGER).await;
        // Long enough ago that Quilt would have built it.
        let record_key = format!(".benchling-webhook/entries/{FIXTURE_ENTRY_ID}/published.json");
        let mut record: Value = serde_json::from_slice(&system.object(&record_key).await).unwrap();
        let stale = chrono::Utc::now() - chrono::TimeDelta::hours(1);
        record["published_at"] = Value::from(stale.to_rfc3339());
        system
            .moto
            .put_object(
                &system.world.bucket,
                &record_key,
                serde_json::to_vec(&record).unwrap(),
            )
            .await;
        system.process("quilt-standin").restart();
        assert_drained(&system).await;

        system.deliver("/canvas", &canvas_initialized()).await;
        let created = system.request("POST", "/api/v2/app-canvases", 1).await;
        assert!(markdown(&created).contains("✅ *Updated at "), "{created}");
        let canvas = recorded_canvas(&system).await;
        let patch = format!("/api/v2/app-canvases/{canvas}");

        // Update finds the version missing from the registry: exported and announced again,
        // and Quilt builds it.
        serve_export(&system, &files, 0);
        system
            .deliver("/canvas", &click(&canvas, ButtonAction::Update))
            .await;
        assert_revisions(&system, PACKAGE, 1).await;
        assert_eq!(exports(&system), 2);
        assert_drained(&system).await;
        // "Updating…", then the announcement and the revision's refresh, in either order.
        let patches = system.benchling.requests_to("PATCH", &patch).len();
        assert_eq!(patches, 3, "{}", system.logs());
        let updated = system.request("PATCH", &patch, patches).await;
        assert!(markdown(&updated).contains("✅ *Updated at "), "{updated}");

        // Asked again, the registry holds it.
        update_finds_it_up_to_date(&system, &canvas, patches).await;
        system.stop().await;
    })
    .await;
}
