//! Turns `LOG_LEVEL` values into log filters.

use tracing_subscriber::EnvFilter;

/// The filter used when `LOG_LEVEL` is unset.
pub(crate) const DEFAULT_DIRECTIVES: &str = "info";

/// Builds the log filter for `raw`: a level name (the upstream Python names `DEBUG`, `INFO`,
/// `WARNING`, `ERROR`, `CRITICAL`, plus `TRACE` and `OFF`, in any case) or `tracing`
/// directives such as `info,bw_ingress=debug`, whose levels may use the same names.
/// The error says why the value was refused.
pub(crate) fn parse_filter(raw: &str) -> Result<EnvFilter, String> {
    let directives = normalize(raw)?;
    EnvFilter::builder()
        .parse(&directives)
        .map_err(|e| format!("{e} in {directives:?}"))
}

fn normalize(raw: &str) -> Result<String, String> {
    let parts: Vec<&str> = raw
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    match parts.as_slice() {
        [] => Err("no level given".to_owned()),
        // `tracing` would read a lone unknown word as a target name and silence every other
        // target, which is never what `LOG_LEVEL=verbose` means.
        [single] if !single.contains('=') => {
            level_name(single).map(str::to_owned).ok_or_else(|| {
                format!(
                    "expected DEBUG, INFO, WARNING, ERROR, CRITICAL, TRACE, OFF or tracing \
                 directives such as info,bw_ingress=debug, got {single:?}"
                )
            })
        }
        _ => Ok(parts
            .iter()
            .map(|part| normalize_directive(part))
            .collect::<Vec<_>>()
            .join(",")),
    }
}

/// Rewrites the level of one directive to its `tracing` name; anything else is left for
/// the `tracing` parser to judge.
fn normalize_directive(part: &str) -> String {
    match part.rsplit_once('=') {
        Some((target, level)) => {
            level_name(level).map_or_else(|| part.to_owned(), |level| format!("{target}={level}"))
        }
        None => level_name(part).map_or_else(|| part.to_owned(), str::to_owned),
    }
}

fn level_name(word: &str) -> Option<&'static str> {
    Some(match word.trim().to_ascii_lowercase().as_str() {
        "trace" => "trace",
        "debug" => "debug",
        "info" => "info",
        "warn" | "warning" => "warn",
        "error" | "critical" => "error",
        "off" => "off",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_level_names_map_to_tracing_levels() {
        for (raw, want) in [
            ("DEBUG", "debug"),
            ("info", "info"),
            ("WARNING", "warn"),
            ("Warn", "warn"),
            ("ERROR", "error"),
            ("CRITICAL", "error"),
            ("trace", "trace"),
            (" off ", "off"),
        ] {
            assert_eq!(normalize(raw).as_deref(), Ok(want), "{raw}");
            assert_eq!(parse_filter(raw).unwrap().to_string(), want, "{raw}");
        }
    }

    #[test]
    fn directive_strings_are_accepted_with_python_levels_inside() {
        assert_eq!(
            normalize("WARNING, bw_ingress=DEBUG,aws_smithy_runtime=critical").as_deref(),
            Ok("warn,bw_ingress=debug,aws_smithy_runtime=error")
        );
        let filter = parse_filter("info,bw_ingress=debug").unwrap().to_string();
        assert!(filter.contains("bw_ingress=debug"), "{filter}");
        assert!(parse_filter("bw_ingress[job{entry_id=x}]=trace").is_ok());
    }

    #[test]
    fn unknown_words_and_levels_are_refused() {
        let lone = parse_filter("verbose").unwrap_err();
        assert!(lone.contains("expected DEBUG, INFO"), "{lone}");
        assert!(parse_filter("info,bw_ingress=loud").is_err());
        assert!(parse_filter(" , ").is_err());
    }
}
