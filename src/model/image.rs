//! Container image references: repository, tag and digest, and when two references name the
//! same image version, resolved the way registries and container runtimes resolve them.

use std::borrow::Cow;
use std::fmt;

/// A parsed image reference. Borrowed from the container spec so parsing never allocates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageRef<'a> {
    /// The reference without tag and digest, exactly as written (`ghcr.io/acme/web`).
    pub repository: &'a str,
    pub tag: Option<&'a str>,
    pub digest: Option<&'a str>,
}

/// Whether two references of one repository run the same image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sameness {
    /// Equal digests, or (neither pinned by digest) equal tags.
    Same,
    /// Equal tags, but only one side carries a digest: the tag may have moved since.
    Unproven,
    Different,
}

/// The tag a reference without one resolves to.
pub const DEFAULT_TAG: &str = "latest";

impl<'a> ImageRef<'a> {
    /// Splits `repo[:tag][@digest]`. A `:` only starts a tag after the last `/`, so a registry
    /// port (`localhost:5000/web`) is never mistaken for one. Lenient: [`ImageRef::problem`]
    /// says whether the reference is one a runtime would pull.
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

    /// Why `reference` is not an image reference a container runtime would accept, if it is not
    /// (checked on the text as written, which [`ImageRef::parse`] does not reject).
    pub fn problem(reference: &str) -> Option<&'static str> {
        let reference = reference.trim();
        if reference.is_empty() {
            return Some("the image is empty");
        }
        if reference.matches('@').count() > 1 {
            return Some("more than one '@'");
        }
        let r = ImageRef::parse(reference);
        if r.repository.is_empty() {
            return Some("no repository name before the tag or digest");
        }
        if reference.contains('@') && r.digest.is_none() {
            return Some("'@' without a digest");
        }
        if let Some(d) = r.digest
            && !d
                .split_once(':')
                .is_some_and(|(alg, hex)| !alg.is_empty() && !hex.is_empty())
        {
            return Some("the digest is not <algorithm>:<hex>");
        }
        let name = reference.split('@').next().unwrap_or_default();
        if name.ends_with(':') {
            return Some("an empty tag after ':'");
        }
        if r.repository.chars().any(char::is_whitespace) {
            return Some("whitespace in the repository name");
        }
        let (_, path) = split_domain(r.repository);
        if path.split('/').any(str::is_empty) {
            return Some("an empty path component in the repository name");
        }
        if path.chars().any(|c| c.is_ascii_uppercase()) {
            return Some("the repository path must be lower-case");
        }
        None
    }

    /// The repository as a registry resolves it: the registry host lower-cased, Docker Hub's
    /// implicit `docker.io/library/` made explicit and `index.docker.io` read as `docker.io`, so
    /// `app`, `docker.io/library/app` and `index.docker.io/library/app` compare equal.
    pub fn canonical_repository(&self) -> Cow<'a, str> {
        let repo = self.repository;
        let (domain, path) = split_domain(repo);
        let domain = match domain {
            None => return Cow::Owned(hub(path)),
            Some(d) => d,
        };
        let lower = domain.to_ascii_lowercase();
        if lower == "docker.io" || lower == "index.docker.io" {
            return Cow::Owned(hub(path));
        }
        if lower == domain {
            Cow::Borrowed(repo)
        } else {
            Cow::Owned(format!("{lower}/{path}"))
        }
    }

    /// The tag, `latest` when none is written.
    pub fn effective_tag(&self) -> &'a str {
        self.tag.unwrap_or(DEFAULT_TAG)
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

    /// Whether `self` and `other` (references of one repository) are the same version: equal
    /// digests when both carry one (tags are then ignored: the digest is what is pulled); equal
    /// tags, a missing tag meaning `latest`, when neither does; when only one does, equal tags
    /// cannot prove it and different tags disprove it. Symmetric and reflexive.
    pub fn same_version(&self, other: &ImageRef<'_>) -> Sameness {
        let tags_equal = self.effective_tag() == other.effective_tag();
        match (self.digest, other.digest) {
            (Some(a), Some(b)) if a == b => Sameness::Same,
            (Some(_), Some(_)) => Sameness::Different,
            (None, None) if tags_equal => Sameness::Same,
            (None, None) => Sameness::Different,
            _ if tags_equal => Sameness::Unproven,
            _ => Sameness::Different,
        }
    }
}

