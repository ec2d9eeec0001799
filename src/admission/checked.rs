//! Values the one-pass decode (`admission::slim`) checks but does not keep: each is read as
//! kube's and k8s-openapi's types read it when the review is decoded in full (text where they
//! want text, a timestamp where they want one, serde_json's nesting limit and number and escape
//! checks everywhere), so that a body the full decoding refuses is refused here too.

use std::fmt;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::cluster::decode::KeyName;

/// An entry of `managedFields`, checked as k8s-openapi decodes it but not kept: the text fields
/// are text or null, `time` a timestamp, `fieldsV1` anything.
pub(super) struct ManagedFieldsEntry;

impl<'de> Deserialize<'de> for ManagedFieldsEntry {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(ManagedFieldsEntryVisitor)
    }
}

struct ManagedFieldsEntryVisitor;

impl<'de> Visitor<'de> for ManagedFieldsEntryVisitor {
    type Value = ManagedFieldsEntry;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ManagedFieldsEntry")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ManagedFieldsEntry, A::Error> {
        while let Some(key) = map.next_key_seed(KeyName)? {
            match key.as_ref() {
                "apiVersion" | "fieldsType" | "manager" | "operation" | "subresource" => {
                    map.next_value::<Option<Text>>()?;
                }
                "time" => {
                    map.next_value::<Option<Time>>()?;
                }
                _ => {
                    map.next_value::<Skip>()?;
                }
            }
        }
        Ok(ManagedFieldsEntry)
    }
}

/// `userInfo`, checked as k8s-openapi's `UserInfo` decodes it but not kept.
pub(super) struct UserInfoShape;

impl<'de> Deserialize<'de> for UserInfoShape {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(UserInfoVisitor)
    }
}

struct UserInfoVisitor;

impl<'de> Visitor<'de> for UserInfoVisitor {
    type Value = UserInfoShape;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("UserInfo")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<UserInfoShape, A::Error> {
        while let Some(key) = map.next_key_seed(KeyName)? {
            match key.as_ref() {
                "username" | "uid" => {
                    map.next_value::<Option<Text>>()?;
                }
                "groups" => {
                    map.next_value::<Option<Vec<Text>>>()?;
                }
                "extra" => {
                    map.next_value::<Option<TextLists>>()?;
                }
                _ => {
                    map.next_value::<Skip>()?;
                }
            }
        }
        Ok(UserInfoShape)
    }
}

/// A mapping of text to lists of text (`userInfo.extra`), checked and dropped.
struct TextLists;

impl<'de> Deserialize<'de> for TextLists {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(TextListsVisitor)
    }
}

struct TextListsVisitor;

impl<'de> Visitor<'de> for TextListsVisitor {
    type Value = TextLists;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a map of lists of strings")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<TextLists, A::Error> {
        while map.next_key::<Text>()?.is_some() {
            map.next_value::<Vec<Text>>()?;
        }
        Ok(TextLists)
    }
}

/// A value skipped, but read as the full decoding reads it: serde's `IgnoredAny` skips without
/// the parser's nesting limit or checking numbers and escapes, and would let through a body the
/// full decoding refuses.
pub(super) struct Skip;

impl<'de> Deserialize<'de> for Skip {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(SkipVisitor)
    }
}

struct SkipVisitor;

impl<'de> Visitor<'de> for SkipVisitor {
    type Value = Skip;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any value")
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_none<E: de::Error>(self) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Skip, D::Error> {
        Skip::deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Skip, A::Error> {
        while seq.next_element::<Skip>()?.is_some() {}
        Ok(Skip)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Skip, A::Error> {
        while map.next_key::<Skip>()?.is_some() {
            map.next_value::<Skip>()?;
        }
        Ok(Skip)
    }
}

/// A string, checked and dropped.
struct Text;

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(TextVisitor)
    }
}

struct TextVisitor;

impl Visitor<'_> for TextVisitor {
    type Value = Text;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Text, E> {
        Ok(Text)
    }
}
