//! The hostile-input corpus (`tests/hostile/corpus.json`), walked against the release binaries
//! on moto: every webhook gets its expected status and reason, every entry is packaged or
//! dead-lettered with its expected reason, every hostile README template stops the packager at
//! start-up, and at the end the bucket holds nothing but the packaged entries' prefixes, their
//! bookkeeping, Quilt's registry and, for a refused entry, the canvas record of its failure.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use bw_contracts::QueueName;
use bw_standin::archive::{build, stored};
use bw_standin::benchling::ENTRY_FIXTURE;
use bw_testkit::signer::{SigningKey, now_unix};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::processes::{Options, System, eventually};
use crate::system::{assert_drained_within, bounded_by, click_button, entry_updated};

/// The package-name prefix of the test secret.
const PKG_PREFIX: &str = "benchling";

#[derive(Deserialize)]
struct Corpus {
    webhooks: Vec<WebhookCase>,
    entries: Vec<EntryCase>,
    readme_templates: Vec<TemplateCase>,
}

/// One request to the ingress and the answer it must get.
#[derive(Deserialize)]
struct WebhookCase {
    case: String,
    route: String,
    body: Body,
    signature: Signature,
    #[serde(default)]
    timestamp_offset_secs: i64,
    expect: Answer,
}

/// How a request is signed.
#[derive(Clone, Copy, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case")]
enum Signature {
    /// By the app's key, under a fresh webhook id.
    Valid,
    /// Not at all: no signature headers.
    None,
    /// By a key Benchling's JWKS does not hold.
    Intruder,
    /// By the app's key, then the body changed.
    Tampered,
    /// By the app's key, under the id of the last accepted webhook.
    Replay,
}

/// A request body: one of these, as the corpus names it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Body {
    /// A `v2.entry.updated.fields` webhook for this entry.
    entry_updated: Option<String>,
    /// A `v2.canvas.userInteracted` webhook with this button id.
    click: Option<String>,
    /// The button id padded with `x` to this many characters.
    pad_button_to: Option<usize>,
    /// This JSON document.
    json: Option<Value>,
    /// These characters.
    text: Option<String>,
    /// These bytes, in hex.
    hex: Option<String>,
    /// `[` this many times, then as many `]`.
    nested: Option<usize>,
    /// The JSON padded with a string member to exactly this many bytes.
    pad_to: Option<usize>,
}

impl Body {
    fn bytes(&self) -> Vec<u8> {
        if let Some(text) = &self.text {
            return text.clone().into_bytes();
        }
        if let Some(hex) = &self.hex {
            return (0..hex.len())
                .step_by(2)
                .map(|at| u8::from_str_radix(&hex[at..at + 2], 16).expect("hex"))
                .collect();
        }
        if let Some(depth) = self.nested {
            return ["[".repeat(depth), "]".repeat(depth)].concat().into_bytes();
        }
        let mut webhook = if let Some(entry) = &self.entry_updated {
            entry_updated(entry)
        } else if let Some(button) = &self.click {
            let mut button = button.clone();
            if let Some(len) = self.pad_button_to {
                button.extend(std::iter::repeat_n('x', len.saturating_sub(button.len())));
            }
            click_button("cnvs_hostile", &button)
        } else {
            self.json.clone().expect("a body")
        };
        let body = serde_json::to_vec(&webhook).unwrap();
        let Some(size) = self.pad_to else {
            return body;
        };
        // `,"padding":""` is 13 bytes on top of the padding itself.
        webhook["padding"] = json!("x".repeat(size - body.len() - 13));
        let padded = serde_json::to_vec(&webhook).unwrap();
        assert_eq!(padded.len(), size, "padding arithmetic");
        padded
    }
}

/// The status and the answer's `reason` (refusals) or `status` (everything else).
#[derive(Deserialize)]
struct Answer {
    status: u16,
    outcome: String,
}

/// An entry Benchling serves, its export, and what must become of it.
#[derive(Deserialize)]
struct EntryCase {
    case: String,
    entry: String,
    display_id: String,
    name: Option<String>,
    fields: Option<Value>,
    archive: Archive,
    expect: EntryOutcome,
    #[serde(default)]
    readme_lacks: Vec<String>,
}

/// An export archive: a file of the fuzzing corpus, or generated.
#[derive(Deserialize)]
#[serde(untagged)]
enum Archive {
    File(String),
    Generated { members: usize },
}

impl Archive {
    fn bytes(&self) -> Vec<u8> {
        match self {
            Self::File(name) => {
                let path = corpus_dir().join("../fuzz/corpus/archive").join(name);
                std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            }
            Self::Generated { members } => {
                let names: Vec<String> = (0..*members).map(|i| format!("m/{i}.txt")).collect();
                let files: Vec<_> = names
                    .iter()
                    .map(|n| (n.as_str(), stored(), &b"x"[..]))
                    .collect();
                build(&files)
            }
        }
    }

