//! The OpenRPC 1.3 document of a server: one method per procedure, named
//! `scope/procedure@version`, its args as the single by-name parameter
//! `args`, schemas in the draft-07 form that OpenRPC tools read.

use crate::ProcedureSpec;
use serde_json::{Map, Value, json};

pub(crate) fn document(server: &str, procedures: &[ProcedureSpec]) -> Value {
    let methods: Vec<Value> = procedures.iter().map(method).collect();
    json!({
        "openrpc": "1.3.2",
        "info": {
            "title": server,
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Calls are JSON envelopes {procedure, scope, version, args, identity, correlationId} \
                            sent as the body of POST / or as WebSocket text frames.",
        },
        "methods": methods,
    })
}

fn method(spec: &ProcedureSpec) -> Value {
    let address = &spec.address;
    let summary = spec.description.lines().next().unwrap_or_default();
    let mut method = json!({
        "name": address.to_string(),
        "summary": summary,
        "description": spec.description,
        "paramStructure": "by-name",
        "params": [{
            "name": "args",
            "required": true,
            "schema": draft07(&spec.args_schema),
        }],
        "result": {
            "name": "data",
            "schema": draft07(&spec.output_schema),
        },
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

/// A schemars 2020-12 schema in draft-07 form: `$defs` become
/// `definitions`, and `$schema` is dropped (the document sets the dialect).
fn draft07(schema: &Value) -> Value {
    match schema {
        Value::Object(object) => {
            let mut out = Map::new();
            for (key, value) in object {
                match key.as_str() {
                    "$schema" => {}
                    "$defs" => {
                        out.insert("definitions".into(), draft07(value));
                    }
                    "$ref" => {
                        let reference = value.as_str().unwrap_or_default().replacen(
                            "#/$defs/",
                            "#/definitions/",
                            1,
                        );
                        out.insert(key.clone(), Value::String(reference));
                    }
                    _ => {
                        out.insert(key.clone(), draft07(value));
                    }
                }
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(draft07).collect()),
        other => other.clone(),
    }
}
