//! Notification streams (issue 6 acceptance figures): memory per open stream and fan-out
//! latency, over real sockets against the real router, hub and PostgreSQL listener.
//!
//! Needs PostgreSQL (`DATABASE_URL`, else a private cluster): a fresh database with the server's
//! migrations, one tenant `bench` and [`USERS`] users (bulk-seeded), access tokens minted with
//! the test secret. The server (router + [`Realtime`] hub + [`Listener`]) runs in this process
//! on `127.0.0.1:<ephemeral>`, 2 worker threads. The *clients* run in a child process (this
//! binary re-executed with `LEOPARD_SSE_BENCH_CHILD` set), so their memory is not counted: each
//! client is a raw TCP connection sending `GET /api/v1/notifications/stream/?token=…` and
//! reading frames.
//!
//! - **Memory per stream**: the server process's `VmRSS` (`/proc/self/status`) with no stream
//!   open (after a warm-up round of streams that were opened and closed), then with
//!   [`STREAMS`] streams open (5 per user, every greeting received, hub count checked); the
//!   difference divided by the count. Target ≤ 16 KiB per stream. (Kernel socket buffers are not
//!   process RSS and are not included.)
//! - **Fan-out latency**: [`USERS`] streams, one per user. Each round writes one notification
//!   per user in one transaction ([`notify`], as the scheduler or a broadcast would) and commits;
//!   t0 is taken just before `COMMIT`. The child stamps the wall clock (same machine) when each
//!   connection's `notification_message` frame arrives. Reported: per-recipient latency p50/p99
//!   over all rounds, and per-round completion time (the last of the users) p50/p99. Target
//!   p99 ≤ 100 ms. The same fan-out through the in-memory hub alone (no database, no sockets) is
//!   printed for comparison.
//!
//! - For context: the same streams opened in process through the router (no sockets, no
//!   hyper: what a stream itself costs), and — opt-in, `LEOPARD_SSE_BENCH=bare` — a bare axum
//!   route that sends one frame and then nothing (what hyper and a connection cost).
//!
//! The server is served like `leopard serve` serves it, with
//! `into_make_service_with_connect_info`: `axum::serve(listener, router)` with the router itself
//! would rebuild the route table for every connection (`Router::with_state` per connection),
//! about 130 KiB each for this API — measured 151 KiB per stream that way.
//!
//! Run: `DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres cargo bench --bench sse`
//! (about 1 min after the build); only some parts: `LEOPARD_SSE_BENCH=inproc,memory,fanout,hub`
//! (comma-separated; `bare` only on request).
//! Under `cargo test --benches` (no `--bench` flag) every count shrinks to a smoke test. The
//! file-descriptor soft limit is raised to the hard limit when needed (one descriptor per
//! server-side socket here, one per client socket in the child).

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::SocketAddr;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use leopard_core::TenantSlug;
use leopard_http::jwt::{ClaimsInput, JwtKeys, TokenType};
use leopard_http::sse::{Hub, Received};
use leopard_server::app::{self, AppConfig};
use leopard_server::notify::{notify, NewNotification, NotificationType};
use leopard_server::realtime::{Listener, Realtime};
use leopard_server::{migrations, seed};
use leopard_tenancy::testing::TestTenancy;
use leopard_tenancy::{NewTenant, ResolveConfig, TenantRegistry};

/// Users of the tenant (and streams of the fan-out test).
const USERS: usize = 1000;
/// Streams held at once for the memory figure.
const STREAMS: usize = 5000;
/// Fan-out rounds.
const ROUNDS: usize = 20;
/// The test secret (32 bytes or more).
const SECRET: &[u8] = b"bench-secret-bench-secret-bench-secret";
const CHILD_ENV: &str = "LEOPARD_SSE_BENCH_CHILD";

#[derive(Debug, Clone, Copy)]
struct Plan {
    users: usize,
    streams: usize,
    rounds: usize,
}

