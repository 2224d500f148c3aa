//! The connection's life: connecting and declaring the topology,
//! reconnecting with backoff when the connection is lost, and draining
//! at shutdown.

use super::wire::{
    self, ANNOUNCE_EXCHANGE, Announcement, CALL_EXCHANGE, REPLY_TO, UNROUTABLE_EXCHANGE,
    UNROUTABLE_QUEUE, queue_name,
};
use super::{Broker, BrokerState, Link, Replied, Reply};
use crate::{Error, RpcError};
use lapin::options::{
    BasicCancelOptions, BasicConsumeOptions, BasicQosOptions, ExchangeDeclareOptions,
    QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{Channel, Connection, ConnectionProperties, ExchangeKind};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::sync::{Notify, oneshot, watch};
use tokio::task::JoinHandle;

const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// What the supervisor holds while connected.
struct Session {
    link: Link,
    consumers: Vec<(Arc<Channel>, String)>,
    /// One per consumed queue of calls (each hosted procedure's, and the
    /// unroutable calls'): runs its calls, and ends once its consumer is
    /// cancelled and every call delivered before is taken.
    serving: Vec<JoinHandle<()>>,
    /// Replies, announcements.
    tasks: Vec<JoinHandle<()>>,
    lost: Arc<Notify>,
}

impl Broker {
    pub(super) async fn supervise(
        self: Arc<Self>,
        first: oneshot::Sender<Result<(), Error>>,
        mut stop: watch::Receiver<bool>,
    ) {
        let mut first = Some(first);
        let mut backoff = MIN_BACKOFF;
        loop {
            match self.connect().await {
                Ok(session) => {
                    backoff = MIN_BACKOFF;
                    match first.take() {
                        Some(first) => {
                            let _ = first.send(Ok(()));
                        }
                        None => self.count(|counters| &counters.broker_reconnects),
                    }
                    self.state.send_replace(BrokerState::Connected);
                    let lost = session.lost.clone();
                    tokio::select! {
                        () = lost.notified() => {
                            tracing::warn!(server = %self.handle.name(), "lost the connection to the message broker");
                            self.drop_session(session);
                            self.next_node();
                        }
                        () = stopped(&mut stop) => {
                            self.drain(session).await;
                            self.state.send_replace(BrokerState::Stopped);
                            return;
                        }
                    }
                }
                Err(error) => {
                    if let Some(first) = first.take() {
                        if self.config.retry_at_start {
                            tracing::warn!(%error, "the message broker is unreachable; retrying");
                            let _ = first.send(Ok(()));
                        } else {
                            let _ = first.send(Err(error));
                            return;
                        }
                    }
                }
            }
            self.state.send_replace(BrokerState::Connecting);
            tokio::select! {
                () = tokio::time::sleep(backoff) => {}
                () = stopped(&mut stop) => {
                    self.state.send_replace(BrokerState::Stopped);
                    return;
                }
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    /// Connects and declares the topology: replies, announcements, and a
    /// queue per hosted procedure.
    async fn connect(&self) -> Result<Session, Error> {
        let connection = Arc::new(self.open_connection().await?);

        // Calls go out on one channel that also takes their replies.
        let publisher = open_channel(&connection).await?;
        let replies = consume(&publisher, REPLY_TO, true, "consume direct reply-to").await?;
        for (exchange, kind, arguments) in [
            (
                UNROUTABLE_EXCHANGE,
                ExchangeKind::Fanout,
                FieldTable::default(),
            ),
            (
                CALL_EXCHANGE,
                ExchangeKind::Direct,
                wire::call_exchange_arguments(),
            ),
            (
                ANNOUNCE_EXCHANGE,
                ExchangeKind::Fanout,
                FieldTable::default(),
            ),
            (
                super::mesh::PUSH_EXCHANGE,
                ExchangeKind::Direct,
                FieldTable::default(),
            ),
        ] {
            publisher
                .exchange_declare(
                    exchange.into(),
                    kind,
                    ExchangeDeclareOptions::default(),
                    arguments,
                )
                .await
                .map_err(failed("declare an exchange"))?;
        }

        // Calls nobody serves, answered with 404 by whichever server reads
        // them; acknowledged, so that a server that stops or dies holding
        // some leaves them to the others.
        let (unroutable_channel, unroutable) = self
            .consume_shared(
                &connection,
                UNROUTABLE_QUEUE,
                Some((UNROUTABLE_EXCHANGE, "")),
            )
            .await?;
        let listener = Arc::new(open_channel(&connection).await?);

        // Announcements: a fanout exchange, read through a queue of our own.
        let own = QueueDeclareOptions {
            exclusive: true,
            auto_delete: true,
            ..Default::default()
        };
        let queue = declare(&listener, "", own, "declare the announcement queue").await?;
        bind(&listener, &queue, ANNOUNCE_EXCHANGE, "").await?;
        let announcements = consume(&listener, &queue, true, "consume announcements").await?;

        let link = Link {
            connection,
            publisher: Arc::new(publisher),
        };
        let lost = Arc::new(Notify::new());
        let mut tasks = Vec::new();
        let me = self
            .me
            .upgrade()
            .ok_or_else(|| Error::Broker("the server is stopping".into()))?;
        let mut consumers = vec![(unroutable_channel.clone(), unroutable.tag().to_string())];
        let mut serving = vec![tokio::spawn(me.clone().answer_unroutable(
            unroutable,
            unroutable_channel,
            link.clone(),
            lost.clone(),
        ))];

        // Handler side: one shared queue per hosted procedure.
        for spec in &self.hosted {
            let queue = queue_name(&spec.address);
            let (channel, consumer) = self
                .consume_shared(&link.connection, &queue, Some((CALL_EXCHANGE, &queue)))
                .await?;
            consumers.push((channel.clone(), consumer.tag().to_string()));
            serving.push(tokio::spawn(me.clone().serve_queue(
                consumer,
                channel,
                link.clone(),
                lost.clone(),
            )));
        }
        // The mesh: this server's push queue, and the connection events
        // its hooks take.
        if self.config.mesh_listen {
            tasks.extend(self.listen_for_orders(&link, &lost).await?);
            tasks.push(tokio::spawn(me.clone().report_presence(link.clone())));
        }
        if !self.config.mesh_hooks.is_empty() {
            let (channel, events) = self
                .consume_shared(&link.connection, super::mesh::EVENTS_QUEUE, None)
                .await?;
            consumers.push((channel.clone(), events.tag().to_string()));
            serving.push(tokio::spawn(me.clone().read_events(
                events,
                channel,
                lost.clone(),
            )));
        }
        tasks.push(tokio::spawn(me.clone().read_replies(replies, lost.clone())));
        tasks.push(tokio::spawn(me.clone().read_announcements(
            announcements,
            link.clone(),
            lost.clone(),
        )));
        if !self.hosted.is_empty() {
            tasks.push(tokio::spawn(me.clone().announce_periodically(link.clone())));
        }
        *self.link_slot() = Some(link.clone());
        let query = Announcement::Query {
            instance_id: self.handle.instance_id().to_owned(),
        };
        self.publish_announcement(&link, &query).await;
        Ok(Session {
            link,
            consumers,
            serving,
            tasks,
            lost,
        })
    }

    /// Connects to the first node that answers, from the one connected to
    /// last (or, after losing it, the next one).
    async fn open_connection(&self) -> Result<Connection, Error> {
        let name = format!("rpc:{}:{}", self.handle.name(), self.handle.instance_id());
        let uris = &self.config.uris;
        let first = self.node.load(Ordering::Relaxed);
        let mut failures = Vec::new();
        for offset in 0..uris.len() {
            let index = (first + offset) % uris.len();
            let uri = &uris[index];
            let properties =
                ConnectionProperties::default().with_connection_name(name.clone().into());
            match connect_to(uri, properties, &self.config.tls).await {
                Ok(connection) => {
                    self.node.store(index, Ordering::Relaxed);
                    return Ok(connection);
                }
                Err(error) => failures.push(format!("{}: {error}", redact(uri))),
            }
        }
        Err(Error::Broker(format!(
            "cannot connect to {}. Is RabbitMQ running? (`rabbitmq-server -detached` starts it)",
            failures.join("; ")
        )))
    }

    /// After a lost connection, the next reconnection starts with the next
    /// node: the one lost is likely down.
    fn next_node(&self) {
        self.node.fetch_add(1, Ordering::Relaxed);
    }

    /// Consumes, on a channel of its own with the prefetch, from a queue
    /// that every server serving it shares (declared and bound here). Such
    /// a queue goes when its last consumer does (auto-delete), which can
    /// happen between this server's declare and its consume: the broker
    /// then closes the channel (NOT_FOUND), and this is done again on a new
    /// channel, where the declare creates the queue anew.
    async fn consume_shared(
        &self,
        connection: &Connection,
        queue: &str,
        binding: Option<(&str, &str)>,
    ) -> Result<(Arc<Channel>, lapin::Consumer), Error> {
        const ATTEMPTS: usize = 3;
        let shared = QueueDeclareOptions {
            auto_delete: true,
            ..Default::default()
        };
        let mut attempt = 1;
        loop {
            let consumed = async {
                let channel = Arc::new(open_channel(connection).await?);
                channel
                    .basic_qos(self.config.prefetch, BasicQosOptions::default())
                    .await
                    .map_err(failed("set the prefetch"))?;
                declare(&channel, queue, shared, "declare a shared queue").await?;
                if let Some((exchange, key)) = binding {
                    bind(&channel, queue, exchange, key).await?;
                }
                let consumer = consume(&channel, queue, false, "consume a shared queue").await?;
                Ok((channel, consumer))
            }
            .await;
            match consumed {
                Err(_) if attempt < ATTEMPTS => attempt += 1,
                consumed => return consumed,
            }
        }
    }

    /// Forgets a lost connection: every call waiting for a reply fails now.
    fn drop_session(&self, session: Session) {
        *self.link_slot() = None;
        *self.push_slot() = None;
        for task in session.serving.into_iter().chain(session.tasks) {
            task.abort();
        }
        let waiting: Vec<Reply> = self.pending().drain().map(|(_, reply)| reply).collect();
        for reply in waiting {
            let _ = reply.send(Replied::error(RpcError::new(
                503,
                "the connection to the message broker was lost",
            )));
        }
    }

    /// A clean stop: take no more calls, finish the ones held, say goodbye.
    async fn drain(&self, mut session: Session) {
        for (channel, tag) in &session.consumers {
            let _ = channel
                .basic_cancel(tag.as_str().into(), BasicCancelOptions::default())
                .await;
        }
        // The calls delivered before the cancels may still wait in lapin's
        // buffers, uncounted: the queues' tasks end once they took them.
        // Then the calls this server runs, and the calls it forwarded,
        // whose replies come on this connection, finish.
        let finished = async {
            for task in &mut session.serving {
                let _ = task.await;
            }
            let busy = || self.in_flight.load(Ordering::Acquire) > 0 || !self.pending().is_empty();
            while busy() {
                let idle = self.idle.notified();
                if !busy() {
                    break;
                }
                idle.await;
            }
        };
        let _ = tokio::time::timeout(self.default_timeout, finished).await;
        // Every server says goodbye (one that hosts nothing withdraws
        // nothing): lapin writes publishes in the order they were queued,
        // and acknowledgements before them, so once the goodbye is written
        // every reply and acknowledgement queued before it is too, and the
        // close that follows loses none.
        self.publish_announcement(
            &session.link,
            &Announcement::Goodbye {
                instance_id: self.handle.instance_id().to_owned(),
            },
        )
        .await;
        let _ = session
            .link
            .connection
            .close(200, "shutting down".into())
            .await;
        self.drop_session(session);
    }
}

/// Maps a failed broker operation to an error that says which one.
fn failed(what: &'static str) -> impl Fn(lapin::Error) -> Error {
    move |error| Error::Broker(format!("cannot {what}: {error}"))
}

pub(super) async fn bind(
    channel: &Channel,
    queue: &str,
    exchange: &str,
    key: &str,
) -> Result<(), Error> {
    channel
        .queue_bind(
            queue.into(),
            exchange.into(),
            key.into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .map_err(failed("bind a queue"))
}

/// One node: over TLS (rustls) for `amqps://` URIs.
async fn connect_to(
    uri: &str,
    properties: ConnectionProperties,
    tls: &super::BrokerTls,
) -> Result<Connection, String> {
    if uri.starts_with("amqps://") && cfg!(not(feature = "tls")) {
        return Err("amqps:// needs the `tls` feature of rpc-runtime".into());
    }
    let runtime = lapin::runtime::default_runtime().map_err(|error| error.to_string())?;
    Connection::connect_with_config(uri, properties, tls.lapin_config(), runtime)
        .await
        .map_err(|error| error.to_string())
}

pub(super) async fn open_channel(connection: &Connection) -> Result<Channel, Error> {
    connection
        .create_channel()
        .await
        .map_err(failed("open a channel"))
}

/// Declares a queue (an empty name lets the broker name it); returns its name.
pub(super) async fn declare(
    channel: &Channel,
    name: &str,
    options: QueueDeclareOptions,
    what: &'static str,
) -> Result<String, Error> {
    let queue = channel
        .queue_declare(name.into(), options, FieldTable::default())
        .await
        .map_err(failed(what))?;
    Ok(queue.name().to_string())
}

pub(super) async fn consume(
    channel: &Channel,
    queue: &str,
    no_ack: bool,
    what: &'static str,
) -> Result<lapin::Consumer, Error> {
    let options = BasicConsumeOptions {
        no_ack,
        ..Default::default()
    };
    channel
        .basic_consume(queue.into(), "".into(), options, FieldTable::default())
        .await
        .map_err(failed(what))
}

async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}

/// The URI without its password, for messages.
pub(super) fn redact(uri: &str) -> String {
    match (uri.find("://"), uri.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &uri[scheme + 3..at];
            let user = credentials.split(':').next().unwrap_or_default();
            format!("{}{user}:***{}", &uri[..scheme + 3], &uri[at..])
        }
        _ => uri.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            super::redact("amqp://guest:secret@127.0.0.1:5672/%2f"),
            "amqp://guest:***@127.0.0.1:5672/%2f"
        );
        assert_eq!(super::redact("amqp://localhost"), "amqp://localhost");
    }
}
