//! A small command-line reader: `--name value` flags, bare `--switch`es, and everything after
//! `--` kept verbatim (the program `startup` runs).

use std::collections::HashMap;
use std::path::PathBuf;
use std::str::FromStr;

use anyhow::{Context as _, bail};

/// One subcommand's arguments.
#[derive(Debug, Default)]
pub struct Args {
    values: HashMap<String, String>,
    switches: Vec<String>,
    /// The words after `--`.
    pub rest: Vec<String>,
}

impl Args {
    /// Reads `words`. `switches` names the flags that take no value; every other flag takes one.
    pub fn parse(
        words: impl IntoIterator<Item = String>,
        switches: &[&str],
    ) -> anyhow::Result<Self> {
        let mut args = Self::default();
        let mut words = words.into_iter();
        while let Some(word) = words.next() {
            if word == "--" {
                args.rest = words.collect();
                break;
            }
            let Some(name) = word.strip_prefix("--") else {
                bail!("unexpected argument {word:?}");
            };
            if switches.contains(&name) {
                args.switches.push(name.to_owned());
            } else {
                let value = words
                    .next()
                    .with_context(|| format!("--{name} needs a value"))?;
                args.values.insert(name.to_owned(), value);
            }
        }
        Ok(args)
    }

    /// Whether the switch `--name` was given.
    pub fn switch(&self, name: &str) -> bool {
        self.switches.iter().any(|s| s == name)
    }

    /// The value of `--name`, parsed, if given.
    pub fn optional<T>(&self, name: &str) -> anyhow::Result<Option<T>>
    where
        T: FromStr,
        T::Err: std::error::Error + Send + Sync + 'static,
    {
        self.values
            .get(name)
            .map(|raw| {
                raw.parse()
                    .with_context(|| format!("--{name} {raw:?} is not valid"))
            })
            .transpose()
    }

    /// The value of `--name`, parsed; an error when it is missing.
    pub fn required<T>(&self, name: &str) -> anyhow::Result<T>
    where
        T: FromStr,
        T::Err: std::error::Error + Send + Sync + 'static,
    {
        self.optional(name)?
            .with_context(|| format!("--{name} is required"))
    }

    /// The path given as `--name`, if any.
    pub fn path(&self, name: &str) -> Option<PathBuf> {
        self.values.get(name).map(PathBuf::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str, switches: &[&str]) -> anyhow::Result<Args> {
        Args::parse(line.split_whitespace().map(str::to_owned), switches)
    }

    #[test]
    fn reads_values_switches_and_the_rest() {
        let args = parse("--count 5 --moto --out /tmp/x -- prog --flag", &["moto"]).unwrap();
        assert_eq!(args.required::<usize>("count").unwrap(), 5);
        assert!(args.switch("moto"));
        assert_eq!(args.path("out"), Some(PathBuf::from("/tmp/x")));
        assert_eq!(args.rest, ["prog", "--flag"]);
        assert_eq!(args.optional::<u16>("port").unwrap(), None);
    }

    #[test]
    fn names_the_bad_flag() {
        assert!(parse("--count", &[]).is_err());
        assert!(parse("count 5", &[]).is_err());
        let args = parse("--count many", &[]).unwrap();
        let error = args.required::<usize>("count").unwrap_err().to_string();
        assert!(error.contains("--count"), "{error}");
        assert!(args.required::<u16>("port").is_err());
    }
}
