//! Watched objects decoded straight from the API server's JSON into the model, one list page or
//! watch event at a time: no `DynamicObject` and no `serde_json::Value` tree of the whole object.
//!
//! What is kept is what the rules read: name, namespace, uid, resourceVersion, creation and
//! deletion time, `generateName`, `dbhook.io/` labels and annotations plus
//! [`keys::FOREIGN_ANNOTATIONS`], the spec as the model's serde types decode it and, for Jobs,
//! whether they failed. Everything else — managed fields, the last-applied copy, a CNPG
//! Cluster's status, unknown fields of any shape — is skipped by the parser without being
//! allocated.
//!
//! A spec the model cannot decode (a field of an unexpected type, which a CRD with
//! `x-kubernetes-preserve-unknown-fields` lets through) must not fail the whole list page: the
//! spec is first copied as JSON text, then decoded on its own, and on error the object is kept
//! without its spec, as an object of its kind that exists.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::Resource;
use kube::core::DynamicResourceScope;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

use super::resources::Res;
use crate::model::workload::{Container, JobStatus, PodSpec};
use crate::model::{KindId, Marks, Meta, Object, Spec, Workload, WorkloadKind, keys};

/// One of the watched resources, at the type level: kube's watcher decodes `Cached<K>` without
/// any runtime context, so the kind to decode has to be part of the type.
pub trait Kind: Send + Sync + 'static {
    const RES: Res;
}

macro_rules! kinds {
    ($($name:ident => $res:expr),* $(,)?) => {$(
        #[derive(Debug, Clone, Copy)]
        pub struct $name;
        impl Kind for $name {
            const RES: Res = $res;
        }
    )*};
}

kinds! {
    Jobs => Res::Jobs,
    Rollouts => Res::Rollouts,
    Deployments => Res::Deployments,
    StatefulSets => Res::StatefulSets,
    Clusters => Res::Clusters,
    ScheduledBackups => Res::ScheduledBackups,
    ObjectStores => Res::ObjectStores,
}

/// A watched object of kind `K`, decoded into the model and shared with the index as it is.
///
/// kube's watcher reads the resourceVersion of each event through [`Resource::meta`], which
/// has to be k8s-openapi's `ObjectMeta`; the model keeps its own slim metadata, so this carries
/// a copy of name, namespace and resourceVersion for as long as the event is in flight.
pub struct Cached<K> {
    pub object: Arc<Object>,
    meta: ObjectMeta,
    kind: PhantomData<K>,
}

impl<K> Cached<K> {
    fn new(object: Object) -> Cached<K> {
        let meta = ObjectMeta {
            name: object.meta.name.clone(),
            namespace: object.meta.namespace.clone(),
            resource_version: object.meta.resource_version.clone(),
            ..ObjectMeta::default()
        };
        Cached {
            object: Arc::new(object),
            meta,
            kind: PhantomData,
        }
    }
}

impl<K> Clone for Cached<K> {
    fn clone(&self) -> Self {
        Cached {
            object: self.object.clone(),
            meta: self.meta.clone(),
            kind: PhantomData,
        }
    }
}

impl<K> fmt::Debug for Cached<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Cached").field(&self.object.qualified_name()).finish()
    }
}

impl<K: Kind> Resource for Cached<K> {
    type DynamicType = ();
    type Scope = DynamicResourceScope;

    fn kind(_: &()) -> Cow<'_, str> {
        K::RES.coordinates().2.into()
    }
    fn group(_: &()) -> Cow<'_, str> {
        K::RES.coordinates().0.into()
    }
    fn version(_: &()) -> Cow<'_, str> {
        K::RES.coordinates().1.into()
    }
    fn plural(_: &()) -> Cow<'_, str> {
        K::RES.coordinates().3.into()
    }
    fn meta(&self) -> &ObjectMeta {
        &self.meta
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.meta
    }
}

impl<'de, K: Kind> Deserialize<'de> for Cached<K> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Cached::new(ObjectSeed(K::RES).deserialize(d)?))
    }
}

/// Decodes one object of `res` from JSON text.
#[cfg(test)]
pub fn from_slice(res: Res, json: &[u8]) -> serde_json::Result<Arc<Object>> {
    let mut d = serde_json::Deserializer::from_slice(json);
    let obj = ObjectSeed(res).deserialize(&mut d)?;
    d.end()?;
    Ok(Arc::new(obj))
}

/// The same, from a `serde_json::Value` (tests build objects with `json!`).
#[cfg(test)]
pub fn from_value(res: Res, v: &serde_json::Value) -> Arc<Object> {
    let text = serde_json::to_vec(v).unwrap_or_default();
    from_slice(res, &text).unwrap_or_else(|e| {
        tracing::warn!(resource = res.name(), error = %e, "not an object");
        Arc::new(build(res, SlimMeta::default(), None, None))
    })
}

/// Decodes an object of `res`, whatever its `apiVersion`/`kind` fields say (list items of
/// built-in kinds carry none).
struct ObjectSeed(Res);

