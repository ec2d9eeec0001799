//! Container image references: repository, tag and digest, as lockstep and pinning compare them.

use std::fmt;

/// A parsed image reference. Borrowed from the container spec so parsing never allocates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageRef<'a> {
    /// The reference without tag and digest, exactly as written (`ghcr.io/acme/web`).
    pub repository: &'a str,
    pub tag: Option<&'a str>,
    pub digest: Option<&'a str>,
}

impl<'a> ImageRef<'a> {
    /// Splits `repo[:tag][@digest]`. A `:` only starts a tag after the last `/`, so a registry
    /// port (`localhost:5000/web`) is never mistaken for one.
    pub fn parse(reference: &'a str) -> ImageRef<'a> {
        let reference = reference.trim();
        let (name, digest) = match reference.split_once('@') {
            Some((name, digest)) => (name, Some(digest).filter(|d| !d.is_empty())),
            None => (reference, None),
        };
        let last_slash = name.rfind('/').map_or(0, |i| i + 1);
        let (repository, tag) = match name[last_slash..].rfind(':') {
            Some(i) => {
                let at = last_slash + i;
                (&name[..at], Some(&name[at + 1..]).filter(|t| !t.is_empty()))
            }
            None => (name, None),
        };
        ImageRef {
            repository,
            tag,
            digest,
        }
    }

    /// The repository as a registry resolves it: Docker Hub's implicit `docker.io/library/`
    /// prefix is made explicit so `app` and `docker.io/library/app` compare equal.
    pub fn canonical_repository(&self) -> String {
        let repo = self.repository;
        let first = repo.split('/').next().unwrap_or(repo);
        let has_registry = repo.contains('/') && (first.contains('.') || first.contains(':') || first == "localhost");
        if !has_registry {
            if repo.contains('/') {
                return format!("docker.io/{repo}");
            }
            return format!("docker.io/library/{repo}");
        }
        if let Some(rest) = repo.strip_prefix("index.docker.io/") {
            return canonical_hub(rest);
        }
        if let Some(rest) = repo.strip_prefix("docker.io/") {
            return canonical_hub(rest);
        }
        repo.to_string()
    }

    /// `tag@digest`, `tag`, `@digest` or `(no tag)`, for messages.
    pub fn version(&self) -> String {
        match (self.tag, self.digest) {
            (Some(t), Some(d)) => format!("{t}@{d}"),
            (Some(t), None) => t.to_string(),
            (None, Some(d)) => format!("@{d}"),
            (None, None) => "(no tag)".to_string(),
        }
    }

    pub fn same_version(&self, other: &ImageRef<'_>) -> bool {
        self.tag == other.tag && self.digest == other.digest
    }
}

fn canonical_hub(rest: &str) -> String {
    if rest.contains('/') {
        format!("docker.io/{rest}")
    } else {
        format!("docker.io/library/{rest}")
    }
}

impl fmt::Display for ImageRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.repository)?;
        if let Some(t) = self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn parses_the_reference_forms_users_write() {
        let digest_only = format!("ghcr.io/a/b@{D}");
        let tag_and_digest = format!("ghcr.io/a/b:t@{D}");
        let cases: Vec<(&str, &str, Option<&str>, Option<&str>)> = vec![
            ("app", "app", None, None),
            ("app:1", "app", Some("1"), None),
            ("docker.io/library/app:1", "docker.io/library/app", Some("1"), None),
            ("ghcr.io/a/b:sha-1a2b3c4", "ghcr.io/a/b", Some("sha-1a2b3c4"), None),
            (&digest_only, "ghcr.io/a/b", None, Some(D)),
            (&tag_and_digest, "ghcr.io/a/b", Some("t"), Some(D)),
            ("localhost:5000/app", "localhost:5000/app", None, None),
            ("localhost:5000/app:v1", "localhost:5000/app", Some("v1"), None),
            ("registry:5000/a/b", "registry:5000/a/b", None, None),
            ("registry:5000/a/b:2.1", "registry:5000/a/b", Some("2.1"), None),
            ("app:", "app", None, None),
            ("", "", None, None),
        ];
        for (input, repo, tag, digest) in cases {
            let r = ImageRef::parse(input);
            assert_eq!((r.repository, r.tag, r.digest), (repo, tag, digest), "{input}");
        }
    }

    #[test]
    fn docker_hub_names_canonicalise_to_the_same_repository() {
        for r in [
            "app",
            "docker.io/library/app",
            "index.docker.io/library/app",
            "docker.io/app",
        ] {
            assert_eq!(
                ImageRef::parse(r).canonical_repository(),
                "docker.io/library/app",
                "{r}"
            );
        }
        assert_eq!(
            ImageRef::parse("acme/web:1").canonical_repository(),
            "docker.io/acme/web"
        );
        assert_eq!(ImageRef::parse("localhost/web").canonical_repository(), "localhost/web");
        assert_eq!(
            ImageRef::parse("localhost:5000/web").canonical_repository(),
            "localhost:5000/web"
        );
        assert_eq!(ImageRef::parse("ghcr.io/a/b").canonical_repository(), "ghcr.io/a/b");
    }

    #[test]
    fn display_round_trips() {
        let s = format!("ghcr.io/a/b:t@{D}");
        assert_eq!(ImageRef::parse(&s).to_string(), s);
    }
}
