//! The NATS relay and consumer against a private `nats-server` (JetStream, file storage in a
//! temporary directory) and real PostgreSQL: every committed event reaches the consumer's
//! handlers exactly once, a rolled-back one never, also across a restart of the server.
//!
//! Run with `cargo test -p leopard-events --features nats --test nats` (needs `nats-server`).
#![cfg(feature = "nats")]

mod common;

use std::collections::HashMap;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::Bed;
use leopard_events::nats::async_nats;
use leopard_events::nats::async_nats::jetstream::consumer::pull;
use leopard_events::nats::{self, ConsumerConfig, NatsConsumer, NatsRelay, RelayConfig};
use leopard_events::{
    async_trait, Event, EventHandler, HandlerContext, HandlerError, HandlerRegistry, NewEvent,
};
use serde_json::json;
use uuid::Uuid;

/// A private `nats-server -js` on a free loopback port, storing in its own temporary directory.
struct Server {
    binary: PathBuf,
    port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl Server {
    /// The `nats-server` binary on `PATH` or in the usual system directories.
    fn binary() -> PathBuf {
        let on_path = std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
            .unwrap_or_default();
        on_path
            .into_iter()
            .chain(
                ["/usr/sbin", "/usr/bin", "/usr/local/bin", "/usr/local/sbin"].map(PathBuf::from),
            )
            .map(|dir| dir.join("nats-server"))
            .find(|p| p.is_file())
            .expect("nats-server is not installed (apt-get install nats-server)")
    }

    async fn start() -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .expect("free port")
            .local_addr()
            .expect("addr")
            .port();
        let mut server = Self {
            binary: Self::binary(),
            port,
            dir: tempfile::tempdir().expect("tempdir"),
            child: None,
        };
        server.spawn().await;
        server
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Starts the process (same command line every time) and waits until it accepts clients.
    async fn spawn(&mut self) {
        let child = Command::new(&self.binary)
            .args([
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-js",
                "-sd",
            ])
            .arg(self.dir.path().join("store"))
            .arg("-l")
            .arg(self.dir.path().join("nats.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server starts");
        self.child = Some(child);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while tokio::net::TcpStream::connect(("127.0.0.1", self.port))
            .await
            .is_err()
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "nats-server did not start"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stops the process with SIGTERM (a clean shutdown) and waits for it to exit.
    async fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success(), "kill -TERM failed");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while child.try_wait().expect("wait").is_none() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "nats-server did not stop"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Counts, per event id, how often the consumer ran it (non-transactional).
struct Count(Arc<Mutex<HashMap<Uuid, u32>>>);

#[async_trait]
impl EventHandler for Count {
    fn name(&self) -> &'static str {
        "tests.count"
    }
    fn event_types(&self) -> &'static [&'static str] {
        &["*"]
    }
    fn transactional(&self) -> bool {
        false
    }
    async fn handle(
        &self,
        ctx: &mut HandlerContext<'_>,
        event: &Event,
    ) -> Result<(), HandlerError> {
        if ctx.tenant().tenant().slug.as_str() != event.tenant_slug {
            return Err(HandlerError::new("the context's tenant is not the event's"));
        }
        *self.0.lock().expect("lock").entry(event.id).or_default() += 1;
        Ok(())
    }
}

/// A unique stream name and subject prefix for this run.
fn unique() -> (String, String) {
    let tag = Uuid::now_v7().simple().to_string();
    (format!("LEOPARD_{tag}"), format!("t{tag}.events"))
}

fn client_events(slug: &str, batch: usize, size: usize) -> Vec<NewEvent> {
    (0..size)
        .map(|i| {
            NewEvent::created(
                "Client",
                format!("{slug}-{batch}-{i}"),
                json!({"batch": batch, "i": i}),
            )
        })
        .collect()
}

/// Everything the assertions need once the pipeline is running.
struct Pipeline {
    js: async_nats::jetstream::Context,
    stream: String,
    counts: Arc<Mutex<HashMap<Uuid, u32>>>,
    consumer: NatsConsumer,
}

impl Pipeline {
    fn distinct(&self) -> usize {
        self.counts.lock().expect("lock").len()
    }

