//! The accept loop (on a thread of its own: see `serve`): one HTTP/1.1
//! connection per accepted socket, served by
//! hyper over an IO with timeouts (`budget::TimedIo`), so that a connection
//! that does not send a request's head in time is closed (`axum::serve`
//! enforces no header timeout: a client could hold connections open by
//! sending nothing). Upgrades (WebSocket) and graceful shutdown work as
//! with `axum::serve`.

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::response::Response;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower_service::Service;

/// Serves `service` on `listener` until `stop` resolves, then lets every
/// connection finish the request it is on and waits for them.
///
/// Connections are accepted on a thread of their own (`rpc-accept`, with
/// a single-threaded runtime for the listener alone) and served on the
/// runtime `serve` is called on. What a connection is set up with is then
/// allocated by that thread rather than by one of the runtime's workers:
/// with glibc's allocator, a worker that frees a chunk another worker
/// allocated keeps it in its own cache and hands it out again, and a
/// growing `Vec` that starts in such a chunk grows in the other worker's
/// arena, under its lock, request after request, while the other worker
/// allocates there too (HTTP calls with large args then cost up to half
/// as much again; `benches/README.md`). Chunks from the accept thread's
/// arena cost no such contention: that thread allocates only as
/// connections arrive. This is where an application's own `axum::serve`
/// accepts as well, on the thread that runs `main`.
pub(crate) async fn serve<S>(
    listener: TcpListener,
    service: impl Fn(Accepted) -> S + Send + 'static,
    limits: &super::http::HttpConfig,
    stop: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()>
where
    S: Service<axum::extract::Request, Response = Response, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    let server = tokio::runtime::Handle::current();
    let listener = listener.into_std()?;
    let limits = limits.clone();
    let (done, result) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("rpc-accept".to_owned())
        .spawn(move || {
            let served = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .and_then(|accepting| {
                    accepting.block_on(async move {
                        let listener = TcpListener::from_std(listener)?;
                        accept(listener, service, &limits, stop, server).await
                    })
                });
            let _ = done.send(served);
        })?;
    result
        .await
        .unwrap_or_else(|_| Err(std::io::Error::other("the accept thread ended early")))
}

/// The accept loop, on the accept thread: each connection is registered
/// with, and served on, the `server` runtime.
async fn accept<S>(
    listener: TcpListener,
    service: impl Fn(Accepted) -> S,
    limits: &super::http::HttpConfig,
    stop: impl Future<Output = ()> + Send + 'static,
    server: tokio::runtime::Handle,
) -> std::io::Result<()>
where
    S: Service<axum::extract::Request, Response = Response, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    // Dropping `stopping` tells the connections; `finished` resolves once
    // every connection has dropped its receiver.
    let (stopping, stop_rx) = watch::channel(());
    let (finished, done_rx) = watch::channel(());
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        // The connection's IO times the heads, with one timer per
        // connection rather than hyper's one per request.
        .header_read_timeout(None)
        // Bounds what a connection's pipelined requests can hold in the
        // read buffer while their answers wait to be written.
        .max_buf_size(limits.read_buffer);
    let budget = limits.budget.clone();
    let write_timeout = limits.write_timeout;
    let header_timeout = limits.header_timeout;
    tokio::pin!(stop);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    accept_failed(error).await;
                    continue;
                }
            },
            () = &mut stop => break,
        };
        let handed = stream.into_std().and_then(|stream| {
            let _server = server.enter();
            tokio::net::TcpStream::from_std(stream)
        });
        let stream = match handed {
            Ok(stream) => stream,
            Err(error) => {
                tracing::warn!(%error, "an accepted connection could not be handed over");
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let Some(slot) = budget.connection() else {
            server.spawn(refuse(stream, budget.max_connections()));
            continue;
        };
        let read = super::budget::BytesRead::default();
        let requests = super::budget::Requests::default();
        let service = service(Accepted(Arc::new(Connection {
            peer,
            slot,
            read: read.clone(),
            requests: requests.clone(),
        })));
        // The services served here are always ready, so each request
        // calls a clone without `poll_ready`.
        let begin = requests.clone();
        let per_request = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
            use futures_util::FutureExt;
            let answering = begin.begin();
            service
                .clone()
                .call(request.map(Body::new))
                .map(move |response| {
                    drop(answering);
                    response
                })
        });
        let io = TokioIo::new(super::budget::TimedIo::new(
            stream,
            write_timeout,
            header_timeout,
            requests,
            read,
        ));
        let connection = builder.serve_connection(io, per_request).with_upgrades();
        let stopped = stopped(stop_rx.clone());
        let done_rx = done_rx.clone();
        server.spawn(async move {
            tokio::pin!(connection);
            tokio::select! {
                // The connection first: most wake-ups are its own.
                biased;
                _ = connection.as_mut() => {}
                () = stopped => {
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.await;
                }
            }
            drop(done_rx);
        });
    }
    drop(listener);
    drop(stopping);
    drop(done_rx);
    finished.closed().await;
    Ok(())
}

