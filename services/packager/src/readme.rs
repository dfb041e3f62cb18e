//! The package README, rendered with minijinja from the built-in template or an operator's own.
//!
//! Values reach Markdown only through filters that make them inert: `md` escapes inline
//! Markdown and HTML, `code` makes a code span that no backtick in the value can close, and
//! `link` makes an autolink of a URL (or escaped text when it is not one). A custom template is
//! loaded and rendered once against a sample at start-up, so a broken one stops the service
//! there rather than failing every job.

use std::path::PathBuf;

use minijinja::syntax::SyntaxConfig;
use minijinja::value::Serde;
use minijinja::{Environment, UndefinedBehavior, Value};
use serde::Serialize;

/// The built-in template: the upstream README's sections, in its order.
pub const BUILT_IN_TEMPLATE: &str = include_str!("readme.md.j2");

/// Where the README template comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TemplateSource {
    /// [`BUILT_IN_TEMPLATE`].
    BuiltIn,
    /// A file on the service's disk.
    File(PathBuf),
    /// An object in S3.
    S3 {
        /// Its bucket.
        bucket: String,
        /// Its key.
        key: String,
    },
}

impl TemplateSource {
    /// Reads `s3://bucket/key` or a file path.
    pub fn parse(raw: &str) -> Result<Self, String> {
        if let Some(rest) = raw.strip_prefix("s3://") {
            return match rest.split_once('/') {
                Some((bucket, key)) if !bucket.is_empty() && !key.is_empty() => Ok(Self::S3 {
                    bucket: bucket.to_owned(),
                    key: key.to_owned(),
                }),
                _ => Err("an S3 URI names a bucket and a key: s3://bucket/key".to_owned()),
            };
        }
        if raw.contains("://") {
            return Err("must be a file path or an s3://bucket/key URI".to_owned());
        }
        Ok(Self::File(PathBuf::from(raw)))
    }
}

/// One attachment as the README lists it.
#[derive(Clone, Debug, Serialize)]
pub struct ReadmeFile {
    /// Its name in the package.
    pub name: String,
    /// Its size in bytes.
    pub size: u64,
}

/// Everything a template can use.
#[derive(Clone, Debug, Serialize)]
pub struct ReadmeContext {
    /// The package name (`benchling/EXP25000007`).
    pub package_name: String,
    /// The entry's display id.
    pub display_id: String,
    /// The entry id.
    pub entry_id: String,
    /// The entry's name (may be empty).
    pub name: String,
    /// Link to the entry in Benchling (may be empty).
    pub web_url: String,
    /// `Name <handle@id>` of the creator, or empty.
    pub creator: String,
    /// The same for each named author.
    pub authors: Vec<String>,
    /// Creation time as Benchling gave it.
    pub created_at: String,
    /// Modification time as Benchling gave it.
    pub modified_at: String,
    /// When the event that caused this version happened (RFC 3339).
    pub export_timestamp: String,
    /// The tenant URL.
    pub benchling_base_url: String,
    /// The attachments (metadata files excluded).
    pub files: Vec<ReadmeFile>,
}

impl ReadmeContext {
    /// A context with every field set, for checking a template at start-up.
    fn sample() -> Self {
        Self {
            package_name: "benchling/EXP00000001".into(),
            display_id: "EXP00000001".into(),
            entry_id: "etr_sample".into(),
            name: "Sample entry".into(),
            web_url: "https://tenant.benchling.com/tenant/f/lib/etr_sample".into(),
            creator: "Ada Lovelace <ada@ent_1>".into(),
            authors: vec!["Ada Lovelace <ada@ent_1>".into()],
            created_at: "2025-01-01T00:00:00+00:00".into(),
            modified_at: "2025-01-02T00:00:00+00:00".into(),
            export_timestamp: "2025-01-02T00:00:01+00:00".into(),
            benchling_base_url: "https://tenant.benchling.com".into(),
            files: vec![ReadmeFile {
                name: "data/plate 1.csv".into(),
                size: 42,
            }],
        }
    }
}

/// Why a template cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    /// The template does not parse, or fails on the sample entry.
    #[error("README template {origin}: {message}")]
    Invalid {
        /// Where it came from.
        origin: String,
        /// What minijinja said, with the line.
        message: String,
    },
    /// Rendering failed for a real entry.
    #[error("rendering the README: {0}")]
    Render(String),
}

/// A checked README template, ready to render.
#[derive(Debug)]
pub struct Readme {
    env: Environment<'static>,
}

