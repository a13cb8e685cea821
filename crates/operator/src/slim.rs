//! Decoding watched objects without the parts no controller of ours reads.
//!
//! The cache trims (`cache::trim`) drop `metadata.managedFields` and, per
//! kind, whole top-level fields such as a Pod's `spec`, but only after
//! serde has built them: at 9,000 Pods and Deployments, decoding
//! managedFields into `FieldsV1` trees that are thrown away at once was about
//! a quarter of the controllers' CPU. [`Slim<K, S>`] is `K` decoded with those
//! parts skipped in the parser (`IgnoredAny`), so they are never allocated.
//!
//! `Api<Slim<K, S>>` talks to the same URLs as `Api<K>` ([`kube::Resource`] is
//! forwarded); a watch maps each `Slim` back to `K` right away.

use kube::Resource;
use kube::api::ObjectMeta;
use serde::de::{
    self, DeserializeOwned, DeserializeSeed, Deserializer, IgnoredAny, IntoDeserializer, MapAccess,
    Visitor,
};
use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

/// Which top-level fields of an object a watch leaves undecoded, besides
/// `metadata.managedFields` (which is always skipped).
pub trait Skip: 'static {
    const TOP: &'static [&'static str];
}

/// Skips managedFields only.
pub enum ManagedFields {}

impl Skip for ManagedFields {
    const TOP: &'static [&'static str] = &[];
}

/// Skips `spec` too: the reader keeps metadata and status.
pub enum Spec {}

impl Skip for Spec {
    const TOP: &'static [&'static str] = &["spec"];
}

/// Skips `spec` and `status`: the reader keeps metadata only.
pub enum SpecAndStatus {}

impl Skip for SpecAndStatus {
    const TOP: &'static [&'static str] = &["spec", "status"];
}

/// Skips a ConfigMap's contents: the reader keeps metadata only.
pub enum Data {}

impl Skip for Data {
    const TOP: &'static [&'static str] = &["data", "binaryData"];
}

/// `K`, decoded without managedFields and without the top-level fields `S`
/// names (they are left at their defaults).
pub struct Slim<K, S = ManagedFields>(pub K, PhantomData<fn() -> S>);

impl<K, S> Slim<K, S> {
    pub fn new(k: K) -> Self {
        Self(k, PhantomData)
    }

    pub fn into_inner(self) -> K {
        self.0
    }
}

impl<K: Clone, S> Clone for Slim<K, S> {
    fn clone(&self) -> Self {
        Self::new(self.0.clone())
    }
}

impl<K: fmt::Debug, S> fmt::Debug for Slim<K, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl<K: Resource, S: Skip> Resource for Slim<K, S> {
    type DynamicType = K::DynamicType;
    type Scope = K::Scope;

    fn kind(dt: &Self::DynamicType) -> Cow<'_, str> {
        K::kind(dt)
    }
    fn group(dt: &Self::DynamicType) -> Cow<'_, str> {
        K::group(dt)
    }
    fn version(dt: &Self::DynamicType) -> Cow<'_, str> {
        K::version(dt)
    }
    fn api_version(dt: &Self::DynamicType) -> Cow<'_, str> {
        K::api_version(dt)
    }
    fn plural(dt: &Self::DynamicType) -> Cow<'_, str> {
        K::plural(dt)
    }
    fn meta(&self) -> &ObjectMeta {
        self.0.meta()
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        self.0.meta_mut()
    }
}

impl<'de, K: DeserializeOwned, S: Skip> de::Deserialize<'de> for Slim<K, S> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        K::deserialize(Level::Object(S::TOP).filter(d)).map(Self::new)
    }
}

/// Where in the object a map is.
#[derive(Clone, Copy)]
enum Level {
    /// The object itself: skip these keys, filter inside `metadata`.
    Object(&'static [&'static str]),
    /// `metadata`: skip `managedFields`.
    Meta,
}

impl Level {
    fn filter<D>(self, inner: D) -> Filtered<D> {
        Filtered { inner, level: self }
    }

    fn visitor<V>(self, inner: V) -> FilteredVisitor<V> {
        FilteredVisitor { inner, level: self }
    }
}

/// A deserializer whose maps skip keys by [`Level`]. Objects are always
/// JSON maps, so every entry point but the map ones goes through
/// `deserialize_any`.
struct Filtered<D> {
    inner: D,
    level: Level,
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for Filtered<D> {
    type Error = D::Error;

    fn deserialize_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, D::Error> {
        self.inner.deserialize_any(self.level.visitor(v))
    }

    fn deserialize_map<V: Visitor<'de>>(self, v: V) -> Result<V::Value, D::Error> {
        self.inner.deserialize_map(self.level.visitor(v))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, D::Error> {
        self.inner
            .deserialize_struct(name, fields, self.level.visitor(v))
    }

    fn deserialize_option<V: Visitor<'de>>(self, v: V) -> Result<V::Value, D::Error> {
        // `metadata` is an Option in every k8s-openapi type.
        self.inner.deserialize_option(self.level.visitor(v))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct newtype_struct seq tuple
        tuple_struct enum identifier ignored_any
    }
}

struct FilteredVisitor<V> {
    inner: V,
    level: Level,
}

