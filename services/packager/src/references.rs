//! What an entry refers to: the links in its notes, the entities named in its fields, and its
//! results tables. Pure: reads the raw entry JSON, calls nothing.
//!
//! The rules are the upstream service's, so `links.json` and the `links` of `entry.json` keep
//! their meaning for users of the old system: 18 note-link types in categories, links deduplicated
//! by id (else by URL, first seen wins), entity references from ENTITY-type links and from fields
//! whose type mentions `entity`, results tables deduplicated by (API id, schema id), and slugs
//! taken from link URLs.

use std::collections::HashSet;

use serde::Serialize;
use serde_json::Value;

/// How the packager treats a note-link type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkCategory {
    /// Registry entities: `custom_entity`, `dna_sequence`, `aa_sequence`, `batch`.
    Entity,
    /// Inventory: `container`, `box`, `plate`, `location`.
    Inventory,
    /// Other Benchling objects: `entry`, `request`, `workflow`.
    Reference,
    /// People and folders: `user`, `folder`.
    Metadata,
    /// Dashboards and protocols: `sql_dashboard`, `insights_dashboard`, `protocol`.
    NotPackageable,
    /// `stage_entry`.
    Uncertain,
    /// Plain web links: `link`.
    External,
    /// Anything else, including an empty type.
    Unknown,
}

impl LinkCategory {
    /// The category of a note-link `type`.
    pub fn of(link_type: &str) -> Self {
        match link_type {
            "custom_entity" | "dna_sequence" | "aa_sequence" | "batch" => Self::Entity,
            "container" | "box" | "plate" | "location" => Self::Inventory,
            "entry" | "request" | "workflow" => Self::Reference,
            "user" | "folder" => Self::Metadata,
            "sql_dashboard" | "insights_dashboard" | "protocol" => Self::NotPackageable,
            "stage_entry" => Self::Uncertain,
            "link" => Self::External,
            _ => Self::Unknown,
        }
    }

    /// Whether Benchling can be asked for the object's name.
    pub fn is_fetchable(self) -> bool {
        matches!(self, Self::Entity | Self::Inventory | Self::Reference)
    }
}

/// A link in a note (`days[].notes[].links[]`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NoteLink {
    /// The link type (`custom_entity`, `link`, …).
    #[serde(rename = "type")]
    pub link_type: String,
    /// The linked object's id, when it has one.
    pub id: Option<String>,
    /// The link's URL, when it has one.
    pub web_url: Option<String>,
}

/// Where an entity reference was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// A link in a note.
    NoteLink,
    /// A field of the entry.
    EntityField,
}

/// An entity the entry refers to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct EntityRef {
    /// The entity's id.
    pub id: String,
    /// The link type, or the field's type for field references.
    #[serde(rename = "type")]
    pub entity_type: String,
    /// The link's URL (fields carry none).
    pub web_url: Option<String>,
    /// Where it was found.
    pub source: Source,
}

/// A results table in a note.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ResultsTable {
    /// The assay result schema.
    pub assay_result_schema_id: String,
    /// The table's API id.
    pub api_id: Option<String>,
    /// The table's name, when the note has one.
    pub name: Option<String>,
}

/// Everything an entry refers to, in the order first seen.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct References {
    /// Entities from ENTITY-type links, then from entity fields; deduplicated by id.
    pub entities: Vec<EntityRef>,
    /// Every note link, deduplicated by id, else by URL.
    pub links: Vec<NoteLink>,
    /// Results tables, deduplicated by (API id, schema id).
    pub results_tables: Vec<ResultsTable>,
}

