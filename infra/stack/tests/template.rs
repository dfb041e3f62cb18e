//! Properties of the emitted template, read back from its JSON the way CloudFormation reads it,
//! and `cfn-lint` over the four shapes operators deploy.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use bw_stack::{Cidr, EnvironmentName, Format, Network, StackOptions};
use serde_json::{Value, json};

const SUBNETS: [&str; 2] = ["subnet-0123456789abcdef0", "subnet-0fedcba9876543210"];

fn options(envs: &[&str], existing_vpc: bool, allow: &[&str]) -> StackOptions {
    let envs = envs
        .iter()
        .map(|e| e.parse::<EnvironmentName>().unwrap())
        .collect();
    let network = if existing_vpc {
        let subnets: Vec<String> = SUBNETS.iter().map(|s| (*s).to_owned()).collect();
        Network::existing("vpc-0123456789abcdef0", &subnets).unwrap()
    } else {
        Network::New
    };
    let allow = allow.iter().map(|c| c.parse::<Cidr>().unwrap()).collect();
    StackOptions::new(envs, network, allow).unwrap()
}

fn template(envs: &[&str]) -> Value {
    bw_stack::build(&options(envs, false, &[])).to_json()
}

fn resources(t: &Value) -> &serde_json::Map<String, Value> {
    t["Resources"].as_object().unwrap()
}

fn of_type<'a>(t: &'a Value, kind: &str) -> Vec<(&'a String, &'a Value)> {
    resources(t)
        .iter()
        .filter(|(_, r)| r["Type"] == kind)
        .collect()
}

/// A resource reference in a readable form: `GetAtt X.Arn` and `Ref X` → `X`, `Fn::Sub` → its
/// pattern, anything else → its JSON.
fn describe(value: &Value) -> String {
    if let Some(name) = value.get("Ref").and_then(Value::as_str) {
        return name.to_owned();
    }
    if let Some([resource, _]) = value
        .get("Fn::GetAtt")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
    {
        return resource.as_str().unwrap().to_owned();
    }
    match value.get("Fn::Sub") {
        Some(Value::String(pattern)) => pattern.clone(),
        Some(Value::Array(parts)) => parts[0].as_str().unwrap().to_owned(),
        _ => value
            .as_str()
            .map_or_else(|| value.to_string(), str::to_owned),
    }
}

/// Every (action, resource) pair a policy document allows, conditional statements included.
fn grants(document: &Value) -> BTreeSet<(String, String)> {
    let mut pairs = BTreeSet::new();
    for statement in document["Statement"].as_array().unwrap() {
        let statement = statement
            .get("Fn::If")
            .map_or(statement, |branches| &branches[1]);
        assert_eq!(statement["Effect"], "Allow");
        for action in statement["Action"].as_array().unwrap() {
            for resource in statement["Resource"].as_array().unwrap() {
                pairs.insert((action.as_str().unwrap().to_owned(), describe(resource)));
            }
        }
    }
    pairs
}

fn task_role_grants(t: &Value, id: &str) -> BTreeSet<(String, String)> {
    let policies = t["Resources"][id]["Properties"]["Policies"]
        .as_array()
        .unwrap();
    assert_eq!(policies.len(), 1, "{id}");
    grants(&policies[0]["PolicyDocument"])
}

fn pairs(table: &[(&[&str], &[&str])]) -> BTreeSet<(String, String)> {
    table
        .iter()
        .flat_map(|(actions, resources)| {
            actions.iter().flat_map(move |a| {
                resources
                    .iter()
                    .map(move |r| ((*a).to_owned(), (*r).to_owned()))
            })
        })
        .collect()
}

const BUCKET: &str = "arn:${AWS::Partition}:s3:::${PackageBucket}";
const OBJECTS: &str = "arn:${AWS::Partition}:s3:::${PackageBucket}/*";
const RECORDS: &str = "arn:${AWS::Partition}:s3:::${PackageBucket}/.benchling-webhook/*";
const CONSUME: &[&str] = &[
    "sqs:ReceiveMessage",
    "sqs:ChangeMessageVisibility",
    "sqs:DeleteMessage",
    "sqs:GetQueueAttributes",
];
const DEAD_LETTER: &[&str] = &["sqs:GetQueueUrl", "sqs:SendMessage"];
const SECRET: &[&str] = &["secretsmanager:GetSecretValue"];

