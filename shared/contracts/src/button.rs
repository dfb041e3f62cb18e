//! Canvas button ids.
//!
//! A button id is all Benchling gives back when a user clicks, so it must carry the whole
//! intent: the entry, the action, and for browsing the page, page size and package. Ids we
//! render use a compact, versioned, lossless form:
//!
//! ```text
//! q1.{action}.{entry id}[.{page}.{size}[.{base64url(package name)}]]
//! ```
//!
//! where `action` is `m` (main view), `u` (update package), `b` (browse files) or `d`
//! (package metadata). Entry ids never contain `.`, and base64url never does, so `.` separates
//! fields unambiguously and any package name survives the round trip.
//!
//! Canvases rendered by the previous system carry upstream ids (`browse-files-{E}-p0-s15`,
//! `browse-linked-{E}-pkg-{a--b}-p0-s15`, bare `etr_…`, …); [`Button::parse`] still reads them.
//! Anything else is not ours and parses to `None`.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use serde::{Deserialize, Serialize};

use crate::id::EntryId;

/// Version tag of the id format we render.
pub const BUTTON_ID_VERSION: &str = "q1";

/// Longest button id we render; longer ids are refused by [`Button::encode`].
pub const MAX_BUTTON_ID_LEN: usize = 128;

/// Default number of files per browser page.
pub const DEFAULT_PAGE_SIZE: u32 = 15;

/// Largest page size a button may ask for.
pub const MAX_PAGE_SIZE: u32 = 200;

/// Which package a browse or metadata button is about.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "package", content = "name", rename_all = "snake_case")]
pub enum PackageTarget {
    /// The entry's own package.
    Primary,
    /// A linked package, by full name (e.g. `team/experiment-1`).
    Linked(String),
}

/// What a button does.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum ButtonAction {
    /// Show the main view (package links, linked packages, buttons).
    Main,
    /// Re-export the entry and republish its package.
    Update,
    /// Show one page of a package's files.
    Browse {
        /// The package.
        #[serde(flatten)]
        package: PackageTarget,
        /// Zero-based page.
        page: u32,
        /// Files per page.
        size: u32,
    },
    /// Show a package's metadata; page and size say where "Back to Browser" returns.
    Metadata {
        /// The package.
        #[serde(flatten)]
        package: PackageTarget,
        /// Zero-based page to return to.
        page: u32,
        /// Files per page to return to.
        size: u32,
    },
}

impl ButtonAction {
    /// A browse action, or with `metadata` a metadata action, for one page of `package`.
    pub fn paged(metadata: bool, package: PackageTarget, page: u32, size: u32) -> Self {
        if metadata {
            Self::Metadata {
                package,
                page,
                size,
            }
        } else {
            Self::Browse {
                package,
                page,
                size,
            }
        }
    }
}

/// A decoded button id.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Button {
    /// The entry whose canvas holds the button.
    pub entry_id: EntryId,
    /// What the click asks for.
    #[serde(flatten)]
    pub action: ButtonAction,
}

/// A button that cannot be rendered.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("button id would be {len} characters, over the limit of {MAX_BUTTON_ID_LEN}")]
pub struct ButtonTooLong {
    /// The encoded length.
    pub len: usize,
}

impl Button {
    /// A button for `action` on `entry_id`.
    pub fn new(entry_id: EntryId, action: ButtonAction) -> Self {
        Self { entry_id, action }
    }

    /// Renders the id in the current format.
    pub fn encode(&self) -> Result<String, ButtonTooLong> {
        let entry = self.entry_id.as_str();
        let paged = |code: &str, package: &PackageTarget, page: u32, size: u32| {
            let mut id = format!("{BUTTON_ID_VERSION}.{code}.{entry}.{page}.{size}");
            if let PackageTarget::Linked(name) = package {
                id.push('.');
                id.push_str(&URL_SAFE_NO_PAD.encode(name));
            }
            id
        };
        let id = match &self.action {
            ButtonAction::Main => format!("{BUTTON_ID_VERSION}.m.{entry}"),
            ButtonAction::Update => format!("{BUTTON_ID_VERSION}.u.{entry}"),
            ButtonAction::Browse {
                package,
                page,
                size,
            } => paged("b", package, *page, *size),
            ButtonAction::Metadata {
                package,
                page,
                size,
            } => paged("d", package, *page, *size),
        };
        if id.len() > MAX_BUTTON_ID_LEN {
            return Err(ButtonTooLong { len: id.len() });
        }
        Ok(id)
    }

    /// Reads a button id in the current or the upstream format; `None` when it is not ours.
    pub fn parse(id: &str) -> Option<Self> {
        if id.len() > 1024 {
            return None;
        }
        match id
            .strip_prefix(BUTTON_ID_VERSION)
            .and_then(|r| r.strip_prefix('.'))
        {
            Some(rest) => parse_current(rest),
            None => legacy::parse(id),
        }
    }
}

