//! What a procedure is: its address, its typed marker ([`Procedure`]), and
//! the owned description shared with docs and other servers
//! ([`ProcedureSpec`]). The registration the macro submits is in
//! `descriptor.rs`.

use crate::RpcError;
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::pin::Pin;

/// A boxed, sendable future: the return type of generated handlers.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// Where a procedure lives: matching is exact on all three parts.
///
/// The parts borrow `'static` strings where they can (the address of a
/// procedure linked into the binary, and the addresses calls name that
/// match one), and own them otherwise: copying such an address, or reading
/// it from a request, allocates nothing.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Address {
    /// The scope, `"global"` unless given.
    pub scope: Cow<'static, str>,
    /// The procedure name.
    pub procedure: Cow<'static, str>,
    /// The version, `"1"` unless given.
    pub version: Cow<'static, str>,
}

impl Address {
    /// An address from its three parts (`&'static str` or `String`).
    pub fn new(
        scope: impl Into<Cow<'static, str>>,
        procedure: impl Into<Cow<'static, str>>,
        version: impl Into<Cow<'static, str>>,
    ) -> Self {
        Address {
            scope: scope.into(),
            procedure: procedure.into(),
            version: version.into(),
        }
    }

    /// The address a request names: that of a procedure linked into this
    /// binary shares its strings; any other owns copies.
    pub(crate) fn read(scope: &str, procedure: &str, version: &str) -> Self {
        // Sorted by procedure name first, the part that tells procedures
        // apart soonest, and by lengths before bytes.
        fn key<'a>(scope: &'a str, procedure: &'a str, version: &'a str) -> impl Ord + 'a {
            (
                (procedure.len(), procedure.as_bytes()),
                (scope.len(), scope.as_bytes()),
                version.as_bytes(),
            )
        }
        static LINKED: std::sync::LazyLock<Vec<(&str, &str, &str)>> =
            std::sync::LazyLock::new(|| {
                let mut linked: Vec<_> = crate::descriptor::Descriptor::all()
                    .map(|d| (d.scope, d.procedure, d.version))
                    .collect();
                linked.sort_unstable_by(|a, b| key(a.0, a.1, a.2).cmp(&key(b.0, b.1, b.2)));
                linked
            });
        let wanted = key(scope, procedure, version);
        match LINKED.binary_search_by(|&(s, p, v)| key(s, p, v).cmp(&wanted)) {
            Ok(index) => {
                let (scope, procedure, version) = LINKED[index];
                Address::new(scope, procedure, version)
            }
            Err(_) => Address::new(scope.to_owned(), procedure.to_owned(), version.to_owned()),
        }
    }

    /// The address of a typed procedure marker.
    pub fn of<P: Procedure>() -> Self {
        Address::new(P::SCOPE, P::NAME, P::VERSION)
    }

    #[cfg_attr(
        not(feature = "server"),
        allow(dead_code, reason = "used by the registry")
    )]
    pub(crate) fn as_refs(&self) -> (&str, &str, &str) {
        (&self.scope, &self.procedure, &self.version)
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}@{}", self.scope, self.procedure, self.version)
    }
}

/// The typed marker `#[rpc]` generates for each procedure, named after its
/// function. Typed calls name it: `ctx.call::<login>(args)`.
pub trait Procedure: 'static {
    /// The args type (the function's args parameter, or [`NoArgs`]).
    type Args: RpcArgs;
    /// The data of a successful call.
    type Output: RpcOutput;
    /// The handler's error type.
    type Error: RpcErrorSource;
    /// The scope.
    const SCOPE: &'static str;
    /// The procedure name.
    const NAME: &'static str;
    /// The version.
    const VERSION: &'static str;
    /// Whether only other procedures may call it.
    const INTERNAL: bool;
}

/// What a handler's error type needs: a conversion into [`RpcError`].
/// `RpcError` itself, and every `std::error::Error + Send + Sync +
/// 'static` (such as `std::io::Error`), `anyhow::Error` and
/// `Box<dyn Error + Send + Sync>` have one: those answer 500 with a
/// generic message and are logged with their source chain.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be the error of an #[rpc] procedure",
    label = "needs a conversion into `RpcError`",
    note = "implement `std::error::Error` for it (it then answers 500), or `From<{Self}> for RpcError` to choose its code and message"
)]
pub trait RpcErrorSource: Into<RpcError> + Send + 'static {}
impl<E: Into<RpcError> + Send + 'static> RpcErrorSource for E {}

/// What an args type needs: `Deserialize` and `JsonSchema`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be the args of an #[rpc] procedure",
    label = "needs `serde::Deserialize` and `schemars::JsonSchema`",
    note = "derive them: #[derive(serde::Deserialize, rpc_runtime::JsonSchema)]"
)]
pub trait RpcArgs: DeserializeOwned + JsonSchema + Send + 'static {}
impl<T: DeserializeOwned + JsonSchema + Send + 'static> RpcArgs for T {}

/// What a result type needs: `Serialize` and `JsonSchema`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be the result of an #[rpc] procedure",
    label = "needs `serde::Serialize` and `schemars::JsonSchema`",
    note = "derive them: #[derive(serde::Serialize, rpc_runtime::JsonSchema)]"
)]
pub trait RpcOutput: Serialize + JsonSchema + Send + 'static {}
impl<T: Serialize + JsonSchema + Send + 'static> RpcOutput for T {}

/// The args of a procedure that takes none: `{}` on the wire; a missing or
/// `null` args also decodes to it, an object with any property does not.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NoArgs;

impl Serialize for NoArgs {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        serializer.serialize_map(Some(0))?.end()
    }
}

impl<'de> Deserialize<'de> for NoArgs {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = NoArgs;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an empty object")
            }
            fn visit_unit<E>(self) -> Result<NoArgs, E> {
                Ok(NoArgs)
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<NoArgs, A::Error> {
                match map.next_key::<String>()? {
                    None => Ok(NoArgs),
                    Some(key) => Err(serde::de::Error::custom(format_args!(
                        "this procedure takes no args, not {key:?}"
                    ))),
                }
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

impl JsonSchema for NoArgs {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "NoArgs".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "object",
            "properties": {},
            "additionalProperties": false
        })
    }
}

/// Everything known about a procedure apart from its code: what docs show,
/// and what handler servers announce to gateways.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ProcedureSpec {
    /// Where it lives.
    #[serde(flatten)]
    pub address: Address,
    /// The doc comment of the function.
    pub description: String,
    /// Callable only from other procedures.
    pub internal: bool,
    /// Requires an authenticated identity.
    pub auth: bool,
    /// Its own deadline, if it sets one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// JSON Schema (2020-12) of its args.
    pub args_schema: Value,
    /// JSON Schema (2020-12) of its result.
    pub output_schema: Value,
}
