//! CloudWatch log groups and alarms.

use serde::Serialize;

use crate::aws::compute::{Dimension, MetricQuery};
use crate::template::{Expr, Properties};

/// `AWS::Logs::LogGroup`. Unnamed, so stacks never collide; outputs name it.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct LogGroup {
    /// Days kept.
    pub retention_in_days: Expr,
}

impl Properties for LogGroup {
    const TYPE: &'static str = "AWS::Logs::LogGroup";
}

/// `AWS::CloudWatch::Alarm`: a plain metric, or a metric-math query.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Alarm {
    /// What it means and what to do.
    pub alarm_description: String,
    /// The metric's name, for a plain alarm.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metric_name: Option<&'static str>,
    /// Its namespace, for a plain alarm.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<&'static str>,
    /// Its dimensions, for a plain alarm.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dimensions: Vec<Dimension>,
    /// Its statistic, for a plain alarm.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub statistic: Option<&'static str>,
    /// Seconds per datapoint, for a plain alarm.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub period: Option<u32>,
    /// The query, for a metric-math alarm.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub metrics: Vec<MetricQuery>,
    /// Datapoints evaluated.
    pub evaluation_periods: u32,
    /// The threshold.
    pub threshold: f64,
    /// `GreaterThanOrEqualToThreshold`.
    pub comparison_operator: &'static str,
    /// `notBreaching`: no data is no problem.
    pub treat_missing_data: &'static str,
    /// What is notified (or scaled) when it fires.
    pub alarm_actions: Vec<Expr>,
}

impl Properties for Alarm {
    const TYPE: &'static str = "AWS::CloudWatch::Alarm";
}
