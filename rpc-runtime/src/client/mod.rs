//! Typed clients: [`HttpClient`] for one call per request, [`WsClient`]
//! for one long-lived connection with identity, concurrent calls, server
//! messages and reconnects. Both return the procedure's typed output or an
//! [`RpcError`]; transport failures are `RpcError`s too (503, or 504 when
//! the client's own deadline passes).

mod http;
#[cfg(feature = "tls")]
mod tls;
mod ws;

pub use http::HttpClient;
pub use ws::{ServerMessages, WsClient, WsClientBuilder};

use crate::envelope::WireIn;
use crate::{Address, Identity, Procedure, RpcError};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// A call as the clients write it: the args, typed or JSON, are serialized
/// where they are, with no `Value` in between.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CallEnvelope<'a, A> {
    procedure: &'a str,
    scope: &'a str,
    version: &'a str,
    args: &'a A,
    #[serde(skip_serializing_if = "Option::is_none")]
    identity: Option<&'a Identity>,
    #[serde(skip_serializing_if = "Option::is_none")]
    correlation_id: Option<u64>,
}

impl<'a, A: Serialize> CallEnvelope<'a, A> {
    fn of<P: Procedure>(args: &'a A) -> Self {
        Self::new(P::SCOPE, P::NAME, P::VERSION, args)
    }

    fn to(address: &'a Address, args: &'a A) -> Self {
        Self::new(&address.scope, &address.procedure, &address.version, args)
    }

    fn new(scope: &'a str, procedure: &'a str, version: &'a str, args: &'a A) -> Self {
        CallEnvelope {
            procedure,
            scope,
            version,
            args,
            identity: None,
            correlation_id: None,
        }
    }

    fn encode(&self) -> Result<String, RpcError> {
        serde_json::to_string(self)
            .map_err(|error| RpcError::bad_request(format!("args could not be encoded: {error}")))
    }
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
