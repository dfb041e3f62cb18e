//! ECS on Fargate (cluster, task definitions, services) and Application Auto Scaling.

use serde::Serialize;

use crate::template::{Expr, Properties};

/// A cluster setting.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ClusterSetting {
    /// `containerInsights`.
    pub name: &'static str,
    /// `enabled`.
    pub value: &'static str,
}

/// `AWS::ECS::Cluster`.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Cluster {
    /// Container Insights, whose task counts the worker scaling reads.
    pub cluster_settings: Vec<ClusterSetting>,
}

impl Properties for Cluster {
    const TYPE: &'static str = "AWS::ECS::Cluster";
}

/// A capacity provider and its share.
#[derive(Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct CapacityProviderItem {
    /// `FARGATE` or `FARGATE_SPOT`.
    pub capacity_provider: &'static str,
    /// Its relative share.
    pub weight: u32,
}

/// `AWS::ECS::ClusterCapacityProviderAssociations`.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct CapacityProviderAssociations {
    /// The cluster.
    pub cluster: Expr,
    /// The providers its services may use.
    pub capacity_providers: Vec<&'static str>,
    /// Used by services that name none.
    pub default_capacity_provider_strategy: Vec<CapacityProviderItem>,
}

impl Properties for CapacityProviderAssociations {
    const TYPE: &'static str = "AWS::ECS::ClusterCapacityProviderAssociations";
}

/// A container's environment variable.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct EnvironmentVariable {
    /// Its name.
    pub name: String,
    /// Its value.
    pub value: Expr,
}

/// A container's port.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct PortMapping {
    /// The port.
    pub container_port: u16,
    /// `tcp`.
    pub protocol: &'static str,
}

/// Where a volume is mounted.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct MountPoint {
    /// The volume.
    pub source_volume: &'static str,
    /// The path inside the container.
    pub container_path: &'static str,
    /// Writable.
    pub read_only: bool,
}

/// A container's health check.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct HealthCheck {
    /// `["CMD", binary, "--health"]`.
    pub command: Vec<String>,
    /// Seconds between checks.
    pub interval: u32,
    /// Seconds a check may take.
    pub timeout: u32,
    /// Failures before the container is unhealthy.
    pub retries: u32,
    /// Seconds after start during which failures do not count.
    pub start_period: u32,
}

/// The `awslogs` driver's options.
#[derive(Serialize)]
pub struct LogOptions {
    /// The log group.
    #[serde(rename = "awslogs-group")]
    pub group: Expr,
    /// Its region.
    #[serde(rename = "awslogs-region")]
    pub region: Expr,
    /// The stream prefix: the service.
    #[serde(rename = "awslogs-stream-prefix")]
    pub stream_prefix: String,
}

/// A container's logging.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct LogConfiguration {
    /// `awslogs`.
    pub log_driver: &'static str,
    /// Where.
    pub options: LogOptions,
}

/// A container of a task definition.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerDefinition {
    /// Its name: the service.
    pub name: String,
    /// The image.
    pub image: Expr,
    /// The binary to run.
    pub command: Vec<String>,
    /// Stops the task when it stops.
    pub essential: bool,
    /// `1000:1000`.
    pub user: &'static str,
    /// The image is never written to; scratch space is a volume.
    pub readonly_root_filesystem: bool,
    /// Seconds between SIGTERM and SIGKILL.
    pub stop_timeout: u32,
    /// Its environment.
    pub environment: Vec<EnvironmentVariable>,
    /// Its ports.
    pub port_mappings: Vec<PortMapping>,
    /// Its volumes.
    pub mount_points: Vec<MountPoint>,
    /// Its health check.
    pub health_check: HealthCheck,
    /// Its logs.
    pub log_configuration: LogConfiguration,
}

/// A task volume (Fargate task storage).
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Volume {
    /// Its name.
    pub name: &'static str,
}