#[test]
fn each_task_role_holds_exactly_its_own_actions_and_resources() {
    let t = template(&["dev", "prod"]);
    for env in ["Dev", "Prod"] {
        let q = |name: &str| format!("{env}{name}");
        let secret = format!("{env}BenchlingSecretARN");
        let (export, render, canvas, events) = (
            q("ExportQueue"),
            q("RenderQueue"),
            q("CanvasQueue"),
            q("PackageEventQueue"),
        );
        let (export_dlq, render_dlq, canvas_dlq, events_dlq) = (
            q("ExportDeadLetterQueue"),
            q("RenderDeadLetterQueue"),
            q("CanvasDeadLetterQueue"),
            q("PackageEventDeadLetterQueue"),
        );
        let packager_queue = "arn:${AWS::Partition}:sqs:${Region}:${Account}:${Name}";
        let workgroup = "arn:${AWS::Partition}:athena:${AWS::Region}:${AWS::AccountId}:workgroup/${AthenaWorkgroup}";
        let glue = [
            "arn:${AWS::Partition}:glue:${AWS::Region}:${AWS::AccountId}:catalog",
            "arn:${AWS::Partition}:glue:${AWS::Region}:${AWS::AccountId}:database/${AthenaUserDatabase}",
            "arn:${AWS::Partition}:glue:${AWS::Region}:${AWS::AccountId}:table/${AthenaUserDatabase}/*",
        ];
        let results = [
            "arn:${AWS::Partition}:s3:::${Bucket}",
            "arn:${AWS::Partition}:s3:::${Path}*",
        ];
        let rw = &[
            "s3:GetObject",
            "s3:PutObject",
            "s3:DeleteObject",
            "s3:AbortMultipartUpload",
        ][..];
        let expected: [(&str, BTreeSet<(String, String)>); 4] = [
            (
                "Ingress",
                pairs(&[
                    (SECRET, &[&secret]),
                    (
                        &["sqs:SendMessage", "sqs:GetQueueAttributes"],
                        &[&export, &canvas],
                    ),
                ]),
            ),
            (
                "Exporter",
                pairs(&[
                    (SECRET, &[&secret]),
                    (CONSUME, &[&export]),
                    (DEAD_LETTER, &[&export_dlq]),
                    (&["sqs:SendMessage"], &[&render, &canvas]),
                    (&["s3:ListBucket"], &[BUCKET]),
                    (rw, &[OBJECTS]),
                ]),
            ),
            (
                "Packager",
                pairs(&[
                    (SECRET, &[&secret]),
                    (CONSUME, &[&render]),
                    (DEAD_LETTER, &[&render_dlq]),
                    (&["sqs:SendMessage"], &[&canvas, packager_queue]),
                    (&["s3:ListBucket"], &[BUCKET]),
                    (rw, &[OBJECTS]),
                ]),
            ),
            (
                "Canvas",
                pairs(&[
                    (SECRET, &[&secret]),
                    (CONSUME, &[&canvas, &events]),
                    (DEAD_LETTER, &[&canvas_dlq, &events_dlq]),
                    (&["sqs:SendMessage"], &[&export, &canvas]),
                    (&["s3:ListBucket"], &[BUCKET]),
                    (&["s3:GetObject"], &[OBJECTS]),
                    (&["s3:PutObject"], &[RECORDS]),
                    (
                        &[
                            "athena:StartQueryExecution",
                            "athena:GetQueryExecution",
                            "athena:GetQueryResults",
                            "athena:GetWorkGroup",
                        ],
                        &[workgroup],
                    ),
                    (
                        &["glue:GetDatabase", "glue:GetTable", "glue:GetPartitions"],
                        &glue,
                    ),
                    (
                        &[
                            "s3:GetBucketLocation",
                            "s3:ListBucket",
                            "s3:GetObject",
                            "s3:PutObject",
                            "s3:AbortMultipartUpload",
                        ],
                        &results,
                    ),
                ]),
            ),
        ];
        for (service, expected) in expected {
            let id = format!("{env}{service}TaskRole");
            assert_eq!(task_role_grants(&t, &id), expected, "{id}");
        }
    }
}

