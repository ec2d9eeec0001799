//! Keeps credentials out of what dbhook says about its input: messages, warnings, reasons and
//! log fields that quote an object may quote a password; these functions mask it.

use std::borrow::Cow;
use std::sync::LazyLock;

use regex::Regex;

/// What a masked password reads as.
pub const MASK: &str = "***";

/// `text` with the password of every `scheme://user:password@host` and the value of every
/// `…password=value` masked. Anything else is left as it is.
pub fn credentials(text: &str) -> Cow<'_, str> {
    // Both kinds need one of these; most text (every review's names, for the log) has neither.
    if !text.contains('=') && !text.contains("://") {
        return Cow::Borrowed(text);
    }
    let mut ranges = uri_passwords(text);
    ranges.extend(password_params(text));
    if ranges.is_empty() {
        return Cow::Borrowed(text);
    }
    ranges.sort_unstable();
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for (start, end) in ranges {
        if start < at {
            // Overlapping ranges (a `password=` inside a URI's userinfo) are masked once.
            at = at.max(end);
            continue;
        }
        out.push_str(&text[at..start]);
        out.push_str(MASK);
        at = end;
    }
    out.push_str(&text[at..]);
    Cow::Owned(out)
}

/// A serde or parser error message without the input values it quotes
/// (`invalid type: string "…", expected a sequence` → `invalid type: string, expected a
/// sequence`), then [`credentials`]. For errors about input, whose values may be anything.
pub fn input_error(message: &str) -> String {
    static QUOTED: LazyLock<[(Regex, &str); 3]> = LazyLock::new(|| {
        [
            // serde's `Unexpected::Str` is Debug-quoted.
            (Regex::new(r#"string "(?:[^"\\]|\\.)*""#).unwrap(), "string"),
            (
                Regex::new(r"(?s)unknown variant `.*?`, expected").unwrap(),
                "unknown variant, expected",
            ),
            (
                Regex::new(r"(integer|floating point|boolean|character|unknown variant) `[^`]*`").unwrap(),
                "$1",
            ),
        ]
    });
    let mut out = Cow::Borrowed(message);
    for (pattern, with) in QUOTED.iter() {
        if let Cow::Owned(replaced) = pattern.replace_all(&out, *with) {
            out = Cow::Owned(replaced);
        }
    }
    credentials(&out).into_owned()
}

/// Byte ranges of the passwords in `scheme://user:password@host` userinfo.
fn uri_passwords(text: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    for (i, _) in text.match_indices("://") {
        let start = i + 3;
        let end = text[start..]
            .find(|c: char| matches!(c, '/' | '?' | '#') || c.is_whitespace())
            .map_or(text.len(), |n| start + n);
        let authority = &text[start..end];
        let Some(at) = authority.rfind('@') else { continue };
        let Some(colon) = authority[..at].find(':') else {
            continue;
        };
        let password = &authority[colon + 1..at];
        if is_secret(password) {
            out.push((start + colon + 1, start + at));
        }
    }
    out
}

/// Byte ranges of the values of `password=…` (also `sslpassword=`, `PGPASSWORD=`), in JDBC
/// query strings, libpq keyword/value strings and env assignments.
fn password_params(text: &str) -> Vec<(usize, usize)> {
    static PARAM: LazyLock<Regex> = LazyLock::new(|| Regex::new(r#"(?i)password\s*=\s*([^&;,\s"'`]+)"#).unwrap());
    PARAM
        .captures_iter(text)
        .filter_map(|c| c.get(1))
        .filter(|m| is_secret(m.as_str()))
        .map(|m| (m.start(), m.end()))
        .collect()
}

/// A `$(VAR)` reference is not a secret: Kubernetes expands it from another variable.
fn is_secret(password: &str) -> bool {
    let p = password.trim();
    let reference = p.starts_with("$(") && p.ends_with(')') && !p[2..p.len() - 1].contains(['$', '(', ')']);
    !p.is_empty() && p != MASK && !reference
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_in_uris_and_parameters_are_masked() {
        let cases = [
            ("postgres://app:S3cret@db/app", "postgres://app:***@db/app"),
            (
                r#"annotation x: "postgresql://app:p@ss@db:5432" is not valid"#,
                r#"annotation x: "postgresql://app:***@db:5432" is not valid"#,
            ),
            (
                "jdbc:postgresql://db:5432/app?user=app&password=S3cret",
                "jdbc:postgresql://db:5432/app?user=app&password=***",
            ),
            (
                "host=db user=app password=S3cret dbname=app",
                "host=db user=app password=*** dbname=app",
            ),
            ("PGPASSWORD = S3cret", "PGPASSWORD = ***"),
            (
                "https://u:p@example.com and ftp://x:y@z",
                "https://u:***@example.com and ftp://x:***@z",
            ),
            ("postgres://u:x:y@db", "postgres://u:***@db"),
            ("postgres://u:pw@db?password=again", "postgres://u:***@db?password=***"),
        ];
        for (text, want) in cases {
            assert_eq!(credentials(text), want, "{text}");
        }
    }

    #[test]
    fn text_without_credentials_is_untouched() {
        for text in [
            "",
            "postgres://app@db/app",
            "postgres://app:@db/app",
            "postgres://app:$(DB_PASSWORD)@db/app",
            "password=$(PW)",
            "image ghcr.io/acme/web:sha-1 differs from localhost:5000/web@sha256:abc",
            "the password is required",
            "🐘://:@",
            "://",
        ] {
            assert!(matches!(credentials(text), Cow::Borrowed(_)), "{text}");
        }
    }

    #[test]
    fn input_errors_lose_the_values_they_quote() {
        let cases = [
            (
                r#"spec.template.spec: invalid type: string "S3cret \"quoted\"", expected a sequence at line 1 column 9"#,
                "spec.template.spec: invalid type: string, expected a sequence at line 1 column 9",
            ),
            (
                "invalid type: integer `123456`, expected a string",
                "invalid type: integer, expected a string",
            ),
            (
                "invalid type: floating point `1.5`, expected u32",
                "invalid type: floating point, expected u32",
            ),
            (
                "unknown variant `S3c`ret`, expected one of `CREATE`, `UPDATE`",
                "unknown variant, expected one of `CREATE`, `UPDATE`",
            ),
            (
                r#"invalid value: string "postgres://a:b@c", expected x"#,
                "invalid value: string, expected x",
            ),
            ("missing field `containers`", "missing field `containers`"),
        ];
        for (text, want) in cases {
            assert_eq!(input_error(text), want, "{text}");
        }
    }
}
