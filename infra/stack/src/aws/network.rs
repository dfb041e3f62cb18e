//! VPC, subnets, routing, security groups and the network load balancer.

use serde::Serialize;

use crate::template::{Expr, Properties};

/// A tag.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Tag {
    /// Its key.
    pub key: String,
    /// Its value.
    pub value: Expr,
}

impl Tag {
    /// The `Name` tag the console shows.
    pub fn name(value: Expr) -> Vec<Tag> {
        vec![Tag {
            key: "Name".to_owned(),
            value,
        }]
    }
}

/// `AWS::EC2::VPC`.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Vpc {
    /// Its address range.
    pub cidr_block: Expr,
    /// Resolve AWS service names inside the VPC.
    pub enable_dns_support: bool,
    /// Give instances DNS names (needed for interface endpoints and ECS).
    pub enable_dns_hostnames: bool,
    /// Its tags.
    pub tags: Vec<Tag>,
}

impl Properties for Vpc {
    const TYPE: &'static str = "AWS::EC2::VPC";
}

/// `AWS::EC2::InternetGateway`.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct InternetGateway {
    /// Its tags.
    pub tags: Vec<Tag>,
}

impl Properties for InternetGateway {
    const TYPE: &'static str = "AWS::EC2::InternetGateway";
}

/// `AWS::EC2::VPCGatewayAttachment`.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct GatewayAttachment {
    /// The VPC.
    pub vpc_id: Expr,
    /// The internet gateway.
    pub internet_gateway_id: Expr,
}

impl Properties for GatewayAttachment {
    const TYPE: &'static str = "AWS::EC2::VPCGatewayAttachment";
}

/// `AWS::EC2::Subnet`.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Subnet {
    /// The VPC.
    pub vpc_id: Expr,
    /// Its address range.
    pub cidr_block: Expr,
    /// Its zone.
    pub availability_zone: Expr,
    /// Whether instances get public addresses (never: only NAT gateways live in public subnets).
    pub map_public_ip_on_launch: bool,
    /// Its tags.
    pub tags: Vec<Tag>,
}

impl Properties for Subnet {
    const TYPE: &'static str = "AWS::EC2::Subnet";
}

/// `AWS::EC2::RouteTable`.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct RouteTable {
    /// The VPC.
    pub vpc_id: Expr,
    /// Its tags.
    pub tags: Vec<Tag>,
}

impl Properties for RouteTable {
    const TYPE: &'static str = "AWS::EC2::RouteTable";
}

/// `AWS::EC2::Route`: a default route through a gateway or a NAT gateway.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Route {
    /// The route table.
    pub route_table_id: Expr,
    /// The destination.
    pub destination_cidr_block: Expr,
    /// Through an internet gateway.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gateway_id: Option<Expr>,
    /// Through a NAT gateway.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nat_gateway_id: Option<Expr>,
}

impl Properties for Route {
    const TYPE: &'static str = "AWS::EC2::Route";
}

/// `AWS::EC2::SubnetRouteTableAssociation`.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct SubnetRouteTableAssociation {
    /// The subnet.
    pub subnet_id: Expr,
    /// The route table.
    pub route_table_id: Expr,
}

impl Properties for SubnetRouteTableAssociation {
    const TYPE: &'static str = "AWS::EC2::SubnetRouteTableAssociation";
}

/// `AWS::EC2::EIP` for a NAT gateway.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ElasticIp {
    /// Always `vpc`.
    pub domain: &'static str,
    /// Its tags.
    pub tags: Vec<Tag>,
}

impl Properties for ElasticIp {
    const TYPE: &'static str = "AWS::EC2::EIP";
}

/// `AWS::EC2::NatGateway`.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct NatGateway {
    /// Its public subnet.
    pub subnet_id: Expr,
    /// Its address.
    pub allocation_id: Expr,
    /// Its tags.
    pub tags: Vec<Tag>,
}

impl Properties for NatGateway {
    const TYPE: &'static str = "AWS::EC2::NatGateway";
}

/// `AWS::EC2::VPCEndpoint` of the gateway type (S3), so package bytes skip the NAT.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct GatewayEndpoint {
    /// The VPC.
    pub vpc_id: Expr,
    /// `com.amazonaws.{region}.s3`.
    pub service_name: Expr,
    /// Always `Gateway`.
    pub vpc_endpoint_type: &'static str,
    /// The route tables that reach it.
    pub route_table_ids: Vec<Expr>,
}

impl Properties for GatewayEndpoint {
    const TYPE: &'static str = "AWS::EC2::VPCEndpoint";
}