impl<'de> DeserializeSeed<'de> for ObjectSeed {
    type Value = Object;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Object, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for ObjectSeed {
    type Value = Object;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a {} object", self.0.coordinates().2)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Object, A::Error> {
        let res = self.0;
        let mut meta = SlimMeta::default();
        let mut spec = None;
        let mut status = None;
        while let Some(key) = map.next_key::<Key>()? {
            match key {
                Key::Metadata => meta = map.next_value::<SlimMeta>()?,
                Key::Spec => spec = Some(map.next_value::<JsonText>()?.0),
                // Only a Job's status is read (its conditions); a Cluster's is large.
                Key::Status if res == Res::Jobs => status = Some(map.next_value::<JsonText>()?.0),
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(build(res, meta, spec.as_deref(), status.as_deref()))
    }
}

/// Top-level fields; anything else is skipped unread.
enum Key {
    Metadata,
    Spec,
    Status,
    Other,
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Key, D::Error> {
        let name = d.deserialize_str(KeyName)?;
        Ok(match name.as_ref() {
            "metadata" => Key::Metadata,
            "spec" => Key::Spec,
            "status" => Key::Status,
            _ => Key::Other,
        })
    }
}

/// A map key as text, borrowed from the input when the parser can.
pub(crate) struct KeyName;

impl<'de> DeserializeSeed<'de> for KeyName {
    type Value = Cow<'de, str>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeyName {
    type Value = Cow<'de, str>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a field name")
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_string()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v))
    }
}

/// The object from its parts; a spec or status the model cannot decode leaves it without its
/// spec, logged.
fn build(res: Res, meta: SlimMeta, spec: Option<&[u8]>, status: Option<&[u8]>) -> Object {
    let spec = decode_spec(res, spec, status).unwrap_or_else(|e| {
        tracing::warn!(
            resource = res.name(),
            namespace = meta.meta.namespace.as_deref().unwrap_or(""),
            name = meta.meta.name.as_deref().unwrap_or(""),
            error = %crate::redact::input_error(&e.to_string()),
            "cached without its spec"
        );
        Spec::Other
    });
    let (group, version, kind, _) = res.coordinates();
    Object {
        api_version: api_version(group, version),
        kind: kind.to_string(),
        meta: meta.meta,
        labels: meta.labels,
        annotations: meta.annotations,
        spec,
    }
}

fn api_version(group: &str, version: &str) -> String {
    if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    }
}

fn decode_spec(res: Res, spec: Option<&[u8]>, status: Option<&[u8]>) -> serde_json::Result<Spec> {
    fn parse<T: for<'a> Deserialize<'a> + Default>(text: Option<&[u8]>) -> serde_json::Result<T> {
        match text {
            None => Ok(T::default()),
            Some(t) => Ok(serde_json::from_slice::<Option<T>>(t)?.unwrap_or_default()),
        }
    }
    let (group, version, kind, _) = res.coordinates();
    Ok(match KindId::of(&api_version(group, version), kind) {
        Some(KindId::Workload(kind)) => {
            let spec: WorkloadSpecWire = parse(spec)?;
            // Status is the controller's: one the model cannot read means "not failed", as on
            // the admission path, never an object without its spec.
            let status: JobStatus = parse(status).unwrap_or_default();
            Spec::Workload(Box::new(spec.into_workload(kind, &status)))
        }
        Some(KindId::Cluster) => {
            let mut c: crate::model::ClusterSpec = parse(spec)?;
            c.plugins.shrink_to_fit();
            c.env.shrink_to_fit();
            Spec::Cluster(Box::new(c))
        }
        Some(KindId::ScheduledBackup) => Spec::ScheduledBackup(Box::new(parse(spec)?)),
        Some(KindId::ObjectStore) => Spec::ObjectStore(Box::new(parse(spec)?)),
        Some(KindId::Namespace) => Spec::Namespace,
        None => Spec::Other,
    })
}