impl Plan {
    fn new() -> Self {
        if std::env::args().any(|arg| arg == "--bench") {
            Self {
                users: USERS,
                streams: STREAMS,
                rounds: ROUNDS,
            }
        } else {
            Self {
                users: 20,
                streams: 50,
                rounds: 2,
            }
        }
    }
}

fn main() {
    raise_fd_limit();
    if let Ok(addr) = std::env::var(CHILD_ENV) {
        child(addr.parse().expect("child address"));
        return;
    }
    let plan = Plan::new();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let server = rt.block_on(Server::start(plan.users));
    println!(
        "sse bench: {} users, {} streams, {} rounds; server {} (2 worker threads); fd limit {}",
        plan.users,
        plan.streams,
        plan.rounds,
        server.addr,
        fd_limit().0
    );
    let only = std::env::var("LEOPARD_SSE_BENCH").unwrap_or_default();
    if only.is_empty() || only.contains("inproc") {
        bench_memory_in_process(&rt, &server, plan);
    }
    if only.contains("bare") {
        bench_memory_bare(&rt, &server, plan);
    }
    if only.is_empty() || only.contains("memory") {
        bench_memory(&rt, &server, plan);
    }
    if only.is_empty() || only.contains("fanout") {
        bench_fanout(&rt, &server, plan);
    }
    if only.is_empty() || only.contains("hub") {
        bench_hub_fanout(&rt, plan);
    }
}

// ----- server ------------------------------------------------------------------------------

struct Server {
    router: axum::Router,
    tenancy: TestTenancy,
    registry: Arc<TenantRegistry>,
    realtime: Arc<Realtime>,
    addr: SocketAddr,
    tokens: Vec<String>,
    users: Vec<i64>,
    _listener: Listener,
    _media: std::path::PathBuf,
}