/// One rule of a security group.
#[derive(Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Rule {
    /// `tcp`.
    pub ip_protocol: &'static str,
    /// The first port.
    pub from_port: u16,
    /// The last port.
    pub to_port: u16,
    /// To or from an address range.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cidr_ip: Option<Expr>,
    /// What it is for.
    pub description: String,
}

/// `AWS::EC2::SecurityGroup`.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct SecurityGroup {
    /// What it guards.
    pub group_description: String,
    /// The VPC.
    pub vpc_id: Expr,
    /// Inbound rules to address ranges (rules between groups are separate resources).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub security_group_ingress: Vec<Rule>,
    /// Outbound rules; an explicit list replaces the default allow-all.
    pub security_group_egress: Vec<Rule>,
    /// Its tags.
    pub tags: Vec<Tag>,
}

impl Properties for SecurityGroup {
    const TYPE: &'static str = "AWS::EC2::SecurityGroup";
}

/// `AWS::EC2::SecurityGroupIngress` from another group.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct GroupIngress {
    /// The group the rule belongs to.
    pub group_id: Expr,
    /// The group traffic comes from.
    pub source_security_group_id: Expr,
    /// `tcp`.
    pub ip_protocol: &'static str,
    /// The first port.
    pub from_port: u16,
    /// The last port.
    pub to_port: u16,
    /// What it is for.
    pub description: String,
}

impl Properties for GroupIngress {
    const TYPE: &'static str = "AWS::EC2::SecurityGroupIngress";
}

/// `AWS::EC2::SecurityGroupEgress` to another group.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct GroupEgress {
    /// The group the rule belongs to.
    pub group_id: Expr,
    /// The group traffic goes to.
    pub destination_security_group_id: Expr,
    /// `tcp`.
    pub ip_protocol: &'static str,
    /// The first port.
    pub from_port: u16,
    /// The last port.
    pub to_port: u16,
    /// What it is for.
    pub description: String,
}

impl Properties for GroupEgress {
    const TYPE: &'static str = "AWS::EC2::SecurityGroupEgress";
}

/// A key–value attribute of a load balancer, target group or listener.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Attribute {
    /// Its key.
    pub key: &'static str,
    /// Its value.
    pub value: &'static str,
}

/// `AWS::ElasticLoadBalancingV2::LoadBalancer` (network, internal).
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct LoadBalancer {
    /// `network`.
    #[serde(rename = "Type")]
    pub kind: &'static str,
    /// `internal`.
    pub scheme: &'static str,
    /// Its subnets.
    pub subnets: Vec<Expr>,
    /// Its security groups.
    pub security_groups: Vec<Expr>,
    /// `off`: traffic from the API's VPC link arrives through PrivateLink and needs no inbound
    /// rule, so no other host in the VPC can reach the balancer.
    pub enforce_security_group_inbound_rules_on_private_link_traffic: &'static str,
    /// Its attributes.
    pub load_balancer_attributes: Vec<Attribute>,
}

impl Properties for LoadBalancer {
    const TYPE: &'static str = "AWS::ElasticLoadBalancingV2::LoadBalancer";
}

/// `AWS::ElasticLoadBalancingV2::TargetGroup` of IP targets (Fargate tasks).
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct TargetGroup {
    /// The VPC.
    pub vpc_id: Expr,
    /// `TCP`.
    pub protocol: &'static str,
    /// The tasks' port.
    pub port: u16,
    /// `ip`.
    pub target_type: &'static str,
    /// `HTTP`.
    pub health_check_protocol: &'static str,
    /// The readiness path.
    pub health_check_path: &'static str,
    /// Seconds between checks.
    pub health_check_interval_seconds: u32,
    /// Seconds a check may take.
    pub health_check_timeout_seconds: u32,
    /// Checks passed to be healthy.
    pub healthy_threshold_count: u32,
    /// Checks failed to be unhealthy.
    pub unhealthy_threshold_count: u32,
    /// Its attributes.
    pub target_group_attributes: Vec<Attribute>,
}

impl Properties for TargetGroup {
    const TYPE: &'static str = "AWS::ElasticLoadBalancingV2::TargetGroup";
}

/// A listener's forward action.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ForwardAction {
    /// `forward`.
    #[serde(rename = "Type")]
    pub kind: &'static str,
    /// The target group.
    pub target_group_arn: Expr,
}

/// `AWS::ElasticLoadBalancingV2::Listener`.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Listener {
    /// The load balancer.
    pub load_balancer_arn: Expr,
    /// `TCP`.
    pub protocol: &'static str,
    /// Its port.
    pub port: u16,
    /// Where traffic goes.
    pub default_actions: Vec<ForwardAction>,
}

impl Properties for Listener {
    const TYPE: &'static str = "AWS::ElasticLoadBalancingV2::Listener";
}
