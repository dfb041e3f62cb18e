//! Golden files: the metadata files of several entries, rendered and compared byte for byte
//! with the files under `tests/golden/packager/` (reviewed by eye once). After an intended
//! change, `UPDATE_GOLDEN=1 cargo test -p bw-packager --test it golden` rewrites them; review the
//! diff before committing.

use std::collections::HashMap;

use bw_benchling::Entry;
use bw_contracts::{EventType, FileList, PackageFile, RenderJob, Trigger};
use bw_packager::metadata::{Inputs, render};
use bw_packager::readme::Readme;
use bw_packager::references::References;
use serde_json::{Value, json};

fn fixture_entry() -> Value {
    let fixture: Value =
        serde_json::from_str(bw_standin::benchling::ENTRY_FIXTURE).expect("fixture is JSON");
    fixture["entry"].clone()
}

fn files(names: &[&str]) -> Vec<PackageFile> {
    names
        .iter()
        .enumerate()
        .map(|(i, name)| PackageFile {
            name: (*name).to_owned(),
            key: format!("benchling/EXP25000007/{name}"),
            size: 1000 * (i as u64 + 1),
        })
        .collect()
}

fn job(entry: &Entry, files: &[PackageFile], canvas: Option<&str>) -> RenderJob {
    RenderJob {
        reannounce: None,
        entry_id: entry.id.clone(),
        display_id: entry.display_id.clone(),
        modified_at: entry.modified_at,
        bucket: "quilt-example".into(),
        package_prefix: format!("benchling/{}", entry.display_id),
        entry_key: bw_contracts::bookkeeping::entry_snapshot_key(&entry.id, &entry.modified_at),
        files: FileList::Inline {
            files: files.to_vec(),
        },
        canvas_id: canvas.map(|c| c.parse().unwrap()),
        base_url: Some("https://quilt-dtt.benchling.com".into()),
        trigger: Trigger {
            event_type: EventType::EntryUpdatedFields,
            event_id: Some("evt_dVhELK94T1Jy".parse().unwrap()),
            webhook_id: Some("msg_golden".parse().unwrap()),
            occurred_at: "2025-03-30T23:37:23.5Z".parse().unwrap(),
            user_id: None,
        },
    }
}

/// Renders `entry` with `files` and compares each file with `tests/golden/packager/{case}/`.
fn check(case: &str, raw: Value, files: &[PackageFile], names: &HashMap<String, String>) {
    let entry = Entry::from_value(raw).expect("a valid entry");
    let job = job(&entry, files, Some("cnvs_dYQTvmId"));
    let references = References::discover(&entry.raw);
    let inputs = Inputs {
        job: &job,
        entry: &entry,
        files,
        references: &references,
        names,
        default_base_url: "https://quilt-dtt.benchling.com",
    };
    let rendered = render(&inputs, &Readme::built_in()).expect("renders");
    for (name, bytes) in rendered {
        bw_testkit::golden::check(&format!("packager/{case}/{name}"), &bytes);
    }
}

fn no_names() -> HashMap<String, String> {
    HashMap::new()
}

#[test]
fn the_recorded_entry() {
    check(
        "fixture",
        fixture_entry(),
        &files(&["EXP25000007.pdf", "data/plate-1.csv", "images/gel.png"]),
        &no_names(),
    );
}

#[test]
fn an_entry_without_a_name() {
    let mut raw = fixture_entry();
    raw.as_object_mut().unwrap().remove("name");
    check("no-name", raw, &files(&["EXP25000007.pdf"]), &no_names());
}

#[test]
fn an_entry_without_authors_or_creator() {
    let mut raw = fixture_entry();
    raw["authors"] = json!([]);
    raw["creator"] = Value::Null;
    check("no-authors", raw, &files(&["EXP25000007.pdf"]), &no_names());
}

