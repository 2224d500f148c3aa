//! Calls over HTTP: stateless, the identity travels in every call.

use super::{CallEnvelope, decode_output, decode_response};
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
    /// A client of the server at `url`, e.g. `http://127.0.0.1:9876`, or
    /// `https://...` with the `tls` feature (the system's roots are
    /// trusted; a private CA with `with_root_certificate_pem`).
    pub fn new(url: impl Into<String>) -> Self {
        HttpClient {
            http: client(None),
            url: url.into(),
            identity: None,
        }
    }

    /// Also trusts the certificates of this PEM text (a private CA) for
    /// `https://` (feature `tls`).
    #[cfg(feature = "tls")]
    #[must_use]
    pub fn with_root_certificate_pem(mut self, pem: &str) -> Self {
        self.http = client(Some(pem));
        self
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
        let body = self.encode(CallEnvelope::of::<P>(&args))?;
        decode_output::<P>(self.post(body).await?)
    }

    /// Calls a procedure by address with JSON args.
    pub async fn call_json(&self, address: Address, args: Value) -> Result<Value, RpcError> {
        let body = self.encode(CallEnvelope::to(&address, &args))?;
        self.post(body).await
    }

    fn encode<'a, A: Serialize>(
        &'a self,
        mut envelope: CallEnvelope<'a, A>,
    ) -> Result<String, RpcError> {
        envelope.identity = self.identity.as_ref();
        envelope.encode()
    }

    async fn post(&self, body: String) -> Result<Value, RpcError> {
        let response = self
            .http
            .post(&self.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
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

/// The HTTP client: over rustls with the `tls` feature (a configuration
/// that fails, such as an unreadable CA, leaves only plain HTTP).
fn client(extra_pem: Option<&str>) -> reqwest::Client {
    #[cfg(feature = "tls")]
    if let Ok(config) = super::tls::client_config(extra_pem) {
        let built = reqwest::Client::builder()
            .tls_backend_preconfigured(rustls::ClientConfig::clone(&config))
            .build();
        if let Ok(client) = built {
            return client;
        }
    }
    let _ = extra_pem;
    reqwest::Client::new()
}
