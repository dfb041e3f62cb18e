//! Linked-package queries through the AWS SDK: against moto with seeded rows (values passed as
//! parameters, the configured workgroup used, all rows read), and against a stand-in speaking
//! Athena's JSON protocol for what moto cannot produce (access denied, a missing workgroup, a
//! failed query).

use std::time::Duration;

use bw_canvas::athena::{AthenaError, AthenaOptions, PackageQuery};
use bw_standin::stub::{StubRequest, StubResponse, StubServer};
use bw_testkit::moto::Moto;
use serde_json::json;

fn options(workgroup: &str) -> AthenaOptions {
    AthenaOptions {
        first_poll: Duration::from_millis(10),
        max_poll: Duration::from_millis(50),
        timeout: Duration::from_secs(5),
        ..AthenaOptions::new("quilt_catalog", workgroup)
    }
}

async fn seed(moto: &Moto, rows: &[[&str; 4]]) {
    let header: &[&str] = &["pkg_name", "timestamp", "message", "user_meta"];
    let rows: Vec<&[&str]> = std::iter::once(header)
        .chain(rows.iter().map(|row| row.as_slice()))
        .collect();
    moto.queue_athena_result(&rows).await;
}

/// An Athena client on moto, a new workgroup named after `prefix`, and a query runner in it.
async fn in_new_workgroup(
    moto: &Moto,
    prefix: &str,
) -> (aws_sdk_athena::Client, String, PackageQuery) {
    let client = aws_sdk_athena::Client::new(&moto.sdk_config().await);
    let workgroup = Moto::unique_name(prefix);
    client
        .create_work_group()
        .name(&workgroup)
        .send()
        .await
        .unwrap();
    let query = PackageQuery::new(client.clone(), options(&workgroup)).unwrap();
    (client, workgroup, query)
}

/// One test for every moto case: seeded results are one queue for the whole server.
#[tokio::test]
async fn linked_packages_come_from_a_parameterised_query_in_the_configured_workgroup() {
    let moto = Moto::shared();
    let _turn = moto.athena_turn().await;
    let (client, workgroup, query) = in_new_workgroup(moto, "quilt-wg").await;
    seed(
        moto,
        &[
            ["team/b", "latest", "second", r#"{"experiment_id":"EXP'7"}"#],
            ["team/a", "latest", "first", r#"{"experiment_id":"EXP'7"}"#],
            ["team/b", "latest", "older row", "{}"],
        ],
    )
    .await;
    let packages = query
        .linked_packages("quilt-bucket", "experiment_id", "EXP'7")
        .await
        .unwrap();
    let names: Vec<_> = packages.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["team/a", "team/b"]);
    assert_eq!(packages[1].message.as_deref(), Some("second"));
    assert_eq!(packages[0].user_meta["experiment_id"], "EXP'7");

    let executions = client
        .list_query_executions()
        .work_group(&workgroup)
        .send()
        .await
        .unwrap();
    let ids = executions.query_execution_ids();
    assert_eq!(ids.len(), 1, "the query ran in the configured workgroup");
    let execution = client
        .get_query_execution()
        .query_execution_id(&ids[0])
        .send()
        .await
        .unwrap()
        .query_execution
        .unwrap();
    let sql = execution.query.unwrap();
    assert!(
        !sql.contains("EXP"),
        "a value was spliced into the SQL: {sql}"
    );
    assert!(!sql.contains("experiment_id"), "{sql}");
    assert!(
        sql.contains(r#"FROM "quilt_catalog"."quilt-bucket_packages-view""#),
        "{sql}"
    );
    assert_eq!(execution.work_group.as_deref(), Some(workgroup.as_str()));

    // Nothing seeded: no rows, no packages.
    assert!(
        query
            .linked_packages("quilt-bucket", "experiment_id", "EXP1")
            .await
            .unwrap()
            .is_empty()
    );
    // Unsafe values never reach Athena.
    for (bucket, key) in [
        ("bad\"bucket", "experiment_id"),
        ("quilt-bucket", "a.b')--"),
    ] {
        assert!(matches!(
            query.linked_packages(bucket, key, "EXP1").await,
            Err(AthenaError::Invalid(_))
        ));
    }
}

/// Answers Athena's JSON protocol: `StartQueryExecution` with `start`, `GetQueryExecution` with
/// a FAILED state.
fn athena_stand_in(start: StubResponse) -> StubServer {
    StubServer::start(move |request: &StubRequest| {
        let response = match request.header("x-amz-target").unwrap_or_default() {
            "AmazonAthena.StartQueryExecution" => start.clone(),
            "AmazonAthena.GetQueryExecution" => StubResponse::json(
                "200 OK",
                json!({"QueryExecution": {"QueryExecutionId": "q-1", "Status": {
                    "State": "FAILED",
                    "StateChangeReason": "TABLE_NOT_FOUND: line 1:70: Table 'quilt_catalog.quilt-bucket_packages-view' does not exist"
                }}})
                .to_string(),
            ),
            other => StubResponse::json("400 Bad Request", format!("unexpected {other}")),
        };
        StubResponse {
            content_type: "application/x-amz-json-1.1",
            ..response
        }
    })
}

fn error_body(kind: &str, message: &str) -> StubResponse {
    StubResponse::json(
        "400 Bad Request",
        json!({"__type": kind, "Message": message}).to_string(),
    )
}

async fn against(stand_in: &StubServer) -> PackageQuery {
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(stand_in.url())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_athena::config::Credentials::new(
            "test", "test", None, None, "stub",
        ))
        .load()
        .await;
    let client = aws_sdk_athena::Client::from_conf(
        aws_sdk_athena::config::Builder::from(&config)
            .retry_config(aws_config::retry::RetryConfig::disabled())
            .build(),
    );
    PackageQuery::new(client, options("quilt-user-wg")).unwrap()
}

#[tokio::test]
async fn errors_name_the_workgroup_and_what_to_do() {
    let denied = athena_stand_in(error_body(
        "AccessDeniedException",
        "User: arn:aws:sts::123456789012:assumed-role/task is not authorized to perform: athena:StartQueryExecution",
    ));
    let error = against(&denied)
        .await
        .linked_packages("quilt-bucket", "experiment_id", "EXP1")
        .await
        .unwrap_err();
    let text = error.to_string();
    assert!(matches!(error, AthenaError::AccessDenied { .. }), "{text}");
    assert!(
        text.contains("\"quilt-user-wg\"") && text.contains("athena:StartQueryExecution"),
        "{text}"
    );

    let missing = athena_stand_in(error_body(
        "InvalidRequestException",
        "WorkGroup quilt-user-wg is not found.",
    ));
    let error = against(&missing)
        .await
        .linked_packages("quilt-bucket", "experiment_id", "EXP1")
        .await
        .unwrap_err();
    assert!(matches!(error, AthenaError::NoWorkgroup { .. }), "{error}");
    assert!(
        error.to_string().contains("BENCHLING_ATHENA_WORKGROUP"),
        "{error}"
    );

    let failing = athena_stand_in(StubResponse::json(
        "200 OK",
        json!({"QueryExecutionId": "q-1"}).to_string(),
    ));
    let error = against(&failing)
        .await
        .linked_packages("quilt-bucket", "experiment_id", "EXP1")
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("FAILED") && error.to_string().contains("TABLE_NOT_FOUND"),
        "{error}"
    );
    assert!(!error.is_transient());
}

