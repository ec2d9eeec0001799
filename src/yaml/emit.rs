//! JSON values as block YAML that YAML 1.1 and YAML 1.2 readers read back the same.
//!
//! Common emitters quote only what their own (YAML 1.2) resolver would misread, so `on`, `y`,
//! `0755` or `1_000` come out bare and kubectl reads a boolean or a number. Here a string is
//! written bare only when it starts with a letter, `/` or `_`, holds nothing but letters,
//! digits and `_ ./:@+=-`, and is none of the 1.1 boolean or null words; everything else is
//! double-quoted with escapes every reader knows. No number, timestamp or sexagesimal starts
//! with a letter, so none can be written bare.

use std::fmt::Write as _;

use serde_json::{Map, Number, Value};

/// The document as block YAML, ending in a newline, without a `---` line.
pub fn document(value: &Value) -> String {
    let mut out = String::new();
    match value {
        Value::Object(m) if !m.is_empty() => mapping(&mut out, m, 0, false),
        Value::Array(a) if !a.is_empty() => sequence(&mut out, a, 0, false),
        scalar => {
            out.push_str(&inline(scalar));
            out.push('\n');
        }
    }
    out
}

fn pad(out: &mut String, indent: usize) {
    out.extend(std::iter::repeat_n(' ', indent));
}

/// `first_inline`: the cursor already stands after `- `, where the first key goes.
fn mapping(out: &mut String, m: &Map<String, Value>, indent: usize, first_inline: bool) {
    for (i, (k, v)) in m.iter().enumerate() {
        if i > 0 || !first_inline {
            pad(out, indent);
        }
        out.push_str(&string(k));
        out.push(':');
        match v {
            Value::Object(child) if !child.is_empty() => {
                out.push('\n');
                mapping(out, child, indent + 2, false);
            }
            Value::Array(items) if !items.is_empty() => {
                out.push('\n');
                sequence(out, items, indent, false);
            }
            scalar => {
                out.push(' ');
                out.push_str(&inline(scalar));
                out.push('\n');
            }
        }
    }
}

fn sequence(out: &mut String, items: &[Value], indent: usize, first_inline: bool) {
    for (i, item) in items.iter().enumerate() {
        if i > 0 || !first_inline {
            pad(out, indent);
        }
        out.push('-');
        match item {
            Value::Object(m) if !m.is_empty() => {
                out.push(' ');
                mapping(out, m, indent + 2, true);
            }
            Value::Array(inner) if !inner.is_empty() => {
                out.push(' ');
                sequence(out, inner, indent + 2, true);
            }
            scalar => {
                out.push(' ');
                out.push_str(&inline(scalar));
                out.push('\n');
            }
        }
    }
}

/// A scalar, or an empty collection, on one line.
fn inline(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => number(n),
        Value::String(s) => string(s),
        Value::Array(_) => "[]".into(),
        Value::Object(_) => "{}".into(),
    }
}

/// Integers as they are; floats always with a `.` and a signed exponent, the only float
/// syntax that YAML 1.1 readers (which require both) and YAML 1.2 readers share.
fn number(n: &Number) -> String {
    if n.is_i64() || n.is_u64() {
        return n.to_string();
    }
    let f = n.as_f64().unwrap_or_default();
    let text = format!("{f:?}");
    match text.split_once('e') {
        Some((mantissa, exp)) => {
            let mantissa = if mantissa.contains('.') {
                mantissa.to_string()
            } else {
                format!("{mantissa}.0")
            };
            let exp = if exp.starts_with('-') {
                exp.to_string()
            } else {
                format!("+{exp}")
            };
            format!("{mantissa}e{exp}")
        }
        None if text.contains('.') => text,
        None => format!("{text}.0"),
    }
}

/// A string bare when every reader takes it for that string, else double-quoted.
pub fn string(s: &str) -> String {
    if plain_is_safe(s) { s.to_string() } else { quote(s) }
}