/// A Fargate task's scratch disk size.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct EphemeralStorage {
    /// GiB, 21–200.
    #[serde(rename = "SizeInGiB")]
    pub size_in_gib: u32,
}

/// The task's CPU architecture and OS.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct RuntimePlatform {
    /// `X86_64`.
    pub cpu_architecture: &'static str,
    /// `LINUX`.
    pub operating_system_family: &'static str,
}

/// `AWS::ECS::TaskDefinition`.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct TaskDefinition {
    /// `FARGATE`.
    pub requires_compatibilities: Vec<&'static str>,
    /// `awsvpc`.
    pub network_mode: &'static str,
    /// CPU units.
    pub cpu: String,
    /// MiB.
    pub memory: String,
    /// The role ECS pulls the image and writes logs with.
    pub execution_role_arn: Expr,
    /// The role the service calls AWS with.
    pub task_role_arn: Expr,
    /// The one container.
    pub container_definitions: Vec<ContainerDefinition>,
    /// Scratch volumes.
    pub volumes: Vec<Volume>,
    /// Scratch disk beyond the default, when the service needs it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ephemeral_storage: Option<EphemeralStorage>,
    /// Linux on x86-64, as the image is built.
    pub runtime_platform: RuntimePlatform,
}

impl Properties for TaskDefinition {
    const TYPE: &'static str = "AWS::ECS::TaskDefinition";
}

/// Rolls back a deployment whose tasks do not become healthy.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct CircuitBreaker {
    /// On.
    pub enable: bool,
    /// Roll back.
    pub rollback: bool,
}

/// How a service deploys.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeploymentConfiguration {
    /// The circuit breaker.
    pub deployment_circuit_breaker: CircuitBreaker,
    /// Least share of tasks kept running.
    pub minimum_healthy_percent: u32,
    /// Most share of tasks during a deployment.
    pub maximum_percent: u32,
}

/// A service's task networking.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct AwsVpcConfiguration {
    /// Private subnets.
    pub subnets: Vec<Expr>,
    /// Its security groups.
    pub security_groups: Vec<Expr>,
    /// `DISABLED`.
    pub assign_public_ip: &'static str,
}

/// A service's network configuration.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct NetworkConfiguration {
    /// `awsvpc`.
    pub awsvpc_configuration: AwsVpcConfiguration,
}

/// A service's load-balancer registration.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ServiceLoadBalancer {
    /// The container.
    pub container_name: String,
    /// Its port.
    pub container_port: u16,
    /// The target group.
    pub target_group_arn: Expr,
}

/// `AWS::ECS::Service`. No desired count: the scalable target owns it, and a deploy must not
/// reset what scaling chose.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Service {
    /// The cluster.
    pub cluster: Expr,
    /// The task definition.
    pub task_definition: Expr,
    /// Where tasks run.
    pub capacity_provider_strategy: Vec<CapacityProviderItem>,
    /// Deployment safety.
    pub deployment_configuration: DeploymentConfiguration,
    /// Task networking.
    pub network_configuration: NetworkConfiguration,
    /// The load balancer, for the ingress.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub load_balancers: Vec<ServiceLoadBalancer>,
    /// Seconds the load balancer's checks are ignored after a task starts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health_check_grace_period_seconds: Option<u32>,
    /// Tags tasks with the service, for cost reports.
    pub propagate_tags: &'static str,
    /// ECS Exec stays off: the image has no shell to open.
    pub enable_execute_command: bool,
}

impl Properties for Service {
    const TYPE: &'static str = "AWS::ECS::Service";
}

/// `AWS::ApplicationAutoScaling::ScalableTarget` of an ECS service's desired count.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ScalableTarget {
    /// `service/{cluster}/{service}`.
    pub resource_id: Expr,
    /// `ecs:service:DesiredCount`.
    pub scalable_dimension: &'static str,
    /// `ecs`.
    pub service_namespace: &'static str,
    /// Fewest tasks.
    pub min_capacity: Expr,
    /// Most tasks.
    pub max_capacity: Expr,
}

