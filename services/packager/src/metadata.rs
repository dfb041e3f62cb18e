//! The package's metadata files, with the shapes of the upstream service so Quilt catalogs and
//! users of the old system see the same files: `entry.json` (the package metadata),
//! `entry_data.json`, `links.json`, `input.json` and `README.md`.
//!
//! Fixed on the way: timestamps are real (the event's time, never empty), no pre-signed URL is
//! stored anywhere (`input.json` drops `export_url`), and the README escapes every value.
//! JSON is written as UTF-8 with two-space indents (upstream escaped non-ASCII as `\u…`; both
//! parse to the same values).

use std::collections::{BTreeMap, HashMap};

use bw_benchling::{Entry, Person};
use bw_contracts::{PackageFile, RenderJob};
use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::readme::{Readme, ReadmeContext, ReadmeFile, TemplateError};
use crate::references::{References, slug};

/// The metadata file names, in the order they are written (README last, so a reader that sees
/// it sees the rest).
pub const METADATA_FILES: [&str; 5] = [
    "entry.json",
    "entry_data.json",
    "links.json",
    "input.json",
    "README.md",
];

/// What the metadata of one entry version is made from.
#[derive(Clone, Debug)]
pub struct Inputs<'a> {
    /// The render job.
    pub job: &'a RenderJob,
    /// The entry, from the claim check.
    pub entry: &'a Entry,
    /// The attachments written by the exporter.
    pub files: &'a [PackageFile],
    /// What the entry refers to.
    pub references: &'a References,
    /// Names found for referenced ids.
    pub names: &'a HashMap<String, String>,
    /// The tenant URL when the webhook carried none (`https://{tenant}.benchling.com`).
    pub default_base_url: &'a str,
}

impl Inputs<'_> {
    /// `{pkg_prefix}/{display_id}`.
    pub fn package_name(&self) -> &str {
        &self.job.package_prefix
    }

    fn base_url(&self) -> &str {
        self.job
            .base_url
            .as_deref()
            .unwrap_or(self.default_base_url)
    }

    /// The event's time, RFC 3339: the export timestamp and the commit message's time.
    pub fn export_timestamp(&self) -> String {
        self.job
            .trigger
            .occurred_at
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
    }

    /// The attachments, without any that carries a metadata file's name.
    fn attachments(&self) -> impl Iterator<Item = &PackageFile> {
        self.files
            .iter()
            .filter(|file| !METADATA_FILES.contains(&file.name.as_str()))
    }
}

/// The rendered files: (name, bytes) in [`METADATA_FILES`] order.
pub fn render(
    inputs: &Inputs<'_>,
    readme: &Readme,
) -> Result<Vec<(&'static str, Vec<u8>)>, TemplateError> {
    Ok(vec![
        ("entry.json", pretty(&entry_json(inputs))),
        ("entry_data.json", pretty(&entry_data(inputs.entry))),
        ("links.json", pretty(&links_json(inputs.references))),
        ("input.json", pretty(&input_json(inputs))),
        (
            "README.md",
            readme.render(&readme_context(inputs))?.into_bytes(),
        ),
    ])
}

fn pretty(value: &impl Serialize) -> Vec<u8> {
    let mut bytes = serde_json::to_vec_pretty(value).expect("metadata serializes");
    bytes.push(b'\n');
    bytes
}

/// `Name <handle@id>`, or `None` for a person without a name.
fn person(person: &Person) -> Option<String> {
    let name = person.name.as_deref().filter(|n| !n.is_empty())?;
    Some(format!(
        "{name} <{}@{}>",
        person.handle.as_deref().unwrap_or_default(),
        person.id
    ))
}

/// A timestamp exactly as Benchling wrote it, else the parsed one.
fn api_time(entry: &Entry, key: &str, parsed: &chrono::DateTime<chrono::Utc>) -> String {
    entry
        .raw
        .get(key)
        .and_then(Value::as_str)
        .map_or_else(|| parsed.to_rfc3339(), str::to_owned)
}

#[derive(Serialize)]
struct FileRef<'a> {
    s3_key: &'a str,
    size: u64,
}

#[derive(Serialize)]
struct LinkRef<'a> {
    #[serde(rename = "type")]
    link_type: &'a str,
    id: Option<&'a str>,
    name: Option<&'a str>,
    slug: Option<String>,
}

/// `entry.json`, keys in the upstream order.
#[derive(Serialize)]
struct EntryJson<'a> {
    package_name: &'a str,
    entry_id: &'a str,
    display_id: &'a str,
    name: &'a str,
    web_url: &'a str,
    creator: String,
    authors: Vec<String>,
    created_at: String,
    modified_at: String,
    export_timestamp: String,
    benchling_base_url: &'a str,
    webhook_data: Value,
    files: BTreeMap<&'a str, FileRef<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    canvas_id: Option<&'a str>,
    links: Vec<LinkRef<'a>>,
}

