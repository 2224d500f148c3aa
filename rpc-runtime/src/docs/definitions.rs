//! The named types of every procedure's schemas, gathered for a document
//! that shares them (OpenRPC's `components.schemas`, the TypeScript
//! client's declarations). schemars names a procedure's nested types in
//! its own `$defs`; two procedures may use the same name for different
//! types, which then get unique names (`Item`, `Item2`).

use serde_json::Value;
use std::collections::BTreeMap;

/// How a schema's `$defs` names are called in the shared document.
pub(crate) type Names = BTreeMap<String, String>;

#[derive(Default)]
pub(crate) struct Definitions {
    /// Each definition, with the names of the schema it came from (its
    /// references are in that schema's names).
    pub(crate) all: BTreeMap<String, (Value, Names)>,
}

impl Definitions {
    /// Adds a schema's definitions; returns the name each got.
    pub(crate) fn add(&mut self, schema: &Value) -> Names {
        let Some(defs) = schema.get("$defs").and_then(Value::as_object) else {
            return Names::new();
        };
        let mut names = Names::new();
        for (name, definition) in defs {
            let mut chosen = name.clone();
            let mut n = 1;
            while self
                .all
                .get(&chosen)
                .is_some_and(|(taken, _)| taken != definition)
            {
                n += 1;
                chosen = format!("{name}{n}");
            }
            names.insert(name.clone(), chosen);
        }
        for (name, definition) in defs {
            self.all
                .entry(names[name].clone())
                .or_insert_with(|| (definition.clone(), names.clone()));
        }
        names
    }
}

/// The shared name a `$ref` of a schema with `names` points to.
pub(crate) fn target<'a>(reference: &'a str, names: &'a Names) -> Option<&'a str> {
    reference
        .strip_prefix("#/$defs/")
        .map(|name| names.get(name).map_or(name, String::as_str))
}
