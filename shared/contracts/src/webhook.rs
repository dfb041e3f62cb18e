//! Typed Benchling webhook payloads.
//!
//! Every webhook is an envelope (`version`, `baseURL`, `tenantId`, `app`, `appDefinition`,
//! `channel`) around a `message` whose `type` decides its shape. Unknown types parse as
//! [`Message::Other`]: Benchling adds event types, and those must be acknowledged, not refused.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::id::{AppDefinitionId, AppId, CanvasId, EntryId, EventId, FeatureId, IdError, UserId};

/// The webhook event types we know, plus everything else.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum EventType {
    /// `v2.entry.created`
    EntryCreated,
    /// `v2.entry.updated.fields`
    EntryUpdatedFields,
    /// `v2.entry.updated.reviewRecord`
    EntryUpdatedReviewRecord,
    /// `v2.canvas.userInteracted`
    CanvasUserInteracted,
    /// `v2.canvas.created`
    CanvasCreated,
    /// `v2-beta.canvas.created`
    CanvasCreatedBeta,
    /// `v2.canvas.initialized`
    CanvasInitialized,
    /// `v2.app.installed`
    AppInstalled,
    /// `v2.app.activateRequested`
    AppActivateRequested,
    /// `v2.app.deactivated`
    AppDeactivated,
    /// `v2-beta.app.configuration.updated`
    AppConfigurationUpdated,
    /// Any other type, kept verbatim.
    Other(String),
}

impl EventType {
    const KNOWN: [(&'static str, EventType); 11] = [
        ("v2.entry.created", EventType::EntryCreated),
        ("v2.entry.updated.fields", EventType::EntryUpdatedFields),
        (
            "v2.entry.updated.reviewRecord",
            EventType::EntryUpdatedReviewRecord,
        ),
        ("v2.canvas.userInteracted", EventType::CanvasUserInteracted),
        ("v2.canvas.created", EventType::CanvasCreated),
        ("v2-beta.canvas.created", EventType::CanvasCreatedBeta),
        ("v2.canvas.initialized", EventType::CanvasInitialized),
        ("v2.app.installed", EventType::AppInstalled),
        ("v2.app.activateRequested", EventType::AppActivateRequested),
        ("v2.app.deactivated", EventType::AppDeactivated),
        (
            "v2-beta.app.configuration.updated",
            EventType::AppConfigurationUpdated,
        ),
    ];

    /// Maps a wire name to its variant; never fails.
    pub fn parse(raw: &str) -> Self {
        Self::KNOWN
            .iter()
            .find(|(name, _)| *name == raw)
            .map_or_else(|| Self::Other(raw.to_owned()), |(_, t)| t.clone())
    }

    /// The wire name.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Other(raw) => raw,
            known => Self::KNOWN
                .iter()
                .find(|(_, t)| t == known)
                .map_or("", |(name, _)| name),
        }
    }

    /// The message types our app manifest subscribes to: every type the ingress handles except
    /// `v2-beta.canvas.created`, the older name of `v2.canvas.created`, which it still accepts
    /// from apps subscribed to it; subscribing to both could deliver one new canvas twice.
    pub fn subscribed() -> impl Iterator<Item = &'static str> {
        Self::KNOWN
            .iter()
            .filter(|(_, kind)| *kind != Self::CanvasCreatedBeta)
            .map(|(name, _)| *name)
    }

    /// Whether this is an app lifecycle signal (`/lifecycle`).
    pub fn is_lifecycle(&self) -> bool {
        matches!(
            self,
            Self::AppInstalled
                | Self::AppActivateRequested
                | Self::AppDeactivated
                | Self::AppConfigurationUpdated
        )
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for EventType {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for EventType {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Self::parse(&String::deserialize(d)?))
    }
}

/// A parsed webhook.
#[derive(Clone, Debug, PartialEq)]
pub struct Webhook {
    /// Tenant base URL, e.g. `https://acme.benchling.com` (informational: the tenant we call
    /// comes from our secret, never from the payload).
    pub base_url: Option<String>,
    /// Tenant id (`ten_…`).
    pub tenant_id: Option<String>,
    /// The installed app the webhook is for.
    pub app_id: Option<AppId>,
    /// The app definition the webhook is for.
    pub app_definition_id: Option<AppDefinitionId>,
    /// `events` or `app_signals`.
    pub channel: Option<String>,
    /// The typed event.
    pub message: Message,
}

