//! Decoding args into their type no more leniently than their schema.
//!
//! serde's derived `Deserialize` for a struct also accepts its fields as an
//! array (`[1, 2]` for `{"a": 1, "b": 2}`), and serde_json's decoder takes
//! `{"Variant": null}` for a unit variant; the schema schemars derives from
//! the same type refuses both. The pipeline skips the schema validator
//! where the type enforces the schema (`schema.rs`), so args are decoded
//! through [`Strict`], which refuses them too: a struct only from an
//! object, a unit variant only from its name, at every depth.

use serde::de::value::BorrowedStrDeserializer;
use serde::de::{
    self, DeserializeSeed, Deserializer, EnumAccess, MapAccess, SeqAccess, Unexpected,
    VariantAccess, Visitor,
};
use serde_json::{Error, Map, Value};

/// Decodes a value of type `T` from parsed args.
pub(crate) fn from_args<'a, T: serde::Deserialize<'a>>(args: &'a Value) -> Result<T, Error> {
    T::deserialize(Strict(args))
}

/// A deserializer over a parsed value that refuses what schemas refuse.
struct Strict<'a>(&'a Value);

fn unexpected(value: &Value) -> Unexpected<'_> {
    match value {
        Value::Null => Unexpected::Unit,
        Value::Bool(b) => Unexpected::Bool(*b),
        Value::Number(n) => match (n.as_u64(), n.as_i64(), n.as_f64()) {
            (Some(u), _, _) => Unexpected::Unsigned(u),
            (_, Some(i), _) => Unexpected::Signed(i),
            (_, _, Some(f)) => Unexpected::Float(f),
            _ => Unexpected::Other("number"),
        },
        Value::String(s) => Unexpected::Str(s),
        Value::Array(_) => Unexpected::Seq,
        Value::Object(_) => Unexpected::Map,
    }
}

impl<'de> Deserializer<'de> for Strict<'de> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(*b),
            Value::Number(n) => n.deserialize_any(visitor),
            Value::String(s) => visitor.visit_borrowed_str(s),
            Value::Array(items) => {
                let mut seq = Seq(items.iter());
                let value = visitor.visit_seq(&mut seq)?;
                match seq.0.len() {
                    0 => Ok(value),
                    _ => Err(de::Error::invalid_length(items.len(), &"fewer elements")),
                }
            }
            Value::Object(map) => visitor.visit_map(Fields::new(map)),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Value::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    /// Only from an object: never from an array of the fields.
    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match self.0 {
            Value::Object(map) => visitor.visit_map(Fields::new(map)),
            other => Err(de::Error::invalid_type(unexpected(other), &visitor)),
        }
    }

    /// A unit variant by its name, any other as an object of one key.
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match self.0 {
            Value::String(variant) => visitor.visit_enum(Variant {
                name: variant,
                content: None,
            }),
            Value::Object(map) if map.len() == 1 => {
                let (name, content) = map.iter().next().expect("one key");
                visitor.visit_enum(Variant {
                    name,
                    content: Some(content),
                })
            }
            other => Err(de::Error::invalid_type(
                unexpected(other),
                &"a variant's name or an object of one key",
            )),
        }
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct seq tuple tuple_struct map identifier
        ignored_any
    }
}

struct Seq<'a>(std::slice::Iter<'a, Value>);

impl<'de> SeqAccess<'de> for Seq<'de> {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        self.0
            .next()
            .map(|value| seed.deserialize(Strict(value)))
            .transpose()
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.0.len())
    }
}

struct Fields<'a> {
    entries: serde_json::map::Iter<'a>,
    value: Option<&'a Value>,
}

impl<'a> Fields<'a> {
    fn new(map: &'a Map<String, Value>) -> Self {
        Fields {
            entries: map.iter(),
            value: None,
        }
    }
}

impl<'de> MapAccess<'de> for Fields<'de> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        match self.entries.next() {
            Some((key, value)) => {
                self.value = Some(value);
                seed.deserialize(Key(key)).map(Some)
            }
            None => Ok(None),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        match self.value.take() {
            Some(value) => seed.deserialize(Strict(value)),
            None => Err(de::Error::custom("a value without its key")),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}

/// An object's key, read as serde_json reads keys: numbers and booleans
/// from their text (`HashMap<u32, _>`), anything else as the string.
struct Key<'a>(&'a str);

macro_rules! numeric_key {
    ($($method:ident)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            // A number's text, without the spaces serde_json would skip.
            let bytes = self.0.as_bytes();
            if !matches!(bytes.first(), Some(b'0'..=b'9' | b'-'))
                || !bytes.last().is_some_and(u8::is_ascii_digit)
            {
                return Err(de::Error::invalid_type(Unexpected::Str(self.0), &visitor));
            }
            let mut number = serde_json::Deserializer::from_str(self.0);
            let value = (&mut number).$method(visitor)?;
            number.end()?;
            Ok(value)
        }
    )*};
}

