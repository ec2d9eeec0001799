//! The five workload kinds and the pod template each carries.

use serde::{Deserialize, Deserializer};
use serde_json::Value;

use super::FieldError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WorkloadKind {
    Rollout,
    Deployment,
    StatefulSet,
    Job,
    CronJob,
}

impl WorkloadKind {
    /// JSON pointer of the pod spec inside the object.
    pub fn pod_spec_pointer(self) -> &'static str {
        match self {
            WorkloadKind::CronJob => "/spec/jobTemplate/spec/template/spec",
            _ => "/spec/template/spec",
        }
    }
}

/// The part of a pod spec the rules and the injection read. Decoding only this (instead of
/// k8s-openapi's full `PodSpec`, whose `Container` alone is 2 KiB) keeps the cluster view's
/// cache small and the decode fast; unknown fields are ignored, as kube-apiserver already
/// validated them.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodSpec {
    #[serde(default)]
    pub containers: Vec<Container>,
    #[serde(default)]
    pub init_containers: Option<Vec<Container>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Container {
    pub name: String,
    #[serde(default)]
    pub image: Option<String>,
    #[serde(default)]
    pub env: Option<Vec<EnvVar>>,
    /// `Always` on an init container makes it a native sidecar: it runs beside the main
    /// containers for the pod's life instead of before them.
    #[serde(default, rename = "restartPolicy")]
    pub restart_policy: Option<String>,
}

/// An env var of a container, as far as the rules and the injection read it: its name, a
/// literal value, or where `valueFrom` reads it. 48 bytes against k8s-openapi's 280, whose
/// `EnvVarSource` sits inline in every var; a cached Job commonly has several.
///
/// Decoded as k8s-openapi decodes `EnvVar`: a missing or null `name`, `key` or Secret/ConfigMap
/// `name` reads as empty, unknown fields are ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
// Named as k8s-openapi names it, so decode errors read as they did.
#[serde(expecting = "EnvVar")]
pub struct EnvVar {
    #[serde(default, deserialize_with = "null_as_empty")]
    pub name: String,
    #[serde(default)]
    pub value: Option<Box<str>>,
    #[serde(default, rename = "valueFrom")]
    pub value_from: Option<Box<EnvVarSource>>,
}

/// `valueFrom`: the Secret or ConfigMap key it reads, or which other source it is.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default, expecting = "EnvVarSource")]
pub struct EnvVarSource {
    pub secret_key_ref: Option<KeySelector>,
    pub config_map_key_ref: Option<KeySelector>,
    /// Only whether it is there: the downward API never holds a credential.
    pub field_ref: Option<Present>,
    pub resource_field_ref: Option<Present>,
}

/// `secretKeyRef` or `configMapKeyRef`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct KeySelector {
    #[serde(deserialize_with = "null_as_empty")]
    pub name: String,
    #[serde(deserialize_with = "null_as_empty")]
    pub key: String,
}

/// A mapping whose content is not kept.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Present;

impl<'de> Deserialize<'de> for Present {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Present, D::Error> {
        serde::de::IgnoredAny::deserialize(d)?;
        Ok(Present)
    }
}

fn null_as_empty<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(Option::<String>::deserialize(d)?.unwrap_or_default())
}

impl Container {
    /// A native sidecar (`initContainers[]` with `restartPolicy: Always`, e.g. a service-mesh
    /// proxy): not part of what the workload runs as its release.
    pub fn is_native_sidecar(&self, list: ContainerList) -> bool {
        list == ContainerList::InitContainers && self.restart_policy.as_deref() == Some("Always")
    }
}

/// The part of a Job's `status` the rules read.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct JobStatus {
    #[serde(default)]
    pub conditions: Vec<JobCondition>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct JobCondition {
    #[serde(default, rename = "type")]
    pub type_: String,
    #[serde(default)]
    pub status: String,
}

impl JobStatus {
    /// Condition `Failed=True`: the Job gave up (backoff limit, deadline, pod failure policy).
    pub fn failed(&self) -> bool {
        self.conditions
            .iter()
            .any(|c| c.type_ == "Failed" && c.status == "True")
    }
}

