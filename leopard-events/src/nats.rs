//! NATS JetStream relay and consumer (feature `nats`); PostgreSQL stays the source of truth.
//!
//! - [`NatsRelay`] is an [`EventHandler`] (`nats.relay`, every event type, not transactional)
//!   that publishes each committed event as JSON to `<prefix>.<tenant_slug>.<event_type>` on a
//!   JetStream stream ([`ensure_stream`]), with `Nats-Msg-Id: <event id>` so the stream drops
//!   the duplicates of the bus's retries within its duplicate window. The handler awaits the
//!   publish acknowledgement: a failed publish fails the handler and the bus retries it with
//!   its backoff. In-flight publishes are bounded ([`RelayConfig::max_in_flight`]).
//! - [`NatsConsumer`] is a durable pull consumer on that stream: it decodes each message's
//!   [`Event`], runs a [`HandlerRegistry`]'s handlers for it, acknowledges only after they all
//!   succeeded and otherwise naks with a growing delay. Delivery is at least once: the consumer
//!   skips redeliveries of events it already completed within a bounded window
//!   ([`ConsumerConfig::dedupe_window`]), but across consumer restarts a handler may see an
//!   event twice, so handlers dedupe by event id (or are idempotent).
//!
//! The relay cannot be built by [`crate::register_handler!`] (it needs a connection): add it
//! with [`HandlerRegistry::with`]. See `docs/events-nats.md`.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_nats::jetstream::consumer::pull;
use async_nats::jetstream::{self, stream, AckKind, Context};
use async_trait::async_trait;
use futures::StreamExt as _;
use leopard_tenancy::TenantRegistry;
use tokio::sync::{watch, Semaphore};
use tokio::task::{JoinHandle, JoinSet};
use uuid::Uuid;

use crate::handler::{EventHandler, HandlerContext, HandlerError, HandlerRegistry};
use crate::{Backoff, Event};

/// The NATS client crate, re-exported for embedders (clients, stream inspection).
pub use async_nats;

/// The relay's handler name.
pub const RELAY_NAME: &str = "nats.relay";

/// A NATS failure of the relay or the consumer.
#[derive(Debug, thiserror::Error)]
pub enum NatsError {
    /// The server could not be reached.
    #[error("cannot connect to NATS at {url}: {message}")]
    Connect {
        /// The server address.
        url: String,
        /// Why.
        message: String,
    },
    /// A JetStream request failed.
    #[error("JetStream {what} failed: {message}")]
    JetStream {
        /// What was attempted.
        what: &'static str,
        /// Why it failed.
        message: String,
    },
    /// A stream name, subject prefix or consumer name is malformed.
    #[error("invalid {what}: {value:?}")]
    Invalid {
        /// What was invalid.
        what: &'static str,
        /// The offending value.
        value: String,
    },
}

impl NatsError {
    fn js(what: &'static str, err: impl std::fmt::Display) -> Self {
        Self::JetStream {
            what,
            message: err.to_string(),
        }
    }
}

/// Connects to the NATS server at `url` (reconnecting forever after the first connection).
pub async fn connect(url: &str) -> Result<async_nats::Client, NatsError> {
    async_nats::ConnectOptions::new()
        .name("leopard-events")
        .connect(url)
        .await
        .map_err(|err| NatsError::Connect {
            url: url.to_owned(),
            message: err.to_string(),
        })
}

