//! An example value for a JSON Schema, for the example request of each
//! procedure in the docs.

use serde_json::{Map, Value, json};

/// An example that the schema accepts, in the common cases: `$ref`s into
/// `$defs`, objects, arrays, enums, defaults, formats and bounds.
pub(crate) fn example(schema: &Value) -> Value {
    value(schema, schema, 0)
}

fn value(schema: &Value, root: &Value, depth: usize) -> Value {
    if depth > 8 {
        return Value::Null;
    }
    let Some(object) = schema.as_object() else {
        return Value::Null;
    };
    if let Some(example) = object
        .get("examples")
        .and_then(Value::as_array)
        .and_then(|e| e.first())
    {
        return example.clone();
    }
    if let Some(default) = object.get("default") {
        return default.clone();
    }
    if let Some(constant) = object.get("const") {
        return constant.clone();
    }
    if let Some(first) = object
        .get("enum")
        .and_then(Value::as_array)
        .and_then(|e| e.first())
    {
        return first.clone();
    }
    if let Some(reference) = object.get("$ref").and_then(Value::as_str) {
        return resolve(reference, root)
            .map_or(Value::Null, |target| value(target, root, depth + 1));
    }
    for key in ["oneOf", "anyOf", "allOf"] {
        if let Some(first) = object
            .get(key)
            .and_then(Value::as_array)
            .and_then(|v| v.first())
        {
            return value(first, root, depth + 1);
        }
    }
    let kind = match object.get("type") {
        Some(Value::String(kind)) => kind.as_str(),
        Some(Value::Array(kinds)) => kinds
            .iter()
            .filter_map(Value::as_str)
            .find(|k| *k != "null")
            .unwrap_or("null"),
        _ if object.contains_key("properties") => "object",
        _ => return json!({}),
    };
    match kind {
        "object" => {
            let mut out = Map::new();
            if let Some(properties) = object.get("properties").and_then(Value::as_object) {
                for (name, property) in properties {
                    out.insert(name.clone(), value(property, root, depth + 1));
                }
            }
            Value::Object(out)
        }
        "array" => match object.get("items") {
            Some(items) => {
                let count = object
                    .get("minItems")
                    .and_then(Value::as_u64)
                    .unwrap_or(1)
                    .clamp(1, 3);
                Value::Array((0..count).map(|_| value(items, root, depth + 1)).collect())
            }
            None => json!([]),
        },
        "string" => Value::String(string(object)),
        "integer" => {
            let low = object.get("minimum").and_then(Value::as_i64).unwrap_or(0);
            let high = object
                .get("maximum")
                .and_then(Value::as_i64)
                .unwrap_or(i64::MAX);
            json!(low.max(1).min(high))
        }
        "number" => {
            let low = object.get("minimum").and_then(Value::as_f64).unwrap_or(0.0);
            json!(low.max(1.5))
        }
        "boolean" => json!(true),
        _ => Value::Null,
    }
}

fn string(object: &Map<String, Value>) -> String {
    let text = match object.get("format").and_then(Value::as_str) {
        Some("email") => "user@example.com",
        Some("date-time") => "2026-01-01T12:00:00Z",
        Some("date") => "2026-01-01",
        Some("uri") => "https://example.com/",
        Some("uuid") => "00000000-0000-4000-8000-000000000000",
        _ => "text",
    };
    let min = object.get("minLength").and_then(Value::as_u64).unwrap_or(0) as usize;
    let mut text = text.to_owned();
    while text.chars().count() < min.min(64) {
        text.push('x');
    }
    text
}

fn resolve<'a>(reference: &str, root: &'a Value) -> Option<&'a Value> {
    let pointer = reference.strip_prefix('#')?;
    root.pointer(pointer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn examples_satisfy_common_schemas() {
        let schema = json!({
            "type": "object",
            "properties": {
                "email": {"type": "string", "format": "email"},
                "n": {"type": "integer", "minimum": 3},
                "tags": {"type": "array", "items": {"$ref": "#/$defs/Tag"}},
                "maybe": {"type": ["string", "null"]},
                "colour": {"enum": ["red", "green"]}
            },
            "$defs": {"Tag": {"type": "object", "properties": {"name": {"type": "string", "minLength": 6}}}}
        });
        assert_eq!(
            example(&schema),
            json!({"email": "user@example.com", "n": 3, "tags": [{"name": "textxx"}], "maybe": "text", "colour": "red"})
        );
    }

    #[test]
    fn recursion_is_bounded() {
        let schema = json!({"$ref": "#/$defs/Node", "$defs": {"Node": {"type": "object", "properties": {"next": {"$ref": "#/$defs/Node"}}}}});
        assert!(example(&schema).is_object());
    }
}
