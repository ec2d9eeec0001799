//! `injection-config`: the dbhook annotations of a labelled workload must be usable.

use super::{Ctx, Violation, catalog::INJECTION_CONFIG};
use crate::model::Object;
use crate::mutate;

pub fn check(obj: &Object, ctx: &Ctx<'_>, out: &mut Vec<Violation>) {
    let (Some(_), Some(cluster)) = (obj.workload(), obj.db_cluster()) else {
        return;
    };
    if let Err(errors) = mutate::resolve_config(obj, cluster, ctx.policy) {
        out.extend(errors.into_iter().map(|e| {
            Violation::new(
                INJECTION_CONFIG,
                format!("{e}; DB_URL is not injected until this is fixed"),
            )
            .at("metadata.annotations")
            .evidence(
                e.to_string(),
                "dbhook.io/ annotations naming a C identifier, a DNS-1123 Secret name, a non-empty key and existing containers",
            )
        }));
    }
}
