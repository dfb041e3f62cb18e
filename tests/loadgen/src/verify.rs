//! `webhook-bench verify`: what one webhook signature check costs on its own, the floor under
//! the ingress's CPU per webhook. It checks the same ES256 signature of a real webhook body with
//! the key type the ingress uses (`bw_benchling::VerifyingKey`, aws-lc-rs), on one thread and
//! then on as many threads as there are cores, and reports each thread's CPU time per check.

use std::time::Instant;

use anyhow::{Context as _, ensure};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bw_benchling::VerifyingKey;
use bw_testkit::signer::{SigningKey, now_unix};

use crate::requests::FIXTURE;

/// The body the load benchmark signs (before its ids are made unique).
const BODY: &[u8] = FIXTURE.as_bytes();

/// Runs `count` checks per thread, first on one thread, then on `threads` at once.
pub fn verify(count: u32, threads: usize) -> anyhow::Result<()> {
    let signer = SigningKey::generate("bench");
    let jwk = signer.jwk();
    let coordinate = |name: &str| jwk[name].as_str().context("the JWK lacks a coordinate");
    let key = VerifyingKey::from_coordinates(None, coordinate("x")?, coordinate("y")?)?;
    let (id, timestamp) = ("msg_bench", now_unix().to_string());
    let signature = STANDARD.decode(signer.signature(id, &timestamp, BODY))?;
    let mut message = format!("{id}.{timestamp}.").into_bytes();
    message.extend_from_slice(BODY);
    ensure!(
        key.verifies(&message, &signature),
        "the signature does not verify"
    );

    println!(
        "ES256 verification (aws-lc-rs) of a {}-byte webhook, {count} checks per thread",
        BODY.len()
    );
    for threads in [1, threads] {
        let started = Instant::now();
        let cpu: Vec<f64> = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..threads)
                .map(|_| scope.spawn(|| checks(&key, &message, &signature, count)))
                .collect();
            workers
                .into_iter()
                .map(|worker| worker.join().expect("a checking thread panicked"))
                .collect()
        });
        let wall = started.elapsed().as_secs_f64();
        let per_check = cpu.iter().sum::<f64>() / f64::from(count) / cpu.len() as f64;
        let rate = f64::from(count) * threads as f64 / wall;
        println!(
            "{threads} thread(s): {:.1} µs of CPU per check, {rate:.0} checks/s in all",
            per_check * 1e6
        );
    }
    Ok(())
}

/// Checks the signature `count` times; returns the thread's CPU seconds.
fn checks(key: &VerifyingKey, message: &[u8], signature: &[u8], count: u32) -> f64 {
    let before = thread_cpu();
    for _ in 0..count {
        assert!(key.verifies(message, signature), "a check failed");
    }
    thread_cpu() - before
}

fn thread_cpu() -> f64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid timespec for the call to fill.
    let status = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &raw mut now) };
    assert_eq!(status, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID) failed");
    now.tv_sec as f64 + now.tv_nsec as f64 / 1e9
}
