//! Golden JSON of every canvas view, checked against `tests/golden/canvas/` (reviewed by eye
//! once). `UPDATE_GOLDEN=1 cargo test -p bw-canvas --test it views` rewrites them.

use bw_canvas::view::{Block, Canvas, Linked, Status};
use bw_contracts::{Button, ButtonAction, EntryId, PackageTarget};
use bw_registry::PackageEntry;
use serde_json::json;

fn entry() -> EntryId {
    EntryId::parse("etr_0uKCQZ8f").unwrap()
}

fn check(name: &str, blocks: &[Block]) {
    let mut bytes = serde_json::to_vec_pretty(blocks).unwrap();
    bytes.push(b'\n');
    bw_testkit::golden::check(&format!("canvas/{name}.json"), &bytes);
    // Every button id we render decodes back to a button of this entry.
    let value: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    let mut ids = Vec::new();
    collect_buttons(&value, &mut ids);
    for id in ids {
        let button = Button::parse(&id).unwrap_or_else(|| panic!("{name}: {id} does not parse"));
        assert_eq!(button.entry_id, entry(), "{name}: {id}");
    }
}

fn collect_buttons(value: &serde_json::Value, ids: &mut Vec<String>) {
    for block in value.as_array().into_iter().flatten() {
        match block["type"].as_str() {
            Some("BUTTON") => ids.push(block["id"].as_str().unwrap().to_owned()),
            Some("SECTION") => collect_buttons(&block["children"], ids),
            _ => {}
        }
    }
}

fn with_canvas(test: impl FnOnce(&Canvas<'_>)) {
    let entry = entry();
    test(&Canvas {
        entry_id: &entry,
        display_id: "EXP25000007",
        package: "benchling/EXP25000007",
        bucket: "quilt-example",
        quilt_host: "catalog.example.com",
    });
}

fn files(count: usize) -> Vec<PackageEntry> {
    (1..=count)
        .map(|i| PackageEntry {
            logical_key: format!("data/well {i:02}.csv"),
            size: 1000 * i as u64,
        })
        .collect()
}

#[test]
fn main_views() {
    with_canvas(|canvas| {
        let linked = [
            Linked {
                name: "team/analysis--v2".into(),
            },
            Linked {
                name: "benchling/EXP25000007".into(),
            },
            Linked {
                name: "unicode/Ünïcødé [x]".into(),
            },
        ];
        let at = "2025-03-30T23:40:00Z".parse().unwrap();
        check("main", &canvas.main(Ok(&linked), &Status::UpdatedAt(at)));
        check(
            "main-pending-no-links",
            &canvas.main(Ok(&[]), &Status::Pending),
        );
        check(
            "main-athena-failed",
            &canvas.main(
                Err("AccessDenied in workgroup \"primary\""),
                &Status::Pending,
            ),
        );
        check(
            "main-export-failed",
            &canvas.main(Ok(&[]), &Status::Failed("member \"../x\" is unsafe".into())),
        );
        check("updating", &canvas.updating());
    });
}

#[test]
fn browser_views() {
    with_canvas(|canvas| {
        let files = files(32);
        check(
            "browser-first",
            &canvas.browser(&PackageTarget::Primary, &files, 0, 15),
        );
        check(
            "browser-middle",
            &canvas.browser(&PackageTarget::Primary, &files, 1, 15),
        );
        check(
            "browser-last",
            &canvas.browser(&PackageTarget::Primary, &files, 9, 15),
        );
        check(
            "browser-linked",
            &canvas.browser(
                &PackageTarget::Linked("team/analysis--v2".into()),
                &files[..3],
                0,
                15,
            ),
        );
        check(
            "empty",
            &canvas.browser(&PackageTarget::Primary, &[], 0, 15),
        );
    });
}

#[test]
fn metadata_not_created_and_error_views() {
    with_canvas(|canvas| {
        let meta = json!({
            "experiment_id": "EXP25000007",
            "protocol": "see https://example.com/protocols/7) for *details*",
            "samples": [{"id": "s1", "ok": true}, "plain", null],
            "nested": {"depth": 2, "none": null},
        });
        check(
            "metadata",
            &canvas.metadata(&PackageTarget::Primary, &meta, 1, 15),
        );
        check(
            "metadata-linked",
            &canvas.metadata(
                &PackageTarget::Linked("team/analysis--v2".into()),
                &meta,
                0,
                15,
            ),
        );
        check("not-created", &canvas.not_created());
        check(
            "error",
            &canvas.error(
                "Files",
                &PackageTarget::Primary,
                "S3 GetObject failed: timeout",
            ),
        );
    });
}

#[test]
fn clicking_next_on_the_last_page_stays_there() {
    with_canvas(|canvas| {
        let blocks =
            serde_json::to_value(canvas.browser(&PackageTarget::Primary, &files(32), 2, 15))
                .unwrap();
        let next = &blocks[1]["children"][1];
        assert_eq!(next["enabled"], false);
        let button = Button::parse(next["id"].as_str().unwrap()).unwrap();
        assert_eq!(
            button.action,
            ButtonAction::Browse {
                package: PackageTarget::Primary,
                page: 2,
                size: 15
            }
        );
    });
}
