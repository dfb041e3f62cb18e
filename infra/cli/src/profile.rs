//! Operator profiles: one directory per profile under `$XDG_CONFIG_HOME/benchling-webhook/`
//! (`~/.config/benchling-webhook/` without it), holding `config.json`.
//!
//! A profile names one environment of one stack and everything needed to deploy it. It never
//! holds the Benchling client secret: that lives in Secrets Manager, and the profile keeps only
//! the secret's ARN. A profile may inherit from another (`"_inherits": "base"`): objects merge
//! key by key, and any other value of the child (arrays included) replaces the base's. Only the
//! merged result is validated, so a child may hold just what differs.

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};

use bw_stack::{Cidr, EnvironmentName, Network, OptionsError};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The `schemaVersion` this CLI reads and writes.
pub const SCHEMA_VERSION: u32 = 1;

/// The profile used when none is named.
pub const DEFAULT_PROFILE: &str = "default";

/// The stack name when a profile gives none, as upstream.
pub const DEFAULT_STACK_NAME: &str = "BenchlingWebhookStack";

/// The key that names a profile's base.
const INHERITS: &str = "_inherits";

/// Why a profile cannot be used. Every message names the profile and, where one is to blame,
/// the field.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// A profile name that could not be a directory name of ours.
    #[error("invalid profile name {0:?}: use letters, digits, '-' and '_' (at most 64)")]
    BadName(String),
    /// No `config.json` for the profile.
    #[error("profile {name:?} does not exist (no {})", .path.display())]
    Missing {
        /// The profile.
        name: String,
        /// Where its file was looked for.
        path: PathBuf,
    },
    /// The file could not be read.
    #[error("reading {}: {source}", .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not JSON, or a field has the wrong shape.
    #[error("profile {name:?} ({}): {message}", .path.display())]
    Malformed {
        /// The profile whose file is to blame.
        name: String,
        /// Its file.
        path: PathBuf,
        /// serde's message, which names the field and its line.
        message: String,
    },
    /// `_inherits` leads back to a profile already in the chain.
    #[error("profile inheritance loops: {}", .0.join(" -> "))]
    Cycle(Vec<String>),
    /// A field holds a value the deployment cannot use.
    #[error("profile {profile:?}: {field}: {reason}")]
    Invalid {
        /// The profile (after inheritance).
        profile: String,
        /// The field's path, as written in the file (`benchling.secret`).
        field: &'static str,
        /// What is wrong, and what is expected.
        reason: String,
    },
    /// `init` without `--force` on a profile that exists.
    #[error("profile {name:?} exists ({}): give --force to replace it", .path.display())]
    Exists {
        /// The profile.
        name: String,
        /// Its file.
        path: PathBuf,
    },
    /// The profile was written for another version of this CLI.
    #[error(
        "profile {profile:?} has schemaVersion {found}; this CLI reads version {SCHEMA_VERSION}"
    )]
    Version {
        /// The profile.
        profile: String,
        /// The version in the file.
        found: u64,
    },
}

/// One profile, inheritance applied.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Profile {
    /// Always [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// The CloudFormation stack this profile deploys into.
    #[serde(default)]
    pub stack: StackTarget,
    /// The environment of that stack this profile owns (`dev`, `prod`).
    pub environment: EnvironmentName,
    /// The Quilt stack the packages go to.
    pub quilt: QuiltTarget,
    /// The Benchling app.
    pub benchling: BenchlingApp,
    /// Where packages are written.
    pub packages: Packages,
    /// The service image.
    #[serde(default)]
    pub image: Image,
    /// The services' log level: `DEBUG`, `INFO`, `WARNING` or `ERROR`.
    #[serde(default = "default_log_level")]
    pub log_level: String,
}

/// Where the stack lives.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StackTarget {
    /// The stack's name.
    #[serde(default = "default_stack_name")]
    pub name: String,
    /// Its region; `None` means the Quilt stack's region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// An existing VPC to create the stack in (with `privateSubnetIds`); `None`: a new VPC. Read
    /// only when the stack is created: a stack cannot move.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vpc_id: Option<String>,
    /// That VPC's private subnets, at least two in different zones.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub private_subnet_ids: Vec<String>,
    /// Only these addresses may call the API; `None` keeps the stack's list (anyone, for a new
    /// stack).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_cidrs: Option<Vec<String>>,
}

