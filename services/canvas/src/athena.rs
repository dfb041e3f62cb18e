//! Linked packages: the Quilt packages whose metadata names an entry, found with Athena.
//!
//! The query is the upstream service's linked-package query with its defects fixed: the
//! entry's display id and the metadata key's JSON path travel as `ExecutionParameters`, never
//! spliced into the SQL; the
//! identifiers that must be spliced (database, bucket) are validated against strict patterns
//! first; the workgroup is sent on every call; polling backs off up to a timeout; every result
//! page is read; and access or workgroup errors say which workgroup and which IAM action.

use std::time::Duration;

use aws_sdk_athena::Client;
use aws_sdk_athena::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_athena::types::{
    QueryExecutionContext, QueryExecutionState, ResultConfiguration, WorkGroupState,
};
use serde_json::Value;

/// Most packages returned (upstream's `LIMIT 100`).
const MAX_PACKAGES: usize = 100;

/// Where and how queries run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AthenaOptions {
    /// `ATHENA_USER_DATABASE`: the Glue database of the Quilt stack.
    pub database: String,
    /// `BENCHLING_ATHENA_WORKGROUP` (alias `ATHENA_USER_WORKGROUP`), default `primary`.
    pub workgroup: String,
    /// `ATHENA_OUTPUT_LOCATION`: an `s3://` result location; none when the workgroup manages its
    /// results.
    pub output_location: Option<String>,
    /// First wait between two state checks; doubles up to `max_poll`.
    pub first_poll: Duration,
    /// Longest wait between two state checks.
    pub max_poll: Duration,
    /// Longest time for one query.
    pub timeout: Duration,
}

impl AthenaOptions {
    /// Options with the default polling (100 ms doubling to 1 s, 30 s timeout).
    pub fn new(database: impl Into<String>, workgroup: impl Into<String>) -> Self {
        Self {
            database: database.into(),
            workgroup: workgroup.into(),
            output_location: None,
            first_poll: Duration::from_millis(100),
            max_poll: Duration::from_secs(1),
            timeout: Duration::from_secs(30),
        }
    }
}

/// Checks an Athena workgroup name: 1–128 letters, digits, `-`, `_` and `.`.
pub fn valid_workgroup(name: &str) -> bool {
    (1..=128).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// Checks a Glue database name: 1–255 lowercase letters, digits and `_` (what Glue allows),
/// so it can sit between double quotes in SQL.
pub fn valid_database(name: &str) -> bool {
    (1..=255).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// A package whose metadata links it to the entry.
#[derive(Clone, Debug, PartialEq)]
pub struct LinkedPackage {
    /// The package name (`team/analysis`).
    pub name: String,
    /// The revision's time as the view gives it.
    pub timestamp: Option<String>,
    /// The revision's commit message.
    pub message: Option<String>,
    /// The package metadata (`{}` when it is not JSON).
    pub user_meta: Value,
}

/// Why a linked-package query failed. Messages name the workgroup and, for access problems, the
/// IAM action to grant.
#[derive(Debug, thiserror::Error)]
pub enum AthenaError {
    /// A value that would have to be spliced into the SQL is not safe.
    #[error("refusing to query: {0}")]
    Invalid(String),
    /// The role may not run queries in the workgroup.
    #[error(
        "Athena access denied in workgroup {workgroup:?}: grant athena:StartQueryExecution, athena:GetQueryExecution, athena:GetQueryResults and athena:GetWorkGroup on it (and glue:GetTable on database {database:?}); Athena said: {message}"
    )]
    AccessDenied {
        /// The workgroup.
        workgroup: String,
        /// The database.
        database: String,
        /// What Athena said.
        message: String,
    },
    /// The workgroup does not exist.
    #[error(
        "Athena workgroup {workgroup:?} does not exist: create it or set BENCHLING_ATHENA_WORKGROUP; Athena said: {message}"
    )]
    NoWorkgroup {
        /// The workgroup.
        workgroup: String,
        /// What Athena said.
        message: String,
    },
    /// The workgroup exists but is disabled: queries in it are refused.
    #[error(
        "Athena workgroup {workgroup:?} is disabled: enable it or set BENCHLING_ATHENA_WORKGROUP"
    )]
    Disabled {
        /// The workgroup.
        workgroup: String,
    },
    /// The query ran and failed or was cancelled.
    #[error("Athena query {id} {state}: {reason}")]
    Failed {
        /// The execution id.
        id: String,
        /// `FAILED` or `CANCELLED`.
        state: String,
        /// Athena's reason.
        reason: String,
    },
    /// The query did not finish in time.
    #[error("Athena query {id} did not finish within {timeout:?}")]
    TimedOut {
        /// The execution id.
        id: String,
        /// The timeout.
        timeout: Duration,
    },
    /// Any other service or network failure.
    #[error("Athena {operation} failed: {message}")]
    Service {
        /// The API operation.
        operation: &'static str,
        /// What went wrong.
        message: String,
    },
}

