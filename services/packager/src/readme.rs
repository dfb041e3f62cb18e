//! The package README, rendered with minijinja from the built-in template or an operator's own.
//!
//! Values reach Markdown only through filters that make them inert: `md` escapes inline
//! Markdown and HTML, `code` makes a code span that no backtick in the value can close, and
//! `link` makes an autolink of a URL (or escaped text when it is not one). A custom template is
//! loaded and rendered once against a sample at start-up, so a broken one stops the service
//! there rather than failing every job.

use std::path::PathBuf;

use bw_markdown::{code_span, escape_markdown, link};
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

#[cfg(test)]
mod tests {
    use super::*;

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
