//! Typed reads of environment variables, with errors that name the variable.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// One problem with one configuration field.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FieldError {
    /// A required variable is unset or empty.
    #[error("{field}: required but not set")]
    Missing {
        /// The variable's name.
        field: String,
    },
    /// A variable is set to a value that does not parse or is out of range.
    #[error("{field}: {reason}")]
    Invalid {
        /// The variable's name.
        field: String,
        /// Why the value was refused (never the value itself when it may be secret).
        reason: String,
    },
}

impl FieldError {
    /// A value that was refused.
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// The field this error is about.
    pub fn field(&self) -> &str {
        match self {
            Self::Missing { field } | Self::Invalid { field, .. } => field,
        }
    }
}

/// Every problem found while reading a service's configuration, so one start-up attempt
/// reports all of them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError(pub Vec<FieldError>);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid configuration: ")?;
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                write!(f, "; ")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

impl From<FieldError> for ConfigError {
    fn from(e: FieldError) -> Self {
        Self(vec![e])
    }
}

/// A snapshot of environment variables with typed accessors. Each accessor records its
/// problem and returns a fallback, so a loader can read every field and then call
/// [`Env::finish`] to report all problems at once.
#[derive(Debug, Default)]
pub struct Env {
    vars: HashMap<String, String>,
    errors: std::cell::RefCell<Vec<FieldError>>,
}

impl Env {
    /// The current process environment (variables that are not valid UTF-8 are skipped).
    pub fn from_process() -> Self {
        Self::from_pairs(
            std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?))),
        )
    }

    /// An environment made of the given pairs (for tests and embedding).
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        Self {
            vars: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
            errors: Default::default(),
        }
    }

    /// The trimmed value, or `None` when unset or blank.
    pub fn optional(&self, name: &str) -> Option<String> {
        self.vars
            .get(name)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    }

    /// The first of several names that is set (for aliases), with the name that matched.
    pub fn first_of(&self, names: &[&'static str]) -> Option<(&'static str, String)> {
        names.iter().find_map(|n| self.optional(n).map(|v| (*n, v)))
    }

    /// A required value; records [`FieldError::Missing`] when absent.
    pub fn required(&self, name: &str) -> Option<String> {
        let value = self.optional(name);
        if value.is_none() {
            self.record(FieldError::Missing { field: name.into() });
        }
        value
    }

    /// A value parsed with `FromStr`, or `default` when unset.
    pub fn parse_or<T>(&self, name: &str, default: T) -> T
    where
        T: FromStr,
        T::Err: fmt::Display,
    {
        match self.optional(name) {
            None => default,
            Some(raw) => raw.parse().unwrap_or_else(|e| {
                self.record(FieldError::invalid(
                    name,
                    format!("cannot parse {raw:?}: {e}"),
                ));
                default
            }),
        }
    }

    /// A whole number of seconds, or `default` when unset; must lie within `range`.
    pub fn seconds_or(
        &self,
        name: &str,
        default: Duration,
        range: std::ops::RangeInclusive<u64>,
    ) -> Duration {
        self.ranged(name, default.as_secs(), range)
            .map_or(default, Duration::from_secs)
    }

    /// A whole number of milliseconds, or `default` when unset; must lie within `range`.
    pub fn millis_or(
        &self,
        name: &str,
        default: Duration,
        range: std::ops::RangeInclusive<u64>,
    ) -> Duration {
        let default_ms = u64::try_from(default.as_millis()).unwrap_or(u64::MAX);
        self.ranged(name, default_ms, range)
            .map_or(default, Duration::from_millis)
    }

    /// An integer within `range`, or `default` when unset.
    pub fn ranged(
        &self,
        name: &str,
        default: u64,
        range: std::ops::RangeInclusive<u64>,
    ) -> Option<u64> {
        let value = self.parse_or(name, default);
        if range.contains(&value) {
            Some(value)
        } else {
            self.record(FieldError::invalid(
                name,
                format!("{value} is outside {}..={}", range.start(), range.end()),
            ));
            None
        }
    }

    /// An integer within `range`, or `default` when unset or refused (the refusal is recorded).
    pub fn ranged_or(&self, name: &str, default: u64, range: std::ops::RangeInclusive<u64>) -> u64 {
        self.ranged(name, default, range).unwrap_or(default)
    }

    /// A boolean (`true`/`false`, `1`/`0`, `yes`/`no`, `on`/`off`, any case), or `default`.
    pub fn flag_or(&self, name: &str, default: bool) -> bool {
        match self.optional(name) {
            None => default,
            Some(raw) => parse_flag(&raw).unwrap_or_else(|| {
                self.record(FieldError::invalid(
                    name,
                    format!("expected true/false, 1/0, yes/no or on/off, got {raw:?}"),
                ));
                default
            }),
        }
    }

    /// An optional `http(s)` URL; records an error for anything else.
    pub fn http_url(&self, name: &str) -> Option<String> {
        let raw = self.optional(name)?;
        match url::Url::parse(&raw) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {}
            _ => self.record(FieldError::invalid(name, "must be an http(s) URL")),
        }
        Some(raw)
    }

    /// Records a problem found by the caller's own validation.
    pub fn record(&self, error: FieldError) {
        self.errors.borrow_mut().push(error);
    }

    /// Returns `value` when no problem was recorded, otherwise all problems.
    pub fn finish<T>(self, value: T) -> Result<T, ConfigError> {
        let errors = self.errors.into_inner();
        if errors.is_empty() {
            Ok(value)
        } else {
            Err(ConfigError(errors))
        }
    }
}

/// Parses the boolean spellings operators use.
pub fn parse_flag(raw: &str) -> Option<bool> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Some(true),
        "false" | "0" | "no" | "off" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collects_every_problem_with_its_field() {
        let env = Env::from_pairs([("PORT", "eighty"), ("FLAG", "maybe"), ("N", "99")]);
        assert_eq!(env.parse_or::<u16>("PORT", 8080), 8080);
        assert!(env.flag_or("FLAG", true));
        assert_eq!(env.ranged("N", 1, 1..=10), None);
        assert_eq!(env.required("MISSING"), None);
        let err = env.finish(()).unwrap_err();
        let fields: Vec<_> = err.0.iter().map(FieldError::field).collect();
        assert_eq!(fields, ["PORT", "FLAG", "N", "MISSING"]);
        assert!(err.to_string().contains("MISSING: required but not set"));
    }

    #[test]
    fn blank_values_count_as_unset_and_aliases_resolve_in_order() {
        let env = Env::from_pairs([("A", "  "), ("B", " x "), ("C", "y")]);
        assert_eq!(env.optional("A"), None);
        assert_eq!(env.first_of(&["A", "B", "C"]), Some(("B", "x".to_owned())));
        assert!(env.finish(()).is_ok());
    }

    #[test]
    fn flags_accept_operator_spellings() {
        for (raw, want) in [("TRUE", true), ("0", false), ("No", false), ("on", true)] {
            assert_eq!(parse_flag(raw), Some(want), "{raw}");
        }
        assert_eq!(parse_flag("2"), None);
    }
}
