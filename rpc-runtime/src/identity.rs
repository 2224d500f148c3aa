//! Who is calling, as the client states it in the envelope.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The `identity` of the call envelope: all fields optional. Over HTTP it
/// travels with every call; over WebSocket it is set once per connection.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Identity {
    /// Credentials, typically `Bearer <token>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization: Option<String>,
    /// A name of the client device.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_name: Option<String>,
    /// Anything else the client wants handlers to see.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Map<String, Value>>,
}

impl Identity {
    /// An identity carrying only an authorization.
    pub fn with_authorization(authorization: impl Into<String>) -> Self {
        Identity {
            authorization: Some(authorization.into()),
            ..Identity::default()
        }
    }

    /// Sets the device name.
    pub fn device_name(mut self, device_name: impl Into<String>) -> Self {
        self.device_name = Some(device_name.into());
        self
    }

    /// Sets the metadata object.
    pub fn metadata(mut self, metadata: Map<String, Value>) -> Self {
        self.metadata = Some(metadata);
        self
    }

    /// The bearer token: the authorization without a leading `Bearer `.
    pub fn token(&self) -> Option<&str> {
        let authorization = self.authorization.as_deref()?.trim();
        let token = authorization
            .strip_prefix("Bearer ")
            .or_else(|| authorization.strip_prefix("bearer "))
            .unwrap_or(authorization)
            .trim();
        (!token.is_empty()).then_some(token)
    }
}
