//! The four services and the queues between them, as the code really uses them: what each
//! consumes and sends, what it reads from the environment, its size, and so its IAM policy.

use crate::aws::iam::{PolicyDocument, Statement};
use crate::params;
use crate::template::Expr;

/// Seconds the services take to stop after SIGTERM (`SHUTDOWN_TIMEOUT_SECS`).
pub const SHUTDOWN_TIMEOUT_SECS: u32 = 25;

/// Seconds ECS waits after SIGTERM before SIGKILL: above the services' own grace.
pub const STOP_TIMEOUT_SECS: u32 = SHUTDOWN_TIMEOUT_SECS + 5;

/// The port every service listens on (the ingress's HTTP, the workers' probes).
pub const PORT: u16 = 8080;

/// The largest export ZIP the exporter accepts (`DOWNLOAD_MAX_BYTES`), in GiB.
pub const EXPORT_DOWNLOAD_MAX_GIB: u32 = 5;

/// The most uncompressed bytes of one export (`ARCHIVE_MAX_TOTAL_BYTES`), in GiB.
pub const EXPORT_ARCHIVE_MAX_GIB: u32 = 4;

/// Export jobs one exporter task runs at once (`WORKER_CONCURRENCY`).
pub const EXPORT_CONCURRENCY: u32 = 2;

/// Where the services write scratch files: the one writable path of a read-only root.
pub const SCRATCH_DIR: &str = "/tmp";

/// GiB of task storage the exporter needs: each running job spools its ZIP and, at most, its
/// unpacked members, plus room for the image. Fargate's own floor for a set size is 21.
pub fn exporter_storage_gib() -> u32 {
    let per_job = EXPORT_DOWNLOAD_MAX_GIB + EXPORT_ARCHIVE_MAX_GIB;
    (per_job * EXPORT_CONCURRENCY + 2).max(21)
}

/// A queue of one environment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QueueKind {
    /// Export jobs: ingress and canvas → exporter.
    Export,
    /// Render jobs: exporter → packager.
    Render,
    /// Canvas jobs: every service → canvas worker.
    Canvas,
    /// Quilt's `package-revision` events: EventBridge → canvas worker.
    PackageEvents,
}

impl QueueKind {
    /// Every queue.
    pub const ALL: [Self; 4] = [
        Self::Export,
        Self::Render,
        Self::Canvas,
        Self::PackageEvents,
    ];

    /// The logical-id part (`Export` → `ProdExportQueue`).
    pub fn title(self) -> &'static str {
        match self {
            Self::Export => "Export",
            Self::Render => "Render",
            Self::Canvas => "Canvas",
            Self::PackageEvents => "PackageEvent",
        }
    }

    /// The stack output holding the queue's URL in environment `env` (`ProdExportQueueUrl`).
    pub fn output_name(self, env: &crate::EnvironmentName) -> String {
        format!("{}{}QueueUrl", env.title(), self.title())
    }

    /// The variable the services read its URL from.
    pub fn env_var(self) -> &'static str {
        match self {
            Self::Export => "EXPORT_QUEUE_URL",
            Self::Render => "RENDER_QUEUE_URL",
            Self::Canvas => "CANVAS_QUEUE_URL",
            Self::PackageEvents => "PACKAGE_EVENT_QUEUE_URL",
        }
    }

    /// FIFO (the jobs, grouped by entry) or standard (EventBridge cannot feed FIFO dedup).
    pub fn fifo(self) -> bool {
        !matches!(self, Self::PackageEvents)
    }

    /// The queue's visibility timeout. Workers read it at start-up and extend a running job's
    /// visibility every half of it, so a killed worker's job returns within about this long.
    pub fn visibility_timeout_secs(self) -> u32 {
        match self {
            Self::Export => 120,
            Self::Render | Self::Canvas | Self::PackageEvents => 60,
        }
    }

    /// Receives before a message is dead-lettered. Permanent failures go there at once; this
    /// bounds transient ones (and crashes) to about half an hour of retries with backoff.
    pub fn max_receive_count(self) -> u32 {
        5
    }

    /// The logical id of the queue in `env`.
    pub fn id(self, env: &str) -> String {
        format!("{env}{}Queue", self.title())
    }

    /// The logical id of its dead-letter queue in `env`.
    pub fn dead_letter_id(self, env: &str) -> String {
        format!("{env}{}DeadLetterQueue", self.title())
    }
}

/// How a service uses the package bucket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BucketAccess {
    /// Not at all.
    None,
    /// Reads, writes and deletes package files and records.
    ReadWrite,
    /// Reads packages; writes only its records under `.benchling-webhook/`.
    ReadAndRecords,
}