/// The typed `message` of a webhook.
#[derive(Clone, Debug, PartialEq)]
pub enum Message {
    /// An entry was created or updated.
    Entry(EntryEvent),
    /// A user clicked a button in one of our canvases.
    CanvasInteraction(CanvasInteraction),
    /// A canvas of ours was created (`v2.canvas.created`, `v2-beta.canvas.created`).
    CanvasCreated(CanvasCreated),
    /// Benchling asks us to create a canvas for a resource (`v2.canvas.initialized`).
    CanvasInitialized(CanvasInitialized),
    /// An app lifecycle signal.
    Lifecycle(EventType),
    /// A type we do not handle.
    Other(EventType),
}

impl Message {
    /// The event type.
    pub fn event_type(&self) -> EventType {
        match self {
            Self::Entry(e) => e.kind.clone(),
            Self::CanvasInteraction(_) => EventType::CanvasUserInteracted,
            Self::CanvasCreated(c) if c.beta => EventType::CanvasCreatedBeta,
            Self::CanvasCreated(_) => EventType::CanvasCreated,
            Self::CanvasInitialized(_) => EventType::CanvasInitialized,
            Self::Lifecycle(t) | Self::Other(t) => t.clone(),
        }
    }
}

/// `v2.entry.*` events.
#[derive(Clone, Debug, PartialEq)]
pub struct EntryEvent {
    /// Which entry event.
    pub kind: EventType,
    /// The event id (`evt_…`).
    pub event_id: Option<EventId>,
    /// When the event happened.
    pub created_at: Option<DateTime<Utc>>,
    /// The entry (`resourceId`).
    pub entry_id: EntryId,
    /// Names of the updated fields (`v2.entry.updated.fields`).
    pub updates: Vec<String>,
}

/// `v2.canvas.userInteracted`.
#[derive(Clone, Debug, PartialEq)]
pub struct CanvasInteraction {
    /// The clicked button's id (empty when Benchling sent none).
    pub button_id: String,
    /// The canvas clicked in.
    pub canvas_id: CanvasId,
    /// The app feature of the canvas.
    pub feature_id: Option<FeatureId>,
    /// Who clicked.
    pub user_id: Option<UserId>,
}

/// `v2.canvas.created` and `v2-beta.canvas.created`.
#[derive(Clone, Debug, PartialEq)]
pub struct CanvasCreated {
    /// The new canvas.
    pub canvas_id: CanvasId,
    /// The app feature of the canvas.
    pub feature_id: Option<FeatureId>,
    /// The entry, when Benchling includes it (the stable event does not).
    pub entry_id: Option<EntryId>,
    /// Who created it.
    pub user_id: Option<UserId>,
    /// Whether this is the `v2-beta` variant.
    pub beta: bool,
}

/// `v2.canvas.initialized`.
#[derive(Clone, Debug, PartialEq)]
pub struct CanvasInitialized {
    /// The entry to create a canvas for.
    pub entry_id: EntryId,
    /// The app feature to create.
    pub feature_id: Option<FeatureId>,
    /// Present only in non-standard senders; normally we must create the canvas.
    pub canvas_id: Option<CanvasId>,
    /// Who opened the entry.
    pub user_id: Option<UserId>,
}