#[tokio::test]
async fn the_workgroup_check_names_a_missing_disabled_or_forbidden_workgroup() {
    let moto = Moto::shared();
    let (client, _, query) = in_new_workgroup(moto, "checked-wg").await;
    query
        .check_workgroup()
        .await
        .expect("an enabled workgroup passes");
    let missing = PackageQuery::new(client, options("no-such-wg")).unwrap();
    let error = missing.check_workgroup().await.unwrap_err();
    assert!(matches!(error, AthenaError::NoWorkgroup { .. }), "{error}");
    assert!(error.to_string().contains("\"no-such-wg\""), "{error}");

    // What moto cannot produce: Athena's own answers, from a stand-in speaking its protocol.
    let answer = |response: StubResponse| {
        StubServer::start(move |request: &StubRequest| {
            assert_eq!(
                request.header("x-amz-target"),
                Some("AmazonAthena.GetWorkGroup")
            );
            StubResponse {
                content_type: "application/x-amz-json-1.1",
                ..response.clone()
            }
        })
    };
    let disabled = answer(StubResponse::json(
        "200 OK",
        json!({"WorkGroup": {"Name": "quilt-user-wg", "State": "DISABLED"}}).to_string(),
    ));
    let error = against(&disabled)
        .await
        .check_workgroup()
        .await
        .unwrap_err();
    assert!(matches!(error, AthenaError::Disabled { .. }), "{error}");
    assert!(
        error.to_string().contains("\"quilt-user-wg\" is disabled"),
        "{error}"
    );
    let denied = answer(error_body(
        "AccessDeniedException",
        "User: arn:aws:sts::123456789012:assumed-role/task is not authorized to perform: athena:GetWorkGroup",
    ));
    let error = against(&denied).await.check_workgroup().await.unwrap_err();
    assert!(matches!(error, AthenaError::AccessDenied { .. }), "{error}");
    assert!(error.to_string().contains("athena:GetWorkGroup"), "{error}");
    let gone = answer(error_body(
        "InvalidRequestException",
        "WorkGroup quilt-user-wg is not found.",
    ));
    let error = against(&gone).await.check_workgroup().await.unwrap_err();
    assert!(matches!(error, AthenaError::NoWorkgroup { .. }), "{error}");
}
