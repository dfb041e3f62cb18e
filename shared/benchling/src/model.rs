//! What the Benchling API returns, parsed once at the edge into the types the workers use.

use std::fmt;

use bw_contracts::{AppId, CanvasId, EntryId, FeatureId};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use url::Url;

/// A Benchling async task id (`POST /exports` returns one).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TaskId(String);

impl TaskId {
    /// Validates a task id: Benchling uses UUIDs; anything outside letters, digits, `_` and `-`
    /// is refused because the id goes into a URL path.
    pub fn parse(raw: impl Into<String>) -> Option<Self> {
        let raw = raw.into();
        let valid = !raw.is_empty()
            && raw.len() <= 128
            && raw
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        valid.then_some(Self(raw))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A Benchling user as entries show them (`creator`, `authors`).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
pub struct Person {
    /// User id (`ent_…`).
    pub id: String,
    /// Login handle.
    #[serde(default)]
    pub handle: Option<String>,
    /// Display name.
    #[serde(default)]
    pub name: Option<String>,
}

/// A notebook entry (`GET /entries/{id}`).
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    /// Entry id.
    pub id: EntryId,
    /// Human id such as `EXP25000007`; the entry id when Benchling gives none.
    pub display_id: String,
    /// Entry name.
    pub name: String,
    /// Link to the entry in Benchling.
    pub web_url: String,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last modification time (with the id, the key of an export).
    pub modified_at: DateTime<Utc>,
    /// Who created it.
    pub creator: Option<Person>,
    /// Its authors.
    pub authors: Vec<Person>,
    /// The `entry` object exactly as Benchling sent it (`entry_data.json` reproduces it).
    pub raw: Value,
}

/// The typed part of an entry, read from the raw object.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EntryFields {
    pub(crate) id: EntryId,
    #[serde(default)]
    pub(crate) display_id: Option<String>,
    // Benchling may omit the name of an unnamed entry.
    #[serde(default)]
    pub(crate) name: String,
    #[serde(rename = "webURL")]
    pub(crate) web_url: String,
    pub(crate) created_at: DateTime<Utc>,
    pub(crate) modified_at: DateTime<Utc>,
    #[serde(default)]
    pub(crate) creator: Option<Person>,
    #[serde(default)]
    pub(crate) authors: Vec<Person>,
}

impl Entry {
    /// Reads an entry object as `GET /entries/{id}` returns it under `entry` (for example a
    /// stored claim check).
    pub fn from_value(raw: Value) -> Result<Self, serde_json::Error> {
        let fields = EntryFields::deserialize(&raw)?;
        Ok(Self::new(fields, raw))
    }

    fn new(fields: EntryFields, raw: Value) -> Self {
        Self {
            display_id: fields
                .display_id
                .filter(|d| !d.is_empty())
                .unwrap_or_else(|| fields.id.to_string()),
            id: fields.id,
            name: fields.name,
            web_url: fields.web_url,
            created_at: fields.created_at,
            modified_at: fields.modified_at,
            creator: fields.creator,
            authors: fields.authors,
            raw,
        }
    }
}

/// Where an async task stands (`GET /tasks/{id}`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TaskStatus {
    /// `QUEUED` or `RUNNING`: poll again later.
    Running,
    /// Done; the export ZIP is at this pre-signed URL.
    Succeeded {
        /// `response.downloadURL`.
        download_url: Url,
    },
    /// Benchling gave up; `message` carries its `message` and `errors`.
    Failed {
        /// Benchling's reason.
        message: String,
    },
}