/// Why a body is not a webhook we can use.
#[derive(Debug, thiserror::Error)]
pub enum PayloadError {
    /// The body is not UTF-8.
    #[error("body is not valid UTF-8")]
    InvalidUtf8,
    /// The body is not JSON, or not the JSON shape of a webhook.
    #[error("body is not a valid webhook JSON object: {0}")]
    InvalidJson(String),
    /// A required field is missing.
    #[error("missing field {0}")]
    MissingField(&'static str),
    /// A field has a bad value.
    #[error("invalid field {field}: {source}")]
    InvalidField {
        /// The JSON path of the field.
        field: &'static str,
        /// What is wrong with it.
        source: IdError,
    },
}

impl PayloadError {
    /// A short machine-readable reason for API error bodies.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::InvalidUtf8 => "invalid_utf8",
            Self::InvalidJson(_) => "invalid_json",
            Self::MissingField(_) | Self::InvalidField { .. } => "invalid_payload",
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawEnvelope {
    #[serde(rename = "baseURL")]
    base_url: Option<String>,
    tenant_id: Option<String>,
    app: Option<RawRef>,
    app_definition: Option<RawRef>,
    channel: Option<String>,
    message: Option<RawMessage>,
}

#[derive(Deserialize)]
struct RawRef {
    id: Option<String>,
}

/// Every field any message type carries; which are required depends on `type`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawMessage {
    #[serde(rename = "type")]
    kind: Option<String>,
    id: Option<String>,
    created_at: Option<DateTime<Utc>>,
    resource_id: Option<String>,
    #[serde(default)]
    updates: Vec<String>,
    button_id: Option<String>,
    canvas_id: Option<String>,
    feature_id: Option<String>,
    user_id: Option<String>,
}

fn required<T>(
    field: &'static str,
    raw: Option<String>,
    parse: fn(String) -> Result<T, IdError>,
) -> Result<T, PayloadError> {
    let raw = raw.ok_or(PayloadError::MissingField(field))?;
    parse(raw).map_err(|source| PayloadError::InvalidField { field, source })
}

fn optional<T>(
    field: &'static str,
    raw: Option<String>,
    parse: fn(String) -> Result<T, IdError>,
) -> Result<Option<T>, PayloadError> {
    raw.filter(|s| !s.is_empty())
        .map(|raw| parse(raw).map_err(|source| PayloadError::InvalidField { field, source }))
        .transpose()
}

impl Webhook {
    /// Parses a raw request body.
    pub fn from_slice(body: &[u8]) -> Result<Self, PayloadError> {
        let text = std::str::from_utf8(body).map_err(|_| PayloadError::InvalidUtf8)?;
        let raw: RawEnvelope =
            serde_json::from_str(text).map_err(|e| PayloadError::InvalidJson(e.to_string()))?;
        let message = raw.message.ok_or(PayloadError::MissingField("message"))?;
        Ok(Self {
            base_url: raw.base_url,
            tenant_id: raw.tenant_id,
            app_id: optional("app.id", raw.app.and_then(|a| a.id), AppId::parse)?,
            app_definition_id: optional(
                "appDefinition.id",
                raw.app_definition.and_then(|a| a.id),
                AppDefinitionId::parse,
            )?,
            channel: raw.channel,
            message: Message::from_raw(message)?,
        })
    }
}

impl Message {
    fn from_raw(raw: RawMessage) -> Result<Self, PayloadError> {
        let kind = EventType::parse(
            raw.kind
                .as_deref()
                .ok_or(PayloadError::MissingField("message.type"))?,
        );
        Ok(match kind {
            EventType::EntryCreated
            | EventType::EntryUpdatedFields
            | EventType::EntryUpdatedReviewRecord => Self::Entry(EntryEvent {
                kind,
                event_id: optional("message.id", raw.id, EventId::parse)?,
                created_at: raw.created_at,
                entry_id: required("message.resourceId", raw.resource_id, EntryId::parse)?,
                updates: raw.updates,
            }),
            EventType::CanvasUserInteracted => Self::CanvasInteraction(CanvasInteraction {
                button_id: raw.button_id.unwrap_or_default(),
                canvas_id: required("message.canvasId", raw.canvas_id, CanvasId::parse)?,
                feature_id: optional("message.featureId", raw.feature_id, FeatureId::parse)?,
                user_id: optional("message.userId", raw.user_id, UserId::parse)?,
            }),
            EventType::CanvasCreated | EventType::CanvasCreatedBeta => {
                Self::CanvasCreated(CanvasCreated {
                    canvas_id: required("message.canvasId", raw.canvas_id, CanvasId::parse)?,
                    feature_id: optional("message.featureId", raw.feature_id, FeatureId::parse)?,
                    entry_id: optional("message.resourceId", raw.resource_id, EntryId::parse)?,
                    user_id: optional("message.userId", raw.user_id, UserId::parse)?,
                    beta: kind == EventType::CanvasCreatedBeta,
                })
            }
            EventType::CanvasInitialized => Self::CanvasInitialized(CanvasInitialized {
                entry_id: required("message.resourceId", raw.resource_id, EntryId::parse)?,
                feature_id: optional("message.featureId", raw.feature_id, FeatureId::parse)?,
                canvas_id: optional("message.canvasId", raw.canvas_id, CanvasId::parse)?,
                user_id: optional("message.userId", raw.user_id, UserId::parse)?,
            }),
            t if t.is_lifecycle() => Self::Lifecycle(t),
            other => Self::Other(other),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_type_round_trips_and_keeps_unknown_names() {
        for (name, _) in EventType::KNOWN {
            assert_eq!(EventType::parse(name).as_str(), name);
        }
        assert_eq!(
            EventType::parse("v3.something.new"),
            EventType::Other("v3.something.new".into())
        );
    }

    #[test]
    fn entry_event_needs_a_valid_resource_id() {
        let body = br#"{"message":{"type":"v2.entry.created","resourceId":"a/b"}}"#;
        let err = Webhook::from_slice(body).unwrap_err();
        assert!(err.to_string().contains("message.resourceId"), "{err}");
        let body = br#"{"message":{"type":"v2.entry.created"}}"#;
        assert!(matches!(
            Webhook::from_slice(body),
            Err(PayloadError::MissingField("message.resourceId"))
        ));
    }

    #[test]
    fn unknown_types_parse_as_other() {
        let hook =
            Webhook::from_slice(br#"{"message":{"type":"v2.request.created","id":"x"}}"#).unwrap();
        assert_eq!(
            hook.message,
            Message::Other(EventType::Other("v2.request.created".into()))
        );
    }

    #[test]
    fn refuses_non_webhooks() {
        assert!(matches!(
            Webhook::from_slice(b"\xff"),
            Err(PayloadError::InvalidUtf8)
        ));
        assert!(matches!(
            Webhook::from_slice(b"[1]"),
            Err(PayloadError::InvalidJson(_))
        ));
        assert!(matches!(
            Webhook::from_slice(b"{}"),
            Err(PayloadError::MissingField("message"))
        ));
        assert!(matches!(
            Webhook::from_slice(br#"{"message":{}}"#),
            Err(PayloadError::MissingField("message.type"))
        ));
    }
}

#[cfg(test)]
mod fixture_tests {
    use std::path::PathBuf;

    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        let dir =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/benchling-events");
        std::fs::read(dir.join(name)).unwrap()
    }

    #[test]
    fn every_recorded_webhook_parses_into_its_variant() {
        type Check = fn(&Message) -> bool;
        let cases: [(&str, Check); 11] = [
            ("app-activate-requested.json", |m| {
                *m == Message::Lifecycle(EventType::AppActivateRequested)
            }),
            ("app-config-updated.json", |m| {
                *m == Message::Lifecycle(EventType::AppConfigurationUpdated)
            }),
            ("app-deactivated.json", |m| {
                *m == Message::Lifecycle(EventType::AppDeactivated)
            }),
            ("app-installed.json", |m| {
                *m == Message::Lifecycle(EventType::AppInstalled)
            }),
            ("app-interaction.json", |m| {
                matches!(m, Message::CanvasInteraction(c)
                    if c.button_id == "etr_OtsAuzfT" && c.canvas_id.as_str() == "cnvs_dYQTvmId")
            }),
            (
                "canvas-interaction.json",
                |m| matches!(m, Message::CanvasInteraction(c) if c.button_id == "my_button_id"),
            ),
            (
                "canvas-created.json",
                |m| matches!(m, Message::CanvasCreated(c) if c.beta && c.canvas_id.as_str() == "cnvs_Q4mPJ34a"),
            ),
            ("canvas-initialized.json", |m| {
                matches!(m, Message::CanvasInitialized(c)
                    if c.entry_id.as_str() == "8316d144-745d-4276-a389-f8afc8ff3115")
            }),
            ("entry-created.json", |m| {
                matches!(m, Message::Entry(e) if e.kind == EventType::EntryCreated
                    && e.event_id.as_ref().map(EventId::as_str) == Some("evt_dVhELK94T1Jy")
                    && e.created_at.is_some())
            }),
            ("entry-updated.json", |m| {
                matches!(m, Message::Entry(e) if e.kind == EventType::EntryUpdatedFields
                    && e.updates == ["field_1", "field_2"])
            }),
            (
                "entry-review-record.json",
                |m| matches!(m, Message::Entry(e) if e.kind == EventType::EntryUpdatedReviewRecord),
            ),
        ];
        for (name, check) in cases {
            let hook =
                Webhook::from_slice(&fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(check(&hook.message), "{name}: {:?}", hook.message);
            assert_eq!(
                hook.base_url.as_deref(),
                Some("https://quilt-dtt.benchling.com")
            );
        }
    }

    #[test]
    fn recorded_api_bodies_are_not_webhooks() {
        for name in [
            "app-homepage-canvas.json",
            "app-list.json",
            "athena-fail.json",
            "entry-app-canvas.json",
            "entry.json",
            "post-app-canvases.json",
            "sqs-message.json",
        ] {
            assert!(
                matches!(
                    Webhook::from_slice(&fixture(name)),
                    Err(PayloadError::MissingField("message"))
                ),
                "{name}"
            );
        }
    }
}