impl Server {
    async fn start(users: usize) -> Self {
        let set = Arc::try_unwrap(migrations::set()).expect("a fresh set");
        let tenancy = TestTenancy::new(set, 16).await.expect("database");
        let mut tenant = NewTenant::new(TenantSlug::parse("bench").expect("slug"), "Bench");
        tenant.max_users = 100_000;
        tenancy.provisioner.create(tenant).await.expect("tenant");
        let registry = TenantRegistry::load(tenancy.db.pool().clone(), ResolveConfig::default())
            .await
            .expect("registry");
        let context = registry.context_for("bench").expect("tenant");
        let mut tx = context.begin().await.expect("tx");
        let spec = seed::SeedUsers {
            count: i32::try_from(users).expect("count"),
            prefix: "user".into(),
            group: "CONSULTANT".into(),
            branch_id: None,
            password: "Leopard-Bench-2026".into(),
        };
        seed::seed_users(&mut tx, &spec, 100_000)
            .await
            .expect("users");
        let ids: Vec<(i64, String)> = sqlx::query_as("SELECT id, username FROM users ORDER BY id")
            .fetch_all(&mut *tx)
            .await
            .expect("ids");
        tx.commit().await.expect("commit");
        let keys = JwtKeys::new(SECRET).expect("keys");
        let now = i64::try_from(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .expect("clock")
                .as_secs(),
        )
        .expect("now");
        let tokens = ids
            .iter()
            .map(|(id, username)| {
                keys.issue(
                    &ClaimsInput {
                        user_id: id.to_string(),
                        tid: "bench".into(),
                        username: username.clone(),
                        email: String::new(),
                        groups: vec!["CONSULTANT".into()],
                    },
                    TokenType::Access,
                    now,
                    Duration::from_secs(3600),
                )
                .expect("token")
            })
            .collect();
        let realtime = Arc::new(Realtime::default());
        let provisioner = Arc::new(leopard_tenancy::Provisioner::new(
            tenancy.db.pool().clone(),
            Arc::clone(&tenancy.set),
            ResolveConfig::default(),
        ));
        let mut config = AppConfig::new(
            tenancy.db.pool().clone(),
            Arc::clone(&registry),
            provisioner,
            SECRET.to_vec(),
        );
        let media = std::env::temp_dir().join(format!("leopard-sse-bench-{}", std::process::id()));
        config.media_dir = media.clone();
        config.realtime = Arc::clone(&realtime);
        let router = app::router(config).expect("router");
        let listener = Listener::start(
            tenancy.db.pool(),
            Arc::clone(&registry),
            Arc::clone(&realtime),
        )
        .await
        .expect("listener");
        let socket = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = socket.local_addr().expect("address");
        let served = router.clone();
        tokio::spawn(async move {
            // As `leopard serve` does. (`axum::serve(listener, router)` would rebuild the
            // router's route table for every connection: about 130 KiB each for this API.)
            axum::serve(
                socket,
                served.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await
            .expect("serve");
        });
        Self {
            router,
            tenancy,
            registry,
            realtime,
            addr,
            tokens,
            users: ids.into_iter().map(|(id, _)| id).collect(),
            _listener: listener,
            _media: media,
        }
    }

    /// Waits until the hub holds `n` streams (10 s at most).
    fn wait_connections(&self, n: usize) -> bool {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.realtime.hub().connections() == n {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }
}

// ----- the client process ------------------------------------------------------------------

/// The client process, driven by the parent: opens streams, reports arrival times.
struct Clients {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Clients {
    /// Opens `count` streams (token `i % tokens`) and waits until every greeting arrived.
    fn open(server: &Server, count: usize) -> Self {
        Self::open_at(server.addr, &server.tokens, count)
    }

    /// Opens `count` streams at `addr`.
    fn open_at(addr: SocketAddr, tokens: &[String], count: usize) -> Self {
        let tokens_file = std::env::temp_dir().join(format!(
            "leopard-sse-bench-tokens-{}-{count}",
            std::process::id()
        ));
        std::fs::write(&tokens_file, tokens.join("\n")).expect("tokens file");
        let mut child = Command::new(std::env::current_exe().expect("this binary"))
            .env(CHILD_ENV, addr.to_string())
            .env("LEOPARD_SSE_BENCH_TOKENS", &tokens_file)
            .env("LEOPARD_SSE_BENCH_COUNT", count.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("client process");
        let stdin = child.stdin.take().expect("stdin");
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut line = String::new();
        stdout.read_line(&mut line).expect("ready line");
        assert_eq!(line.trim(), format!("ready {count}"), "client start-up");
        let _ = std::fs::remove_file(tokens_file);
        Self {
            child,
            stdin,
            stdout,
        }
    }

    /// Arrival times (ns since the epoch) of `notification_message` frames per connection
    /// since the last call.
    fn dump(&mut self) -> Vec<(usize, u128)> {
        writeln!(self.stdin, "dump").expect("command");
        let mut line = String::new();
        self.stdout.read_line(&mut line).expect("times");
        line.split_whitespace()
            .filter_map(|pair| {
                let (i, t) = pair.split_once(':')?;
                Some((i.parse().ok()?, t.parse().ok()?))
            })
            .collect()
    }

    fn close(mut self) {
        let _ = writeln!(self.stdin, "exit");
        let _ = self.child.wait();
    }
}

fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

/// The child: raw TCP streams; prints `ready <n>`, then answers `dump` with
/// `<conn>:<ns> …` for every `notification_message` seen since the last dump.
fn child(addr: SocketAddr) {
    let tokens: Vec<String> =
        std::fs::read_to_string(std::env::var("LEOPARD_SSE_BENCH_TOKENS").expect("tokens file"))
            .expect("tokens")
            .lines()
            .map(str::to_owned)
            .collect();
    let count: usize = std::env::var("LEOPARD_SSE_BENCH_COUNT")
        .expect("count")
        .parse()
        .expect("count");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let arrivals: Arc<Mutex<Vec<(usize, u128)>>> = Arc::default();
    rt.block_on(async {
        let gate = Arc::new(tokio::sync::Semaphore::new(200));
        let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel::<()>(count.max(1));
        for i in 0..count {
            let token = tokens[i % tokens.len()].clone();
            let gate = Arc::clone(&gate);
            let ready = ready_tx.clone();
            let arrivals = Arc::clone(&arrivals);
            tokio::spawn(async move {
                let permit = gate.acquire_owned().await.expect("gate");
                let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
                let request = format!(
                    "GET /api/v1/notifications/stream/?token={token} HTTP/1.1\r\nHost: bench.localhost\r\nAccept: text/event-stream\r\n\r\n"
                );
                let mut sent = 0;
                while sent < request.len() {
                    stream.writable().await.expect("writable");
                    match stream.try_write(&request.as_bytes()[sent..]) {
                        Ok(n) => sent += n,
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                        Err(e) => panic!("write: {e}"),
                    }
                }
                let mut greeted = false;
                let mut seen = Vec::new();
                let mut buf = [0u8; 4096];
                let mut permit = Some(permit);
                loop {
                    stream.readable().await.expect("readable");
                    let n = match stream.try_read(&mut buf) {
                        Ok(0) => return,
                        Ok(n) => n,
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                        Err(_) => return,
                    };
                    let at = now_ns();
                    let chunk = &buf[..n];
                    if !greeted {
                        seen.extend_from_slice(chunk);
                        if contains(&seen, b"connection_established") {
                            greeted = true;
                            seen = Vec::new();
                            permit.take();
                            ready.send(()).await.expect("ready");
                        } else {
                            assert!(!contains(&seen, b"401"), "refused: {}", String::from_utf8_lossy(&seen));
                        }
                    }
                    let messages = count_of(chunk, b"notification_message");
                    if messages > 0 {
                        let mut arrivals = arrivals.lock().expect("lock");
                        for _ in 0..messages {
                            arrivals.push((i, at));
                        }
                    }
                }
            });
        }
        for _ in 0..count {
            ready_rx.recv().await.expect("a greeting");
        }
    });
    println!("ready {count}");
    std::io::stdout().flush().expect("flush");
    let stdin = std::io::stdin();
    for line in stdin.lock().lines() {
        match line.expect("command").trim() {
            "dump" => {
                let taken: Vec<(usize, u128)> =
                    std::mem::take(&mut *arrivals.lock().expect("lock"));
                let text: Vec<String> = taken.iter().map(|(i, t)| format!("{i}:{t}")).collect();
                println!("{}", text.join(" "));
                std::io::stdout().flush().expect("flush");
            }
            _ => break,
        }
    }
    drop(rt);
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    count_of(haystack, needle) > 0
}

fn count_of(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .filter(|w| *w == needle)
        .count()
}

// ----- measurements ------------------------------------------------------------------------

/// `VmRSS` of this process, in KiB.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn bench_memory(rt: &tokio::runtime::Runtime, server: &Server, plan: Plan) {
    // Warm-up: open and close a round of streams so allocator pools exist before measuring.
    let warm = Clients::open(server, plan.streams.min(1000));
    warm.close();
    assert!(server.wait_connections(0), "warm-up streams closed");
    std::thread::sleep(Duration::from_millis(500));
    let before = rss_kib();
    let started = Instant::now();
    let clients = Clients::open(server, plan.streams);
    let opened = started.elapsed();
    assert!(
        server.wait_connections(plan.streams),
        "every stream is in the hub"
    );
    std::thread::sleep(Duration::from_millis(500));
    let after = rss_kib();
    let schema = rt.block_on(async {
        server
            .registry
            .context_for("bench")
            .expect("tenant")
            .tenant()
            .schema
            .as_str()
            .to_owned()
    });
    let per_stream = (after.saturating_sub(before) as f64) * 1024.0 / plan.streams as f64;
    println!(
        "memory: {} streams ({} users online) opened in {:.2?}; server RSS {} KiB -> {} KiB: {:.1} KiB ({:.0} bytes) per stream (target <= 16 KiB)",
        plan.streams,
        server.realtime.online_users(&schema).len(),
        opened,
        before,
        after,
        per_stream / 1024.0,
        per_stream
    );
    clients.close();
    assert!(server.wait_connections(0), "streams closed");
}

/// The same streams without sockets: requests through the router in this process, bodies
/// held after their greeting (what the stream itself costs, without hyper and the socket).
fn bench_memory_in_process(rt: &tokio::runtime::Runtime, server: &Server, plan: Plan) {
    use http_body_util::BodyExt as _;
    use tower::ServiceExt as _;
    let open = |count: usize| {
        rt.block_on(async {
            use futures::StreamExt as _;
            let concurrency = 200;
            futures::stream::iter(0..count)
                .map(|i| {
                    let token = server.tokens[i % server.tokens.len()].clone();
                    let router = server.router.clone();
                    tokio::spawn(async move {
                        let request = http::Request::builder()
                            .uri(format!("/api/v1/notifications/stream/?token={token}"))
                            .header("host", "bench.localhost")
                            .body(axum::body::Body::empty())
                            .expect("request");
                        let response = router.oneshot(request).await.expect("response");
                        assert_eq!(response.status(), http::StatusCode::OK);
                        let mut body = response.into_body();
                        body.frame().await.expect("greeting").expect("frame");
                        body
                    })
                })
                .buffer_unordered(concurrency)
                .map(|r| r.expect("task"))
                .collect::<Vec<_>>()
                .await
        })
    };
    drop(open(plan.streams.min(1000)));
    assert!(server.wait_connections(0));
    let before = rss_kib();
    let bodies = open(plan.streams);
    assert_eq!(server.realtime.hub().connections(), plan.streams);
    std::thread::sleep(Duration::from_millis(500));
    let after = rss_kib();
    println!(
        "memory in process (router, no sockets): {} streams: RSS {} KiB -> {} KiB: {:.2} KiB per stream",
        plan.streams,
        before,
        after,
        (after.saturating_sub(before) as f64) / plan.streams as f64
    );
    drop(bodies);
    assert!(server.wait_connections(0));
}

/// Baseline: the same sockets on a bare axum server whose route sends one frame and then
/// nothing (no authentication, no hub): what hyper and the connection cost.
fn bench_memory_bare(rt: &tokio::runtime::Runtime, server: &Server, plan: Plan) {
    let addr = rt.block_on(async {
        let router = axum::Router::new().route(
            "/api/v1/notifications/stream/",
            axum::routing::get(|| async {
                let greeting = futures::stream::once(async {
                    Ok::<_, std::convert::Infallible>(axum::body::Bytes::from_static(
                        b"data: {\"type\":\"connection_established\"}\n\n",
                    ))
                });
                let body = axum::body::Body::from_stream(futures::StreamExt::chain(
                    greeting,
                    futures::stream::pending(),
                ));
                let mut response = axum::response::Response::new(body);
                response.headers_mut().insert(
                    "content-type",
                    http::HeaderValue::from_static("text/event-stream"),
                );
                response
            }),
        );
        let socket = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = socket.local_addr().expect("addr");
        tokio::spawn(async move {
            axum::serve(
                socket,
                router.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await
            .expect("serve")
        });
        addr
    });
    let warm = Clients::open_at(addr, &server.tokens, plan.streams.min(1000));
    warm.close();
    std::thread::sleep(Duration::from_millis(1000));
    let before = rss_kib();
    let clients = Clients::open_at(addr, &server.tokens, plan.streams);
    std::thread::sleep(Duration::from_millis(500));
    let after = rss_kib();
    println!(
        "memory, bare axum stream (no auth, no hub): {} sockets: RSS {} KiB -> {} KiB: {:.1} KiB per connection",
        plan.streams,
        before,
        after,
        (after.saturating_sub(before) as f64) / plan.streams as f64
    );
    clients.close();
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn bench_fanout(rt: &tokio::runtime::Runtime, server: &Server, plan: Plan) {
    let mut clients = Clients::open(server, plan.users);
    assert!(server.wait_connections(plan.users));
    let context = server.registry.context_for("bench").expect("tenant");
    let mut deliveries = Vec::new();
    let mut completions = Vec::new();
    for round in 0..plan.rounds {
        let t0 = rt.block_on(async {
            let mut tx = context.begin().await.expect("tx");
            for user in &server.users {
                let n = NewNotification::new(
                    NotificationType::SystemAlert,
                    *user,
                    format!("Broadcast {round}"),
                    "One event for every user of the tenant.",
                );
                notify(&mut tx, n).await.expect("notify");
            }
            let t0 = now_ns();
            tx.commit().await.expect("commit");
            t0
        });
        std::thread::sleep(Duration::from_millis(1000));
        let arrivals = clients.dump();
        assert_eq!(
            arrivals.len(),
            plan.users,
            "round {round}: every user received exactly one frame"
        );
        let mut last = 0.0f64;
        for (_, at) in arrivals {
            let ms = at.saturating_sub(t0) as f64 / 1e6;
            last = last.max(ms);
            deliveries.push(ms);
        }
        completions.push(last);
    }
    deliveries.sort_by(f64::total_cmp);
    completions.sort_by(f64::total_cmp);
    println!(
        "fan-out over sockets and PostgreSQL: one notification per user for {} users, {} rounds: per-recipient latency p50 {:.1} ms, p99 {:.1} ms; all {} reached p50 {:.1} ms, p99 {:.1} ms (target p99 <= 100 ms)",
        plan.users,
        plan.rounds,
        percentile(&deliveries, 50.0),
        percentile(&deliveries, 99.0),
        plan.users,
        percentile(&completions, 50.0),
        percentile(&completions, 99.0),
    );
    clients.close();
    let _ = &server.tenancy;
}

fn bench_hub_fanout(rt: &tokio::runtime::Runtime, plan: Plan) {
    let hub: Hub<Arc<str>> = Hub::new(256);
    let mut rounds = Vec::new();
    rt.block_on(async {
        for _ in 0..plan.rounds.max(5) {
            let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel::<Instant>();
            for user in 0..plan.users {
                let mut sub = hub.subscribe("tenant_bench", user as i64);
                let done = done_tx.clone();
                tokio::spawn(async move {
                    if let Received::Message(_) = sub.recv().await {
                        let _ = done.send(Instant::now());
                    }
                });
            }
            tokio::task::yield_now().await;
            let message: Arc<str> = Arc::from("data: {}\n\n");
            let t0 = Instant::now();
            for user in 0..plan.users {
                hub.publish("tenant_bench", user as i64, Arc::clone(&message));
            }
            let mut last = t0;
            for _ in 0..plan.users {
                last = last.max(done_rx.recv().await.expect("delivered"));
            }
            rounds.push(last.duration_since(t0).as_secs_f64() * 1e3);
        }
    });
    rounds.sort_by(f64::total_cmp);
    println!(
        "fan-out through the hub alone ({} users, in memory): all reached p50 {:.2} ms, max {:.2} ms",
        plan.users,
        percentile(&rounds, 50.0),
        rounds.last().copied().unwrap_or(f64::NAN)
    );
}

// ----- file descriptors --------------------------------------------------------------------

fn fd_limit() -> (u64, u64) {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| {
            let mut parts = l.split_whitespace().skip(3);
            Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
        })
        .unwrap_or((1024, 1024))
}

/// Raises the soft open-files limit to the hard limit with `prlimit` (util-linux) when it is
/// below what the run needs; safe code cannot call `setrlimit` directly.
fn raise_fd_limit() {
    let (soft, hard) = fd_limit();
    if soft >= (STREAMS as u64) * 2 + 1000 || hard <= soft {
        return;
    }
    let pid = std::process::id().to_string();
    let _ = Command::new("prlimit")
        .args(["--pid", &pid, &format!("--nofile={hard}:{hard}")])
        .status();
}
