//! Which args schemas their Rust type already enforces.
//!
//! `schemars` derives a procedure's args schema from its args type, and
//! serde, decoding the args into that type, refuses what most of the
//! schema refuses: a wrong type, a missing required field, an unknown field
//! under `deny_unknown_fields`, a string outside an enum, a null where no
//! `Option` is; args are decoded through `decode.rs`, which refuses a
//! struct given as an array and a unit variant given as an object, as the
//! schema does. For such schemas the validator would only repeat serde's
//! work, so the pipeline runs it only when decoding fails, to list every
//! failure with its JSON pointer (the 422 is the same either way).
//!
//! Anything serde does not check sends the procedure down the full path:
//! formats such as `email` or `date-time`, lengths, patterns, ranges other
//! than an integer type's own, `oneOf` (serde's enum representations differ
//! from it), tuples, and every keyword not listed here. The test
//! `tests/validation.rs` runs a table of types with and without constraints
//! through both paths.

use serde_json::{Map, Value};

/// Keywords that only describe or structure a schema.
const NEUTRAL: &[&str] = &[
    "$schema",
    "$id",
    "$ref",
    "$defs",
    "definitions",
    "$comment",
    "title",
    "description",
    "default",
    "examples",
    "deprecated",
    "readOnly",
    "writeOnly",
];

/// Keywords serde enforces when the schema came from the type.
const TYPED: &[&str] = &[
    "type",
    "properties",
    "required",
    "additionalProperties",
    "items",
    "enum",
    "const",
    "format",
    "minimum",
    "maximum",
    "anyOf",
];

/// Whether decoding into the type the schema was derived from refuses
/// everything the schema refuses.
pub(crate) fn enforced_by_serde(schema: &Value) -> bool {
    match schema {
        Value::Bool(_) => true,
        Value::Object(object) => object_enforced(object),
        _ => false,
    }
}

fn object_enforced(schema: &Map<String, Value>) -> bool {
    for (keyword, value) in schema {
        let keyword = keyword.as_str();
        if NEUTRAL.contains(&keyword) {
            if matches!(keyword, "$defs" | "definitions")
                && !value
                    .as_object()
                    .is_some_and(|defs| defs.values().all(enforced_by_serde))
            {
                return false;
            }
            continue;
        }
        if !TYPED.contains(&keyword) {
            return false;
        }
        let enforced = match keyword {
            "properties" => value
                .as_object()
                .is_some_and(|properties| properties.values().all(enforced_by_serde)),
            "additionalProperties" | "items" => enforced_by_serde(value),
            // Unit variants of an enum, or a constant tag.
            "enum" => value
                .as_array()
                .is_some_and(|values| values.iter().all(Value::is_string)),
            "const" => value.is_string(),
            "format" => integer_bounds(value.as_str()).is_some() || is_float(value.as_str()),
            "minimum" | "maximum" => natural_bound(schema, keyword, value),
            // `Option<T>` of a referenced type: `anyOf: [T, {type: null}]`.
            "anyOf" => value.as_array().is_some_and(|variants| {
                variants.len() == 2
                    && variants.iter().any(is_null_schema)
                    && variants.iter().all(enforced_by_serde)
            }),
            _ => true,
        };
        if !enforced {
            return false;
        }
    }
    true
}

fn is_null_schema(schema: &Value) -> bool {
    schema.get("type").and_then(Value::as_str) == Some("null")
}

fn is_float(format: Option<&str>) -> bool {
    matches!(format, Some("float" | "double"))
}

/// The range of an integer format schemars emits for a Rust integer type.
fn integer_bounds(format: Option<&str>) -> Option<(i128, i128)> {
    Some(match format? {
        "int8" => (i8::MIN.into(), i8::MAX.into()),
        "int16" => (i16::MIN.into(), i16::MAX.into()),
        "int32" => (i32::MIN.into(), i32::MAX.into()),
        "int64" | "int" => (i64::MIN.into(), i64::MAX.into()),
        "uint8" => (0, u8::MAX.into()),
        "uint16" => (0, u16::MAX.into()),
        "uint32" => (0, u32::MAX.into()),
        "uint64" | "uint" => (0, u64::MAX.into()),
        _ => return None,
    })
}

