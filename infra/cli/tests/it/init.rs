//! `benchling-webhook init` against CloudFormation on moto: a fake Quilt stack with the outputs
//! a deployment reads, found by ARN and by catalog host; a stack missing an output is named.

use std::process::{Command, Output};

use bw_testkit::moto::Moto;
use serde_json::{Value, json};

use crate::profiles::stderr;

/// A Quilt-like stack: a real queue, and the outputs the resolver reads.
fn quilt_template(host: &str, with_database: bool) -> String {
    let mut outputs = json!({
        "PackagerQueueUrl": {"Value": {"Ref": "PackagerQueue"}},
        "QuiltWebHost": {"Value": host},
        "TabulatorOpenQueryWorkGroup": {"Value": "quilt-tabulator"}
    });
    if with_database {
        outputs["UserAthenaDatabaseName"] = json!({"Value": "userathenadatabase_abc"});
    }
    json!({
        "Resources": {"PackagerQueue": {"Type": "AWS::SQS::Queue"}},
        "Outputs": outputs
    })
    .to_string()
}

async fn create_stack(name: &str, template: String) -> String {
    let cloudformation = aws_sdk_cloudformation::Client::new(&Moto::shared().sdk_config().await);
    cloudformation
        .create_stack()
        .stack_name(name)
        .template_body(template)
        .send()
        .await
        .unwrap()
        .stack_id()
        .unwrap()
        .to_owned()
}

fn init(config_home: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_benchling-webhook"))
        .arg("init")
        .args(args)
        .args([
            "--tenant",
            "acme",
            "--client-id",
            "client-1",
            "--app-definition-id",
            "appdef_1",
            "--bucket",
            "acme-packages",
        ])
        .env("XDG_CONFIG_HOME", config_home)
        .envs(Moto::shared().env())
        .output()
        .unwrap()
}

