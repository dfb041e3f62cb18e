//! `benchling-webhook deploy` against moto: the pre-flight checks, the change set built from the
//! real template (moto cannot execute it: its API Gateway refuses a REST API before its
//! methods), and create-then-update through the change-set path on a reduced template that
//! declares the same parameters.

use std::path::Path;
use std::process::Output;

use bw_testkit::moto::Moto;
use serde_json::{Map, Value, json};

use crate::profiles::{self, stderr, stdout};

/// The AWS side a deployment reads: a Quilt stack, its workgroup, the package bucket, the
/// Benchling secret and an image repository holding `tags`.
struct World {
    quilt_arn: String,
    bucket: String,
    secret: String,
    repository: String,
    stack: String,
}

impl World {
    async fn new(workgroup: &str, tags: &[&str]) -> Self {
        let moto = Moto::shared();
        let config = moto.sdk_config().await;
        let quilt = aws_sdk_cloudformation::Client::new(&config)
            .create_stack()
            .stack_name(Moto::unique_name("quilt"))
            .template_body(
                json!({
                    "Resources": {"PackagerQueue": {"Type": "AWS::SQS::Queue"}},
                    "Outputs": {
                        "PackagerQueueUrl": {"Value": {"Ref": "PackagerQueue"}},
                        "QuiltWebHost": {"Value": "catalog.example.com"},
                        "UserAthenaDatabaseName": {"Value": "userathenadatabase_abc"},
                        "TabulatorOpenQueryWorkGroup": {"Value": workgroup}
                    }
                })
                .to_string(),
            )
            .send()
            .await
            .unwrap();
        let bucket = Moto::unique_name("packages");
        moto.create_bucket(&bucket).await;
        let secret = Moto::unique_name("benchling-webhook/secret");
        aws_sdk_secretsmanager::Client::new(&config)
            .create_secret()
            .name(&secret)
            .secret_string(
                json!({
                    "tenant": "acme", "client_id": "client-1", "client_secret": "s3cr3t-value",
                    "app_definition_id": "appdef_1", "user_bucket": bucket
                })
                .to_string(),
            )
            .send()
            .await
            .unwrap();
        let name = Moto::unique_name("bw");
        let ecr = aws_sdk_ecr::Client::new(&config);
        let created = ecr
            .create_repository()
            .repository_name(&name)
            .send()
            .await
            .unwrap();
        let repository = created
            .repository()
            .and_then(|r| r.repository_uri())
            .unwrap()
            .to_owned();
        for tag in tags {
            ecr.put_image()
                .repository_name(&name)
                .image_tag(*tag)
                .image_manifest(
                    json!({
                        "schemaVersion": 2,
                        "mediaType": "application/vnd.oci.image.manifest.v1+json",
                        "config": {"digest": format!("sha256:{tag}")}
                    })
                    .to_string(),
                )
                .send()
                .await
                .unwrap();
        }
        Self {
            quilt_arn: quilt.stack_id().unwrap().to_owned(),
            bucket,
            secret,
            repository,
            stack: Moto::unique_name("BenchlingWebhookStack"),
        }
    }

    /// The `prod` profile of this world, deploying `tag`.
    fn profile(&self, tag: &str) -> Value {
        let mut profile = profiles::prod(&self.secret);
        profile["quilt"]["stackArn"] = json!(self.quilt_arn);
        profile["packages"]["bucket"] = json!(self.bucket);
        profile["stack"] = json!({"name": self.stack, "region": "us-east-1"});
        profile["image"] = json!({"tag": tag, "repository": self.repository});
        profile
    }
}

async fn create_workgroup(name: &str) {
    aws_sdk_athena::Client::new(&Moto::shared().sdk_config().await)
        .create_work_group()
        .name(name)
        .send()
        .await
        .unwrap();
}

fn deploy(home: &Path, args: &[&str]) -> Output {
    profiles::run(home, "deploy", args)
}

async fn parameters(stack: &str) -> Map<String, Value> {
    let described = aws_sdk_cloudformation::Client::new(&Moto::shared().sdk_config().await)
        .describe_stacks()
        .stack_name(stack)
        .send()
        .await
        .unwrap();
    let stack = &described.stacks()[0];
    let mut found = Map::new();
    found.insert(
        "status".into(),
        json!(stack.stack_status().unwrap().as_str()),
    );
    for parameter in stack.parameters() {
        found.insert(
            parameter.parameter_key().unwrap().to_owned(),
            json!(parameter.parameter_value().unwrap()),
        );
    }
    found
}

