//! Golden files: output compared byte for byte with a reviewed file under `tests/golden/`.
//! `UPDATE_GOLDEN=1` rewrites them instead; review the diff before committing.

use std::path::PathBuf;

/// Compares `bytes` with `tests/golden/{path}`, or writes it there under `UPDATE_GOLDEN`.
///
/// # Panics
/// When they differ or the golden file is missing (the panic shows the new output).
pub fn check(path: &str, bytes: &[u8]) {
    let file = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../golden")
        .join(path);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        if let Some(dir) = file.parent() {
            std::fs::create_dir_all(dir).expect("golden directory");
        }
        std::fs::write(&file, bytes).expect("golden file written");
        return;
    }
    let golden = std::fs::read(&file)
        .unwrap_or_else(|e| panic!("{}: {e} (UPDATE_GOLDEN=1 writes it)", file.display()));
    assert!(
        golden == bytes,
        "{path} differs from its golden file; new output:\n{}",
        String::from_utf8_lossy(bytes)
    );
}