impl<'de> Deserializer<'de> for Key<'de> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_borrowed_str(self.0)
    }

    numeric_key! {
        deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64 deserialize_i128
        deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64 deserialize_u128
        deserialize_f32 deserialize_f64
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            "true" => visitor.visit_bool(true),
            "false" => visitor.visit_bool(false),
            other => Err(de::Error::invalid_type(Unexpected::Str(other), &visitor)),
        }
    }

    /// Keys are never null.
    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_enum(Variant {
            name: self.0,
            content: None,
        })
    }

    serde::forward_to_deserialize_any! {
        char str string bytes byte_buf unit unit_struct seq tuple tuple_struct map
        struct identifier ignored_any
    }
}

struct Variant<'a> {
    name: &'a str,
    content: Option<&'a Value>,
}

impl<'de> EnumAccess<'de> for Variant<'de> {
    type Error = Error;
    type Variant = Self;

    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, Self), Error> {
        let name = BorrowedStrDeserializer::<Error>::new(self.name);
        Ok((seed.deserialize(name)?, self))
    }
}

impl<'de> VariantAccess<'de> for Variant<'de> {
    type Error = Error;

    /// Only by its name: `{"Variant": null}` is not a unit variant.
    fn unit_variant(self) -> Result<(), Error> {
        match self.content {
            None => Ok(()),
            Some(content) => Err(de::Error::invalid_type(
                unexpected(content),
                &"a unit variant, by its name alone",
            )),
        }
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, Error> {
        match self.content {
            Some(content) => seed.deserialize(Strict(content)),
            None => Err(de::Error::invalid_type(
                Unexpected::UnitVariant,
                &"a newtype variant",
            )),
        }
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, Error> {
        match self.content {
            Some(content @ Value::Array(_)) => Strict(content).deserialize_any(visitor),
            _ => Err(de::Error::invalid_type(
                Unexpected::UnitVariant,
                &"a tuple variant",
            )),
        }
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match self.content {
            Some(content) => Strict(content).deserialize_struct("", fields, visitor),
            None => Err(de::Error::invalid_type(
                Unexpected::UnitVariant,
                &"a struct variant",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use serde_json::json;
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
            "maybe": null,
            "kinds": ["Plain", {"Wrapped": 3}, {"Pair": [1, 2]}, {"Named": {"x": -1}}],
            "pair": [1, "one"],
        })
    }

    #[test]
    fn decodes_what_serde_json_decodes_from_objects() {
        let args = good();
        let strict: Outer = from_args(&args).expect("decodes");
        let lenient: Outer = Outer::deserialize(&args).expect("decodes");
        assert_eq!(strict, lenient);
    }

    #[test]
    fn refuses_structs_as_arrays_and_unit_variants_as_objects_at_any_depth() {
        for (pointer, replacement) in [
            ("", json!([7, {"name": "a"}, [], {}, null, [], [1, "one"]])),
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
            assert!(
                from_args::<Outer>(&args).is_err(),
                "{replacement} at {pointer:?} was accepted"
            );
        }
    }

    #[test]
    fn keys_read_as_serde_json_reads_them() {
        #[derive(Deserialize, Debug, PartialEq, Eq, Hash)]
        #[serde(rename_all = "lowercase")]
        enum Color {
            Red,
        }
        let numbers: HashMap<u32, bool> = from_args(&json!({"7": true})).expect("decodes");
        assert!(numbers[&7]);
        let signed: HashMap<i8, u8> = from_args(&json!({"-3": 1})).expect("decodes");
        assert_eq!(signed[&-3], 1);
        let flags: HashMap<bool, u8> = from_args(&json!({"true": 1})).expect("decodes");
        assert_eq!(flags[&true], 1);
        let colors: HashMap<Color, u8> = from_args(&json!({"red": 1})).expect("decodes");
        assert_eq!(colors[&Color::Red], 1);
        for bad in [
            json!({"x": true}),
            json!({" 7": true}),
            json!({"7 ": true}),
            json!({"300": true}),
        ] {
            assert!(from_args::<HashMap<u8, bool>>(&bad).is_err(), "{bad}");
            assert!(HashMap::<u8, bool>::deserialize(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn integers_keep_their_ranges_and_arrays_their_lengths() {
        assert!(from_args::<u8>(&json!(256)).is_err());
        assert!(from_args::<u8>(&json!(1.0)).is_err());
        assert!(from_args::<i64>(&json!(-3)).is_ok());
        assert!(from_args::<f64>(&json!(3)).is_ok());
        assert!(from_args::<(u8, u8)>(&json!([1, 2, 3])).is_err());
        assert!(from_args::<(u8, u8)>(&json!([1])).is_err());
    }
}
