//! Decoding args into their type no more leniently than their schema.
//!
//! serde's derived `Deserialize` for a struct also accepts its fields as an
//! array (`[1, 2]` for `{"a": 1, "b": 2}`), and serde_json takes
//! `{"Variant": null}` for a unit variant; the schema schemars derives from
//! the same type refuses both. The pipeline skips the schema validator
//! where the type enforces the schema (`schema.rs`), so args are decoded
//! through [`Strict`], which wraps serde_json's deserializer (of the raw
//! text, or of a parsed value) and refuses them too: a struct only from an
//! object, a unit variant only by its name, at every depth. What it skips
//! (a field the type does not know) it reads as a `serde_json::Value`
//! would, so that it refuses no less than reading the args as one.

use serde::de::{
    self, DeserializeSeed, Deserializer, EnumAccess, MapAccess, SeqAccess, Unexpected,
    VariantAccess, Visitor,
};
use std::fmt;

/// Decodes a `T` from JSON text.
pub(crate) fn from_str<'a, T: serde::Deserialize<'a>>(text: &'a str) -> serde_json::Result<T> {
    let mut json = serde_json::Deserializer::from_str(text);
    let value = T::deserialize(Strict(&mut json))?;
    json.end()?;
    Ok(value)
}

/// Decodes a `T` from the JSON value `text` starts with: the value and the
/// length of its text (leading whitespace included), or `None` when it
/// does not decode. What follows the value is left to the caller.
pub(crate) fn prefix<'a, T: serde::Deserialize<'a>>(text: &'a str) -> Option<(T, usize)> {
    let mut values = serde_json::Deserializer::from_str(text).into_iter::<Strictly<T>>();
    let Strictly(value) = values.next()?.ok()?;
    Some((value, values.byte_offset()))
}

/// Decoders as `#[rpc]` generates them (`Descriptor::decode_prefix`), for
/// the tests and fuzz targets of the readers.
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) mod decoders {
    type Decoded = Option<(Box<dyn std::any::Any + Send>, usize)>;

    /// Any JSON value, as a procedure whose args are a `Value`.
    pub(crate) fn any_json(text: &str) -> Decoded {
        let (value, len) = super::prefix::<serde_json::Value>(text)?;
        Some((Box::new(value), len))
    }

    /// `{"a": i64}`, ignoring other fields; the value is `a`.
    #[cfg(test)]
    pub(crate) fn lenient(text: &str) -> Decoded {
        #[derive(serde::Deserialize)]
        struct A {
            a: i64,
        }
        let (value, len) = super::prefix::<A>(text)?;
        Some((Box::new(value.a), len))
    }

    /// `{"a": i64}` and nothing else; the value is `a`.
    #[cfg(test)]
    pub(crate) fn strict(text: &str) -> Decoded {
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct A {
            a: i64,
        }
        let (value, len) = super::prefix::<A>(text)?;
        Some((Box::new(value.a), len))
    }
}

/// A `T` read through [`Strict`].
struct Strictly<T>(T);

impl<'de, T: serde::Deserialize<'de>> serde::Deserialize<'de> for Strictly<T> {
    #[inline]
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        T::deserialize(Strict(deserializer)).map(Strictly)
    }
}

/// Decodes a `T` from a parsed value.
pub(crate) fn from_value<'a, T: serde::Deserialize<'a>>(
    value: &'a serde_json::Value,
) -> serde_json::Result<T> {
    T::deserialize(Strict(value))
}

/// A deserializer that refuses what schemas refuse.
pub(crate) struct Strict<D>(pub(crate) D);

/// A visitor of what [`Strict`] reads; `object_only` for structs.
struct Wrap<V> {
    visitor: V,
    object_only: bool,
}

impl<V> Wrap<V> {
    #[inline]
    fn any(visitor: V) -> Self {
        Wrap {
            visitor,
            object_only: false,
        }
    }
}

