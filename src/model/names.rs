//! Kubernetes and shell naming rules, for values dbhook writes into pod templates.

/// `[A-Za-z_][A-Za-z0-9_]*`: what shells and most runtimes accept as a variable name.
pub fn is_c_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

/// A Kubernetes DNS-1123 subdomain, the rule for Secret names.
pub fn is_dns1123_subdomain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !part.starts_with('-')
                && !part.ends_with('-')
        })
}

/// A valid Secret data key: `[-._a-zA-Z0-9]+`.
pub fn is_secret_key(s: &str) -> bool {
    !s.is_empty() && s.len() <= 253 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b))
}