impl AthenaError {
    /// Whether trying again later may help (timeouts and service failures).
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::TimedOut { .. } | Self::Service { .. })
    }
}

/// Runs linked-package queries.
#[derive(Clone, Debug)]
pub struct PackageQuery {
    client: Client,
    options: AthenaOptions,
}

impl PackageQuery {
    /// A query runner; checks the workgroup and database names.
    ///
    /// # Errors
    /// [`AthenaError::Invalid`] for a bad workgroup or database name.
    pub fn new(client: Client, options: AthenaOptions) -> Result<Self, AthenaError> {
        if !valid_workgroup(&options.workgroup) {
            return Err(AthenaError::Invalid(format!(
                "workgroup {:?} is not 1-128 letters, digits, '-', '_' or '.'",
                options.workgroup
            )));
        }
        if !valid_database(&options.database) {
            return Err(AthenaError::Invalid(format!(
                "database {:?} is not 1-255 lowercase letters, digits or '_'",
                options.database
            )));
        }
        Ok(Self { client, options })
    }

    /// Checks, as the queries will need, that the workgroup exists, is enabled and may be used
    /// (`athena:GetWorkGroup`).
    ///
    /// # Errors
    /// [`AthenaError::NoWorkgroup`], [`AthenaError::Disabled`], [`AthenaError::AccessDenied`],
    /// or [`AthenaError::Service`] when Athena cannot be reached.
    pub async fn check_workgroup(&self) -> Result<(), AthenaError> {
        let found = self
            .client
            .get_work_group()
            .work_group(&self.options.workgroup)
            .send()
            .await
            .map_err(|e| self.classify("GetWorkGroup", e))?;
        // Athena answers a missing workgroup with an error; an emulator may answer with nothing.
        let Some(found) = found.work_group() else {
            return Err(AthenaError::NoWorkgroup {
                workgroup: self.options.workgroup.clone(),
                message: "GetWorkGroup returned no workgroup".to_owned(),
            });
        };
        if found.state() == Some(&WorkGroupState::Disabled) {
            return Err(AthenaError::Disabled {
                workgroup: self.options.workgroup.clone(),
            });
        }
        Ok(())
    }

    /// The SQL for `bucket`: the view name is spliced (after validation), the values are `?`.
    pub fn sql(&self, bucket: &str) -> Result<String, AthenaError> {
        if !bucket
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
            || bucket.is_empty()
        {
            return Err(AthenaError::Invalid(format!(
                "bucket {bucket:?} is not an S3 bucket name"
            )));
        }
        Ok(format!(
            "SELECT pkg_name, timestamp, message, user_meta \
             FROM \"{}\".\"{bucket}_packages-view\" \
             WHERE json_extract_scalar(user_meta, ?) = ? AND timestamp = 'latest' \
             LIMIT {MAX_PACKAGES}",
            self.options.database
        ))
    }