/// Makes sure the file-stored stream `name` exists and captures `subjects` (added to an
/// existing stream's subjects if missing), with `duplicate_window` as its `Nats-Msg-Id`
/// deduplication window when it is created.
pub async fn ensure_stream(
    js: &Context,
    name: &str,
    subjects: &[String],
    duplicate_window: Duration,
) -> Result<stream::Stream, NatsError> {
    if !valid_name(name) {
        return Err(NatsError::Invalid {
            what: "stream name",
            value: name.to_owned(),
        });
    }
    let mut stream = js
        .get_or_create_stream(stream::Config {
            name: name.to_owned(),
            subjects: subjects.to_vec(),
            storage: stream::StorageType::File,
            duplicate_window,
            ..stream::Config::default()
        })
        .await
        .map_err(|e| NatsError::js("stream creation", e))?;
    let mut config = stream
        .info()
        .await
        .map_err(|e| NatsError::js("stream info", e))?
        .config
        .clone();
    let missing: Vec<String> = subjects
        .iter()
        .filter(|s| !config.subjects.contains(s))
        .cloned()
        .collect();
    if !missing.is_empty() {
        config.subjects.extend(missing);
        js.update_stream(config)
            .await
            .map_err(|e| NatsError::js("stream update", e))?;
        stream = js
            .get_stream(name)
            .await
            .map_err(|e| NatsError::js("stream lookup", e))?;
    }
    Ok(stream)
}

/// Whether `name` can name a stream or a consumer (no whitespace, `.`, `*`, `>`, `/`, `\`).
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 200
        && !name
            .chars()
            .any(|c| c.is_whitespace() || matches!(c, '.' | '*' | '>' | '/' | '\\'))
}

/// One subject token: whitespace and wildcards become `_`, as does an empty token.
fn token(part: &str) -> String {
    if part.is_empty() {
        return "_".to_owned();
    }
    part.chars()
        .map(|c| {
            if c.is_whitespace() || matches!(c, '*' | '>') {
                '_'
            } else {
                c
            }
        })
        .collect()
}

/// The subject of `event` under `prefix`: `<prefix>.<tenant_slug>.<event_type>`, the event
/// type's dots kept as token separators (`crm.acme.Client.assigned_to.UPDATE`); whitespace,
/// wildcards and empty tokens are replaced by `_`.
pub fn subject(prefix: &str, event: &Event) -> String {
    let mut subject = String::with_capacity(prefix.len() + 64);
    subject.push_str(prefix);
    subject.push('.');
    subject.push_str(&token(&event.tenant_slug.replace('.', "_")));
    for part in event.event_type.split('.') {
        subject.push('.');
        subject.push_str(&token(part));
    }
    subject
}

/// How the relay publishes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayConfig {
    /// The JetStream stream (created if missing, capturing `<subject_prefix>.>`).
    pub stream: String,
    /// The first subject token(s), e.g. `leopard.events`.
    pub subject_prefix: String,
    /// The stream's deduplication window when the relay creates it (default 10 minutes): a
    /// retry of the same event within it is dropped by the stream.
    pub duplicate_window: Duration,
    /// Publishes awaiting their acknowledgement at once (default 1,024).
    pub max_in_flight: usize,
    /// How long a publish waits for its acknowledgement (default 5 s).
    pub publish_timeout: Duration,
}

impl RelayConfig {
    /// Defaults for `stream` and `subject_prefix`.
    pub fn new(stream: &str, subject_prefix: &str) -> Self {
        Self {
            stream: stream.to_owned(),
            subject_prefix: subject_prefix.to_owned(),
            duplicate_window: Duration::from_secs(600),
            max_in_flight: 1024,
            publish_timeout: Duration::from_secs(5),
        }
    }
}

/// What the relay has done.
#[derive(Debug, Default)]
pub struct RelayStats {
    /// Events the stream stored.
    pub published: AtomicU64,
    /// Publishes the stream recognised as duplicates (retries after a lost acknowledgement).
    pub duplicates: AtomicU64,
    /// Failed publishes (the bus retries them).
    pub failed: AtomicU64,
}

/// Publishes committed events to JetStream; an [`EventHandler`] run by the bus.
pub struct NatsRelay {
    js: Context,
    config: RelayConfig,
    in_flight: Arc<Semaphore>,
    stats: Arc<RelayStats>,
}

