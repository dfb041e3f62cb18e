//! The template's parameters and conditions: every value that differs between deploys of the
//! same template. Values fixed when the template is emitted (environments, VPC, allowlist) are
//! never parameters, so nothing is set in two places.

use serde_json::json;

use crate::options::StackOptions;
use crate::template::{Condition, Expr, Parameter, Template};

/// The Quilt registry bucket: the Benchling secret's `user_bucket`.
pub const PACKAGE_BUCKET: &str = "PackageBucket";
/// Quilt's packager queue (`PackagerQueueUrl` output of the Quilt stack).
pub const PACKAGER_QUEUE_URL: &str = "PackagerQueueUrl";
/// The catalog host (`QuiltWebHost` output).
pub const QUILT_WEB_HOST: &str = "QuiltWebHost";
/// The Quilt stack's Glue database (`UserAthenaDatabaseName` output).
pub const ATHENA_USER_DATABASE: &str = "AthenaUserDatabase";
/// The Athena workgroup of the linked-package queries.
pub const ATHENA_WORKGROUP: &str = "AthenaWorkgroup";
/// Where Athena writes results, for a workgroup without managed results.
pub const ATHENA_RESULTS_LOCATION: &str = "AthenaResultsLocation";
/// The services' log level.
pub const LOG_LEVEL: &str = "LogLevel";
/// The ECR repository holding the image.
pub const IMAGE_REPOSITORY: &str = "ImageRepository";
/// Whether this stack sets the account's API Gateway logging role.
pub const CREATE_API_GATEWAY_ACCOUNT_ROLE: &str = "CreateApiGatewayAccountRole";
/// An SNS topic the alarms notify.
pub const ALARM_TOPIC_ARN: &str = "AlarmTopicArn";
/// Days logs are kept.
pub const LOG_RETENTION_DAYS: &str = "LogRetentionDays";

/// Condition: this stack manages the account's API Gateway logging role.
pub const CREATES_ACCOUNT_ROLE: &str = "CreatesApiGatewayAccountRole";
/// Condition: an Athena results location is given.
pub const HAS_ATHENA_RESULTS_LOCATION: &str = "HasAthenaResultsLocation";
/// Condition: an alarm topic is given.
pub const HAS_ALARM_TOPIC: &str = "HasAlarmTopic";

/// `<Env>BenchlingSecretARN`.
pub fn secret_arn(env: &str) -> String {
    format!("{env}BenchlingSecretARN")
}

/// `<Env>ImageTag`.
pub fn image_tag(env: &str) -> String {
    format!("{env}ImageTag")
}

/// `<Env>IngressMinTasks`.
pub fn ingress_min_tasks(env: &str) -> String {
    format!("{env}IngressMinTasks")
}

/// `<Env>WorkerMinTasks`.
pub fn worker_min_tasks(env: &str) -> String {
    format!("{env}WorkerMinTasks")
}

/// `<Env>MaxTasks`.
pub fn max_tasks(env: &str) -> String {
    format!("{env}MaxTasks")
}

const BUCKET_PATTERN: &str = "^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$";

