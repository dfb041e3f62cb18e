//! The canvas views as Benchling App Canvas blocks (the upstream canvas's views): main, updating, file browser,
//! metadata, empty package, package not created, and error.
//!
//! Benchling's rules are kept by construction: a SECTION holds only buttons (its children are
//! typed so), every value reaches Markdown escaped or as a code span, and button ids come from
//! the compact encoding of `bw-contracts` (a button whose id would be too long is left out, its
//! package still listed).

use bw_contracts::{Button, ButtonAction, EntryId, PackageTarget};
use bw_markdown::{code_span, escape_markdown};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use bw_registry::PackageEntry;

/// Longest metadata Markdown put on a canvas; larger metadata is cut at a line with a note
/// pointing to the catalog, so a huge `entry.json` cannot make Benchling refuse the update.
pub const MAX_METADATA_MARKDOWN: usize = 32 * 1024;

/// Files per browser page unless a button says otherwise.
pub const DEFAULT_PAGE_SIZE: u32 = 15;

/// A button block.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ButtonBlock {
    #[serde(rename = "type")]
    kind: &'static str,
    id: String,
    text: String,
    enabled: bool,
}

/// A canvas block.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Block {
    /// `{"type":"MARKDOWN","id","value"}`.
    Markdown {
        /// Always `MARKDOWN`.
        #[serde(rename = "type")]
        kind: &'static str,
        /// Block id.
        id: &'static str,
        /// The Markdown.
        value: String,
    },
    /// A top-level button.
    Button(ButtonBlock),
    /// `{"type":"SECTION","id","children":[buttons]}`: buttons side by side.
    Section {
        /// Always `SECTION`.
        #[serde(rename = "type")]
        kind: &'static str,
        /// Block id.
        id: &'static str,
        /// The buttons.
        children: Vec<ButtonBlock>,
    },
}

fn markdown(id: &'static str, value: String) -> Block {
    Block::Markdown {
        kind: "MARKDOWN",
        id,
        value,
    }
}

fn section(id: &'static str, children: Vec<ButtonBlock>) -> Block {
    Block::Section {
        kind: "SECTION",
        id,
        children,
    }
}

/// What every view of one entry's canvas knows.
#[derive(Clone, Debug)]
pub struct Canvas<'a> {
    /// The entry.
    pub entry_id: &'a EntryId,
    /// Its display id.
    pub display_id: &'a str,
    /// Its package (`benchling/EXP25000007`).
    pub package: &'a str,
    /// The registry bucket.
    pub bucket: &'a str,
    /// `QUILT_WEB_HOST`: the catalog's host.
    pub quilt_host: &'a str,
}

/// What the footer says about the package.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Status {
    /// An update was asked for and has not been announced yet.
    Updating,
    /// The packager announced a version at this time.
    UpdatedAt(DateTime<Utc>),
    /// The version announced at `published_at` was found in Quilt's registry.
    UpToDate {
        /// When it was announced.
        published_at: DateTime<Utc>,
        /// The revision holding it.
        top_hash: String,
    },
    /// Nothing is known about the last update.
    Pending,
    /// The last update failed for this reason.
    Failed(String),
}

/// A linked package as the main view lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Linked {
    /// Its name.
    pub name: String,
}

