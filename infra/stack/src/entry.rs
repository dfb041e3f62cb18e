//! The way in: a regional REST API whose every path (`ANY /`, `ANY /{proxy+}`) is proxied over a
//! VPC link to an internal network load balancer. The API and the balancer are shared; each
//! environment has its own stage, whose `backend` variable names its own listener port, and
//! each listener forwards to that environment's ingress tasks.

use std::collections::BTreeMap;

use serde_json::json;

use crate::aws::api::{
    AccessLogSetting, Account, ApiResource, Deployment, EndpointConfiguration, Integration, Method,
    RestApi, Stage, VpcLink, WaitConditionHandle,
};
use crate::aws::iam::{PolicyDocument, Principal, Role, Statement};
use crate::aws::monitoring::LogGroup;
use crate::aws::network::{
    Attribute, ForwardAction, GroupEgress, GroupIngress, Listener, LoadBalancer, Rule,
    SecurityGroup, Tag, TargetGroup,
};
use crate::cluster::INGRESS_TASKS_GROUP;
use crate::network::Placement;
use crate::options::{Cidr, EnvironmentName};
use crate::params;
use crate::service::PORT;
use crate::template::{Expr, Resource, Template};

/// The API's logical id.
pub const API: &str = "Api";
/// The load balancer's logical id.
pub const LOAD_BALANCER: &str = "LoadBalancer";
const LOAD_BALANCER_GROUP: &str = "LoadBalancerSecurityGroup";
const VPC_LINK: &str = "VpcLink";
const ACCOUNT: &str = "ApiGatewayAccount";
const ACCOUNT_ROLE: &str = "ApiGatewayCloudWatchRole";
/// Orders the stages after the account's logging role, when this stack sets it.
const ACCOUNT_READY: &str = "ApiGatewayAccountReady";

/// The first environment's listener port; the next ones follow.
const FIRST_LISTENER_PORT: u16 = 80;

/// The listener port of the environment at `index`.
pub fn listener_port(index: usize) -> u16 {
    // `MAX_ENVIRONMENTS` bounds the index well below overflow.
    FIRST_LISTENER_PORT + u16::try_from(index).expect("few environments")
}

