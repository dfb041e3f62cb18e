//! What the benchmarks' command lines share: where the release binaries and results live, and
//! the values of `--repeats`-style counts and `--set NAME=VALUE`.

use std::path::PathBuf;

use anyhow::Context as _;

/// The OAuth client the Benchling stand-in accepts and the service's secret names.
pub const CLIENT_ID: &str = "bench-client";
/// Its secret.
pub const CLIENT_SECRET: &str = "bench-secret";

/// The directory of this executable (where the release service binaries are built too) and the
/// target directory above it (where results go).
pub fn locations() -> anyhow::Result<(PathBuf, PathBuf)> {
    let exe = std::env::current_exe().context("locating this executable")?;
    let bin_dir = exe
        .parent()
        .context("this executable has no directory")?
        .to_path_buf();
    let target = bin_dir.parent().unwrap_or(&bin_dir).to_path_buf();
    Ok((bin_dir, target))
}

/// `value` as a count of at least `min`.
pub fn count(flag: &str, value: &str, min: usize) -> anyhow::Result<usize> {
    value
        .parse()
        .ok()
        .filter(|&n| n >= min)
        .with_context(|| format!("{flag} {value:?}: expected a count ≥ {min}"))
}

/// The `NAME=VALUE` of `--set`.
pub fn env_pair(value: &str) -> anyhow::Result<(String, String)> {
    let (name, value) = value
        .split_once('=')
        .with_context(|| format!("--set {value:?}: expected NAME=VALUE"))?;
    Ok((name.to_owned(), value.to_owned()))
}