    /// The member names of a well-formed archive.
    fn members(&self) -> Vec<String> {
        let bytes = self.bytes();
        let archive =
            zip::ZipArchive::new(std::io::Cursor::new(bytes)).expect("a readable archive");
        archive
            .file_names()
            .map(|name| name.expect("a readable name").into_owned())
            .filter(|name| !name.ends_with('/'))
            .collect()
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum EntryOutcome {
    /// Packaged: a revision of `benchling/{display id}` holding the archive's members.
    Packaged,
    /// Dead-lettered from the export queue with a reason containing this.
    DeadLetter(String),
}

/// A README template the packager must refuse at start-up, with a log line containing this.
#[derive(Deserialize)]
struct TemplateCase {
    case: String,
    template: String,
    expect: Refusal,
}

#[derive(Deserialize)]
struct Refusal {
    refused: String,
}

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../hostile")
}

fn corpus() -> Corpus {
    let path = corpus_dir().join("corpus.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Serves the entry of `case` and its export.
fn serve(system: &System, case: &EntryCase) {
    let fixture: Value = serde_json::from_str(ENTRY_FIXTURE).unwrap();
    let mut entry = fixture["entry"].clone();
    entry["id"] = json!(case.entry);
    entry["displayId"] = json!(case.display_id);
    if let Some(name) = &case.name {
        entry["name"] = json!(name);
    }
    if let Some(Value::Object(fields)) = &case.fields {
        let own = entry["fields"]
            .as_object_mut()
            .expect("the fixture has fields");
        own.extend(fields.clone());
    }
    system.benchling.add_entry(entry);
    system
        .benchling
        .add_download(&format!("{}.zip", case.entry), case.archive.bytes());
}

/// The key of the canvas worker's record of `case`'s entry.
fn canvas_record(case: &EntryCase) -> String {
    format!(".benchling-webhook/entries/{}/canvas.json", case.entry)
}

/// Restarts the packager with each hostile template and checks it refuses to start, then
/// restores it.
async fn refuse_templates(
    system: &mut System,
    cases: &[TemplateCase],
    scratch: &Path,
) -> Vec<String> {
    let mut failures = Vec::new();
    for (n, case) in cases.iter().enumerate() {
        let path = scratch.join(format!("template-{n}.md.j2"));
        std::fs::write(&path, &case.template).unwrap();
        let packager = system.process("packager");
        let before = packager.log().len();
        packager.set_env("README_TEMPLATE", Some(path.to_str().unwrap()));
        packager.restart();
        let exited = packager.exited_within(Duration::from_secs(20));
        let said = packager.log()[before..].to_owned();
        match exited {
            Some(status) if !status.success() && said.contains(&case.expect.refused) => {}
            other => failures.push(format!(
                "template {:?}: exit {other:?}, log:\n{said}",
                case.case
            )),
        }
    }
    let packager = system.process("packager");
    packager.set_env("README_TEMPLATE", None);
    packager.restart();
    let ready = eventually(Duration::from_secs(30), || async {
        (system.processes["packager"].readiness().await == 200).then_some(())
    })
    .await;
    assert!(ready.is_some(), "the packager is back{}", system.logs());
    failures
}

/// Sends every webhook case and returns the ones that got another answer.
async fn send_webhooks(system: &System, cases: &[WebhookCase]) -> Vec<String> {
    let intruder = SigningKey::generate("intruder");
    let mut failures = Vec::new();
    let mut last_accepted = None;
    for case in cases {
        let mut body = case.body.bytes();
        let id = match case.signature {
            Signature::Replay => last_accepted
                .clone()
                .expect("an accepted webhook to replay"),
            _ => format!("msg_{}", uuid::Uuid::new_v4().simple()),
        };
        let at = now_unix() + case.timestamp_offset_secs;
        let headers = match case.signature {
            Signature::None => Vec::new(),
            Signature::Intruder => intruder.sign(&id, at, &body).pairs().to_vec(),
            Signature::Valid | Signature::Replay | Signature::Tampered => {
                system.sign(&id, at, &body).to_vec()
            }
        };
        if case.signature == Signature::Tampered {
            body.push(b' ');
        }
        let (status, answer) = system.post(&case.route, body, &headers).await;
        let outcome = answer["reason"]
            .as_str()
            .or(answer["status"].as_str())
            .unwrap_or_default();
        if status == 202 {
            last_accepted = Some(id);
        }
        if (status, outcome) != (case.expect.status, case.expect.outcome.as_str()) {
            failures.push(format!(
                "webhook {:?}: got {status} {answer}, expected {} {}",
                case.case, case.expect.status, case.expect.outcome
            ));
        }
    }
    failures
}

/// Checks a packaged entry: its files as exported, its metadata holding the hostile values as
/// data, its README holding none of them as markup.
async fn check_package(system: &System, case: &EntryCase) -> Vec<String> {
    let package = format!("{PKG_PREFIX}/{}", case.display_id);
    let built = eventually(Duration::from_secs(60), || async {
        (system.revisions(&package) >= 1).then_some(())
    })
    .await;
    if built.is_none() {
        return vec![format!("entry {:?}: {package} was never built", case.case)];
    }
    let mut failures = Vec::new();
    let mut expected: BTreeSet<String> = case.archive.members().into_iter().collect();
    expected.extend(
        bw_packager::metadata::METADATA_FILES
            .iter()
            .map(|n| (*n).to_owned()),
    );
    let stored: BTreeSet<String> = system
        .keys(&format!("{package}/"))
        .await
        .into_iter()
        .map(|key| key[package.len() + 1..].to_owned())
        .collect();
    if stored != expected {
        failures.push(format!(
            "entry {:?}: {package} holds {stored:?}, expected {expected:?}",
            case.case
        ));
    }
    let entry: Value =
        serde_json::from_slice(&system.object(&format!("{package}/entry.json")).await).unwrap();
    if let Some(name) = &case.name
        && entry["name"] != json!(name)
    {
        failures.push(format!(
            "entry {:?}: entry.json names it {}",
            case.case, entry["name"]
        ));
    }
    if let Some(Value::Object(fields)) = &case.fields {
        let data: Value =
            serde_json::from_slice(&system.object(&format!("{package}/entry_data.json")).await)
                .unwrap();
        for (key, field) in fields {
            if data["fields"][key]["value"] != field["value"] {
                failures.push(format!(
                    "entry {:?}: field {key:?} is {}",
                    case.case, data["fields"][key]
                ));
            }
        }
    }
    let readme = String::from_utf8(system.object(&format!("{package}/README.md")).await).unwrap();
    for markup in &case.readme_lacks {
        if readme.contains(markup.as_str()) {
            failures.push(format!(
                "entry {:?}: the README holds {markup:?}:\n{readme}",
                case.case
            ));
        }
    }
    failures
}

#[tokio::test(flavor = "multi_thread")]
async fn every_hostile_input_gets_its_expected_outcome_and_writes_nothing_else() {
    bounded_by(Duration::from_secs(600), async {
        let corpus = corpus();
        let mut system = System::start(Options::default()).await;
        let scratch = tempfile::tempdir().unwrap();
        let mut failures = refuse_templates(&mut system, &corpus.readme_templates, scratch.path()).await;

        for case in &corpus.entries {
            serve(&system, case);
        }
        failures.extend(send_webhooks(&system, &corpus.webhooks).await);
        for case in &corpus.entries {
            system.deliver("/event", &entry_updated(&case.entry)).await;
        }

        let refused: BTreeMap<&str, &EntryCase> = corpus
            .entries
            .iter()
            .filter(|case| matches!(case.expect, EntryOutcome::DeadLetter(_)))
            .map(|case| (case.entry.as_str(), case))
            .collect();
        let parked = refused.len() as u64;
        assert_drained_within(&system, Duration::from_secs(180), |queue| {
            if queue == QueueName::EXPORT { parked } else { 0 }
        })
        .await;
        let mut reasons: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (job, reason) in system.dead_letters_with_reasons(QueueName::EXPORT).await {
            let entry = job["job"]["entry_id"].as_str().unwrap_or_default().to_owned();
            reasons.entry(entry).or_default().push(reason);
        }
        for case in &corpus.entries {
            match &case.expect {
                EntryOutcome::Packaged => failures.extend(check_package(&system, case).await),
                EntryOutcome::DeadLetter(expected) => {
                    let got = reasons.get(&case.entry).cloned().unwrap_or_default();
                    if got.len() != 1 || !got[0].contains(expected.as_str()) {
                        failures.push(format!(
                            "entry {:?}: dead-lettered with {got:?}, expected one reason containing {expected:?}",
                            case.case
                        ));
                    }
                    // The canvas worker keeps the failure, so the entry's canvas shows why.
                    let record: Value =
                        serde_json::from_slice(&system.object(&canvas_record(case)).await).unwrap();
                    let shown = record["failure"]["reason"].as_str().unwrap_or_default();
                    if !shown.contains(expected.as_str()) {
                        failures.push(format!("entry {:?}: the canvas record shows {record}", case.case));
                    }
                }
            }
        }

        // Nothing outside the packaged entries' prefixes but their bookkeeping and Quilt's
        // registry; of a refused entry, only the canvas record of its failure.
        let packaged: Vec<&EntryCase> = corpus
            .entries
            .iter()
            .filter(|case| matches!(case.expect, EntryOutcome::Packaged))
            .collect();
        for key in system.keys("").await {
            let allowed = packaged.iter().any(|case| {
                key.starts_with(&format!("{PKG_PREFIX}/{}/", case.display_id))
                    || key.starts_with(&format!(".benchling-webhook/entries/{}/", case.entry))
                    || key.starts_with(&format!(".quilt/named_packages/{PKG_PREFIX}/{}/", case.display_id))
            }) || key.starts_with(".quilt/packages/")
                || refused.values().any(|case| key == canvas_record(case));
            if !allowed {
                failures.push(format!("unexpected object {key:?}"));
            }
        }
        assert!(
            failures.is_empty(),
            "{} of the corpus's cases failed:\n{}{}",
            failures.len(),
            failures.join("\n"),
            system.logs()
        );
        system.stop().await;
    })
    .await;
}