impl Properties for ScalableTarget {
    const TYPE: &'static str = "AWS::ApplicationAutoScaling::ScalableTarget";
}

/// A predefined metric.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct PredefinedMetric {
    /// `ECSServiceAverageCPUUtilization`.
    pub predefined_metric_type: &'static str,
}

/// A metric's dimension.
#[derive(Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Dimension {
    /// Its name.
    pub name: &'static str,
    /// Its value.
    pub value: Expr,
}

/// A metric.
#[derive(Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Metric {
    /// Its name.
    pub metric_name: &'static str,
    /// Its namespace.
    pub namespace: &'static str,
    /// Its dimensions.
    pub dimensions: Vec<Dimension>,
}

/// A metric and its statistic.
#[derive(Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct MetricStat {
    /// The metric.
    pub metric: Metric,
    /// Seconds per datapoint: alarms name it, target tracking must not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub period: Option<u32>,
    /// `Sum`, `Average`, `Maximum`.
    pub stat: &'static str,
}

/// One metric or expression of a metric-math query (of an alarm or of target tracking).
#[derive(Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct MetricQuery {
    /// Its id in expressions.
    pub id: String,
    /// A metric…
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metric_stat: Option<MetricStat>,
    /// …or an expression over the others.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expression: Option<String>,
    /// What it means.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<&'static str>,
    /// Whether this is the value watched.
    pub return_data: bool,
}

impl MetricQuery {
    /// A metric's statistic, not itself the result.
    pub fn metric(id: &str, metric: Metric, stat: &'static str, period: Option<u32>) -> Self {
        Self {
            id: id.to_owned(),
            metric_stat: Some(MetricStat {
                metric,
                period,
                stat,
            }),
            expression: None,
            label: None,
            return_data: false,
        }
    }

    /// An expression over the others: the result.
    pub fn result(id: &str, expression: String, label: &'static str) -> Self {
        Self {
            id: id.to_owned(),
            metric_stat: None,
            expression: Some(expression),
            label: Some(label),
            return_data: true,
        }
    }
}

/// A metric-math metric for target tracking.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct CustomizedMetric {
    /// The query.
    pub metrics: Vec<MetricQuery>,
}

/// Target tracking settings.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct TargetTracking {
    /// The value to hold the metric at.
    pub target_value: f64,
    /// A predefined metric…
    #[serde(skip_serializing_if = "Option::is_none")]
    pub predefined_metric_specification: Option<PredefinedMetric>,
    /// …or a metric-math one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub customized_metric_specification: Option<CustomizedMetric>,
    /// Seconds between scale-ins.
    pub scale_in_cooldown: u32,
    /// Seconds between scale-outs.
    pub scale_out_cooldown: u32,
}

/// One step of a step-scaling policy.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct StepAdjustment {
    /// From this far above the alarm's threshold.
    pub metric_interval_lower_bound: f64,
    /// Tasks to add.
    pub scaling_adjustment: i32,
}

/// Step scaling settings.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct StepScaling {
    /// `ChangeInCapacity`.
    pub adjustment_type: &'static str,
    /// Seconds before it acts again.
    pub cooldown: u32,
    /// `Maximum`.
    pub metric_aggregation_type: &'static str,
    /// Its steps.
    pub step_adjustments: Vec<StepAdjustment>,
}

/// `AWS::ApplicationAutoScaling::ScalingPolicy`.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ScalingPolicy {
    /// Its name.
    pub policy_name: Expr,
    /// `TargetTrackingScaling` or `StepScaling`.
    pub policy_type: &'static str,
    /// The scalable target.
    pub scaling_target_id: Expr,
    /// Target tracking.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_tracking_scaling_policy_configuration: Option<TargetTracking>,
    /// Step scaling.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step_scaling_policy_configuration: Option<StepScaling>,
}

impl Properties for ScalingPolicy {
    const TYPE: &'static str = "AWS::ApplicationAutoScaling::ScalingPolicy";
}
