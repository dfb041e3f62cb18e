//! `compose/docker-compose.yml` checked without Docker:
//!
//! 1. every built service names a build context, Dockerfile and stage that exist, and runs a
//!    binary that stage copies into `/usr/local/bin/` and the workspace builds;
//! 2. each of the four services gets the environment the CloudFormation stack gives it (every
//!    name, plus only the local-only names below), which its own configuration loader accepts,
//!    and the stack's command and health check;
//! 3. every dependency is a service of the file, with a condition that can be met;
//! 4. every queue, bucket, secret and Benchling address the services name is one compose makes:
//!    queues on the moto service that the init step creates, the init step's secret (whose
//!    OAuth client is the Benchling stand-in's), the stand-in's address;
//! 5. the init script is where the init step mounts and runs it.
//!
//! The init script itself runs (twice) against moto, and the queues it makes are compared with
//! the stack's; and it fails with a clear message on bad settings.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use bw_config::Env;
use bw_stack::service::ServiceKind;
use bw_testkit::moto::Moto;
use serde_json::Value;

/// Names a service may have beyond the stack's: how it reaches the emulator and the stand-in.
const LOCAL_ONLY: [&str; 5] = [
    "AWS_ENDPOINT_URL",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "BENCHLING_API_BASE_URL",
    "BENCHLING_ALLOW_HTTP_HOSTS",
];

/// Where the images put the binaries.
const BIN_DIR: &str = "/usr/local/bin/";

/// moto's default account, in every queue URL it hands out.
const MOTO_ACCOUNT: &str = "123456789012";

/// The moto image compose runs (its tag is checked against scripts/test's moto).
const MOTO_IMAGE: &str = "motoserver/moto:";

/// The queue attributes the stack sets that SQS reports back (SqsManagedSseEnabled is left to
/// the emulator).
const QUEUE_ATTRIBUTES: [&str; 6] = [
    "VisibilityTimeout",
    "MessageRetentionPeriod",
    "FifoQueue",
    "ContentBasedDeduplication",
    "DeduplicationScope",
    "FifoThroughputLimit",
];

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn compose_dir() -> PathBuf {
    workspace().join("compose")
}

// ---------------------------------------------------------------------------------------------
// Reading the compose file

/// The compose file as JSON, with its merge keys (`<<`) applied as docker compose applies them.
fn compose() -> Value {
    let path = compose_dir().join("docker-compose.yml");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    compose_from(&text)
}

fn compose_from(text: &str) -> Value {
    let mut yaml: serde_norway::Value =
        serde_norway::from_str(text).unwrap_or_else(|e| panic!("the compose file: {e}"));
    yaml.apply_merge()
        .unwrap_or_else(|e| panic!("the compose file's merge keys: {e}"));
    serde_json::to_value(yaml).unwrap_or_else(|e| panic!("the compose file as JSON: {e}"))
}

fn services(compose: &Value) -> &serde_json::Map<String, Value> {
    compose["services"]
        .as_object()
        .expect("the compose file has a `services` mapping")
}

/// A service's environment (a map, or `NAME=VALUE` strings). Compose takes strings and numbers
/// as values and refuses booleans, so a boolean or an unset name fails here too.
fn environment(name: &str, service: &Value) -> BTreeMap<String, String> {
    let value = |var: &str, v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        other => panic!("{name}: {var} is {other}: compose wants a string (quote it)"),
    };
    match &service["environment"] {
        Value::Object(map) => map.iter().map(|(k, v)| (k.clone(), value(k, v))).collect(),
        Value::Array(items) => items
            .iter()
            .map(|item| {
                let item = item.as_str().unwrap_or_default();
                let (k, v) = item
                    .split_once('=')
                    .unwrap_or_else(|| panic!("{name}: {item:?} takes its value from the host"));
                (k.to_owned(), v.to_owned())
            })
            .collect(),
        Value::Null => BTreeMap::new(),
        other => panic!("{name}: environment is {other}"),
    }
}

/// A service's exec-form command or entrypoint.
fn words(name: &str, service: &Value, key: &str) -> Vec<String> {
    service[key]
        .as_array()
        .unwrap_or_else(|| panic!("{name}: {key} is not an exec-form list"))
        .iter()
        .map(|w| {
            w.as_str()
                .unwrap_or_else(|| panic!("{name}: {key} has {w}, not a string"))
                .to_owned()
        })
        .collect()
}

/// The value after `flag` in `words`.
fn flag<'a>(words: &'a [String], flag: &str) -> Option<&'a str> {
    let at = words.iter().position(|w| w == flag)?;
    words.get(at + 1).map(String::as_str)
}

/// `http://host:port[/…]` → (host, port).
fn http_parts(url: &str) -> Option<(&str, u16)> {
    let rest = url.strip_prefix("http://")?;
    let authority = rest.split('/').next()?;
    let (host, port) = authority.split_once(':')?;
    Some((host, port.parse().ok()?))
}