fn page_and_size(page: &str, size: &str) -> Option<(u32, u32)> {
    let digits = |s: &str| !s.is_empty() && s.len() <= 9 && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(page) || !digits(size) {
        return None;
    }
    let (page, size) = (page.parse().ok()?, size.parse().ok()?);
    (1..=MAX_PAGE_SIZE).contains(&size).then_some((page, size))
}

fn parse_current(rest: &str) -> Option<Button> {
    let mut fields = rest.split('.');
    let code = fields.next()?;
    let entry_id = EntryId::parse(fields.next()?).ok()?;
    let paged = |fields: &mut std::str::Split<'_, char>| -> Option<(PackageTarget, u32, u32)> {
        let (page, size) = page_and_size(fields.next()?, fields.next()?)?;
        let package = match fields.next() {
            None => PackageTarget::Primary,
            Some(encoded) => {
                let name = String::from_utf8(URL_SAFE_NO_PAD.decode(encoded).ok()?).ok()?;
                if name.is_empty() {
                    return None;
                }
                PackageTarget::Linked(name)
            }
        };
        Some((package, page, size))
    };
    let action = match code {
        "m" => ButtonAction::Main,
        "u" => ButtonAction::Update,
        "b" | "d" => {
            let (package, page, size) = paged(&mut fields)?;
            ButtonAction::paged(code == "d", package, page, size)
        }
        _ => return None,
    };
    fields
        .next()
        .is_none()
        .then_some(Button { entry_id, action })
}

/// The upstream service's button-id grammar, kept so canvases rendered by the old system still work.
mod legacy {
    use super::{Button, ButtonAction, DEFAULT_PAGE_SIZE, PackageTarget, page_and_size};
    use crate::id::EntryId;

    /// Linked-package prefixes come first: `next-page-linked-` also starts with `next-page-`.
    const LINKED: [(&str, bool); 4] = [
        ("browse-linked-", false),
        ("next-page-linked-", false),
        ("prev-page-linked-", false),
        ("view-metadata-linked-", true),
    ];

    pub(super) fn parse(id: &str) -> Option<Button> {
        for (prefix, metadata) in LINKED {
            if let Some(rest) = id.strip_prefix(prefix) {
                return linked(rest, metadata);
            }
        }
        let paged = |rest: &str, metadata: bool| {
            let (entry, page, size) =
                split_page_suffix(rest).unwrap_or((rest, 0, DEFAULT_PAGE_SIZE));
            Some(Button {
                entry_id: EntryId::parse(entry).ok()?,
                action: ButtonAction::paged(metadata, PackageTarget::Primary, page, size),
            })
        };
        let simple = |rest: &str, action: ButtonAction| {
            Some(Button {
                entry_id: EntryId::parse(rest).ok()?,
                action,
            })
        };
        if let Some(rest) = id.strip_prefix("browse-files-") {
            paged(rest, false)
        } else if let Some(rest) = id
            .strip_prefix("next-page-")
            .or_else(|| id.strip_prefix("prev-page-"))
        {
            paged(rest, false)
        } else if let Some(rest) = id.strip_prefix("view-metadata-") {
            paged(rest, true)
        } else if let Some(rest) = id.strip_prefix("back-to-package-") {
            simple(rest, ButtonAction::Main)
        } else if let Some(rest) = id.strip_prefix("update-package-") {
            simple(rest, ButtonAction::Update)
        } else {
            // The first canvases used the bare entry id as the id of their update button.
            let entry_id = EntryId::parse(id).ok().filter(EntryId::is_entry_shaped)?;
            Some(Button {
                entry_id,
                action: ButtonAction::Update,
            })
        }
    }

    /// Splits `{rest}-p{page}-s{size}` at its end.
    fn split_page_suffix(id: &str) -> Option<(&str, u32, u32)> {
        let (head, size) = id.rsplit_once("-s")?;
        let (entry, page) = head.rsplit_once("-p")?;
        let (page, size) = page_and_size(page, size)?;
        Some((entry, page, size))
    }

