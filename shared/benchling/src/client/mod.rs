//! The Benchling REST client: a typed method per call the workers make. The transport under
//! it (`transport`) is the one place for OAuth, retries, rate limiting and timeouts.

mod transport;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use bw_contracts::{CanvasId, EntryId};
use chrono::{DateTime, Utc};
use reqwest::Method;
use serde::Deserialize;
use serde_json::{Value, json};
use url::Url;

use self::transport::{Call, Transport, invalid};
pub use self::transport::{ClientOptions, PlainHttpHosts};
use crate::auth::CredentialSource;
use crate::error::BenchlingError;
use crate::model::{
    AppCanvas, AppCanvasFields, Entry, NameLookup, NewAppCanvas, TaskId, TaskStatus,
};

/// Ids per bulk-get request; Benchling caps bulk gets, 100 stays under every documented limit.
const BULK_CHUNK: usize = 100;

/// Entries per `GET /entries` page: Benchling's maximum.
const ENTRY_PAGE: usize = 50;

/// Which entries [`BenchlingClient::list_entries`] lists; every field given must match.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EntryFilter {
    /// Entries of this project (`src_…`).
    pub project_id: Option<String>,
    /// Entries of this folder (`lib_…`).
    pub folder_id: Option<String>,
    /// Modified at or after this time.
    pub modified_from: Option<DateTime<Utc>>,
    /// Modified before this time.
    pub modified_before: Option<DateTime<Utc>>,
}

impl EntryFilter {
    /// The `modifiedAt` query Benchling takes (`>= 2024-01-01T00:00:00Z AND < …`).
    fn modified_at(&self) -> Option<String> {
        let format = |at: &DateTime<Utc>| at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let parts: Vec<String> = [
            self.modified_from.map(|at| format!(">= {}", format(&at))),
            self.modified_before.map(|at| format!("< {}", format(&at))),
        ]
        .into_iter()
        .flatten()
        .collect();
        (!parts.is_empty()).then(|| parts.join(" AND "))
    }
}

/// One page of entries.
#[derive(Clone, Debug)]
pub struct EntryPage {
    /// The entries.
    pub entries: Vec<Entry>,
    /// The next page's token; `None` on the last page.
    pub next_token: Option<String>,
}

/// A Benchling API client. Clones share the token, the rate limiter and the connection pool.
#[derive(Clone)]
pub struct BenchlingClient {
    transport: Arc<Transport>,
}

impl BenchlingClient {
    /// A client reading credentials from `credentials` before every call. Fails when the
    /// configured base URL is not https (or http to loopback).
    pub fn new(
        credentials: Arc<dyn CredentialSource>,
        options: ClientOptions,
    ) -> Result<Self, BenchlingError> {
        Ok(Self {
            transport: Arc::new(Transport::new(credentials, options)?),
        })
    }

    /// `GET /entries/{id}`: the entry, typed, with its raw JSON.
    pub async fn get_entry(&self, id: &EntryId) -> Result<Entry, BenchlingError> {
        let call = Call::new(Method::GET, &["entries", id.as_str()]);
        let mut body = self.transport.execute(&call).await?;
        let raw = body
            .get_mut("entry")
            .map(Value::take)
            .filter(Value::is_object)
            .ok_or_else(|| invalid(&call, "no `entry` object"))?;
        Entry::from_value(raw).map_err(|e| invalid(&call, e))
    }

