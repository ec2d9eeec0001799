//! Globs over image repositories (`ignoreRepositories`): `*` any run of characters (`/`
//! included), `?` one character, `[abc]`, `[a-z]` and `[!abc]` one character of (not of) a set.

use std::fmt;

#[derive(Clone, PartialEq, Eq)]
pub struct Glob {
    text: String,
    tokens: Vec<Token>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Char(char),
    Any,
    AnyRun,
    Set { negated: bool, ranges: Vec<(char, char)> },
}

/// Why a pattern is not a glob.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GlobError {
    #[error("an empty pattern matches nothing")]
    Empty,
    #[error("range {0}-{1} is reversed")]
    ReversedRange(char, char),
    #[error("unclosed '[' in {0:?}")]
    Unclosed(String),
}

impl fmt::Debug for Glob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Glob({:?})", self.text)
    }
}

impl Glob {
    /// Compiles `text`; `Err` says what is wrong with it.
    pub fn new(text: &str) -> Result<Glob, GlobError> {
        if text.trim().is_empty() {
            return Err(GlobError::Empty);
        }
        let mut tokens = Vec::new();
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            tokens.push(match c {
                '*' => {
                    while chars.peek() == Some(&'*') {
                        chars.next();
                    }
                    Token::AnyRun
                }
                '?' => Token::Any,
                '[' => {
                    let negated = chars.next_if(|&c| c == '!' || c == '^').is_some();
                    let mut ranges = Vec::new();
                    let mut closed = false;
                    while let Some(c) = chars.next() {
                        if c == ']' && !ranges.is_empty() {
                            closed = true;
                            break;
                        }
                        if chars.peek() == Some(&'-') {
                            let mut ahead = chars.clone();
                            ahead.next();
                            if let Some(&end) = ahead.peek().filter(|&&e| e != ']') {
                                if end < c {
                                    return Err(GlobError::ReversedRange(c, end));
                                }
                                chars.next();
                                chars.next();
                                ranges.push((c, end));
                                continue;
                            }
                        }
                        ranges.push((c, c));
                    }
                    if !closed {
                        return Err(GlobError::Unclosed(text.to_string()));
                    }
                    Token::Set { negated, ranges }
                }
                c => Token::Char(c),
            });
        }
        Ok(Glob {
            text: text.to_string(),
            tokens,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether the whole of `s` matches.
    pub fn matches(&self, s: &str) -> bool {
        let s: Vec<char> = s.chars().collect();
        // Iterative matching with one backtrack point per `*`: linear in practice, never
        // exponential on hostile patterns.
        let (mut t, mut i) = (0usize, 0usize);
        let mut star: Option<(usize, usize)> = None;
        while i < s.len() {
            match self.tokens.get(t) {
                Some(Token::AnyRun) => {
                    star = Some((t, i));
                    t += 1;
                    continue;
                }
                Some(tok) if one(tok, s[i]) => {
                    t += 1;
                    i += 1;
                    continue;
                }
                _ => {}
            }
            match star {
                Some((st, si)) => {
                    t = st + 1;
                    i = si + 1;
                    star = Some((st, si + 1));
                }
                None => return false,
            }
        }
        self.tokens[t..].iter().all(|tok| *tok == Token::AnyRun)
    }
}

fn one(tok: &Token, c: char) -> bool {
    match tok {
        Token::Char(x) => *x == c,
        Token::Any => true,
        Token::AnyRun => false,
        Token::Set { negated, ranges } => ranges.iter().any(|&(a, b)| a <= c && c <= b) != *negated,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_whole_repositories() {
        let cases = [
            (
                "gcr.io/cloud-sql-connectors/*",
                "gcr.io/cloud-sql-connectors/cloud-sql-proxy",
                true,
            ),
            ("gcr.io/cloud-sql-connectors/*", "gcr.io/other/cloud-sql-proxy", false),
            ("*/istio/proxyv2", "docker.io/istio/proxyv2", true),
            ("*proxy*", "ghcr.io/acme/web", false),
            ("docker.io/library/envoy", "docker.io/library/envoy", true),
            ("docker.io/library/envoy", "docker.io/library/envoyx", false),
            ("ghcr.io/acme/web-?", "ghcr.io/acme/web-1", true),
            ("ghcr.io/acme/web-[0-9]", "ghcr.io/acme/web-7", true),
            ("ghcr.io/acme/web-[!0-9]", "ghcr.io/acme/web-7", false),
            ("ghcr.io/acme/web-[0-9]", "ghcr.io/acme/web-x", false),
            ("ghcr.io/acme/web-[!0-9]", "ghcr.io/acme/web-x", true),
            ("ghcr.io/acme/web-[a-c]", "ghcr.io/acme/web-c", true),
            ("ghcr.io/acme/web-[a-c]", "ghcr.io/acme/web-d", false),
            ("a*b*c", "axxbyyc", true),
            ("a*b*c", "axxbyy", false),
            ("**", "", true),
        ];
        for (pattern, s, want) in cases {
            assert_eq!(Glob::new(pattern).unwrap().matches(s), want, "{pattern} ~ {s}");
        }
    }

    #[test]
    fn a_glob_shows_as_written() {
        let glob = Glob::new("gcr.io/*/proxy-[!x]").unwrap();
        assert_eq!(glob.as_str(), "gcr.io/*/proxy-[!x]");
        assert_eq!(format!("{glob:?}"), "Glob(\"gcr.io/*/proxy-[!x]\")");
    }

    #[test]
    fn bad_globs_say_why() {
        assert!(Glob::new("").unwrap_err().to_string().contains("empty"));
        assert!(
            Glob::new("ghcr.io/[abc")
                .unwrap_err()
                .to_string()
                .contains("unclosed '['")
        );
        assert!(Glob::new("web-[9-0]").unwrap_err().to_string().contains("reversed"));
    }
}
