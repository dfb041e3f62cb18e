//! One environment: its queues with dead-letter queues and alarms, the package-event rule, its
//! log group, roles, the four services and their scaling.

use serde_json::json;

use crate::aws::compute::{
    AwsVpcConfiguration, CircuitBreaker, ContainerDefinition, CustomizedMetric,
    DeploymentConfiguration, Dimension, EnvironmentVariable, EphemeralStorage, HealthCheck,
    LogConfiguration, LogOptions, Metric, MetricQuery, MountPoint, NetworkConfiguration,
    PortMapping, PredefinedMetric, RuntimePlatform, ScalableTarget, ScalingPolicy, Service,
    ServiceLoadBalancer, StepAdjustment, StepScaling, TargetTracking, TaskDefinition, Volume,
};
use crate::aws::iam::{InlinePolicy, PolicyDocument, Principal, Role, Statement};
use crate::aws::messaging::{Queue, QueuePolicy, RedrivePolicy, Rule, RuleTarget};
use crate::aws::monitoring::{Alarm, LogGroup};
use crate::cluster::{self, CLUSTER, INGRESS_TASKS_GROUP, WORKER_TASKS_GROUP};
use crate::network::Placement;
use crate::options::EnvironmentName;
use crate::params;
use crate::service::{
    self, QueueKind, SCRATCH_DIR, SHUTDOWN_TIMEOUT_SECS, STOP_TIMEOUT_SECS, ServiceKind,
};
use crate::template::{Expr, Resource, Template};

/// Seconds a message is kept in a queue (4 days), and in a dead-letter queue (14 days).
const RETENTION_SECS: u32 = 4 * 24 * 3600;
const DEAD_LETTER_RETENTION_SECS: u32 = 14 * 24 * 3600;

/// The scratch volume mounted at `/tmp`.
const SCRATCH_VOLUME: &str = "scratch";

/// Adds everything of `env`; `target_group` is where its ingress registers.
pub fn add(
    template: &mut Template,
    env: &EnvironmentName,
    placement: &Placement,
    target_group: Expr,
) {
    let title = env.title();
    for queue in QueueKind::ALL {
        add_queue(template, &title, queue);
    }
    add_package_event_rule(template, &title);

    let log_group = format!("{title}LogGroup");
    template.resource(
        &log_group,
        Resource::new(&LogGroup {
            retention_in_days: Expr::r#ref(params::LOG_RETENTION_DAYS),
        })
        .delete(),
    );
    let execution_role = add_execution_role(template, &title, &log_group);
    for service in ServiceKind::ALL {
        add_service(
            template,
            env,
            service,
            placement,
            &execution_role,
            &log_group,
            (service == ServiceKind::Ingress).then(|| target_group.clone()),
        );
    }

    for queue in QueueKind::ALL {
        template.output(
            &queue.output_name(env),
            &format!("The {} environment's {} queue", env.as_str(), queue.title()),
            Expr::r#ref(queue.id(&title)),
        );
    }
    template.output(
        &format!("{title}LogGroupName"),
        &format!("The {} environment's service logs", env.as_str()),
        Expr::r#ref(&log_group),
    );
}

