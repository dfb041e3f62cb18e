//! The Benchling secret: the app's credentials and package settings, kept in AWS Secrets
//! Manager as one JSON object (`BenchlingSecret` names it), or in a local file for laptop runs.

use std::fmt;
use std::path::PathBuf;

use bw_contracts::AppDefinitionId;
use serde_json::{Map, Value};

use crate::mask::mask_arn;

/// A value that must never be printed: `Debug` and `Display` show `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct Redacted(String);

impl Redacted {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret value, for the one place that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Where the secret lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SecretSource {
    /// A Secrets Manager secret, by name or ARN.
    SecretsManager(String),
    /// A local JSON file (`BenchlingSecret=file:/path`), for runs without AWS. Secret names
    /// cannot contain `:`, so the prefix is unambiguous.
    File(PathBuf),
}

impl SecretSource {
    /// Reads the `BenchlingSecret` value.
    pub fn parse(raw: &str) -> Self {
        match raw.strip_prefix("file:") {
            Some(path) => Self::File(PathBuf::from(path)),
            None => Self::SecretsManager(raw.to_owned()),
        }
    }

    /// How to show the source to operators (account ids masked).
    pub fn masked(&self) -> String {
        match self {
            Self::SecretsManager(id) => mask_arn(id),
            Self::File(path) => format!("file:{}", path.display()),
        }
    }
}

/// The validated secret.
#[derive(Clone, Debug, PartialEq)]
pub struct BenchlingSecret {
    /// Tenant name: `acme` for `https://acme.benchling.com`.
    pub tenant: String,
    /// OAuth client id.
    pub client_id: String,
    /// OAuth client secret.
    pub client_secret: Redacted,
    /// The app definition whose JWKS signs our webhooks.
    pub app_definition_id: AppDefinitionId,
    /// Package name prefix (`benchling` → packages `benchling/EXP…`).
    pub pkg_prefix: String,
    /// Package metadata key that links other packages to an entry.
    pub pkg_key: String,
    /// The S3 bucket that is the Quilt registry.
    pub user_bucket: String,
    /// Log level, applied unless `LOG_LEVEL` is set in the environment.
    pub log_level: String,
    /// Whether webhooks must be signed (the environment can only turn this off).
    pub enable_webhook_verification: bool,
    /// Quilt workflow for new revisions.
    pub workflow: Option<String>,
}

/// Why the secret is unusable.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// Secrets Manager has no such secret.
    #[error("secret {0} not found")]
    NotFound(String),
    /// The task role may not read it.
    #[error("access denied to secret {0}")]
    AccessDenied(String),
    /// Secrets Manager could not be reached or failed.
    #[error("could not fetch secret {secret}: {message}")]
    Fetch {
        /// The masked secret id.
        secret: String,
        /// What went wrong.
        message: String,
    },
    /// The secret file could not be read.
    #[error("could not read secret file {path}: {message}")]
    File {
        /// The file.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// The secret is not a JSON object.
    #[error("secret is not a JSON object: {0}")]
    InvalidJson(String),
    /// Some keys are missing or invalid (all are listed).
    #[error("secret is invalid: {}", .0.join("; "))]
    Invalid(Vec<String>),
}

impl SecretError {
    /// What the operator should do about it.
    pub fn suggestion(&self) -> &'static str {
        match self {
            Self::NotFound(_) => {
                "Create the secret, or point BenchlingSecret at the right name or ARN."
            }
            Self::AccessDenied(_) => {
                "Grant the task role secretsmanager:GetSecretValue on the secret (and kms:Decrypt on its key)."
            }
            Self::Fetch { .. } => {
                "Check network access to Secrets Manager; the service keeps retrying."
            }
            Self::File { .. } => "Check the path after file: in BenchlingSecret.",
            Self::InvalidJson(_) | Self::Invalid(_) => {
                "Fix the secret's JSON: see docs/configuration.md for the keys."
            }
        }
    }
}

const REQUIRED: [&str; 5] = [
    "tenant",
    "client_id",
    "client_secret",
    "app_definition_id",
    "user_bucket",
];

impl BenchlingSecret {
    /// Parses and validates the secret's JSON, reporting every problem at once. Values are
    /// never echoed in errors.
    pub fn from_json(text: &str) -> Result<Self, SecretError> {
        Self::from_json_with(text, None)
    }