/// `(registry host, path)`: the first component is a host when it contains `.` or `:`, is
/// `localhost`, or has upper-case letters (which a path component never has), as
/// distribution/reference decides.
fn split_domain(repo: &str) -> (Option<&str>, &str) {
    match repo.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':']) || first == "localhost" || first.chars().any(|c| c.is_ascii_uppercase()) =>
        {
            (Some(first), rest)
        }
        _ => (None, repo),
    }
}

/// A Docker Hub path made canonical: official images live under `library/`.
fn hub(path: &str) -> String {
    if path.contains('/') {
        format!("docker.io/{path}")
    } else {
        format!("docker.io/library/{path}")
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
    fn versions_are_named_for_messages() {
        let cases = [
            (format!("web:v1@{D}"), format!("v1@{D}")),
            ("web:v1".to_string(), "v1".to_string()),
            (format!("web@{D}"), format!("@{D}")),
            ("web".to_string(), "(no tag)".to_string()),
        ];
        for (r, want) in cases {
            assert_eq!(ImageRef::parse(&r).version(), want, "{r}");
        }
    }

    #[test]
    fn display_round_trips() {
        let s = format!("ghcr.io/a/b:t@{D}");
        assert_eq!(ImageRef::parse(&s).to_string(), s);
    }
    #[test]
    fn registry_hosts_are_lower_cased_and_index_docker_io_is_docker_io() {
        let cases = [
            ("GHCR.io/acme/web:1", "ghcr.io/acme/web"),
            ("Index.Docker.IO/acme/web", "docker.io/acme/web"),
            ("index.docker.io/web", "docker.io/library/web"),
            ("Localhost:5000/web", "localhost:5000/web"),
            ("localhost/web", "localhost/web"),
        ];
        for (r, want) in cases {
            assert_eq!(ImageRef::parse(r).canonical_repository(), want, "{r}");
        }
        // A port is no tag: the reference carries none.
        assert_eq!(ImageRef::parse("localhost:5000/web").tag, None);
    }

    #[test]
    fn the_same_version_rule_reads_digests_first_and_a_missing_tag_as_latest() {
        let d1 = format!("web@{D}");
        let d1_tagged = format!("web:v1@{D}");
        let d1_other_tag = format!("web:v2@{D}");
        let d2 = "web@sha256:ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff";
        let cases: Vec<(&str, &str, Sameness)> = vec![
            ("web:v1", "web:v1", Sameness::Same),
            ("web", "web:latest", Sameness::Same),
            ("web:v1", "web:v2", Sameness::Different),
            ("web", "web:v1", Sameness::Different),
            (&d1_tagged, &d1, Sameness::Same),
            (&d1_tagged, &d1_other_tag, Sameness::Same),
            (&d1, d2, Sameness::Different),
            (&d1_tagged, "web:v1", Sameness::Unproven),
            (&d1, "web", Sameness::Unproven),
            (&d1, "web:latest", Sameness::Unproven),
            (&d1_tagged, "web:v2", Sameness::Different),
        ];
        for (a, b, want) in cases {
            let (a, b) = (ImageRef::parse(a), ImageRef::parse(b));
            assert_eq!(a.same_version(&b), want, "{a} vs {b}");
            assert_eq!(b.same_version(&a), want, "{b} vs {a}");
        }
    }

    #[test]
    fn malformed_references_are_named() {
        let cases = [
            ("", "the image is empty"),
            ("   ", "the image is empty"),
            (":v1", "no repository name before the tag or digest"),
            ("@sha256:abc", "no repository name before the tag or digest"),
            ("ghcr.io/Acme/Web:v1", "the repository path must be lower-case"),
            ("Web:v1", "the repository path must be lower-case"),
            ("web@sha256:a@sha256:b", "more than one '@'"),
            ("web@", "'@' without a digest"),
            ("web@abc", "the digest is not <algorithm>:<hex>"),
            ("web@sha256:", "the digest is not <algorithm>:<hex>"),
            ("web@:abc", "the digest is not <algorithm>:<hex>"),
            ("web:", "an empty tag after ':'"),
            ("ghcr.io//web", "an empty path component in the repository name"),
        ];
        for (r, want) in cases {
            assert_eq!(ImageRef::problem(r), Some(want), "{r:?}");
        }
        for ok in ["web", "GHCR.IO/acme/web:v1", "localhost:5000/web", "web:v1@sha256:abc"] {
            assert_eq!(ImageRef::problem(ok), None, "{ok}");
        }
    }

    mod properties {
        use super::super::*;
        use proptest::prelude::*;

        fn reference() -> impl Strategy<Value = String> {
            let repo = prop_oneof![
                Just("web".to_string()),
                Just("acme/web".to_string()),
                Just("ghcr.io/acme/web".to_string()),
                Just("localhost:5000/web".to_string()),
            ];
            let tag = proptest::option::of(prop_oneof![
                Just("latest".to_string()),
                Just("v1".to_string()),
                Just("v2".to_string())
            ]);
            let digest = proptest::option::of(prop_oneof![
                Just(format!("sha256:{}", "1".repeat(64))),
                Just(format!("sha256:{}", "2".repeat(64)))
            ]);
            (repo, tag, digest).prop_map(|(r, t, d)| {
                let mut s = r;
                if let Some(t) = t {
                    s = format!("{s}:{t}");
                }
                if let Some(d) = d {
                    s = format!("{s}@{d}");
                }
                s
            })
        }

        /// The same reference as Docker Hub users also write it.
        fn respell(r: &str) -> Vec<String> {
            let mut out = vec![r.to_string()];
            let parsed = ImageRef::parse(r);
            if parsed.tag.is_none() && parsed.digest.is_none() {
                out.push(format!("{r}:latest"));
            }
            if !parsed.repository.contains('.') && !parsed.repository.contains(':') {
                let full = if parsed.repository.contains('/') {
                    format!("docker.io/{r}")
                } else {
                    format!("docker.io/library/{r}")
                };
                out.push(full.clone());
                out.push(full.replacen("docker.io", "index.docker.io", 1));
            }
            out
        }

        proptest! {
            #[test]
            fn comparison_is_symmetric_and_reflexive(a in reference(), b in reference()) {
                let (x, y) = (ImageRef::parse(&a), ImageRef::parse(&b));
                prop_assert_eq!(x.same_version(&x), Sameness::Same);
                prop_assert_eq!(x.same_version(&y), y.same_version(&x));
                prop_assert_eq!(
                    x.canonical_repository() == y.canonical_repository(),
                    y.canonical_repository() == x.canonical_repository()
                );
            }

            #[test]
            fn hub_spelling_and_an_explicit_latest_are_the_same_version(a in reference()) {
                let x = ImageRef::parse(&a);
                for other in respell(&a) {
                    let y = ImageRef::parse(&other);
                    prop_assert_eq!(x.canonical_repository(), y.canonical_repository(), "{} vs {}", a, other);
                    prop_assert_eq!(x.same_version(&y), Sameness::Same, "{} vs {}", a, other);
                }
            }

            #[test]
            fn any_text_parses_and_canonicalises_without_panicking(s in ".{0,40}") {
                let r = ImageRef::parse(&s);
                let _ = r.canonical_repository();
                let _ = ImageRef::problem(&s);
                let _ = r.same_version(&r);
            }
        }
    }
}