impl Canvas<'_> {
    fn button(&self, action: ButtonAction, text: &str, enabled: bool) -> Option<ButtonBlock> {
        let id = Button::new(self.entry_id.clone(), action).encode().ok()?;
        Some(ButtonBlock {
            kind: "BUTTON",
            id,
            text: text.to_owned(),
            enabled,
        })
    }

    /// Upstream left the name unencoded; each segment is encoded here, so a name with spaces
    /// or brackets cannot break the Markdown link it sits in.
    fn package_url(&self, package: &str) -> String {
        let path: Vec<String> = package.split('/').map(pct).collect();
        format!(
            "https://{}/b/{}/packages/{}",
            self.quilt_host,
            self.bucket,
            path.join("/")
        )
    }

    fn file_url(&self, package: &str, logical_key: &str) -> String {
        format!(
            "{}/tree/latest/{}",
            self.package_url(package),
            pct(logical_key)
        )
    }

    fn sync_url(&self, package: &str, logical_key: Option<&str>) -> String {
        let mut uri = format!("quilt+s3://{}#package={package}:latest", self.bucket);
        if let Some(path) = logical_key {
            uri.push_str(&format!("&path={path}"));
        }
        uri.push_str(&format!("&catalog={}", self.quilt_host));
        format!("https://{}/redir/{}", self.quilt_host, pct(&uri))
    }

    fn main_buttons(&self, update_enabled: bool) -> Block {
        let buttons = [
            self.button(
                ButtonAction::paged(false, PackageTarget::Primary, 0, DEFAULT_PAGE_SIZE),
                "Browse Package",
                true,
            ),
            self.button(ButtonAction::Update, "Update Package", update_enabled),
        ];
        section(
            "button-section-main",
            buttons.into_iter().flatten().collect(),
        )
    }

    /// `[name](catalog) [[🔄 sync]](sync)` for a package.
    fn package_link(&self, package: &str) -> String {
        format!(
            "[{}]({}) [[🔄 sync]]({})",
            escape_markdown(package),
            self.package_url(package),
            self.sync_url(package, None)
        )
    }

    fn footer(&self, status: &Status) -> Block {
        let status = match status {
            Status::Updating => "⏳ *Updating...*".to_owned(),
            Status::UpdatedAt(at) => format!("✅ *Updated at {}*", at.format("%Y-%m-%d %H:%M UTC")),
            Status::UpToDate {
                published_at,
                top_hash,
            } => format!(
                "✅ *Up to date:* revision `{}` holds the version announced at {}",
                top_hash.chars().take(10).collect::<String>(),
                published_at.format("%Y-%m-%d %H:%M UTC")
            ),
            Status::Pending => "⏳ *Pending update*".to_owned(),
            Status::Failed(reason) => format!("❌ *Update failed:* {}", escape_markdown(reason)),
        };
        markdown(
            "md-footer",
            format!(
                "\n\n---\n{status}\n\n{}@{}\n",
                escape_markdown(self.bucket),
                escape_markdown(self.quilt_host)
            ),
        )
    }

    /// The main view: package links, linked packages (or a warning when they could not be
    /// searched), the Browse and Update buttons, and an honest footer.
    pub fn main(&self, linked: Result<&[Linked], &str>, status: &Status) -> Vec<Block> {
        if *status == Status::Updating {
            return self.updating();
        }
        let mut body = format!(
            "## {}\n\n* Package: {}\n",
            escape_markdown(self.display_id),
            self.package_link(self.package)
        );
        let others: Vec<&Linked> = match linked {
            Ok(linked) => linked.iter().filter(|p| p.name != self.package).collect(),
            Err(_) => Vec::new(),
        };
        if !others.is_empty() {
            body.push_str("\n### Linked Packages\n\n");
            for package in &others {
                body.push_str(&format!("* {}\n", self.package_link(&package.name)));
            }
        }
        if let Err(error) = linked {
            body.push_str(&format!(
                "\n---\n\n### ⚠️ Warnings\n\n> Failed to search for linked packages: {}\n\n",
                escape_markdown(error)
            ));
        }
        let mut blocks = vec![self.main_buttons(true), markdown("md1", body)];
        let linked_buttons: Vec<ButtonBlock> = others
            .iter()
            .filter_map(|package| {
                self.button(
                    ButtonAction::paged(
                        false,
                        PackageTarget::Linked(package.name.clone()),
                        0,
                        DEFAULT_PAGE_SIZE,
                    ),
                    &package.name,
                    true,
                )
            })
            .collect();
        if !linked_buttons.is_empty() {
            blocks.push(section("button-section-linked-packages", linked_buttons));
        }
        blocks.push(self.footer(status));
        blocks
    }

    /// The view shown at once after Update: no query, Update disabled.
    pub fn updating(&self) -> Vec<Block> {
        vec![
            self.main_buttons(false),
            markdown(
                "md1",
                format!(
                    "## {}\n\n* Package: {}\n",
                    escape_markdown(self.display_id),
                    self.package_link(self.package)
                ),
            ),
            self.footer(&Status::Updating),
        ]
    }

    fn name_of<'p>(&'p self, target: &'p PackageTarget) -> &'p str {
        match target {
            PackageTarget::Primary => self.package,
            PackageTarget::Linked(name) => name,
        }
    }

    /// One page of a package's files, with Previous, Next, Back and View Metadata.
    pub fn browser(
        &self,
        target: &PackageTarget,
        files: &[PackageEntry],
        page: u32,
        size: u32,
    ) -> Vec<Block> {
        let package = self.name_of(target);
        if files.is_empty() {
            return vec![
                markdown(
                    "md-empty",
                    format!(
                        "## Package Is Empty\n\nPackage {} exists but contains no files.\n",
                        code_span(package)
                    ),
                ),
                self.main_buttons(true),
            ];
        }
        let size = size.max(1);
        let total_pages = files.len().div_ceil(size as usize) as u32;
        let page = page.min(total_pages - 1);
        let start = (page * size) as usize;
        let end = (start + size as usize).min(files.len());
        let mut body = format!(
            "## Package Files - Page {} of {total_pages}\n\n**Package**: {}\n\n",
            page + 1,
            code_span(package)
        );
        for (index, file) in files[start..end].iter().enumerate() {
            let name = file
                .logical_key
                .rsplit('/')
                .next()
                .unwrap_or(&file.logical_key);
            body.push_str(&format!(
                "{}. [[👁️ view]]({}) [[🔄 sync]]({}) {} ({})\n",
                index + 1,
                self.file_url(package, &file.logical_key),
                self.sync_url(package, Some(&file.logical_key)),
                code_span(name),
                human_size(file.size)
            ));
        }
        body.push_str(&format!(
            "---\n**Showing files {}-{end} of {}**\n",
            start + 1,
            files.len()
        ));
        let (has_prev, has_next) = (page > 0, page + 1 < total_pages);
        let buttons = [
            self.button(
                ButtonAction::paged(false, target.clone(), page.saturating_sub(1), size),
                "← Previous",
                has_prev,
            ),
            self.button(
                ButtonAction::paged(
                    false,
                    target.clone(),
                    if has_next { page + 1 } else { page },
                    size,
                ),
                "Next →",
                has_next,
            ),
            self.button(ButtonAction::Main, "Back to Package", true),
            self.button(
                ButtonAction::paged(true, target.clone(), page, size),
                "View Metadata",
                true,
            ),
        ];
        vec![
            markdown("md-browser", body),
            section(
                "button-section-browser",
                buttons.into_iter().flatten().collect(),
            ),
        ]
    }

    /// A package's metadata as nested bullets, with Back to Browser and Back to Package.
    pub fn metadata(
        &self,
        target: &PackageTarget,
        meta: &Value,
        page: u32,
        size: u32,
    ) -> Vec<Block> {
        let mut body = format!(
            "## Package Metadata\n\n**Package**: {}\n\n",
            code_span(self.name_of(target))
        );
        bullets(meta, 0, &mut body);
        if body.len() > MAX_METADATA_MARKDOWN {
            let mut cut = MAX_METADATA_MARKDOWN;
            while !body.is_char_boundary(cut) {
                cut -= 1;
            }
            body.truncate(body[..cut].rfind('\n').map_or(cut, |line| line + 1));
            body.push_str(&format!(
                "\n*Metadata truncated: see all of it in the [catalog]({}).*\n",
                self.package_url(self.name_of(target))
            ));
        }
        let buttons = [
            self.button(
                ButtonAction::paged(false, target.clone(), page, size),
                "Back to Browser",
                true,
            ),
            self.button(ButtonAction::Main, "Back to Package", true),
        ];
        vec![
            markdown("md-metadata", body),
            section(
                "button-section-metadata",
                buttons.into_iter().flatten().collect(),
            ),
        ]
    }

    /// The package does not exist yet: offer to create it.
    pub fn not_created(&self) -> Vec<Block> {
        let mut blocks = vec![markdown(
            "md-no-package",
            format!(
                "## Package Not Created\n\nPackage {} has not been created yet.\n\nClick **Update Package** to create it.\n",
                code_span(self.package)
            ),
        )];
        blocks.extend(
            [
                self.button(ButtonAction::Update, "Update Package", true),
                self.button(ButtonAction::Main, "Back to Package", true),
            ]
            .into_iter()
            .flatten()
            .map(Block::Button),
        );
        blocks
    }

    /// Files or metadata could not be loaded: the reason, Retry (the primary package's first
    /// page) and Back to Package.
    pub fn error(&self, what: &str, target: &PackageTarget, error: &str) -> Vec<Block> {
        let mut blocks = vec![markdown(
            "md-error",
            format!(
                "## Error Loading {what}\n\nUnable to load {} for package {}.\n\nError: {}\n\nPlease try again or contact support if the problem persists.\n",
                what.to_lowercase(),
                code_span(self.name_of(target)),
                escape_markdown(error)
            ),
        )];
        blocks.extend(
            [
                self.button(
                    ButtonAction::paged(false, PackageTarget::Primary, 0, DEFAULT_PAGE_SIZE),
                    "Retry",
                    true,
                ),
                self.button(ButtonAction::Main, "Back to Package", true),
            ]
            .into_iter()
            .flatten()
            .map(Block::Button),
        );
        blocks
    }
}

