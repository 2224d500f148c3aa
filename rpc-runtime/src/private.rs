//! The one door through which generated code reaches the runtime. Not part
//! of the public API: nothing here is stable.

pub use crate::Args;
pub use crate::descriptor::Descriptor;
pub use crate::procedure::BoxFuture;
pub use crate::state::StateKey;
pub use inventory;
pub use schemars;
pub use serde;
pub use serde_json;
pub use serde_json::Value;

use crate::{Procedure, RpcError};

/// The parts of a `Result` return type, so that aliases such as
/// `io::Result<T>` work as well as `Result<T, E>`.
pub trait RpcResult {
    /// The success type.
    type Ok;
    /// The error type.
    type Err;
    /// Itself, as a plain `Result`.
    fn into_result(self) -> Result<Self::Ok, Self::Err>;
}

impl<T, E> RpcResult for Result<T, E> {
    type Ok = T;
    type Err = E;
    fn into_result(self) -> Result<T, E> {
        self
    }
}

/// Decodes args into the args type: the value the transport decoded while
/// it read the request if there is one, else straight from the text they
/// arrived as (else from their value), no more leniently than the schema
/// (see `decode.rs`).
pub fn decode_args<P: Procedure>(args: &mut Args) -> Result<P::Args, RpcError> {
    if let Some(decoded) = args.take_decoded::<P::Args>() {
        return Ok(decoded);
    }
    match args.text() {
        Some(text) => crate::decode::from_str(text),
        None => crate::decode::from_value(args),
    }
    .map_err(|error| RpcError::new(422, format!("args could not be decoded: {error}")))
}

/// Decodes the args type from the JSON value `text` starts with, as
/// [`decode_args`] decodes it: the value and the length of its text, or
/// `None` when it does not decode (see [`Descriptor::decode_prefix`]).
pub fn decode_prefix<P: Procedure>(text: &str) -> Option<(Box<dyn std::any::Any + Send>, usize)> {
    let (args, len) = crate::decode::prefix::<P::Args>(text)?;
    Some((Box::new(args), len))
}

/// Encodes a handler's outcome as the data of the response.
pub fn encode_result<P: Procedure>(
    result: Result<P::Output, P::Error>,
) -> Result<crate::Data, RpcError> {
    match result {
        Ok(output) => crate::Data::encode(&output).map_err(|_| RpcError::internal()),
        Err(error) => Err(error.into()),
    }
}

/// JSON Schema of a procedure's args.
pub fn args_schema<P: Procedure>() -> Value {
    schemars::SchemaGenerator::default()
        .into_root_schema_for::<P::Args>()
        .to_value()
}

/// JSON Schema of a procedure's result.
pub fn output_schema<P: Procedure>() -> Value {
    schemars::SchemaGenerator::default()
        .into_root_schema_for::<P::Output>()
        .to_value()
}

/// The state value of type `T` for a call. The server checked at build
/// time that it has one; a context from elsewhere (a unit test's) may not.
pub fn state<T: crate::state::StateValue>(
    context: &crate::Context,
) -> Result<crate::State<T>, RpcError> {
    context.state::<T>().map(crate::State).ok_or_else(|| {
        RpcError::new(
            500,
            format!(
                "this server has no state of type {}",
                std::any::type_name::<T>()
            ),
        )
    })
}