    /// Like [`BenchlingSecret::from_json`], with the package bucket the deployment names
    /// (`PACKAGE_BUCKET`): it completes a secret without a bucket (the four-key form: `tenant`,
    /// `client_id`, `client_secret`, `app_definition_id`). A secret naming another bucket is
    /// refused, naming both keys: which one wins would be a guess.
    pub fn from_json_with(text: &str, package_bucket: Option<&str>) -> Result<Self, SecretError> {
        let raw: Map<String, Value> =
            serde_json::from_str(text).map_err(|e| SecretError::InvalidJson(e.to_string()))?;
        let bucket_key = if raw.contains_key("BENCHLING_PKG_BUCKET") {
            "BENCHLING_PKG_BUCKET"
        } else {
            "user_bucket"
        };
        let mut map = snake_case_keys(raw)?;
        if let Some(deployed) = package_bucket.map(str::trim).filter(|b| !b.is_empty()) {
            match map.get("user_bucket") {
                None | Some(Value::Null) => {
                    map.insert("user_bucket".into(), Value::String(deployed.to_owned()));
                }
                Some(Value::String(own)) if own.trim() == deployed => {}
                Some(_) => {
                    return Err(SecretError::Invalid(vec![format!(
                        "{bucket_key} and PACKAGE_BUCKET: the secret and the deployment name different package buckets; set one, or make them equal"
                    )]));
                }
            }
        }
        let mut problems = Vec::new();
        let string = |key: &str, problems: &mut Vec<String>| -> Option<String> {
            match map.get(key) {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) if s.trim().is_empty() => {
                    problems.push(format!("{key}: must not be empty"));
                    None
                }
                Some(Value::String(s)) => Some(s.trim().to_owned()),
                Some(_) => {
                    problems.push(format!("{key}: must be a string"));
                    None
                }
            }
        };
        let missing: Vec<&str> = REQUIRED
            .iter()
            .copied()
            .filter(|k| matches!(map.get(*k), None | Some(Value::Null)))
            .collect();
        if !missing.is_empty() {
            let bucket_hint = if missing.contains(&"user_bucket") {
                " (the bucket may instead come from PACKAGE_BUCKET in the deployment)"
            } else {
                ""
            };
            problems.push(format!("missing keys: {}{bucket_hint}", missing.join(", ")));
        }
        let tenant = string("tenant", &mut problems).map(|t| normalize_tenant(&t));
        if tenant.as_ref().is_some_and(|t| {
            t.is_empty() || !t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        }) {
            problems.push("tenant: must be a Benchling tenant name such as `acme`".into());
        }
        let client_id = string("client_id", &mut problems);
        let client_secret = string("client_secret", &mut problems);
        let app_definition_id = string("app_definition_id", &mut problems).and_then(|raw| {
            AppDefinitionId::parse(raw)
                .map_err(|e| problems.push(format!("app_definition_id: {e}")))
                .ok()
        });
        let pkg_prefix = string("pkg_prefix", &mut problems).unwrap_or_else(|| "benchling".into());
        if !valid_prefix(&pkg_prefix) {
            problems.push(
                "pkg_prefix: must be `/`-separated segments of letters, digits, `.`, `_` or `-`"
                    .into(),
            );
        }
        let pkg_key = string("pkg_key", &mut problems).unwrap_or_else(|| "experiment_id".into());
        if !valid_metadata_key(&pkg_key) {
            problems.push("pkg_key: must match [A-Za-z_][A-Za-z0-9_]{0,63}".into());
        }
        let user_bucket = string("user_bucket", &mut problems);
        if user_bucket.as_deref().is_some_and(|b| !valid_bucket(b)) {
            problems.push("user_bucket: not a valid S3 bucket name".into());
        }
        let log_level = string("log_level", &mut problems).unwrap_or_else(|| "INFO".into());
        if !matches!(
            log_level.to_ascii_uppercase().as_str(),
            "DEBUG" | "INFO" | "WARNING" | "WARN" | "ERROR" | "CRITICAL"
        ) {
            problems.push("log_level: must be DEBUG, INFO, WARNING, ERROR or CRITICAL".into());
        }
        let enable_webhook_verification = match map.get("enable_webhook_verification") {
            None | Some(Value::Null) => true,
            Some(Value::Bool(b)) => *b,
            Some(Value::String(s)) => crate::env::parse_flag(s).unwrap_or_else(|| {
                problems.push("enable_webhook_verification: must be a boolean".into());
                true
            }),
            Some(_) => {
                problems.push("enable_webhook_verification: must be a boolean".into());
                true
            }
        };
        let workflow = match map.get("workflow") {
            Some(Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_owned()),
            _ => None,
        };
        match (
            tenant,
            client_id,
            client_secret,
            app_definition_id,
            user_bucket,
        ) {
            (
                Some(tenant),
                Some(client_id),
                Some(client_secret),
                Some(app_definition_id),
                Some(user_bucket),
            ) if problems.is_empty() => Ok(Self {
                tenant,
                client_id,
                client_secret: Redacted::new(client_secret),
                app_definition_id,
                pkg_prefix,
                pkg_key,
                user_bucket,
                log_level,
                enable_webhook_verification,
                workflow,
            }),
            _ => Err(SecretError::Invalid(problems)),
        }
    }
}