impl StackTarget {
    /// The network a new stack is created in.
    ///
    /// # Errors
    /// A malformed id, or fewer than two subnets.
    pub fn network(&self) -> Result<Network, OptionsError> {
        match &self.vpc_id {
            Some(vpc_id) => Network::existing(vpc_id, &self.private_subnet_ids),
            None => Ok(Network::New),
        }
    }

    /// The allowlist, when the profile sets one.
    ///
    /// # Errors
    /// An entry that is not an address or a CIDR block.
    pub fn allow(&self) -> Result<Option<Vec<Cidr>>, OptionsError> {
        self.allow_cidrs
            .as_ref()
            .map(|cidrs| cidrs.iter().map(|c| c.parse()).collect())
            .transpose()
    }
}

impl Default for StackTarget {
    fn default() -> Self {
        Self {
            name: default_stack_name(),
            region: None,
            vpc_id: None,
            private_subnet_ids: Vec::new(),
            allow_cidrs: None,
        }
    }
}

/// The Quilt stack, found by its ARN; its outputs are read at deploy time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct QuiltTarget {
    /// `arn:<partition>:cloudformation:<region>:<account>:stack/<name>/<id>`.
    pub stack_arn: String,
}

/// The Benchling app: who it is, and where its secret lives.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BenchlingApp {
    /// The tenant's subdomain (`acme` for acme.benchling.com).
    pub tenant: String,
    /// The app's OAuth client id (not secret; the client secret is only in Secrets Manager).
    pub client_id: String,
    /// The app definition id (`appdef_…`).
    pub app_definition_id: String,
    /// The Secrets Manager secret the services read: its ARN or its name.
    pub secret: String,
}

/// Where packages are written.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Packages {
    /// The Quilt registry bucket.
    pub bucket: String,
    /// The package name prefix.
    #[serde(default = "default_prefix")]
    pub prefix: String,
    /// The metadata key that links packages to entries.
    #[serde(default = "default_metadata_key")]
    pub metadata_key: String,
}

/// The service image.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Image {
    /// The tag to deploy; `None` means this CLI's version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// The ECR repository holding it (`{account}.dkr.ecr.{region}.amazonaws.com/{name}`);
    /// `None` keeps the stack's. Required to create a stack.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
}

impl Image {
    /// The tag to deploy: the profile's, else this CLI's version.
    pub fn tag_or_default(&self) -> String {
        self.tag
            .clone()
            .unwrap_or_else(|| env!("CARGO_PKG_VERSION").to_owned())
    }
}

fn default_stack_name() -> String {
    DEFAULT_STACK_NAME.to_owned()
}

fn default_log_level() -> String {
    "INFO".to_owned()
}

fn default_prefix() -> String {
    "benchling".to_owned()
}

fn default_metadata_key() -> String {
    "experiment_id".to_owned()
}

