//! Identifier newtypes. Every id is validated once, when it enters the system, so it is safe to
//! use in S3 keys, SQS group ids, URL paths and log lines.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize};

/// Longest id we accept; SQS group and deduplication ids allow 128 characters.
pub const MAX_ID_LEN: usize = 128;

/// An id that failed validation.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind}: {reason}")]
pub struct IdError {
    /// Which kind of id, e.g. "entry id".
    pub kind: &'static str,
    /// Why it was refused.
    pub reason: &'static str,
}

/// Benchling ids (`etr_…`, `cnvs_…`, UUIDs) use letters, digits, `_` and `-` only.
fn check_benchling_id(kind: &'static str, raw: &str) -> Result<(), IdError> {
    if raw.is_empty() {
        return Err(IdError {
            kind,
            reason: "empty",
        });
    }
    if raw.len() > MAX_ID_LEN {
        return Err(IdError {
            kind,
            reason: "longer than 128 characters",
        });
    }
    if !raw
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(IdError {
            kind,
            reason: "only letters, digits, '_' and '-' are allowed",
        });
    }
    Ok(())
}

/// Webhook message ids are chosen by the sender; any printable ASCII without spaces is allowed,
/// which keeps them valid as SQS deduplication ids.
fn check_webhook_id(kind: &'static str, raw: &str) -> Result<(), IdError> {
    if raw.is_empty() {
        return Err(IdError {
            kind,
            reason: "empty",
        });
    }
    if raw.len() > 100 {
        return Err(IdError {
            kind,
            reason: "longer than 100 characters",
        });
    }
    if !raw.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(IdError {
            kind,
            reason: "only printable ASCII without spaces is allowed",
        });
    }
    Ok(())
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $kind:literal, $check:ident) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Validates and wraps a raw id.
            pub fn parse(raw: impl Into<String>) -> Result<Self, IdError> {
                let raw = raw.into();
                $check($kind, &raw)?;
                Ok(Self(raw))
            }

            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                Self::parse(s)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                Self::parse(String::deserialize(d)?).map_err(serde::de::Error::custom)
            }
        }
    };
}

id_type!(
    /// A notebook entry (`etr_…`; test tenants also send UUIDs).
    EntryId, "entry id", check_benchling_id
);
id_type!(
    /// An app canvas (`cnvs_…`).
    CanvasId, "canvas id", check_benchling_id
);
id_type!(
    /// A Benchling event (`evt_…`).
    EventId, "event id", check_benchling_id
);
id_type!(
    /// A feature of our app manifest, e.g. `quilt_entry`.
    FeatureId, "feature id", check_benchling_id
);
id_type!(
    /// A Benchling user (`ent_…`).
    UserId, "user id", check_benchling_id
);
id_type!(
    /// An installed app (`app_…`).
    AppId, "app id", check_benchling_id
);
id_type!(
    /// An app definition (`appdef_…`); names the JWKS that signs our webhooks.
    AppDefinitionId, "app definition id", check_benchling_id
);
id_type!(
    /// The `webhook-id` header: one delivery of one message, repeated on retries.
    WebhookId, "webhook id", check_webhook_id
);

impl EntryId {
    /// Whether the id has the shape of a real Benchling entry id (`etr_…`), as opposed to a
    /// test tenant's UUID; legacy bare-entry buttons are recognised only by this shape.
    pub fn is_entry_shaped(&self) -> bool {
        self.0.starts_with("etr_") && self.0.len() > 4
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_benchling_shapes() {
        for raw in [
            "etr_OtsAuzfT",
            "8316d144-745d-4276-a389-f8afc8ff3115",
            "canvas_12345",
        ] {
            assert_eq!(EntryId::parse(raw).unwrap().as_str(), raw);
        }
    }

    #[test]
    fn refuses_what_would_escape_a_key_or_path() {
        for raw in ["", "../etc", "a/b", "etr x", "etr_é", &"a".repeat(129)] {
            assert!(EntryId::parse(raw).is_err(), "{raw:?}");
        }
    }

    #[test]
    fn deserializing_validates() {
        assert!(serde_json::from_str::<CanvasId>("\"cnvs_1\"").is_ok());
        let err = serde_json::from_str::<CanvasId>("\"cnvs/1\"").unwrap_err();
        assert!(err.to_string().contains("invalid canvas id"));
    }

    #[test]
    fn webhook_ids_allow_punctuation_but_not_spaces() {
        assert!(WebhookId::parse("msg_2b:x.y").is_ok());
        assert!(WebhookId::parse("msg 1").is_err());
        assert!(WebhookId::parse("msg\n1").is_err());
    }
}