impl References {
    /// Reads the references of a raw entry object (`GET /entries/{id}` → `entry`).
    pub fn discover(entry: &Value) -> Self {
        let notes: Vec<&Value> = entry
            .get("days")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|day| day.get("notes").and_then(Value::as_array))
            .flatten()
            .collect();
        let links = classify(
            notes
                .iter()
                .filter_map(|note| note.get("links").and_then(Value::as_array))
                .flatten()
                .filter_map(note_link),
        );
        let mut seen = HashSet::new();
        let mut entities: Vec<EntityRef> = links
            .iter()
            .filter(|link| LinkCategory::of(&link.link_type) == LinkCategory::Entity)
            .filter_map(|link| {
                let id = link.id.clone()?;
                Some(EntityRef {
                    id,
                    entity_type: link.link_type.clone(),
                    web_url: link.web_url.clone(),
                    source: Source::NoteLink,
                })
            })
            .filter(|entity| seen.insert(entity.id.clone()))
            .collect();
        entities.extend(
            entity_fields(entry.get("fields"))
                .into_iter()
                .filter(|entity| seen.insert(entity.id.clone())),
        );
        let mut tables_seen = HashSet::new();
        let results_tables = notes
            .iter()
            .filter(|note| note.get("type").and_then(Value::as_str) == Some("results_table"))
            .filter_map(|note| {
                let schema = text(note.get("assayResultSchemaId"))?;
                Some(ResultsTable {
                    assay_result_schema_id: schema,
                    api_id: text(note.get("apiId")),
                    name: text(note.get("name")),
                })
            })
            .filter(|table| {
                tables_seen.insert((table.api_id.clone(), table.assay_result_schema_id.clone()))
            })
            .collect();
        Self {
            entities,
            links,
            results_tables,
        }
    }
}

