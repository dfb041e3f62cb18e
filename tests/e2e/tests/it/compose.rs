//! `compose/docker-compose.yml` checked without Docker: everything it names exists in the
//! repository (build contexts, Dockerfile stages, the binaries those stages copy, the init
//! script), each service's environment is the one the stack gives it plus local-only names and
//! parses with that service's own configuration loader, and every queue and secret the services
//! name is one the init step creates. The init step itself runs (twice) against moto.
//!
//! The YAML is read with PyYAML (beside moto in `.venv`), which applies merge keys (`<<`) as
//! docker compose does.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use bw_config::Env;
use bw_testkit::moto::Moto;

use crate::processes::dead_letter_name;
use serde_json::Value;

/// Names a service may have beyond the stack's: how it reaches the emulator and the stand-ins.
const LOCAL_ONLY: [&str; 5] = [
    "AWS_ENDPOINT_URL",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "BENCHLING_API_BASE_URL",
    "BENCHLING_ALLOW_HTTP_HOSTS",
];

fn compose_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../compose")
}

/// The compose file as JSON, merge keys applied.
fn compose() -> Value {
    let output = Command::new(bw_testkit::moto::python())
        .args([
            "-c",
            "import json, sys, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))",
        ])
        .arg(compose_dir().join("docker-compose.yml"))
        .output()
        .expect("run python with PyYAML");
    assert!(
        output.status.success(),
        "the compose file is not YAML: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

fn services(compose: &Value) -> &serde_json::Map<String, Value> {
    compose["services"].as_object().expect("services")
}

/// A service's environment as pairs (compose allows a map or `NAME=VALUE` strings).
fn environment(service: &Value) -> BTreeMap<String, String> {
    match &service["environment"] {
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| {
                let value = match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                (k.clone(), value)
            })
            .collect(),
        Value::Array(items) => items
            .iter()
            .filter_map(|item| item.as_str()?.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
        _ => BTreeMap::new(),
    }
}

/// Per stage of a Dockerfile, the binaries it copies into `/usr/local/bin/`.
fn copied_binaries(dockerfile: &str) -> BTreeMap<String, BTreeSet<String>> {
    let joined = dockerfile.replace("\\\n", " ");
    let mut stages: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut current = String::new();
    for line in joined.lines().map(str::trim) {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["FROM", .., "AS", name] => {
                current = name.to_lowercase();
                stages.entry(current.clone()).or_default();
            }
            ["COPY", args @ ..] if args.last() == Some(&"/usr/local/bin/") => {
                let binaries = args
                    .iter()
                    .filter(|w| !w.starts_with("--"))
                    .filter_map(|w| w.strip_prefix("/app/target/release/"));
                stages
                    .entry(current.clone())
                    .or_default()
                    .extend(binaries.map(str::to_owned));
            }
            _ => {}
        }
    }
    stages
}

/// Every `[[bin]]` of the workspace.
fn workspace_binaries() -> BTreeSet<String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(compose_dir().join(".."))
        .output()
        .expect("run cargo metadata");
    assert!(output.status.success(), "cargo metadata failed");
    let metadata: Value = serde_json::from_slice(&output.stdout).unwrap();
    metadata["packages"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["targets"].as_array().unwrap())
        .filter(|t| t["kind"].as_array().unwrap().iter().any(|k| k == "bin"))
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn every_service_builds_and_runs_a_binary_of_this_workspace() {
    let compose = compose();
    let binaries = workspace_binaries();
    for (name, service) in services(&compose) {
        let Some(build) = service.get("build") else {
            continue;
        };
        let context = compose_dir().join(build["context"].as_str().expect("a context"));
        let dockerfile = context.join(build["dockerfile"].as_str().unwrap_or("Dockerfile"));
        let text = std::fs::read_to_string(&dockerfile)
            .unwrap_or_else(|e| panic!("{name}: {}: {e}", dockerfile.display()));
        let stages = copied_binaries(&text);
        let target = build["target"].as_str().expect("a named target");
        let copied = stages
            .get(target)
            .unwrap_or_else(|| panic!("{name}: no stage {target} in {}", dockerfile.display()));
        let command = service["command"][0]
            .as_str()
            .expect("an exec-form command");
        let binary = command
            .strip_prefix("/usr/local/bin/")
            .unwrap_or_else(|| panic!("{name}: {command} is not in /usr/local/bin"));
        assert!(
            copied.contains(binary),
            "{name}: stage {target} does not copy {binary} (it copies {copied:?})"
        );
        assert!(
            binaries.contains(binary),
            "{name}: {binary} is not a workspace binary"
        );
        if let Some(test) = service["healthcheck"]["test"].as_array() {
            assert_eq!(
                test[1], command,
                "{name}: the health check runs its own binary"
            );
            assert_eq!(test[2], "--health", "{name}");
        }
    }
}

#[test]
fn each_service_gets_the_stacks_environment_and_its_loader_accepts_it() {
    let compose = compose();
    let options = bw_stack::StackOptions::new(
        vec!["prod".parse().unwrap()],
        bw_stack::Network::New,
        Vec::new(),
    )
    .unwrap();
    let template = bw_stack::build(&options).to_json();
    for (service, task) in [
        ("ingress", "ProdIngressTaskDefinition"),
        ("exporter", "ProdExporterTaskDefinition"),
        ("packager", "ProdPackagerTaskDefinition"),
        ("canvas", "ProdCanvasTaskDefinition"),
    ] {
        let env = environment(&services(&compose)[service]);
        let stack: BTreeSet<&str> =
            template["Resources"][task]["Properties"]["ContainerDefinitions"][0]["Environment"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["Name"].as_str().unwrap())
                .collect();
        let names: BTreeSet<&str> = env.keys().map(String::as_str).collect();
        let missing: Vec<&&str> = stack.difference(&names).collect();
        assert!(missing.is_empty(), "{service} lacks {missing:?}");
        let extra: Vec<&&str> = names
            .difference(&stack)
            .filter(|n| !LOCAL_ONLY.contains(n))
            .collect();
        assert!(
            extra.is_empty(),
            "{service} has names the stack does not give: {extra:?}"
        );
        let pairs = || Env::from_pairs(env.clone());
        let parsed = match service {
            "ingress" => bw_ingress::IngressConfig::from_env(pairs()).map(drop),
            "exporter" => bw_exporter::ExporterConfig::from_env(pairs()).map(drop),
            "packager" => bw_packager::PackagerConfig::from_env(pairs()).map(drop),
            _ => bw_canvas::CanvasConfig::from_env(pairs()).map(drop),
        };
        if let Err(e) = parsed {
            panic!("{service}'s environment is refused: {e}");
        }
    }
    let quilt = environment(&services(&compose)["quilt-standin"]);
    if let Err(e) = bw_quilt_standin::QuiltStandInConfig::from_env(Env::from_pairs(quilt)) {
        panic!("quilt-standin's environment is refused: {e}");
    }
}

#[test]
fn dependencies_queues_and_the_secret_are_all_made_by_compose() {
    let compose = compose();
    let services = services(&compose);
    for (name, service) in services {
        let depends = match &service["depends_on"] {
            Value::Object(map) => map.keys().cloned().collect(),
            Value::Array(list) => list
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
            _ => Vec::new(),
        };
        for dependency in depends {
            assert!(
                services.contains_key(&dependency),
                "{name} depends on unknown {dependency}"
            );
        }
    }
    let init = environment(&services["init"]);
    let queues: BTreeSet<&str> = init["QUEUES"].split_whitespace().collect();
    let buckets: BTreeSet<&str> = init["BUCKETS"].split_whitespace().collect();
    let secret: Value = serde_json::from_str(&init["SECRET_STRING"]).expect("the secret is JSON");
    assert!(
        buckets.contains(secret["user_bucket"].as_str().unwrap()),
        "the secret's bucket is created"
    );
    let mut named = 0;
    for (name, service) in services {
        let env = environment(service);
        if let Some(endpoint) = env.get("AWS_ENDPOINT_URL") {
            assert_eq!(endpoint, "http://moto:5000", "{name}");
        }
        if let Some(secret) = env.get("BenchlingSecret") {
            assert_eq!(
                secret, &init["SECRET_NAME"],
                "{name} reads the secret init writes"
            );
        }
        for (var, url) in &env {
            if !(var.ends_with("_QUEUE_URL") || var == "PACKAGER_SQS_URL") {
                continue;
            }
            let queue = url
                .strip_prefix("http://moto:5000/123456789012/")
                .unwrap_or_else(|| panic!("{name}: {var}={url} is not a moto queue"));
            assert!(
                queues.contains(queue),
                "{name}: {var} names {queue}, which init does not create"
            );
            named += 1;
        }
    }
    assert!(named >= 12, "every service's queues were checked ({named})");
    // The init step's script is the one in the repository, mounted where its entrypoint looks.
    assert_eq!(services["init"]["entrypoint"][1], "/init/init.py");
    assert_eq!(services["init"]["volumes"][0], "./init:/init:ro");
    assert!(compose_dir().join("init/init.py").is_file());
}

#[tokio::test]
async fn the_init_step_creates_everything_and_can_run_again() {
    let compose = compose();
    let moto = Moto::shared();
    let mut init = environment(&services(&compose)["init"]);
    // Compose's names, in the test's moto.
    init.remove("AWS_ENDPOINT_URL");
    for _ in 0..2 {
        let output = Command::new(bw_testkit::moto::python())
            .arg(compose_dir().join("init/init.py"))
            .env_clear()
            .envs(&init)
            .envs(moto.env())
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "init failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let sqs = moto.sqs_client().await;
    for queue in init["QUEUES"].split_whitespace() {
        let attributes = |name: String| {
            let sqs = sqs.clone();
            async move {
                let url = sqs
                    .get_queue_url()
                    .queue_name(&name)
                    .send()
                    .await
                    .unwrap_or_else(|e| panic!("{name} was not created: {e:?}"))
                    .queue_url()
                    .unwrap()
                    .to_owned();
                sqs.get_queue_attributes()
                    .queue_url(url)
                    .attribute_names(aws_sdk_sqs::types::QueueAttributeName::All)
                    .send()
                    .await
                    .unwrap()
                    .attributes()
                    .unwrap()
                    .iter()
                    .map(|(k, v)| (k.as_str().to_owned(), v.clone()))
                    .collect::<BTreeMap<String, String>>()
            }
        };
        let source = attributes(queue.to_owned()).await;
        let target = attributes(dead_letter_name(queue)).await;
        let fifo = queue.ends_with(".fifo");
        assert_eq!(
            source.get("FifoQueue").is_some_and(|v| v == "true"),
            fifo,
            "{queue}"
        );
        assert_eq!(
            target.get("FifoQueue").is_some_and(|v| v == "true"),
            fifo,
            "{queue}"
        );
        let redrive: Value = serde_json::from_str(&source["RedrivePolicy"]).unwrap();
        assert_eq!(
            redrive["deadLetterTargetArn"], target["QueueArn"],
            "{queue}"
        );
        assert_eq!(
            redrive["maxReceiveCount"].to_string().trim_matches('"'),
            "5",
            "{queue}"
        );
    }
    for bucket in init["BUCKETS"].split_whitespace() {
        moto.s3_client()
            .await
            .head_bucket()
            .bucket(bucket)
            .send()
            .await
            .unwrap_or_else(|e| panic!("bucket {bucket}: {e:?}"));
    }
    let secret = aws_sdk_secretsmanager::Client::new(&moto.sdk_config().await)
        .get_secret_value()
        .secret_id(&init["SECRET_NAME"])
        .send()
        .await
        .expect("the secret exists");
    assert_eq!(secret.secret_string(), Some(init["SECRET_STRING"].as_str()));
}