impl std::fmt::Debug for NatsRelay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsRelay")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl NatsRelay {
    /// Connects to `url` and ensures `stream` captures `<prefix>.>`, with default settings.
    pub async fn connect(url: &str, stream: &str, prefix: &str) -> Result<Self, NatsError> {
        Self::with_client(connect(url).await?, RelayConfig::new(stream, prefix)).await
    }

    /// A relay over an existing client; ensures the stream.
    pub async fn with_client(
        client: async_nats::Client,
        config: RelayConfig,
    ) -> Result<Self, NatsError> {
        let prefix_ok = !config.subject_prefix.is_empty()
            && config
                .subject_prefix
                .split('.')
                .all(|t| !t.is_empty() && token(t) == t);
        if !prefix_ok {
            return Err(NatsError::Invalid {
                what: "subject prefix",
                value: config.subject_prefix,
            });
        }
        let mut js = jetstream::new(client);
        js.set_timeout(config.publish_timeout);
        ensure_stream(
            &js,
            &config.stream,
            &[format!("{}.>", config.subject_prefix)],
            config.duplicate_window,
        )
        .await?;
        Ok(Self {
            js,
            in_flight: Arc::new(Semaphore::new(config.max_in_flight.max(1))),
            config,
            stats: Arc::default(),
        })
    }

    /// The JetStream context (to inspect the stream, e.g. in tests).
    pub fn jetstream(&self) -> &Context {
        &self.js
    }

    /// Its settings.
    pub fn config(&self) -> &RelayConfig {
        &self.config
    }

    /// Its counters.
    pub fn stats(&self) -> Arc<RelayStats> {
        Arc::clone(&self.stats)
    }

    /// Publishes `event` and waits for the stream's acknowledgement.
    pub async fn publish(&self, event: &Event) -> Result<(), HandlerError> {
        let payload = serde_json::to_vec(event)
            .map_err(|e| HandlerError::new(format!("event serialisation failed: {e}")))?;
        let _permit = self
            .in_flight
            .acquire()
            .await
            .map_err(|e| HandlerError::new(e.to_string()))?;
        let result = async {
            let ack = self
                .js
                .send_publish(
                    subject(&self.config.subject_prefix, event),
                    jetstream::message::PublishMessage::build()
                        .payload(payload.into())
                        .message_id(event.id.to_string()),
                )
                .await
                .map_err(|e| HandlerError::new(format!("NATS publish failed: {e}")))?;
            ack.await
                .map_err(|e| HandlerError::new(format!("NATS publish not acknowledged: {e}")))
        }
        .await;
        match result {
            Ok(ack) if ack.duplicate => {
                self.stats.duplicates.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            Ok(_) => {
                self.stats.published.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            Err(err) => {
                self.stats.failed.fetch_add(1, Ordering::Relaxed);
                Err(err)
            }
        }
    }
}

#[async_trait]
impl EventHandler for NatsRelay {
    fn name(&self) -> &'static str {
        RELAY_NAME
    }

    fn event_types(&self) -> &'static [&'static str] {
        &["*"]
    }

    fn transactional(&self) -> bool {
        false
    }

    async fn handle(
        &self,
        _ctx: &mut HandlerContext<'_>,
        event: &Event,
    ) -> Result<(), HandlerError> {
        self.publish(event).await
    }
}

/// How the consumer runs.
#[derive(Debug, Clone, PartialEq)]
pub struct ConsumerConfig {
    /// The durable consumer's name (its position survives restarts of both sides).
    pub durable: String,
    /// Only these subjects (`leopard.events.acme.>`); every subject of the stream if `None`.
    pub filter_subject: Option<String>,
    /// How long the server waits for an acknowledgement before redelivering (default 30 s).
    pub ack_wait: Duration,
    /// Deliveries before the server gives up on a message (default -1: never).
    pub max_deliver: i64,
    /// Messages processed at once (default 64).
    pub concurrency: usize,
    /// Delay of a redelivery after failed handlers: `backoff.delay(delivery)` (default 1 s ×
    /// delivery², ± 10 %, at most 5 minutes).
    pub backoff: Backoff,
    /// Recently completed event ids remembered to skip redeliveries (default 100,000).
    pub dedupe_window: usize,
}