/// Resolves once the server stops (`stop` changes or closes). A
/// connection's task polls it at each of its wake-ups, nearly all of them
/// for the connection: it asks the channel (which takes a lock) only
/// when the channel has changed, or when the task's waker is not the one
/// the channel already holds.
fn stopped(stop: watch::Receiver<()>) -> impl Future<Output = ()> + Send {
    let peek = stop.clone();
    let mut changed = Box::pin(async move {
        let mut stop = stop;
        let _ = stop.changed().await;
    });
    let mut registered: Option<std::task::Waker> = None;
    std::future::poll_fn(move |cx| {
        let unchanged = matches!(peek.has_changed(), Ok(false));
        if unchanged
            && registered
                .as_ref()
                .is_some_and(|waker| waker.will_wake(cx.waker()))
        {
            return std::task::Poll::Pending;
        }
        registered = Some(cx.waker().clone());
        changed.as_mut().poll(cx)
    })
}

/// The connection a request came on: the accept loop gives it to the
/// service it serves the connection with, which adds it to the requests
/// that need it as one extension.
#[derive(Clone)]
pub(crate) struct Accepted(Arc<Connection>);

pub(crate) struct Connection {
    pub(crate) peer: SocketAddr,
    /// An upgrade takes the connection's place in the budget with it.
    pub(crate) slot: super::budget::ConnectionSlot,
    /// And its byte count.
    pub(crate) read: super::budget::BytesRead,
    /// Its requests, which an upgrade ends.
    pub(crate) requests: super::budget::Requests,
}

impl Accepted {
    pub(crate) fn peer(&self) -> SocketAddr {
        self.0.peer
    }

    pub(crate) fn of(extensions: &axum::http::Extensions) -> Option<&Connection> {
        extensions.get::<Accepted>().map(|accepted| &*accepted.0)
    }
}

/// The client's socket address: from this accept loop, or from an
/// application's server (`into_make_service_with_connect_info`) when the
/// router is mounted; unknown otherwise.
pub(crate) fn peer(extensions: &axum::http::Extensions) -> Option<SocketAddr> {
    Accepted::of(extensions)
        .map(|connection| connection.peer)
        .or_else(|| {
            extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ConnectInfo(peer)| *peer)
        })
}

/// Answers a connection over the server's limit with 503 and closes it,
/// without reading its request (and within a second, whatever the client
/// does).
async fn refuse(mut stream: tokio::net::TcpStream, limit: usize) {
    use tokio::io::AsyncWriteExt;
    let body = crate::envelope::encode_response(
        &Err(crate::RpcError::new(
            503,
            format!("the server holds its maximum of {limit} connections; try again later"),
        )),
        None,
    );
    let mut response = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: {}\r\nretry-after: 1\r\nconnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    response.extend_from_slice(&body);
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        let _ = stream.write_all(&response).await;
        let _ = stream.shutdown().await;
    })
    .await;
}

/// What `axum::serve` does too: connection-level errors are the client's
/// and are ignored; others (such as running out of file descriptors) are
/// logged, and accepting pauses for a second so that some can be freed.
async fn accept_failed(error: std::io::Error) {
    use std::io::ErrorKind;
    if matches!(
        error.kind(),
        ErrorKind::ConnectionRefused | ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset
    ) {
        return;
    }
    tracing::error!(%error, "accepting a connection failed");
    tokio::time::sleep(Duration::from_secs(1)).await;
}