/// A service's `depends_on` as (service, condition); the short list form means "started".
fn dependencies(name: &str, service: &Value) -> Vec<(String, String)> {
    match &service["depends_on"] {
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| {
                let condition = v["condition"].as_str().unwrap_or("service_started");
                (k.clone(), condition.to_owned())
            })
            .collect(),
        Value::Array(list) => list
            .iter()
            .map(|v| {
                let dependency = v
                    .as_str()
                    .unwrap_or_else(|| panic!("{name}: depends_on {v}"));
                (dependency.to_owned(), "service_started".to_owned())
            })
            .collect(),
        Value::Null => Vec::new(),
        other => panic!("{name}: depends_on is {other}"),
    }
}

// ---------------------------------------------------------------------------------------------
// The Dockerfile and the workspace (infra/cli/tests/it/image.rs checks the image itself, with a
// full parser; this only needs each stage's name and what it copies into /usr/local/bin)

/// The stages of a Dockerfile in order: the `AS` name (lower case; the index without one) and
/// the binaries the stage copies into `/usr/local/bin/`. Comment lines are dropped, also inside
/// a continued instruction; shell-form `COPY` only, as the project's Dockerfile writes it.
fn stages(dockerfile: &str) -> Vec<(String, BTreeSet<String>)> {
    let mut instructions = Vec::new();
    let mut pending = String::new();
    for line in dockerfile.lines().map(str::trim) {
        if line.starts_with('#') {
            continue;
        }
        match line.strip_suffix('\\') {
            Some(body) => {
                pending.push_str(body);
                pending.push(' ');
            }
            None => {
                pending.push_str(line);
                instructions.push(std::mem::take(&mut pending));
            }
        }
    }
    let mut stages: Vec<(String, BTreeSet<String>)> = Vec::new();
    for instruction in instructions {
        let words: Vec<&str> = instruction.split_whitespace().collect();
        let Some((keyword, args)) = words.split_first() else {
            continue;
        };
        let args: Vec<&str> = args
            .iter()
            .copied()
            .filter(|w| !w.starts_with("--"))
            .collect();
        if keyword.eq_ignore_ascii_case("FROM") {
            let name = match args.as_slice() {
                [_, as_, name] if as_.eq_ignore_ascii_case("as") => name.to_ascii_lowercase(),
                _ => stages.len().to_string(),
            };
            stages.push((name, BTreeSet::new()));
        } else if keyword.eq_ignore_ascii_case("COPY")
            && let (Some((dest, sources)), Some((_, copied))) =
                (args.split_last(), stages.last_mut())
        {
            match dest.strip_prefix(BIN_DIR) {
                Some("") => copied.extend(
                    sources
                        .iter()
                        .map(|s| s.rsplit('/').next().unwrap_or(s).to_owned()),
                ),
                Some(name) => {
                    copied.insert(name.to_owned());
                }
                None => {}
            }
        }
    }
    stages
}