macro_rules! forward_deserialize {
    ($($method:ident($($arg:ident: $ty:ty),*))*) => {$(
        #[inline]
        fn $method<V: Visitor<'de>>(self, $($arg: $ty,)* visitor: V) -> Result<V::Value, D::Error> {
            self.0.$method($($arg,)* Wrap::any(visitor))
        }
    )*};
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for Strict<D> {
    type Error = D::Error;

    forward_deserialize! {
        deserialize_any() deserialize_bool() deserialize_i8() deserialize_i16()
        deserialize_i32() deserialize_i64() deserialize_i128() deserialize_u8()
        deserialize_u16() deserialize_u32() deserialize_u64() deserialize_u128()
        deserialize_f32() deserialize_f64() deserialize_char() deserialize_str()
        deserialize_string() deserialize_bytes() deserialize_byte_buf()
        deserialize_option() deserialize_unit()
        deserialize_unit_struct(name: &'static str)
        deserialize_newtype_struct(name: &'static str)
        deserialize_seq() deserialize_tuple(len: usize)
        deserialize_tuple_struct(name: &'static str, len: usize)
        deserialize_map() deserialize_identifier()
    }

    /// Read as a `serde_json::Value` would read it (numbers in range,
    /// surrogates in pairs), not only skimmed: args a field the type does
    /// not know makes unreadable as a value are refused, as they are when
    /// they are read as one.
    #[inline]
    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        self.0.deserialize_any(Wrap::any(visitor))
    }

    /// Only from an object: never from an array of the fields.
    #[inline]
    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        let visitor = Wrap {
            visitor,
            object_only: true,
        };
        self.0.deserialize_struct(name, fields, visitor)
    }

    #[inline]
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_enum(name, variants, Wrap::any(visitor))
    }

    #[inline]
    fn is_human_readable(&self) -> bool {
        self.0.is_human_readable()
    }
}

macro_rules! forward_visit {
    ($($method:ident($ty:ty))*) => {$(
        #[inline]
        fn $method<E: de::Error>(self, value: $ty) -> Result<V::Value, E> {
            self.visitor.$method(value)
        }
    )*};
}

impl<'de, V: Visitor<'de>> Visitor<'de> for Wrap<V> {
    type Value = V::Value;

    #[inline]
    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        self.visitor.expecting(formatter)
    }

    forward_visit! {
        visit_bool(bool) visit_i8(i8) visit_i16(i16) visit_i32(i32) visit_i64(i64)
        visit_i128(i128) visit_u8(u8) visit_u16(u16) visit_u32(u32) visit_u64(u64)
        visit_u128(u128) visit_f32(f32) visit_f64(f64) visit_char(char)
        visit_str(&str) visit_borrowed_str(&'de str) visit_string(String)
        visit_bytes(&[u8]) visit_borrowed_bytes(&'de [u8]) visit_byte_buf(Vec<u8>)
    }

    #[inline]
    fn visit_none<E: de::Error>(self) -> Result<V::Value, E> {
        self.visitor.visit_none()
    }

    #[inline]
    fn visit_unit<E: de::Error>(self) -> Result<V::Value, E> {
        self.visitor.visit_unit()
    }

    #[inline]
    fn visit_some<D: Deserializer<'de>>(self, inner: D) -> Result<V::Value, D::Error> {
        self.visitor.visit_some(Strict(inner))
    }

    #[inline]
    fn visit_newtype_struct<D: Deserializer<'de>>(self, inner: D) -> Result<V::Value, D::Error> {
        self.visitor.visit_newtype_struct(Strict(inner))
    }

    #[inline]
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<V::Value, A::Error> {
        if self.object_only {
            return Err(de::Error::invalid_type(Unexpected::Seq, &self));
        }
        self.visitor.visit_seq(Strict(seq))
    }

    #[inline]
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<V::Value, A::Error> {
        self.visitor.visit_map(Strict(map))
    }

    #[inline]
    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<V::Value, A::Error> {
        self.visitor.visit_enum(Strict(data))
    }
}

/// A seed whose value is read through [`Strict`].
struct Seed<S>(S);

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for Seed<S> {
    type Value = S::Value;

    #[inline]
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<S::Value, D::Error> {
        self.0.deserialize(Strict(deserializer))
    }
}

impl<'de, A: SeqAccess<'de>> SeqAccess<'de> for Strict<A> {
    type Error = A::Error;

    #[inline]
    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, A::Error> {
        self.0.next_element_seed(Seed(seed))
    }

    #[inline]
    fn size_hint(&self) -> Option<usize> {
        self.0.size_hint()
    }
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for Strict<A> {
    type Error = A::Error;

    /// Keys are strings (or numbers and booleans in their text): nothing
    /// a schema could refuse that serde takes.
    #[inline]
    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        self.0.next_key_seed(seed)
    }

    #[inline]
    fn next_value_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<T::Value, A::Error> {
        self.0.next_value_seed(Seed(seed))
    }

    #[inline]
    fn size_hint(&self) -> Option<usize> {
        self.0.size_hint()
    }
}

impl<'de, A: EnumAccess<'de>> EnumAccess<'de> for Strict<A> {
    type Error = A::Error;
    type Variant = Strict<A::Variant>;

    #[inline]
    fn variant_seed<T: DeserializeSeed<'de>>(
        self,
        seed: T,
    ) -> Result<(T::Value, Strict<A::Variant>), A::Error> {
        self.0
            .variant_seed(seed)
            .map(|(variant, access)| (variant, Strict(access)))
    }
}

