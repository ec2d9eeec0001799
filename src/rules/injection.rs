//! `injection-config`: the dbhook annotations of a labelled workload must be usable.

use super::{Ctx, Violation, catalog::INJECTION_CONFIG};
use crate::model::Object;

/// The settings are resolved once per review ([`Ctx::injection`]): only labelled workloads have
/// them.
pub fn check(_: &Object, ctx: &Ctx<'_>, out: &mut Vec<Violation>) {
    if let Some(Err(errors)) = &ctx.injection {
        out.extend(errors.iter().map(|e| {
            Violation::new(
                INJECTION_CONFIG,
                format!("{e}; DB_URL is not injected until this is fixed"),
            )
            .at("metadata.annotations")
            .evidence(
                e.clone(),
                "dbhook.io/ annotations naming a C identifier, a DNS-1123 Secret name, a non-empty key and existing containers",
            )
        }));
    }
}