/// A non-empty string value.
fn text(value: Option<&Value>) -> Option<String> {
    value
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

fn note_link(raw: &Value) -> Option<NoteLink> {
    raw.as_object()?;
    Some(NoteLink {
        link_type: text(raw.get("type")).unwrap_or_default(),
        id: text(raw.get("id")),
        web_url: text(raw.get("webURL")).or_else(|| text(raw.get("web_url"))),
    })
}

/// Deduplicates by id, else by URL; the first seen wins. Links with neither are kept.
fn classify(links: impl Iterator<Item = NoteLink>) -> Vec<NoteLink> {
    let mut seen = HashSet::new();
    links
        .filter(|link| match (&link.id, &link.web_url) {
            (Some(id), _) => seen.insert(format!("id:{id}")),
            (None, Some(url)) => seen.insert(format!("url:{url}")),
            (None, None) => true,
        })
        .collect()
}

/// Entity references in the entry's fields: a name-keyed object or a list of field objects,
/// each whose `type` contains `entity` (any case), with a string value or a list of them.
fn entity_fields(fields: Option<&Value>) -> Vec<EntityRef> {
    let fields: Vec<&Value> = match fields {
        Some(Value::Object(map)) => map.values().collect(),
        Some(Value::Array(list)) => list.iter().collect(),
        _ => Vec::new(),
    };
    fields
        .into_iter()
        .filter_map(|field| {
            let field_type = text(field.get("type"))?;
            field_type
                .to_ascii_lowercase()
                .contains("entity")
                .then_some((field_type, field.get("value")?))
        })
        .flat_map(|(field_type, value)| {
            let ids: Vec<String> = match value {
                Value::String(_) => text(Some(value)).into_iter().collect(),
                Value::Array(items) => items.iter().filter_map(|v| text(Some(v))).collect(),
                _ => Vec::new(),
            };
            ids.into_iter().map(move |id| EntityRef {
                id,
                entity_type: field_type.clone(),
                web_url: None,
                source: Source::EntityField,
            })
        })
        .collect()
}

/// The human part of a Benchling URL after the object's id: in
/// `…/bfi-AbC-qb-2743-1/edit` for id `bfi_AbC` it is `qb-2743-1`. `None` when the URL has no
/// segment starting with the id, or nothing follows it.
pub fn slug(id: &str, web_url: &str) -> Option<String> {
    let normalized_id = format!("{}-", id.replace('_', "-"));
    let path = web_url
        .split(['?', '#'])
        .next()
        .unwrap_or_default()
        .split_once("://")
        .map_or(web_url, |(_, rest)| {
            rest.split_once('/').map_or("", |(_, p)| p)
        });
    path.split('/')
        .filter(|segment| *segment != "edit")
        .find_map(|segment| {
            segment
                .replace('_', "-")
                .strip_prefix(&normalized_id)
                .filter(|rest| !rest.is_empty())
                .map(str::to_owned)
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn categories_cover_the_eighteen_types() {
        let types = [
            ("custom_entity", LinkCategory::Entity),
            ("dna_sequence", LinkCategory::Entity),
            ("aa_sequence", LinkCategory::Entity),
            ("batch", LinkCategory::Entity),
            ("container", LinkCategory::Inventory),
            ("box", LinkCategory::Inventory),
            ("plate", LinkCategory::Inventory),
            ("location", LinkCategory::Inventory),
            ("entry", LinkCategory::Reference),
            ("request", LinkCategory::Reference),
            ("workflow", LinkCategory::Reference),
            ("user", LinkCategory::Metadata),
            ("folder", LinkCategory::Metadata),
            ("sql_dashboard", LinkCategory::NotPackageable),
            ("insights_dashboard", LinkCategory::NotPackageable),
            ("protocol", LinkCategory::NotPackageable),
            ("stage_entry", LinkCategory::Uncertain),
            ("link", LinkCategory::External),
        ];
        for (link_type, category) in types {
            assert_eq!(LinkCategory::of(link_type), category, "{link_type}");
        }
        assert_eq!(LinkCategory::of(""), LinkCategory::Unknown);
        assert_eq!(LinkCategory::of("Custom_Entity"), LinkCategory::Unknown);
        assert!(LinkCategory::Inventory.is_fetchable());
        assert!(!LinkCategory::Metadata.is_fetchable());
    }

    #[test]
    fn links_dedupe_by_id_then_url_and_entities_come_from_links_and_fields() {
        let entry = json!({
            "days": [{"notes": [
                {"type": "text", "links": [
                    {"type": "custom_entity", "id": "bfi_1", "webURL": "https://t.benchling.com/benchling/f/lib_x/bfi-1-strain-a/edit"},
                    {"type": "custom_entity", "id": "bfi_1", "webURL": "https://elsewhere"},
                    {"type": "link", "webURL": "https://example.com/a"},
                    {"type": "link", "web_url": "https://example.com/a"},
                    {"type": "box", "id": "box_1"}
                ]},
                {"type": "results_table", "assayResultSchemaId": "assaysch_1", "apiId": "tbl_1", "links": []},
                {"type": "results_table", "assayResultSchemaId": "assaysch_1", "apiId": "tbl_1"},
                {"type": "results_table", "assayResultSchemaId": "assaysch_1", "apiId": "tbl_2"}
            ]}],
            "fields": {
                "Strain": {"type": "entity_link", "value": "bfi_1", "isMulti": false},
                "Plasmids": {"type": "Entity_Link", "value": ["seq_1", "", "seq_2"], "isMulti": true},
                "Notes": {"type": "text", "value": "bfi_9"},
                "Empty": {"type": "entity_link", "value": null}
            }
        });
        let refs = References::discover(&entry);
        assert_eq!(refs.links.len(), 3);
        assert_eq!(
            refs.links[0].web_url.as_deref().unwrap(),
            "https://t.benchling.com/benchling/f/lib_x/bfi-1-strain-a/edit"
        );
        let ids: Vec<(&str, Source)> = refs
            .entities
            .iter()
            .map(|e| (e.id.as_str(), e.source))
            .collect();
        assert_eq!(
            ids,
            [
                ("bfi_1", Source::NoteLink),
                ("seq_1", Source::EntityField),
                ("seq_2", Source::EntityField)
            ]
        );
        assert_eq!(refs.entities[1].entity_type, "Entity_Link");
        let tables: Vec<_> = refs
            .results_tables
            .iter()
            .map(|t| t.api_id.as_deref())
            .collect();
        assert_eq!(tables, [Some("tbl_1"), Some("tbl_2")]);
    }

    #[test]
    fn slugs_follow_the_id_segment() {
        assert_eq!(
            slug(
                "bfi_AbC",
                "https://t.benchling.com/benchling/f/lib/bfi-AbC-qb-2743-1/edit?x=1"
            ),
            Some("qb-2743-1".to_owned())
        );
        assert_eq!(
            slug("bfi_AbC", "https://t.benchling.com/x/bfi-AbC/edit"),
            None
        );
        assert_eq!(slug("bfi_AbC", "https://t.benchling.com/x/y"), None);
        assert_eq!(
            slug("box_1", "https://t.benchling.com/box_1-freezer#top"),
            Some("freezer".to_owned())
        );
    }

    #[test]
    fn the_fixture_entry_has_no_references() {
        let fixture: Value = serde_json::from_str(include_str!(
            "../../../tests/fixtures/benchling-events/entry.json"
        ))
        .unwrap();
        assert_eq!(
            References::discover(&fixture["entry"]),
            References::default()
        );
    }
}