    /// `{E}-pkg-{name with / as --}-p{page}-s{size}`.
    fn linked(rest: &str, metadata: bool) -> Option<Button> {
        let (entry, tail) = rest.split_once("-pkg-")?;
        let (encoded, page, size) = split_page_suffix(tail)?;
        if encoded.is_empty() {
            return None;
        }
        let package = PackageTarget::Linked(encoded.replace("--", "/"));
        let action = ButtonAction::paged(metadata, package, page, size);
        Some(Button {
            entry_id: EntryId::parse(entry).ok()?,
            action,
        })
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn entry(raw: &str) -> EntryId {
        EntryId::parse(raw).unwrap()
    }

    fn browse(package: PackageTarget, page: u32, size: u32) -> ButtonAction {
        ButtonAction::Browse {
            package,
            page,
            size,
        }
    }

    #[test]
    fn current_ids_are_compact() {
        let b = Button::new(entry("etr_OtsAuzfT"), browse(PackageTarget::Primary, 2, 15));
        assert_eq!(b.encode().unwrap(), "q1.b.etr_OtsAuzfT.2.15");
        let u = Button::new(entry("etr_OtsAuzfT"), ButtonAction::Update);
        assert_eq!(u.encode().unwrap(), "q1.u.etr_OtsAuzfT");
    }

    #[test]
    fn upstream_ids_still_parse() {
        let e = entry("etr_abc");
        let cases = [
            (
                "browse-files-etr_abc-p0-s15",
                browse(PackageTarget::Primary, 0, 15),
            ),
            (
                "next-page-etr_abc-p3-s15",
                browse(PackageTarget::Primary, 3, 15),
            ),
            (
                "prev-page-etr_abc-p1-s20",
                browse(PackageTarget::Primary, 1, 20),
            ),
            ("update-package-etr_abc", ButtonAction::Update),
            ("back-to-package-etr_abc", ButtonAction::Main),
            (
                "view-metadata-etr_abc-p2-s15",
                ButtonAction::Metadata {
                    package: PackageTarget::Primary,
                    page: 2,
                    size: 15,
                },
            ),
            (
                "browse-linked-etr_abc-pkg-team--exp-p0-s15",
                browse(PackageTarget::Linked("team/exp".into()), 0, 15),
            ),
            (
                "next-page-linked-etr_abc-pkg-a--b-c-p4-s15",
                browse(PackageTarget::Linked("a/b-c".into()), 4, 15),
            ),
            (
                "view-metadata-linked-etr_abc-pkg-a--b-p1-s15",
                ButtonAction::Metadata {
                    package: PackageTarget::Linked("a/b".into()),
                    page: 1,
                    size: 15,
                },
            ),
            ("etr_abc", ButtonAction::Update),
        ];
        for (id, action) in cases {
            assert_eq!(
                Button::parse(id),
                Some(Button::new(e.clone(), action)),
                "{id}"
            );
        }
    }

    #[test]
    fn upstream_ids_with_uuid_entries_parse() {
        let id = "browse-files-8316d144-745d-4276-a389-f8afc8ff3115-p1-s15";
        let b = Button::parse(id).unwrap();
        assert_eq!(b.entry_id.as_str(), "8316d144-745d-4276-a389-f8afc8ff3115");
        assert_eq!(b.action, browse(PackageTarget::Primary, 1, 15));
    }

    #[test]
    fn foreign_ids_are_not_ours() {
        for id in [
            "",
            "my_button_id",
            "user_defined_id",
            "q1",
            "q1.x.etr_a",
            "q1.b.etr_a",
            "q1.b.etr_a.0.0",
            "q1.u.etr_a.extra",
            "q1.b.etr_a.0.15.!!",
            "browse-linked-etr_a-p0-s15",
            "update-package-",
            "update-package-etr/../x",
        ] {
            assert_eq!(Button::parse(id), None, "{id:?}");
        }
    }

    #[test]
    fn long_names_are_refused_not_truncated() {
        let b = Button::new(
            entry("etr_abc"),
            browse(PackageTarget::Linked("x".repeat(200)), 0, 15),
        );
        assert!(b.encode().is_err());
    }

    fn any_action() -> impl Strategy<Value = ButtonAction> {
        let package = prop_oneof![
            Just(PackageTarget::Primary),
            "\\PC{1,40}".prop_map(PackageTarget::Linked),
            "[a-z/-]{1,40}".prop_map(PackageTarget::Linked),
        ];
        prop_oneof![
            Just(ButtonAction::Main),
            Just(ButtonAction::Update),
            (package.clone(), 0u32..100_000, 1u32..=MAX_PAGE_SIZE).prop_map(
                |(package, page, size)| ButtonAction::Browse {
                    package,
                    page,
                    size
                }
            ),
            (package, 0u32..100_000, 1u32..=MAX_PAGE_SIZE).prop_map(|(package, page, size)| {
                ButtonAction::Metadata {
                    package,
                    page,
                    size,
                }
            }),
        ]
    }

    proptest! {
        #[test]
        fn every_renderable_button_round_trips(
            entry_id in "[A-Za-z0-9_-]{1,40}",
            action in any_action(),
        ) {
            let button = Button::new(EntryId::parse(entry_id).unwrap(), action);
            if let Ok(id) = button.encode() {
                prop_assert!(id.len() <= MAX_BUTTON_ID_LEN);
                prop_assert_eq!(Button::parse(&id), Some(button));
            }
        }

        #[test]
        fn parsing_never_panics(id in "\\PC{0,200}") {
            let _ = Button::parse(&id);
        }
    }
}
