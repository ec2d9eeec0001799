//! `db-url-plaintext` and `db-url-source`: database credentials come from the CNPG Secret.

use super::catalog::{DB_URL_PLAINTEXT, DB_URL_SOURCE};
use super::{Ctx, Violation};
use crate::model::Object;
use crate::model::workload::{ContainerAt, dotted};
use crate::mutate;
use crate::view::Origin;

pub fn plaintext(obj: &Object, ctx: &Ctx<'_>, out: &mut Vec<Violation>) {
    let Some(w) = obj.workload() else { return };
    // At admission only labelled workloads reach the webhook; offline every workload is ours to check.
    if obj.db_cluster().is_none() && ctx.origin() == Origin::Admission {
        return;
    }
    for c in w.containers() {
        for (i, var) in c.container.env.iter().flatten().enumerate() {
            let Some(value) = var.value.as_deref() else { continue };
            if let Some(kind) = credential_uri(value) {
                out.push(
                    Violation::new(
                        DB_URL_PLAINTEXT,
                        format!(
                            "container {} env {} holds a literal {kind} with a password: store it in a Secret and use valueFrom.secretKeyRef{}",
                            c.name(),
                            var.name,
                            obj.db_cluster()
                                .map(|cl| format!(" (CNPG's {cl}-app Secret has it under key uri)"))
                                .unwrap_or_default()
                        ),
                    )
                    .at(env_path(w.kind.pod_spec_pointer(), &c, i))
                    // The message leaves the value out; a different credential is a new finding.
                    .judged(super::fingerprint(value))
                    // The value itself would be the credential: name the variable and its kind only.
                    .evidence(
                        format!("container {} env {}: value (a literal {kind} with a password)", c.name(), var.name),
                        format!("container {} env {}: valueFrom.secretKeyRef", c.name(), var.name),
                    ),
                );
            }
        }
    }
}

pub fn source(obj: &Object, ctx: &Ctx<'_>, out: &mut Vec<Violation>) {
    let (Some(w), Some(Ok(cfg))) = (obj.workload(), &ctx.injection) else {
        return;
    };
    for c in w.containers() {
        let env = c.container.env.iter().flatten().enumerate();
        for (i, var) in env.filter(|(_, v)| v.name == cfg.env_name) {
            if !mutate::references(var, &cfg.secret_name, &cfg.secret_key) {
                out.push(
                    Violation::new(
                        DB_URL_SOURCE,
                        format!(
                            "container {} sets {} from {}: use secretKeyRef {}/{} (or remove it and let dbhook inject it)",
                            c.name(),
                            cfg.env_name,
                            mutate::describe_source(var),
                            cfg.secret_name,
                            cfg.secret_key
                        ),
                    )
                    .at(env_path(w.kind.pod_spec_pointer(), &c, i))
                    .evidence(
                        format!("container {} env {} from {}", c.name(), var.name, mutate::describe_source(var)),
                        format!(
                            "container {} env {} from secretKeyRef {}/{}",
                            c.name(),
                            var.name,
                            cfg.secret_name,
                            cfg.secret_key
                        ),
                    ),
                );
            }
        }
    }
}

fn env_path(base: &str, c: &ContainerAt<'_>, i: usize) -> String {
    format!("{}.{}[{}].env[{i}]", dotted(base), c.list.field(), c.index)
}

