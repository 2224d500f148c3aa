//! Forwarding calls between servers through RabbitMQ.
//!
//! A supervisor task owns the connection. While it is up, the server
//! forwards calls it does not host (gateway side), consumes the queues of
//! the procedures it hosts (handler side), announces them, and listens to
//! the announcements of others. When the connection is lost, calls waiting
//! for a reply fail at once with 503, and the supervisor reconnects with
//! backoff and declares everything again.
//!
//! Delivery is at most once: a call is acknowledged after it ran, and a
//! message the broker delivers again (because the server that held it died)
//! is dropped rather than run a second time; its caller gets 504 at the
//! deadline.

mod remote;
mod wire;

pub use remote::RemoteServer;

use crate::dispatch::{Dispatcher, Forward, deadline_in};
use crate::procedure::BoxFuture;
use crate::{Address, Call, Error, ProcedureSpec, RpcError, ServerHandle};
use futures_util::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
    ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind};
use remote::Remote;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, Weak};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, oneshot, watch};
use tokio::task::JoinHandle;
use wire::{
    ANNOUNCE_EXCHANGE, Announcement, CALL_EXCHANGE, CONTENT_TYPE, CallMessage, REPLY_TO,
    ReplyMessage, UNROUTABLE_EXCHANGE, UNROUTABLE_QUEUE, queue_name,
};

const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// The broker options.
#[derive(Clone, Debug)]
pub(crate) struct BrokerConfig {
    pub(crate) uri: String,
    pub(crate) retry_at_start: bool,
    pub(crate) announce_interval: Duration,
    pub(crate) prefetch: u16,
}

impl BrokerConfig {
    pub(crate) fn new(uri: String) -> Self {
        BrokerConfig {
            uri,
            retry_at_start: false,
            announce_interval: Duration::from_secs(5),
            prefetch: 64,
        }
    }
}

/// The state of a server's broker connection, as telemetry shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub enum BrokerState {
    /// Not connected yet, or reconnecting.
    Connecting,
    /// Connected, with the topology declared.
    Connected,
    /// Shut down.
    Stopped,
}

type Reply = oneshot::Sender<Result<Value, RpcError>>;

/// One live connection with the channel everything is published on; cheap
/// to clone (a lapin `Channel` is a bundle of a dozen `Arc`s, so it is
/// shared rather than cloned per call).
#[derive(Clone)]
struct Link {
    connection: Arc<Connection>,
    /// Publishes calls, replies and announcements, and consumes the replies
    /// to its calls from direct reply-to (which must be the same channel).
    publisher: Arc<Channel>,
}

/// What the supervisor holds while connected.
struct Session {
    link: Link,
    consumers: Vec<(Arc<Channel>, String)>,
    tasks: Vec<JoinHandle<()>>,
    lost: Arc<Notify>,
}

pub(crate) struct Broker {
    config: BrokerConfig,
    dispatcher: Weak<Dispatcher>,
    handle: ServerHandle,
    default_timeout: Duration,
    hosted: Vec<ProcedureSpec>,
    link: RwLock<Option<Link>>,
    /// Calls waiting for their reply, by the id their messages carry.
    pending: Mutex<HashMap<u64, Reply>>,
    next_id: AtomicU64,
    remote: Remote,
    state: watch::Sender<BrokerState>,
    in_flight: AtomicUsize,
    idle: Notify,
    me: Weak<Broker>,
}

impl Broker {
    pub(crate) fn new(config: BrokerConfig, dispatcher: &Arc<Dispatcher>) -> Arc<Self> {
        let hosted = dispatcher
            .registry
            .iter()
            .map(|local| local.spec.clone())
            .collect();
        Arc::new_cyclic(|me| Broker {
            config,
            dispatcher: Arc::downgrade(dispatcher),
            handle: dispatcher.handle.clone(),
            default_timeout: dispatcher.default_timeout(),
            hosted,
            link: RwLock::new(None),
            pending: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
            remote: Remote::default(),
            state: watch::Sender::new(BrokerState::Connecting),
            in_flight: AtomicUsize::new(0),
            idle: Notify::new(),
            me: me.clone(),
        })
    }

    pub(crate) fn state(&self) -> BrokerState {
        *self.state.borrow()
    }

    pub(crate) fn remote_servers(&self) -> Vec<RemoteServer> {
        self.remote.servers()
    }

