//! API Gateway (REST): the API, its proxy methods, deployment, stages and VPC link.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::aws::iam::PolicyDocument;
use crate::template::{Expr, Properties};

/// The API's endpoint type.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct EndpointConfiguration {
    /// `REGIONAL`.
    pub types: Vec<&'static str>,
}

/// `AWS::ApiGateway::RestApi`.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct RestApi {
    /// Its name (unique per stack).
    pub name: Expr,
    /// What it is.
    pub description: String,
    /// Regional.
    pub endpoint_configuration: EndpointConfiguration,
    /// Who may invoke it.
    pub policy: PolicyDocument,
}

impl Properties for RestApi {
    const TYPE: &'static str = "AWS::ApiGateway::RestApi";
}

/// `AWS::ApiGateway::Resource`.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ApiResource {
    /// The API.
    pub rest_api_id: Expr,
    /// The parent resource.
    pub parent_id: Expr,
    /// The path segment.
    pub path_part: &'static str,
}

impl Properties for ApiResource {
    const TYPE: &'static str = "AWS::ApiGateway::Resource";
}

/// An HTTP proxy integration over a VPC link.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Integration {
    /// `HTTP_PROXY`.
    #[serde(rename = "Type")]
    pub kind: &'static str,
    /// `ANY`: the client's method is passed on.
    pub integration_http_method: &'static str,
    /// `VPC_LINK`.
    pub connection_type: &'static str,
    /// The VPC link.
    pub connection_id: Expr,
    /// The backend URL; may name stage variables.
    pub uri: Expr,
    /// Path parameters passed on.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub request_parameters: BTreeMap<&'static str, &'static str>,
    /// API Gateway's longest wait.
    pub timeout_in_millis: u32,
}

/// `AWS::ApiGateway::Method`.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Method {
    /// The API.
    pub rest_api_id: Expr,
    /// The resource.
    pub resource_id: Expr,
    /// `ANY`.
    pub http_method: &'static str,
    /// `NONE`: the ingress verifies every webhook's signature itself.
    pub authorization_type: &'static str,
    /// Path parameters the method takes.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub request_parameters: BTreeMap<&'static str, bool>,
    /// Where requests go.
    pub integration: Integration,
}

impl Properties for Method {
    const TYPE: &'static str = "AWS::ApiGateway::Method";
}

/// `AWS::ApiGateway::Deployment`: a snapshot of the methods, shared by every stage.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Deployment {
    /// The API.
    pub rest_api_id: Expr,
    /// What it snapshots.
    pub description: String,
}

impl Properties for Deployment {
    const TYPE: &'static str = "AWS::ApiGateway::Deployment";
}

/// Where and how a stage writes its access log.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct AccessLogSetting {
    /// The log group's ARN.
    pub destination_arn: Expr,
    /// One JSON object per request.
    pub format: String,
}

/// `AWS::ApiGateway::Stage`.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Stage {
    /// The API.
    pub rest_api_id: Expr,
    /// Its name: the environment.
    pub stage_name: String,
    /// The deployment it serves.
    pub deployment_id: Expr,
    /// What it is.
    pub description: String,
    /// Variables the integration URI reads (the environment's backend).
    pub variables: BTreeMap<&'static str, Expr>,
    /// Its access log.
    pub access_log_setting: AccessLogSetting,
}

impl Properties for Stage {
    const TYPE: &'static str = "AWS::ApiGateway::Stage";
}

/// `AWS::ApiGateway::VpcLink` (REST): private access to the network load balancer.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct VpcLink {
    /// Its name.
    pub name: Expr,
    /// The load balancer.
    pub target_arns: Vec<Expr>,
}

impl Properties for VpcLink {
    const TYPE: &'static str = "AWS::ApiGateway::VpcLink";
}

/// `AWS::ApiGateway::Account`: the account-wide role API Gateway writes logs with.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Account {
    /// The role.
    pub cloud_watch_role_arn: Expr,
}

impl Properties for Account {
    const TYPE: &'static str = "AWS::ApiGateway::Account";
}

/// `AWS::CloudFormation::WaitConditionHandle`: holds no state; used to order a resource after
/// one that exists only under a condition.
#[derive(Serialize)]
pub struct WaitConditionHandle {}

impl Properties for WaitConditionHandle {
    const TYPE: &'static str = "AWS::CloudFormation::WaitConditionHandle";
}
