//! The AdmissionReview decoded the short way: straight from the body into kube's
//! `AdmissionRequest`, each object keeping only what the model reads.
//!
//! kube's `AdmissionReview` has a flattened `TypeMeta` and `DynamicObject` two flattened
//! fields, and serde decodes a struct with a flattened field by first copying the whole input
//! into a generic tree of its own: every review was parsed twice, managed fields, the
//! last-applied copy and a Cluster's status included, before a third copy became the object's
//! JSON. That cost more than the rest of a review put together. Here the envelope is read
//! without flattening and each object, once the request's kind is known (kube-apiserver sends
//! `kind` first), is decoded as it is read: metadata without managed fields, and the few
//! branches of `spec` and `status` the model reads for that kind. Everything else is skipped
//! without being allocated, but still read as the full decoding reads it (nesting limit,
//! numbers, escapes), so that a body it refuses is not let through. One place is left to the
//! derived code of k8s-openapi: an unknown key inside an `ownerReferences` entry is skipped
//! there without those checks (kube-apiserver never sends one).
//!
//! Anything unusual — a field of an unexpected type, a duplicate key, an object before the
//! request's kind, an envelope that is not a v1 AdmissionReview, an UPDATE that removes
//! finalizers (judged by comparing whole objects) — makes [`parse`] give up, and the review is
//! decoded the long way, so answers and error messages are those of the full decoding. Tests
//! compare the two on fuzzed real reviews and on every hostile input.

use std::fmt;

use k8s_openapi::api::authentication::v1::UserInfo;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::core::admission::{AdmissionRequest, Operation};
use kube::core::{DynamicObject, GroupVersionKind, TypeMeta};
use serde::Deserialize;
use serde::de::value::{CowStrDeserializer, MapAccessDeserializer};
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use super::checked::{ManagedFieldsEntry, Skip, UserInfoShape};
use crate::cluster::decode::KeyName;
use crate::model::{KindId, WorkloadKind};

/// The request with its objects decoded for the model, or None when the full decoding has to
/// answer instead. The objects' `data` holds only the branches the model reads.
pub(super) fn parse(body: &[u8]) -> Option<AdmissionRequest<DynamicObject>> {
    // Text checked once here, so that strings and the objects' text need no checking of their own.
    let envelope: Envelope = serde_json::from_str(std::str::from_utf8(body).ok()?).ok()?;
    if envelope.api_version != super::API_VERSION || envelope.kind != "AdmissionReview" {
        return None;
    }
    let mut req = envelope.request?.0;
    if let (Operation::Update, Some(new), Some(old)) = (&req.operation, &req.object, &req.old_object) {
        let count = |o: &DynamicObject| o.metadata.finalizers.as_ref().map_or(0, Vec::len);
        if count(new) < count(old) {
            return None;
        }
    }
    req.types = TypeMeta {
        api_version: envelope.api_version,
        kind: envelope.kind,
    };
    Some(req)
}

/// `AdmissionReview` without the flattening.
struct Envelope {
    api_version: String,
    kind: String,
    request: Option<Request>,
}

impl<'de> Deserialize<'de> for Envelope {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(EnvelopeVisitor)
    }
}

struct EnvelopeVisitor;

impl<'de> Visitor<'de> for EnvelopeVisitor {
    type Value = Envelope;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("struct AdmissionReview")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Envelope, A::Error> {
        let (mut api_version, mut kind, mut request) = (None, None, None);
        while let Some(key) = map.next_key_seed(KeyName)? {
            let field = key.as_ref();
            match field {
                "apiVersion" => once(&mut map, &mut api_version, field)?,
                "kind" => once(&mut map, &mut kind, field)?,
                "request" => once(&mut map, &mut request, field)?,
                // `response`, and whatever else a client adds.
                _ => {
                    map.next_value::<Skip>()?;
                }
            }
        }
        let missing = |field: &'static str| <A::Error as de::Error>::missing_field(field);
        Ok(Envelope {
            api_version: api_version.ok_or_else(|| missing("apiVersion"))?,
            kind: kind.ok_or_else(|| missing("kind"))?,
            request: request.flatten(),
        })
    }
}

/// kube's `AdmissionRequest`, decoded as its derived `Deserialize` does but for the objects,
/// which are decoded for the request's kind as they are read, and `userInfo`.
struct Request(AdmissionRequest<DynamicObject>);

