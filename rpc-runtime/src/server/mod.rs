//! The server: one type in every role. It hosts the procedures its filter
//! accepts, serves HTTP and WebSocket when given an address, and forwards
//! what it does not host through a broker when given one.

mod builder;

pub use builder::ServerBuilder;

use crate::pipeline::Pipeline;
use crate::transport::{self, HttpConfig, PagesConfig, WsConfig};
use crate::{Error, ServerHandle};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// A configured server, ready to start.
pub struct Server {
    http_addr: Option<SocketAddr>,
    http_config: HttpConfig,
    ws_config: WsConfig,
    pages: PagesConfig,
    drain_timeout: std::time::Duration,
    pipeline: Arc<Pipeline>,
    #[cfg(feature = "broker")]
    broker: Option<Arc<crate::broker::Broker>>,
}

impl Server {
    /// Starts configuring a server.
    pub fn builder() -> ServerBuilder {
        ServerBuilder::default()
    }

    /// A handle on this server, valid before and after it starts.
    pub fn handle(&self) -> ServerHandle {
        self.pipeline.handle.clone()
    }

    #[cfg(test)]
    pub(crate) fn pipeline(&self) -> &Arc<Pipeline> {
        &self.pipeline
    }

    /// The addresses of the procedures this server hosts.
    pub fn hosted(&self) -> Vec<crate::Address> {
        self.pipeline
            .registry
            .iter()
            .map(|l| l.spec.address.clone())
            .collect()
    }

    /// Binds the listener (if given an address), connects to the broker (if
    /// given one) and starts serving in the background. A server without an
    /// address serves through [`RunningServer::router`], mounted in an axum
    /// app.
    pub async fn start(self) -> Result<RunningServer, Error> {
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let mut tasks = Vec::new();
        let mut http_addr = None;
        #[cfg(feature = "broker")]
        let broker_task = match &self.broker {
            Some(broker) => Some(broker.start(shutdown_rx.clone()).await?),
            None => None,
        };
        if let Some(addr) = self.http_addr {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|source| Error::Bind {
                    addr: addr.to_string(),
                    source,
                })?;
            let bound = listener.local_addr()?;
            self.pipeline.handle.set_http_addr(bound);
            http_addr = Some(bound);
            let gateway = transport::Gateway::new(
                self.pipeline.clone(),
                self.http_config.clone(),
                self.ws_config.clone(),
                self.pages.clone(),
            );
            let mut stop = shutdown_rx.clone();
            tasks.push(tokio::spawn(async move {
                let stop = async move {
                    let _ = stop.wait_for(|stop| *stop).await;
                };
                transport::serve(listener, gateway, stop).await
            }));
        }
        Ok(RunningServer {
            http_addr,
            http_config: self.http_config,
            ws_config: self.ws_config,
            pages: self.pages,
            drain_timeout: self.drain_timeout,
            pipeline: self.pipeline,
            shutdown: shutdown_tx,
            tasks,
            #[cfg(feature = "broker")]
            broker: self.broker,
            #[cfg(feature = "broker")]
            broker_task,
        })
    }

    /// Starts, then serves until Ctrl-C or SIGTERM (how containers are
    /// stopped), then shuts down gracefully (see
    /// [`RunningServer::shutdown`]).
    pub async fn serve(self) -> Result<(), Error> {
        let running = self.start().await?;
        stop_signal().await;
        running.shutdown().await
    }
}

/// Resolves on Ctrl-C, or on SIGTERM where there are signals.
pub async fn stop_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut terminate) => {
                terminate.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}

/// A started server.
pub struct RunningServer {
    http_addr: Option<SocketAddr>,
    http_config: HttpConfig,
    ws_config: WsConfig,
    pages: PagesConfig,
    drain_timeout: std::time::Duration,
    pipeline: Arc<Pipeline>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<std::io::Result<()>>>,
    #[cfg(feature = "broker")]
    broker: Option<Arc<crate::broker::Broker>>,
    #[cfg(feature = "broker")]
    broker_task: Option<JoinHandle<()>>,
}

impl RunningServer {
    /// The bound HTTP address (with the real port when 0 was asked for).
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http_addr
    }

    /// A handle on the server.
    pub fn handle(&self) -> ServerHandle {
        self.pipeline.handle.clone()
    }

    /// The server's routes as an `axum::Router`, to merge or nest into an
    /// application's own router: calls (`POST`), WebSocket upgrades, the
    /// docs and specs, telemetry and `/health`, with the server's CORS
    /// setting. The application's layers (tracing, compression, timeouts)
    /// apply to them as to its own routes.
    ///
    /// Serve the app with
    /// `into_make_service_with_connect_info::<SocketAddr>()` so that calls
    /// see the client's address (else only a valid `X-Real-IP` gives it).
    /// The header and body timeouts of [`ServerBuilder::http_header_timeout`]
    /// are the app's server's to set. For a graceful stop, end
    /// `axum::serve` with `with_graceful_shutdown`, then call
    /// [`RunningServer::shutdown`], which drains the WebSocket connections
    /// and the broker.
    pub fn router(&self) -> axum::Router {
        let router = transport::Gateway::new(
            self.pipeline.clone(),
            self.http_config.clone(),
            self.ws_config.clone(),
            self.pages.clone(),
        )
        .router();
        transport::with_cors(router, &self.http_config.cors)
    }

    /// The state of the broker connection, if the server has a broker.
    #[cfg(feature = "broker")]
    pub fn broker_state(&self) -> Option<crate::BrokerState> {
        self.broker.as_ref().map(|b| b.state())
    }

    /// The handler servers this server has heard from, if it has a broker.
    #[cfg(feature = "broker")]
    pub fn remote_servers(&self) -> Vec<crate::RemoteServer> {
        self.broker
            .as_ref()
            .map(|b| b.remote_servers())
            .unwrap_or_default()
    }

    /// Every procedure this server can route: its own and announced ones.
    pub fn procedures(&self) -> Vec<crate::ProcedureSpec> {
        self.pipeline.routable()
    }

    /// Stops taking new calls (clients get 503, the listener closes, broker
    /// consumers are cancelled), lets the calls in flight finish, then
    /// stops. WebSocket connections get the answers to their calls in
    /// flight, then close code 1001. Procedures that are finishing may
    /// still call others. Calls still running when the drain timeout
    /// ([`ServerBuilder::drain_timeout`]) ends are answered 503.
    pub async fn shutdown(self) -> Result<(), Error> {
        self.pipeline.stop_accepting();
        let _ = self.shutdown.send(true);
        self.pipeline.handle.go_away();
        let pipeline = self.pipeline.clone();
        let drain = async move {
            for task in self.tasks {
                match task.await {
                    Ok(result) => result?,
                    Err(join) => return Err(Error::Io(std::io::Error::other(join))),
                }
            }
            self.pipeline.handle.connections_gone().await;
            #[cfg(feature = "broker")]
            if let Some(task) = self.broker_task {
                let _ = task.await;
            }
            Ok(())
        };
        tokio::pin!(drain);
        match tokio::time::timeout(self.drain_timeout, &mut drain).await {
            Ok(drained) => drained,
            Err(_) => {
                pipeline.abandon_calls();
                drain.await
            }
        }
    }
}
