//! DB_URL injection (README.md, "What it does") as JSON Patch operations over the pod templates.

use json_patch::jsonptr::PointerBuf;
use json_patch::{AddOperation, PatchOperation};
use kube::core::admission::Operation;
use serde_json::{Value, json};

use crate::model::names::{is_c_identifier, is_dns1123_subdomain, is_secret_key};
use crate::model::workload::{ContainerAt, EnvVar};
use crate::model::{Object, WorkloadKind, keys};
use crate::policy::Policy;

/// What to inject, after annotations and policy defaults are resolved and validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InjectionConfig {
    pub env_name: String,
    pub secret_name: String,
    pub secret_key: String,
    /// None: every container and init container.
    pub containers: Option<Vec<String>>,
}

/// The outcome of planning the injection for one object.
#[derive(Debug, Clone, Default)]
pub struct Mutation {
    pub patch: Vec<PatchOperation>,
    /// Containers that get the env var, in patch order.
    pub injected: Vec<String>,
    /// Messages for the user: clobber conflicts, a Rollout's workloadRef.
    pub warnings: Vec<String>,
    /// Why the annotations are unusable; non-empty means no patch (rule `injection-config`).
    pub config_errors: Vec<String>,
    pub env_name: String,
}

/// A labelled workload's injection settings: usable, or every reason they are not.
pub type Resolved = Result<InjectionConfig, Vec<String>>;

/// The injection settings of `obj`, or `None` when dbhook injects nothing into it (not a
/// workload, or no `dbhook.io/cluster` label). The engine resolves them once per review.
pub fn resolve(obj: &Object, policy: &Policy) -> Option<Resolved> {
    let (Some(_), Some(cluster)) = (obj.workload(), obj.db_cluster()) else {
        return None;
    };
    Some(resolve_config(obj, cluster, policy))
}

/// Resolves the injection settings of a labelled workload; `Err` lists every problem found.
fn resolve_config(obj: &Object, cluster: &str, policy: &Policy) -> Result<InjectionConfig, Vec<String>> {
    let mut errors = Vec::new();
    let ann = |k: &str| obj.annotation(k);

    let env_name = ann(keys::ENV_NAME).map_or_else(|| policy.injection.env_name.clone(), |v| v.trim().to_string());
    if !is_c_identifier(&env_name) {
        errors.push(format!(
            "annotation {}: {env_name:?} is not a valid environment variable name (letters, digits and _; not starting with a digit)",
            keys::ENV_NAME
        ));
    }
    let secret_name = ann(keys::SECRET_NAME).map_or_else(|| format!("{cluster}-app"), |v| v.trim().to_string());
    if !is_dns1123_subdomain(&secret_name) {
        let source = match ann(keys::SECRET_NAME) {
            Some(_) => format!("annotation {}", keys::SECRET_NAME),
            None => format!("Secret name derived from label {}={cluster}", keys::CLUSTER),
        };
        errors.push(format!(
            "{source}: {secret_name:?} is not a valid Secret name (lowercase DNS-1123 subdomain)"
        ));
    }
    let secret_key =
        ann(keys::SECRET_KEY).map_or_else(|| policy.injection.secret_key.clone(), |v| v.trim().to_string());
    if !is_secret_key(&secret_key) {
        errors.push(format!(
            "annotation {}: {secret_key:?} is not a valid Secret key (non-empty; letters, digits, '-', '_', '.')",
            keys::SECRET_KEY
        ));
    }
    let containers = match ann(keys::CONTAINERS) {
        None => None,
        Some(list) => {
            let names: Vec<String> = list
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect();
            if names.is_empty() {
                errors.push(format!("annotation {}: names no container", keys::CONTAINERS));
            }
            if let Some(w) = obj.workload().filter(|w| w.has_containers()) {
                let missing: Vec<&str> = names
                    .iter()
                    .filter(|n| !w.containers().any(|c| c.name() == n.as_str()))
                    .map(String::as_str)
                    .collect();
                if !missing.is_empty() {
                    let existing: Vec<&str> = w.containers().map(|c| c.name()).collect();
                    errors.push(format!(
                        "annotation {}: no container named {} (the pod has {})",
                        keys::CONTAINERS,
                        missing.join(", "),
                        existing.join(", ")
                    ));
                }
            }
            Some(names)
        }
    };
    if errors.is_empty() {
        Ok(InjectionConfig {
            env_name,
            secret_name,
            secret_key,
            containers,
        })
    } else {
        Err(errors)
    }
}

