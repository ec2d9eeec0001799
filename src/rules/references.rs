//! `cluster-exists` and `app-secret-has-key`: what a labelled workload points at exists.

use super::catalog::{APP_SECRET_HAS_KEY, CLUSTER_EXISTS};
use super::ns_label;
use super::{Ctx, Violation};
use crate::model::{Object, Spec, keys};
use crate::view::Lookup;

/// `cluster-exists`: the `dbhook.io/cluster` label names a CNPG Cluster in the namespace.
pub fn cluster_exists(obj: &Object, ctx: &Ctx<'_>, out: &mut Vec<Violation>) {
    let (Some(_), Some(cluster)) = (obj.workload(), obj.db_cluster()) else {
        return;
    };
    if !ctx.view.cluster(obj.namespace(), cluster).is_absent() {
        return;
    }
    let v = Violation::new(
        CLUSTER_EXISTS,
        format!(
            "label {}={cluster} names no CNPG Cluster in namespace {}: Secret {cluster}-app will never exist and the pods will not start; fix the label or create the Cluster",
            keys::CLUSTER,
            ns_label(obj)
        ),
    )
    .at(format!("metadata.labels[{}]", keys::CLUSTER))
    .evidence(
        format!("no postgresql.cnpg.io Cluster {}/{cluster}", ns_label(obj)),
        format!("a CNPG Cluster {cluster} in namespace {}", ns_label(obj)),
    );
    // At admission CREATE the Cluster may come later in the same sync (Argo CD applies
    // built-in kinds such as Deployments before custom resources): a warning only.
    out.push(if ctx.is_admission_create() { v.warn_only() } else { v });
}

/// The keys a user-supplied bootstrap Secret holds (a basic-auth Secret).
const BASIC_AUTH_KEYS: [&str; 2] = ["username", "password"];

/// `app-secret-has-key`: a Cluster bootstrapped with a user-supplied app Secret has no
/// `<cluster>-app` Secret, and the user's Secret holds only `username` and `password`.
pub fn app_secret_has_key(obj: &Object, ctx: &Ctx<'_>, out: &mut Vec<Violation>) {
    let (Some(_), Some(cluster)) = (obj.workload(), obj.db_cluster()) else {
        return;
    };
    let Lookup::Present(found) = ctx.view.cluster(obj.namespace(), cluster) else {
        return;
    };
    let Spec::Cluster(spec) = &found.spec else { return };
    let Some((method, user_secret)) = spec.user_app_secret() else {
        return;
    };
    // Bad annotations are injection-config's to report.
    let Some(Ok(cfg)) = &ctx.injection else {
        return;
    };
    let default = format!("{cluster}-app");
    let key = cfg.secret_key.as_str();
    let source = format!("Cluster {cluster} bootstraps ({method}) with user Secret {user_secret}");
    let message = if cfg.secret_name == user_secret {
        if BASIC_AUTH_KEYS.contains(&key) {
            return;
        }
        format!(
            "{source}, which has only username/password: key {key} does not exist; use {}: password or a Secret that has key {key}",
            keys::SECRET_KEY
        )
    } else if cfg.secret_name == default {
        // CNPG names the app Secret after the user's one in this case (GetApplicationSecretName).
        format!(
            "{source}: CNPG creates no {default}, and {user_secret} has only username/password; set {}: {user_secret}, {}: password",
            keys::SECRET_NAME,
            keys::SECRET_KEY
        )
    } else {
        return; // a Secret the user manages: dbhook cannot see Secrets
    };
    let path = match obj.annotation(keys::SECRET_KEY) {
        Some(_) => format!("metadata.annotations[{}]", keys::SECRET_KEY),
        None => format!("metadata.labels[{}]", keys::CLUSTER),
    };
    out.push(
        Violation::new(APP_SECRET_HAS_KEY, message)
            .at(path)
            .evidence(
                format!(
                    "Secret {} key {key}; Cluster {cluster} bootstraps ({method}) with Secret {user_secret} (keys username, password)",
                    cfg.secret_name
                ),
                format!("Secret {user_secret} with key {}", BASIC_AUTH_KEYS.join(" or ")),
            )
            .consulted(&found),
    );
}

#[cfg(test)]
mod tests;
