//! Putting untrusted values into Markdown (READMEs, canvases) so they render literally: escaped
//! inline text, code spans no backtick can close, and autolinks only for plain web URLs.

/// Escapes text so Markdown and HTML render it literally, on one line.
pub fn escape_markdown(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|' | '~' | '&' | '#' | '!' => {
                out.push('\\');
                out.push(c);
            }
            '\r' | '\n' => out.push(' '),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// A code span holding `text` verbatim: the fence is one backtick longer than the longest run
/// inside, and padded when the text starts or ends with a backtick.
pub fn code_span(text: &str) -> String {
    let text: String = text
        .chars()
        .map(|c| if c == '\r' || c == '\n' { ' ' } else { c })
        .filter(|c| !c.is_control())
        .collect();
    let longest = text.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest + 1);
    let pad = if text.starts_with('`') || text.ends_with('`') {
        " "
    } else {
        ""
    };
    format!("{fence}{pad}{text}{pad}{fence}")
}

/// An autolink for an `http(s)` URL without spaces or angle brackets; escaped text otherwise.
pub fn link(url: &str) -> String {
    let plain = (url.starts_with("https://") || url.starts_with("http://"))
        && !url
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '<' || c == '>');
    if plain {
        format!("<{url}>")
    } else {
        escape_markdown(url)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_keeps_values_inert() {
        assert_eq!(escape_markdown("a*b_c"), r"a\*b\_c");
        assert_eq!(
            escape_markdown("[x](javascript:alert(1))"),
            r"\[x\](javascript:alert(1))"
        );
        assert_eq!(escape_markdown("<img src=x>"), r"\<img src=x\>");
        assert_eq!(escape_markdown("two\nlines"), "two lines");
        assert_eq!(code_span("plain.csv"), "`plain.csv`");
        assert_eq!(code_span("a`b"), "``a`b``");
        assert_eq!(code_span("`x``"), "``` `x`` ```");
        assert_eq!(
            link("https://t.benchling.com/x"),
            "<https://t.benchling.com/x>"
        );
        assert_eq!(link("javascript:alert(1)"), "javascript:alert(1)");
        assert_eq!(link("https://x/<a>"), r"https://x/\<a\>");
    }
}