/// The part of a workload's spec the model reads, in the model's own types (a field added to
/// `PodSpec` or `Container` is decoded here too).
#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct WorkloadSpecWire {
    template: Option<TemplateWire>,
    job_template: Option<JobTemplateWire>,
    workload_ref: Option<NameWire>,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct TemplateWire {
    spec: Option<PodSpec>,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct JobTemplateWire {
    spec: Option<JobSpecWire>,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct JobSpecWire {
    template: Option<TemplateWire>,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct NameWire {
    name: Option<String>,
}

impl WorkloadSpecWire {
    fn into_workload(self, kind: WorkloadKind, status: &JobStatus) -> Workload {
        let template = match kind {
            WorkloadKind::CronJob => self.job_template.and_then(|j| j.spec).and_then(|s| s.template),
            _ => self.template,
        };
        // A struct literal on purpose: a field added to `Workload` fails to compile here
        // until the watch path decodes it too.
        let mut pod = template.and_then(|t| t.spec);
        if let Some(p) = pod.as_mut() {
            shrink(&mut p.containers);
            p.init_containers.iter_mut().for_each(shrink);
        }
        Workload {
            kind,
            pod,
            workload_ref: match kind {
                WorkloadKind::Rollout => self.workload_ref.and_then(|r| r.name),
                _ => None,
            },
            failed: kind == WorkloadKind::Job && status.failed(),
        }
    }
}

/// Decoded lists grow by doubling; the cache keeps them for as long as the object lives.
fn shrink(containers: &mut Vec<Container>) {
    containers.shrink_to_fit();
    for c in containers {
        c.env.iter_mut().for_each(|env| env.shrink_to_fit());
    }
}

/// `metadata`, keeping only what [`Object`]'s accessors and the index read.
#[derive(Default)]
struct SlimMeta {
    meta: Meta,
    labels: Marks,
    annotations: Marks,
}

impl<'de> Deserialize<'de> for SlimMeta {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<SlimMeta, D::Error> {
        d.deserialize_map(SlimMetaVisitor)
    }
}

struct SlimMetaVisitor;

impl<'de> Visitor<'de> for SlimMetaVisitor {
    type Value = SlimMeta;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("object metadata")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<SlimMeta, A::Error> {
        let mut slim = SlimMeta::default();
        let m = &mut slim.meta;
        while let Some(key) = map.next_key_seed(KeyName)? {
            match key.as_ref() {
                "name" => m.name = map.next_value()?,
                "namespace" => m.namespace = map.next_value()?,
                "generateName" => m.generate_name = map.next_value()?,
                "uid" => m.uid = map.next_value()?,
                "resourceVersion" => m.resource_version = map.next_value()?,
                "creationTimestamp" => m.creation_timestamp = map.next_value::<Option<Time>>()?,
                "deletionTimestamp" => m.deletion_timestamp = map.next_value::<Option<Time>>()?,
                "labels" => slim.labels = map.next_value_seed(Kept(is_kept_label))?,
                "annotations" => slim.annotations = map.next_value_seed(Kept(is_kept_annotation))?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(slim)
    }
}

fn is_kept_label(key: &str) -> bool {
    key.starts_with(keys::PREFIX)
}

fn is_kept_annotation(key: &str) -> bool {
    key.starts_with(keys::PREFIX) || keys::FOREIGN_ANNOTATIONS.contains(&key)
}

/// A string map of which only the entries whose key passes the filter are kept.
struct Kept(fn(&str) -> bool);

impl<'de> DeserializeSeed<'de> for Kept {
    type Value = Marks;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_option(self)
    }
}

impl<'de> Visitor<'de> for Kept {
    type Value = Marks;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a map of strings")
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Marks::default())
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Marks::default())
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut kept = Vec::new();
        while let Some(key) = map.next_key_seed(KeyName)? {
            if (self.0)(&key) {
                let value: Option<String> = map.next_value()?;
                kept.push((key.into_owned(), value.unwrap_or_default()));
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(kept.into_iter().collect())
    }
}

/// Any JSON value, copied as JSON text, so that it can be decoded on its own afterwards and a
/// decoding error stays with this object instead of failing the whole list.
struct JsonText(Vec<u8>);

impl<'de> Deserialize<'de> for JsonText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<JsonText, D::Error> {
        let mut out = Vec::new();
        Copy(&mut out).deserialize(d)?;
        Ok(JsonText(out))
    }
}

/// Writes the value it visits into its buffer as JSON.
struct Copy<'a>(&'a mut Vec<u8>);

impl Copy<'_> {
    fn scalar<T: Serialize + ?Sized, E: de::Error>(self, v: &T) -> Result<(), E> {
        serde_json::to_writer(&mut *self.0, v).map_err(E::custom)
    }
}

impl<'de> DeserializeSeed<'de> for Copy<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Copy<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<(), E> {
        self.scalar(&v)
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        self.scalar(&v)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        self.scalar(&v)
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        self.scalar(&v)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        self.scalar(v)
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.0.extend_from_slice(b"null");
        Ok(())
    }
    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        self.visit_unit()
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        self.deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        self.0.push(b'[');
        let mut first = true;
        loop {
            let at = self.0.len();
            if !first {
                self.0.push(b',');
            }
            if seq.next_element_seed(Copy(&mut *self.0))?.is_none() {
                self.0.truncate(at);
                break;
            }
            first = false;
        }
        self.0.push(b']');
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        self.0.push(b'{');
        let mut first = true;
        while let Some(key) = map.next_key_seed(KeyName)? {
            if !first {
                self.0.push(b',');
            }
            first = false;
            serde_json::to_writer(&mut *self.0, key.as_ref()).map_err(de::Error::custom)?;
            self.0.push(b':');
            map.next_value_seed(Copy(&mut *self.0))?;
        }
        self.0.push(b'}');
        Ok(())
    }
}

#[cfg(test)]
mod tests;