/// Adds the API, its methods and deployment, the VPC link, the load balancer and (behind
/// `CreateApiGatewayAccountRole`) the account's logging role. Returns the deployment's id.
pub fn add(template: &mut Template, placement: &Placement, allow: &[Cidr]) -> String {
    add_load_balancer(template, placement);
    let vpc_link = template.resource(
        VPC_LINK,
        Resource::new(&VpcLink {
            name: Expr::sub("${AWS::StackName}-webhook"),
            target_arns: vec![Expr::r#ref(LOAD_BALANCER)],
        }),
    );
    let mut invoke = Statement::allow(
        "InvokeWebhook",
        &["execute-api:Invoke"],
        vec!["execute-api:/*".into()],
    )
    .principal(Principal::Aws("*".to_owned()));
    if !allow.is_empty() {
        let cidrs: Vec<Expr> = allow.iter().map(|c| c.as_str().into()).collect();
        invoke = invoke.condition("IpAddress", "aws:SourceIp", Expr::List(cidrs));
    }
    let api = template.resource(
        API,
        Resource::new(&RestApi {
            // Named after the stack, so stacks in one account are told apart.
            name: Expr::sub("${AWS::StackName}-webhook"),
            description: "Benchling webhooks for the Benchling-Quilt integration".to_owned(),
            endpoint_configuration: EndpointConfiguration {
                types: vec!["REGIONAL"],
            },
            policy: PolicyDocument::new(vec![invoke]),
        }),
    );
    let proxy = template.resource(
        "ApiProxyResource",
        Resource::new(&ApiResource {
            rest_api_id: api.clone(),
            parent_id: Expr::att(API, "RootResourceId"),
            path_part: "{proxy+}",
        }),
    );
    let methods = [
        (
            "ApiRootMethod",
            Expr::att(API, "RootResourceId"),
            "/",
            false,
        ),
        ("ApiProxyMethod", proxy, "/{proxy}", true),
    ];
    let mut method_json = Vec::new();
    for (id, resource_id, path, takes_proxy) in methods {
        let mut request_parameters = BTreeMap::new();
        let mut integration_parameters = BTreeMap::new();
        if takes_proxy {
            request_parameters.insert("method.request.path.proxy", true);
            integration_parameters.insert(
                "integration.request.path.proxy",
                "method.request.path.proxy",
            );
        }
        let method = Resource::new(&Method {
            rest_api_id: api.clone(),
            resource_id,
            http_method: "ANY",
            authorization_type: "NONE",
            request_parameters,
            integration: Integration {
                kind: "HTTP_PROXY",
                integration_http_method: "ANY",
                connection_type: "VPC_LINK",
                connection_id: vpc_link.clone(),
                // The stage's variable picks its environment's listener.
                uri: format!("http://${{stageVariables.backend}}{path}").into(),
                request_parameters: integration_parameters,
                timeout_in_millis: 29_000,
            },
        });
        method_json.push(method.properties.clone());
        template.resource(id, method);
    }
    // A deployment snapshots the methods only when created: its id changes with them, so a
    // changed API is redeployed by the next stack update.
    let deployment = format!("ApiDeployment{:08x}", fingerprint(&json!(method_json)));
    template.resource(
        &deployment,
        Resource::new(&Deployment {
            rest_api_id: api,
            description: "Every path proxied to the environment's ingress".to_owned(),
        })
        .depends_on(&["ApiRootMethod", "ApiProxyMethod"]),
    );
    add_account_role(template);
    deployment
}

fn add_load_balancer(template: &mut Template, placement: &Placement) {
    template.resource(
        LOAD_BALANCER_GROUP,
        Resource::new(&SecurityGroup {
            group_description:
                "Benchling webhook load balancer: reached only through the API VPC link".to_owned(),
            vpc_id: placement.vpc_id.clone(),
            security_group_ingress: Vec::new(),
            // An explicit rule that matches nothing replaces the default allow-all egress;
            // the one real egress rule, to the ingress tasks, follows as its own resource.
            security_group_egress: vec![Rule {
                ip_protocol: "icmp",
                from_port: 252,
                to_port: 86,
                cidr_ip: Some("255.255.255.255/32".into()),
                description: "No egress but the rules below".to_owned(),
            }],
            tags: Tag::name(Expr::sub("${AWS::StackName}-load-balancer")),
        }),
    );
    template.resource(
        "LoadBalancerToIngressTasks",
        Resource::new(&GroupEgress {
            group_id: Expr::att(LOAD_BALANCER_GROUP, "GroupId"),
            destination_security_group_id: Expr::att(INGRESS_TASKS_GROUP, "GroupId"),
            ip_protocol: "tcp",
            from_port: PORT,
            to_port: PORT,
            description: "Webhooks and health checks to the ingress".to_owned(),
        }),
    );
    template.resource(
        "IngressTasksFromLoadBalancer",
        Resource::new(&GroupIngress {
            group_id: Expr::att(INGRESS_TASKS_GROUP, "GroupId"),
            source_security_group_id: Expr::att(LOAD_BALANCER_GROUP, "GroupId"),
            ip_protocol: "tcp",
            from_port: PORT,
            to_port: PORT,
            description: "Webhooks and health checks from the load balancer".to_owned(),
        }),
    );
    template.resource(
        LOAD_BALANCER,
        Resource::new(&LoadBalancer {
            kind: "network",
            scheme: "internal",
            subnets: placement.private_subnets.clone(),
            security_groups: vec![Expr::att(LOAD_BALANCER_GROUP, "GroupId")],
            enforce_security_group_inbound_rules_on_private_link_traffic: "off",
            load_balancer_attributes: vec![Attribute {
                key: "load_balancing.cross_zone.enabled",
                value: "true",
            }],
        }),
    );
}

fn add_account_role(template: &mut Template) {
    let role = Resource::new(&Role {
        description: "Lets API Gateway write access logs (account-wide setting)".to_owned(),
        assume_role_policy_document: PolicyDocument::trust("apigateway.amazonaws.com"),
        managed_policy_arns: vec![Expr::sub(
            "arn:${AWS::Partition}:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs",
        )],
        policies: Vec::new(),
    })
    .when(params::CREATES_ACCOUNT_ROLE)
    // The setting is the account's, not the stack's: deleting the stack must not break other
    // stacks' access logs.
    .retain();
    template.resource(ACCOUNT_ROLE, role);
    template.resource(
        ACCOUNT,
        Resource::new(&Account {
            cloud_watch_role_arn: Expr::att(ACCOUNT_ROLE, "Arn"),
        })
        .when(params::CREATES_ACCOUNT_ROLE)
        .retain(),
    );
    template.resource(
        ACCOUNT_READY,
        Resource::new(&WaitConditionHandle {}).metadata(json!({
            "Account": Expr::when(params::CREATES_ACCOUNT_ROLE, Expr::r#ref(ACCOUNT), "".into())
        })),
    );
}

/// Adds an environment's way in: its target group, listener, access log and stage. Returns the
/// target group its ingress service registers with.
pub fn add_environment(
    template: &mut Template,
    env: &EnvironmentName,
    index: usize,
    placement: &Placement,
    deployment: &str,
) -> Expr {
    let title = env.title();
    let target_group = template.resource(
        &format!("{title}TargetGroup"),
        Resource::new(&TargetGroup {
            vpc_id: placement.vpc_id.clone(),
            protocol: "TCP",
            port: PORT,
            target_type: "ip",
            health_check_protocol: "HTTP",
            health_check_path: "/health/ready",
            health_check_interval_seconds: 10,
            health_check_timeout_seconds: 5,
            healthy_threshold_count: 2,
            unhealthy_threshold_count: 2,
            target_group_attributes: vec![Attribute {
                key: "deregistration_delay.timeout_seconds",
                value: "20",
            }],
        }),
    );
    let port = listener_port(index);
    let listener = format!("{title}Listener");
    template.resource(
        &listener,
        Resource::new(&Listener {
            load_balancer_arn: Expr::r#ref(LOAD_BALANCER),
            protocol: "TCP",
            port,
            default_actions: vec![ForwardAction {
                kind: "forward",
                target_group_arn: target_group.clone(),
            }],
        }),
    );
    let access_log = format!("{title}ApiAccessLogGroup");
    template.resource(
        &access_log,
        Resource::new(&LogGroup {
            retention_in_days: Expr::r#ref(params::LOG_RETENTION_DAYS),
        })
        .delete(),
    );
    let mut variables = BTreeMap::new();
    variables.insert(
        "backend",
        Expr::join(
            "",
            vec![
                Expr::att(LOAD_BALANCER, "DNSName"),
                format!(":{port}").into(),
            ],
        ),
    );
    template.resource(
        &format!("{title}Stage"),
        Resource::new(&Stage {
            rest_api_id: Expr::r#ref(API),
            stage_name: env.as_str().to_owned(),
            deployment_id: Expr::r#ref(deployment),
            description: format!("The {} environment", env.as_str()),
            variables,
            access_log_setting: AccessLogSetting {
                destination_arn: Expr::att(&access_log, "Arn"),
                format: access_log_format(),
            },
        })
        .depends_on(&[ACCOUNT_READY, &listener]),
    );
    template.output(
        &format!("{title}WebhookUrl"),
        &format!(
            "The {} environment's webhook URL, for the Benchling app",
            env.as_str()
        ),
        Expr::sub(format!(
            "https://${{{API}}}.execute-api.${{AWS::Region}}.${{AWS::URLSuffix}}/{}",
            env.as_str()
        )),
    );
    target_group
}

fn access_log_format() -> String {
    json!({
        "requestId": "$context.requestId",
        "ip": "$context.identity.sourceIp",
        "requestTime": "$context.requestTime",
        "httpMethod": "$context.httpMethod",
        "path": "$context.path",
        "status": "$context.status",
        "protocol": "$context.protocol",
        "responseLength": "$context.responseLength",
        "integrationStatus": "$context.integration.status",
        "integrationLatency": "$context.integration.latency",
        "error": "$context.error.message",
    })
    .to_string()
}

/// FNV-1a of a value's JSON: stable across builds and platforms, unlike `DefaultHasher`.
fn fingerprint(value: &serde_json::Value) -> u32 {
    let mut hash: u32 = 0x811c_9dc5;
    for byte in value.to_string().bytes() {
        hash ^= u32::from(byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash
}