/// The uppercase keys of secrets the Python system's deployments wrote, and the snake_case key
/// each stands for.
const UPPERCASE_KEYS: [(&str, &str); 9] = [
    ("BENCHLING_TENANT", "tenant"),
    ("BENCHLING_CLIENT_ID", "client_id"),
    ("BENCHLING_CLIENT_SECRET", "client_secret"),
    ("BENCHLING_APP_DEFINITION_ID", "app_definition_id"),
    ("BENCHLING_PKG_BUCKET", "user_bucket"),
    ("BENCHLING_PKG_PREFIX", "pkg_prefix"),
    ("BENCHLING_PKG_KEY", "pkg_key"),
    (
        "BENCHLING_ENABLE_WEBHOOK_VERIFICATION",
        "enable_webhook_verification",
    ),
    ("BENCHLING_LOG_LEVEL", "log_level"),
];

/// Reads a secret written in the uppercase form as the snake_case one (`BENCHLING_PKG_BUCKET`
/// may be `s3://bucket`); a secret in the snake_case form passes unchanged. A secret that
/// mixes the forms is refused, naming an uppercase key and a snake_case key it holds, since
/// which of two values wins would be a guess.
fn snake_case_keys(map: Map<String, Value>) -> Result<Map<String, Value>, SecretError> {
    let upper: Vec<&str> = UPPERCASE_KEYS
        .iter()
        .map(|(upper, _)| *upper)
        .filter(|key| map.contains_key(*key))
        .collect();
    let Some(first_upper) = upper.first() else {
        return Ok(map);
    };
    let snake = UPPERCASE_KEYS
        .iter()
        .map(|(_, snake)| *snake)
        .find(|key| map.contains_key(*key));
    if let Some(snake) = snake {
        return Err(SecretError::Invalid(vec![format!(
            "{first_upper} and {snake}: the secret mixes the uppercase and snake_case forms; use one"
        )]));
    }
    Ok(map
        .into_iter()
        .map(
            |(key, value)| match UPPERCASE_KEYS.iter().find(|(upper, _)| *upper == key) {
                Some((_, "user_bucket")) => ("user_bucket".to_owned(), bare_bucket(value)),
                Some((_, snake)) => ((*snake).to_owned(), value),
                None => (key, value),
            },
        )
        .collect())
}

/// `s3://bucket` or `s3://bucket/` → `bucket`; anything else unchanged (and checked later).
fn bare_bucket(value: Value) -> Value {
    match value {
        Value::String(s) => Value::String(
            s.trim()
                .strip_prefix("s3://")
                .map_or_else(|| s.clone(), |rest| rest.trim_end_matches('/').to_owned()),
        ),
        other => other,
    }
}

/// `Acme.Benchling.com.` → `acme`.
fn normalize_tenant(raw: &str) -> String {
    let t = raw.trim().trim_end_matches('.').to_ascii_lowercase();
    t.strip_suffix(".benchling.com")
        .map_or(t.clone(), str::to_owned)
}

fn valid_prefix(prefix: &str) -> bool {
    !prefix.is_empty()
        && prefix.split('/').all(|seg| {
            !seg.is_empty()
                && seg != "."
                && seg != ".."
                && seg
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        })
}

