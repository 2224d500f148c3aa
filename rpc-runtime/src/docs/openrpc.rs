//! The OpenRPC 1.3 document of a server, as a JSON-RPC client calls it:
//! one method per procedure, named `scope/procedure@version`; an args
//! object's properties as by-name params (other args as the one
//! by-position param `args`); the errors a call can answer; `servers` with
//! the URL the server answers on. Schemas are in the draft-07 form that
//! OpenRPC tools read, their definitions shared in `components.schemas`.

use super::definitions::{Definitions, Names, target};
use crate::ProcedureSpec;
use crate::jsonrpc::{FRAMEWORK_CODES, INVALID_PARAMS};
use serde_json::{Map, Value, json};

pub(crate) fn document(server: &str, procedures: &[ProcedureSpec], url: Option<&str>) -> Value {
    let mut components = Definitions::default();
    let methods: Vec<Value> = procedures
        .iter()
        .map(|spec| method(spec, &mut components))
        .collect();
    let mut document = json!({
        "openrpc": "1.3.2",
        "info": {
            "title": server,
            "version": env!("CARGO_PKG_VERSION"),
            "description": "JSON-RPC 2.0 over HTTP (POST) and WebSocket (text frames) at the server's URL. \
                            A method is named scope/procedure@version; scope/procedure (version 1), \
                            procedure@version and procedure (scope global) are accepted too.",
        },
        "methods": methods,
        "components": {
            "schemas": components
                .all
                .iter()
                .map(|(name, (schema, names))| (name.clone(), convert(schema, names)))
                .collect::<Map<String, Value>>(),
        },
    });
    if let (Some(url), Some(object)) = (url, document.as_object_mut()) {
        object.insert("servers".into(), json!([{ "name": server, "url": url }]));
    }
    document
}

fn method(spec: &ProcedureSpec, components: &mut Definitions) -> Value {
    let address = &spec.address;
    let summary = spec.description.lines().next().unwrap_or_default();
    let args_names = components.add(&spec.args_schema);
    let output_names = components.add(&spec.output_schema);
    let (structure, params) = params(&spec.args_schema, &args_names);
    let mut errors = vec![json!({
        "code": INVALID_PARAMS,
        "message": "the params failed validation; data.errors lists each failing JSON pointer",
    })];
    let framework = |http: u16, message: &str| {
        FRAMEWORK_CODES
            .iter()
            .find(|(code, _)| *code == http)
            .map(|(_, code)| json!({ "code": code, "message": message }))
    };
    if spec.auth {
        errors.extend(framework(401, "an authenticated identity is required"));
    }
    errors.extend(framework(
        504,
        "the call did not finish before its deadline",
    ));
    let mut method = json!({
        "name": address.to_string(),
        "summary": summary,
        "description": spec.description,
        "paramStructure": structure,
        "params": params,
        "result": {
            "name": "result",
            "schema": convert(&spec.output_schema, &output_names),
        },
        "errors": errors,
        "x-scope": address.scope,
        "x-procedure": address.procedure,
        "x-version": address.version,
        "x-internal": spec.internal,
        "x-auth": spec.auth,
    });
    if let (Some(timeout), Some(object)) = (spec.timeout_ms, method.as_object_mut()) {
        object.insert("x-timeout-ms".into(), json!(timeout));
    }
    method
}

/// The params a client sends: an object's properties by name, anything
/// else as the one by-position param `args`.
fn params(schema: &Value, names: &Names) -> (&'static str, Vec<Value>) {
    let is_object = schema.get("type").and_then(Value::as_str) == Some("object");
    let properties = schema.get("properties").and_then(Value::as_object);
    match (is_object, properties) {
        (true, Some(properties)) => {
            let required: Vec<&str> = schema
                .get("required")
                .and_then(Value::as_array)
                .map(|names| names.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let params = properties
                .iter()
                .map(|(name, property)| {
                    let mut param = json!({
                        "name": name,
                        "required": required.contains(&name.as_str()),
                        "schema": convert(property, names),
                    });
                    if let Some(description) = property.get("description") {
                        param["description"] = description.clone();
                    }
                    param
                })
                .collect();
            ("by-name", params)
        }
        // An object without declared properties (no args at all).
        (true, None) => ("by-name", Vec::new()),
        _ => (
            "by-position",
            vec![json!({
                "name": "args",
                "required": true,
                "schema": convert(schema, names),
            })],
        ),
    }
}

/// A schemars 2020-12 schema in the document's form: `$defs` moved to
/// `components.schemas` (references renamed), `$schema` dropped (the
/// document sets the dialect), formats that validators do not know left
/// out.
fn convert(schema: &Value, names: &Names) -> Value {
    match schema {
        Value::Object(object) => {
            let mut out = Map::new();
            for (key, value) in object {
                match key.as_str() {
                    "$schema" | "$defs" => {}
                    "$ref" => {
                        let reference = value.as_str().unwrap_or_default();
                        let reference = match target(reference, names) {
                            Some(name) => format!("#/components/schemas/{name}"),
                            None => reference.to_owned(),
                        };
                        out.insert(key.clone(), Value::String(reference));
                    }
                    "format" if value.is_string() && !super::is_standard_format(value) => {}
                    _ => {
                        out.insert(key.clone(), convert(value, names));
                    }
                }
            }
            Value::Object(out)
        }
        Value::Array(items) => {
            Value::Array(items.iter().map(|item| convert(item, names)).collect())
        }
        other => other.clone(),
    }
}
