//! The table of procedures this server hosts, built once at startup from
//! everything `#[rpc]` registered, sorted for lookup without allocation.

use crate::descriptor::{DecodePrefixFn, Descriptor, HandlerFn};
use crate::state::{StateKey, States};
use crate::{Address, Error, FieldError, ProcedureSpec, RpcError};
use jsonschema::Validator;
use serde_json::Value;
use std::collections::BTreeMap;

/// At most this many validation failures are listed in one 422.
const MAX_FIELD_ERRORS: usize = 100;

/// What the pipeline checks of a procedure before a call runs, whether it
/// is hosted here or announced by another server.
pub(crate) trait Rules: Send + Sync {
    fn spec(&self) -> &ProcedureSpec;

    /// Checks args against the schema, listing every failure.
    fn validate(&self, args: &Value) -> Result<(), RpcError>;

    /// Whether decoding the args into their type enforces everything the
    /// schema asks: then the schema validator runs only when decoding
    /// fails, to list the failures.
    fn checked_by_type(&self) -> bool {
        false
    }
}

/// A procedure hosted here, with its compiled args validator.
pub(crate) struct Local {
    pub(crate) spec: ProcedureSpec,
    validator: Validator,
    pub(crate) handler: HandlerFn,
    pub(crate) stats: std::sync::Arc<crate::telemetry::Stats>,
    /// The state types its signature asks for.
    pub(crate) needs: Vec<StateKey>,
    /// See [`Rules::checked_by_type`].
    pub(crate) checked_by_type: bool,
    /// Where the type checks the schema: what decodes the args while the
    /// request is read.
    pub(crate) decode_prefix: Option<DecodePrefixFn>,
}

impl Rules for Local {
    fn spec(&self) -> &ProcedureSpec {
        &self.spec
    }

    fn validate(&self, args: &Value) -> Result<(), RpcError> {
        validate(&self.validator, args)
    }

    fn checked_by_type(&self) -> bool {
        self.checked_by_type
    }
}

/// Checks args against a compiled schema, listing every failure.
pub(crate) fn validate(validator: &Validator, args: &Value) -> Result<(), RpcError> {
    if validator.is_valid(args) {
        return Ok(());
    }
    Err(validation_error(validator, args))
}

pub(crate) fn validation_error(validator: &Validator, args: &Value) -> RpcError {
    let errors = validator
        .iter_errors(args)
        .take(MAX_FIELD_ERRORS)
        .map(|error| FieldError {
            path: error.instance_path().to_string(),
            message: error.to_string(),
        })
        .collect();
    RpcError::invalid_args(errors)
}

/// Compiles an args schema; formats (`email`, `date-time`, ...) are checked.
pub(crate) fn compile(address: &Address, schema: &Value) -> Result<Validator, Error> {
    jsonschema::options()
        .should_validate_formats(true)
        .build(schema)
        .map_err(|error| Error::InvalidSchema {
            procedure: address.to_string(),
            message: error.to_string(),
        })
}

/// The local procedures, sorted by address.
pub(crate) struct Registry {
    entries: Vec<Local>,
    /// The entries' indices by where their addresses' strings are: an
    /// address read from a request borrows the strings of the linked
    /// procedure it names (`Address::read`), and is found by comparing
    /// pointers rather than strings.
    by_place: Vec<(Place, usize)>,
}

/// Where an address's three strings are, when it borrows all of them.
type Place = [(usize, usize); 3];

fn place(address: &Address) -> Option<Place> {
    use std::borrow::Cow::Borrowed;
    let (Borrowed(scope), Borrowed(procedure), Borrowed(version)) =
        (&address.scope, &address.procedure, &address.version)
    else {
        return None;
    };
    Some([procedure, scope, version].map(|part| (part.as_ptr() as usize, part.len())))
}

impl Registry {
    /// Builds the table from every linked registration that `host` accepts.
    /// Clashing registrations fail the build, whether hosted or not: each
    /// clash is listed with the places that define it.
    pub(crate) fn from_inventory(
        host: &dyn Fn(&Address) -> bool,
        telemetry: &crate::telemetry::Telemetry,
        always_validate: bool,
    ) -> Result<Self, Error> {
        let mut by_address: BTreeMap<Address, Vec<&'static Descriptor>> = BTreeMap::new();
        for descriptor in Descriptor::all() {
            by_address
                .entry(descriptor.address())
                .or_default()
                .push(descriptor);
        }
        let clashes: Vec<String> = by_address
            .iter()
            .filter(|(_, found)| found.len() > 1)
            .map(|(address, found)| {
                let places: Vec<String> = found.iter().map(|d| d.location()).collect();
                format!(
                    "  {address} is registered {} times: {}",
                    found.len(),
                    places.join(", ")
                )
            })
            .collect();
        if !clashes.is_empty() {
            return Err(Error::DuplicateProcedures(clashes));
        }
        let mut entries = Vec::new();
        for (address, found) in by_address {
            let descriptor = found[0];
            // The framework's own procedures (`rpc.discover`) are always hosted.
            let builtin = descriptor.module.starts_with("rpc_runtime::");
            if !builtin && !host(&address) {
                continue;
            }
            let spec = descriptor.spec();
            let validator = compile(&address, &spec.args_schema)?;
            let checked_by_type =
                !always_validate && crate::schema::enforced_by_serde(&spec.args_schema);
            entries.push(Local {
                stats: telemetry.local(&address, spec.internal),
                spec,
                validator,
                handler: descriptor.handler,
                needs: (descriptor.states)(),
                checked_by_type,
                decode_prefix: checked_by_type.then_some(descriptor.decode_prefix),
            });
        }
        let mut by_place: Vec<(Place, usize)> = entries
            .iter()
            .enumerate()
            .filter_map(|(index, local)| Some((place(&local.spec.address)?, index)))
            .collect();
        by_place.sort_unstable();
        Ok(Registry { entries, by_place })
    }

    /// Fails with every hosted procedure's state type that `states` lacks.
    pub(crate) fn check_states(&self, states: &States) -> Result<(), Error> {
        let missing: Vec<String> = self
            .entries
            .iter()
            .flat_map(|local| {
                local
                    .needs
                    .iter()
                    .filter(|key| !states.contains(key))
                    .map(move |key| {
                        format!(
                            "  {} needs State<{}>: give it with Server::builder().state(value)",
                            local.spec.address,
                            key.name()
                        )
                    })
            })
            .collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(Error::MissingState(missing))
        }
    }

    pub(crate) fn get(&self, address: &Address) -> Option<&Local> {
        if let Some(place) = place(address)
            && let Ok(found) = self.by_place.binary_search_by(|(at, _)| at.cmp(&place))
        {
            return Some(&self.entries[self.by_place[found].1]);
        }
        let key = address.as_refs();
        self.entries
            .binary_search_by(|entry| entry.spec.address.as_refs().cmp(&key))
            .ok()
            .map(|index| &self.entries[index])
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &Local> {
        self.entries.iter()
    }
}