impl Profile {
    /// Checks what serde cannot: formats of names and ARNs.
    ///
    /// # Errors
    ///
    /// The first field that is wrong, named as in the file.
    pub fn validate(&self, name: &str) -> Result<(), ProfileError> {
        let invalid = |field: &'static str, reason: String| {
            Err(ProfileError::Invalid {
                profile: name.to_owned(),
                field,
                reason,
            })
        };
        if self.schema_version != SCHEMA_VERSION {
            return Err(ProfileError::Version {
                profile: name.to_owned(),
                found: u64::from(self.schema_version),
            });
        }
        if !stack_name_ok(&self.stack.name) {
            return invalid(
                "stack.name",
                format!(
                    "{:?} is not a stack name (a letter, then letters, digits and '-', at most 128)",
                    self.stack.name
                ),
            );
        }
        if let Some(region) = &self.stack.region
            && !region_ok(region)
        {
            return invalid("stack.region", format!("{region:?} is not an AWS region"));
        }
        if self.stack.vpc_id.is_none() && !self.stack.private_subnet_ids.is_empty() {
            return invalid(
                "stack.privateSubnetIds",
                "given without stack.vpcId".to_owned(),
            );
        }
        if let Err(e) = self.stack.network() {
            return invalid("stack.vpcId", e.to_string());
        }
        if let Err(e) = self.stack.allow() {
            return invalid("stack.allowCidrs", e.to_string());
        }
        if let Some(repository) = &self.image.repository
            && crate::ecr::Repository::parse(repository).is_none()
        {
            return invalid(
                "image.repository",
                format!(
                    "{repository:?} is not an ECR repository URI ({{account}}.dkr.ecr.{{region}}.amazonaws.com/{{name}}, no tag)"
                ),
            );
        }
        if let Err(reason) = arn_ok(&self.quilt.stack_arn, "cloudformation", "stack/") {
            return invalid("quilt.stackArn", reason);
        }
        if let Err(reason) = secret_ok(&self.benchling.secret) {
            return invalid("benchling.secret", reason);
        }
        for (field, value) in [
            ("benchling.tenant", &self.benchling.tenant),
            ("benchling.clientId", &self.benchling.client_id),
            (
                "benchling.appDefinitionId",
                &self.benchling.app_definition_id,
            ),
            ("packages.prefix", &self.packages.prefix),
            ("packages.metadataKey", &self.packages.metadata_key),
        ] {
            if value.trim().is_empty() {
                return invalid(field, "must not be empty".to_owned());
            }
        }
        if !bucket_ok(&self.packages.bucket) {
            return invalid(
                "packages.bucket",
                format!("{:?} is not an S3 bucket name", self.packages.bucket),
            );
        }
        if !["DEBUG", "INFO", "WARNING", "ERROR"].contains(&self.log_level.as_str()) {
            return invalid(
                "logLevel",
                format!(
                    "{:?} is not one of DEBUG, INFO, WARNING, ERROR",
                    self.log_level
                ),
            );
        }
        Ok(())
    }
}

/// A letter, then letters, digits and hyphens; at most 128 (CloudFormation's rule).
fn stack_name_ok(name: &str) -> bool {
    name.len() <= 128
        && name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

/// `us-east-1`, `eu-central-2`, `us-gov-west-1`, `ap-southeast-3`.
fn region_ok(region: &str) -> bool {
    let parts: Vec<&str> = region.split('-').collect();
    parts.len() >= 3
        && parts[0].len() == 2
        && parts[..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_lowercase()))
        && parts[parts.len() - 1].chars().all(|c| c.is_ascii_digit())
        && !parts[parts.len() - 1].is_empty()
}

/// An ARN of `service` in any partition, with a region, a 12-digit account and a resource
/// starting with `resource`.
fn arn_ok(arn: &str, service: &str, resource: &str) -> Result<(), String> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let expected =
        || format!("{arn:?} is not an ARN like arn:aws:{service}:<region>:<account>:{resource}…");
    let [scheme, partition, found_service, region, account, rest] = parts[..] else {
        return Err(expected());
    };
    if scheme != "arn"
        || !partition.starts_with("aws")
        || found_service != service
        || !rest.starts_with(resource)
        || rest.len() == resource.len()
    {
        return Err(expected());
    }
    if !region_ok(region) {
        return Err(format!("{arn:?} names no valid region"));
    }
    if account.len() != 12 || !account.chars().all(|c| c.is_ascii_digit()) {
        return Err(format!("{arn:?} names no 12-digit account"));
    }
    Ok(())
}

/// A Secrets Manager ARN, or a secret name (1–512 of letters, digits and `/_+=.@-`).
fn secret_ok(secret: &str) -> Result<(), String> {
    if secret.starts_with("arn:") {
        return arn_ok(secret, "secretsmanager", "secret:");
    }
    let name_ok = (1..=512).contains(&secret.len())
        && secret
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/_+=.@-".contains(c));
    if name_ok {
        Ok(())
    } else {
        Err(format!(
            "{secret:?} is neither a Secrets Manager ARN nor a secret name (letters, digits and /_+=.@-)"
        ))
    }
}

