//! `deployments.json`: what each deploy of a profile did, newest last, beside its
//! `config.json`. `deploy` appends; `status` shows the last one.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::profile::{ProfileStore, write_atomic};

/// The file's name in a profile's directory.
const FILE: &str = "deployments.json";
/// The file's format.
const SCHEMA_VERSION: u32 = 1;
/// Deployments kept; older ones are dropped.
const KEPT: usize = 100;

/// How a deployment ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The stack reached `CREATE_COMPLETE` or `UPDATE_COMPLETE`.
    Succeeded,
    /// It failed or rolled back.
    Failed,
}

/// One deployment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Deployment {
    /// When the change set was executed.
    pub at: DateTime<Utc>,
    /// The stack's name and region.
    pub stack: String,
    /// Its region.
    pub region: String,
    /// The environment deployed.
    pub environment: String,
    /// The change set executed.
    pub change_set: String,
    /// The image tag deployed.
    pub image_tag: String,
    /// How it ended.
    pub outcome: Outcome,
    /// The stack's status at the end.
    pub status: String,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The environment's webhook URL, when the stack reports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_url: Option<String>,
    /// The parameters this deploy set (the others kept their values).
    pub parameters: BTreeMap<String, String>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct File {
    schema_version: u32,
    deployments: Vec<Deployment>,
}

/// The deployments of one profile.
pub struct Deployments {
    path: PathBuf,
}

impl Deployments {
    /// The file of profile `name`.
    ///
    /// # Errors
    /// A profile name that is not ours.
    pub fn of(store: &ProfileStore, name: &str) -> anyhow::Result<Self> {
        Ok(Self {
            path: store.file_path(name, FILE)?,
        })
    }

    /// Every deployment recorded, oldest first; none when there is no file.
    ///
    /// # Errors
    /// A file that cannot be read or is not this format.
    pub fn all(&self) -> anyhow::Result<Vec<Deployment>> {
        let text = match std::fs::read(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e).with_context(|| format!("reading {}", self.path.display())),
        };
        let file: File = serde_json::from_slice(&text)
            .with_context(|| format!("{} is not a deployments file", self.path.display()))?;
        anyhow::ensure!(
            file.schema_version == SCHEMA_VERSION,
            "{} has schemaVersion {}; this version reads {SCHEMA_VERSION}",
            self.path.display(),
            file.schema_version
        );
        Ok(file.deployments)
    }

    /// Appends `deployment`, keeping the newest [`KEPT`], atomically.
    ///
    /// # Errors
    /// As [`Self::all`], or when the file cannot be written.
    pub fn record(&self, deployment: Deployment) -> anyhow::Result<()> {
        let mut deployments = self.all()?;
        deployments.push(deployment);
        let excess = deployments.len().saturating_sub(KEPT);
        deployments.drain(..excess);
        let file = File {
            schema_version: SCHEMA_VERSION,
            deployments,
        };
        let mut text = serde_json::to_vec_pretty(&file)?;
        text.push(b'\n');
        write_atomic(&self.path, &text).with_context(|| format!("writing {}", self.path.display()))
    }
}