impl Readme {
    /// Compiles `source` and renders it once against a sample entry.
    ///
    /// # Errors
    /// [`TemplateError::Invalid`] naming `origin` and the problem.
    pub fn new(source: String, origin: &str) -> Result<Self, TemplateError> {
        let invalid = |e: minijinja::Error| TemplateError::Invalid {
            origin: origin.to_owned(),
            message: describe(&e),
        };
        let mut env = Environment::new();
        // A misspelt variable is an error at start-up, not an empty string in every README.
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_syntax(
            SyntaxConfig::builder()
                .trim_blocks(true)
                .lstrip_blocks(true)
                .keep_trailing_newline(true)
                .build()
                .expect("the default delimiters are valid"),
        );
        env.add_filter("md", |value: String| escape_markdown(&value));
        env.add_filter("code", |value: String| code_span(&value));
        env.add_filter("link", |value: String| link(&value));
        env.add_template_owned("README.md", source)
            .map_err(invalid)?;
        let readme = Self { env };
        readme
            .render_value(Value::from(Serde(ReadmeContext::sample())))
            .map_err(invalid)?;
        Ok(readme)
    }

    /// The built-in template.
    pub fn built_in() -> Self {
        Self::new(BUILT_IN_TEMPLATE.to_owned(), "(built in)")
            .expect("the built-in template renders the sample")
    }

    /// Renders the README of one entry version.
    ///
    /// # Errors
    /// [`TemplateError::Render`] when a custom template fails on this entry.
    pub fn render(&self, context: &ReadmeContext) -> Result<String, TemplateError> {
        self.render_value(Value::from(Serde(context)))
            .map_err(|e| TemplateError::Render(describe(&e)))
    }

    fn render_value(&self, context: Value) -> Result<String, minijinja::Error> {
        self.env.get_template("README.md")?.render(context)
    }
}

fn describe(error: &minijinja::Error) -> String {
    match error.line() {
        Some(line) => format!("{error} (line {line})"),
        None => error.to_string(),
    }
}

/// Escapes text so Markdown and HTML render it literally, on one line.
pub fn escape_markdown(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|' | '~' | '&' | '#' | '!' => {
                out.push('\\');
                out.push(c);
            }
            '\r' | '\n' => out.push(' '),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// A code span holding `text` verbatim: the fence is one backtick longer than the longest run
/// inside, and padded when the text starts or ends with a backtick.
pub fn code_span(text: &str) -> String {
    let text: String = text
        .chars()
        .map(|c| if c == '\r' || c == '\n' { ' ' } else { c })
        .filter(|c| !c.is_control())
        .collect();
    let longest = text.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest + 1);
    let pad = if text.starts_with('`') || text.ends_with('`') {
        " "
    } else {
        ""
    };
    format!("{fence}{pad}{text}{pad}{fence}")
}

/// An autolink for an `http(s)` URL without spaces or angle brackets; escaped text otherwise.
pub fn link(url: &str) -> String {
    let plain = (url.starts_with("https://") || url.starts_with("http://"))
        && !url
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '<' || c == '>');
    if plain {
        format!("<{url}>")
    } else {
        escape_markdown(url)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_keeps_values_inert() {
        assert_eq!(escape_markdown("a*b_c"), r"a\*b\_c");
        assert_eq!(
            escape_markdown("[x](javascript:alert(1))"),
            r"\[x\](javascript:alert(1))"
        );
        assert_eq!(escape_markdown("<img src=x>"), r"\<img src=x\>");
        assert_eq!(escape_markdown("two\nlines"), "two lines");
        assert_eq!(code_span("plain.csv"), "`plain.csv`");
        assert_eq!(code_span("a`b"), "``a`b``");
        assert_eq!(code_span("`x``"), "``` `x`` ```");
        assert_eq!(
            link("https://t.benchling.com/x"),
            "<https://t.benchling.com/x>"
        );
        assert_eq!(link("javascript:alert(1)"), "javascript:alert(1)");
        assert_eq!(link("https://x/<a>"), r"https://x/\<a\>");
    }

    #[test]
    fn templates_are_checked_when_loaded() {
        let broken = Readme::new("{% if %}".to_owned(), "/etc/readme.j2").unwrap_err();
        assert!(broken.to_string().contains("/etc/readme.j2"), "{broken}");
        let misspelt = Readme::new("{{ dispaly_id }}".to_owned(), "custom").unwrap_err();
        assert!(misspelt.to_string().contains("undefined"), "{misspelt}");
        let custom = Readme::new("# {{ display_id|md }}\n".to_owned(), "custom").unwrap();
        let mut context = ReadmeContext::sample();
        context.display_id = "EXP_1".into();
        assert_eq!(custom.render(&context).unwrap(), "# EXP\\_1\n");
    }

    #[test]
    fn template_sources_parse() {
        assert_eq!(
            TemplateSource::parse("s3://b/t/readme.j2").unwrap(),
            TemplateSource::S3 {
                bucket: "b".into(),
                key: "t/readme.j2".into()
            }
        );
        assert_eq!(
            TemplateSource::parse("/etc/readme.j2").unwrap(),
            TemplateSource::File("/etc/readme.j2".into())
        );
        assert!(TemplateSource::parse("s3://bucket").is_err());
        assert!(TemplateSource::parse("https://x/readme").is_err());
    }
}