#[test]
fn no_wildcard_actions_and_star_resources_only_where_iam_has_no_resource_level_permissions() {
    let t = template(&["dev", "prod"]);
    let mut star = BTreeSet::new();
    for (id, role) in of_type(&t, "AWS::IAM::Role") {
        for policy in role["Properties"]["Policies"]
            .as_array()
            .into_iter()
            .flatten()
        {
            for (action, resource) in grants(&policy["PolicyDocument"]) {
                assert!(!action.contains('*'), "{id}: {action}");
                assert!(
                    !resource.contains(":*:") && !resource.ends_with(":*"),
                    "{id}: {resource}"
                );
                if resource == "*" {
                    star.insert(action);
                }
            }
        }
    }
    assert_eq!(
        star,
        BTreeSet::from(["ecr:GetAuthorizationToken".to_owned()])
    );
}

#[test]
fn execution_roles_pull_from_the_repository_parameter_and_write_their_own_logs() {
    let t = template(&["prod"]);
    let role = &t["Resources"]["ProdExecutionRole"]["Properties"];
    let grants = grants(&role["Policies"][0]["PolicyDocument"]);
    let repository = "arn:${AWS::Partition}:ecr:${Region}:${Account}:repository/${Name}";
    assert!(grants.contains(&("ecr:BatchGetImage".to_owned(), repository.to_owned())));
    assert!(grants.contains(&("logs:PutLogEvents".to_owned(), "ProdLogGroup".to_owned())));
    assert!(role.get("ManagedPolicyArns").is_none());
    let text = t.to_string();
    assert!(!text.contains("712023778557"), "no literal account");
}

#[test]
fn every_queue_has_a_dead_letter_queue_an_alarm_and_an_explicit_visibility_timeout() {
    let t = template(&["dev", "prod"]);
    let queues = of_type(&t, "AWS::SQS::Queue");
    let alarmed: BTreeSet<String> = of_type(&t, "AWS::CloudWatch::Alarm")
        .iter()
        .filter_map(|(_, a)| a["Properties"]["Dimensions"].as_array())
        .flatten()
        .map(|d| describe(&d["Value"]))
        .collect();
    let mut sources = 0;
    for (id, queue) in &queues {
        let props = &queue["Properties"];
        assert!(props["VisibilityTimeout"].as_u64().unwrap() > 0, "{id}");
        if id.contains("DeadLetter") {
            continue;
        }
        sources += 1;
        let dlq = describe(&props["RedrivePolicy"]["deadLetterTargetArn"]);
        let dlq_props = &t["Resources"][&dlq]["Properties"];
        assert_eq!(
            dlq_props["FifoQueue"], props["FifoQueue"],
            "{id}: FIFO DLQ for FIFO"
        );
        assert!(alarmed.contains(&dlq), "{id}: no alarm on {dlq}");
        if props["FifoQueue"] == true {
            assert_eq!(props["ContentBasedDeduplication"], false, "{id}");
        }
    }
    assert_eq!(sources, 8, "four queues per environment");
    assert_eq!(queues.len(), 16);
    for env in ["Dev", "Prod"] {
        for (queue, fifo) in [
            ("Export", true),
            ("Render", true),
            ("Canvas", true),
            ("PackageEvent", false),
        ] {
            let props = &t["Resources"][format!("{env}{queue}Queue")]["Properties"];
            assert_eq!(props["FifoQueue"] == true, fifo, "{env}{queue}");
        }
    }
}