    /// Packages in `bucket` whose metadata key `metadata_key` equals `display_id`, sorted by
    /// name, the first row of each package kept.
    ///
    /// # Errors
    /// [`AthenaError`], naming the workgroup where it matters.
    pub async fn linked_packages(
        &self,
        bucket: &str,
        metadata_key: &str,
        display_id: &str,
    ) -> Result<Vec<LinkedPackage>, AthenaError> {
        if !bw_config::secret::valid_metadata_key(metadata_key) {
            return Err(AthenaError::Invalid(format!(
                "metadata key {metadata_key:?} is not an identifier"
            )));
        }
        let sql = self.sql(bucket)?;
        let mut start = self
            .client
            .start_query_execution()
            .query_string(sql)
            .work_group(&self.options.workgroup)
            .query_execution_context(
                QueryExecutionContext::builder()
                    .database(&self.options.database)
                    .build(),
            )
            // Parameters are SQL literals: strings are quoted here, quotes doubled.
            .execution_parameters(literal(&format!("$.{metadata_key}")))
            .execution_parameters(literal(display_id));
        if let Some(location) = &self.options.output_location {
            start = start.result_configuration(
                ResultConfiguration::builder()
                    .output_location(location)
                    .build(),
            );
        }
        let id = start
            .send()
            .await
            .map_err(|e| self.classify("StartQueryExecution", e))?
            .query_execution_id
            .ok_or_else(|| AthenaError::Service {
                operation: "StartQueryExecution",
                message: "no query execution id".to_owned(),
            })?;
        self.wait(&id).await?;
        let rows = self.rows(&id).await?;
        Ok(packages(rows))
    }

    /// Polls until the query succeeded, with doubling waits, up to the timeout.
    async fn wait(&self, id: &str) -> Result<(), AthenaError> {
        let deadline = tokio::time::Instant::now() + self.options.timeout;
        let mut pause = self.options.first_poll;
        loop {
            let execution = self
                .client
                .get_query_execution()
                .query_execution_id(id)
                .send()
                .await
                .map_err(|e| self.classify("GetQueryExecution", e))?
                .query_execution;
            let status = execution.as_ref().and_then(|e| e.status.as_ref());
            match status.and_then(|s| s.state.clone()) {
                Some(QueryExecutionState::Succeeded) => return Ok(()),
                Some(state @ (QueryExecutionState::Failed | QueryExecutionState::Cancelled)) => {
                    return Err(AthenaError::Failed {
                        id: id.to_owned(),
                        state: state.as_str().to_owned(),
                        reason: status
                            .and_then(|s| s.state_change_reason.clone())
                            .unwrap_or_else(|| "no reason given".to_owned()),
                    });
                }
                _ => {}
            }
            if tokio::time::Instant::now() + pause > deadline {
                return Err(AthenaError::TimedOut {
                    id: id.to_owned(),
                    timeout: self.options.timeout,
                });
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(self.options.max_poll);
        }
    }

    /// Every row of every result page, header included, as optional strings.
    async fn rows(&self, id: &str) -> Result<Vec<Vec<Option<String>>>, AthenaError> {
        let mut rows = Vec::new();
        let mut token = None;
        loop {
            let page = self
                .client
                .get_query_results()
                .query_execution_id(id)
                .set_next_token(token)
                .send()
                .await
                .map_err(|e| self.classify("GetQueryResults", e))?;
            if let Some(set) = page.result_set {
                rows.extend(set.rows.unwrap_or_default().into_iter().map(|row| {
                    row.data
                        .unwrap_or_default()
                        .into_iter()
                        .map(|cell| cell.var_char_value)
                        .collect()
                }));
            }
            token = page.next_token;
            if token.is_none() {
                return Ok(rows);
            }
        }
    }

    fn classify<E>(
        &self,
        operation: &'static str,
        error: aws_sdk_athena::error::SdkError<E>,
    ) -> AthenaError
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let code = error.code().unwrap_or_default().to_owned();
        let message = error
            .message()
            .map_or_else(|| DisplayErrorContext(&error).to_string(), str::to_owned);
        let lowered = message.to_ascii_lowercase();
        if code == "AccessDeniedException" || lowered.contains("not authorized") {
            AthenaError::AccessDenied {
                workgroup: self.options.workgroup.clone(),
                database: self.options.database.clone(),
                message,
            }
        } else if lowered.contains("workgroup") && lowered.contains("not found")
            || lowered.contains("workgroup") && lowered.contains("does not exist")
        {
            AthenaError::NoWorkgroup {
                workgroup: self.options.workgroup.clone(),
                message,
            }
        } else {
            AthenaError::Service { operation, message }
        }
    }
}