    /// Starts the supervisor; resolves once the first connection is up, or
    /// with the error of the first attempt unless retrying was asked for.
    pub(crate) async fn start(
        self: &Arc<Self>,
        stop: watch::Receiver<bool>,
    ) -> Result<JoinHandle<()>, Error> {
        let (first_tx, first_rx) = oneshot::channel();
        let task = tokio::spawn(self.clone().supervise(first_tx, stop));
        match first_rx.await {
            Ok(Ok(())) => Ok(task),
            Ok(Err(error)) => {
                task.abort();
                Err(error)
            }
            Err(_) => Err(Error::Broker("the broker supervisor ended".into())),
        }
    }

    async fn supervise(
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
                    if let Some(first) = first.take() {
                        let _ = first.send(Ok(()));
                    }
                    self.state.send_replace(BrokerState::Connected);
                    let lost = session.lost.clone();
                    tokio::select! {
                        () = lost.notified() => {
                            tracing::warn!(server = %self.handle.name(), "lost the connection to the message broker");
                            self.drop_session(session);
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
        let name = format!("rpc:{}:{}", self.handle.name(), self.handle.instance_id());
        let properties = ConnectionProperties::default().with_connection_name(name.into());
        let connection = Connection::connect(&self.config.uri, properties).await.map_err(|error| {
            Error::Broker(format!(
                "cannot connect to {}: {error}. Is RabbitMQ running? (`rabbitmq-server -detached` starts it)",
                redact(&self.config.uri)
            ))
        })?;
        let connection = Arc::new(connection);

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

        // Calls nobody serves, answered with 404 by whichever server reads them.
        let listener = open_channel(&connection).await?;
        let shared = QueueDeclareOptions {
            auto_delete: true,
            ..Default::default()
        };
        declare(
            &listener,
            UNROUTABLE_QUEUE,
            shared,
            "declare the unroutable queue",
        )
        .await?;
        bind(&listener, UNROUTABLE_QUEUE, UNROUTABLE_EXCHANGE, "").await?;
        let unroutable = consume(
            &listener,
            UNROUTABLE_QUEUE,
            true,
            "consume the unroutable queue",
        )
        .await?;

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
        let mut consumers = Vec::new();
        let me = self
            .me
            .upgrade()
            .ok_or_else(|| Error::Broker("the server is stopping".into()))?;

        // Handler side: one shared queue per hosted procedure.
        if !self.hosted.is_empty() {
            let channel = Arc::new(open_channel(&link.connection).await?);
            channel
                .basic_qos(self.config.prefetch, BasicQosOptions::default())
                .await
                .map_err(failed("set the prefetch"))?;
            for spec in &self.hosted {
                let queue = declare(
                    &channel,
                    &queue_name(&spec.address),
                    shared,
                    "declare a procedure queue",
                )
                .await?;
                bind(&channel, &queue, CALL_EXCHANGE, &queue).await?;
                let consumer =
                    consume(&channel, &queue, false, "consume a procedure queue").await?;
                consumers.push((channel.clone(), consumer.tag().to_string()));
                tasks.push(tokio::spawn(me.clone().serve_queue(
                    consumer,
                    channel.clone(),
                    link.clone(),
                    lost.clone(),
                )));
            }
        }
        tasks.push(tokio::spawn(me.clone().read_replies(replies, lost.clone())));
        tasks.push(tokio::spawn(me.clone().answer_unroutable(
            unroutable,
            link.clone(),
            lost.clone(),
        )));
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
            tasks,
            lost,
        })
    }

