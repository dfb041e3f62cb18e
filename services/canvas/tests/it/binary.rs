//! The `canvas` binary refuses a bad configuration at start-up, naming every bad field, with
//! the exit code of a configuration error.

use std::process::Command;

#[test]
fn a_bad_workgroup_and_a_missing_database_stop_the_service_at_start_up() {
    let output = Command::new(env!("CARGO_BIN_EXE_canvas"))
        .env_clear()
        .env("PORT", "0")
        .env(
            "CANVAS_QUEUE_URL",
            "http://127.0.0.1:9/123456789012/canvas.fifo",
        )
        .env(
            "EXPORT_QUEUE_URL",
            "http://127.0.0.1:9/123456789012/export.fifo",
        )
        .env("QUILT_WEB_HOST", "catalog.example.com")
        .env("ATHENA_USER_WORKGROUP", "no spaces; allowed")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    for field in ["ATHENA_USER_WORKGROUP", "ATHENA_USER_DATABASE"] {
        assert!(stderr.contains(field), "{field} not named: {stderr}");
    }
}