/// `quote(…, safe="")`: everything but `A-Za-z0-9_.-~` percent-encoded.
fn pct(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-' | b'~') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// `12.3 KB`: one decimal, 1024 steps.
fn human_size(bytes: u64) -> String {
    let mut value = bytes as f64;
    for unit in ["B", "KB", "MB", "GB"] {
        if value < 1024.0 {
            return format!("{value:.1} {unit}");
        }
        value /= 1024.0;
    }
    format!("{value:.1} TB")
}

/// Nested bullets, two spaces per level; strings linkified, everything escaped.
fn bullets(value: &Value, depth: usize, out: &mut String) {
    let indent = "  ".repeat(depth);
    match value {
        Value::Object(map) => {
            for (key, item) in map {
                match item {
                    Value::Object(_) | Value::Array(_) => {
                        out.push_str(&format!("{indent}- **{}**:\n", escape_markdown(key)));
                        bullets(item, depth + 1, out);
                    }
                    scalar => out.push_str(&format!(
                        "{indent}- **{}**: {}\n",
                        escape_markdown(key),
                        scalar_text(scalar)
                    )),
                }
            }
        }
        Value::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                match item {
                    Value::Object(_) | Value::Array(_) => {
                        out.push_str(&format!("{indent}{}.\n", index + 1));
                        bullets(item, depth + 2, out);
                    }
                    scalar => {
                        out.push_str(&format!("{indent}{}. {}\n", index + 1, scalar_text(scalar)))
                    }
                }
            }
        }
        scalar => out.push_str(&format!("{indent}{}\n", scalar_text(scalar))),
    }
}