/// Words YAML 1.1 (or 1.2) reads as booleans or null, in any letter case: quoting more than go-yaml
/// v2 strictly needs (it knows only `yes`, `Yes`, `YES`) costs nothing.
const RESERVED: &[&str] = &["y", "n", "yes", "no", "on", "off", "true", "false", "null"];

fn plain_is_safe(s: &str) -> bool {
    let Some(first) = s.chars().next() else {
        return false;
    };
    let allowed = |c: char| c.is_ascii_alphanumeric() || "_ ./:@+=-".contains(c);
    (first.is_ascii_alphabetic() || first == '/' || first == '_')
        && s.chars().all(allowed)
        && !s.ends_with([' ', ':'])
        && !s.contains(": ")
        && !s.contains(" #")
        && !RESERVED.iter().any(|w| w.eq_ignore_ascii_case(s))
}

/// Double-quoted, escaping `"`, `\` and every character a YAML 1.1 reader does not accept
/// raw in a quoted scalar (controls, DEL, C1, U+2028/2029 line breaks, BOM, non-characters).
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\0' => out.push_str("\\0"),
            ' '..='~' => out.push(c),
            c if printable(c) => out.push(c),
            c if u32::from(c) <= 0xFFFF => {
                let _ = write!(out, "\\u{:04X}", u32::from(c));
            }
            c => {
                let _ = write!(out, "\\U{:08X}", u32::from(c));
            }
        }
    }
    out.push('"');
    out
}

/// YAML 1.1's printable set outside ASCII (PyYAML and libyaml reject the rest raw), minus the
/// line breaks `\u{85}`, U+2028 and U+2029 that a quoted scalar would fold.
fn printable(c: char) -> bool {
    matches!(u32::from(c), 0xA0..=0xD7FF | 0xE000..=0xFFFD | 0x1_0000..=0x10_FFFF)
        && !matches!(c, '\u{2028}' | '\u{2029}' | '\u{FEFF}')
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strings_a_yaml_1_1_reader_would_retype_are_quoted() {
        for s in [
            "on",
            "ON",
            "Off",
            "y",
            "N",
            "yes",
            "no",
            "true",
            "null",
            "~",
            "",
            "0755",
            "1_000",
            "1e3",
            "1:20",
            "2024-01-01",
            ".inf",
            "-1",
            "+1",
            "0x1F",
            "<<",
            "=",
            "- a",
            "a: b",
            "a #b",
            " lead",
            "trail ",
            "@x",
            "*x",
            "&x",
            "!x",
            "%x",
            "{x}",
            "[x]",
            "|",
            ">",
            "'q'",
            "\"q\"",
            "multi\nline",
            "tab\tx",
        ] {
            assert!(string(s).starts_with('"'), "{s:?} -> {}", string(s));
        }
        for s in [
            "web",
            "ghcr.io/acme/web:v1",
            "shop-pg-app",
            "uri",
            "DB_URL",
            "postgres://u@h/db",
            "dbhook.io/cluster",
            "a b",
            "onion",
            "nope",
            "/data",
        ] {
            assert_eq!(string(s), s);
        }
        assert_eq!(quote("a\u{2028}b\u{85}c\u{7f}é"), "\"a\\u2028b\\u0085c\\u007Fé\"");
    }

    #[test]
    fn documents_are_block_yaml() {
        let v = json!({
            "kind": "Rollout",
            "metadata": {"labels": {"on": "yes"}, "annotations": {}},
            "spec": {"containers": [
                {"name": "web", "env": [{"name": "A", "value": "0755"}], "args": [["x"], []]},
                "plain"
            ], "replicas": 3, "ratio": 0.5, "big": 1e300, "none": null}
        });
        let want = "kind: Rollout\nmetadata:\n  labels:\n    \"on\": \"yes\"\n  annotations: {}\nspec:\n  containers:\n  - name: web\n    env:\n    - name: A\n      value: \"0755\"\n    args:\n    - - x\n    - []\n  - plain\n  replicas: 3\n  ratio: 0.5\n  big: 1.0e+300\n  none: null\n";
        assert_eq!(document(&v), want);
        let back: Value = serde_yaml_ng::from_str(want).unwrap();
        assert_eq!(back, v);
    }
}