fn deployments(home: &Path, profile: &str) -> Vec<Value> {
    let path = home
        .join("benchling-webhook")
        .join(profile)
        .join("deployments.json");
    match std::fs::read(path) {
        Ok(text) => {
            let file: Value = serde_json::from_slice(&text).unwrap();
            assert_eq!(file["schemaVersion"], 1);
            file["deployments"].as_array().unwrap().clone()
        }
        Err(_) => Vec::new(),
    }
}

/// The template's parameters and recorded options for `prod` and `dev`, with a queue per
/// environment tagged by its image tag, so a new tag changes a resource.
fn reduced_template() -> String {
    reduced_template_of(&["prod", "dev"])
}

fn reduced_template_of(environments: &[&str]) -> String {
    let mut parameters = Map::new();
    for name in [
        "PackageBucket",
        "PackagerQueueUrl",
        "QuiltWebHost",
        "AthenaUserDatabase",
        "ImageRepository",
    ] {
        parameters.insert(name.into(), json!({"Type": "String"}));
    }
    for name in ["AthenaWorkgroup", "LogLevel", "AlarmTopicArn"] {
        parameters.insert(name.into(), json!({"Type": "String", "Default": ""}));
    }
    let mut resources = Map::new();
    let titles: Vec<String> = environments
        .iter()
        .map(|e| e[..1].to_uppercase() + &e[1..])
        .collect();
    for env in &titles {
        for name in ["BenchlingSecretARN", "ImageTag"] {
            parameters.insert(
                format!("{env}{name}"),
                json!({"Type": "String", "Default": "unset"}),
            );
        }
        resources.insert(
            format!("{env}ExportQueue"),
            json!({"Type": "AWS::SQS::Queue", "Properties": {
                "Tags": [{"Key": "image", "Value": {"Ref": format!("{env}ImageTag")}}]
            }}),
        );
    }
    json!({
        "Metadata": {"BenchlingWebhook": {"environments": environments}},
        "Parameters": parameters,
        "Resources": resources
    })
    .to_string()
}

#[tokio::test]
async fn deploy_creates_then_updates_one_environment_and_keeps_the_others() {
    let workgroup = Moto::unique_name("wg");
    create_workgroup(&workgroup).await;
    let world = World::new(&workgroup, &["0.1.0", "0.2.0"]).await;
    let home = tempfile::tempdir().unwrap();
    profiles::write(home.path(), "prod", &world.profile("0.1.0"));
    profiles::write(
        home.path(),
        "dev",
        &json!({"_inherits": "prod", "environment": "dev", "image": {"tag": "0.2.0"}}),
    );
    let template = home.path().join("reduced.json");
    std::fs::write(&template, reduced_template()).unwrap();
    let template = template.to_str().unwrap();

    let created = deploy(
        home.path(),
        &[
            "--profile",
            "prod",
            "--yes",
            "--template",
            template,
            "--output",
            "json",
        ],
    );
    assert!(created.status.success(), "{}", stderr(&created));
    let said: Value = serde_json::from_str(&stdout(&created)).unwrap();
    assert_eq!(said["deployed"], true, "{said:#}");
    assert_eq!(said["deployment"]["status"], "CREATE_COMPLETE");
    let after_create = parameters(&world.stack).await;
    assert_eq!(after_create["status"], "CREATE_COMPLETE");
    assert_eq!(after_create["ProdImageTag"], "0.1.0");
    assert_eq!(after_create["AthenaWorkgroup"], json!(workgroup));
    assert_eq!(after_create["QuiltWebHost"], "catalog.example.com");
    assert_eq!(after_create["PackageBucket"], json!(world.bucket));
    assert_eq!(after_create["ImageRepository"], json!(world.repository));
    let secret_arn = after_create["ProdBenchlingSecretARN"].as_str().unwrap();
    assert!(
        secret_arn.starts_with("arn:aws:secretsmanager:") && secret_arn.contains(&world.secret),
        "the secret's name became its full ARN: {secret_arn}"
    );
    assert_eq!(after_create["DevImageTag"], "unset");

    let updated = deploy(
        home.path(),
        &["--profile", "dev", "--yes", "--template", template],
    );
    assert!(updated.status.success(), "{}", stderr(&updated));
    // moto lists no resource changes for a parameter-only update (CloudFormation would name
    // DevExportQueue); the summary line is still there.
    assert!(
        stdout(&updated).contains("change(s)"),
        "{}",
        stdout(&updated)
    );
    let after_update = parameters(&world.stack).await;
    assert_eq!(after_update["status"], "UPDATE_COMPLETE");
    assert_eq!(after_update["DevImageTag"], "0.2.0");
    assert_eq!(after_update["DevBenchlingSecretARN"], json!(secret_arn));
    assert_eq!(
        after_update["ProdImageTag"], "0.1.0",
        "prod keeps its previous values"
    );

    let again = deploy(
        home.path(),
        &["--profile", "dev", "--yes", "--template", template],
    );
    assert!(again.status.success(), "{}", stderr(&again));
    assert!(
        stdout(&again).contains("nothing to deploy"),
        "{}",
        stdout(&again)
    );

    let prod = deployments(home.path(), "prod");
    assert_eq!(prod.len(), 1, "{prod:#?}");
    assert_eq!(prod[0]["outcome"], "succeeded");
    assert_eq!(prod[0]["environment"], "prod");
    assert_eq!(prod[0]["imageTag"], "0.1.0");
    let dev = deployments(home.path(), "dev");
    assert_eq!(
        dev.len(),
        1,
        "an unchanged deploy records nothing: {dev:#?}"
    );
    assert_eq!(dev[0]["status"], "UPDATE_COMPLETE");
    assert_eq!(dev[0]["parameters"]["DevImageTag"], "0.2.0");
    for output in [&created, &updated, &again] {
        assert!(
            !stdout(output).contains("s3cr3t-value") && !stderr(output).contains("s3cr3t-value")
        );
    }
}

