//! Calls over HTTP: stateless, the identity travels in every call.

use super::{decode_output, decode_response, encode_args, envelope};
use crate::{Address, Identity, Procedure, RpcError};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// A typed client over HTTP.
#[derive(Clone, Debug)]
pub struct HttpClient {
    http: reqwest::Client,
    url: String,
    identity: Option<Identity>,
}

impl HttpClient {
    /// A client of the server at `url`, e.g. `http://127.0.0.1:9876`.
    pub fn new(url: impl Into<String>) -> Self {
        HttpClient {
            http: reqwest::Client::new(),
            url: url.into(),
            identity: None,
        }
    }

    /// Sends this identity with every call.
    #[must_use]
    pub fn with_identity(mut self, identity: Identity) -> Self {
        self.identity = Some(identity);
        self
    }

    /// Calls a procedure through its typed marker.
    pub async fn call<P: Procedure>(&self, args: P::Args) -> Result<P::Output, RpcError>
    where
        P::Args: Serialize,
        P::Output: DeserializeOwned,
    {
        let data = self
            .call_json(Address::of::<P>(), encode_args::<P>(args)?)
            .await?;
        decode_output::<P>(data)
    }

    /// Calls a procedure by address with JSON args.
    pub async fn call_json(&self, address: Address, args: Value) -> Result<Value, RpcError> {
        let mut body = envelope(&address, args);
        if let Some(identity) = &self.identity {
            body.insert(
                "identity".into(),
                serde_json::to_value(identity).unwrap_or_default(),
            );
        }
        let response = self
            .http
            .post(&self.url)
            .json(&body)
            .send()
            .await
            .map_err(|error| {
                RpcError::new(503, format!("the server could not be reached: {error}"))
            })?;
        let bytes = response
            .bytes()
            .await
            .map_err(|error| RpcError::new(503, format!("the response was cut off: {error}")))?;
        decode_response(&bytes)
    }
}