#[test]
fn every_task_runs_as_1000_on_a_read_only_root_with_a_health_check_of_its_binary() {
    let t = template(&["dev", "prod"]);
    let tasks = of_type(&t, "AWS::ECS::TaskDefinition");
    assert_eq!(tasks.len(), 8);
    for (id, task) in tasks {
        let containers = task["Properties"]["ContainerDefinitions"]
            .as_array()
            .unwrap();
        assert_eq!(containers.len(), 1, "{id}");
        let c = &containers[0];
        let binary = format!("/usr/local/bin/{}", c["Name"].as_str().unwrap());
        assert_eq!(c["User"], "1000:1000", "{id}");
        assert_eq!(c["ReadonlyRootFilesystem"], true, "{id}");
        assert_eq!(c["Command"], json!([binary]), "{id}");
        assert_eq!(
            c["HealthCheck"]["Command"],
            json!(["CMD", binary, "--health"]),
            "{id}"
        );
        assert_eq!(c["MountPoints"][0]["ContainerPath"], "/tmp", "{id}");
        let shutdown: u64 = env_value(c, "SHUTDOWN_TIMEOUT_SECS")
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(c["StopTimeout"].as_u64().unwrap() > shutdown, "{id}");
    }
    let exporter = &t["Resources"]["ProdExporterTaskDefinition"]["Properties"];
    let storage = exporter["EphemeralStorage"]["SizeInGiB"].as_u64().unwrap();
    let c = &exporter["ContainerDefinitions"][0];
    let download: u64 = env_value(c, "DOWNLOAD_MAX_BYTES")
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let concurrency: u64 = env_value(c, "WORKER_CONCURRENCY")
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        storage << 30 > download * concurrency,
        "exporter storage holds its downloads"
    );
}

fn env_value<'a>(container: &'a Value, name: &str) -> &'a Value {
    container["Environment"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["Name"] == name)
        .map(|v| &v["Value"])
        .unwrap_or_else(|| panic!("{name} not set"))
}

#[test]
fn each_service_gets_exactly_the_variables_it_reads() {
    let t = template(&["prod"]);
    let common = [
        "BenchlingSecret",
        "PACKAGE_BUCKET",
        "LOG_LEVEL",
        "AWS_REGION",
        "PORT",
        "SHUTDOWN_TIMEOUT_SECS",
        "OTEL_SERVICE_NAME",
    ];
    let expected: [(&str, &[&str]); 4] = [
        ("ingress", &["EXPORT_QUEUE_URL", "CANVAS_QUEUE_URL"]),
        (
            "exporter",
            &[
                "EXPORT_QUEUE_URL",
                "RENDER_QUEUE_URL",
                "CANVAS_QUEUE_URL",
                "WORKER_CONCURRENCY",
                "DOWNLOAD_MAX_BYTES",
                "ARCHIVE_MAX_TOTAL_BYTES",
                "EXPORT_TEMP_DIR",
            ],
        ),
        (
            "packager",
            &["RENDER_QUEUE_URL", "CANVAS_QUEUE_URL", "PACKAGER_SQS_URL"],
        ),
        (
            "canvas",
            &[
                "EXPORT_QUEUE_URL",
                "CANVAS_QUEUE_URL",
                "PACKAGE_EVENT_QUEUE_URL",
                "QUILT_WEB_HOST",
                "ATHENA_USER_DATABASE",
                "BENCHLING_ATHENA_WORKGROUP",
                "ATHENA_OUTPUT_LOCATION",
            ],
        ),
    ];
    let shared_source = source_text(&["shared"]);
    for (service, own) in expected {
        let id = format!(
            "Prod{}{}TaskDefinition",
            service[..1].to_uppercase(),
            &service[1..]
        );
        let c = &t["Resources"][&id]["Properties"]["ContainerDefinitions"][0];
        let names: BTreeSet<&str> = c["Environment"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["Name"].as_str().unwrap())
            .collect();
        let wanted: BTreeSet<&str> = common.iter().chain(own).copied().collect();
        assert_eq!(names, wanted, "{service}");
        // Each name is one the code reads: in the service's crate or the shared crates (the
        // AWS SDK reads AWS_REGION itself).
        let service_source = source_text(&[&format!("services/{service}")]);
        for name in names {
            let quoted = format!("\"{name}\"");
            assert!(
                name == "AWS_REGION"
                    || service_source.contains(&quoted)
                    || shared_source.contains(&quoted),
                "{service}: {name} is read nowhere"
            );
        }
    }
    // The queue URL of each service is the queue of its own environment.
    let c = &t["Resources"]["ProdCanvasTaskDefinition"]["Properties"]["ContainerDefinitions"][0];
    assert_eq!(
        env_value(c, "PACKAGE_EVENT_QUEUE_URL"),
        &json!({"Ref": "ProdPackageEventQueue"})
    );
    assert_eq!(
        env_value(c, "BENCHLING_ATHENA_WORKGROUP"),
        &json!({"Ref": "AthenaWorkgroup"})
    );
}