impl<'de> Deserialize<'de> for Request {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(RequestVisitor)
    }
}

fn kind_id(gvk: &GroupVersionKind) -> Option<KindId> {
    KindId::in_group(&gvk.group, &gvk.kind)
}

struct RequestVisitor;

/// Reads a field once; a second copy makes the short way give up, as the derived decoding
/// refuses it too.
fn once<'de, A: MapAccess<'de>, T: Deserialize<'de>>(
    map: &mut A,
    slot: &mut Option<T>,
    field: &str,
) -> Result<(), A::Error> {
    once_seed(map, slot, field, std::marker::PhantomData)
}

fn once_seed<'de, A: MapAccess<'de>, S: DeserializeSeed<'de>>(
    map: &mut A,
    slot: &mut Option<S::Value>,
    field: &str,
    seed: S,
) -> Result<(), A::Error> {
    if slot.replace(map.next_value_seed(seed)?).is_some() {
        return Err(de::Error::custom(format_args!("duplicate field `{field}`")));
    }
    Ok(())
}

/// The fields of kube's `GroupVersionKind` and `GroupVersionResource` (tests compare them with
/// what their derived `Deserialize` asks for).
const GVK_FIELDS: &[&str] = &["group", "version", "kind"];
const GVR_FIELDS: &[&str] = &["group", "version", "resource", "api_version"];

/// k8s-openapi's `ObjectMeta` fields but `managedFields`, which are checked apart.
const META_FIELDS: &[&str] = &[
    "annotations",
    "creationTimestamp",
    "deletionGracePeriodSeconds",
    "deletionTimestamp",
    "finalizers",
    "generateName",
    "generation",
    "labels",
    "name",
    "namespace",
    "ownerReferences",
    "resourceVersion",
    "selfLink",
    "uid",
];

/// A kube or k8s-openapi type, or null, decoded by its own `Deserialize` from a mapping of only
/// the keys it knows. Derived code skips unknown keys with serde's `IgnoredAny`, which reads
/// past any nesting and any number; here they are read by [`Skip`], as the full decoding reads
/// them.
struct Known<T> {
    fields: &'static [&'static str],
    of: std::marker::PhantomData<T>,
}

impl<T> Known<T> {
    fn new(fields: &'static [&'static str]) -> Known<T> {
        Known {
            fields,
            of: std::marker::PhantomData,
        }
    }
}

impl<'de, T: Deserialize<'de>> DeserializeSeed<'de> for Known<T> {
    type Value = Option<T>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Option<T>, D::Error> {
        d.deserialize_option(self)
    }
}

impl<'de, T: Deserialize<'de>> Visitor<'de> for Known<T> {
    type Value = Option<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a mapping or null")
    }
    fn visit_none<E: de::Error>(self) -> Result<Option<T>, E> {
        Ok(None)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Option<T>, D::Error> {
        d.deserialize_map(KnownMap(self))
    }
}

struct KnownMap<T>(Known<T>);

impl<'de, T: Deserialize<'de>> Visitor<'de> for KnownMap<T> {
    type Value = Option<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a mapping")
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Option<T>, A::Error> {
        let only = KnownKeys {
            map,
            fields: self.0.fields,
        };
        T::deserialize(MapAccessDeserializer::new(only)).map(Some)
    }
}

struct KnownKeys<A> {
    map: A,
    fields: &'static [&'static str],
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for KnownKeys<A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, A::Error> {
        while let Some(key) = self.map.next_key_seed(KeyName)? {
            if self.fields == META_FIELDS && key == "managedFields" {
                self.map.next_value::<Option<Vec<ManagedFieldsEntry>>>()?;
                continue;
            }
            if !self.fields.contains(&key.as_ref()) {
                self.map.next_value::<Skip>()?;
                continue;
            }
            return seed.deserialize(CowStrDeserializer::new(key)).map(Some);
        }
        Ok(None)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, A::Error> {
        self.map.next_value_seed(seed)
    }
}