fn add_queue(template: &mut Template, title: &str, queue: QueueKind) {
    let fifo = queue.fifo();
    let dead_letter = queue.dead_letter_id(title);
    template.resource(
        &dead_letter,
        Resource::new(&Queue {
            fifo_queue: fifo.then_some(true),
            content_based_deduplication: fifo.then_some(false),
            deduplication_scope: None,
            fifo_throughput_limit: None,
            visibility_timeout: queue.visibility_timeout_secs(),
            message_retention_period: DEAD_LETTER_RETENTION_SECS,
            sqs_managed_sse_enabled: true,
            redrive_policy: None,
        })
        .delete(),
    );
    template.resource(
        &queue.id(title),
        Resource::new(&Queue {
            fifo_queue: fifo.then_some(true),
            // The services set deduplication ids: content alone would merge distinct jobs.
            content_based_deduplication: fifo.then_some(false),
            // Ordering is per entry (the group), so throughput can be too.
            deduplication_scope: fifo.then_some("messageGroup"),
            fifo_throughput_limit: fifo.then_some("perMessageGroupId"),
            visibility_timeout: queue.visibility_timeout_secs(),
            message_retention_period: RETENTION_SECS,
            sqs_managed_sse_enabled: true,
            redrive_policy: Some(RedrivePolicy {
                dead_letter_target_arn: Expr::att(&dead_letter, "Arn"),
                max_receive_count: queue.max_receive_count(),
            }),
        })
        .delete(),
    );
    template.resource(
        &format!("{title}{}DeadLetterAlarm", queue.title()),
        Resource::new(&Alarm {
            alarm_description: format!(
                "Jobs failed for good in the {title} {} queue: read the reason attribute of the dead-lettered messages",
                queue.title()
            ),
            metric_name: Some("ApproximateNumberOfMessagesVisible"),
            namespace: Some("AWS/SQS"),
            dimensions: vec![Dimension {
                name: "QueueName",
                value: Expr::att(&dead_letter, "QueueName"),
            }],
            statistic: Some("Maximum"),
            period: Some(300),
            metrics: Vec::new(),
            evaluation_periods: 1,
            threshold: 1.0,
            comparison_operator: "GreaterThanOrEqualToThreshold",
            treat_missing_data: "notBreaching",
            alarm_actions: vec![alarm_topic()],
        }),
    );
}

fn alarm_topic() -> Expr {
    Expr::when(
        params::HAS_ALARM_TOPIC,
        Expr::r#ref(params::ALARM_TOPIC_ARN),
        Expr::no_value(),
    )
}