/// The bookkeeping prefix (bw-store's records): outside every package.
pub const RECORDS_PREFIX: &str = ".benchling-webhook/";

/// One of the four services.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServiceKind {
    /// The webhook receiver.
    Ingress,
    /// The export worker.
    Exporter,
    /// The packager worker.
    Packager,
    /// The canvas worker.
    Canvas,
}

impl ServiceKind {
    /// Every service.
    pub const ALL: [Self; 4] = [Self::Ingress, Self::Exporter, Self::Packager, Self::Canvas];

    /// Its binary, container name and log stream prefix.
    pub fn name(self) -> &'static str {
        match self {
            Self::Ingress => "ingress",
            Self::Exporter => "exporter",
            Self::Packager => "packager",
            Self::Canvas => "canvas",
        }
    }

    /// The logical-id part (`ProdCanvasService`).
    pub fn title(self) -> &'static str {
        match self {
            Self::Ingress => "Ingress",
            Self::Exporter => "Exporter",
            Self::Packager => "Packager",
            Self::Canvas => "Canvas",
        }
    }

    /// The binary's path in the image.
    pub fn binary(self) -> String {
        format!("/usr/local/bin/{}", self.name())
    }

    /// Fargate CPU units and MiB.
    pub fn size(self) -> (u32, u32) {
        match self {
            // Signature checks bound the ingress; it scales out on CPU instead of up.
            Self::Ingress => (512, 1024),
            // Streams archives: CPU for inflating, memory for upload buffers.
            Self::Exporter => (1024, 2048),
            Self::Packager | Self::Canvas => (512, 1024),
        }
    }

    /// The queues it consumes.
    pub fn consumes(self) -> &'static [QueueKind] {
        match self {
            Self::Ingress => &[],
            Self::Exporter => &[QueueKind::Export],
            Self::Packager => &[QueueKind::Render],
            Self::Canvas => &[QueueKind::Canvas, QueueKind::PackageEvents],
        }
    }

    /// The queues of its environment it sends to (Quilt's packager queue is apart).
    pub fn sends(self) -> &'static [QueueKind] {
        match self {
            Self::Ingress => &[QueueKind::Export, QueueKind::Canvas],
            Self::Exporter => &[QueueKind::Render, QueueKind::Canvas],
            Self::Packager => &[QueueKind::Canvas],
            // "Update Package" queues an export; package events queue canvas refreshes.
            Self::Canvas => &[QueueKind::Export, QueueKind::Canvas],
        }
    }

    /// Whether it sends to Quilt's packager queue.
    pub fn sends_to_packager(self) -> bool {
        self == Self::Packager
    }

    /// How it uses the package bucket.
    pub fn bucket_access(self) -> BucketAccess {
        match self {
            Self::Ingress => BucketAccess::None,
            Self::Exporter | Self::Packager => BucketAccess::ReadWrite,
            Self::Canvas => BucketAccess::ReadAndRecords,
        }
    }

    /// Whether it queries Athena (linked packages).
    pub fn queries_athena(self) -> bool {
        self == Self::Canvas
    }

    /// The queue URLs it reads, each once, in a stable order.
    pub fn queue_vars(self) -> Vec<QueueKind> {
        QueueKind::ALL
            .into_iter()
            .filter(|q| self.consumes().contains(q) || self.sends().contains(q))
            .collect()
    }

    /// Its own settings (beyond the secret, logging, port and queue URLs), each a variable it
    /// reads: the Quilt and Athena names only where used, and the exporter's limits that its
    /// task storage is sized for.
    pub fn settings(self) -> Vec<(&'static str, Expr)> {
        match self {
            Self::Ingress => vec![],
            Self::Exporter => vec![
                ("WORKER_CONCURRENCY", EXPORT_CONCURRENCY.to_string().into()),
                ("DOWNLOAD_MAX_BYTES", gib(EXPORT_DOWNLOAD_MAX_GIB).into()),
                (
                    "ARCHIVE_MAX_TOTAL_BYTES",
                    gib(EXPORT_ARCHIVE_MAX_GIB).into(),
                ),
                ("EXPORT_TEMP_DIR", SCRATCH_DIR.into()),
            ],
            Self::Packager => vec![("PACKAGER_SQS_URL", Expr::r#ref(params::PACKAGER_QUEUE_URL))],
            Self::Canvas => vec![
                ("QUILT_WEB_HOST", Expr::r#ref(params::QUILT_WEB_HOST)),
                (
                    "ATHENA_USER_DATABASE",
                    Expr::r#ref(params::ATHENA_USER_DATABASE),
                ),
                (
                    "BENCHLING_ATHENA_WORKGROUP",
                    Expr::r#ref(params::ATHENA_WORKGROUP),
                ),
                // Blank means unset to the service: the workgroup's own results location.
                (
                    "ATHENA_OUTPUT_LOCATION",
                    Expr::r#ref(params::ATHENA_RESULTS_LOCATION),
                ),
            ],
        }
    }

    /// Messages per task the worker's scaling holds its backlog at: one task's concurrency.
    pub fn backlog_per_task(self) -> f64 {
        match self {
            Self::Ingress => 0.0,
            Self::Exporter => f64::from(EXPORT_CONCURRENCY),
            // The packager's and canvas worker's default WORKER_CONCURRENCY.
            Self::Packager => 4.0,
            Self::Canvas => 8.0,
        }
    }
}

fn gib(n: u32) -> String {
    (u64::from(n) << 30).to_string()
}

/// The ARN of a queue of this environment.
fn queue_arn(env: &str, queue: QueueKind) -> Expr {
    Expr::att(queue.id(env), "Arn")
}

/// The ARN of a queue's dead-letter queue.
fn dead_letter_arn(env: &str, queue: QueueKind) -> Expr {
    Expr::att(queue.dead_letter_id(env), "Arn")
}

/// The package bucket's ARN, and the ARN of the objects under `prefix`.
fn bucket_arns(prefix: &str) -> (Expr, Expr) {
    (
        Expr::sub(format!(
            "arn:${{AWS::Partition}}:s3:::${{{}}}",
            params::PACKAGE_BUCKET
        )),
        Expr::sub(format!(
            "arn:${{AWS::Partition}}:s3:::${{{}}}/{prefix}*",
            params::PACKAGE_BUCKET
        )),
    )
}

/// The ARN of Quilt's packager queue, from its URL (`https://sqs.{region}.amazonaws.com/{account}/{name}`).
pub fn packager_queue_arn() -> Expr {
    let url = || Expr::r#ref(params::PACKAGER_QUEUE_URL);
    Expr::sub_with(
        "arn:${AWS::Partition}:sqs:${Region}:${Account}:${Name}",
        vec![
            (
                "Region",
                Expr::split_select(".", 1, Expr::split_select("/", 2, url())),
            ),
            ("Account", Expr::split_select("/", 3, url())),
            ("Name", Expr::split_select("/", 4, url())),
        ],
    )
}

/// The task role policy of `service` in environment `env` (logical-id prefix): exactly the
/// calls its code makes, on exactly its resources.
pub fn task_policy(service: ServiceKind, env: &str) -> PolicyDocument {
    let mut statements = vec![Statement::allow(
        "ReadBenchlingSecret",
        &["secretsmanager:GetSecretValue"],
        vec![Expr::r#ref(params::secret_arn(env))],
    )];
    for &queue in service.consumes() {
        let title = queue.title();
        // Receive, heartbeat, delete; GetQueueAttributes reads the visibility timeout and the
        // redrive policy at start-up and answers readiness.
        statements.push(Statement::allow(
            &format!("Consume{title}Queue"),
            &[
                "sqs:ReceiveMessage",
                "sqs:ChangeMessageVisibility",
                "sqs:DeleteMessage",
                "sqs:GetQueueAttributes",
            ],
            vec![queue_arn(env, queue)],
        ));
        // The runtime dead-letters permanent failures itself, finding the queue by name.
        statements.push(Statement::allow(
            &format!("DeadLetter{title}Queue"),
            &["sqs:GetQueueUrl", "sqs:SendMessage"],
            vec![dead_letter_arn(env, queue)],
        ));
    }
    let sends: Vec<Expr> = service
        .sends()
        .iter()
        .map(|&queue| queue_arn(env, queue))
        .collect();
    if !sends.is_empty() {
        statements.push(Statement::allow(
            "SendJobs",
            &["sqs:SendMessage"],
            sends.clone(),
        ));
    }
    if service == ServiceKind::Ingress {
        // Readiness checks the queues it sends to.
        statements.push(Statement::allow(
            "CheckQueues",
            &["sqs:GetQueueAttributes"],
            sends,
        ));
    }
    if service.sends_to_packager() {
        statements.push(Statement::allow(
            "SendToQuiltPackager",
            &["sqs:SendMessage"],
            vec![packager_queue_arn()],
        ));
    }
    statements.extend(bucket_statements(service.bucket_access()));
    if service.queries_athena() {
        statements.extend(athena_statements());
    }
    let document = PolicyDocument::new(statements);
    if service.queries_athena() {
        document.with_conditional(
            params::HAS_ATHENA_RESULTS_LOCATION,
            athena_results_statement(),
        )
    } else {
        document
    }
}

fn bucket_statements(access: BucketAccess) -> Vec<Statement> {
    let (bucket, objects) = bucket_arns("");
    // Listing lets a missing key answer 404 rather than 403 ("not created" views, pruning).
    let list = Statement::allow("ListPackageBucket", &["s3:ListBucket"], vec![bucket]);
    match access {
        BucketAccess::None => vec![],
        BucketAccess::ReadWrite => vec![
            list,
            Statement::allow(
                "ReadWritePackageObjects",
                &[
                    "s3:GetObject",
                    "s3:PutObject",
                    "s3:DeleteObject",
                    "s3:AbortMultipartUpload",
                ],
                vec![objects],
            ),
        ],
        BucketAccess::ReadAndRecords => vec![
            list,
            Statement::allow("ReadPackageObjects", &["s3:GetObject"], vec![objects]),
            Statement::allow(
                "WriteCanvasRecords",
                &["s3:PutObject"],
                vec![bucket_arns(RECORDS_PREFIX).1],
            ),
        ],
    }
}

fn athena_statements() -> Vec<Statement> {
    let database = params::ATHENA_USER_DATABASE;
    vec![
        Statement::allow(
            "QueryAthena",
            &[
                "athena:StartQueryExecution",
                "athena:GetQueryExecution",
                "athena:GetQueryResults",
                // The canvas worker checks the workgroup at start-up.
                "athena:GetWorkGroup",
            ],
            vec![Expr::sub(format!(
                "arn:${{AWS::Partition}}:athena:${{AWS::Region}}:${{AWS::AccountId}}:workgroup/${{{}}}",
                params::ATHENA_WORKGROUP
            ))],
        ),
        // Athena reads the view's definition and its tables from the Glue catalog as the caller.
        Statement::allow(
            "ReadGlueCatalog",
            &["glue:GetDatabase", "glue:GetTable", "glue:GetPartitions"],
            vec![
                Expr::sub("arn:${AWS::Partition}:glue:${AWS::Region}:${AWS::AccountId}:catalog"),
                Expr::sub(format!(
                    "arn:${{AWS::Partition}}:glue:${{AWS::Region}}:${{AWS::AccountId}}:database/${{{database}}}"
                )),
                Expr::sub(format!(
                    "arn:${{AWS::Partition}}:glue:${{AWS::Region}}:${{AWS::AccountId}}:table/${{{database}}}/*"
                )),
            ],
        ),
    ]
}

/// Query results written to `AthenaResultsLocation` (`s3://bucket/prefix/`), when one is set.
fn athena_results_statement() -> Statement {
    // `bucket/prefix/` from `s3://bucket/prefix/`. The `s3://` appended first keeps Fn::Select
    // in range when the parameter is blank and this statement is not used.
    let path = Expr::split_select(
        "s3://",
        1,
        Expr::join(
            "",
            vec![Expr::r#ref(params::ATHENA_RESULTS_LOCATION), "s3://".into()],
        ),
    );
    let bucket = Expr::split_select("/", 0, path.clone());
    Statement::allow(
        "WriteAthenaResults",
        &[
            "s3:GetBucketLocation",
            "s3:ListBucket",
            "s3:GetObject",
            "s3:PutObject",
            "s3:AbortMultipartUpload",
        ],
        vec![
            Expr::sub_with(
                "arn:${AWS::Partition}:s3:::${Bucket}",
                vec![("Bucket", bucket)],
            ),
            Expr::sub_with("arn:${AWS::Partition}:s3:::${Path}*", vec![("Path", path)]),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_queue_but_the_first_hop_is_consumed_by_exactly_one_service() {
        for queue in QueueKind::ALL {
            let consumers = ServiceKind::ALL
                .iter()
                .filter(|s| s.consumes().contains(&queue))
                .count();
            assert_eq!(consumers, 1, "{queue:?}");
        }
    }

    #[test]
    fn exporter_storage_covers_its_jobs() {
        let gib = exporter_storage_gib();
        assert!(gib >= EXPORT_DOWNLOAD_MAX_GIB * EXPORT_CONCURRENCY);
        assert!((21..=200).contains(&gib));
    }
}