impl<'de> Visitor<'de> for RequestVisitor {
    type Value = Request;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("struct AdmissionRequest")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Request, A::Error> {
        let (mut uid, mut kind, mut resource, mut sub_resource) = (None, None, None, None);
        let (mut request_kind, mut request_resource, mut request_sub_resource) = (None, None, None);
        let (mut name, mut namespace, mut operation) = (None, None, None);
        let mut user_info: Option<UserInfoShape> = None;
        let (mut object, mut old_object, mut dry_run, mut options) = (None, None, None, None);
        while let Some(key) = map.next_key_seed(KeyName)? {
            let field = key.as_ref();
            match field {
                "uid" => once(&mut map, &mut uid, field)?,
                "kind" => once_seed(&mut map, &mut kind, field, Known::new(GVK_FIELDS))?,
                "resource" => once_seed(&mut map, &mut resource, field, Known::new(GVR_FIELDS))?,
                "subResource" => once(&mut map, &mut sub_resource, field)?,
                "requestKind" => once_seed(&mut map, &mut request_kind, field, Known::new(GVK_FIELDS))?,
                "requestResource" => once_seed(&mut map, &mut request_resource, field, Known::new(GVR_FIELDS))?,
                "requestSubResource" => once(&mut map, &mut request_sub_resource, field)?,
                "name" => once(&mut map, &mut name, field)?,
                "namespace" => once(&mut map, &mut namespace, field)?,
                "operation" => once(&mut map, &mut operation, field)?,
                "userInfo" => once(&mut map, &mut user_info, field)?,
                "dryRun" => once(&mut map, &mut dry_run, field)?,
                "options" => once(&mut map, &mut options, field)?,
                "object" | "oldObject" => {
                    // kube-apiserver sends `kind` first; without it the object would have to be
                    // kept as text and read twice, which the full decoding does as well.
                    let Some(Some(gvk)) = &kind else {
                        return Err(de::Error::custom("object before kind"));
                    };
                    let slot = if field == "object" {
                        &mut object
                    } else {
                        &mut old_object
                    };
                    if slot.replace(map.next_value_seed(ObjectSeed(kind_id(gvk)))?).is_some() {
                        return Err(de::Error::custom(format_args!("duplicate field `{field}`")));
                    }
                }
                _ => {
                    map.next_value::<Skip>()?;
                }
            }
        }
        let missing = |field: &'static str| <A::Error as de::Error>::missing_field(field);
        let null = || <A::Error as de::Error>::invalid_type(de::Unexpected::Unit, &"a mapping");
        let kind: GroupVersionKind = kind.ok_or_else(|| missing("kind"))?.ok_or_else(null)?;
        Ok(Request(AdmissionRequest {
            types: TypeMeta::default(),
            uid: uid.ok_or_else(|| missing("uid"))?,
            kind,
            resource: resource.ok_or_else(|| missing("resource"))?.ok_or_else(null)?,
            sub_resource: sub_resource.flatten(),
            request_kind: request_kind.flatten(),
            request_resource: request_resource.flatten(),
            request_sub_resource: request_sub_resource.flatten(),
            name: name.unwrap_or_default(),
            namespace: namespace.flatten(),
            operation: operation.ok_or_else(|| missing("operation"))?,
            // Checked, not kept: no rule reads who sends a request. One that does must decode
            // it here, or every answer would see an empty UserInfo.
            user_info: user_info
                .map(|_| UserInfo::default())
                .ok_or_else(|| missing("userInfo"))?,
            object: object.flatten(),
            old_object: old_object.flatten(),
            dry_run: dry_run.unwrap_or_default(),
            options: options.flatten(),
        }))
    }
}

/// An object of the request, or null.
struct ObjectSeed(Option<KindId>);

impl<'de> DeserializeSeed<'de> for ObjectSeed {
    type Value = Option<DynamicObject>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_option(self)
    }
}

impl<'de> Visitor<'de> for ObjectSeed {
    type Value = Option<DynamicObject>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a Kubernetes object or null")
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(ObjectVisitor(self.0)).map(Some)
    }
}

/// What is kept of a part of an object: all of it, or of a mapping only some keys, or of a list
/// of mappings only some keys of each. A part that is not what the model expects (a mapping,
/// a list) makes the short way give up.
#[derive(Clone, Copy)]
enum Keep {
    Nothing,
    Whole,
    Only(&'static [(&'static str, Keep)]),
    Each(&'static [(&'static str, Keep)]),
}