/// A workload's pod template; `pod` is None when the object has no template (a Rollout using
/// `workloadRef`, or an object still being written).
#[derive(Debug, Clone)]
pub struct Workload {
    pub kind: WorkloadKind,
    pub pod: Option<PodSpec>,
    /// `spec.workloadRef.name` of a Rollout.
    pub workload_ref: Option<String>,
    /// A Job with condition `Failed=True`.
    pub failed: bool,
}

/// Which list of the pod spec a container sits in; its JSON pointer segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContainerList {
    Containers,
    InitContainers,
}

impl ContainerList {
    pub fn field(self) -> &'static str {
        match self {
            ContainerList::Containers => "containers",
            ContainerList::InitContainers => "initContainers",
        }
    }
}

/// A container with its position, so rules can point at it and mutation can patch it.
#[derive(Debug, Clone, Copy)]
pub struct ContainerAt<'a> {
    pub list: ContainerList,
    pub index: usize,
    pub container: &'a Container,
}

impl<'a> ContainerAt<'a> {
    pub fn name(&self) -> &'a str {
        &self.container.name
    }
    pub fn image(&self) -> &'a str {
        self.container.image.as_deref().unwrap_or("")
    }
}

impl Workload {
    pub(crate) fn decode(kind: WorkloadKind, root: &Value) -> Result<Workload, FieldError> {
        let pointer = kind.pod_spec_pointer();
        let pod = match root.pointer(pointer) {
            None | Some(Value::Null) => None,
            Some(v) => {
                let at = dotted(pointer);
                check_shape(&at, v)?;
                Some(super::deserialize_at::<PodSpec>(&at, v)?)
            }
        };
        let workload_ref = match kind {
            WorkloadKind::Rollout => root
                .pointer("/spec/workloadRef/name")
                .and_then(Value::as_str)
                .map(str::to_string),
            _ => None,
        };
        // Status is the controller's, not the user's: a body it cannot be read from is no reason
        // to reject the object, so an unreadable status reads as "not failed".
        let failed = kind == WorkloadKind::Job
            && root
                .get("status")
                .and_then(|s| JobStatus::deserialize(s).ok())
                .is_some_and(|s| s.failed());
        Ok(Workload {
            kind,
            pod,
            workload_ref,
            failed,
        })
    }

    /// Init containers first, then containers, in spec order.
    pub fn containers(&self) -> impl Iterator<Item = ContainerAt<'_>> {
        let (init, main): (&[Container], &[Container]) = match &self.pod {
            Some(p) => (p.init_containers.as_deref().unwrap_or(&[]), &p.containers),
            None => (&[], &[]),
        };
        let at = |list| move |(index, container)| ContainerAt { list, index, container };
        init.iter()
            .enumerate()
            .map(at(ContainerList::InitContainers))
            .chain(main.iter().enumerate().map(at(ContainerList::Containers)))
    }

    pub fn has_containers(&self) -> bool {
        self.containers().next().is_some()
    }
}

/// serde's derived structs also accept JSON arrays (fields by position); Kubernetes objects are
/// always mappings, and a patch path built from a positional "container" would not apply.
fn check_shape(at: &str, pod: &Value) -> Result<(), FieldError> {
    if !pod.is_object() {
        return Err(FieldError::new(at, "expected a pod spec mapping"));
    }
    for list in ["containers", "initContainers"] {
        match pod.get(list) {
            None | Some(Value::Null) => {}
            Some(Value::Array(items)) => {
                if let Some(i) = items.iter().position(|c| !c.is_object()) {
                    return Err(FieldError::new(
                        format!("{at}.{list}[{i}]"),
                        "expected a container mapping",
                    ));
                }
            }
            Some(_) => return Err(FieldError::new(format!("{at}.{list}"), "expected a list of containers")),
        }
    }
    Ok(())
}

/// `/spec/template/spec` → `spec.template.spec`, for messages.
pub fn dotted(pointer: &str) -> String {
    pointer.trim_start_matches('/').replace('/', ".")
}

#[cfg(test)]
mod tests;
