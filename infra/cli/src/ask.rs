//! Questions to the operator before a command changes something, and the display of long waits:
//! both only on a terminal.

use std::io::IsTerminal as _;
use std::time::Duration;

use anyhow::Context as _;
use indicatif::{ProgressBar, ProgressStyle};

/// Asks `question` on the terminal and succeeds on "y"; without a terminal it refuses, naming
/// `--yes`, rather than guess.
///
/// # Errors
/// When there is no terminal, or the answer is not yes (`declined` says what was left alone).
pub fn confirm(question: &str, declined: &str) -> anyhow::Result<()> {
    anyhow::ensure!(
        std::io::stdin().is_terminal(),
        "{question} Give --yes to go ahead without a terminal to ask on."
    );
    eprint!("{question} [y/N] ");
    let mut answer = String::new();
    std::io::stdin()
        .read_line(&mut answer)
        .context("reading the answer")?;
    anyhow::ensure!(matches!(answer.trim(), "y" | "Y" | "yes"), "{declined}");
    Ok(())
}

/// Asks `question` on the terminal and returns the trimmed answer, or `default` for an empty
/// one (shown in brackets when not empty).
///
/// # Errors
/// When the input ends before an answer.
pub fn prompt(question: &str, default: Option<&str>) -> anyhow::Result<String> {
    match default.filter(|d| !d.is_empty()) {
        Some(default) => eprint!("{question} [{default}]: "),
        None => eprint!("{question}: "),
    }
    let mut answer = String::new();
    let read = std::io::stdin()
        .read_line(&mut answer)
        .context("reading the answer")?;
    anyhow::ensure!(read > 0, "no answer to {question:?}: the input ended");
    let answer = answer.trim();
    Ok(match (answer.is_empty(), default) {
        (true, Some(default)) => default.to_owned(),
        _ => answer.to_owned(),
    })
}

/// A spinner on standard error for a wait of unknown length; drawn only on a terminal.
pub fn spinner(message: impl Into<String>) -> ProgressBar {
    let bar = ProgressBar::new_spinner().with_message(message.into());
    bar.set_style(
        ProgressStyle::with_template("{spinner} {elapsed:>4} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}