#[tokio::test]
async fn every_failed_pre_flight_check_is_named_and_nothing_is_changed() {
    let world = World::new(&Moto::unique_name("missing-wg"), &["0.1.0"]).await;
    let home = tempfile::tempdir().unwrap();
    let mut profile = world.profile("9.9.9");
    profile["benchling"]["secret"] = json!(Moto::unique_name("no-such-secret"));
    profile["packages"]["bucket"] = json!(Moto::unique_name("no-such-bucket"));
    profiles::write(home.path(), "default", &profile);

    let refused = deploy(home.path(), &["--yes"]);
    assert_eq!(refused.status.code(), Some(1));
    let said = stderr(&refused);
    for expected in [
        "FAIL workgroup",
        "FAIL secret",
        "secret sync --profile default",
        "FAIL bucket",
        "set packages.bucket",
        "FAIL image",
        "has no tag 9.9.9",
        "nothing was changed",
    ] {
        assert!(said.contains(expected), "{expected:?} in {said}");
    }
    let cloudformation = aws_sdk_cloudformation::Client::new(&Moto::shared().sdk_config().await);
    assert!(
        cloudformation
            .describe_stacks()
            .stack_name(&world.stack)
            .send()
            .await
            .is_err(),
        "no stack was made"
    );
}

#[tokio::test]
async fn the_real_template_goes_through_a_change_set_that_is_shown_then_discarded_unasked() {
    let workgroup = Moto::unique_name("wg");
    create_workgroup(&workgroup).await;
    let world = World::new(&workgroup, &["0.1.0"]).await;
    let home = tempfile::tempdir().unwrap();
    profiles::write(home.path(), "default", &world.profile("0.1.0"));

    let out = home.path().join("dry");
    let dry = deploy(home.path(), &["--dry-run", "--out", out.to_str().unwrap()]);
    assert!(dry.status.success(), "{}", stderr(&dry));
    let template: Value =
        serde_json::from_slice(&std::fs::read(out.join("template.json")).unwrap()).unwrap();
    assert_eq!(
        template["Metadata"]["BenchlingWebhook"]["environments"],
        json!(["prod"])
    );
    assert!(template["Resources"]["ProdIngressService"].is_object());
    let parameters: Value =
        serde_json::from_slice(&std::fs::read(out.join("parameters.json")).unwrap()).unwrap();
    let value = |key: &str| {
        parameters
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["ParameterKey"] == key)
            .map(|p| p["ParameterValue"].clone())
    };
    assert_eq!(value("ProdImageTag"), Some(json!("0.1.0")));
    assert!(
        value("PackagerQueueUrl")
            .and_then(|v| v.as_str().map(str::to_owned))
            .is_some_and(|url| url.contains("PackagerQueue")),
        "the Quilt stack's output: {parameters:#}"
    );
    assert_eq!(
        value("LogRetentionDays"),
        None,
        "defaults are left to the template"
    );

    let unasked = deploy(home.path(), &[]);
    assert_eq!(unasked.status.code(), Some(1));
    let shown = stdout(&unasked);
    assert!(shown.contains("ProdIngressService"), "{shown}");
    assert!(shown.contains("AWS::ECS::Service"), "{shown}");
    assert!(stderr(&unasked).contains("--yes"), "{}", stderr(&unasked));
    let moto = Moto::shared();
    let uploaded = moto
        .s3_client()
        .await
        .list_objects_v2()
        .bucket(&world.bucket)
        .prefix(format!(
            ".benchling-webhook/cloudformation/{}/",
            world.stack
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(uploaded.contents().len(), 1, "the template went by URL");
    let cloudformation = aws_sdk_cloudformation::Client::new(&moto.sdk_config().await);
    let left = cloudformation
        .describe_stacks()
        .stack_name(&world.stack)
        .send()
        .await;
    let status = left
        .ok()
        .and_then(|d| d.stacks().first().and_then(|s| s.stack_status().cloned()));
    assert!(
        status.is_none()
            || status
                .as_ref()
                .is_some_and(|s| s.as_str() == "DELETE_COMPLETE"),
        "the declined change set's empty stack is deleted: {status:?}"
    );
    assert!(deployments(home.path(), "default").is_empty());

    // Executed, the real template fails on moto (its API Gateway wants the methods before the
    // REST API): the failure is reported with CloudFormation's reason and recorded.
    let failed = deploy(home.path(), &["--yes"]);
    assert_eq!(failed.status.code(), Some(1));
    assert!(
        stderr(&failed).contains("the deployment failed")
            && stderr(&failed).contains("doesn't contain any methods"),
        "{}",
        stderr(&failed)
    );
    let recorded = deployments(home.path(), "default");
    assert_eq!(recorded.len(), 1, "{recorded:#?}");
    assert_eq!(recorded[0]["outcome"], "failed");
    assert!(recorded[0]["reason"].as_str().unwrap().contains("methods"));
}

fn destroy(home: &Path, args: &[&str]) -> Output {
    profiles::run(home, "destroy", args)
}

#[tokio::test]
async fn destroy_asks_then_deletes_the_last_environment_stack_and_keeps_the_bucket() {
    let workgroup = Moto::unique_name("wg");
    create_workgroup(&workgroup).await;
    let world = World::new(&workgroup, &["0.1.0"]).await;
    let home = tempfile::tempdir().unwrap();
    profiles::write(home.path(), "default", &world.profile("0.1.0"));
    let template = home.path().join("reduced.json");
    std::fs::write(&template, reduced_template_of(&["prod"])).unwrap();
    let created = deploy(
        home.path(),
        &["--yes", "--template", template.to_str().unwrap()],
    );
    assert!(created.status.success(), "{}", stderr(&created));

    let unasked = destroy(home.path(), &[]);
    assert_eq!(unasked.status.code(), Some(1));
    assert!(stderr(&unasked).contains("--yes"), "{}", stderr(&unasked));
    assert!(
        stderr(&unasked).contains("the bucket and its packages stay"),
        "{}",
        stderr(&unasked)
    );
    assert_eq!(parameters(&world.stack).await["status"], "CREATE_COMPLETE");

    let destroyed = destroy(home.path(), &["--yes", "--output", "json"]);
    assert!(destroyed.status.success(), "{}", stderr(&destroyed));
    let said: Value = serde_json::from_str(&stdout(&destroyed)).unwrap();
    assert_eq!(said["destroyed"]["status"], "DELETE_COMPLETE", "{said:#}");
    let moto = Moto::shared();
    let cloudformation = aws_sdk_cloudformation::Client::new(&moto.sdk_config().await);
    let gone = cloudformation
        .describe_stacks()
        .stack_name(&world.stack)
        .send()
        .await;
    assert!(
        gone.map_or(true, |d| d.stacks().iter().all(|s| s
            .stack_status()
            .is_some_and(|s| s.as_str() == "DELETE_COMPLETE"))),
        "the stack is deleted"
    );
    moto.s3_client()
        .await
        .head_bucket()
        .bucket(&world.bucket)
        .send()
        .await
        .expect("the package bucket stays");
    let recorded = deployments(home.path(), "default");
    assert_eq!(recorded.last().unwrap()["changeSet"], "delete-stack");

    let again = destroy(home.path(), &["--yes"]);
    assert!(again.status.success(), "{}", stderr(&again));
    assert!(
        stdout(&again).contains("nothing to destroy"),
        "{}",
        stdout(&again)
    );
}