/// S3's rules for new buckets: 3–63 lowercase letters, digits, '.' and '-', starting and ending
/// with a letter or digit.
fn bucket_ok(bucket: &str) -> bool {
    (3..=63).contains(&bucket.len())
        && bucket
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-')
        && bucket.starts_with(|c: char| c.is_ascii_alphanumeric())
        && bucket.ends_with(|c: char| c.is_ascii_alphanumeric())
}

/// Writes `bytes` to `path` so that a reader sees the old file or the new one, never a part, and
/// the new one survives a crash once this returns.
///
/// # Errors
///
/// When the directory cannot be made or the file written.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let file_name = path.file_name().unwrap_or_default().to_string_lossy();
    let temp = dir.join(format!(".{file_name}.tmp-{}", std::process::id()));
    let written = (|| {
        let mut file = std::fs::File::create(&temp)?;
        std::io::Write::write_all(&mut file, bytes)?;
        file.sync_all()?;
        std::fs::rename(&temp, path)?;
        // The rename itself must survive a crash.
        std::fs::File::open(dir)?.sync_all()
    })();
    if written.is_err() {
        // Best effort: the write's error is the one to report.
        let _ = std::fs::remove_file(&temp);
    }
    written
}

/// The profiles directory.
#[derive(Clone, Debug)]
pub struct ProfileStore {
    root: PathBuf,
}

impl ProfileStore {
    /// The store at `$XDG_CONFIG_HOME/benchling-webhook`, else `$HOME/.config/benchling-webhook`.
    ///
    /// # Errors
    ///
    /// When neither variable is set (or `XDG_CONFIG_HOME` is relative, which the XDG
    /// specification says to ignore, and `HOME` is unset).
    pub fn from_env() -> anyhow::Result<Self> {
        let xdg = std::env::var_os("XDG_CONFIG_HOME")
            .map(PathBuf::from)
            .filter(|path| path.is_absolute());
        let base = match xdg {
            Some(base) => base,
            None => std::env::var_os("HOME")
                .map(|home| PathBuf::from(home).join(".config"))
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "neither XDG_CONFIG_HOME nor HOME is set: no place for profiles"
                    )
                })?,
        };
        Ok(Self::at(base.join("benchling-webhook")))
    }

    /// The store at `root`.
    pub fn at(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The profiles directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The names of the profiles that have a `config.json`, sorted.
    ///
    /// # Errors
    ///
    /// When the directory exists but cannot be read.
    pub fn list(&self) -> Result<Vec<String>, ProfileError> {
        let entries = match std::fs::read_dir(&self.root) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(ProfileError::Io {
                    path: self.root.clone(),
                    source,
                });
            }
        };
        let mut names = BTreeSet::new();
        for entry in entries {
            let entry = entry.map_err(|source| ProfileError::Io {
                path: self.root.clone(),
                source,
            })?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name_ok(&name) && entry.path().join("config.json").is_file() {
                names.insert(name);
            }
        }
        Ok(names.into_iter().collect())
    }

    /// Where a profile's `config.json` is.
    ///
    /// # Errors
    ///
    /// [`ProfileError::BadName`] for a name that is not ours.
    pub fn config_path(&self, name: &str) -> Result<PathBuf, ProfileError> {
        if !name_ok(name) {
            return Err(ProfileError::BadName(name.to_owned()));
        }
        Ok(self.root.join(name).join("config.json"))
    }

    /// Where another of a profile's files is (`deployments.json`, …).
    ///
    /// # Errors
    ///
    /// [`ProfileError::BadName`] for a name that is not ours.
    pub fn file_path(&self, name: &str, file: &str) -> Result<PathBuf, ProfileError> {
        Ok(self.config_path(name)?.with_file_name(file))
    }

    /// Validates `profile` and writes it as `name`, atomically: a reader sees the old file or
    /// the new one, never a part. Returns the file's path.
    ///
    /// # Errors
    ///
    /// When the profile is invalid, exists and `replace` is false, or cannot be written.
    pub fn save(
        &self,
        name: &str,
        profile: &Profile,
        replace: bool,
    ) -> Result<PathBuf, ProfileError> {
        profile.validate(name)?;
        let path = self.config_path(name)?;
        if !replace && path.exists() {
            return Err(ProfileError::Exists {
                name: name.to_owned(),
                path,
            });
        }
        let mut text = serde_json::to_string_pretty(profile).unwrap_or_default();
        text.push('\n');
        write_atomic(&path, text.as_bytes()).map_err(|source| ProfileError::Io {
            path: path.clone(),
            source,
        })?;
        Ok(path)
    }

    /// The profile `name`, its bases merged in, parsed and validated.
    ///
    /// # Errors
    ///
    /// Why it cannot be used, naming the profile and the field.
    pub fn load(&self, name: &str) -> Result<Profile, ProfileError> {
        let merged = self.merged(name, &mut Vec::new())?;
        let profile: Profile =
            serde_json::from_value(Value::Object(merged)).map_err(|e| ProfileError::Malformed {
                name: name.to_owned(),
                path: self.config_path(name).unwrap_or_default(),
                message: e.to_string(),
            })?;
        profile.validate(name)?;
        Ok(profile)
    }

    /// The profile's JSON object with its bases merged under it; `chain` holds the profiles
    /// already being read, to catch loops.
    fn merged(
        &self,
        name: &str,
        chain: &mut Vec<String>,
    ) -> Result<Map<String, Value>, ProfileError> {
        if chain.iter().any(|seen| seen == name) {
            chain.push(name.to_owned());
            return Err(ProfileError::Cycle(std::mem::take(chain)));
        }
        chain.push(name.to_owned());
        let path = self.config_path(name)?;
        let text = std::fs::read_to_string(&path).map_err(|source| {
            if source.kind() == std::io::ErrorKind::NotFound {
                ProfileError::Missing {
                    name: name.to_owned(),
                    path: path.clone(),
                }
            } else {
                ProfileError::Io {
                    path: path.clone(),
                    source,
                }
            }
        })?;
        let malformed = |message: String| ProfileError::Malformed {
            name: name.to_owned(),
            path: path.clone(),
            message,
        };
        let mut object = match serde_json::from_str::<Value>(&text) {
            Ok(Value::Object(object)) => object,
            Ok(_) => return Err(malformed("the file is not a JSON object".to_owned())),
            Err(e) => return Err(malformed(e.to_string())),
        };
        match object.remove(INHERITS) {
            None => Ok(object),
            Some(Value::String(base)) => {
                let mut merged = self.merged(&base, chain)?;
                merge(&mut merged, object);
                Ok(merged)
            }
            Some(_) => Err(malformed(format!("{INHERITS} must be a profile name"))),
        }
    }
}