    fn link_slot(&self) -> std::sync::RwLockWriteGuard<'_, Option<Link>> {
        self.link
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn current_link(&self) -> Option<Link> {
        self.link
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn pending(&self) -> MutexGuard<'_, HashMap<u64, Reply>> {
        self.pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Forgets a lost connection: every call waiting for a reply fails now.
    fn drop_session(&self, session: Session) {
        *self.link_slot() = None;
        for task in session.tasks {
            task.abort();
        }
        let waiting: Vec<Reply> = self.pending().drain().map(|(_, reply)| reply).collect();
        for reply in waiting {
            let _ = reply.send(Err(RpcError::new(
                503,
                "the connection to the message broker was lost",
            )));
        }
    }

    /// A clean stop: take no more calls, finish the ones held, say goodbye.
    async fn drain(&self, session: Session) {
        for (channel, tag) in &session.consumers {
            let _ = channel
                .basic_cancel(tag.as_str().into(), BasicCancelOptions::default())
                .await;
        }
        let finished = async {
            while self.in_flight.load(Ordering::Acquire) > 0 {
                let idle = self.idle.notified();
                if self.in_flight.load(Ordering::Acquire) == 0 {
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

    async fn read_replies(self: Arc<Self>, mut replies: lapin::Consumer, lost: Arc<Notify>) {
        while let Some(Ok(delivery)) = replies.next().await {
            let Some(id) = delivery
                .properties
                .correlation_id()
                .as_ref()
                .and_then(|id| wire::parse_correlation_id(id.as_str()))
            else {
                continue;
            };
            let Some(reply) = self.pending().remove(&id) else {
                continue;
            };
            let result = serde_json::from_slice::<ReplyMessage>(&delivery.data)
                .map_err(|_| RpcError::new(502, "a handler server sent a malformed reply"))
                .and_then(ReplyMessage::into_result);
            let _ = reply.send(result);
        }
        lost.notify_one();
    }

    /// Answers 404 to the calls the call exchange could route nowhere
    /// (whichever server published them: the reply goes to its reply-to).
    async fn answer_unroutable(
        self: Arc<Self>,
        mut unroutable: lapin::Consumer,
        link: Link,
        lost: Arc<Notify>,
    ) {
        while let Some(Ok(delivery)) = unroutable.next().await {
            let (Some(reply_to), Some(correlation_id)) = (
                delivery.properties.reply_to(),
                delivery.properties.correlation_id(),
            ) else {
                continue;
            };
            let error = match serde_json::from_slice::<CallMessage>(&delivery.data) {
                Ok(message) => not_found(&message.address),
                Err(_) => RpcError::not_found("no such procedure"),
            };
            publish_reply(&link, reply_to.clone(), correlation_id.clone(), Err(error));
        }
        lost.notify_one();
    }

    async fn read_announcements(
        self: Arc<Self>,
        mut announcements: lapin::Consumer,
        link: Link,
        lost: Arc<Notify>,
    ) {
        while let Some(Ok(delivery)) = announcements.next().await {
            let Ok(announcement) = serde_json::from_slice::<Announcement>(&delivery.data) else {
                continue;
            };
            match &announcement {
                Announcement::Query { instance_id }
                    if instance_id != self.handle.instance_id() && !self.hosted.is_empty() =>
                {
                    self.publish_announcement(&link, &self.announcement()).await;
                }
                Announcement::Announce { instance_id, .. }
                | Announcement::Goodbye { instance_id }
                    if instance_id != self.handle.instance_id() =>
                {
                    self.remote.apply(announcement);
                }
                _ => {}
            }
        }
        lost.notify_one();
    }

    fn announcement(&self) -> Announcement {
        Announcement::Announce {
            instance_id: self.handle.instance_id().to_owned(),
            server: self.handle.name().to_owned(),
            interval_ms: self.config.announce_interval.as_millis() as u64,
            procedures: self.hosted.clone(),
        }
    }

    async fn announce_periodically(self: Arc<Self>, link: Link) {
        let mut every = tokio::time::interval(self.config.announce_interval);
        loop {
            every.tick().await;
            self.publish_announcement(&link, &self.announcement()).await;
        }
    }

    async fn publish_announcement(&self, link: &Link, announcement: &Announcement) {
        let Ok(payload) = serde_json::to_vec(announcement) else {
            return;
        };
        let properties = BasicProperties::default().with_content_type(CONTENT_TYPE.into());
        let _ = link
            .publisher
            .basic_publish(
                ANNOUNCE_EXCHANGE.into(),
                "".into(),
                BasicPublishOptions::default(),
                &payload,
                properties,
            )
            .await;
    }

    /// Handler side: runs every call delivered on one procedure queue.
    async fn serve_queue(
        self: Arc<Self>,
        mut consumer: lapin::Consumer,
        channel: Arc<Channel>,
        link: Link,
        lost: Arc<Notify>,
    ) {
        while let Some(delivery) = consumer.next().await {
            let Ok(delivery) = delivery else { break };
            self.in_flight.fetch_add(1, Ordering::AcqRel);
            let me = self.clone();
            let link = link.clone();
            let channel = channel.clone();
            let mut serving = Box::pin(async move {
                me.serve_delivery(delivery, &channel, &link).await;
                if me.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
                    me.idle.notify_waiters();
                }
            });
            // Most calls finish in their first poll, reply and
            // acknowledgement queued: they run here, without a task of
            // their own. A call that waits goes on running in one, so that
            // the queue's next calls do not wait for it.
            if futures_util::FutureExt::now_or_never(serving.as_mut()).is_none() {
                tokio::spawn(serving);
            }
        }
        // The stream also ends when the consumer is cancelled at shutdown;
        // the supervisor is draining then and ignores the notification.
        lost.notify_one();
    }

    /// Runs one delivered call, then queues its reply and its
    /// acknowledgement.
    ///
    /// The acknowledgement goes straight to the consuming channel rather
    /// than through `Delivery::ack`, which routes it through lapin's
    /// internal task. Neither write is waited for (see [`queue`]); the
    /// goodbye a draining server publishes last is written after them.
    async fn serve_delivery(
        &self,
        delivery: lapin::message::Delivery,
        channel: &Channel,
        link: &Link,
    ) {
        let ack = || queue(channel.basic_ack(delivery.delivery_tag, BasicAckOptions::default()));
        // At most once: a message delivered again may already have run.
        if delivery.redelivered {
            ack();
            return;
        }
        let reply_to = delivery.properties.reply_to().clone();
        let correlation_id = delivery.properties.correlation_id().clone();
        let result = match serde_json::from_slice::<CallMessage>(&delivery.data) {
            Ok(message) if message.timeout_ms == 0 => {
                ack();
                return;
            }
            Ok(message) => {
                let call = Call {
                    address: message.address,
                    args: message.args,
                    identity: message.identity,
                    internal: message.internal,
                    caller: message.caller,
                    trace_id: message.trace_id,
                    deadline: Some(deadline_in(Duration::from_millis(message.timeout_ms))),
                };
                match self.dispatcher.upgrade() {
                    Some(dispatcher) => dispatcher.dispatch(call).await,
                    None => Err(RpcError::new(503, "the handler server is stopping")),
                }
            }
            Err(error) => Err(RpcError::bad_request(format!(
                "malformed call message: {error}"
            ))),
        };
        if let (Some(reply_to), Some(correlation_id)) = (reply_to, correlation_id) {
            publish_reply(link, reply_to, correlation_id, result);
        }
        ack();
    }

    /// Gateway side: checks what the announcement allows at the edge, then
    /// publishes and waits for the reply until the deadline.
    async fn forward_call(&self, call: Call) -> Result<Value, RpcError> {
        let remote = self.remote.get(&call.address);
        let mut timeout = self.default_timeout;
        if let Some(remote) = &remote {
            if remote.spec.internal && !call.internal {
                return Err(RpcError::forbidden(format!(
                    "{} is internal: only other procedures may call it",
                    call.address
                )));
            }
            if remote.spec.auth
                && let Some(dispatcher) = self.dispatcher.upgrade()
            {
                dispatcher.authenticate(call.identity.as_ref()).await?;
            }
            remote.validate(&call.args)?;
            if let Some(ms) = remote.spec.timeout_ms {
                timeout = Duration::from_millis(ms);
            }
        }
        let Some(link) = self.current_link() else {
            return Err(RpcError::new(503, "the message broker is unreachable"));
        };
        // Under a resource alarm RabbitMQ takes nothing from publishers:
        // a call would only wait in the connection's buffer.
        if link.connection.status().blocked() {
            return Err(RpcError::new(
                503,
                "the message broker is refusing messages (resource alarm)",
            ));
        }
        let own_deadline = deadline_in(timeout);
        let deadline = call.deadline.map_or(own_deadline, |d| d.min(own_deadline));
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining < Duration::from_millis(1) {
            return Err(deadline_passed(&call.address));
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (reply, answer) = oneshot::channel();
        let _waiting = Waiting::new(self, id, reply);
        let message = CallMessage {
            address: call.address,
            args: call.args,
            identity: call.identity,
            internal: call.internal,
            caller: call.caller,
            trace_id: call.trace_id,
            timeout_ms: u64::try_from(remaining.as_millis()).unwrap_or(u64::MAX),
        };
        // Room for a typical call message, so that writing it rarely grows
        // the buffer.
        let mut payload = Vec::with_capacity(512);
        serde_json::to_writer(&mut payload, &message).map_err(|_| RpcError::internal())?;
        let address = message.address;
        let routing_key = match &remote {
            Some(remote) => remote.queue.clone(),
            None => queue_name(&address).into(),
        };
        let properties = BasicProperties::default()
            .with_correlation_id(wire::correlation_id(id))
            .with_reply_to(REPLY_TO.into())
            .with_expiration(wire::expiration(remaining))
            .with_content_type(CONTENT_TYPE.into());
        // Without `mandatory` and confirms: a call no queue takes goes to the
        // alternate exchange, and the 404 comes back as its reply.
        let publish = link.publisher.basic_publish(
            CALL_EXCHANGE.into(),
            routing_key,
            BasicPublishOptions::default(),
            &payload,
            properties,
        );
        if let Some(Err(_)) = queue(publish) {
            return Err(RpcError::new(503, "the message broker is unreachable"));
        }
        let exchange = async {
            answer.await.unwrap_or_else(|_| {
                Err(RpcError::new(
                    503,
                    "the connection to the message broker was lost",
                ))
            })
        };
        tokio::time::timeout_at(deadline.into(), exchange)
            .await
            .unwrap_or_else(|_| Err(deadline_passed(&address)))
    }
}

/// Maps a failed broker operation to an error that says which one.
fn failed(what: &'static str) -> impl Fn(lapin::Error) -> Error {
    move |error| Error::Broker(format!("cannot {what}: {error}"))
}

async fn bind(channel: &Channel, queue: &str, exchange: &str, key: &str) -> Result<(), Error> {
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

/// Queues a broker operation: lapin queues the frames of a publish or an
/// acknowledgement in the first poll of its future, which then waits for
/// them to be written. Waiting for that would only wake the task once more;
/// a write that fails loses the connection, which fails every call waiting
/// for a reply with 503. Yields the result if it is known at once (an
/// error, when the channel is closed).
fn queue<F: std::future::Future>(operation: F) -> Option<F::Output> {
    futures_util::FutureExt::now_or_never(operation)
}

/// Queues the answer to a call for the reply-to address it came with.
fn publish_reply(
    link: &Link,
    reply_to: lapin::types::ShortString,
    correlation_id: lapin::types::ShortString,
    result: Result<Value, RpcError>,
) {
    let Ok(payload) = serde_json::to_vec(&ReplyMessage::from_result(result)) else {
        return;
    };
    let properties = BasicProperties::default()
        .with_correlation_id(correlation_id)
        .with_content_type(CONTENT_TYPE.into());
    queue(link.publisher.basic_publish(
        "".into(),
        reply_to,
        BasicPublishOptions::default(),
        &payload,
        properties,
    ));
}

async fn open_channel(connection: &Connection) -> Result<Channel, Error> {
    connection
        .create_channel()
        .await
        .map_err(failed("open a channel"))
}

/// Declares a queue (an empty name lets the broker name it); returns its name.
async fn declare(
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

async fn consume(
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

fn not_found(address: &Address) -> RpcError {
    RpcError::not_found(format!(
        "no procedure {:?} in scope {:?} with version {:?}",
        address.procedure, address.scope, address.version
    ))
}

fn deadline_passed(address: &Address) -> RpcError {
    RpcError::new(504, format!("{address} did not answer before the deadline"))
}

/// The URI without its password, for messages.
fn redact(uri: &str) -> String {
    match (uri.find("://"), uri.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &uri[scheme + 3..at];
            let user = credentials.split(':').next().unwrap_or_default();
            format!("{}{user}:***{}", &uri[..scheme + 3], &uri[at..])
        }
        _ => uri.to_owned(),
    }
}

/// A reply being waited for; forgotten when the wait ends, however it ends.
struct Waiting<'a> {
    broker: &'a Broker,
    id: u64,
}

impl<'a> Waiting<'a> {
    fn new(broker: &'a Broker, id: u64, reply: Reply) -> Self {
        broker.pending().insert(id, reply);
        Waiting { broker, id }
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.broker.pending().remove(&self.id);
    }
}

impl Forward for Broker {
    fn forward(&self, call: Call) -> BoxFuture<Result<Value, RpcError>> {
        let Some(me) = self.me.upgrade() else {
            return Box::pin(async { Err(RpcError::new(503, "the server is stopping")) });
        };
        Box::pin(async move { me.forward_call(call).await })
    }

    fn remote_procedures(&self) -> Vec<ProcedureSpec> {
        self.remote.procedures()
    }

    fn status(&self) -> Value {
        serde_json::json!({
            "state": self.state(),
            "blocked": self.current_link().is_some_and(|link| link.connection.status().blocked()),
            "uri": redact(&self.config.uri),
            "pendingReplies": self.pending().len(),
            "callsHeld": self.in_flight.load(Ordering::Relaxed),
            "servers": self.remote.servers(),
        })
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
