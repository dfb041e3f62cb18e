//! A template's JSON written as block-style YAML, the form operators read and diff.
//!
//! Every string is written double-quoted with JSON's escapes, which YAML reads the same way, so
//! no value can turn into a number, a boolean or a tag by accident ("on", "1e3", "!Ref").

use std::fmt::Write as _;

use serde_json::Value;

/// `value` as a YAML document.
pub fn to_yaml(value: &Value) -> String {
    let mut out = String::new();
    match value {
        Value::Object(map) if !map.is_empty() => write_map(&mut out, map, 0),
        Value::Array(items) if !items.is_empty() => write_seq(&mut out, items, 0),
        scalar => {
            out.push_str(&scalar_text(scalar));
            out.push('\n');
        }
    }
    out
}

fn write_map(out: &mut String, map: &serde_json::Map<String, Value>, indent: usize) {
    for (key, value) in map {
        out.push_str(&" ".repeat(indent));
        out.push_str(&key_text(key));
        out.push(':');
        write_value(out, value, indent);
    }
}

fn write_seq(out: &mut String, items: &[Value], indent: usize) {
    for item in items {
        out.push_str(&" ".repeat(indent));
        out.push('-');
        match item {
            Value::Object(map) if !map.is_empty() => {
                // The first key shares the dash's line; the rest align under it.
                let mut nested = String::new();
                write_map(&mut nested, map, indent + 2);
                out.push(' ');
                out.push_str(&nested[indent + 2..]);
            }
            Value::Array(inner) if !inner.is_empty() => {
                out.push('\n');
                write_seq(out, inner, indent + 2);
            }
            scalar => {
                out.push(' ');
                out.push_str(&scalar_text(scalar));
                out.push('\n');
            }
        }
    }
}

fn write_value(out: &mut String, value: &Value, indent: usize) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            out.push('\n');
            write_map(out, map, indent + 2);
        }
        Value::Array(items) if !items.is_empty() => {
            out.push('\n');
            write_seq(out, items, indent + 2);
        }
        scalar => {
            let _ = writeln!(out, " {}", scalar_text(scalar));
        }
    }
}

fn scalar_text(value: &Value) -> String {
    match value {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => quoted(s),
        Value::Array(_) => "[]".to_owned(),
        Value::Object(_) => "{}".to_owned(),
    }
}

fn key_text(key: &str) -> String {
    let plain = key
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':'))
        && !key.ends_with(':');
    if plain { key.to_owned() } else { quoted(key) }
}

fn quoted(s: &str) -> String {
    // A JSON string is a valid YAML double-quoted scalar.
    Value::String(s.to_owned()).to_string()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn writes_block_style_with_quoted_strings() {
        let value = json!({
            "Resources": {
                "Queue": {"Type": "AWS::SQS::Queue", "Properties": {"FifoQueue": true, "Delay": 0}},
            },
            "List": ["a", {"Fn::GetAtt": ["Lb", "DNSName"], "Other": "on"}, [1, 2], [], {}],
            "Empty": {},
            "has space": "line\nbreak \"q\"",
        });
        let expected = "\
Empty: {}
List:
  - \"a\"
  - Fn::GetAtt:
      - \"Lb\"
      - \"DNSName\"
    Other: \"on\"
  -
    - 1
    - 2
  - []
  - {}
Resources:
  Queue:
    Properties:
      Delay: 0
      FifoQueue: true
    Type: \"AWS::SQS::Queue\"
\"has space\": \"line\\nbreak \\\"q\\\"\"
";
        assert_eq!(to_yaml(&value), expected);
    }
}