fn entry_json<'a>(inputs: &'a Inputs<'a>) -> EntryJson<'a> {
    let entry = inputs.entry;
    let trigger = &inputs.job.trigger;
    // The job carries the event's identity, not its whole message.
    let mut webhook_data = json!({
        "type": trigger.event_type.as_str(),
        "resourceId": entry.id.as_str(),
        "createdAt": inputs.export_timestamp(),
    });
    if let Some(event) = &trigger.event_id {
        webhook_data["id"] = Value::from(event.as_str());
    }
    EntryJson {
        package_name: inputs.package_name(),
        entry_id: entry.id.as_str(),
        display_id: &entry.display_id,
        name: &entry.name,
        web_url: &entry.web_url,
        creator: entry.creator.as_ref().and_then(person).unwrap_or_default(),
        authors: entry.authors.iter().filter_map(person).collect(),
        created_at: api_time(entry, "createdAt", &entry.created_at),
        modified_at: api_time(entry, "modifiedAt", &entry.modified_at),
        export_timestamp: inputs.export_timestamp(),
        benchling_base_url: inputs.base_url(),
        webhook_data,
        files: inputs
            .attachments()
            .map(|file| {
                (
                    file.name.as_str(),
                    FileRef {
                        s3_key: &file.key,
                        size: file.size,
                    },
                )
            })
            .collect(),
        canvas_id: inputs.job.canvas_id.as_ref().map(|c| c.as_str()),
        links: inputs
            .references
            .links
            .iter()
            .map(|link| LinkRef {
                link_type: &link.link_type,
                id: link.id.as_deref(),
                name: link
                    .id
                    .as_ref()
                    .and_then(|id| inputs.names.get(id))
                    .map(String::as_str),
                slug: link
                    .id
                    .as_deref()
                    .zip(link.web_url.as_deref())
                    .and_then(|(id, url)| slug(id, url)),
            })
            .collect(),
    }
}

/// `entry_data.json`: the entry as Benchling sent it, plus the snake-case keys upstream added.
fn entry_data(entry: &Entry) -> Value {
    let mut data = entry.raw.as_object().cloned().unwrap_or_else(Map::new);
    let mut add = |key: &str, value: Value| {
        data.entry(key.to_owned()).or_insert(value);
    };
    add("display_id", Value::from(entry.display_id.as_str()));
    add("web_url", Value::from(entry.web_url.as_str()));
    add("created_at", Value::from(entry.created_at.to_rfc3339()));
    add(
        "modified_at",
        Value::from(api_time(entry, "modifiedAt", &entry.modified_at)),
    );
    Value::Object(data)
}

/// `links.json`, schema version 2, keys in the upstream order.
#[derive(Serialize)]
struct LinksJson<'a> {
    schema_version: u32,
    entities: &'a [crate::references::EntityRef],
    links: Vec<NoteLinkJson<'a>>,
    results_tables: &'a [crate::references::ResultsTable],
}

#[derive(Serialize)]
struct NoteLinkJson<'a> {
    id: Option<&'a str>,
    #[serde(rename = "type")]
    link_type: &'a str,
    web_url: Option<&'a str>,
}

fn links_json(references: &References) -> LinksJson<'_> {
    LinksJson {
        schema_version: 2,
        entities: &references.entities,
        links: references
            .links
            .iter()
            .map(|link| NoteLinkJson {
                id: link.id.as_deref(),
                link_type: &link.link_type,
                web_url: link.web_url.as_deref(),
            })
            .collect(),
        results_tables: &references.results_tables,
    }
}

/// `input.json`, without the pre-signed export URL upstream stored.
#[derive(Serialize)]
struct InputJson<'a> {
    source: &'static str,
    processing_timestamp: String,
    package_metadata: PackageMetadata<'a>,
}

#[derive(Serialize)]
struct PackageMetadata<'a> {
    name: &'a str,
    registry: &'a str,
    total_files: usize,
}

fn input_json<'a>(inputs: &'a Inputs<'a>) -> InputJson<'a> {
    InputJson {
        source: "benchling_webhook",
        processing_timestamp: inputs.export_timestamp(),
        package_metadata: PackageMetadata {
            name: inputs.package_name(),
            registry: &inputs.job.bucket,
            total_files: inputs.attachments().count(),
        },
    }
}

fn readme_context(inputs: &Inputs<'_>) -> ReadmeContext {
    let entry = inputs.entry;
    ReadmeContext {
        package_name: inputs.package_name().to_owned(),
        display_id: entry.display_id.clone(),
        entry_id: entry.id.to_string(),
        name: entry.name.clone(),
        web_url: entry.web_url.clone(),
        creator: entry.creator.as_ref().and_then(person).unwrap_or_default(),
        authors: entry.authors.iter().filter_map(person).collect(),
        created_at: api_time(entry, "createdAt", &entry.created_at),
        modified_at: api_time(entry, "modifiedAt", &entry.modified_at),
        export_timestamp: inputs.export_timestamp(),
        benchling_base_url: inputs.base_url().to_owned(),
        files: inputs
            .attachments()
            .map(|file| ReadmeFile {
                name: file.name.clone(),
                size: file.size,
            })
            .collect(),
    }
}
