//! What the benchmarks' command lines share: where the release binaries and results live, and
//! the values of `--repeats`-style counts and `--set NAME=VALUE`.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};

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

/// Reads `--flag value` pairs, handing each to `apply`, which answers whether it knows the flag.
/// Returns `false` for `--help` (the caller prints `usage`); an unknown flag is an error that
/// shows `usage`.
pub fn flags(
    words: impl IntoIterator<Item = String>,
    usage: &str,
    mut apply: impl FnMut(&str, String) -> anyhow::Result<bool>,
) -> anyhow::Result<bool> {
    let mut words = words.into_iter();
    while let Some(flag) = words.next() {
        if matches!(flag.as_str(), "--help" | "-h") {
            return Ok(false);
        }
        let value = words
            .next()
            .with_context(|| format!("{flag} needs a value"))?;
        if !apply(&flag, value)? {
            bail!("unknown flag {flag:?}\n{usage}");
        }
    }
    Ok(true)
}

/// Checks that the release binary of `service` (built from `crate_name`) exists at `path`.
pub fn service_binary(path: &Path, service: &str, crate_name: &str) -> anyhow::Result<()> {
    if !path.is_file() {
        bail!(
            "no {service} binary at {} (build it with cargo build --release -p {crate_name}, or pass --{service})",
            path.display()
        );
    }
    Ok(())
}

/// Ends a benchmark binary: a failure is printed with its causes, prefixed by `name`, and exits 1.
pub fn exit_on_error(name: &str, result: anyhow::Result<()>) {
    if let Err(error) = result {
        eprintln!("{name}: {error:#}");
        std::process::exit(1);
    }
}
