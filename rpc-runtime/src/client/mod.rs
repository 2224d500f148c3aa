//! Typed clients: [`HttpClient`] for one call per request, [`WsClient`]
//! for one long-lived connection with identity, concurrent calls, server
//! messages and reconnects. Both return the procedure's typed output or an
//! [`RpcError`]; transport failures are `RpcError`s too (503, or 504 when
//! the client's own deadline passes).

mod http;
mod ws;

pub use http::HttpClient;
pub use ws::{ServerMessages, WsClient, WsClientBuilder};

use crate::envelope::WireIn;
use crate::{Procedure, RpcError};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

fn encode_args<P: Procedure>(args: P::Args) -> Result<Value, RpcError>
where
    P::Args: Serialize,
{
    serde_json::to_value(args)
        .map_err(|error| RpcError::bad_request(format!("args could not be encoded: {error}")))
}

fn decode_output<P: Procedure>(data: Value) -> Result<P::Output, RpcError>
where
    P::Output: DeserializeOwned,
{
    serde_json::from_value(data).map_err(|error| {
        RpcError::new(
            502,
            format!("the response data has an unexpected shape: {error}"),
        )
    })
}

fn decode_response(bytes: &[u8]) -> Result<Value, RpcError> {
    serde_json::from_slice::<WireIn>(bytes)
        .map_err(|error| RpcError::new(502, format!("the response is not an envelope: {error}")))?
        .into_result()
}

fn envelope(address: &crate::Address, args: Value) -> Map<String, Value> {
    let mut envelope = Map::new();
    envelope.insert("procedure".into(), Value::String(address.procedure.clone()));
    envelope.insert("scope".into(), Value::String(address.scope.clone()));
    envelope.insert("version".into(), Value::String(address.version.clone()));
    envelope.insert("args".into(), args);
    envelope
}