/// The Rust sources under `dirs` (relative to the workspace root), concatenated.
fn source_text(dirs: &[&str]) -> String {
    fn walk(dir: &std::path::Path, out: &mut String) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                if path.file_name().is_some_and(|n| n != "tests") {
                    walk(&path, out);
                }
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push_str(&std::fs::read_to_string(&path).unwrap());
            }
        }
    }
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut out = String::new();
    for dir in dirs {
        walk(&root.join(dir), &mut out);
    }
    out
}

#[test]
fn stages_route_to_their_own_environment() {
    let t = bw_stack::build(&options(&["dev", "prod", "qa"], true, &[])).to_json();
    let mut ports = BTreeSet::new();
    for env in ["Dev", "Prod", "Qa"] {
        let stage = &t["Resources"][format!("{env}Stage")]["Properties"];
        assert_eq!(stage["StageName"], env.to_lowercase());
        let backend = &stage["Variables"]["backend"]["Fn::Join"][1];
        assert_eq!(
            backend[0],
            json!({"Fn::GetAtt": ["LoadBalancer", "DNSName"]})
        );
        let port: u64 = backend[1]
            .as_str()
            .unwrap()
            .trim_start_matches(':')
            .parse()
            .unwrap();
        let listener = &t["Resources"][format!("{env}Listener")]["Properties"];
        assert_eq!(
            listener["Port"], port,
            "{env}: the stage's port is its listener's"
        );
        assert!(ports.insert(port), "{env}: port {port} shared");
        let target_group = describe(&listener["DefaultActions"][0]["TargetGroupArn"]);
        assert_eq!(target_group, format!("{env}TargetGroup"));
        let service = &t["Resources"][format!("{env}IngressService")]["Properties"];
        assert_eq!(
            describe(&service["LoadBalancers"][0]["TargetGroupArn"]),
            target_group
        );
        let health = &t["Resources"][&target_group]["Properties"];
        assert_eq!(health["HealthCheckPath"], "/health/ready");
        let url = describe(&t["Outputs"][format!("{env}WebhookUrl")]["Value"]);
        assert!(url.ends_with(&format!("/{}", env.to_lowercase())), "{url}");
    }
    for method in ["ApiRootMethod", "ApiProxyMethod"] {
        let uri = t["Resources"][method]["Properties"]["Integration"]["Uri"]
            .as_str()
            .unwrap();
        assert!(
            uri.starts_with("http://${stageVariables.backend}/"),
            "{uri}"
        );
    }
}

#[test]
fn the_workgroup_arn_follows_the_parameter() {
    let t = template(&["prod"]);
    assert_eq!(t["Parameters"]["AthenaWorkgroup"]["Default"], "primary");
    let grants = task_role_grants(&t, "ProdCanvasTaskRole");
    let athena: BTreeSet<&String> = grants
        .iter()
        .filter(|(a, _)| a.starts_with("athena:"))
        .map(|(_, r)| r)
        .collect();
    assert_eq!(athena.len(), 1);
    assert!(
        athena
            .iter()
            .all(|r| r.ends_with(":workgroup/${AthenaWorkgroup}"))
    );
    assert!(!t.to_string().contains("workgroup/primary"));
}

#[test]
fn environments_share_the_network_cluster_and_balancer_and_own_everything_else() {
    let t = template(&["dev", "prod"]);
    for shared in ["Vpc", "Cluster", "LoadBalancer", "Api", "VpcLink"] {
        assert!(t["Resources"].get(shared).is_some(), "{shared}");
    }
    assert_eq!(of_type(&t, "AWS::ECS::Cluster").len(), 1);
    assert_eq!(
        of_type(&t, "AWS::ElasticLoadBalancingV2::LoadBalancer").len(),
        1
    );
    assert_eq!(of_type(&t, "AWS::ApiGateway::RestApi").len(), 1);
    assert_eq!(of_type(&t, "AWS::ECS::Service").len(), 8);
    for env in ["Dev", "Prod"] {
        for service in ["Ingress", "Exporter", "Packager", "Canvas"] {
            for suffix in ["Service", "TaskRole", "TaskDefinition", "ScalableTarget"] {
                let id = format!("{env}{service}{suffix}");
                assert!(t["Resources"].get(&id).is_some(), "{id}");
            }
        }
        for parameter in ["BenchlingSecretARN", "ImageTag"] {
            assert!(t["Parameters"].get(format!("{env}{parameter}")).is_some());
        }
        for output in [
            "WebhookUrl",
            "ExportQueueUrl",
            "RenderQueueUrl",
            "CanvasQueueUrl",
            "PackageEventQueueUrl",
            "LogGroupName",
        ] {
            assert!(
                t["Outputs"].get(format!("{env}{output}")).is_some(),
                "{env}{output}"
            );
        }
        // Each environment's tasks run its own image tag.
        let image = &t["Resources"][format!("{env}IngressTaskDefinition")]["Properties"]["ContainerDefinitions"]
            [0]["Image"];
        assert_eq!(
            describe(image),
            format!("${{ImageRepository}}:${{{env}ImageTag}}")
        );
    }
}