fn add_package_event_rule(template: &mut Template, title: &str) {
    let queue_id = QueueKind::PackageEvents.id(title);
    let rule = format!("{title}PackageEventRule");
    template.resource(
        &rule,
        Resource::new(&Rule {
            description: "Quilt package revisions in the package bucket".to_owned(),
            // Filtered to our bucket, so other stacks' and buckets' events never arrive.
            event_pattern: json!({
                "source": ["com.quiltdata"],
                "detail-type": ["package-revision"],
                "detail": { "bucket": [Expr::r#ref(params::PACKAGE_BUCKET)] },
            }),
            state: "ENABLED",
            targets: vec![RuleTarget {
                id: "PackageEventQueue",
                arn: Expr::att(&queue_id, "Arn"),
            }],
        }),
    );
    template.resource(
        &format!("{title}PackageEventQueuePolicy"),
        Resource::new(&QueuePolicy {
            queues: vec![Expr::r#ref(&queue_id)],
            policy_document: PolicyDocument::new(vec![
                Statement::allow(
                    "PackageRevisionEvents",
                    &["sqs:SendMessage"],
                    vec![Expr::att(&queue_id, "Arn")],
                )
                .principal(Principal::Service(vec!["events.amazonaws.com".to_owned()]))
                .condition("ArnEquals", "aws:SourceArn", Expr::att(&rule, "Arn")),
            ]),
        }),
    );
}

fn add_execution_role(template: &mut Template, title: &str, log_group: &str) -> String {
    let id = format!("{title}ExecutionRole");
    let repository = Expr::r#ref(params::IMAGE_REPOSITORY);
    // `{account}.dkr.ecr.{region}.amazonaws.com/{name}` → the repository's ARN.
    let host = Expr::split_select(".amazonaws.com/", 0, repository.clone());
    let repository_arn = Expr::sub_with(
        "arn:${AWS::Partition}:ecr:${Region}:${Account}:repository/${Name}",
        vec![
            ("Region", Expr::split_select(".", 3, host.clone())),
            ("Account", Expr::split_select(".", 0, host)),
            ("Name", Expr::split_select(".amazonaws.com/", 1, repository)),
        ],
    );
    template.resource(
        &id,
        Resource::new(&Role {
            description: format!("ECS pulls the {title} image and writes its logs with this role"),
            assume_role_policy_document: PolicyDocument::trust("ecs-tasks.amazonaws.com"),
            managed_policy_arns: Vec::new(),
            policies: vec![InlinePolicy {
                policy_name: "pull-image-and-log".to_owned(),
                policy_document: PolicyDocument::new(vec![
                    // GetAuthorizationToken has no resource-level permissions.
                    Statement::allow("EcrLogin", &["ecr:GetAuthorizationToken"], vec!["*".into()]),
                    Statement::allow(
                        "PullImage",
                        &[
                            "ecr:BatchCheckLayerAvailability",
                            "ecr:BatchGetImage",
                            "ecr:GetDownloadUrlForLayer",
                        ],
                        vec![repository_arn],
                    ),
                    Statement::allow(
                        "WriteLogs",
                        &["logs:CreateLogStream", "logs:PutLogEvents"],
                        vec![Expr::att(log_group, "Arn")],
                    ),
                ]),
            }],
        }),
    );
    id
}

fn add_service(
    template: &mut Template,
    env: &EnvironmentName,
    service: ServiceKind,
    placement: &Placement,
    execution_role: &str,
    log_group: &str,
    target_group: Option<Expr>,
) {
    let title = env.title();
    let prefix = format!("{title}{}", service.title());
    let task_role = format!("{prefix}TaskRole");
    template.resource(
        &task_role,
        Resource::new(&Role {
            description: format!(
                "The {} {} service calls AWS with this role",
                env.as_str(),
                service.name()
            ),
            assume_role_policy_document: PolicyDocument::trust("ecs-tasks.amazonaws.com"),
            managed_policy_arns: Vec::new(),
            policies: vec![InlinePolicy {
                policy_name: service.name().to_owned(),
                policy_document: service::task_policy(service, &title),
            }],
        }),
    );

    let (cpu, memory) = service.size();
    let task = format!("{prefix}TaskDefinition");
    template.resource(
        &task,
        Resource::new(&TaskDefinition {
            requires_compatibilities: vec!["FARGATE"],
            network_mode: "awsvpc",
            cpu: cpu.to_string(),
            memory: memory.to_string(),
            execution_role_arn: Expr::att(execution_role, "Arn"),
            task_role_arn: Expr::att(&task_role, "Arn"),
            container_definitions: vec![container(env, service, log_group)],
            volumes: vec![Volume {
                name: SCRATCH_VOLUME,
            }],
            ephemeral_storage: (service == ServiceKind::Exporter).then(|| EphemeralStorage {
                size_in_gib: service::exporter_storage_gib(),
            }),
            runtime_platform: RuntimePlatform {
                cpu_architecture: "X86_64",
                operating_system_family: "LINUX",
            },
        }),
    );

    let is_ingress = target_group.is_some();
    let service_id = format!("{prefix}Service");
    let mut resource = Resource::new(&Service {
        cluster: Expr::r#ref(CLUSTER),
        task_definition: Expr::r#ref(&task),
        capacity_provider_strategy: cluster::capacity(),
        deployment_configuration: DeploymentConfiguration {
            deployment_circuit_breaker: CircuitBreaker {
                enable: true,
                rollback: true,
            },
            minimum_healthy_percent: 100,
            maximum_percent: 200,
        },
        network_configuration: NetworkConfiguration {
            awsvpc_configuration: AwsVpcConfiguration {
                subnets: placement.private_subnets.clone(),
                security_groups: vec![Expr::att(
                    if is_ingress {
                        INGRESS_TASKS_GROUP
                    } else {
                        WORKER_TASKS_GROUP
                    },
                    "GroupId",
                )],
                assign_public_ip: "DISABLED",
            },
        },
        load_balancers: target_group
            .into_iter()
            .map(|target_group_arn| ServiceLoadBalancer {
                container_name: service.name().to_owned(),
                container_port: service::PORT,
                target_group_arn,
            })
            .collect(),
        health_check_grace_period_seconds: is_ingress.then_some(60),
        propagate_tags: "SERVICE",
        enable_execute_command: false,
    });
    if is_ingress {
        // The target group must belong to a listener before a service can register with it.
        resource = resource.depends_on(&[&format!("{title}Listener")]);
    }
    template.resource(&service_id, resource);
    add_scaling(template, &title, service, &service_id);
}

fn container(env: &EnvironmentName, service: ServiceKind, log_group: &str) -> ContainerDefinition {
    let title = env.title();
    let mut environment = vec![
        variable("BenchlingSecret", Expr::r#ref(params::secret_arn(&title))),
        // Completes a secret without a bucket (the four-key form); must equal a bucket it names.
        variable("PACKAGE_BUCKET", Expr::r#ref(params::PACKAGE_BUCKET)),
        variable("LOG_LEVEL", Expr::r#ref(params::LOG_LEVEL)),
        variable("AWS_REGION", Expr::r#ref("AWS::Region")),
        variable("PORT", service::PORT.to_string().into()),
        variable(
            "SHUTDOWN_TIMEOUT_SECS",
            SHUTDOWN_TIMEOUT_SECS.to_string().into(),
        ),
        variable(
            "OTEL_SERVICE_NAME",
            format!("benchling-webhook-{}", service.name()).into(),
        ),
    ];
    environment.extend(
        service
            .queue_vars()
            .into_iter()
            .map(|queue| variable(queue.env_var(), Expr::r#ref(queue.id(&title)))),
    );
    environment.extend(
        service
            .settings()
            .into_iter()
            .map(|(name, value)| variable(name, value)),
    );
    ContainerDefinition {
        name: service.name().to_owned(),
        image: Expr::sub(format!(
            "${{{}}}:${{{}}}",
            params::IMAGE_REPOSITORY,
            params::image_tag(&title)
        )),
        command: vec![service.binary()],
        essential: true,
        user: "1000:1000",
        readonly_root_filesystem: true,
        stop_timeout: STOP_TIMEOUT_SECS,
        environment,
        port_mappings: vec![PortMapping {
            container_port: service::PORT,
            protocol: "tcp",
        }],
        mount_points: vec![MountPoint {
            source_volume: SCRATCH_VOLUME,
            container_path: SCRATCH_DIR,
            read_only: false,
        }],
        health_check: HealthCheck {
            command: vec!["CMD".to_owned(), service.binary(), "--health".to_owned()],
            interval: 30,
            timeout: 5,
            retries: 3,
            start_period: 60,
        },
        log_configuration: LogConfiguration {
            log_driver: "awslogs",
            options: LogOptions {
                group: Expr::r#ref(log_group),
                region: Expr::r#ref("AWS::Region"),
                stream_prefix: service.name().to_owned(),
            },
        },
    }
}

fn variable(name: &str, value: Expr) -> EnvironmentVariable {
    EnvironmentVariable {
        name: name.to_owned(),
        value,
    }
}

fn add_scaling(template: &mut Template, title: &str, service: ServiceKind, service_id: &str) {
    let prefix = format!("{title}{}", service.title());
    let target_id = format!("{prefix}ScalableTarget");
    let min = if service == ServiceKind::Ingress {
        params::ingress_min_tasks(title)
    } else {
        params::worker_min_tasks(title)
    };
    template.resource(
        &target_id,
        Resource::new(&ScalableTarget {
            resource_id: Expr::join(
                "/",
                vec![
                    "service".into(),
                    Expr::r#ref(CLUSTER),
                    Expr::att(service_id, "Name"),
                ],
            ),
            scalable_dimension: "ecs:service:DesiredCount",
            service_namespace: "ecs",
            min_capacity: Expr::r#ref(min),
            max_capacity: Expr::r#ref(params::max_tasks(title)),
        }),
    );
    let target = Expr::r#ref(&target_id);
    if service == ServiceKind::Ingress {
        // Signature checks are the ingress's bound: scale on CPU.
        template.resource(
            &format!("{prefix}CpuScaling"),
            Resource::new(&ScalingPolicy {
                policy_name: Expr::sub(format!("${{AWS::StackName}}-{prefix}-cpu")),
                policy_type: "TargetTrackingScaling",
                scaling_target_id: target,
                target_tracking_scaling_policy_configuration: Some(TargetTracking {
                    target_value: 60.0,
                    predefined_metric_specification: Some(PredefinedMetric {
                        predefined_metric_type: "ECSServiceAverageCPUUtilization",
                    }),
                    customized_metric_specification: None,
                    scale_in_cooldown: 300,
                    scale_out_cooldown: 60,
                }),
                step_scaling_policy_configuration: None,
            }),
        );
        return;
    }

    let tasks = || Metric {
        metric_name: "RunningTaskCount",
        namespace: "ECS/ContainerInsights",
        dimensions: vec![
            Dimension {
                name: "ClusterName",
                value: Expr::r#ref(CLUSTER),
            },
            Dimension {
                name: "ServiceName",
                value: Expr::att(service_id, "Name"),
            },
        ],
    };
    let depth = |queue: QueueKind, metric: &'static str| Metric {
        metric_name: metric,
        namespace: "AWS/SQS",
        dimensions: vec![Dimension {
            name: "QueueName",
            value: Expr::att(queue.id(title), "QueueName"),
        }],
    };

    // Backlog per task: messages waiting or in flight over running tasks. In-flight ones count,
    // or a busy worker with an empty queue would be scaled away mid-job.
    let mut metrics = Vec::new();
    let mut backlog = Vec::new();
    for (i, &queue) in service.consumes().iter().enumerate() {
        for (kind, metric) in [
            ("visible", "ApproximateNumberOfMessagesVisible"),
            ("inflight", "ApproximateNumberOfMessagesNotVisible"),
        ] {
            let id = format!("{kind}{i}");
            metrics.push(MetricQuery::metric(&id, depth(queue, metric), "Sum", None));
            backlog.push(id);
        }
    }
    metrics.push(MetricQuery::metric("tasks", tasks(), "Average", None));
    metrics.push(MetricQuery::result(
        "backlog",
        format!(
            "({}) / IF(FILL(tasks, 0) > 0, FILL(tasks, 0), 1)",
            backlog.join(" + ")
        ),
        "Messages per task",
    ));
    template.resource(
        &format!("{prefix}BacklogScaling"),
        Resource::new(&ScalingPolicy {
            policy_name: Expr::sub(format!("${{AWS::StackName}}-{prefix}-backlog")),
            policy_type: "TargetTrackingScaling",
            scaling_target_id: target.clone(),
            target_tracking_scaling_policy_configuration: Some(TargetTracking {
                target_value: service.backlog_per_task(),
                predefined_metric_specification: None,
                customized_metric_specification: Some(CustomizedMetric { metrics }),
                scale_in_cooldown: 300,
                scale_out_cooldown: 60,
            }),
            step_scaling_policy_configuration: None,
        }),
    );

    // Target tracking cannot leave zero tasks (its metric is undefined there): a step policy
    // starts the first task when messages wait and none runs.
    let wake = format!("{prefix}WakeScaling");
    template.resource(
        &wake,
        Resource::new(&ScalingPolicy {
            policy_name: Expr::sub(format!("${{AWS::StackName}}-{prefix}-wake")),
            policy_type: "StepScaling",
            scaling_target_id: target,
            target_tracking_scaling_policy_configuration: None,
            step_scaling_policy_configuration: Some(StepScaling {
                adjustment_type: "ChangeInCapacity",
                cooldown: 60,
                metric_aggregation_type: "Maximum",
                step_adjustments: vec![StepAdjustment {
                    metric_interval_lower_bound: 0.0,
                    scaling_adjustment: 1,
                }],
            }),
        }),
    );
    let mut queries = Vec::new();
    let mut waiting = Vec::new();
    for (i, &queue) in service.consumes().iter().enumerate() {
        let id = format!("waiting{i}");
        let metric = depth(queue, "ApproximateNumberOfMessagesVisible");
        queries.push(MetricQuery::metric(&id, metric, "Maximum", Some(60)));
        waiting.push(id);
    }
    queries.push(MetricQuery::metric("tasks", tasks(), "Maximum", Some(60)));
    queries.push(MetricQuery::result(
        "idle",
        format!(
            "IF(({}) > 0 AND FILL(tasks, 0) == 0, 1, 0)",
            waiting.join(" + ")
        ),
        "Messages waiting with no task",
    ));
    template.resource(
        &format!("{prefix}WakeAlarm"),
        Resource::new(&Alarm {
            alarm_description: format!(
                "Messages wait for the {title} {} with no task running: starts one",
                service.name()
            ),
            metric_name: None,
            namespace: None,
            dimensions: Vec::new(),
            statistic: None,
            period: None,
            metrics: queries,
            evaluation_periods: 1,
            threshold: 1.0,
            comparison_operator: "GreaterThanOrEqualToThreshold",
            treat_missing_data: "notBreaching",
            alarm_actions: vec![Expr::r#ref(&wake)],
        }),
    );
}