impl ConsumerConfig {
    /// Defaults for the durable consumer `durable`.
    pub fn new(durable: &str) -> Self {
        Self {
            durable: durable.to_owned(),
            filter_subject: None,
            ack_wait: Duration::from_secs(30),
            max_deliver: -1,
            concurrency: 64,
            backoff: Backoff {
                unit: Duration::from_secs(1),
                exponent: 2,
                jitter: 0.1,
                cap: Duration::from_secs(300),
            },
            dedupe_window: 100_000,
        }
    }
}

/// What the consumer has done.
#[derive(Debug, Default)]
pub struct ConsumerStats {
    /// Messages received (redeliveries included).
    pub delivered: AtomicU64,
    /// Events whose handlers all succeeded.
    pub completed: AtomicU64,
    /// Redeliveries of completed events, acknowledged without running handlers.
    pub duplicates: AtomicU64,
    /// Messages negatively acknowledged (a handler failed or the tenant is unknown).
    pub nacked: AtomicU64,
    /// Messages that were not events (terminated, never redelivered).
    pub undecodable: AtomicU64,
    /// Acknowledgements that could not be sent.
    pub ack_failures: AtomicU64,
    /// Handler runs.
    pub handler_runs: AtomicU64,
}

/// A bounded memory of completed event ids (oldest forgotten first).
#[derive(Debug, Default)]
struct Seen {
    ids: HashSet<Uuid>,
    order: VecDeque<Uuid>,
}

impl Seen {
    fn insert(&mut self, id: Uuid, cap: usize) {
        if cap == 0 || !self.ids.insert(id) {
            return;
        }
        self.order.push_back(id);
        while self.order.len() > cap {
            if let Some(old) = self.order.pop_front() {
                self.ids.remove(&old);
            }
        }
    }
}

struct Inner {
    js: Context,
    stream: String,
    config: ConsumerConfig,
    tenants: Arc<TenantRegistry>,
    handlers: HandlerRegistry,
    seen: Mutex<Seen>,
    /// Handlers that succeeded for events not yet completed (a redelivery skips them).
    partial: Mutex<HashMap<Uuid, HashSet<&'static str>>>,
    stats: Arc<ConsumerStats>,
}

/// A durable pull consumer running a [`HandlerRegistry`]'s handlers for each relayed event.
pub struct NatsConsumer {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for NatsConsumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsConsumer")
            .field("stream", &self.inner.stream)
            .field("config", &self.inner.config)
            .field("handlers", &self.inner.handlers)
            .finish_non_exhaustive()
    }
}

impl NatsConsumer {
    /// Connects to `url` and creates (or reuses) the durable consumer on `stream`; `tenants`
    /// gives the handlers their tenant.
    pub async fn connect(
        url: &str,
        stream: &str,
        config: ConsumerConfig,
        tenants: Arc<TenantRegistry>,
        handlers: HandlerRegistry,
    ) -> Result<Self, NatsError> {
        Self::new(
            jetstream::new(connect(url).await?),
            stream,
            config,
            tenants,
            handlers,
        )
        .await
    }

    /// A consumer over an existing JetStream context; creates (or reuses) the durable consumer.
    pub async fn new(
        js: Context,
        stream: &str,
        config: ConsumerConfig,
        tenants: Arc<TenantRegistry>,
        handlers: HandlerRegistry,
    ) -> Result<Self, NatsError> {
        if !valid_name(&config.durable) {
            return Err(NatsError::Invalid {
                what: "consumer name",
                value: config.durable,
            });
        }
        let inner = Arc::new(Inner {
            js,
            stream: stream.to_owned(),
            config,
            tenants,
            handlers,
            seen: Mutex::default(),
            partial: Mutex::default(),
            stats: Arc::default(),
        });
        inner.consumer().await?;
        Ok(Self { inner })
    }

    /// Its counters.
    pub fn stats(&self) -> Arc<ConsumerStats> {
        Arc::clone(&self.inner.stats)
    }

    /// Starts pulling and processing messages until [`ConsumerRunning::shutdown`].
    pub fn start(&self) -> ConsumerRunning {
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(run(Arc::clone(&self.inner), stopped));
        ConsumerRunning { stop, task }
    }
}