#[tokio::test]
async fn init_finds_the_quilt_stack_by_arn_or_catalog_and_writes_the_profile() {
    let host = format!("{}.quilt.example.com", Moto::unique_name("catalog"));
    let arn = create_stack(&Moto::unique_name("quilt"), quilt_template(&host, true)).await;
    let home = tempfile::tempdir().unwrap();

    let by_arn = init(home.path(), &["--quilt-stack-arn", &arn]);
    assert!(by_arn.status.success(), "{}", stderr(&by_arn));
    let said = String::from_utf8_lossy(&by_arn.stdout);
    assert!(said.contains("workgroup quilt-tabulator"), "{said}");
    assert!(
        !said.contains("123456789012"),
        "account ids are masked: {said}"
    );
    let written: Value = serde_json::from_slice(
        &std::fs::read(home.path().join("benchling-webhook/default/config.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(written["quilt"]["stackArn"], arn.as_str());
    assert_eq!(written["schemaVersion"], 1);
    assert_eq!(written["environment"], "prod");
    assert!(written["benchling"].get("clientSecret").is_none());
    assert_eq!(
        written["benchling"]["secret"],
        "benchling-webhook/BenchlingWebhookStack/prod"
    );

    let again = init(home.path(), &["--quilt-stack-arn", &arn]);
    assert_eq!(again.status.code(), Some(1));
    assert!(stderr(&again).contains("--force"), "{}", stderr(&again));

    let by_catalog = init(
        home.path(),
        &[
            "--profile",
            "dev",
            "--environment",
            "dev",
            "--catalog",
            &format!("https://{host}/"),
        ],
    );
    assert!(by_catalog.status.success(), "{}", stderr(&by_catalog));
    let shown = Command::new(env!("CARGO_BIN_EXE_benchling-webhook"))
        .args(["config", "show", "--profile", "dev", "--output", "json"])
        .env("XDG_CONFIG_HOME", home.path())
        .output()
        .unwrap();
    let shown: Value = serde_json::from_slice(&shown.stdout).unwrap();
    assert_eq!(shown["environment"], "dev");
    assert_eq!(
        shown["quilt"]["stackArn"],
        bw_config::mask::mask_arn(&arn).as_str()
    );
}

#[tokio::test]
async fn a_stack_without_an_output_or_catalog_is_named() {
    let host = format!("{}.quilt.example.com", Moto::unique_name("partial"));
    let name = Moto::unique_name("partial");
    let arn = create_stack(&name, quilt_template(&host, false)).await;
    let home = tempfile::tempdir().unwrap();

    let refused = init(home.path(), &["--quilt-stack-arn", &arn]);
    assert_eq!(refused.status.code(), Some(1));
    let error = stderr(&refused);
    assert!(
        error.contains(&name) && error.contains("UserAthenaDatabaseName"),
        "{error}"
    );
    assert!(
        !home.path().join("benchling-webhook/default").exists(),
        "nothing written"
    );

    let unknown = init(home.path(), &["--catalog", "nowhere.example.com"]);
    assert_eq!(unknown.status.code(), Some(1));
    assert!(
        stderr(&unknown).contains("QuiltWebHost nowhere.example.com"),
        "{}",
        stderr(&unknown)
    );

    let gone = arn.replace(&name, "deleted-stack");
    let missing = init(home.path(), &["--quilt-stack-arn", &gone]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        stderr(&missing).contains("no Quilt stack"),
        "{}",
        stderr(&missing)
    );

    let usage = init(home.path(), &[]);
    assert_eq!(usage.status.code(), Some(2), "{}", stderr(&usage));
}

/// The interactive `init`, driven in a pseudo-terminal as an operator would answer it: the
/// required values asked for, defaults taken on an empty answer, the profile written.
#[tokio::test]
async fn init_on_a_terminal_asks_for_what_its_flags_did_not_give() {
    let host = format!("{}.quilt.example.com", Moto::unique_name("asked"));
    let arn = create_stack(&Moto::unique_name("quilt"), quilt_template(&host, true)).await;
    let home = tempfile::tempdir().unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_benchling-webhook"));
    command
        .args(["init", "--profile", "asked", "--tenant", "acme"])
        .env("XDG_CONFIG_HOME", home.path())
        .envs(Moto::shared().env());
    let answers = tokio::task::spawn_blocking(move || {
        let mut session = rexpect::session::spawn_command(command, Some(30_000)).unwrap();
        session
            .exp_string("Quilt stack ARN, or the catalog's host: ")
            .unwrap();
        session.send_line(&host).unwrap();
        session.exp_string("workgroup quilt-tabulator").unwrap();
        session.exp_string("Environment [prod]: ").unwrap();
        session.send_line("").unwrap();
        session.exp_string("Benchling app client id: ").unwrap();
        // An empty answer to a required question is asked again.
        session.send_line("").unwrap();
        session.exp_string("a value is needed").unwrap();
        session.exp_string("Benchling app client id: ").unwrap();
        session.send_line("client-7").unwrap();
        session
            .exp_string("Benchling app definition id (appdef_...): ")
            .unwrap();
        session.send_line("appdef_7").unwrap();
        session
            .exp_string("Quilt bucket for the packages: ")
            .unwrap();
        session.send_line("acme-packages").unwrap();
        session
            .exp_string("Secrets Manager secret for the app's credentials [benchling-webhook/BenchlingWebhookStack/prod]: ")
            .unwrap();
        session.send_line("").unwrap();
        session.exp_string("ECR repository of the image").unwrap();
        session
            .send_line("123456789012.dkr.ecr.us-east-1.amazonaws.com/bw")
            .unwrap();
        session.exp_string("wrote profile \"asked\"").unwrap();
        session.exp_eof().unwrap();
    });
    answers.await.unwrap();
    let written: Value = serde_json::from_slice(
        &std::fs::read(home.path().join("benchling-webhook/asked/config.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        written["quilt"]["stackArn"],
        arn.as_str(),
        "found by its catalog"
    );
    assert_eq!(written["environment"], "prod");
    assert_eq!(
        written["benchling"]["tenant"], "acme",
        "a flag is not asked again"
    );
    assert_eq!(written["benchling"]["clientId"], "client-7");
    assert_eq!(written["benchling"]["appDefinitionId"], "appdef_7");
    assert_eq!(
        written["benchling"]["secret"],
        "benchling-webhook/BenchlingWebhookStack/prod"
    );
    assert_eq!(written["packages"]["bucket"], "acme-packages");
    assert_eq!(
        written["image"]["repository"],
        "123456789012.dkr.ecr.us-east-1.amazonaws.com/bw"
    );
}
