//! The `packager` binary refuses a broken README template at start-up, naming it, with the exit
//! code of a configuration error.

use std::process::Command;

#[test]
fn a_broken_readme_template_stops_the_service_at_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let template = dir.path().join("readme.md.j2");
    std::fs::write(&template, "# {{ display_id }\n").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_packager"))
        .env_clear()
        .env("README_TEMPLATE", &template)
        .env("PORT", "0")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&template.display().to_string()) && stderr.contains("line 1"),
        "{stderr}"
    );
}