/// An app canvas (`GET /app-canvases/{id}`, or the answer to a create or update).
#[derive(Clone, Debug, PartialEq)]
pub struct AppCanvas {
    /// Canvas id.
    pub id: CanvasId,
    /// The app feature that owns it.
    pub feature_id: Option<FeatureId>,
    /// What it is attached to (an entry id for our canvases).
    pub resource_id: Option<String>,
    /// The app.
    pub app_id: Option<AppId>,
    /// Whether users can interact with it.
    pub enabled: bool,
    /// Whether it was archived (it has an `archiveRecord`).
    pub archived: bool,
    /// Its blocks, as Benchling returned them.
    pub blocks: Value,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AppCanvasFields {
    pub(crate) id: CanvasId,
    #[serde(default)]
    pub(crate) feature_id: Option<FeatureId>,
    #[serde(default)]
    pub(crate) resource_id: Option<String>,
    #[serde(default)]
    pub(crate) app: Option<AppRef>,
    #[serde(default)]
    pub(crate) enabled: bool,
    #[serde(default)]
    pub(crate) archive_record: Option<Value>,
    #[serde(default)]
    pub(crate) blocks: Value,
}

#[derive(Deserialize)]
pub(crate) struct AppRef {
    pub(crate) id: AppId,
}

impl From<AppCanvasFields> for AppCanvas {
    fn from(fields: AppCanvasFields) -> Self {
        Self {
            id: fields.id,
            feature_id: fields.feature_id,
            resource_id: fields.resource_id,
            app_id: fields.app.map(|a| a.id),
            enabled: fields.enabled,
            archived: fields.archive_record.is_some(),
            blocks: fields.blocks,
        }
    }
}

/// A canvas to create (`POST /app-canvases`).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NewAppCanvas {
    /// The app that owns the canvas, when Benchling needs it said explicitly.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_id: Option<AppId>,
    /// The app feature.
    pub feature_id: FeatureId,
    /// What to attach it to (an entry id).
    pub resource_id: String,
    /// Whether users can interact with it.
    pub enabled: bool,
    /// The blocks (a JSON array).
    pub blocks: Value,
}

/// The note-link types whose names Benchling can look up in bulk, with the
/// endpoint, id parameter and response list of each. The one table of these in the code.
const NAME_LOOKUPS: &[NameLookup] = &[
    NameLookup::new(
        "custom_entity",
        "custom-entities",
        "customEntityIds",
        "customEntities",
    ),
    NameLookup::new(
        "dna_sequence",
        "dna-sequences",
        "dnaSequenceIds",
        "dnaSequences",
    ),
    NameLookup::new(
        "aa_sequence",
        "aa-sequences",
        "aaSequenceIds",
        "aaSequences",
    ),
    NameLookup::new("batch", "batches", "batchIds", "batches"),
    NameLookup::new("container", "containers", "containerIds", "containers"),
    NameLookup::new("plate", "plates", "plateIds", "plates"),
    NameLookup::new("box", "boxes", "boxIds", "boxes"),
    NameLookup::new("location", "locations", "locationIds", "locations"),
    NameLookup::new("entry", "entries", "entryIds", "entries"),
];

/// How to look up the names of one link type: `GET /{collection}:bulk-get?{ids_param}=a,b`
/// answers `{"{list_key}": [{"id", "name", …}]}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NameLookup {
    /// The note-link `type`, e.g. `custom_entity`.
    pub link_type: &'static str,
    collection: &'static str,
    ids_param: &'static str,
    list_key: &'static str,
}

impl NameLookup {
    const fn new(
        link_type: &'static str,
        collection: &'static str,
        ids_param: &'static str,
        list_key: &'static str,
    ) -> Self {
        Self {
            link_type,
            collection,
            ids_param,
            list_key,
        }
    }

    /// The lookup for a note-link type; `None` for types Benchling cannot name in bulk.
    pub fn for_link_type(link_type: &str) -> Option<Self> {
        NAME_LOOKUPS
            .iter()
            .find(|l| l.link_type == link_type)
            .copied()
    }

    pub(crate) fn path(&self) -> String {
        format!("{}:bulk-get", self.collection)
    }

    pub(crate) fn ids_param(&self) -> &'static str {
        self.ids_param
    }

    pub(crate) fn list_key(&self) -> &'static str {
        self.list_key
    }
}