/// A bound is serde's when it is the integer type's own (schemars writes
/// `minimum: 0` for unsigned types, and both bounds for the small ones).
fn natural_bound(schema: &Map<String, Value>, keyword: &str, bound: &Value) -> bool {
    let Some((min, max)) = integer_bounds(schema.get("format").and_then(Value::as_str)) else {
        return false;
    };
    let Some(bound) = bound
        .as_i64()
        .map(i128::from)
        .or_else(|| bound.as_u64().map(i128::from))
    else {
        return false;
    };
    match keyword {
        "minimum" => bound <= min,
        _ => bound >= max,
    }
}

#[cfg(test)]
mod tests {
    use super::enforced_by_serde;
    use serde_json::json;

    #[test]
    fn typed_schemas_are_enforced_by_serde() {
        for schema in [
            json!(true),
            json!({"type": "object", "properties": {"a": {"type": "integer", "format": "int64"}}, "required": ["a"]}),
            json!({"type": "object", "additionalProperties": false, "properties": {
                "n": {"type": "integer", "format": "uint32", "minimum": 0},
                "b": {"type": "integer", "format": "uint8", "minimum": 0, "maximum": 255},
                "tags": {"type": "array", "items": {"type": "string"}},
                "note": {"type": ["string", "null"]},
                "kind": {"type": "string", "enum": ["a", "b"]},
                "x": {"type": "number", "format": "double"},
                "map": {"type": "object", "additionalProperties": {"type": "boolean"}},
                "inner": {"anyOf": [{"$ref": "#/$defs/Inner"}, {"type": "null"}]}
            }, "$defs": {"Inner": {"type": "object", "properties": {}}}}),
        ] {
            assert!(enforced_by_serde(&schema), "{schema}");
        }
    }

    #[test]
    fn derived_schemas_are_classified_by_their_attributes() {
        #[derive(schemars::JsonSchema)]
        #[allow(dead_code)]
        struct Plain {
            a: i64,
            n: u32,
            small: u8,
            x: f64,
            note: Option<String>,
            tags: Vec<String>,
            nested: Option<Nested>,
            map: std::collections::HashMap<String, bool>,
        }
        #[derive(schemars::JsonSchema)]
        #[allow(dead_code)]
        struct Nested {
            depth: u16,
        }
        #[derive(schemars::JsonSchema)]
        #[allow(dead_code)]
        struct Email {
            #[schemars(email)]
            email: String,
        }
        #[derive(schemars::JsonSchema)]
        #[allow(dead_code)]
        enum Tagged {
            A { x: u8 },
            B(String),
        }
        let schema = |value: schemars::Schema| value.to_value();
        assert!(enforced_by_serde(&schema(schemars::schema_for!(Plain))));
        assert!(enforced_by_serde(&schema(schemars::schema_for!(
            crate::NoArgs
        ))));
        assert!(!enforced_by_serde(&schema(schemars::schema_for!(Email))));
        assert!(!enforced_by_serde(&schema(schemars::schema_for!(Tagged))));
    }

    #[test]
    fn constraints_serde_does_not_check_need_the_validator() {
        for schema in [
            json!({"type": "string", "format": "email"}),
            json!({"type": "string", "minLength": 1}),
            json!({"type": "string", "pattern": "^a"}),
            json!({"type": "integer", "format": "int64", "minimum": 1}),
            json!({"type": "integer", "format": "uint8", "maximum": 9}),
            json!({"type": "array", "items": {"type": "string"}, "maxItems": 3}),
            json!({"oneOf": [{"type": "object"}, {"type": "string"}]}),
            json!({"type": "object", "properties": {"e": {"type": "string", "format": "email"}}}),
            json!({"$defs": {"X": {"type": "string", "format": "date-time"}}, "$ref": "#/$defs/X"}),
            json!({"type": "array", "prefixItems": [{"type": "string"}]}),
            json!({"enum": [1, 2]}),
        ] {
            assert!(!enforced_by_serde(&schema), "{schema}");
        }
    }
}
