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