/// How often a failing workgroup check is repeated, until the workgroup is usable.
const WORKGROUP_RECHECK: Duration = Duration::from_secs(60);

/// Checks the workgroup at start-up ([`PackageQuery::check_workgroup`]) and, while it fails,
/// every minute: each failure is logged with the workgroup's name and shown in `warnings` (the
/// readiness probe's body); the worker stays ready, and canvases show the query error under
/// linked packages until the workgroup is fixed. Ends once the check passes.
pub async fn watch_workgroup(query: PackageQuery, warnings: bw_worker::Warnings) {
    let workgroup = query.options.workgroup.clone();
    let mut failing = false;
    loop {
        match query.check_workgroup().await {
            Ok(()) => {
                if failing {
                    tracing::info!(%workgroup, "Athena workgroup usable now");
                }
                warnings.clear("athena");
                return;
            }
            Err(e) => {
                tracing::error!(%workgroup, error = %e, "Athena workgroup check failed: canvases cannot list linked packages");
                warnings.set("athena", e.to_string());
                failing = true;
            }
        }
        tokio::time::sleep(WORKGROUP_RECHECK).await;
    }
}

/// A string as an Athena SQL literal.
fn literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

/// Rows (header first) to packages: grouped by name, first row kept, sorted by name.
fn packages(rows: Vec<Vec<Option<String>>>) -> Vec<LinkedPackage> {
    let mut rows = rows.into_iter();
    let Some(header) = rows.next() else {
        return Vec::new();
    };
    let column = |name: &str| header.iter().position(|h| h.as_deref() == Some(name));
    let (name, timestamp, message, meta) = (
        column("pkg_name"),
        column("timestamp"),
        column("message"),
        column("user_meta"),
    );
    let cell = |row: &[Option<String>], index: Option<usize>| {
        index.and_then(|i| row.get(i).cloned().flatten())
    };
    let mut found: std::collections::BTreeMap<String, LinkedPackage> = Default::default();
    for row in rows {
        let Some(package) = cell(&row, name).filter(|n| !n.is_empty()) else {
            continue;
        };
        found
            .entry(package.clone())
            .or_insert_with(|| LinkedPackage {
                name: package,
                timestamp: cell(&row, timestamp),
                message: cell(&row, message),
                user_meta: cell(&row, meta)
                    .and_then(|raw| serde_json::from_str(&raw).ok())
                    .unwrap_or_else(|| Value::Object(Default::default())),
            });
    }
    found.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        assert!(valid_workgroup("primary"));
        assert!(valid_workgroup("quilt-user.wg_1"));
        assert!(!valid_workgroup(""));
        assert!(!valid_workgroup("wg;drop"));
        assert!(!valid_workgroup(&"w".repeat(129)));
        assert!(valid_database("quilt_catalog_db"));
        assert!(!valid_database("db\"; --"));
    }

    #[test]
    fn literals_double_quotes() {
        assert_eq!(literal("EXP'1"), "'EXP''1'");
        assert_eq!(literal("$.experiment_id"), "'$.experiment_id'");
    }

    #[test]
    fn rows_group_by_package_and_sort() {
        let row = |cells: &[&str]| cells.iter().map(|c| Some((*c).to_owned())).collect();
        let packages = packages(vec![
            row(&["pkg_name", "timestamp", "message", "user_meta"]),
            row(&["team/b", "latest", "second", r#"{"experiment_id":"EXP1"}"#]),
            row(&["team/a", "latest", "first", "not json"]),
            row(&["team/b", "latest", "duplicate", "{}"]),
            vec![None, None, None, None],
        ]);
        let names: Vec<_> = packages.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["team/a", "team/b"]);
        assert_eq!(packages[0].user_meta, serde_json::json!({}));
        assert_eq!(packages[1].message.as_deref(), Some("second"));
        assert!(super::packages(Vec::new()).is_empty());
    }
}
