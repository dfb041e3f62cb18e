//! SQS queues and their policies, and EventBridge rules.

use serde::Serialize;
use serde_json::Value;

use crate::aws::iam::PolicyDocument;
use crate::template::{Expr, Properties};

/// Where a queue's messages go after too many receives.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RedrivePolicy {
    /// The dead-letter queue's ARN.
    pub dead_letter_target_arn: Expr,
    /// Receives before a message moves there.
    pub max_receive_count: u32,
}

/// `AWS::SQS::Queue`. Unnamed: CloudFormation names it after the stack (with `.fifo` for FIFO
/// queues), so stacks and environments never collide.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Queue {
    /// FIFO or standard.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fifo_queue: Option<bool>,
    /// Off: the services set deduplication ids themselves.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_based_deduplication: Option<bool>,
    /// `messageGroup`, for high-throughput FIFO.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deduplication_scope: Option<&'static str>,
    /// `perMessageGroupId`, for high-throughput FIFO.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fifo_throughput_limit: Option<&'static str>,
    /// Seconds a received message stays hidden (the workers' heartbeat extends it).
    pub visibility_timeout: u32,
    /// Seconds a message is kept.
    pub message_retention_period: u32,
    /// Encrypted at rest with SQS-managed keys.
    pub sqs_managed_sse_enabled: bool,
    /// The dead-letter queue.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redrive_policy: Option<RedrivePolicy>,
}

impl Properties for Queue {
    const TYPE: &'static str = "AWS::SQS::Queue";
}

/// `AWS::SQS::QueuePolicy`.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct QueuePolicy {
    /// The queues (URLs).
    pub queues: Vec<Expr>,
    /// Who may do what.
    pub policy_document: PolicyDocument,
}

impl Properties for QueuePolicy {
    const TYPE: &'static str = "AWS::SQS::QueuePolicy";
}

/// A rule's target.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct RuleTarget {
    /// Its id within the rule.
    pub id: &'static str,
    /// The queue's ARN.
    pub arn: Expr,
}

/// `AWS::Events::Rule` on the default bus.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Rule {
    /// What it matches.
    pub description: String,
    /// The event pattern.
    pub event_pattern: Value,
    /// `ENABLED`.
    pub state: &'static str,
    /// Where matches go.
    pub targets: Vec<RuleTarget>,
}

impl Properties for Rule {
    const TYPE: &'static str = "AWS::Events::Rule";
}