/// A running consumer.
#[derive(Debug)]
pub struct ConsumerRunning {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl ConsumerRunning {
    /// Stops pulling and waits for the messages in progress.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        if let Err(err) = self.task.await {
            tracing::error!(%err, "NATS consumer task failed");
        }
    }
}

impl Inner {
    async fn consumer(&self) -> Result<jetstream::consumer::Consumer<pull::Config>, NatsError> {
        let stream = self
            .js
            .get_stream(&self.stream)
            .await
            .map_err(|e| NatsError::js("stream lookup", e))?;
        let max_ack_pending = i64::try_from(self.config.concurrency.max(1) * 4).unwrap_or(1024);
        stream
            .get_or_create_consumer(
                &self.config.durable,
                pull::Config {
                    durable_name: Some(self.config.durable.clone()),
                    ack_policy: jetstream::consumer::AckPolicy::Explicit,
                    ack_wait: self.config.ack_wait,
                    max_deliver: self.config.max_deliver,
                    max_ack_pending,
                    filter_subject: self.config.filter_subject.clone().unwrap_or_default(),
                    ..pull::Config::default()
                },
            )
            .await
            .map_err(|e| NatsError::js("consumer creation", e))
    }

    fn seen(&self, id: Uuid) -> bool {
        self.seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .ids
            .contains(&id)
    }

    /// Handles one message: decode, skip a completed event, run the handlers, ack or nak.
    async fn process(&self, message: jetstream::Message) {
        self.stats.delivered.fetch_add(1, Ordering::Relaxed);
        let delivery = message
            .info()
            .map(|i| u32::try_from(i.delivered).unwrap_or(1))
            .unwrap_or(1)
            .max(1);
        let mut event: Event = match serde_json::from_slice(&message.payload) {
            Ok(event) => event,
            Err(err) => {
                tracing::error!(subject = %message.subject, %err, "NATS message is not an event");
                self.stats.undecodable.fetch_add(1, Ordering::Relaxed);
                self.acknowledge(&message, AckKind::Term).await;
                return;
            }
        };
        if self.seen(event.id) {
            self.stats.duplicates.fetch_add(1, Ordering::Relaxed);
            self.acknowledge(&message, AckKind::Ack).await;
            return;
        }
        event.attempt = i32::try_from(delivery).unwrap_or(i32::MAX);
        match self.run_handlers(&event).await {
            Ok(()) => {
                self.partial
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .remove(&event.id);
                self.seen
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(event.id, self.config.dedupe_window);
                self.stats.completed.fetch_add(1, Ordering::Relaxed);
                self.acknowledge(&message, AckKind::Ack).await;
            }
            Err(error) => {
                tracing::warn!(event = %event.id, event_type = %event.event_type, delivery, %error, "NATS event handlers failed");
                self.stats.nacked.fetch_add(1, Ordering::Relaxed);
                let delay = self.config.backoff.delay(delivery);
                self.acknowledge(&message, AckKind::Nak(Some(delay))).await;
            }
        }
    }

    async fn acknowledge(&self, message: &jetstream::Message, kind: AckKind) {
        if let Err(err) = message.ack_with(kind).await {
            self.stats.ack_failures.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(subject = %message.subject, %err, "NATS acknowledgement failed");
        }
    }

    /// Runs the handlers of `event` that have not succeeded yet; transactional ones in a tenant
    /// transaction committed on success.
    async fn run_handlers(&self, event: &Event) -> Result<(), String> {
        let Some(info) = self.tenants.resolve_slug(&event.tenant_slug) else {
            return Err(format!(
                "tenant {:?} is not in the registry",
                event.tenant_slug
            ));
        };
        let tenant = self.tenants.context(info);
        let done = self
            .partial
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&event.id)
            .cloned()
            .unwrap_or_default();
        let mut errors = Vec::new();
        for handler in self.handlers.for_type(&event.event_type) {
            if done.contains(handler.name()) {
                continue;
            }
            self.stats.handler_runs.fetch_add(1, Ordering::Relaxed);
            // No success rows here: the consumer remembers finished handlers itself.
            let result = crate::worker::run_handler(handler.as_ref(), &tenant, event, false).await;
            match result {
                Ok(()) => {
                    self.partial
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .entry(event.id)
                        .or_default()
                        .insert(handler.name());
                }
                Err(error) => errors.push(format!("{}: {error}", handler.name())),
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors.join("; "))
        }
    }
}