#[test]
fn workers_scale_on_their_own_queues_and_can_leave_zero() {
    let t = template(&["prod"]);
    let expected = [
        ("Exporter", vec!["ProdExportQueue"]),
        ("Packager", vec!["ProdRenderQueue"]),
        ("Canvas", vec!["ProdCanvasQueue", "ProdPackageEventQueue"]),
    ];
    for (service, queues) in expected {
        let target = &t["Resources"][format!("Prod{service}ScalableTarget")]["Properties"];
        assert_eq!(target["MinCapacity"], json!({"Ref": "ProdWorkerMinTasks"}));
        assert_eq!(target["MaxCapacity"], json!({"Ref": "ProdMaxTasks"}));
        let policy = &t["Resources"][format!("Prod{service}BacklogScaling")]["Properties"];
        assert_eq!(
            describe(&policy["ScalingTargetId"]),
            format!("Prod{service}ScalableTarget")
        );
        let metrics = policy["TargetTrackingScalingPolicyConfiguration"]["CustomizedMetricSpecification"]["Metrics"]
            .as_array()
            .unwrap();
        let watched: BTreeSet<String> = metrics
            .iter()
            .filter(|m| m["MetricStat"]["Metric"]["Namespace"] == "AWS/SQS")
            .map(|m| describe(&m["MetricStat"]["Metric"]["Dimensions"][0]["Value"]))
            .collect();
        let queues: BTreeSet<String> = queues.iter().map(|q| (*q).to_owned()).collect();
        assert_eq!(watched, queues, "{service}");
        assert_eq!(
            metrics.iter().filter(|m| m["ReturnData"] == true).count(),
            1
        );
        let wake = &t["Resources"][format!("Prod{service}WakeAlarm")]["Properties"];
        assert_eq!(
            describe(&wake["AlarmActions"][0]),
            format!("Prod{service}WakeScaling")
        );
    }
    assert_eq!(
        t["Parameters"]["ProdWorkerMinTasks"]["AllowedValues"],
        json!(["0", "1"])
    );
    let ingress = &t["Resources"]["ProdIngressCpuScaling"]["Properties"];
    assert_eq!(
        ingress["TargetTrackingScalingPolicyConfiguration"]["PredefinedMetricSpecification"]["PredefinedMetricType"],
        "ECSServiceAverageCPUUtilization"
    );
}

#[test]
fn package_events_come_only_from_quilt_for_the_package_bucket() {
    let t = template(&["prod"]);
    let rule = &t["Resources"]["ProdPackageEventRule"]["Properties"];
    assert_eq!(
        rule["EventPattern"],
        json!({
            "source": ["com.quiltdata"],
            "detail-type": ["package-revision"],
            "detail": {"bucket": [{"Ref": "PackageBucket"}]},
        })
    );
    assert_eq!(
        describe(&rule["Targets"][0]["Arn"]),
        "ProdPackageEventQueue"
    );
    let policy = &t["Resources"]["ProdPackageEventQueuePolicy"]["Properties"]["PolicyDocument"];
    assert_eq!(
        policy["Statement"][0]["Condition"],
        json!({"ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": ["ProdPackageEventRule", "Arn"]}}})
    );
}

