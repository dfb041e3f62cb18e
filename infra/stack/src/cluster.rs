//! The ECS cluster every environment shares, and the tasks' security groups.

use crate::aws::compute::{
    CapacityProviderAssociations, CapacityProviderItem, Cluster, ClusterSetting,
};
use crate::aws::network::{Rule, SecurityGroup, Tag};
use crate::network::Placement;
use crate::template::{Expr, Resource, Template};

/// The cluster's logical id.
pub const CLUSTER: &str = "Cluster";
/// The ingress tasks' security group: reachable from the load balancer only.
pub const INGRESS_TASKS_GROUP: &str = "IngressTaskSecurityGroup";
/// The workers' security group: nothing reaches them.
pub const WORKER_TASKS_GROUP: &str = "WorkerTaskSecurityGroup";

/// The capacity provider of every service: on-demand Fargate.
pub fn capacity() -> Vec<CapacityProviderItem> {
    vec![CapacityProviderItem {
        capacity_provider: "FARGATE",
        weight: 1,
    }]
}

/// Adds the cluster and the tasks' security groups.
pub fn add(template: &mut Template, placement: &Placement) {
    let cluster = template.resource(
        CLUSTER,
        Resource::new(&Cluster {
            cluster_settings: vec![ClusterSetting {
                name: "containerInsights",
                value: "enabled",
            }],
        }),
    );
    template.resource(
        "ClusterCapacityProviders",
        Resource::new(&CapacityProviderAssociations {
            cluster,
            capacity_providers: vec!["FARGATE", "FARGATE_SPOT"],
            default_capacity_provider_strategy: capacity(),
        }),
    );
    for (id, what) in [
        (
            INGRESS_TASKS_GROUP,
            "ingress tasks: HTTP from the load balancer",
        ),
        (WORKER_TASKS_GROUP, "worker tasks: no inbound traffic"),
    ] {
        template.resource(
            id,
            Resource::new(&SecurityGroup {
                group_description: format!("Benchling webhook {what}; HTTPS out"),
                vpc_id: placement.vpc_id.clone(),
                security_group_ingress: Vec::new(),
                // Benchling, AWS APIs and S3 are all HTTPS; nothing else leaves a task.
                security_group_egress: vec![Rule {
                    ip_protocol: "tcp",
                    from_port: 443,
                    to_port: 443,
                    cidr_ip: Some("0.0.0.0/0".into()),
                    description: "HTTPS to Benchling and AWS".to_owned(),
                }],
                tags: Tag::name(Expr::sub(format!("${{AWS::StackName}}-{id}"))),
            }),
        );
    }
}
