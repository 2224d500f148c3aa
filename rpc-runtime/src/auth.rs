//! The user-supplied check of bearer tokens.

use crate::RpcError;
use crate::procedure::BoxFuture;
use std::future::Future;

/// Checks a bearer token and names its user. Any async function or closure
/// `Fn(String) -> impl Future<Output = Result<String, RpcError>>` is one.
///
/// It runs for calls to `auth` procedures (with the identity's
/// authorization, a leading `Bearer ` removed), for WebSocket upgrades that
/// carry a token, and for identity frames. An `Err` refuses with its code
/// (use 401).
pub trait Authenticator: Send + Sync + 'static {
    /// The user id for this token, or why it is refused.
    fn authenticate(&self, token: String) -> BoxFuture<Result<String, RpcError>>;
}

impl<F, Fut> Authenticator for F
where
    F: Fn(String) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<String, RpcError>> + Send + 'static,
{
    fn authenticate(&self, token: String) -> BoxFuture<Result<String, RpcError>> {
        Box::pin(self(token))
    }
}