/// Merges `child` over `base`: objects key by key, anything else replaced.
fn merge(base: &mut Map<String, Value>, child: Map<String, Value>) {
    for (key, value) in child {
        match (base.get_mut(&key), value) {
            (Some(Value::Object(below)), Value::Object(above)) => merge(below, above),
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

/// Letters, digits, '-' and '_', 1 to 64: a safe directory name on every platform.
fn name_ok(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

impl fmt::Display for Profile {
    /// The profile as an operator sees it: ARNs with their account masked, as `/config` shows
    /// them.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let masked = bw_config::mask::mask_arn;
        let region = self
            .stack
            .region
            .as_deref()
            .unwrap_or("(the Quilt stack's)");
        let tag = self.image.tag.as_deref().unwrap_or("(this CLI's version)");
        writeln!(f, "stack:              {} in {region}", self.stack.name)?;
        writeln!(f, "environment:        {}", self.environment.as_str())?;
        writeln!(f, "quilt stack:        {}", masked(&self.quilt.stack_arn))?;
        writeln!(f, "benchling tenant:   {}", self.benchling.tenant)?;
        writeln!(f, "benchling client:   {}", self.benchling.client_id)?;
        writeln!(
            f,
            "app definition:     {}",
            self.benchling.app_definition_id
        )?;
        writeln!(f, "secret:             {}", masked(&self.benchling.secret))?;
        writeln!(
            f,
            "packages:           s3://{}/{}/ (metadata key {})",
            self.packages.bucket, self.packages.prefix, self.packages.metadata_key
        )?;
        writeln!(f, "image tag:          {tag}")?;
        write!(f, "log level:          {}", self.log_level)
    }
}

impl Profile {
    /// The profile as JSON, ARNs masked as in [`fmt::Display`].
    pub fn masked_json(&self) -> Value {
        let mut value = serde_json::to_value(self).unwrap_or(Value::Null);
        for (section, field) in [("quilt", "stackArn"), ("benchling", "secret")] {
            if let Some(Value::String(arn)) = value.pointer_mut(&format!("/{section}/{field}")) {
                *arn = bw_config::mask::mask_arn(arn);
            }
        }
        value
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn full() -> Value {
        json!({
            "schemaVersion": 1,
            "environment": "prod",
            "quilt": {"stackArn": "arn:aws:cloudformation:us-east-1:123456789012:stack/quilt/abc"},
            "benchling": {
                "tenant": "acme",
                "clientId": "client",
                "appDefinitionId": "appdef_1",
                "secret": "arn:aws:secretsmanager:us-east-1:123456789012:secret:bw-AbCd"
            },
            "packages": {"bucket": "acme-packages"}
        })
    }

    fn store_with(profiles: &[(&str, Value)]) -> (tempfile::TempDir, ProfileStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = ProfileStore::at(dir.path().join("benchling-webhook"));
        for (name, value) in profiles {
            let path = store.config_path(name).unwrap();
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, serde_json::to_vec_pretty(value).unwrap()).unwrap();
        }
        (dir, store)
    }

    #[test]
    fn a_full_profile_loads_with_its_defaults() {
        let (_dir, store) = store_with(&[("default", full())]);
        let profile = store.load("default").unwrap();
        assert_eq!(profile.stack.name, DEFAULT_STACK_NAME);
        assert_eq!(profile.packages.prefix, "benchling");
        assert_eq!(profile.packages.metadata_key, "experiment_id");
        assert_eq!(profile.log_level, "INFO");
        assert_eq!(store.list().unwrap(), ["default"]);
    }

    #[test]
    fn a_child_holds_only_what_differs_and_arrays_and_scalars_replace() {
        let child = json!({
            "_inherits": "default",
            "environment": "dev",
            "benchling": {"secret": "benchling-webhook/dev"}
        });
        let (_dir, store) = store_with(&[("default", full()), ("dev", child)]);
        let dev = store.load("dev").unwrap();
        assert_eq!(dev.environment.as_str(), "dev");
        assert_eq!(dev.benchling.secret, "benchling-webhook/dev");
        assert_eq!(dev.benchling.tenant, "acme", "merged from the base");
        assert_eq!(dev.quilt, store.load("default").unwrap().quilt);
    }

    #[test]
    fn an_inheritance_loop_is_named() {
        let a = json!({"_inherits": "b"});
        let b = json!({"_inherits": "a"});
        let (_dir, store) = store_with(&[("a", a), ("b", b)]);
        let error = store.load("a").unwrap_err();
        assert_eq!(error.to_string(), "profile inheritance loops: a -> b -> a");
    }

    #[test]
    fn a_missing_base_is_named() {
        let (_dir, store) = store_with(&[("dev", json!({"_inherits": "nowhere"}))]);
        let error = store.load("dev").unwrap_err();
        assert!(
            matches!(&error, ProfileError::Missing { name, .. } if name == "nowhere"),
            "{error}"
        );
    }

    #[test]
    fn each_bad_field_is_named() {
        let cases = [
            (
                "/quilt/stackArn",
                json!("arn:aws:s3:::bucket"),
                "quilt.stackArn",
            ),
            (
                "/benchling/secret",
                json!("arn:aws:secretsmanager:us-east-1:12345:secret:x"),
                "benchling.secret",
            ),
            ("/benchling/secret", json!("has space"), "benchling.secret"),
            ("/packages/bucket", json!("Bad_Bucket"), "packages.bucket"),
            ("/benchling/tenant", json!(" "), "benchling.tenant"),
            ("/stack", json!({"name": "1stack"}), "stack.name"),
            ("/stack", json!({"region": "mars"}), "stack.region"),
            ("/logLevel", json!("LOUD"), "logLevel"),
        ];
        for (pointer, value, field) in cases {
            let mut profile = full();
            let (parent, key) = pointer.rsplit_once('/').unwrap();
            let target = if parent.is_empty() {
                &mut profile
            } else {
                profile.pointer_mut(parent).unwrap()
            };
            target[key] = value;
            let (_dir, store) = store_with(&[("p", profile)]);
            let error = store.load("p").unwrap_err();
            assert!(
                matches!(&error, ProfileError::Invalid { field: f, .. } if *f == field),
                "{pointer}: {error}"
            );
            assert!(error.to_string().contains(field), "{error}");
        }
    }

    #[test]
    fn unknown_and_missing_fields_are_named() {
        let mut profile = full();
        profile["benchling"]["clientSecret"] = json!("never on disk");
        let (_dir, store) = store_with(&[("p", profile)]);
        let error = store.load("p").unwrap_err().to_string();
        assert!(error.contains("unknown field `clientSecret`"), "{error}");

        let mut profile = full();
        profile["packages"]
            .as_object_mut()
            .unwrap()
            .remove("bucket");
        let (_dir, store) = store_with(&[("p", profile)]);
        let error = store.load("p").unwrap_err().to_string();
        assert!(error.contains("missing field `bucket`"), "{error}");
    }

    #[test]
    fn another_schema_version_is_refused() {
        let mut profile = full();
        profile["schemaVersion"] = json!(2);
        let (_dir, store) = store_with(&[("p", profile)]);
        let error = store.load("p").unwrap_err();
        assert!(
            matches!(error, ProfileError::Version { found: 2, .. }),
            "{error}"
        );
    }

    #[test]
    fn a_saved_profile_reads_back_and_is_not_replaced_unless_asked() {
        let (_dir, store) = store_with(&[("default", full())]);
        let mut profile = store.load("default").unwrap();
        profile.environment = "dev".parse().unwrap();
        let path = store.save("dev", &profile, false).unwrap();
        assert_eq!(store.load("dev").unwrap(), profile);
        assert!(matches!(
            store.save("dev", &profile, false),
            Err(ProfileError::Exists { .. })
        ));
        profile.log_level = "DEBUG".into();
        store.save("dev", &profile, true).unwrap();
        assert_eq!(store.load("dev").unwrap().log_level, "DEBUG");
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["config.json"], "no temporary file left");
        profile.packages.bucket = "X".into();
        assert!(matches!(
            store.save("bad", &profile, false),
            Err(ProfileError::Invalid {
                field: "packages.bucket",
                ..
            })
        ));
        assert!(!store.config_path("bad").unwrap().exists());
    }

    #[test]
    fn names_that_could_leave_the_directory_are_refused() {
        let (_dir, store) = store_with(&[]);
        for name in ["../x", "a/b", "", ".", "x".repeat(65).as_str()] {
            assert!(
                matches!(store.load(name), Err(ProfileError::BadName(_))),
                "{name:?}"
            );
        }
    }

    #[test]
    fn regions_and_arns_of_every_partition_are_accepted() {
        for region in [
            "us-east-1",
            "us-gov-west-1",
            "eu-central-2",
            "ap-southeast-3",
        ] {
            assert!(region_ok(region), "{region}");
        }
        for region in ["us-east", "useast-1", "US-EAST-1", "us--1"] {
            assert!(!region_ok(region), "{region}");
        }
        assert!(
            arn_ok(
                "arn:aws-us-gov:cloudformation:us-gov-west-1:123456789012:stack/q/1",
                "cloudformation",
                "stack/"
            )
            .is_ok()
        );
    }

    #[test]
    fn shown_profiles_mask_account_ids() {
        let (_dir, store) = store_with(&[("default", full())]);
        let profile = store.load("default").unwrap();
        let text = profile.to_string();
        let json = profile.masked_json().to_string();
        for shown in [&text, &json] {
            assert!(!shown.contains("123456789012"), "{shown}");
            assert!(
                shown.contains("arn:aws:secretsmanager:us-east-1:***:secret:bw-AbCd"),
                "{shown}"
            );
        }
    }
}