    /// `GET /entries`: one page of the entries `filter` selects, newest first as Benchling
    /// orders them, and the token of the next page (`None` on the last).
    pub async fn list_entries(
        &self,
        filter: &EntryFilter,
        next_token: Option<&str>,
    ) -> Result<EntryPage, BenchlingError> {
        let mut call = Call::new(Method::GET, &["entries"]);
        call.query.push(("pageSize", ENTRY_PAGE.to_string()));
        if let Some(project) = &filter.project_id {
            call.query.push(("projectId", project.clone()));
        }
        if let Some(folder) = &filter.folder_id {
            call.query.push(("folderId", folder.clone()));
        }
        if let Some(range) = filter.modified_at() {
            call.query.push(("modifiedAt", range));
        }
        if let Some(token) = next_token {
            call.query.push(("nextToken", token.to_owned()));
        }
        let mut body = self.transport.execute(&call).await?;
        let raw = match body.get_mut("entries").map(Value::take) {
            Some(Value::Array(raw)) => raw,
            _ => return Err(invalid(&call, "no `entries` array")),
        };
        let entries = raw
            .into_iter()
            .map(Entry::from_value)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| invalid(&call, e))?;
        let next_token = body
            .get("nextToken")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
            .map(str::to_owned);
        Ok(EntryPage {
            entries,
            next_token,
        })
    }

    /// `POST /exports {"id": entry}`: starts an export and returns its task.
    pub async fn start_export(&self, entry: &EntryId) -> Result<TaskId, BenchlingError> {
        let mut call = Call::new(Method::POST, &["exports"]);
        call.body = Some(json!({ "id": entry }));
        let body = self.transport.execute(&call).await?;
        body.get("taskId")
            .and_then(Value::as_str)
            .and_then(TaskId::parse)
            .ok_or_else(|| invalid(&call, "task ID not found"))
    }

    /// `GET /tasks/{id}`: whether the task is running, done or failed.
    pub async fn get_task(&self, id: &TaskId) -> Result<TaskStatus, BenchlingError> {
        let call = Call::new(Method::GET, &["tasks", id.as_str()]);
        let body = self.transport.execute(&call).await?;
        match body.get("status").and_then(Value::as_str) {
            Some("QUEUED" | "RUNNING") => Ok(TaskStatus::Running),
            Some("SUCCEEDED") => body
                .pointer("/response/downloadURL")
                .and_then(Value::as_str)
                .and_then(|u| Url::parse(u).ok())
                .map(|download_url| TaskStatus::Succeeded { download_url })
                .ok_or_else(|| invalid(&call, "SUCCEEDED without a valid response.downloadURL")),
            Some("FAILED") => Ok(TaskStatus::Failed {
                message: failure_reason(&body),
            }),
            Some(other) => Err(invalid(&call, format!("unknown task status {other:?}"))),
            None => Err(invalid(&call, "no task status")),
        }
    }

    /// `GET /app-canvases/{id}`.
    pub async fn get_app_canvas(&self, id: &CanvasId) -> Result<AppCanvas, BenchlingError> {
        let call = Call::new(Method::GET, &["app-canvases", id.as_str()]);
        let body = self.transport.execute(&call).await?;
        canvas_from(&call, &body)
    }

    /// `POST /app-canvases`: creates a canvas on a resource.
    pub async fn create_app_canvas(
        &self,
        canvas: &NewAppCanvas,
    ) -> Result<AppCanvas, BenchlingError> {
        let mut call = Call::new(Method::POST, &["app-canvases"]);
        // A second canvas in the entry would be worse than a failed job that is redelivered.
        call.at_most_once = true;
        call.body = Some(serde_json::to_value(canvas).map_err(|e| invalid(&call, e))?);
        let body = self.transport.execute(&call).await?;
        canvas_from(&call, &body)
    }

    /// `PATCH /app-canvases/{id}` with `{"enabled": …, "blocks": […]}`.
    pub async fn update_app_canvas(
        &self,
        id: &CanvasId,
        enabled: bool,
        blocks: Value,
    ) -> Result<AppCanvas, BenchlingError> {
        let mut call = Call::new(Method::PATCH, &["app-canvases", id.as_str()]);
        call.body = Some(json!({ "enabled": enabled, "blocks": blocks }));
        let body = self.transport.execute(&call).await?;
        canvas_from(&call, &body)
    }

    /// Names of the given resources of one link type, by bulk get (`id → name`). Ids Benchling
    /// does not return, or returns without a name, are absent from the map.
    pub async fn entity_names<S: AsRef<str>>(
        &self,
        lookup: NameLookup,
        ids: &[S],
    ) -> Result<HashMap<String, String>, BenchlingError> {
        let ids: Vec<&str> = ids
            .iter()
            .map(AsRef::as_ref)
            .filter(|id| !id.is_empty())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let path = lookup.path();
        let mut names = HashMap::new();
        for chunk in ids.chunks(BULK_CHUNK) {
            let mut call = Call::new(Method::GET, &[path.as_str()]);
            call.query.push((lookup.ids_param(), chunk.join(",")));
            let body = self.transport.execute(&call).await?;
            let items = body
                .get(lookup.list_key())
                .and_then(Value::as_array)
                .ok_or_else(|| invalid(&call, format!("no `{}` list", lookup.list_key())))?;
            for item in items {
                if let (Some(id), Some(name)) = (
                    item.get("id").and_then(Value::as_str),
                    item.get("name").and_then(Value::as_str),
                ) {
                    names.insert(id.to_owned(), name.to_owned());
                }
            }
        }
        Ok(names)
    }
}

fn canvas_from(call: &Call<'_>, body: &Value) -> Result<AppCanvas, BenchlingError> {
    AppCanvasFields::deserialize(body)
        .map(AppCanvas::from)
        .map_err(|e| invalid(call, e))
}

/// A FAILED task's `message` and `errors` in one line.
fn failure_reason(body: &Value) -> String {
    let mut parts: Vec<String> = body
        .get("message")
        .and_then(Value::as_str)
        .filter(|m| !m.is_empty())
        .map(str::to_owned)
        .into_iter()
        .collect();
    if let Some(errors) = body.get("errors").and_then(Value::as_array) {
        parts.extend(errors.iter().map(|e| {
            match e {
                Value::String(s) => s.clone(),
                Value::Object(o) => o
                    .get("message")
                    .and_then(Value::as_str)
                    .map_or_else(|| e.to_string(), str::to_owned),
                other => other.to_string(),
            }
        }));
    }
    if parts.is_empty() {
        "Benchling gave no reason".to_owned()
    } else {
        parts.join("; ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_tasks_carry_message_and_errors() {
        let body = json!({"status": "FAILED", "message": "Export failed",
            "errors": ["disk full", {"message": "entry locked"}]});
        assert_eq!(
            failure_reason(&body),
            "Export failed; disk full; entry locked"
        );
        assert_eq!(failure_reason(&json!({})), "Benchling gave no reason");
    }
}