#[test]
fn the_allowlist_and_the_account_role_are_opt_in() {
    let open = template(&["prod"]);
    let statement = &open["Resources"]["Api"]["Properties"]["Policy"]["Statement"][0];
    assert!(statement.get("Condition").is_none());
    let closed = bw_stack::build(&options(
        &["prod"],
        false,
        &["203.0.113.0/24", "198.51.100.7"],
    ))
    .to_json();
    let statement = &closed["Resources"]["Api"]["Properties"]["Policy"]["Statement"][0];
    assert_eq!(
        statement["Condition"],
        json!({"IpAddress": {"aws:SourceIp": ["203.0.113.0/24", "198.51.100.7"]}})
    );
    assert_eq!(
        open["Parameters"]["CreateApiGatewayAccountRole"]["Default"],
        "false"
    );
    for id in ["ApiGatewayAccount", "ApiGatewayCloudWatchRole"] {
        let r = &open["Resources"][id];
        assert_eq!(r["Condition"], "CreatesApiGatewayAccountRole", "{id}");
        assert_eq!(r["DeletionPolicy"], "Retain", "{id}");
    }
}

#[test]
fn no_lambda_or_custom_resources_and_networks_as_asked() {
    let new = template(&["prod"]);
    let existing = bw_stack::build(&options(&["prod"], true, &[])).to_json();
    for t in [&new, &existing] {
        for (id, r) in resources(t) {
            let kind = r["Type"].as_str().unwrap();
            assert!(
                !kind.starts_with("AWS::Lambda") && !kind.starts_with("Custom::"),
                "{id}: {kind}"
            );
        }
    }
    assert_eq!(of_type(&new, "AWS::EC2::NatGateway").len(), 2);
    assert_eq!(of_type(&new, "AWS::EC2::Subnet").len(), 4);
    assert!(of_type(&existing, "AWS::EC2::VPC").is_empty());
    let service = &existing["Resources"]["ProdExporterService"]["Properties"];
    assert_eq!(
        service["NetworkConfiguration"]["AwsvpcConfiguration"]["Subnets"],
        json!(SUBNETS)
    );
}

#[test]
fn the_same_options_give_the_same_text() {
    let o = options(&["dev", "prod"], false, &["203.0.113.0/24"]);
    for format in [Format::Yaml, Format::Json] {
        assert_eq!(
            bw_stack::render(&bw_stack::build(&o), format),
            bw_stack::render(&bw_stack::build(&o), format)
        );
    }
}

/// `cfn-lint` (installed by `scripts/test`) over the shapes operators deploy, in both formats;
/// and the YAML read back equal to the JSON.
#[test]
fn cfn_lint_passes_on_every_shape() {
    let dir = tempfile::tempdir().unwrap();
    let shapes: BTreeMap<&str, StackOptions> = BTreeMap::from([
        ("new-vpc-prod", options(&["prod"], false, &[])),
        (
            "new-vpc-prod-allowlist",
            options(&["prod"], false, &["203.0.113.0/24"]),
        ),
        (
            "existing-vpc-dev-prod",
            options(&["dev", "prod"], true, &[]),
        ),
        (
            "existing-vpc-dev-prod-allowlist",
            options(&["dev", "prod"], true, &["198.51.100.0/24", "203.0.113.9"]),
        ),
    ]);
    let mut files = Vec::new();
    for (name, o) in &shapes {
        let template = bw_stack::build(o);
        for (format, ext) in [(Format::Yaml, "yaml"), (Format::Json, "json")] {
            let path = dir.path().join(format!("{name}.{ext}"));
            std::fs::write(&path, bw_stack::render(&template, format)).unwrap();
            files.push(path);
        }
    }
    let lint = Command::new("cfn-lint")
        .arg("--")
        .args(&files)
        .output()
        .expect("cfn-lint is not on PATH: run ./scripts/test, which installs it into .venv");
    assert!(
        lint.status.success(),
        "cfn-lint failed:\n{}{}",
        String::from_utf8_lossy(&lint.stdout),
        String::from_utf8_lossy(&lint.stderr)
    );
    // cfn-lint's Python has PyYAML: the YAML must mean exactly what the JSON says.
    let same = Command::new("python3")
        .args([
            "-c",
            "import json, sys, yaml\nfor name in sys.argv[1:]:\n    assert yaml.safe_load(open(name + '.yaml')) == json.load(open(name + '.json')), name",
        ])
        .args(shapes.keys().map(|name| dir.path().join(name)))
        .output()
        .unwrap();
    assert!(
        same.status.success(),
        "{}",
        String::from_utf8_lossy(&same.stderr)
    );
}