impl<'de, A: VariantAccess<'de>> VariantAccess<'de> for Strict<A> {
    type Error = A::Error;

    /// Only by its name. serde_json reads a unit variant written as an
    /// object of one key by decoding `()` from the key's value, and one
    /// written as its name has no value at all: asking for a newtype
    /// variant's value tells them apart (the probe is handed the value of
    /// the first, and nothing for the second, which refuses).
    #[inline]
    fn unit_variant(self) -> Result<(), A::Error> {
        let mut handed = false;
        match self.0.newtype_variant_seed(Probe(&mut handed)) {
            _ if handed => Err(de::Error::invalid_type(
                Unexpected::Map,
                &"a unit variant, by its name alone",
            )),
            _ => Ok(()),
        }
    }

    #[inline]
    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, A::Error> {
        self.0.newtype_variant_seed(Seed(seed))
    }

    #[inline]
    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, A::Error> {
        self.0.tuple_variant(len, Wrap::any(visitor))
    }

    #[inline]
    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, A::Error> {
        let visitor = Wrap {
            visitor,
            object_only: true,
        };
        self.0.struct_variant(fields, visitor)
    }
}

/// Notes whether it was handed a value, and refuses it.
struct Probe<'a>(&'a mut bool);

impl<'de> DeserializeSeed<'de> for Probe<'_> {
    type Value = ();

    #[inline]
    fn deserialize<D: Deserializer<'de>>(self, _deserializer: D) -> Result<(), D::Error> {
        *self.0 = true;
        Err(de::Error::custom("a unit variant has no value"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use serde_json::{Value, json};
    use std::collections::HashMap;

    #[derive(Deserialize, Debug, PartialEq)]
    struct Inner {
        name: String,
    }

    #[derive(Deserialize, Debug, PartialEq)]
    enum Kind {
        Plain,
        Wrapped(u8),
        Pair(u8, u8),
        Named { x: i32 },
    }

    #[derive(Deserialize, Debug, PartialEq)]
    struct Outer {
        n: u32,
        inner: Inner,
        list: Vec<Inner>,
        by_name: HashMap<String, Inner>,
        by_number: HashMap<u16, bool>,
        maybe: Option<Inner>,
        kinds: Vec<Kind>,
        pair: (u8, String),
    }

    fn good() -> Value {
        json!({
            "n": 7,
            "inner": {"name": "a"},
            "list": [{"name": "b"}],
            "by_name": {"k": {"name": "c"}},
            "by_number": {"8": true},
            "maybe": null,
            "kinds": ["Plain", {"Wrapped": 3}, {"Pair": [1, 2]}, {"Named": {"x": -1}}],
            "pair": [1, "one"],
        })
    }

    /// Both ways in: the text, and the parsed value.
    fn strict(args: &Value) -> [serde_json::Result<Outer>; 2] {
        let text = args.to_string();
        [from_str(&text), from_value(args)]
    }

    #[test]
    fn decodes_what_serde_json_decodes_from_objects() {
        let args = good();
        let lenient: Outer = Outer::deserialize(&args).expect("decodes");
        for decoded in strict(&args) {
            assert_eq!(decoded.expect("decodes"), lenient);
        }
    }

    #[test]
    fn refuses_structs_as_arrays_and_unit_variants_as_objects_at_any_depth() {
        for (pointer, replacement) in [
            (
                "",
                json!([7, {"name": "a"}, [], {}, {}, null, [], [1, "one"]]),
            ),
            ("/inner", json!(["a"])),
            ("/list/0", json!(["b"])),
            ("/by_name/k", json!(["c"])),
            ("/maybe", json!(["d"])),
            ("/kinds/0", json!({"Plain": null})),
        ] {
            let mut args = good();
            *args.pointer_mut(pointer).expect("exists") = replacement.clone();
            assert!(
                Outer::deserialize(&args).is_ok(),
                "serde_json's own decoder accepts {replacement} at {pointer:?}"
            );
            for decoded in strict(&args) {
                assert!(
                    decoded.is_err(),
                    "{replacement} at {pointer:?} was accepted"
                );
            }
        }
    }

    #[test]
    fn refuses_what_serde_json_refuses() {
        for (pointer, replacement) in [
            ("/n", json!(-1)),
            ("/n", json!(1.5)),
            ("/by_number", json!({"x": true})),
            ("/by_number", json!({"70000": true})),
            ("/kinds/1", json!("Wrapped")),
            ("/kinds/3", json!({"Named": [-1]})),
            ("/pair", json!([1, "one", 2])),
            ("/pair", json!([1])),
        ] {
            let mut args = good();
            *args.pointer_mut(pointer).expect("exists") = replacement.clone();
            assert!(Outer::deserialize(&args).is_err());
            for decoded in strict(&args) {
                assert!(
                    decoded.is_err(),
                    "{replacement} at {pointer:?} was accepted"
                );
            }
        }
        assert!(from_str::<u8>("1 2").is_err(), "trailing characters");
    }
}
