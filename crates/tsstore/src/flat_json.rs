//! Walking the entries of a flat JSON object without building a
//! `serde_json::Value`: keys are borrowed from the input unless escaped,
//! and each value is read as whatever the caller asks for (a scalar, or the
//! raw text via `&RawValue`). Schema compaction and expansion and the
//! aggregator all read records this way.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::{Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// What a JSON document turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    Object,
    /// Anything else, described for error messages ("an array").
    Other(&'static str),
}

/// An object key, borrowed from the input when it has no escapes.
struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string key")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_string())))
            }
        }
        d.deserialize_str(KeyVisitor)
    }
}

struct EntryVisitor<V, F>(F, PhantomData<V>);

impl<'de, V: Deserialize<'de>, F: FnMut(Cow<'de, str>, V)> Visitor<'de> for EntryVisitor<V, F> {
    type Value = Shape;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<Shape, A::Error> {
        while let Some(Key(k)) = map.next_key::<Key>()? {
            let v = map.next_value::<V>()?;
            (self.0)(k, v);
        }
        Ok(Shape::Object)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Shape, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Shape::Other("an array"))
    }
    fn visit_unit<E>(self) -> Result<Shape, E> {
        Ok(Shape::Other("null"))
    }
    fn visit_bool<E>(self, _: bool) -> Result<Shape, E> {
        Ok(Shape::Other("a boolean"))
    }
    fn visit_i64<E>(self, _: i64) -> Result<Shape, E> {
        Ok(Shape::Other("a number"))
    }
    fn visit_u64<E>(self, _: u64) -> Result<Shape, E> {
        Ok(Shape::Other("a number"))
    }
    fn visit_f64<E>(self, _: f64) -> Result<Shape, E> {
        Ok(Shape::Other("a number"))
    }
    fn visit_str<E>(self, _: &str) -> Result<Shape, E> {
        Ok(Shape::Other("a string"))
    }
}

/// Calls `f` with each entry of the object `input`, in document order.
/// Returns the document's shape; `f` is only called for objects. A
/// syntax error (also trailing bytes) is returned after `f` may have seen
/// the entries before it.
pub(crate) fn for_each_entry<'de, V, F>(input: &'de [u8], f: F) -> Result<Shape, serde_json::Error>
where
    V: Deserialize<'de>,
    F: FnMut(Cow<'de, str>, V),
{
    let mut de = serde_json::Deserializer::from_slice(input);
    let shape = de.deserialize_any(EntryVisitor(f, PhantomData))?;
    de.end()?;
    Ok(shape)
}
