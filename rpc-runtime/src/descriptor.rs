//! The registration `#[rpc]` submits at link time, and the signature of the
//! handler it generates.

use crate::procedure::BoxFuture;
use crate::{Address, Context, ProcedureSpec, RpcError};
use serde_json::Value;

/// The signature of a generated handler: it decodes the args (straight into
/// the procedure's args type) and reads its state at once, then yields the
/// running call. An `Err` is a decode failure: the pipeline answers it with
/// the schema validator's list of failures.
pub type HandlerFn =
    fn(&mut crate::Args, Context) -> Result<BoxFuture<Result<crate::Data, RpcError>>, RpcError>;

/// Decodes a procedure's args type from the JSON value a text starts with:
/// the value and the length of its text, or `None`. A transport that reads
/// the call's address before its args decodes them with it as it reads
/// the request (for procedures whose type enforces their schema), so that
/// the args text is read once.
pub type DecodePrefixFn = fn(&str) -> Option<(Box<dyn std::any::Any + Send>, usize)>;

/// A registration, as `#[rpc]` submits it at link time.
#[doc(hidden)]
#[derive(Debug)]
pub struct Descriptor {
    pub scope: &'static str,
    pub procedure: &'static str,
    pub version: &'static str,
    pub description: &'static str,
    pub internal: bool,
    pub auth: bool,
    pub timeout_ms: Option<u64>,
    pub args_schema: fn() -> Value,
    pub output_schema: fn() -> Value,
    pub handler: HandlerFn,
    pub decode_prefix: DecodePrefixFn,
    pub states: fn() -> Vec<crate::state::StateKey>,
    pub module: &'static str,
    pub file: &'static str,
    pub line: u32,
}

inventory::collect!(Descriptor);

#[cfg_attr(
    not(feature = "server"),
    allow(dead_code, reason = "used by the registry")
)]
impl Descriptor {
    /// Every procedure linked into this binary, in unspecified order.
    pub(crate) fn all() -> impl Iterator<Item = &'static Descriptor> {
        inventory::iter::<Descriptor>.into_iter()
    }

    pub(crate) fn address(&self) -> Address {
        Address::new(self.scope, self.procedure, self.version)
    }

    pub(crate) fn spec(&self) -> ProcedureSpec {
        ProcedureSpec {
            address: self.address(),
            description: self.description.to_owned(),
            internal: self.internal,
            auth: self.auth,
            timeout_ms: self.timeout_ms,
            args_schema: (self.args_schema)(),
            output_schema: (self.output_schema)(),
        }
    }

    pub(crate) fn location(&self) -> String {
        format!("{}:{} ({})", self.file, self.line, self.module)
    }
}