async fn run(inner: Arc<Inner>, mut stop: watch::Receiver<bool>) {
    let permits = Arc::new(Semaphore::new(inner.config.concurrency.max(1)));
    let mut tasks = JoinSet::new();
    'outer: while !*stop.borrow() {
        let messages = match inner.consumer().await {
            Ok(consumer) => consumer
                .stream()
                .max_messages_per_batch(inner.config.concurrency.max(1))
                .messages()
                .await
                .map_err(|e| NatsError::js("pull", e)),
            Err(err) => Err(err),
        };
        match messages {
            Ok(mut messages) => loop {
                tokio::select! {
                    _ = stop.changed() => break 'outer,
                    next = messages.next() => match next {
                        Some(Ok(message)) => {
                            let Ok(permit) = Arc::clone(&permits).acquire_owned().await else {
                                break 'outer;
                            };
                            let inner = Arc::clone(&inner);
                            tasks.spawn(async move {
                                inner.process(message).await;
                                drop(permit);
                            });
                            while tasks.try_join_next().is_some() {}
                        }
                        Some(Err(err)) => {
                            use pull::MessagesErrorKind as Kind;
                            tracing::warn!(%err, "NATS pull stream error");
                            if matches!(
                                err.kind(),
                                Kind::ConsumerDeleted
                                    | Kind::PushBasedConsumer
                                    | Kind::RequestLimitExceeded
                            ) {
                                break;
                            }
                        }
                        None => break,
                    }
                }
            },
            Err(err) => tracing::warn!(%err, "NATS consumer unavailable; retrying"),
        }
        tokio::select! {
            _ = stop.changed() => break,
            () = tokio::time::sleep(Duration::from_millis(250)) => {}
        }
    }
    while tasks.join_next().await.is_some() {}
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;
    use crate::Action;

    fn event(slug: &str, event_type: &str) -> Event {
        Event {
            id: Uuid::now_v7(),
            tenant_id: 1,
            tenant_slug: slug.to_owned(),
            event_type: event_type.to_owned(),
            entity_type: "Client".to_owned(),
            entity_id: "1".to_owned(),
            action: Action::Update,
            previous: None,
            current: None,
            changed_fields: Vec::new(),
            actor_id: None,
            occurred_at: Utc::now(),
            attempt: 1,
        }
    }

    #[test]
    fn the_subject_is_prefix_tenant_and_event_type_tokens() {
        assert_eq!(
            subject(
                "leopard.events",
                &event("acme", "Client.assigned_to.UPDATE")
            ),
            "leopard.events.acme.Client.assigned_to.UPDATE"
        );
        assert_eq!(
            subject("p", &event("a.b", "Odd *type>..X")),
            "p.a_b.Odd__type_._.X"
        );
    }

    #[test]
    fn the_seen_window_forgets_the_oldest_ids_first() {
        let mut seen = Seen::default();
        let ids: Vec<Uuid> = (0..3).map(|_| Uuid::now_v7()).collect();
        for id in &ids {
            seen.insert(*id, 2);
        }
        seen.insert(ids[2], 2);
        assert!(!seen.ids.contains(&ids[0]));
        assert!(seen.ids.contains(&ids[1]) && seen.ids.contains(&ids[2]));
        assert_eq!(seen.order.len(), 2);
    }

    #[test]
    fn stream_and_consumer_names_refuse_separators_and_wildcards() {
        assert!(valid_name("LEOPARD_EVENTS"));
        for bad in ["", "a.b", "a*", "a>", "a b"] {
            assert!(!valid_name(bad), "{bad:?}");
        }
    }
}