/// The key is spliced into a JSON path for Athena, so it is held to identifier characters.
pub fn valid_metadata_key(key: &str) -> bool {
    let mut bytes = key.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_')
        && key.len() <= 64
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

fn valid_bucket(bucket: &str) -> bool {
    (3..=63).contains(&bucket.len())
        && bucket
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
        && bucket.as_bytes()[0].is_ascii_alphanumeric()
        && bucket.as_bytes()[bucket.len() - 1].is_ascii_alphanumeric()
}

/// Fetches the secret from its source.
#[derive(Clone, Debug)]
pub struct SecretLoader {
    source: SecretSource,
    client: Option<aws_sdk_secretsmanager::Client>,
}

impl SecretLoader {
    /// A loader for `source`; a Secrets Manager source needs `client`.
    pub fn new(source: SecretSource, client: Option<aws_sdk_secretsmanager::Client>) -> Self {
        Self { source, client }
    }

    /// The source, for display.
    pub fn source(&self) -> &SecretSource {
        &self.source
    }

    /// Fetches and validates the secret; `package_bucket` is the deployment's bucket
    /// ([`BenchlingSecret::from_json_with`]).
    pub async fn load(&self, package_bucket: Option<&str>) -> Result<BenchlingSecret, SecretError> {
        let text = match &self.source {
            SecretSource::File(path) => {
                tokio::fs::read_to_string(path)
                    .await
                    .map_err(|e| SecretError::File {
                        path: path.display().to_string(),
                        message: e.to_string(),
                    })?
            }
            SecretSource::SecretsManager(id) => {
                let masked = mask_arn(id);
                let client = self.client.as_ref().ok_or_else(|| SecretError::Fetch {
                    secret: masked.clone(),
                    message: "no Secrets Manager client configured".into(),
                })?;
                let output = client
                    .get_secret_value()
                    .secret_id(id)
                    .send()
                    .await
                    .map_err(|e| {
                        let service = e.as_service_error();
                        if service.is_some_and(|s| s.is_resource_not_found_exception()) {
                            SecretError::NotFound(masked.clone())
                        } else if service.and_then(|s| {
                            aws_sdk_secretsmanager::error::ProvideErrorMetadata::code(s)
                        }) == Some("AccessDeniedException")
                        {
                            SecretError::AccessDenied(masked.clone())
                        } else {
                            SecretError::Fetch {
                                secret: masked.clone(),
                                message: crate::mask::mask_account_ids(
                                    &aws_sdk_secretsmanager::error::DisplayErrorContext(&e)
                                        .to_string(),
                                ),
                            }
                        }
                    })?;
                output.secret_string.ok_or_else(|| {
                    SecretError::InvalidJson("the secret has no SecretString".into())
                })?
            }
        };
        BenchlingSecret::from_json_with(&text, package_bucket)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = r#"{"tenant":" Quilt-DTT.benchling.com. ","client_id":"id","client_secret":"s3cr3t",
        "app_definition_id":"appdef_1","user_bucket":"my-bucket","pkg_prefix":"benchling",
        "pkg_key":"experiment_id","log_level":"INFO","enable_webhook_verification":"TRUE","workflow":""}"#;

    #[test]
    fn parses_and_normalizes() {
        let s = BenchlingSecret::from_json(VALID).unwrap();
        assert_eq!(s.tenant, "quilt-dtt");
        assert!(s.enable_webhook_verification);
        assert_eq!(s.workflow, None);
        assert_eq!(
            format!("{s:?}").matches("s3cr3t").count(),
            0,
            "secret leaked into Debug"
        );
    }

    #[test]
    fn lists_every_problem_without_echoing_values() {
        let err = BenchlingSecret::from_json(
            r#"{"tenant":"a b","client_secret":"hunter2","user_bucket":"Bad_Bucket","pkg_key":"x') OR 1=1 --","enable_webhook_verification":"perhaps"}"#,
        )
        .unwrap_err()
        .to_string();
        for needle in [
            "missing keys: client_id, app_definition_id",
            "tenant:",
            "user_bucket:",
            "pkg_key:",
            "enable_webhook_verification:",
        ] {
            assert!(err.contains(needle), "{needle} not in {err}");
        }
        assert!(!err.contains("hunter2"));
    }

    #[test]
    fn defaults_optional_keys() {
        let s = BenchlingSecret::from_json(
            r#"{"tenant":"t","client_id":"i","client_secret":"s","app_definition_id":"appdef_1","user_bucket":"bkt"}"#,
        )
        .unwrap();
        assert_eq!(
            (
                s.pkg_prefix.as_str(),
                s.pkg_key.as_str(),
                s.log_level.as_str()
            ),
            ("benchling", "experiment_id", "INFO")
        );
        assert!(s.enable_webhook_verification);
    }

    #[test]
    fn the_four_key_form_takes_its_bucket_from_the_deployment() {
        let four =
            r#"{"client_id":"i","client_secret":"s","tenant":"t","app_definition_id":"appdef_1"}"#;
        let secret = BenchlingSecret::from_json_with(four, Some("deployed-bucket")).unwrap();
        assert_eq!(secret.user_bucket, "deployed-bucket");
        assert_eq!(secret.pkg_prefix, "benchling");
        // Without PACKAGE_BUCKET the bucket is missing, and the error says where it may come from.
        let err = BenchlingSecret::from_json(four).unwrap_err().to_string();
        assert!(
            err.contains("user_bucket") && err.contains("PACKAGE_BUCKET"),
            "{err}"
        );
        // The same bucket in both places is fine; different ones are refused naming both keys.
        let both = r#"{"client_id":"i","client_secret":"s","tenant":"t","app_definition_id":"appdef_1","user_bucket":"bkt"}"#;
        assert_eq!(
            BenchlingSecret::from_json_with(both, Some("bkt"))
                .unwrap()
                .user_bucket,
            "bkt"
        );
        let err = BenchlingSecret::from_json_with(both, Some("other"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("user_bucket and PACKAGE_BUCKET"), "{err}");
        let upper = r#"{"BENCHLING_TENANT":"t","BENCHLING_CLIENT_ID":"i","BENCHLING_CLIENT_SECRET":"s",
            "BENCHLING_APP_DEFINITION_ID":"appdef_1","BENCHLING_PKG_BUCKET":"s3://bkt"}"#;
        let err = BenchlingSecret::from_json_with(upper, Some("other"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("BENCHLING_PKG_BUCKET and PACKAGE_BUCKET"),
            "{err}"
        );
        assert_eq!(
            BenchlingSecret::from_json_with(upper, Some("bkt"))
                .unwrap()
                .user_bucket,
            "bkt"
        );
    }

    #[test]
    fn the_uppercase_form_reads_as_the_snake_case_one() {
        let upper = BenchlingSecret::from_json(
            r#"{"BENCHLING_TENANT":"quilt-dtt","BENCHLING_CLIENT_ID":"id","BENCHLING_CLIENT_SECRET":"s3cr3t",
            "BENCHLING_APP_DEFINITION_ID":"appdef_1","BENCHLING_PKG_BUCKET":"s3://my-bucket/",
            "BENCHLING_PKG_PREFIX":"benchling","BENCHLING_PKG_KEY":"experiment_id",
            "BENCHLING_ENABLE_WEBHOOK_VERIFICATION":"TRUE","BENCHLING_LOG_LEVEL":"INFO"}"#,
        )
        .unwrap();
        assert_eq!(upper, BenchlingSecret::from_json(VALID).unwrap());
        let bare = BenchlingSecret::from_json(
            r#"{"BENCHLING_TENANT":"t","BENCHLING_CLIENT_ID":"i","BENCHLING_CLIENT_SECRET":"s",
            "BENCHLING_APP_DEFINITION_ID":"appdef_1","BENCHLING_PKG_BUCKET":"bkt",
            "BENCHLING_ENABLE_WEBHOOK_VERIFICATION":"false"}"#,
        )
        .unwrap();
        assert_eq!(bare.user_bucket, "bkt");
        assert!(!bare.enable_webhook_verification);
    }

    #[test]
    fn a_secret_mixing_the_forms_names_both_keys() {
        let err = BenchlingSecret::from_json(
            r#"{"BENCHLING_TENANT":"t","tenant":"u","client_id":"i","client_secret":"hunter2",
            "app_definition_id":"appdef_1","user_bucket":"bkt"}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("BENCHLING_TENANT and tenant"), "{err}");
        assert!(!err.contains("hunter2"));
    }

    #[test]
    fn file_sources_are_explicit() {
        assert_eq!(
            SecretSource::parse("file:/tmp/s.json"),
            SecretSource::File("/tmp/s.json".into())
        );
        assert_eq!(
            SecretSource::parse("arn:aws:secretsmanager:us-east-1:123456789012:secret:x").masked(),
            "arn:aws:secretsmanager:us-east-1:***:secret:x"
        );
    }
}