/// Plans the injection for `obj`. Unlabelled objects, other kinds and operations other than
/// CREATE/UPDATE yield an empty mutation.
pub fn plan(obj: &Object, operation: &Operation, policy: &Policy) -> Mutation {
    plan_resolved(obj, operation, resolve(obj, policy).as_ref())
}

/// [`plan`] with the settings already resolved by [`resolve`] for `obj`.
pub fn plan_resolved(obj: &Object, operation: &Operation, injection: Option<&Resolved>) -> Mutation {
    let mut m = Mutation::default();
    let (Some(w), Some(cluster), Some(resolved)) = (obj.workload(), obj.db_cluster(), injection) else {
        return m;
    };
    if !matches!(operation, Operation::Create | Operation::Update) {
        return m;
    }
    let cfg = match resolved {
        Ok(cfg) => cfg,
        Err(errors) => {
            m.config_errors.clone_from(errors);
            return m;
        }
    };
    m.env_name.clone_from(&cfg.env_name);
    // A Job's pod template is immutable: patching it on UPDATE would make the apiserver reject it.
    if w.kind == WorkloadKind::Job && matches!(operation, Operation::Update) {
        return m;
    }
    if w.kind == WorkloadKind::Rollout && !w.has_containers() {
        if let Some(target) = &w.workload_ref {
            m.warnings.push(format!(
                "Rollout {} uses workloadRef to {target}: label that Deployment {}={cluster} so dbhook injects {} there",
                obj.qualified_name(),
                keys::CLUSTER,
                cfg.env_name
            ));
        }
        return m;
    }
    let base = w.kind.pod_spec_pointer();
    for c in w.containers() {
        if let Some(names) = &cfg.containers
            && !names.iter().any(|n| n == c.name())
        {
            continue;
        }
        inject_into(&mut m, cfg, base, c);
    }
    m
}

fn inject_into(m: &mut Mutation, cfg: &InjectionConfig, base: &str, c: ContainerAt<'_>) {
    let env = c.container.env.as_deref();
    if let Some(existing) = env.and_then(|e| e.iter().find(|v| v.name == cfg.env_name)) {
        if !references(existing, &cfg.secret_name, &cfg.secret_key) {
            m.warnings.push(format!(
                "container {} already sets {} ({}); left unchanged, expected secretKeyRef {}/{}",
                c.name(),
                cfg.env_name,
                describe_source(existing),
                cfg.secret_name,
                cfg.secret_key
            ));
        }
        return;
    }
    let entry = json!({
        "name": cfg.env_name,
        "valueFrom": {"secretKeyRef": {"name": cfg.secret_name, "key": cfg.secret_key}}
    });
    let container_path = format!("{base}/{}/{}", c.list.field(), c.index);
    let (path, value) = match env {
        None => (format!("{container_path}/env"), Value::Array(vec![entry])),
        Some(_) => (format!("{container_path}/env/-"), entry),
    };
    // The path is built from fixed segments and indices, so parsing cannot fail; fall back to
    // skipping the container rather than panicking if it ever did.
    let Ok(path) = PointerBuf::parse(path) else { return };
    m.patch.push(PatchOperation::Add(AddOperation { path, value }));
    m.injected.push(c.name().to_string());
}

/// Whether `var` reads exactly `secret/key` through a secretKeyRef.
pub fn references(var: &EnvVar, secret: &str, key: &str) -> bool {
    var.value_from
        .as_ref()
        .and_then(|f| f.secret_key_ref.as_ref())
        .is_some_and(|r| r.name == secret && r.key == key)
}

/// Where an env var's value comes from, without revealing a literal value.
pub fn describe_source(var: &EnvVar) -> String {
    if var.value.is_some() {
        return "a literal value".into();
    }
    match &var.value_from {
        Some(f) => {
            if let Some(r) = &f.secret_key_ref {
                format!("secretKeyRef {}/{}", r.name, r.key)
            } else if let Some(r) = &f.config_map_key_ref {
                format!("configMapKeyRef {}/{}", r.name, r.key)
            } else if f.field_ref.is_some() {
                "a fieldRef".into()
            } else {
                "a valueFrom source".into()
            }
        }
        None => "an empty value".into(),
    }
}

#[cfg(test)]
mod tests;