impl<'de, V: Visitor<'de>> Visitor<'de> for FilteredVisitor<V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.expecting(f)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<V::Value, A::Error> {
        self.inner.visit_map(FilteredMap {
            inner: map,
            level: self.level,
            metadata_next: false,
        })
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<V::Value, D::Error> {
        self.inner.visit_some(self.level.filter(d))
    }

    fn visit_none<E: de::Error>(self) -> Result<V::Value, E> {
        self.inner.visit_none()
    }

    fn visit_unit<E: de::Error>(self) -> Result<V::Value, E> {
        self.inner.visit_unit()
    }
}

struct FilteredMap<A> {
    inner: A,
    level: Level,
    /// The key just returned was `metadata`: filter its value.
    metadata_next: bool,
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for FilteredMap<A> {
    type Error = A::Error;

    fn next_key_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, A::Error> {
        loop {
            let Some(key) = self.inner.next_key::<Key<'de>>()? else {
                return Ok(None);
            };
            let name = key.as_str();
            let skipped = match self.level {
                Level::Object(top) => top.contains(&name),
                Level::Meta => name == "managedFields",
            };
            if skipped {
                self.inner.next_value::<IgnoredAny>()?;
                continue;
            }
            self.metadata_next = matches!(self.level, Level::Object(_)) && name == "metadata";
            return match key {
                Key::Borrowed(s) => seed
                    .deserialize(de::value::BorrowedStrDeserializer::new(s))
                    .map(Some),
                Key::Owned(s) => seed.deserialize(s.into_deserializer()).map(Some),
            };
        }
    }

    fn next_value_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<T::Value, A::Error> {
        if std::mem::take(&mut self.metadata_next) {
            self.inner.next_value_seed(MetaSeed(seed))
        } else {
            self.inner.next_value_seed(seed)
        }
    }

    fn size_hint(&self) -> Option<usize> {
        self.inner.size_hint()
    }
}

/// Decodes `metadata` through a [`Level::Meta`] filter.
struct MetaSeed<T>(T);

impl<'de, T: DeserializeSeed<'de>> DeserializeSeed<'de> for MetaSeed<T> {
    type Value = T::Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<T::Value, D::Error> {
        self.0.deserialize(Level::Meta.filter(d))
    }
}

/// A map key, borrowed from the input when it has no escapes.
enum Key<'de> {
    Borrowed(&'de str),
    Owned(String),
}

impl Key<'_> {
    fn as_str(&self) -> &str {
        match self {
            Key::Borrowed(s) => s,
            Key::Owned(s) => s,
        }
    }
}

impl<'de> de::Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a field name")
            }
            fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Key<'de>, E> {
                Ok(Key::Borrowed(s))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Key<'de>, E> {
                Ok(Key::Owned(s.to_string()))
            }
            fn visit_string<E: de::Error>(self, s: String) -> Result<Key<'de>, E> {
                Ok(Key::Owned(s))
            }
        }
        d.deserialize_str(KeyVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::Pod;
    use serde_json::json;

    fn pod_json() -> serde_json::Value {
        json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": "p",
                "namespace": "ns",
                "labels": {"a": "b"},
                "managedFields": [{
                    "manager": "kubelet",
                    "operation": "Update",
                    "fieldsType": "FieldsV1",
                    "fieldsV1": {"f:status": {"f:phase": {}}}
                }],
                "resourceVersion": "7"
            },
            "spec": {"containers": [{"name": "c", "image": "redis"}]},
            "status": {"phase": "Running"}
        })
    }

    #[test]
    fn decodes_everything_but_managed_fields_and_the_skipped_fields() {
        let text = serde_json::to_vec(&pod_json()).unwrap();
        let full: Pod = serde_json::from_slice(&text).unwrap();
        assert!(full.metadata.managed_fields.is_some());

        let slim: Slim<Pod> = serde_json::from_slice(&text).unwrap();
        let mut expected = full.clone();
        expected.metadata.managed_fields = None;
        assert_eq!(slim.0, expected, "only managedFields left out");

        let no_spec: Slim<Pod, Spec> = serde_json::from_slice(&text).unwrap();
        expected.spec = None;
        assert_eq!(no_spec.0, expected, "spec left out too");
        assert_eq!(
            no_spec.0.status.and_then(|s| s.phase).as_deref(),
            Some("Running")
        );
    }

    #[test]
    fn keys_with_escapes_and_watch_events_decode() {
        // An escaped key cannot be borrowed from the input.
        let text = br#"{"type":"MODIFIED","object":{"kind":"Pod","apiVersion":"v1","metadata":{"name":"p","labels":{"a\/b":"c"},"managedFields":[{"manager":"m"}]},"st\u0061tus":{"phase":"Pending"}}}"#;
        let ev: kube::api::WatchEvent<Slim<Pod, Spec>> = serde_json::from_slice(text).unwrap();
        let kube::api::WatchEvent::Modified(p) = ev else {
            panic!("not a MODIFIED event")
        };
        let p = p.into_inner();
        assert_eq!(p.metadata.labels.unwrap()["a/b"], "c");
        assert!(p.metadata.managed_fields.is_none());
        assert_eq!(p.status.and_then(|s| s.phase).as_deref(), Some("Pending"));
    }

    #[test]
    fn errors_still_name_the_field() {
        let text = br#"{"metadata":{"name":7}}"#;
        let err = serde_json::from_slice::<Slim<Pod>>(text).unwrap_err();
        assert!(err.to_string().contains("invalid type"), "{err}");
    }
}