    /// Waits until the consumer ran `expected` distinct events and the durable consumer has
    /// nothing pending or unacknowledged.
    async fn settle(&self, expected: usize) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
        loop {
            let info = async {
                let stream = self.js.get_stream(&self.stream).await.ok()?;
                let mut consumer = stream
                    .get_consumer::<pull::Config>("relay-test")
                    .await
                    .ok()?;
                let info = consumer.info().await.ok()?;
                Some((info.num_pending, info.num_ack_pending))
            }
            .await;
            if self.distinct() == expected && info == Some((0, 0)) {
                // Leave time for any stray redelivery to show up in the counts.
                tokio::time::sleep(Duration::from_millis(500)).await;
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out: {} of {expected} events consumed, consumer (pending, unacked) = {info:?}",
                self.distinct()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn stream_messages(&self) -> u64 {
        let mut stream = self.js.get_stream(&self.stream).await.expect("stream");
        stream.info().await.expect("stream info").state.messages
    }
}

async fn pipeline(bed: &Bed, url: &str, stream: &str, prefix: &str) -> (Pipeline, NatsRelay) {
    let client = nats::connect(url).await.expect("connect");
    let relay = NatsRelay::with_client(
        client,
        RelayConfig {
            publish_timeout: Duration::from_secs(2),
            ..RelayConfig::new(stream, prefix)
        },
    )
    .await
    .expect("relay");
    let counts = Arc::new(Mutex::new(HashMap::new()));
    let handlers = HandlerRegistry::from_handlers([(
        Box::new(Count(Arc::clone(&counts))) as Box<dyn EventHandler>,
        "tests",
    )])
    .expect("handlers");
    let consumer = NatsConsumer::connect(
        url,
        stream,
        ConsumerConfig {
            ack_wait: Duration::from_secs(2),
            ..ConsumerConfig::new("relay-test")
        },
        Arc::clone(&bed.registry),
        handlers,
    )
    .await
    .expect("consumer");
    let pipeline = Pipeline {
        js: relay.jetstream().clone(),
        stream: stream.to_owned(),
        counts,
        consumer,
    };
    (pipeline, relay)
}

/// The ids of the committed events, from the outbox.
async fn committed_ids(bed: &Bed) -> Vec<Uuid> {
    sqlx::query_scalar("SELECT id FROM public.leopard_events ORDER BY id")
        .fetch_all(bed.tenancy.db.pool())
        .await
        .expect("ids")
}

async fn assert_exactly_once(bed: &Bed, pipeline: &Pipeline, expected: usize) {
    let ids = committed_ids(bed).await;
    assert_eq!(ids.len(), expected, "committed events in the outbox");
    let counts = pipeline.counts.lock().expect("lock").clone();
    let total: u32 = counts.values().sum();
    assert_eq!(counts.len(), expected, "distinct events consumed");
    assert_eq!(total as usize, expected, "handler runs (no event twice)");
    let mut consumed: Vec<Uuid> = counts.keys().copied().collect();
    consumed.sort();
    assert_eq!(consumed, ids, "the consumed events are the committed ones");
    assert_eq!(
        pipeline.stream_messages().await,
        expected as u64,
        "the stream stored each event once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_committed_event_reaches_the_nats_consumer_exactly_once_and_a_rolled_back_one_never()
{
    let server = Server::start().await;
    let bed = Bed::new(&["acme", "globex"]).await;
    let (stream, prefix) = unique();
    let (pipeline, relay) = pipeline(&bed, &server.url(), &stream, &prefix).await;
    let relay_stats = relay.stats();
    let handlers = HandlerRegistry::default()
        .with(Box::new(relay), "tests")
        .expect("registry");
    assert_eq!(handlers.describe()[0].name, nats::RELAY_NAME);
    assert!(!handlers.describe()[0].transactional);
    let bus = bed.bus(handlers, |_| {});
    let running = Arc::clone(&bus).start().await.expect("start");
    let consuming = pipeline.consumer.start();

    for batch in 0..10 {
        for slug in ["acme", "globex"] {
            bed.record(slug, client_events(slug, batch, 10), true).await;
            bus.waker().wake();
        }
    }
    bed.record(
        "acme",
        vec![NewEvent::created("Client", "rolled-back", json!({}))],
        false,
    )
    .await;

    pipeline.settle(200).await;
    bed.wait_for(
        "SELECT count(*) FROM public.leopard_events WHERE state = 'completed'",
        200,
    )
    .await;
    assert_exactly_once(&bed, &pipeline, 200).await;
    let counts = pipeline.counts.lock().expect("lock").clone();
    let rolled_back: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM public.leopard_events WHERE entity_id = 'rolled-back'",
    )
    .fetch_one(bed.tenancy.db.pool())
    .await
    .expect("count");
    assert_eq!(rolled_back, 0);
    assert_eq!(counts.len(), 200);
    let per_tenant: i64 =
        sqlx::query_scalar("SELECT count(DISTINCT tenant_slug) FROM public.leopard_events")
            .fetch_one(bed.tenancy.db.pool())
            .await
            .expect("tenants");
    assert_eq!(per_tenant, 2);
    assert_eq!(
        relay_stats
            .published
            .load(std::sync::atomic::Ordering::Relaxed),
        200
    );

    consuming.shutdown().await;
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn events_committed_before_during_and_after_a_nats_restart_are_delivered_exactly_once() {
    let mut server = Server::start().await;
    let bed = Arc::new(Bed::new(&["acme", "globex"]).await);
    let (stream, prefix) = unique();
    let (pipeline, relay) = pipeline(&bed, &server.url(), &stream, &prefix).await;
    let relay_stats = relay.stats();
    let handlers = HandlerRegistry::default()
        .with(Box::new(relay), "tests")
        .expect("registry");
    let bus = bed.bus(handlers, |_| {});
    let running = Arc::clone(&bus).start().await.expect("start");
    let consuming = pipeline.consumer.start();
    let consumer_stats = pipeline.consumer.stats();

    // Before: 60 events, some of them consumed before the restart.
    for batch in 0..6 {
        let slug = if batch % 2 == 0 { "acme" } else { "globex" };
        bed.record(slug, client_events(slug, batch, 10), true).await;
        bus.waker().wake();
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while pipeline.distinct() < 10 {
        assert!(tokio::time::Instant::now() < deadline, "nothing consumed");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // During and after: 140 more, committed while the server restarts.
    let writer = {
        let bed = Arc::clone(&bed);
        let waker = bus.waker();
        tokio::spawn(async move {
            for batch in 6..34 {
                let slug = if batch % 2 == 0 { "acme" } else { "globex" };
                bed.record(slug, client_events(slug, batch, 5), true).await;
                waker.wake();
                tokio::time::sleep(Duration::from_millis(150)).await;
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.stop().await;
    let at_stop = bed
        .count("SELECT count(*) FROM public.leopard_events")
        .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let at_start = bed
        .count("SELECT count(*) FROM public.leopard_events")
        .await;
    assert!(
        at_start > at_stop && at_stop < 200,
        "events were committed while the server was down ({at_stop} → {at_start})"
    );
    server.spawn().await;
    writer.await.expect("writer");

    pipeline.settle(200).await;
    bed.wait_for(
        "SELECT count(*) FROM public.leopard_events WHERE state = 'completed'",
        200,
    )
    .await;
    assert_exactly_once(&bed, &pipeline, 200).await;
    eprintln!(
        "relay: published {} duplicates {} failed {}; consumer: delivered {} duplicates {} \
         nacked {} ack failures {}",
        relay_stats
            .published
            .load(std::sync::atomic::Ordering::Relaxed),
        relay_stats
            .duplicates
            .load(std::sync::atomic::Ordering::Relaxed),
        relay_stats
            .failed
            .load(std::sync::atomic::Ordering::Relaxed),
        consumer_stats
            .delivered
            .load(std::sync::atomic::Ordering::Relaxed),
        consumer_stats
            .duplicates
            .load(std::sync::atomic::Ordering::Relaxed),
        consumer_stats
            .nacked
            .load(std::sync::atomic::Ordering::Relaxed),
        consumer_stats
            .ack_failures
            .load(std::sync::atomic::Ordering::Relaxed),
    );

    consuming.shutdown().await;
    running.shutdown().await;
}