/// Adds every parameter, condition and the console's parameter groups.
pub fn add(template: &mut Template, options: &StackOptions) {
    template.parameter(
        PACKAGE_BUCKET,
        Parameter::string(
            "The Quilt registry bucket packages are written to: the same as the Benchling secret's user_bucket",
        )
        .pattern(BUCKET_PATTERN, "an S3 bucket name"),
    );
    template.parameter(
        PACKAGER_QUEUE_URL,
        Parameter::string("Quilt's packager queue: the Quilt stack's PackagerQueueUrl output")
            .pattern(
                r"^https://sqs\.[a-z0-9-]+\.amazonaws\.com/[0-9]{12}/[A-Za-z0-9_-]{1,75}(\.fifo)?$",
                "an SQS queue URL, https://sqs.{region}.amazonaws.com/{account}/{name}",
            ),
    );
    template.parameter(
        QUILT_WEB_HOST,
        Parameter::string("The Quilt catalog's host name: the Quilt stack's QuiltWebHost output")
            .pattern(
                r"^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?(:[0-9]{1,5})?$",
                "a bare host name such as catalog.example.com (no scheme, no path)",
            ),
    );
    template.parameter(
        ATHENA_USER_DATABASE,
        Parameter::string(
            "The Quilt stack's Glue database of package tables: its UserAthenaDatabaseName output",
        )
        .pattern(
            "^[a-z0-9_]{1,255}$",
            "lowercase letters, digits and underscores",
        ),
    );
    template.parameter(
        ATHENA_WORKGROUP,
        Parameter::string("The Athena workgroup of the linked-package queries")
            .default("primary")
            .pattern(
                "^[A-Za-z0-9._-]{1,128}$",
                "1-128 letters, digits, '.', '_' or '-'",
            ),
    );
    template.parameter(
        ATHENA_RESULTS_LOCATION,
        Parameter::string(
            "s3://bucket/prefix/ for Athena query results; blank when the workgroup manages its results",
        )
        .default("")
        .pattern(
            "^(s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/.*)?$",
            "blank, or s3://bucket/prefix/",
        ),
    );
    template.parameter(
        LOG_LEVEL,
        Parameter::string("The services' log level")
            .default("INFO")
            .allowed(&["DEBUG", "INFO", "WARNING", "ERROR"]),
    );
    template.parameter(
        IMAGE_REPOSITORY,
        Parameter::string(
            "The ECR repository URI of the image: {account}.dkr.ecr.{region}.amazonaws.com/{name}",
        )
        .pattern(
            r"^[0-9]{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com/[a-z0-9]+([._/-][a-z0-9]+)*$",
            "an ECR repository URI without a tag",
        ),
    );
    template.parameter(
        CREATE_API_GATEWAY_ACCOUNT_ROLE,
        Parameter::string(
            "true to set the account-wide role API Gateway writes access logs with. Set it in one stack per account and region; the role is kept when the stack is deleted",
        )
        .default("false")
        .allowed(&["true", "false"]),
    );
    template.parameter(
        ALARM_TOPIC_ARN,
        Parameter::string("An SNS topic the dead-letter alarms notify; blank for none")
            .default("")
            .pattern(
                "^(arn:aws[a-z-]*:sns:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_-]{1,256})?$",
                "blank, or an SNS topic ARN",
            ),
    );
    template.parameter(
        LOG_RETENTION_DAYS,
        Parameter {
            allowed_values: [
                1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731,
            ]
            .iter()
            .map(i64::to_string)
            .collect(),
            min_value: None,
            ..Parameter::number("Days the services' and the API's logs are kept", 30, 1)
        },
    );

    let mut groups = vec![
        group(
            "Quilt",
            &[PACKAGE_BUCKET, PACKAGER_QUEUE_URL, QUILT_WEB_HOST],
        ),
        group(
            "Athena",
            &[
                ATHENA_USER_DATABASE,
                ATHENA_WORKGROUP,
                ATHENA_RESULTS_LOCATION,
            ],
        ),
        group(
            "Operations",
            &[
                IMAGE_REPOSITORY,
                LOG_LEVEL,
                LOG_RETENTION_DAYS,
                ALARM_TOPIC_ARN,
                CREATE_API_GATEWAY_ACCOUNT_ROLE,
            ],
        ),
    ];
    for env in options.environments() {
        let title = env.title();
        template.parameter(
            &secret_arn(&title),
            Parameter::string(format!(
                "The full ARN of the {} environment's Benchling secret (the services and IAM use this one ARN)",
                env.as_str()
            ))
            .pattern(
                "^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:[A-Za-z0-9/_+=.@-]+-[A-Za-z0-9]{6}$",
                "a Secrets Manager secret ARN, with its six-character suffix",
            ),
        );
        template.parameter(
            &image_tag(&title),
            Parameter::string(format!(
                "The image tag the {} environment runs (pin a version; a moving tag is not redeployed when it moves)",
                env.as_str()
            ))
            .pattern("^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$", "a Docker image tag"),
        );
        template.parameter(
            &ingress_min_tasks(&title),
            Parameter::number(
                format!(
                    "Fewest ingress tasks in {} (2 keeps one per zone)",
                    env.as_str()
                ),
                2,
                1,
            ),
        );
        template.parameter(
            &worker_min_tasks(&title),
            Parameter {
                allowed_values: vec!["0".to_owned(), "1".to_owned()],
                min_value: None,
                ..Parameter::number(
                    format!(
                        "Fewest tasks of each worker in {}: 0 lets an idle worker stop (the first job then waits a minute or two for a task)",
                        env.as_str()
                    ),
                    1,
                    0,
                )
            },
        );
        template.parameter(
            &max_tasks(&title),
            Parameter::number(
                format!("Most tasks of each service in {}", env.as_str()),
                10,
                1,
            ),
        );
        groups.push(group(
            &format!("Environment {}", env.as_str()),
            &[
                &secret_arn(&title),
                &image_tag(&title),
                &ingress_min_tasks(&title),
                &worker_min_tasks(&title),
                &max_tasks(&title),
            ],
        ));
    }
    template.metadata = Some(json!({
        "AWS::CloudFormation::Interface": { "ParameterGroups": groups },
        (crate::options::METADATA_KEY): options.to_metadata()
    }));

    template.condition(
        CREATES_ACCOUNT_ROLE,
        Condition::Equals(Expr::r#ref(CREATE_API_GATEWAY_ACCOUNT_ROLE), "true".into()),
    );
    template.condition(
        HAS_ATHENA_RESULTS_LOCATION,
        not_blank(ATHENA_RESULTS_LOCATION),
    );
    template.condition(HAS_ALARM_TOPIC, not_blank(ALARM_TOPIC_ARN));
}

fn not_blank(parameter: &str) -> Condition {
    Condition::Not(Box::new(Condition::Equals(
        Expr::r#ref(parameter),
        "".into(),
    )))
}

fn group(label: &str, parameters: &[&str]) -> serde_json::Value {
    json!({ "Label": { "default": label }, "Parameters": parameters })
}
