//! Signature verification with real P-256 keys and a local JWKS server.

use bw_contracts::ExportJob;
use bw_testkit::signer::{SigningKey, now_unix};

use crate::harness::{Harness, Options, drain, fixture};

fn entry_body() -> Vec<u8> {
    fixture("entry-updated.json")
}

async fn export_jobs(h: &Harness) -> usize {
    drain::<ExportJob>(h.export.as_ref()).await.len()
}

#[tokio::test]
async fn a_valid_signature_is_accepted_and_queued() {
    let h = Harness::start().await;
    let (status, body) = h.post_signed("/event", &entry_body()).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["job"], "export");
    assert_eq!(export_jobs(&h).await, 1);
}

#[tokio::test]
async fn a_tampered_body_is_refused() {
    let h = Harness::start().await;
    let body = entry_body();
    let headers = h.sign(&body).pairs();
    let mut tampered = body.clone();
    let at = tampered.iter().position(|b| *b == b'7').unwrap();
    tampered[at] = b'8';
    let (status, answer) = h.post("/event", &tampered, &headers).await;
    assert_eq!(status, 403);
    assert_eq!(answer["reason"], "invalid_signature");
    assert_eq!(export_jobs(&h).await, 0);
}

#[tokio::test]
async fn a_signature_by_another_key_is_refused() {
    let h = Harness::start().await;
    let body = entry_body();
    let intruder = SigningKey::generate("intruder");
    let headers = intruder.sign("msg_intruder", now_unix(), &body).pairs();
    let (status, answer) = h.post("/event", &body, &headers).await;
    assert_eq!(
        (status, answer["reason"].as_str()),
        (403, Some("invalid_signature"))
    );
    assert_eq!(export_jobs(&h).await, 0);
}

#[tokio::test]
async fn timestamps_outside_five_minutes_are_refused_both_ways() {
    let h = Harness::start().await;
    let body = entry_body();
    for (offset, reason) in [(-301, "stale_timestamp"), (301, "future_timestamp")] {
        let headers = h.key.sign("msg_time", now_unix() + offset, &body).pairs();
        let (status, answer) = h.post("/event", &body, &headers).await;
        assert_eq!(
            (status, answer["reason"].as_str()),
            (403, Some(reason)),
            "{offset}"
        );
    }
    let mut headers = h.sign(&body).pairs();
    headers[1].1 = "yesterday".into();
    let (status, answer) = h.post("/event", &body, &headers).await;
    assert_eq!(
        (status, answer["reason"].as_str()),
        (403, Some("invalid_timestamp"))
    );
    assert_eq!(export_jobs(&h).await, 0);
}

#[tokio::test]
async fn each_missing_header_is_named() {
    let h = Harness::start().await;
    let body = entry_body();
    let signed = h.sign(&body).pairs();
    for skip in 0..signed.len() {
        let headers: Vec<_> = signed
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != skip)
            .map(|(_, h)| h.clone())
            .collect();
        let (status, answer) = h.post("/event", &body, &headers).await;
        assert_eq!(status, 403);
        assert_eq!(answer["reason"], "missing_headers");
        let message = answer["message"].as_str().unwrap();
        assert!(message.contains(signed[skip].0), "{message}");
    }
    assert_eq!(export_jobs(&h).await, 0);
}

#[tokio::test]
async fn one_valid_signature_among_several_suffices() {
    let h = Harness::start().await;
    let body = entry_body();
    let mut headers = h.sign(&body).pairs();
    let other = SigningKey::generate("other");
    let bogus = other.signature(&headers[0].1, &headers[1].1, &body);
    // A non-DER item, a DER item from another key, then the real one.
    headers[2].1 = format!("v1,c2lnbmF0dXJl v1der,{bogus} {}", headers[2].1);
    let (status, answer) = h.post("/event", &body, &headers).await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(export_jobs(&h).await, 1);
}

#[tokio::test]
async fn a_key_rotation_is_picked_up_without_restart() {
    let h = Harness::start().await;
    let body = entry_body();
    assert_eq!(h.post_signed("/event", &body).await.0, 202);
    let fetches_before = h.jwks.fetches();

    let rotated = SigningKey::generate("key-2");
    h.jwks.set_keys(&[&rotated]);
    let headers = rotated.sign("msg_rotated", now_unix(), &body).pairs();
    let (status, answer) = h.post("/event", &body, &headers).await;
    assert_eq!(status, 202, "{answer}");
    assert!(h.jwks.fetches() > fetches_before, "the new key was fetched");

    // The old key was removed from the set, so its signatures no longer verify.
    let (status, _) = h.post_signed("/event", &body).await;
    assert_eq!(status, 403);
    assert_eq!(export_jobs(&h).await, 2);
}

#[tokio::test]
async fn a_replayed_webhook_id_is_acknowledged_but_queued_once() {
    let h = Harness::start().await;
    let body = entry_body();
    let headers = h.sign(&body).pairs();
    let (first, _) = h.post("/event", &body, &headers).await;
    let (second, answer) = h.post("/prod/event", &body, &headers).await;
    assert_eq!((first, second), (202, 200));
    assert_eq!(answer["status"], "duplicate");
    assert_eq!(export_jobs(&h).await, 1);
}

#[tokio::test]
async fn a_jwks_outage_is_a_retryable_503_not_a_403() {
    let h = Harness::start_with(Options {
        jwks_down: true,
        ..Options::default()
    })
    .await;
    let (status, answer) = h.post_signed("/event", &entry_body()).await;
    assert_eq!(status, 503, "{answer}");
    assert_eq!(answer["reason"], "jwks_unavailable");
    h.jwks.set_failing(false);
    let (status, _) = h.post_signed("/event", &entry_body()).await;
    assert_eq!(status, 202);
    assert_eq!(export_jobs(&h).await, 1);
}

#[tokio::test]
async fn an_unknown_key_during_an_outage_is_a_503_so_benchling_retries() {
    let h = Harness::start().await;
    let body = entry_body();
    assert_eq!(h.post_signed("/event", &body).await.0, 202);
    let rotated = SigningKey::generate("key-2");
    h.jwks.set_keys(&[&h.key, &rotated]);
    h.jwks.set_failing(true);
    let headers = rotated.sign("msg_during_outage", now_unix(), &body).pairs();
    let (status, answer) = h.post("/event", &body, &headers).await;
    assert_eq!(
        (status, answer["reason"].as_str()),
        (503, Some("jwks_unavailable"))
    );
    h.jwks.set_failing(false);
    let (status, _) = h.post("/event", &body, &headers).await;
    assert_eq!(
        status, 202,
        "the retry of the same delivery is processed afresh"
    );
    assert_eq!(export_jobs(&h).await, 2);
}

#[tokio::test]
async fn keys_are_fetched_before_the_first_webhook() {
    let h = Harness::start().await;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    while h.jwks.fetches() == 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(
        h.jwks.fetches(),
        1,
        "pre-fetched once when the secret loaded"
    );
    assert_eq!(h.post_signed("/event", &entry_body()).await.0, 202);
    assert_eq!(
        h.jwks.fetches(),
        1,
        "the first webhook used the cached keys"
    );
}