/// What the model reads of a container (`model::workload::Container`).
const CONTAINER: Keep = Keep::Each(&[
    ("name", Keep::Whole),
    ("image", Keep::Whole),
    ("env", Keep::Whole),
    ("restartPolicy", Keep::Whole),
]);

/// What it reads of a pod template (`model::workload::PodSpec`).
const TEMPLATE: Keep = Keep::Only(&[(
    "spec",
    Keep::Only(&[("containers", CONTAINER), ("initContainers", CONTAINER)]),
)]);

/// Of a workload's spec: the pod template (`jobTemplate`'s for a CronJob) and a Rollout's
/// `workloadRef`.
const WORKLOAD_SPEC: Keep = Keep::Only(&[
    ("template", TEMPLATE),
    (
        "jobTemplate",
        Keep::Only(&[("spec", Keep::Only(&[("template", TEMPLATE)]))]),
    ),
    ("workloadRef", Keep::Whole),
]);

/// What the model reads of `spec` and `status`, per kind.
fn keep(kind: Option<KindId>) -> (Keep, Keep) {
    match kind {
        // A Job's status: whether it failed.
        Some(KindId::Workload(WorkloadKind::Job)) => (WORKLOAD_SPEC, Keep::Whole),
        Some(KindId::Workload(_)) => (WORKLOAD_SPEC, Keep::Nothing),
        // A Cluster's status is the operator's, and large.
        Some(KindId::Cluster | KindId::ScheduledBackup | KindId::ObjectStore) => (Keep::Whole, Keep::Nothing),
        Some(KindId::Namespace) | None => (Keep::Nothing, Keep::Nothing),
    }
}

struct ObjectVisitor(Option<KindId>);

impl<'de> Visitor<'de> for ObjectVisitor {
    type Value = DynamicObject;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a Kubernetes object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<DynamicObject, A::Error> {
        let (keep_spec, keep_status) = keep(self.0);
        let (mut api_version, mut kind, mut metadata) = (None, None, None);
        let mut data = Map::new();
        while let Some(key) = map.next_key_seed(KeyName)? {
            let field = key.as_ref();
            let seen = match field {
                "apiVersion" => api_version.replace(map.next_value::<String>()?).is_some(),
                "kind" => kind.replace(map.next_value::<String>()?).is_some(),
                "metadata" => metadata
                    .replace(map.next_value_seed(Known::<ObjectMeta>::new(META_FIELDS))?)
                    .is_some(),
                "spec" | "status" => {
                    let keep = if field == "spec" { keep_spec } else { keep_status };
                    if matches!(keep, Keep::Nothing) {
                        map.next_value::<Skip>()?;
                        continue;
                    }
                    let value = map.next_value_seed(keep)?;
                    data.insert(field.to_string(), value).is_some()
                }
                _ => {
                    map.next_value::<Skip>()?;
                    false
                }
            };
            // The full decoding decides which of two copies counts.
            if seen {
                return Err(de::Error::custom(format_args!("duplicate field `{field}`")));
            }
        }
        let types = match (api_version, kind) {
            (Some(api_version), Some(kind)) => Some(TypeMeta { api_version, kind }),
            _ => None,
        };
        Ok(DynamicObject {
            types,
            // `metadata: null` makes the full decoding fail, and so the short way.
            metadata: match metadata {
                None => ObjectMeta::default(),
                Some(Some(meta)) => meta,
                Some(None) => return Err(de::Error::invalid_type(de::Unexpected::Unit, &"object metadata")),
            },
            data: Value::Object(data),
        })
    }
}

impl<'de> DeserializeSeed<'de> for Keep {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        match self {
            Keep::Nothing => Skip::deserialize(d).map(|_| Value::Null),
            Keep::Whole => Value::deserialize(d),
            Keep::Only(keys) => d.deserialize_map(Only(keys)).map(Value::Object),
            Keep::Each(keys) => d.deserialize_seq(Each(keys)).map(Value::Array),
        }
    }
}

/// A mapping of which only some keys are kept, each as its [`Keep`] says.
struct Only(&'static [(&'static str, Keep)]);

impl<'de> Visitor<'de> for Only {
    type Value = Map<String, Value>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a mapping")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut kept = Map::new();
        while let Some(key) = map.next_key_seed(KeyName)? {
            let Some((_, keep)) = self.0.iter().find(|(k, _)| *k == key) else {
                map.next_value::<Skip>()?;
                continue;
            };
            let value = map.next_value_seed(*keep)?;
            if kept.insert(key.to_string(), value).is_some() {
                return Err(de::Error::custom(format_args!("duplicate field `{key}`")));
            }
        }
        Ok(kept)
    }
}