fn scalar_text(value: &Value) -> String {
    match value {
        Value::Null => "*null*".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => linkify(s),
        other => escape_markdown(&other.to_string()),
    }
}

/// Escapes text and turns each `http(s)://` run (up to whitespace or a closing bracket) into a
/// link; unlike upstream, a URL ending before `)` keeps its last character.
fn linkify(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    let next_url = |text: &str| {
        [text.find("http://"), text.find("https://")]
            .into_iter()
            .flatten()
            .min()
    };
    while let Some(start) = next_url(rest) {
        out.push_str(&escape_markdown(&rest[..start]));
        let url_len = rest[start..]
            .find(|c: char| c.is_whitespace() || matches!(c, ')' | '>' | ']' | '<' | '(' | '['))
            .unwrap_or(rest.len() - start);
        let url = &rest[start..start + url_len];
        out.push_str(&format!("[{}]({url})", escape_markdown(url)));
        rest = &rest[start + url_len..];
    }
    out.push_str(&escape_markdown(rest));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_sizes_and_links() {
        assert_eq!(pct("data/a b.csv"), "data%2Fa%20b.csv");
        assert_eq!(human_size(512), "512.0 B");
        assert_eq!(human_size(1536), "1.5 KB");
        assert_eq!(
            linkify("see https://example.com) and *x*"),
            r"see [https://example.com](https://example.com)) and \*x\*"
        );
        assert_eq!(linkify("no links"), "no links");
    }

    #[test]
    fn huge_metadata_is_cut_at_a_line_with_a_link_to_the_catalog() {
        let entry = EntryId::parse("etr_1").unwrap();
        let canvas = Canvas {
            entry_id: &entry,
            display_id: "EXP1",
            package: "benchling/EXP1",
            bucket: "bucket",
            quilt_host: "catalog.example.com",
        };
        let meta: serde_json::Map<String, Value> = (0..5_000)
            .map(|i| (format!("field_{i}"), Value::from("é".repeat(20))))
            .collect();
        let blocks = canvas.metadata(&PackageTarget::Primary, &Value::Object(meta), 0, 15);
        let Block::Markdown { value, .. } = &blocks[0] else {
            panic!("not markdown")
        };
        assert!(value.len() < MAX_METADATA_MARKDOWN + 200, "{}", value.len());
        let (kept, note) = value.rsplit_once("\n\n*Metadata truncated").unwrap();
        // Whole lines only: the last one kept is complete.
        assert!(kept.lines().last().unwrap().ends_with(&"é".repeat(20)));
        assert!(note.contains("https://catalog.example.com/b/bucket/packages/benchling/EXP1"));
    }
}