/// Every `[[bin]]` of the workspace, from `cargo metadata` (as image.rs reads it).
fn workspace_binaries() -> BTreeSet<String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| env!("CARGO").into());
    let output = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .current_dir(workspace())
        .output()
        .expect("cargo metadata runs");
    assert!(
        output.status.success(),
        "cargo metadata: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: Value = serde_json::from_slice(&output.stdout).expect("cargo metadata's JSON");
    metadata["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .flat_map(|p| p["targets"].as_array().expect("targets"))
        .filter(|t| {
            t["kind"]
                .as_array()
                .is_some_and(|k| k.iter().any(|k| k == "bin"))
        })
        .map(|t| t["name"].as_str().expect("a target name").to_owned())
        .collect()
}

/// The stack's template, one environment (`prod`), as the CLI prints it.
fn stack() -> Value {
    let options = bw_stack::StackOptions::new(
        vec!["prod".parse().unwrap()],
        bw_stack::Network::New,
        Vec::new(),
    )
    .unwrap();
    bw_stack::build(&options).to_json()
}

/// The container definition the stack gives `service`.
fn container(stack: &Value, service: ServiceKind) -> &Value {
    let task = format!("Prod{}TaskDefinition", service.title());
    let container = &stack["Resources"][&task]["Properties"]["ContainerDefinitions"][0];
    assert!(container.is_object(), "the stack has no {task}");
    container
}

// ---------------------------------------------------------------------------------------------
// 1. Images and binaries

/// Everything wrong with how the built services of `compose` get their binaries.
fn image_problems(compose: &Value, binaries: &BTreeSet<String>) -> Vec<String> {
    let mut problems = Vec::new();
    for (name, service) in services(compose) {
        let Some(build) = service.get("build") else {
            continue;
        };
        // `build: DIR` or `build: {context: DIR, …}`.
        let Some(context) = build.as_str().or(build["context"].as_str()) else {
            problems.push(format!("{name}: build names no context"));
            continue;
        };
        let context = compose_dir().join(context);
        if !context.is_dir() {
            problems.push(format!("{name}: no build context {}", context.display()));
            continue;
        }
        let dockerfile = context.join(build["dockerfile"].as_str().unwrap_or("Dockerfile"));
        let Ok(text) = std::fs::read_to_string(&dockerfile) else {
            problems.push(format!("{name}: no Dockerfile {}", dockerfile.display()));
            continue;
        };
        let stages = stages(&text);
        // Without a target, docker builds the last stage.
        let stage = match build["target"].as_str() {
            Some(target) => stages
                .iter()
                .find(|(stage, _)| stage.eq_ignore_ascii_case(target)),
            None => stages.last(),
        };
        let Some((stage, copied)) = stage else {
            problems.push(format!(
                "{name}: {} has no stage {}",
                dockerfile.display(),
                build["target"]
            ));
            continue;
        };
        let Some(program) = service["command"][0].as_str() else {
            problems.push(format!("{name}: no exec-form command"));
            continue;
        };
        let Some(binary) = program.strip_prefix(BIN_DIR) else {
            problems.push(format!("{name}: runs {program}, not a binary in {BIN_DIR}"));
            continue;
        };
        if !copied.contains(binary) {
            problems.push(format!(
                "{name}: stage {stage} does not copy {binary} into {BIN_DIR} (it copies {copied:?})"
            ));
        }
        if !binaries.contains(binary) {
            problems.push(format!(
                "{name}: {binary} is not a [[bin]] of the workspace"
            ));
        }
    }
    problems
}

#[test]
fn every_built_service_runs_a_binary_its_stage_copies_and_the_workspace_builds() {
    let compose = compose();
    let binaries = workspace_binaries();
    let problems = image_problems(&compose, &binaries);
    assert!(problems.is_empty(), "compose:\n  {}", problems.join("\n  "));
    let built = services(&compose)
        .values()
        .filter(|s| s.get("build").is_some())
        .count();
    assert!(
        built >= 6,
        "the four services and both stand-ins are built ({built})"
    );

    // The checks report what they should.
    let bad = compose_from(
        "services:\n\
         \x20 no-context: {build: {dockerfile: Dockerfile}, command: [/usr/local/bin/ingress]}\n\
         \x20 no-stage: {build: {context: .., target: nope}, command: [/usr/local/bin/ingress]}\n\
         \x20 not-copied:\n\
         \x20   {build: {context: .., target: standins}, command: [/usr/local/bin/ingress]}\n\
         \x20 last-stage: {build: {context: ..}, command: [/usr/local/bin/quilt-standin]}\n\
         \x20 no-dockerfile: {build: {context: .., dockerfile: Nope}, command: [/bin/x]}\n\
         \x20 elsewhere: {build: {context: ..}, command: [/bin/sh]}\n",
    );
    let problems = image_problems(&bad, &binaries).join("\n");
    for expected in [
        "no-context: build names no context",
        "no-stage: ",
        "has no stage \"nope\"",
        "not-copied: stage standins does not copy ingress",
        "last-stage: stage runtime does not copy quilt-standin",
        "no-dockerfile: no Dockerfile",
        "elsewhere: runs /bin/sh",
    ] {
        assert!(
            problems.contains(expected),
            "not reported: {expected}\n{problems}"
        );
    }
    let no_bin: BTreeSet<String> = BTreeSet::new();
    let problems = image_problems(&compose, &no_bin).join("\n");
    assert!(
        problems.contains("ingress: ingress is not a [[bin]] of the workspace"),
        "{problems}"
    );
}

#[test]
fn the_stage_reader_finds_names_and_copies() {
    let stages = stages(
        "ARG X=1\n\
         FROM rust AS Build\n\
         RUN cargo build \\\n\
         # a comment inside\n\
         \x20 --bin a\n\
         from build\n\
         COPY --from=build /t/a \\\n\
         \x20    /t/b /usr/local/bin/\n\
         COPY --from=build /t/c /usr/local/bin/renamed\n\
         COPY x /etc/\n",
    );
    assert_eq!(
        stages,
        [
            ("build".to_owned(), BTreeSet::new()),
            (
                "1".to_owned(),
                ["a", "b", "renamed"].map(str::to_owned).into()
            ),
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// 2. The stack's environment, command and health check

/// Everything wrong with the four services' environments, commands and health checks.
fn stack_problems(compose: &Value, stack: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    for kind in ServiceKind::ALL {
        let name = kind.name();
        let Some(service) = services(compose).get(name) else {
            problems.push(format!("no service {name}"));
            continue;
        };
        let container = container(stack, kind);
        let env = environment(name, service);
        let expected: BTreeSet<&str> = container["Environment"]
            .as_array()
            .expect("the container's Environment")
            .iter()
            .map(|e| e["Name"].as_str().expect("a Name"))
            .collect();
        let names: BTreeSet<&str> = env.keys().map(String::as_str).collect();
        let missing: Vec<&&str> = expected.difference(&names).collect();
        if !missing.is_empty() {
            problems.push(format!("{name} lacks the stack's {missing:?}"));
        }
        let extra: Vec<&&str> = names
            .difference(&expected)
            .filter(|n| !LOCAL_ONLY.contains(n))
            .collect();
        if !extra.is_empty() {
            problems.push(format!(
                "{name} has {extra:?}, which the stack does not give it and are not local-only"
            ));
        }
        let pairs = || Env::from_pairs(env.clone());
        let parsed = match kind {
            ServiceKind::Ingress => bw_ingress::IngressConfig::from_env(pairs()).map(drop),
            ServiceKind::Exporter => bw_exporter::ExporterConfig::from_env(pairs()).map(drop),
            ServiceKind::Packager => bw_packager::PackagerConfig::from_env(pairs()).map(drop),
            ServiceKind::Canvas => bw_canvas::CanvasConfig::from_env(pairs()).map(drop),
        };
        if let Err(e) = parsed {
            problems.push(format!(
                "{name}'s environment is refused by its loader: {e}"
            ));
        }
        if service["command"] != container["Command"] {
            problems.push(format!(
                "{name} runs {}, the stack {}",
                service["command"], container["Command"]
            ));
        }
        let health = &container["HealthCheck"]["Command"];
        if &service["healthcheck"]["test"] != health {
            problems.push(format!(
                "{name}'s health check is {}, the stack's {health}",
                service["healthcheck"]["test"]
            ));
        }
    }
    problems
}

#[test]
fn each_service_gets_the_stacks_environment_and_its_loader_accepts_it() {
    let compose = compose();
    let stack = stack();
    let problems = stack_problems(&compose, &stack);
    assert!(problems.is_empty(), "compose:\n  {}", problems.join("\n  "));
    let quilt = environment("quilt-standin", &services(&compose)["quilt-standin"]);
    if let Err(e) = bw_quilt_standin::QuiltStandInConfig::from_env(Env::from_pairs(quilt)) {
        panic!("quilt-standin's environment is refused by its loader: {e}");
    }

    // The checks report what they should: a name dropped, one added, a value the loader
    // refuses, another command and health check.
    let mut bad = compose.clone();
    let exporter = &mut bad["services"]["exporter"];
    let env = exporter["environment"].as_object_mut().unwrap();
    env.remove("RENDER_QUEUE_URL");
    env.insert("MADE_UP".into(), "1".into());
    env.insert("WORKER_CONCURRENCY".into(), "many".into());
    exporter["command"] = serde_json::json!(["/usr/local/bin/packager"]);
    exporter["healthcheck"]["test"] = serde_json::json!(["CMD-SHELL", "true"]);
    let problems = stack_problems(&bad, &stack).join("\n");
    for expected in [
        "exporter lacks the stack's [\"RENDER_QUEUE_URL\"]",
        "exporter has [\"MADE_UP\"], which the stack does not give it",
        "exporter's environment is refused by its loader",
        "WORKER_CONCURRENCY",
        "exporter runs [\"/usr/local/bin/packager\"]",
        "exporter's health check is [\"CMD-SHELL\",\"true\"]",
    ] {
        assert!(
            problems.contains(expected),
            "not reported: {expected}\n{problems}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 3. Dependencies

/// Everything wrong with the `depends_on` of `compose`.
fn dependency_problems(compose: &Value) -> Vec<String> {
    let services = services(compose);
    let mut problems = Vec::new();
    for (name, service) in services {
        for (dependency, condition) in dependencies(name, service) {
            let Some(target) = services.get(&dependency) else {
                problems.push(format!(
                    "{name} depends on {dependency}, which is not a service"
                ));
                continue;
            };
            match condition.as_str() {
                "service_started" => {}
                "service_healthy" if target.get("healthcheck").is_none() => problems.push(format!(
                    "{name} waits for {dependency} to be healthy; it has no healthcheck"
                )),
                "service_healthy" => {}
                // A container restarted after it exits never counts as completed.
                "service_completed_successfully"
                    if !matches!(target["restart"].as_str(), None | Some("no")) =>
                {
                    problems.push(format!(
                        "{name} waits for {dependency} to complete, but it restarts"
                    ))
                }
                "service_completed_successfully" => {}
                other => problems.push(format!("{name}: {other} is not a depends_on condition")),
            }
        }
    }
    problems
}

#[test]
fn every_dependency_is_a_service_of_the_file_with_a_condition_it_can_meet() {
    let compose = compose();
    let problems = dependency_problems(&compose);
    assert!(problems.is_empty(), "compose:\n  {}", problems.join("\n  "));

    let bad = compose_from(
        "services:\n\
         \x20 a: {depends_on: [ghost]}\n\
         \x20 b:\n\
         \x20   depends_on:\n\
         \x20     a: {condition: service_healthy}\n\
         \x20     c: {condition: service_completed_successfully}\n\
         \x20 c: {restart: always, depends_on: {a: {condition: service_ready}}}\n",
    );
    let problems = dependency_problems(&bad).join("\n");
    for expected in [
        "a depends on ghost, which is not a service",
        "b waits for a to be healthy; it has no healthcheck",
        "b waits for c to complete, but it restarts",
        "c: service_ready is not a depends_on condition",
    ] {
        assert!(
            problems.contains(expected),
            "not reported: {expected}\n{problems}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 4. Queues, bucket, secret and the Benchling stand-in

/// Everything the services name that compose does not make.
fn wiring_problems(compose: &Value) -> Vec<String> {
    let services = services(compose);
    let mut problems = Vec::new();
    let Some(init) = services.get("init") else {
        return vec!["no service init".to_owned()];
    };
    let init_env = environment("init", init);
    let get = |var: &str| init_env.get(var).map_or("", String::as_str);
    let queues: BTreeSet<&str> = get("QUEUES").split_whitespace().collect();
    let buckets: BTreeSet<&str> = get("BUCKETS").split_whitespace().collect();

    // The emulator: the moto service init talks to, from the image scripts/test installs.
    let endpoint = get("AWS_ENDPOINT_URL");
    let moto_host = http_parts(endpoint).map(|(host, _)| host);
    let moto = moto_host.and_then(|host| services.get(host));
    let image = moto.and_then(|m| m["image"].as_str()).unwrap_or_default();
    match image.strip_prefix(MOTO_IMAGE) {
        None => problems.push(format!(
            "init's AWS_ENDPOINT_URL {endpoint:?} names no service running {MOTO_IMAGE}…"
        )),
        Some(tag) => {
            let test_script = std::fs::read_to_string(workspace().join("scripts/test")).unwrap();
            if !test_script.contains(&format!("moto[server]=={tag}")) {
                problems.push(format!("moto {tag} is not the moto scripts/test installs"));
            }
            if init["image"].as_str() != Some(image) {
                problems.push(format!("init does not run {image} (which has boto3)"));
            }
        }
    }

    // The secret: JSON, its bucket created, its OAuth client the stand-in's.
    let secret: Value = match serde_json::from_str(get("SECRET_STRING")) {
        Ok(secret) => secret,
        Err(e) => {
            problems.push(format!("init's SECRET_STRING is not JSON: {e}"));
            Value::Null
        }
    };
    let user_bucket = secret["user_bucket"].as_str().unwrap_or_default();
    if !buckets.contains(user_bucket) {
        problems.push(format!(
            "the secret's user_bucket {user_bucket:?} is not in init's BUCKETS {buckets:?}"
        ));
    }
    if secret["enable_webhook_verification"] != false {
        problems
            .push("the secret does not turn verification off (the examples are unsigned)".into());
    }
    let standin = services
        .get("benchling-standin")
        .map(|s| words("benchling-standin", s, "command"))
        .unwrap_or_default();
    for (key, option) in [
        ("client_id", "--client-id"),
        ("client_secret", "--client-secret"),
    ] {
        if secret[key].as_str() != flag(&standin, option) {
            problems.push(format!(
                "the secret's {key} is not benchling-standin's {option} {:?}",
                flag(&standin, option)
            ));
        }
    }
    let standin_port = flag(&standin, "--port").and_then(|p| p.parse::<u16>().ok());

    let mut queue_urls = 0;
    for (name, service) in services {
        let env = environment(name, service);
        if let Some(url) = env.get("AWS_ENDPOINT_URL")
            && url != endpoint
        {
            problems.push(format!(
                "{name}'s AWS_ENDPOINT_URL {url} is not init's {endpoint}"
            ));
        }
        if let Some(secret_name) = env.get("BenchlingSecret")
            && secret_name != get("SECRET_NAME")
        {
            problems.push(format!(
                "{name} reads the secret {secret_name:?}, init writes {:?}",
                get("SECRET_NAME")
            ));
        }
        if let Some(bucket) = env.get("PACKAGE_BUCKET")
            && bucket != user_bucket
        {
            problems.push(format!(
                "{name}'s PACKAGE_BUCKET {bucket} is not the secret's user_bucket {user_bucket}"
            ));
        }
        for (var, url) in &env {
            if !(var.ends_with("_QUEUE_URL") || var == "PACKAGER_SQS_URL") {
                continue;
            }
            queue_urls += 1;
            let queue = url
                .strip_prefix(endpoint)
                .filter(|_| !endpoint.is_empty())
                .and_then(|path| path.strip_prefix(&format!("/{MOTO_ACCOUNT}/")));
            match queue {
                None => problems.push(format!(
                    "{name}: {var}={url} is not a queue of {endpoint}/{MOTO_ACCOUNT}/"
                )),
                Some(queue) if !queues.contains(queue) => problems.push(format!(
                    "{name}: {var} names {queue}, which is not in init's QUEUES {queues:?}"
                )),
                Some(_) => {}
            }
        }
        // Benchling is the stand-in, reached over plain http by its service name.
        if let Some(base) = env.get("BENCHLING_API_BASE_URL") {
            let allowed = env
                .get("BENCHLING_ALLOW_HTTP_HOSTS")
                .map_or("", String::as_str);
            match http_parts(base) {
                Some((host, port)) => {
                    if host != "benchling-standin" || !services.contains_key(host) {
                        problems.push(format!(
                            "{name}'s Benchling {base} is not the benchling-standin service"
                        ));
                    }
                    if Some(port) != standin_port {
                        problems.push(format!(
                            "{name}'s Benchling {base} is not on benchling-standin's --port"
                        ));
                    }
                    if !allowed.split(',').any(|h| h.trim() == host) {
                        problems.push(format!(
                            "{name}: BENCHLING_ALLOW_HTTP_HOSTS {allowed:?} does not allow {host}"
                        ));
                    }
                    if flag(&standin, "--public-url") != Some(base.trim_end_matches('/')) {
                        problems.push(format!(
                            "benchling-standin's --public-url is not {base}, where {name} calls it"
                        ));
                    }
                    if !dependencies(name, service).iter().any(|(d, _)| d == host) {
                        problems.push(format!("{name} calls {host} but does not depend on it"));
                    }
                }
                None => problems.push(format!("{name}'s Benchling {base} is not http://host:port")),
            }
        }
        // Whatever uses the emulator waits for init to have made everything.
        if name != "init" && env.contains_key("AWS_ENDPOINT_URL") {
            let waits = dependencies(name, service)
                .iter()
                .any(|(d, c)| d == "init" && c == "service_completed_successfully");
            if !waits {
                problems.push(format!(
                    "{name} does not wait for init (condition service_completed_successfully)"
                ));
            }
        }
    }
    if queue_urls < 13 {
        problems.push(format!(
            "only {queue_urls} queue URLs were found (4 services and the Quilt stand-in name 13)"
        ));
    }
    problems
}

#[test]
fn every_queue_bucket_and_secret_the_services_name_is_made_by_init() {
    let compose = compose();
    let problems = wiring_problems(&compose);
    assert!(problems.is_empty(), "compose:\n  {}", problems.join("\n  "));

    // The checks report what they should (every value they look at set here).
    let mut bad = compose.clone();
    let services = &mut bad["services"];
    let init = &mut services["init"]["environment"];
    init["AWS_ENDPOINT_URL"] = "http://moto:5000".into();
    init["QUEUES"] = "export.fifo".into();
    init["BUCKETS"] = "benchling-packages".into();
    init["SECRET_NAME"] = "another".into();
    init["SECRET_STRING"] = r#"{"client_id": "x", "client_secret": "s", "user_bucket": "b",
        "enable_webhook_verification": true}"#
        .into();
    services["benchling-standin"]["command"] = serde_json::json!([
        "/usr/local/bin/benchling-standin",
        "--port",
        "8081",
        "--client-id",
        "y",
        "--client-secret",
        "s",
        "--public-url",
        "http://benchling-standin:8081"
    ]);
    let ingress = &mut services["ingress"]["environment"];
    ingress["BenchlingSecret"] = "mine".into();
    ingress["PACKAGE_BUCKET"] = "benchling-packages".into();
    services["exporter"]["environment"]["RENDER_QUEUE_URL"] =
        "http://moto:5000/123456789012/render.fifo".into();
    let canvas = &mut services["canvas"]["environment"];
    canvas["EXPORT_QUEUE_URL"] = "http://localhost:5000/123456789012/export.fifo".into();
    canvas["BENCHLING_API_BASE_URL"] = "http://benchling-standin:8081".into();
    canvas["BENCHLING_ALLOW_HTTP_HOSTS"] = "elsewhere".into();
    let packager = &mut services["packager"]["environment"];
    packager["AWS_ENDPOINT_URL"] = "http://moto:5000".into();
    packager["BENCHLING_API_BASE_URL"] = "http://benchling-standin:8081".into();
    services["packager"]["depends_on"] = serde_json::json!({});
    let problems = wiring_problems(&bad).join("\n");
    for expected in [
        "exporter: RENDER_QUEUE_URL names render.fifo, which is not in init's QUEUES",
        "canvas: EXPORT_QUEUE_URL=http://localhost:5000/123456789012/export.fifo is not a queue \
         of http://moto:5000/123456789012/",
        "ingress reads the secret \"mine\", init writes \"another\"",
        "the secret's user_bucket \"b\" is not in init's BUCKETS",
        "ingress's PACKAGE_BUCKET benchling-packages is not the secret's user_bucket b",
        "the secret does not turn verification off",
        "the secret's client_id is not benchling-standin's --client-id Some(\"y\")",
        "canvas: BENCHLING_ALLOW_HTTP_HOSTS \"elsewhere\" does not allow benchling-standin",
        "packager does not wait for init",
        "packager calls benchling-standin but does not depend on it",
    ] {
        assert!(
            problems.contains(expected),
            "not reported: {expected}\n{problems}"
        );
    }
    let mut bad = compose.clone();
    bad["services"]["init"]["environment"]["AWS_ENDPOINT_URL"] = "http://aws:5000".into();
    let problems = wiring_problems(&bad).join("\n");
    assert!(
        problems.contains("init's AWS_ENDPOINT_URL \"http://aws:5000\" names no service running"),
        "{problems}"
    );
}

// ---------------------------------------------------------------------------------------------
// 5. The init script

#[test]
fn the_init_script_is_where_the_init_step_mounts_and_runs_it() {
    let compose = compose();
    let init = &services(&compose)["init"];
    let entrypoint = words("init", init, "entrypoint");
    let script = entrypoint
        .iter()
        .find(|w| w.ends_with(".py"))
        .unwrap_or_else(|| panic!("init's entrypoint {entrypoint:?} runs no Python script"));
    let volumes: Vec<&str> = init["volumes"]
        .as_array()
        .unwrap_or_else(|| panic!("init mounts nothing, so {script} is not there"))
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let (host, inside, mode) = volumes
        .iter()
        .find_map(|volume| {
            let mut parts = volume.split(':');
            let (host, inside) = (parts.next()?, parts.next()?);
            let rest = script.strip_prefix(inside)?.strip_prefix('/')?;
            Some((compose_dir().join(host).join(rest), inside, parts.next()))
        })
        .unwrap_or_else(|| panic!("no volume of init {volumes:?} holds {script}"));
    assert!(
        host.is_file(),
        "init runs {script}, mounted from {}, which does not exist",
        host.display()
    );
    assert_eq!(
        host.canonicalize().unwrap(),
        compose_dir().join("init/init.py").canonicalize().unwrap(),
        "init runs compose/init/init.py"
    );
    assert_eq!(mode, Some("ro"), "init mounts {inside} read-only");
    assert_eq!(init["restart"], "no", "init runs once");
}

/// Runs the init script with `env` (and nothing else of this process's environment).
fn run_init(env: &BTreeMap<String, String>) -> Output {
    Command::new(bw_testkit::moto::python())
        .arg(compose_dir().join("init/init.py"))
        .env_clear()
        .envs(env)
        .output()
        .expect("run python3 compose/init/init.py")
}

/// A queue's attributes by name, through the SDK.
async fn queue_attributes(sqs: &aws_sdk_sqs::Client, name: &str) -> BTreeMap<String, String> {
    let url = sqs
        .get_queue_url()
        .queue_name(name)
        .send()
        .await
        .unwrap_or_else(|e| panic!("the init step did not create {name}: {e:?}"))
        .queue_url()
        .expect("a queue URL")
        .to_owned();
    sqs.get_queue_attributes()
        .queue_url(url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::All)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{name}'s attributes: {e:?}"))
        .attributes()
        .expect("attributes")
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), v.clone()))
        .collect()
}

/// A stack queue's properties as the attributes SQS reports (`true`, `120`, …).
fn stack_attributes(queue: &Value) -> BTreeMap<String, String> {
    QUEUE_ATTRIBUTES
        .iter()
        .filter_map(|key| {
            let value = match &queue["Properties"][key] {
                Value::Null => return None,
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            Some(((*key).to_owned(), value))
        })
        .collect()
}

/// Compares what SQS reports of `name` with the stack's queue `expected`.
fn assert_mirrors(name: &str, actual: &BTreeMap<String, String>, expected: &Value, id: &str) {
    for key in QUEUE_ATTRIBUTES {
        let want = stack_attributes(expected).get(key).cloned();
        let got = actual.get(key).cloned();
        // What the stack leaves out is SQS's default, which SQS may report or not.
        let default = match key {
            "FifoQueue" | "ContentBasedDeduplication" => Some("false"),
            "DeduplicationScope" => Some("queue"),
            "FifoThroughputLimit" => Some("perQueue"),
            _ => None,
        };
        let same = got == want || (want.is_none() && (got.is_none() || got.as_deref() == default));
        assert!(
            same,
            "{name}: {key} is {got:?}, the stack's {id} has {want:?}"
        );
    }
}

#[tokio::test]
async fn the_init_step_creates_everything_as_the_stack_does_and_can_run_again() {
    let compose = compose();
    let stack = stack();
    let moto = Moto::shared();
    let mut init = environment("init", &services(&compose)["init"]);
    // Compose's names and settings, in the test's moto (whose credentials and region these are).
    init.extend(moto.env());
    let mut outputs = Vec::new();
    for _ in 0..2 {
        let output = run_init(&init);
        assert!(
            output.status.success(),
            "init failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        outputs.push(String::from_utf8_lossy(&output.stdout).into_owned());
    }
    let queues: Vec<&str> = init["QUEUES"].split_whitespace().collect();
    for name in &queues {
        assert!(
            outputs[0].contains(&format!("created queue {name}")),
            "the first run says it created {name}:\n{}",
            outputs[0]
        );
    }
    assert!(
        !outputs[1].contains("created"),
        "the second run creates nothing, it updates:\n{}",
        outputs[1]
    );

    // Each compose queue's stack counterpart, through the services' variables.
    let mut counterparts: BTreeMap<String, String> = BTreeMap::new();
    for kind in ServiceKind::ALL {
        let env = environment(kind.name(), &services(&compose)[kind.name()]);
        for variable in container(&stack, kind)["Environment"].as_array().unwrap() {
            let Some(id) = variable["Value"]["Ref"].as_str() else {
                continue;
            };
            if stack["Resources"][id]["Type"] != "AWS::SQS::Queue" {
                continue;
            }
            let url = &env[variable["Name"].as_str().unwrap()];
            let queue = url.rsplit('/').next().unwrap().to_owned();
            counterparts.insert(queue, id.to_owned());
        }
    }
    assert_eq!(
        counterparts.len(),
        4,
        "the stack's four queues map to compose queues: {counterparts:?}"
    );

    let sqs = moto.sqs_client().await;
    for name in &queues {
        let dead_letter = match name.strip_suffix(".fifo") {
            Some(base) => format!("{base}-dlq.fifo"),
            None => format!("{name}-dlq"),
        };
        let source = queue_attributes(&sqs, name).await;
        let target = queue_attributes(&sqs, &dead_letter).await;
        let fifo = name.ends_with(".fifo");
        for (queue, attributes) in [(*name, &source), (dead_letter.as_str(), &target)] {
            assert_eq!(
                attributes.get("FifoQueue").map(String::as_str) == Some("true"),
                fifo,
                "{queue} is FIFO exactly when its name ends in .fifo"
            );
            if fifo {
                assert_eq!(
                    attributes
                        .get("ContentBasedDeduplication")
                        .map(String::as_str),
                    Some("false"),
                    "{queue}: the services set deduplication ids"
                );
            }
        }
        let redrive: Value = serde_json::from_str(
            source
                .get("RedrivePolicy")
                .unwrap_or_else(|| panic!("{name} has no redrive policy")),
        )
        .unwrap();
        assert_eq!(
            redrive["deadLetterTargetArn"], target["QueueArn"],
            "{name} dead-letters into {dead_letter}"
        );
        if let Some(id) = counterparts.get(*name) {
            let queue = &stack["Resources"][id];
            assert_mirrors(name, &source, queue, id);
            let policy = &queue["Properties"]["RedrivePolicy"];
            assert_eq!(
                redrive["maxReceiveCount"].to_string().trim_matches('"'),
                policy["maxReceiveCount"].to_string(),
                "{name}: maxReceiveCount as the stack's {id}"
            );
            let dead_letter_id = policy["deadLetterTargetArn"]["Fn::GetAtt"][0]
                .as_str()
                .unwrap();
            assert_mirrors(
                &dead_letter,
                &target,
                &stack["Resources"][dead_letter_id],
                dead_letter_id,
            );
        }
    }

    let s3 = moto.s3_client().await;
    for bucket in init["BUCKETS"].split_whitespace() {
        s3.head_bucket()
            .bucket(bucket)
            .send()
            .await
            .unwrap_or_else(|e| panic!("the init step did not create bucket {bucket}: {e:?}"));
    }
    let secret = aws_sdk_secretsmanager::Client::new(&moto.sdk_config().await)
        .get_secret_value()
        .secret_id(&init["SECRET_NAME"])
        .send()
        .await
        .unwrap_or_else(|e| panic!("the init step did not create the secret: {e:?}"));
    assert_eq!(
        secret.secret_string(),
        Some(init["SECRET_STRING"].as_str()),
        "the secret holds SECRET_STRING"
    );
}

#[test]
fn the_init_step_fails_with_a_clear_message() {
    let base: BTreeMap<String, String> = [
        ("AWS_ENDPOINT_URL", "http://127.0.0.1:9"),
        ("AWS_ACCESS_KEY_ID", "local"),
        ("AWS_SECRET_ACCESS_KEY", "local"),
        ("AWS_MAX_ATTEMPTS", "1"),
        ("BUCKETS", "b"),
        ("QUEUES", "q.fifo"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    for (change, expected) in [
        (
            ("AWS_ENDPOINT_URL", ""),
            "init: AWS_ENDPOINT_URL is not set",
        ),
        (
            ("SECRET_NAME", "s"),
            "init: set both SECRET_NAME and SECRET_STRING",
        ),
        (
            ("QUEUE_VISIBILITY_TIMEOUT_SECS", "other.fifo=5"),
            "init: QUEUE_VISIBILITY_TIMEOUT_SECS names 'other.fifo', which is not in QUEUES",
        ),
        (
            ("VISIBILITY_TIMEOUT_SECS", "soon"),
            "init: VISIBILITY_TIMEOUT_SECS must be a positive whole number",
        ),
        (
            ("BUCKETS", "b"),
            "init: cannot reach the emulator at http://127.0.0.1:9",
        ),
    ] {
        let mut env = base.clone();
        env.insert(change.0.to_owned(), change.1.to_owned());
        let output = run_init(&env);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            !output.status.success(),
            "init with {change:?} succeeded: {stderr}"
        );
        assert!(
            stderr.contains(expected) && !stderr.contains("Traceback"),
            "init with {change:?} says {stderr:?}, not {expected:?}"
        );
    }
}