/// A list of mappings, of each of which only some keys are kept.
struct Each(&'static [(&'static str, Keep)]);

impl<'de> Visitor<'de> for Each {
    type Value = Vec<Value>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of mappings")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(item) = seq.next_element_seed(Keep::Only(self.0))? {
            items.push(item);
        }
        Ok(items)
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone as _;
    use serde_json::json;

    use super::*;
    use crate::engine::Scope;
    use crate::policy::Policy;
    use crate::view::EmptyView;

    const EXAMPLES: [&str; 4] = [
        include_str!("../../examples/review-rollout.json"),
        include_str!("../../examples/review-job-presync.json"),
        include_str!("../../examples/review-job-update.json"),
        include_str!("../../examples/review-cluster-no-backup.json"),
    ];

    fn example(i: usize) -> Value {
        serde_json::from_str(EXAMPLES[i]).unwrap()
    }

    fn body(review: &Value) -> Vec<u8> {
        serde_json::to_vec(review).unwrap()
    }

    /// Both webhooks answer `body` exactly as they do with kube's types decoded in full.
    fn answers_as_the_full_decoding(body: &[u8]) {
        let now = chrono::Utc.with_ymd_and_hms(2026, 12, 7, 8, 0, 0).unwrap();
        for scope in [Scope::Mutate, Scope::Validate] {
            let policy = Policy::default();
            let short = super::super::handle(body, scope, &EmptyView, &policy, now);
            let full = super::super::handle_decoding_fully(body, scope, &EmptyView, &policy, now);
            match (short, full) {
                (Ok(short), Ok(full)) => {
                    assert_eq!(
                        String::from_utf8_lossy(&short.body),
                        String::from_utf8_lossy(&full.body)
                    );
                    assert_eq!(format!("{:?}", short.summary), format!("{:?}", full.summary));
                }
                (Err(short), Err(full)) => assert_eq!(short, full),
                (short, full) => panic!("short {:?}, full {:?}", short.is_ok(), full.is_ok()),
            }
        }
    }

    #[test]
    fn reviews_as_kube_apiserver_sends_them_take_the_short_way() {
        for (i, text) in EXAMPLES.iter().enumerate() {
            let review = example(i);
            let req = parse(&body(&review)).unwrap_or_else(|| panic!("example {i} took the long way"));
            assert_eq!(req.uid, review["request"]["uid"].as_str().unwrap());
            assert_eq!(req.types.api_version, "admission.k8s.io/v1");
            let object = req.object.as_ref().unwrap();
            // Managed fields are skipped; the rest of the metadata is kept.
            assert!(review["request"]["object"]["metadata"]["managedFields"].is_array());
            assert_eq!(object.metadata.managed_fields, None);
            assert_eq!(
                object.metadata.name.as_deref(),
                review["request"]["object"]["metadata"]["name"].as_str()
            );
            let kept: Vec<&String> = object.data.as_object().unwrap().keys().collect();
            assert!(kept.iter().all(|k| *k == "spec" || *k == "status"), "{kept:?}");
            answers_as_the_full_decoding(text.as_bytes());
        }
    }

    /// The fields a derived `Deserialize` asks for.
    fn fields_of<T: for<'de> Deserialize<'de>>() -> Vec<&'static str> {
        struct Fields(std::cell::Cell<&'static [&'static str]>);
        impl<'de> Deserializer<'de> for &Fields {
            type Error = serde::de::value::Error;
            fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
                Err(de::Error::custom("not a struct"))
            }
            fn deserialize_struct<V: Visitor<'de>>(
                self,
                _: &'static str,
                fields: &'static [&'static str],
                _: V,
            ) -> Result<V::Value, Self::Error> {
                self.0.set(fields);
                Err(de::Error::custom("fields taken"))
            }
            serde::forward_to_deserialize_any! {
                bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
                option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
                ignored_any
            }
        }
        let fields = Fields(std::cell::Cell::new(&[]));
        let _ = T::deserialize(&fields);
        let mut fields = fields.0.get().to_vec();
        fields.sort_unstable();
        fields
    }

    fn keys(keep: Keep) -> Vec<&'static str> {
        let (Keep::Only(keys) | Keep::Each(keys)) = keep else {
            panic!("not a mapping")
        };
        let mut keys: Vec<_> = keys.iter().map(|(k, _)| *k).collect();
        keys.sort_unstable();
        keys
    }

    #[test]
    fn the_known_fields_are_those_kube_and_k8s_openapi_decode() {
        let sorted = |fields: &[&'static str]| {
            let mut fields = fields.to_vec();
            fields.sort_unstable();
            fields
        };
        assert_eq!(sorted(GVK_FIELDS), fields_of::<GroupVersionKind>());
        assert_eq!(sorted(GVR_FIELDS), fields_of::<kube::core::GroupVersionResource>());
        assert_eq!(
            sorted(&[META_FIELDS, &["managedFields"]].concat()),
            fields_of::<ObjectMeta>()
        );
    }

    #[test]
    fn what_is_kept_of_a_pod_is_every_field_the_model_decodes() {
        use crate::model::workload::{Container, PodSpec};
        // A field added to the model's container or pod spec must be kept here too.
        assert_eq!(keys(CONTAINER), fields_of::<Container>());
        let Keep::Only([("spec", pod)]) = TEMPLATE else {
            panic!("a template keeps its spec")
        };
        assert_eq!(keys(*pod), fields_of::<PodSpec>());
    }

    #[test]
    fn of_a_workload_only_what_the_model_reads_is_kept() {
        let req = parse(EXAMPLES[0].as_bytes()).unwrap();
        let data = &req.object.unwrap().data;
        // No strategy, selector or replicas; of the container its name, image and env.
        assert_eq!(
            data["spec"].as_object().unwrap().keys().collect::<Vec<_>>(),
            ["template"]
        );
        let container = &data["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(
            container.as_object().unwrap().keys().collect::<Vec<_>>(),
            ["name", "image", "env"]
        );
        assert_eq!(container["image"], "ghcr.io/acme/shop-web:sha-1a2b3c4");
        assert_eq!(data.get("status"), None);
    }

    #[test]
    fn a_jobs_status_and_a_clusters_spec_are_kept_whole_a_clusters_status_is_not() {
        let mut job = example(2);
        job["request"]["object"]["status"] = json!({"conditions": [{"type": "Failed", "status": "True"}], "failed": 3});
        let req = parse(&body(&job)).unwrap();
        assert_eq!(req.object.unwrap().data["status"], job["request"]["object"]["status"]);
        answers_as_the_full_decoding(&body(&job));

        let mut cluster = example(3);
        cluster["request"]["object"]["status"] = json!({"phase": "Cluster in healthy state", "instances": 3});
        let req = parse(&body(&cluster)).unwrap();
        let data = req.object.unwrap().data;
        assert_eq!(data["spec"], cluster["request"]["object"]["spec"]);
        assert_eq!(data.get("status"), None);
        answers_as_the_full_decoding(&body(&cluster));
    }

    #[test]
    fn objects_sent_before_the_requests_kind_take_the_long_way() {
        let review = example(2);
        let request = review["request"].as_object().unwrap();
        let mut reordered = Map::new();
        for key in ["oldObject", "object"] {
            reordered.insert(key.to_string(), request[key].clone());
        }
        for (k, v) in request {
            reordered.entry(k.clone()).or_insert_with(|| v.clone());
        }
        let mut review = review.clone();
        review["request"] = Value::Object(reordered);
        let text = String::from_utf8(body(&review)).unwrap();
        assert!(text.find("\"oldObject\"") < text.find("\"kind\":{"));
        assert!(parse(text.as_bytes()).is_none());
        answers_as_the_full_decoding(text.as_bytes());
    }

    #[test]
    fn what_is_skipped_is_still_read_as_the_full_decoding_reads_it() {
        let deep = format!("{}1{}", "[".repeat(200), "]".repeat(200));
        for skipped in [deep.as_str(), "-1e400", "\"\\ud800\"", "\"\\x\""] {
            // Unknown keys of the envelope, the request, its kind, the metadata, a managed
            // fields entry, and a skipped key of the spec.
            for at in [
                "\"kind\": \"AdmissionReview\"",
                "\"uid\": \"b8e5",
                "\"group\": \"argoproj.io\"",
                "\"creationTimestamp\": null",
                "\"fieldsType\": \"FieldsV1\"",
                "\"replicas\": 3",
            ] {
                let text = EXAMPLES[0].replacen(at, &format!("\"replicas\": {skipped}, {at}"), 1);
                assert_ne!(text, EXAMPLES[0], "{at}");
                assert!(parse(text.as_bytes()).is_none(), "{skipped} at {at}");
                answers_as_the_full_decoding(text.as_bytes());
            }
        }
        // Nesting as deep as the full decoding takes is fine.
        let deep = format!("{}1{}", "[".repeat(100), "]".repeat(100));
        let text = EXAMPLES[0].replacen("\"replicas\": 3", &format!("\"replicas\": {deep}"), 1);
        assert!(parse(text.as_bytes()).is_some());
        answers_as_the_full_decoding(text.as_bytes());
    }

    #[test]
    fn unusual_reviews_take_the_long_way_and_get_its_answer() {
        type Edit = fn(&mut Value);
        let edits: [(&str, Edit); 9] = [
            ("envelope of another version", |r| {
                r["apiVersion"] = json!("admission.k8s.io/v1beta1")
            }),
            ("malformed managed fields", |r| {
                r["request"]["object"]["metadata"]["managedFields"] = json!("x")
            }),
            ("managed fields with a bad time", |r| {
                r["request"]["object"]["metadata"]["managedFields"][0]["time"] = json!("yesterday")
            }),
            ("userInfo of the wrong type", |r| {
                r["request"]["userInfo"] = json!(["system:admin"])
            }),
            ("userInfo.extra of the wrong shape", |r| {
                r["request"]["userInfo"]["extra"] = json!({"a": "b"})
            }),
            ("a null spec", |r| r["request"]["object"]["spec"] = Value::Null),
            ("a container that is a string", |r| {
                r["request"]["object"]["spec"]["template"]["spec"]["containers"] = json!(["web"])
            }),
            ("a template that is a list", |r| {
                r["request"]["object"]["spec"]["template"] = json!([{"spec": {}}])
            }),
            ("apiVersion that is not text", |r| {
                r["request"]["object"]["apiVersion"] = json!(1)
            }),
        ];
        for (what, edit) in edits {
            let mut review = example(0);
            edit(&mut review);
            let text = body(&review);
            assert!(parse(&text).is_none(), "{what}: took the short way");
            answers_as_the_full_decoding(&text);
        }
    }

    #[test]
    fn duplicate_keys_and_text_that_is_not_utf8_take_the_long_way() {
        let text = EXAMPLES[0];
        let duplicated = [
            text.replacen("\"uid\":", "\"uid\": \"x\", \"uid\":", 1),
            text.replacen("\"spec\": {", "\"spec\": {\"template\": {}, ", 1),
            text.replacen("\"metadata\": {", "\"metadata\": {}, \"metadata\": {", 1),
        ];
        for text in &duplicated {
            assert_ne!(text, EXAMPLES[0]);
            assert!(serde_json::from_str::<Value>(text).is_ok());
            assert!(parse(text.as_bytes()).is_none(), "{text}");
            answers_as_the_full_decoding(text.as_bytes());
        }
        let mut latin1 = EXAMPLES[0].replacen("\"web\"", "\"w\u{e9}b\"", 1).into_bytes();
        let at = latin1.windows(2).position(|w| w == "é".as_bytes()).unwrap();
        latin1.splice(at..at + 2, [0xe9]);
        assert!(parse(&latin1).is_none());
        answers_as_the_full_decoding(&latin1);
    }

    #[test]
    fn an_update_that_removes_finalizers_is_judged_on_whole_objects() {
        let mut review = example(2);
        review["request"]["oldObject"]["metadata"]["finalizers"] = json!(["example.com/keep"]);
        review["request"]["object"]["metadata"]["finalizers"] = json!([]);
        assert!(parse(&body(&review)).is_none());
        answers_as_the_full_decoding(&body(&review));
        // Adding one is an ordinary change.
        review["request"]["object"]["metadata"]["finalizers"] = json!(["example.com/keep", "b"]);
        assert!(parse(&body(&review)).is_some());
        answers_as_the_full_decoding(&body(&review));
    }
}