/// Classifies `value` as a PostgreSQL connection URI that embeds a password, never returning
/// the password itself. A password that is only a `$(VAR)` reference is not plaintext:
/// Kubernetes expands it from another (secret-backed) variable.
pub fn credential_uri(value: &str) -> Option<&'static str> {
    let v = value.trim();
    let lower = v.to_ascii_lowercase();
    let (kind, rest) = if let Some(r) = strip_postgres_scheme(&lower, v) {
        ("connection URI", r)
    } else if let Some(r) = strip_scheme(&lower, v, &["jdbc:postgresql://", "jdbc:postgres://"]) {
        ("JDBC URL", r)
    } else {
        return None;
    };
    let (before_query, query) = rest.split_once('?').unwrap_or((rest, ""));
    let authority = before_query.split('/').next().unwrap_or("");
    let userinfo_password = authority
        .rsplit_once('@')
        .and_then(|(userinfo, _)| userinfo.split_once(':'))
        .map(|(_, password)| password);
    let query_password = query.split('&').find_map(|kv| {
        let (k, val) = kv.split_once('=')?;
        k.eq_ignore_ascii_case("password").then_some(val)
    });
    [userinfo_password, query_password]
        .into_iter()
        .flatten()
        .any(is_literal_secret)
        .then_some(kind)
}

/// `postgres://`, `postgresql://` and the driver-qualified forms SQLAlchemy and Alembic use
/// (`postgresql+psycopg2://`, `postgresql+asyncpg://`, …).
fn strip_postgres_scheme<'a>(lower: &str, original: &'a str) -> Option<&'a str> {
    let (scheme, _) = lower.split_once("://")?;
    let base = scheme.split_once('+').map_or(scheme, |(base, driver)| {
        let plausible = !driver.is_empty() && driver.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if plausible { base } else { "" }
    });
    matches!(base, "postgres" | "postgresql").then(|| &original[scheme.len() + 3..])
}

fn strip_scheme<'a>(lower: &str, original: &'a str, schemes: &[&str]) -> Option<&'a str> {
    schemes
        .iter()
        .find(|s| lower.starts_with(*s))
        .map(|s| &original[s.len()..])
}

fn is_literal_secret(password: &str) -> bool {
    let p = password.trim();
    let only_reference = p.starts_with("$(") && p.ends_with(')') && !p[2..p.len() - 1].contains(['$', '(', ')']);
    !p.is_empty() && !only_reference
}

#[cfg(test)]
mod tests {
    use super::credential_uri;

    #[test]
    fn finds_passwords_in_postgres_uris_without_false_alarms() {
        let cases = [
            ("postgres://app:s3cret@db:5432/app", Some("connection URI")),
            (
                "postgresql+psycopg2://airflow:airflow@db/airflow",
                Some("connection URI"),
            ),
            ("postgresql+asyncpg://app:s3cret@db/app", Some("connection URI")),
            ("POSTGRES+PG8000://app:s3cret@db/app", Some("connection URI")),
            ("postgresql+psycopg2://app@db/app", None),
            // SQLAlchemy's py-postgresql dialect: driver names hold underscores, not hyphens.
            ("postgresql+py_postgresql://app:s3cret@db/app", Some("connection URI")),
            ("postgresql+py-postgresql://app:s3cret@db/app", None),
            ("postgresql+://app:s3cret@db/app", None),
            ("mysql+pymysql://app:s3cret@db/app", None),
            ("postgresql://app:s3cret@db/app?sslmode=require", Some("connection URI")),
            ("POSTGRESQL://app:x@db/app", Some("connection URI")),
            ("postgresql://db/app?user=app&password=s3cret", Some("connection URI")),
            (
                "jdbc:postgresql://db:5432/app?user=app&password=s3cret",
                Some("JDBC URL"),
            ),
            ("jdbc:postgresql://db:5432/app?user=app", None),
            ("postgres://app@db/app", None),
            ("postgres://app:@db/app", None),
            ("postgres://db/app", None),
            ("postgres://app:$(DB_PASSWORD)@db/app", None),
            ("postgres://app:pre$(DB_PASSWORD)@db/app", Some("connection URI")),
            // Only a whole `$(VAR)` is a reference; half of one is a literal password.
            ("postgres://app:hunter2)@db/app", Some("connection URI")),
            ("postgres://app:$(hunter2@db/app", Some("connection URI")),
            ("mysql://app:s3cret@db/app", None),
            ("https://user:pass@example.com", None),
            ("", None),
        ];
        for (value, want) in cases {
            assert_eq!(credential_uri(value), want, "{value}");
        }
    }
}
