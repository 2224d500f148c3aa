//! The server: one type in every role. It hosts the procedures its filter
//! accepts, serves HTTP and WebSocket when given an address, and forwards
//! what it does not host through a broker when given one.

mod builder;
pub(crate) mod connections;
mod handle;

pub use builder::{Cors, ServerBuilder};
pub use connections::ConnectionInfo;
pub use handle::ServerHandle;

use crate::Error;
use crate::dispatch::Dispatcher;
use crate::transport::{self, HttpConfig, PagesConfig, WsConfig};
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
    dispatcher: Arc<Dispatcher>,
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
        self.dispatcher.handle.clone()
    }

    /// The addresses of the procedures this server hosts.
    pub fn hosted(&self) -> Vec<crate::Address> {
        self.dispatcher
            .registry
            .iter()
            .map(|l| l.spec.address.clone())
            .collect()
    }

    /// Binds the listeners and starts serving in the background.
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
            self.dispatcher.handle.set_http_addr(bound);
            http_addr = Some(bound);
            let router = transport::router(
                self.dispatcher.clone(),
                self.http_config.clone(),
                self.ws_config.clone(),
                self.pages.clone(),
            );
            let http = self.http_config.clone();
            let mut stop = shutdown_rx.clone();
            tasks.push(tokio::spawn(async move {
                let stop = async move {
                    let _ = stop.wait_for(|stop| *stop).await;
                };
                transport::serve(listener, router, &http, stop).await
            }));
        }
        Ok(RunningServer {
            http_addr,
            dispatcher: self.dispatcher,
            shutdown: shutdown_tx,
            tasks,
            #[cfg(feature = "broker")]
            broker: self.broker,
            #[cfg(feature = "broker")]
            broker_task,
        })
    }

    /// Starts, then serves until Ctrl-C, then shuts down gracefully.
    pub async fn serve(self) -> Result<(), Error> {
        let running = self.start().await?;
        let _ = tokio::signal::ctrl_c().await;
        running.shutdown().await
    }
}

/// A started server.
pub struct RunningServer {
    http_addr: Option<SocketAddr>,
    dispatcher: Arc<Dispatcher>,
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
        self.dispatcher.handle.clone()
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
        self.dispatcher.routable()
    }

    /// Stops taking new calls (clients get 503, the listener closes, broker
    /// consumers are cancelled), lets the calls in flight finish, then
    /// stops. WebSocket connections get the answers to their calls in
    /// flight, then close code 1001. Procedures that are finishing may
    /// still call others.
    pub async fn shutdown(self) -> Result<(), Error> {
        self.dispatcher.stop_accepting();
        let _ = self.shutdown.send(true);
        self.dispatcher.handle.go_away();
        for task in self.tasks {
            match task.await {
                Ok(result) => result?,
                Err(join) => return Err(Error::Io(std::io::Error::other(join))),
            }
        }
        self.dispatcher.handle.connections_gone().await;
        #[cfg(feature = "broker")]
        if let Some(task) = self.broker_task {
            let _ = task.await;
        }
        Ok(())
    }
}
