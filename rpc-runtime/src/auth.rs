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
/// (use 401); a panic is logged and refuses with 500.
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

/// Runs the authenticator on a token. A panic in it is logged and refuses
/// with 500, as a handler's panic answers, instead of taking down the
/// request, connection or queue consumer it runs on.
pub(crate) async fn check(
    authenticator: &dyn Authenticator,
    token: String,
) -> Result<String, RpcError> {
    use futures_util::FutureExt;
    use std::panic::{AssertUnwindSafe, catch_unwind};
    let checked = match catch_unwind(AssertUnwindSafe(|| authenticator.authenticate(token))) {
        Ok(future) => AssertUnwindSafe(future).catch_unwind().await,
        Err(panic) => Err(panic),
    };
    checked.unwrap_or_else(|_| {
        tracing::error!("the authenticator panicked");
        Err(RpcError::internal())
    })
}
