//! Who is calling, as the client states it in the envelope.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The `identity` of the call envelope: all fields optional. Over HTTP it
/// travels with every call; over WebSocket it is set once per connection.
///
/// Its `Debug` output redacts the authorization, so logging a call never
/// logs a credential.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
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

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field(
                "authorization",
                &self.authorization.as_ref().map(|_| "<redacted>"),
            )
            .field("device_name", &self.device_name)
            .field("metadata", &self.metadata)
            .finish()
    }
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
        // The scheme is case-insensitive; `Bearer` alone (or followed only
        // by spaces) is no token at all.
        let token = match (authorization.get(..6), authorization.get(6..)) {
            (Some(scheme), Some(rest))
                if scheme.eq_ignore_ascii_case("bearer")
                    && rest.chars().next().is_none_or(char::is_whitespace) =>
            {
                rest.trim()
            }
            _ => authorization,
        };
        (!token.is_empty()).then_some(token)
    }
}

#[cfg(test)]
mod tests {
    use super::Identity;

    #[test]
    fn a_scheme_alone_is_no_token() {
        let token = |authorization: &str| {
            Identity::with_authorization(authorization)
                .token()
                .map(str::to_owned)
        };
        assert_eq!(token("Bearer abc"), Some("abc".into()));
        assert_eq!(token("bearer   abc "), Some("abc".into()));
        assert_eq!(token("BEARER\tabc"), Some("abc".into()));
        assert_eq!(token("abc"), Some("abc".into()));
        assert_eq!(token("Bearerabc"), Some("Bearerabc".into()));
        for empty in ["", "   ", "Bearer", "Bearer   ", "bearer\t", " Bearer "] {
            assert_eq!(token(empty), None, "{empty:?}");
        }
    }
}