#[test]
fn unicode_names() {
    let mut raw = fixture_entry();
    raw["name"] = Value::from("Zellkultur Übersicht — 実験ノート 🧪");
    raw["authors"] = json!([{"id": "ent_1", "handle": "zoë", "name": "Zoë Ångström"}]);
    check(
        "unicode",
        raw,
        &files(&["Ergebnisse/Übersicht.csv", "実験/データ.xlsx"]),
        &no_names(),
    );
}

#[test]
fn no_files() {
    check("no-files", fixture_entry(), &[], &no_names());
}

#[test]
fn markdown_hostile_names_and_values() {
    let mut raw = fixture_entry();
    raw["name"] = Value::from("# Not a heading\n- [click](javascript:alert(1)) <b>bold</b> *x*");
    check(
        "hostile",
        raw,
        &files(&[
            "`rm -rf`.txt",
            "[click](javascript:alert(1)).csv",
            "<script>alert(1)</script>.html",
            "a*b_c|d~e.txt",
            "``tick``",
        ]),
        &no_names(),
    );
}

#[test]
fn links_entities_and_results_tables() {
    let mut raw = fixture_entry();
    raw["days"] = json!([{"date": "2025-03-24", "notes": [
        {"type": "text", "text": "see", "links": [
            {"type": "custom_entity", "id": "bfi_AbC", "webURL": "https://quilt-dtt.benchling.com/benchling/f/lib_1/bfi-AbC-strain-7/edit"},
            {"type": "dna_sequence", "id": "seq_Xy", "webURL": "https://quilt-dtt.benchling.com/benchling/f/lib_1/seq-Xy-pUC19/edit"},
            {"type": "box", "id": "box_1", "webURL": "https://quilt-dtt.benchling.com/benchling/f/lib_1/box_1-freezer-a"},
            {"type": "entry", "id": "etr_other", "webURL": "https://quilt-dtt.benchling.com/benchling/f/lib_1/etr-other-notes/edit"},
            {"type": "user", "id": "ent_9CIv9U8P"},
            {"type": "link", "webURL": "https://example.com/protocol?x=1"},
            {"type": "custom_entity", "id": "bfi_AbC", "webURL": "https://elsewhere.example/dup"}
        ]},
        {"type": "results_table", "assayResultSchemaId": "assaysch_1", "apiId": "tbl_1", "links": []}
    ]}]);
    raw["fields"]["Strain"] = json!({"type": "entity_link", "value": "bfi_Zz", "isMulti": false, "displayValue": "strain 9", "textValue": "strain 9"});
    let names = HashMap::from([
        ("bfi_AbC".to_owned(), "Strain 7".to_owned()),
        ("box_1".to_owned(), "Freezer A".to_owned()),
    ]);
    check("links", raw, &files(&["EXP25000007.pdf"]), &names);
}

#[test]
fn five_thousand_files() {
    let names: Vec<String> = (0..5000).map(|i| format!("data/well-{i:04}.csv")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let files = files(&names);
    let entry = Entry::from_value(fixture_entry()).unwrap();
    let job = job(&entry, &files, None);
    let references = References::discover(&entry.raw);
    let inputs = Inputs {
        job: &job,
        entry: &entry,
        files: &files,
        references: &references,
        names: &no_names(),
        default_base_url: "https://quilt-dtt.benchling.com",
    };
    let rendered: HashMap<&str, Vec<u8>> = render(&inputs, &Readme::built_in())
        .unwrap()
        .into_iter()
        .collect();
    let readme = String::from_utf8(rendered["README.md"].clone()).unwrap();
    assert_eq!(
        readme
            .lines()
            .filter(|l| l.starts_with("- `data/well-"))
            .count(),
        5000
    );
    assert!(readme.contains("- **Total Files**: 5000"));
    let entry_json: Value = serde_json::from_slice(&rendered["entry.json"]).unwrap();
    assert_eq!(entry_json["files"].as_object().unwrap().len(), 5000);
    assert!(
        entry_json.get("canvas_id").is_none(),
        "no canvas id when unknown"
    );
    let input: Value = serde_json::from_slice(&rendered["input.json"]).unwrap();
    assert_eq!(input["package_metadata"]["total_files"], 5000);
}
