//! Every recorded Benchling payload, signed and sent through the ingress: the expected status,
//! and exactly the expected job on the expected queue.

use bw_contracts::job::CanvasAction;
use bw_contracts::{Button, ButtonAction, CanvasJob, EntryId, EventType, ExportJob};

use crate::harness::{Harness, drain, fixture};

/// What a fixture must produce.
enum Expect {
    Export(EventType),
    Canvas(fn(&CanvasJob) -> bool),
    Nothing(u16),
}

fn cases() -> Vec<(&'static str, &'static str, Expect)> {
    vec![
        (
            "/event",
            "entry-created.json",
            Expect::Export(EventType::EntryCreated),
        ),
        (
            "/event",
            "entry-updated.json",
            Expect::Export(EventType::EntryUpdatedFields),
        ),
        (
            "/event",
            "entry-review-record.json",
            Expect::Export(EventType::EntryUpdatedReviewRecord),
        ),
        (
            "/canvas",
            "app-interaction.json",
            Expect::Canvas(|job| {
                job.canvas_id.as_ref().map(|c| c.as_str()) == Some("cnvs_dYQTvmId")
                    && job.action
                        == CanvasAction::Button {
                            button: Button::new(
                                EntryId::parse("etr_OtsAuzfT").unwrap(),
                                ButtonAction::Update,
                            ),
                        }
            }),
        ),
        ("/canvas", "canvas-interaction.json", Expect::Nothing(200)),
        (
            "/canvas",
            "canvas-created.json",
            Expect::Canvas(|job| {
                job.action == CanvasAction::Render
                    && job.canvas_id.as_ref().map(|c| c.as_str()) == Some("cnvs_Q4mPJ34a")
            }),
        ),
        (
            "/canvas",
            "canvas-initialized.json",
            Expect::Canvas(|job| {
                job.action == CanvasAction::Create
                    && job.entry_id.as_ref().map(|e| e.as_str())
                        == Some("8316d144-745d-4276-a389-f8afc8ff3115")
                    && job.feature_id.as_ref().map(|f| f.as_str()) == Some("my_feature_id")
            }),
        ),
        (
            "/lifecycle",
            "app-installed.json",
            Expect::Canvas(|job| job.action == CanvasAction::AppHome),
        ),
        (
            "/lifecycle",
            "app-activate-requested.json",
            Expect::Canvas(|job| job.action == CanvasAction::AppHome),
        ),
        ("/lifecycle", "app-deactivated.json", Expect::Nothing(200)),
        (
            "/lifecycle",
            "app-config-updated.json",
            Expect::Nothing(200),
        ),
        ("/event", "app-homepage-canvas.json", Expect::Nothing(400)),
        ("/event", "app-list.json", Expect::Nothing(400)),
        ("/canvas", "athena-fail.json", Expect::Nothing(400)),
        ("/canvas", "entry-app-canvas.json", Expect::Nothing(400)),
        ("/event", "entry.json", Expect::Nothing(400)),
        ("/canvas", "post-app-canvases.json", Expect::Nothing(400)),
        ("/event", "sqs-message.json", Expect::Nothing(400)),
    ]
}

async fn check_every_fixture(route: impl Fn(&'static str) -> String) {
    let h = Harness::start().await;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/benchling-events");
    let cases = cases();
    assert_eq!(
        cases.len(),
        std::fs::read_dir(dir).unwrap().count(),
        "every fixture file has an expectation"
    );
    for (path, name, expect) in cases {
        let body = fixture(name);
        let (status, answer) = h.post_signed(&route(path), &body).await;
        let exports = drain::<ExportJob>(h.export.as_ref()).await;
        let canvases = drain::<CanvasJob>(h.canvas.as_ref()).await;
        match expect {
            Expect::Export(kind) => {
                assert_eq!(status, 202, "{name}: {answer}");
                assert_eq!((exports.len(), canvases.len()), (1, 0), "{name}");
                let job = &exports[0].job;
                assert_eq!(
                    job.entry_id.as_str(),
                    "8316d144-745d-4276-a389-f8afc8ff3115",
                    "{name}"
                );
                assert_eq!(job.trigger.event_type, kind, "{name}");
                assert_eq!(
                    job.trigger.event_id.as_ref().unwrap().as_str(),
                    "evt_dVhELK94T1Jy"
                );
                assert_eq!(
                    job.trigger.occurred_at.to_rfc3339(),
                    "2024-06-07T21:46:48.111811+00:00"
                );
                assert_eq!(
                    job.base_url.as_deref(),
                    Some("https://quilt-dtt.benchling.com")
                );
                assert!(
                    exports[0].traceparent.is_some(),
                    "{name}: trace context travels with the job"
                );
            }
            Expect::Canvas(check) => {
                assert!(matches!(status, 200 | 202), "{name}: {status} {answer}");
                assert_eq!((exports.len(), canvases.len()), (0, 1), "{name}");
                assert!(check(&canvases[0].job), "{name}: {:?}", canvases[0].job);
            }
            Expect::Nothing(expected) => {
                assert_eq!(status, expected, "{name}: {answer}");
                assert_eq!((exports.len(), canvases.len()), (0, 0), "{name}");
            }
        }
    }
    let (_, config) = h.get("/config").await;
    for kind in [
        "v2.app.installed",
        "v2.app.activateRequested",
        "v2.app.deactivated",
        "v2-beta.app.configuration.updated",
    ] {
        assert_eq!(
            config["lifecycle"][kind]["count"], 1,
            "{kind} recorded in /config"
        );
    }
}

#[tokio::test]
async fn every_fixture_on_its_suffixed_route() {
    check_every_fixture(|path| path.to_owned()).await;
}

#[tokio::test]
async fn every_fixture_on_the_stable_route_with_a_stage() {
    check_every_fixture(|_| "/prod".to_owned()).await;
}
