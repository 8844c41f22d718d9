//! The notification stream `GET /api/v1/notifications/stream/` against a real PostgreSQL
//! database, read frame by frame: frames and headers, delivery to every tab within a second,
//! cross-tab read sync, tenant isolation (colliding ids), tenant-bound tokens, two server
//! instances on one database, `Last-Event-ID` replay without gaps or duplicates, slow clients,
//! heartbeats, presence, CORS, listener reconnection, and no token in the logs.

use crate::common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use common::{TestApp, SECRET};
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::BodyExt as _;
use leopard_rbac::Role;
use leopard_server::app::{self, AppConfig, CorsOrigins};
use leopard_server::notify::{notify, NewNotification, NotificationType};
use leopard_server::realtime::{Listener, Realtime};
use leopard_tenancy::{ResolveConfig, TenantRegistry};
use serde_json::{json, Value};
use sqlx::postgres::{PgPool, PgPoolOptions};
use tower::ServiceExt as _;

const SLUG: &str = "acme";
const OTHER: &str = "globex";
const STREAM: &str = "/api/v1/notifications/stream/";
/// How long a pushed frame may take.
const SECOND: Duration = Duration::from_secs(1);

/// The stream's notification object (original-backend.md §6.2).
const MESSAGE_FIELDS: &[&str] = &[
    "created_at",
    "due_date",
    "id",
    "message",
    "meta_info",
    "notification_type",
    "read",
    "title",
];

// ----- reading streams ---------------------------------------------------------------------

/// One SSE frame.
#[derive(Debug, Clone)]
struct Frame {
    id: Option<i64>,
    data: Value,
}

impl Frame {
    fn kind(&self) -> &str {
        self.data["type"].as_str().unwrap_or("")
    }
}

/// A response body read as SSE frames.
struct Stream {
    body: Body,
    buf: Vec<u8>,
    ended: bool,
}

impl Stream {
    fn new(body: Body) -> Self {
        Self {
            body,
            buf: Vec::new(),
            ended: false,
        }
    }

    /// The next frame within `wait`; `None` on timeout or at the end of the body.
    async fn frame(&mut self, wait: Duration) -> Option<Frame> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(at) = self.buf.windows(2).position(|w| w == b"\n\n") {
                let raw: Vec<u8> = self.buf.drain(..at + 2).collect();
                let text = String::from_utf8(raw).expect("utf-8");
                let mut frame = Frame {
                    id: None,
                    data: Value::Null,
                };
                for line in text.lines() {
                    if let Some(id) = line.strip_prefix("id: ") {
                        frame.id = Some(id.parse().expect("numeric id"));
                    } else if let Some(data) = line.strip_prefix("data: ") {
                        frame.data = serde_json::from_str(data).expect("JSON data");
                    } else {
                        assert!(line.is_empty(), "unexpected line {line:?}");
                    }
                }
                return Some(frame);
            }
            if self.ended {
                return None;
            }
            match tokio::time::timeout_at(deadline, self.body.frame()).await {
                Err(_) => return None,
                Ok(None) => self.ended = true,
                Ok(Some(frame)) => {
                    let frame = frame.expect("body frame");
                    if let Some(data) = frame.data_ref() {
                        self.buf.extend_from_slice(data);
                    }
                }
            }
        }
    }

    /// The next frame that is not a heartbeat, within `wait`.
    async fn event(&mut self, wait: Duration) -> Option<Frame> {
        let deadline = Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let frame = self.frame(left).await?;
            if frame.kind() != "heartbeat" {
                return Some(frame);
            }
        }
    }

    /// The next non-heartbeat frame; fails after a second.
    async fn expect(&mut self, kind: &str) -> Frame {
        let frame = self
            .event(SECOND)
            .await
            .unwrap_or_else(|| panic!("no {kind} frame within a second"));
        assert_eq!(frame.kind(), kind, "{frame:?}");
        frame
    }

    /// Asserts nothing but heartbeats arrive within `wait`.
    async fn expect_quiet(&mut self, wait: Duration) {
        if let Some(frame) = self.event(wait).await {
            panic!("unexpected frame {frame:?}");
        }
    }
}

/// A stream request to tenant `slug`: `query` is appended to the path, `token` (if any) sent
/// as a Bearer header.
fn stream_request(
    slug: &str,
    query: &str,
    token: Option<&str>,
    headers: &[(&str, &str)],
) -> Request<Body> {
    let mut request = Request::builder()
        .method(Method::GET)
        .uri(format!("{STREAM}{query}"))
        .header("host", format!("{slug}.localhost"));
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.body(Body::empty()).expect("request")
}

/// Opens a stream on `router`; returns status, headers and the body as frames.
async fn open_on(router: &axum::Router, request: Request<Body>) -> (StatusCode, HeaderMap, Stream) {
    let response = router.clone().oneshot(request).await.expect("infallible");
    let status = response.status();
    let headers = response.headers().clone();
    (status, headers, Stream::new(response.into_body()))
}

/// Opens a stream with a Bearer token and checks the greeting.
async fn connect(router: &axum::Router, slug: &str, token: &str, user: i64) -> Stream {
    let (status, headers, mut stream) =
        open_on(router, stream_request(slug, "", Some(token), &[])).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-type"], "text/event-stream");
    let hello = stream.expect("connection_established").await;
    assert_eq!(
        hello.data,
        json!({"type": "connection_established", "message": "SSE connection established", "user_id": user})
    );
    assert_eq!(hello.id, None);
    stream
}

/// A JSON call on `router`.
async fn call_on(
    router: &axum::Router,
    method: Method,
    slug: &str,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header("host", format!("{slug}.localhost"))
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .body(body.map_or_else(Body::empty, |b| Body::from(b.to_string())))
        .expect("request");
    let response = router.clone().oneshot(request).await.expect("infallible");
    let status = response.status();
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

// ----- set-up ------------------------------------------------------------------------------

/// An application with its own realtime hub and a running listener.
struct Rt {
    app: TestApp,
    realtime: Arc<Realtime>,
    _listener: Listener,
}

async fn rt_with(slugs: &[&str], realtime: Realtime, cors: CorsOrigins) -> Rt {
    let realtime = Arc::new(realtime);
    let shared = Arc::clone(&realtime);
    let app = TestApp::with_config(slugs, move |config| {
        config.realtime = shared;
        config.cors_origins = cors;
    })
    .await;
    let listener = Listener::start(
        app.tenancy.db.pool(),
        Arc::clone(&app.registry),
        Arc::clone(&realtime),
    )
    .await
    .expect("listener");
    Rt {
        app,
        realtime,
        _listener: listener,
    }
}

async fn rt(slugs: &[&str]) -> Rt {
    rt_with(slugs, Realtime::default(), CorsOrigins::Any).await
}

/// Writes a notification for `user` of `slug` through the notification service.
async fn give(app: &TestApp, slug: &str, user: i64, title: &str) -> i64 {
    give_message(app, slug, user, title, "message").await
}

async fn give_message(app: &TestApp, slug: &str, user: i64, title: &str, message: &str) -> i64 {
    let mut tx = app.context(slug).begin().await.expect("tx");
    let mut n = NewNotification::new(NotificationType::TaskAssigned, user, title, message);
    n.meta_info = json!({"task_id": 1});
    let id = notify(&mut tx, n).await.expect("notify").expect("written");
    tx.commit().await.expect("commit");
    id
}

fn schema(app: &TestApp, slug: &str) -> String {
    app.context(slug).tenant().schema.as_str().to_owned()
}

/// A second server instance on the same database: its own pool, registry, hub and listener,
/// as another process would have.
struct Instance {
    router: axum::Router,
    realtime: Arc<Realtime>,
    _listener: Listener,
    pool: PgPool,
}

async fn second_instance(app: &TestApp) -> Instance {
    let pool = PgPoolOptions::new()
        .max_connections(6)
        .connect(app.tenancy.db.url())
        .await
        .expect("second pool");
    let registry = TenantRegistry::load(pool.clone(), ResolveConfig::default())
        .await
        .expect("registry");
    let provisioner = Arc::new(leopard_tenancy::Provisioner::new(
        pool.clone(),
        Arc::clone(&app.tenancy.set),
        ResolveConfig::default(),
    ));
    let realtime = Arc::new(Realtime::default());
    let mut config = AppConfig::new(
        pool.clone(),
        Arc::clone(&registry),
        provisioner,
        SECRET.to_vec(),
    );
    config.media_dir = app.media.path().to_path_buf();
    config.realtime = Arc::clone(&realtime);
    let router = app::router(config).expect("router");
    let listener = Listener::start(&pool, registry, Arc::clone(&realtime))
        .await
        .expect("listener");
    Instance {
        router,
        realtime,
        _listener: listener,
        pool,
    }
}

// ----- tests -------------------------------------------------------------------------------

#[tokio::test]
async fn the_stream_answers_event_stream_headers_and_greets_first() {
    let rt = rt(&[SLUG]).await;
    let alice = rt
        .app
        .user(SLUG, "alice", Some(Role::Consultant), &[], &[])
        .await;
    let token = rt.app.token(SLUG, "alice").await;
    let (status, headers, mut stream) = open_on(
        &rt.app.router,
        stream_request(SLUG, &format!("?token={token}"), None, &[]),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-type"], "text/event-stream");
    assert_eq!(
        headers["cache-control"],
        "no-cache, no-store, must-revalidate"
    );
    assert_eq!(headers["x-accel-buffering"], "no");
    let hello = stream.frame(SECOND).await.expect("a first frame");
    assert_eq!(hello.kind(), "connection_established");
    assert_eq!(hello.data["user_id"], alice);
}

#[tokio::test]
async fn a_notification_reaches_both_tabs_of_its_user_within_a_second_and_nobody_else() {
    let rt = rt(&[SLUG]).await;
    let alice = rt
        .app
        .user(SLUG, "alice", Some(Role::Consultant), &[], &[])
        .await;
    let bob = rt
        .app
        .user(SLUG, "bob", Some(Role::Consultant), &[], &[])
        .await;
    let alice_token = rt.app.token(SLUG, "alice").await;
    let bob_token = rt.app.token(SLUG, "bob").await;
    let mut tab1 = connect(&rt.app.router, SLUG, &alice_token, alice).await;
    let mut tab2 = connect(&rt.app.router, SLUG, &alice_token, alice).await;
    let mut bobs = connect(&rt.app.router, SLUG, &bob_token, bob).await;
    let started = Instant::now();
    let id = give(&rt.app, SLUG, alice, "For alice").await;
    for tab in [&mut tab1, &mut tab2] {
        let frame = tab.expect("notification_message").await;
        assert_eq!(
            frame.id,
            Some(id),
            "every notification frame carries its id"
        );
        let n = &frame.data["notification"];
        let mut keys: Vec<&str> = n
            .as_object()
            .expect("object")
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        assert_eq!(keys, MESSAGE_FIELDS);
        assert_eq!(n["id"], id);
        assert_eq!(n["title"], "For alice");
        assert_eq!(n["notification_type"], "TASK_ASSIGNED");
        assert_eq!(n["read"], false);
        assert_eq!(n["meta_info"], json!({"task_id": 1}));
        assert_eq!(n["due_date"], Value::Null);
        assert!(n["created_at"].as_str().expect("created_at").ends_with('Z'));
    }
    assert!(started.elapsed() < SECOND, "{:?}", started.elapsed());
    bobs.expect_quiet(Duration::from_millis(300)).await;
}

#[tokio::test]
async fn a_task_assigned_through_the_api_reaches_the_assignees_tabs_and_mark_read_syncs_the_other_tab(
) {
    let realtime = Arc::new(Realtime::default());
    let shared = Arc::clone(&realtime);
    let mut bus = None;
    let app = TestApp::with_config(&[SLUG], |config| {
        let created = Arc::new(leopard_events::EventBus::new(
            config.pool.clone(),
            Arc::clone(&config.registry),
            leopard_server::handlers::registry().expect("handlers"),
            leopard_events::WorkerConfig {
                workers: 2,
                poll_interval: Duration::from_millis(50),
                ..leopard_events::WorkerConfig::default()
            },
        ));
        config.waker = created.waker();
        config.realtime = shared;
        bus = Some(created);
    })
    .await;
    let running = bus.expect("bus").start().await.expect("bus starts");
    let _listener = Listener::start(app.tenancy.db.pool(), Arc::clone(&app.registry), realtime)
        .await
        .expect("listener");
    let org = app.seed_org(SLUG).await;
    let alice = app
        .user(SLUG, "alice", Some(Role::Consultant), &[org.a], &[])
        .await;
    app.user(SLUG, "boss", Some(Role::BranchAdmin), &[org.a], &[])
        .await;
    let alice_token = app.token(SLUG, "alice").await;
    let boss_token = app.token(SLUG, "boss").await;
    let mut tab1 = connect(&app.router, SLUG, &alice_token, alice).await;
    let mut tab2 = connect(&app.router, SLUG, &alice_token, alice).await;
    let (status, task) = call_on(
        &app.router,
        Method::POST,
        SLUG,
        "/api/v1/tasks/",
        &boss_token,
        Some(json!({
            "title": "Call the client",
            "detail": "today",
            "due_date": (chrono::Utc::now() + chrono::Duration::days(1)).to_rfc3339(),
            "assigned_to": alice,
        })),
    )
    .await;
    let created = Instant::now();
    assert_eq!(status, StatusCode::CREATED, "{task}");
    let mut id = 0;
    for tab in [&mut tab1, &mut tab2] {
        let frame = tab.expect("notification_message").await;
        assert_eq!(
            frame.data["notification"]["notification_type"],
            "TASK_ASSIGNED"
        );
        assert_eq!(
            frame.data["notification"]["meta_info"]["task_id"],
            task["id"]
        );
        id = frame.id.expect("id");
    }
    assert!(created.elapsed() < SECOND, "{:?}", created.elapsed());
    // Tab 1 marks it read: tab 2 hears about it (tab 1 too: it is one user's feed).
    let (status, body) = call_on(
        &app.router,
        Method::POST,
        SLUG,
        &format!("/api/v1/notifications/{id}/mark_read/"),
        &alice_token,
        Some(json!({})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    for tab in [&mut tab2, &mut tab1] {
        let read = tab.expect("notification_read").await;
        assert_eq!(
            read.data,
            json!({"type": "notification_read", "notification_ids": [id]})
        );
        let count = tab.expect("unread_count_update").await;
        assert_eq!(
            count.data,
            json!({"type": "unread_count_update", "unread_count": 0})
        );
    }
    // Marking it read again changes nothing and sends nothing.
    call_on(
        &app.router,
        Method::POST,
        SLUG,
        &format!("/api/v1/notifications/{id}/mark_read/"),
        &alice_token,
        None,
    )
    .await;
    tab2.expect_quiet(Duration::from_millis(300)).await;
    running.shutdown().await;
}

#[tokio::test]
async fn bulk_mark_read_and_update_notification_sync_every_tab() {
    let rt = rt(&[SLUG]).await;
    let alice = rt
        .app
        .user(SLUG, "alice", Some(Role::Consultant), &[], &[])
        .await;
    let token = rt.app.token(SLUG, "alice").await;
    let ids = [
        give(&rt.app, SLUG, alice, "1").await,
        give(&rt.app, SLUG, alice, "2").await,
        give(&rt.app, SLUG, alice, "3").await,
    ];
    let mut tab = connect(&rt.app.router, SLUG, &token, alice).await;
    let (status, body) = call_on(
        &rt.app.router,
        Method::POST,
        SLUG,
        "/api/v1/notifications/bulk_mark_read/",
        &token,
        Some(json!({"notification_ids": [ids[0], ids[1]]})),
    )
    .await;
    assert_eq!(body, json!({"marked_read_count": 2}), "{status}");
    assert_eq!(
        tab.expect("notification_read").await.data["notification_ids"],
        json!([ids[0], ids[1]])
    );
    assert_eq!(
        tab.expect("unread_count_update").await.data["unread_count"],
        1
    );
    let path = format!("/api/v1/notifications/{}/update_notification/", ids[2]);
    call_on(
        &rt.app.router,
        Method::PATCH,
        SLUG,
        &path,
        &token,
        Some(json!({"read": true})),
    )
    .await;
    assert_eq!(
        tab.expect("notification_read").await.data["notification_ids"],
        json!([ids[2]])
    );
    assert_eq!(
        tab.expect("unread_count_update").await.data["unread_count"],
        0
    );
    // Marking one unread sends the new count.
    call_on(
        &rt.app.router,
        Method::PATCH,
        SLUG,
        &path,
        &token,
        Some(json!({"read": false})),
    )
    .await;
    assert_eq!(
        tab.expect("unread_count_update").await.data["unread_count"],
        1
    );
}

#[tokio::test]
async fn user_ids_and_notification_ids_collide_across_tenants_and_nothing_crosses() {
    let rt = rt(&[SLUG, OTHER]).await;
    let a5 = rt
        .app
        .user(SLUG, "alice", Some(Role::Consultant), &[], &[])
        .await;
    let b5 = rt
        .app
        .user(OTHER, "alice", Some(Role::Consultant), &[], &[])
        .await;
    assert_eq!(a5, b5, "the same user id in both tenants");
    let acme_token = rt.app.token(SLUG, "alice").await;
    let globex_token = rt.app.token(OTHER, "alice").await;
    let mut acme = connect(&rt.app.router, SLUG, &acme_token, a5).await;
    let mut globex = connect(&rt.app.router, OTHER, &globex_token, b5).await;
    let acme_id = give(&rt.app, SLUG, a5, "acme only").await;
    let globex_id = give(&rt.app, OTHER, b5, "globex only").await;
    assert_eq!(
        acme_id, globex_id,
        "the same notification id in both tenants"
    );
    let frame = acme.expect("notification_message").await;
    assert_eq!(frame.data["notification"]["title"], "acme only");
    let frame = globex.expect("notification_message").await;
    assert_eq!(frame.data["notification"]["title"], "globex only");
    acme.expect_quiet(Duration::from_millis(300)).await;
    globex.expect_quiet(Duration::from_millis(100)).await;
    assert!(rt.realtime.is_online(&schema(&rt.app, SLUG), a5));
    assert_eq!(
        rt.realtime
            .hub()
            .tenant_connections(&schema(&rt.app, OTHER)),
        1
    );
}

#[tokio::test]
async fn a_token_of_another_tenant_or_a_bad_token_is_a_generic_401() {
    let rt = rt(&[SLUG, OTHER]).await;
    rt.app
        .user(SLUG, "alice", Some(Role::Consultant), &[], &[])
        .await;
    rt.app
        .user(OTHER, "alice", Some(Role::Consultant), &[], &[])
        .await;
    let acme_token = rt.app.token(SLUG, "alice").await;
    let (acme_access, acme_refresh) = rt.app.login(SLUG, "alice").await;
    assert_eq!(acme_access.len(), acme_token.len());
    for (query, bearer) in [
        (String::new(), Some(acme_token.as_str())),
        (format!("?token={acme_token}"), None),
        (format!("?token={acme_refresh}"), None),
        ("?token=not-a-jwt".to_owned(), None),
    ] {
        let (status, _, mut body) =
            open_on(&rt.app.router, stream_request(OTHER, &query, bearer, &[])).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{query}");
        let bytes = body
            .body
            .frame()
            .await
            .expect("a body")
            .expect("bytes")
            .into_data()
            .expect("data");
        let json: Value = serde_json::from_slice(&bytes).expect("JSON error");
        assert_eq!(json["code"], "token_not_valid");
        assert!(!json.to_string().contains(SLUG), "{json}");
    }
    let (status, _, _) = open_on(&rt.app.router, stream_request(OTHER, "", None, &[])).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(rt.realtime.hub().connections(), 0);
}

#[tokio::test]
async fn a_notification_written_through_one_instance_reaches_a_stream_held_by_another() {
    let rt = rt(&[SLUG]).await;
    let alice = rt
        .app
        .user(SLUG, "alice", Some(Role::Consultant), &[], &[])
        .await;
    let token = rt.app.token(SLUG, "alice").await;
    let second = second_instance(&rt.app).await;
    let mut remote = connect(&second.router, SLUG, &token, alice).await;
    assert_eq!(rt.realtime.hub().connections(), 0);
    assert_eq!(second.realtime.hub().connections(), 1);
    let started = Instant::now();
    let id = give(&rt.app, SLUG, alice, "from instance one").await;
    let frame = remote.expect("notification_message").await;
    assert!(started.elapsed() < SECOND, "{:?}", started.elapsed());
    assert_eq!(frame.id, Some(id));
    // A read through instance one reaches the tab on instance two.
    let (status, _) = call_on(
        &rt.app.router,
        Method::POST,
        SLUG,
        &format!("/api/v1/notifications/{id}/mark_read/"),
        &token,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        remote.expect("notification_read").await.data["notification_ids"],
        json!([id])
    );
    assert_eq!(
        remote.expect("unread_count_update").await.data["unread_count"],
        0
    );
    drop(remote);
    second.pool.close().await;
}

#[tokio::test]
async fn last_event_id_replays_exactly_the_missed_notifications_in_order_then_continues_live() {
    let rt = rt(&[SLUG]).await;
    let alice = rt
        .app
        .user(SLUG, "alice", Some(Role::Consultant), &[], &[])
        .await;
    let bob = rt
        .app
        .user(SLUG, "bob", Some(Role::Consultant), &[], &[])
        .await;
    let token = rt.app.token(SLUG, "alice").await;
    let mut first = connect(&rt.app.router, SLUG, &token, alice).await;
    let seen = give(&rt.app, SLUG, alice, "seen").await;
    assert_eq!(first.expect("notification_message").await.id, Some(seen));
    drop(first);
    // Missed while disconnected (bob's is not alice's business).
    let mut missed = Vec::new();
    for i in 0..3 {
        missed.push(give(&rt.app, SLUG, alice, &format!("missed {i}")).await);
        give(&rt.app, SLUG, bob, "bob's").await;
    }
    for (query, headers) in [
        (String::new(), vec![("last-event-id", seen.to_string())]),
        (format!("?last_event_id={seen}"), vec![]),
    ] {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (status, _, mut stream) = open_on(
            &rt.app.router,
            stream_request(SLUG, &query, Some(&token), &headers),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        stream.expect("connection_established").await;
        let mut replayed = Vec::new();
        for _ in 0..missed.len() {
            let frame = stream.expect("notification_message").await;
            assert_eq!(frame.data["notification"]["id"].as_i64(), frame.id);
            replayed.push(frame.id.expect("id"));
        }
        assert_eq!(replayed, missed, "{query}");
        let live = give(&rt.app, SLUG, alice, "live").await;
        assert_eq!(stream.expect("notification_message").await.id, Some(live));
        stream.expect_quiet(Duration::from_millis(300)).await;
        // The next reconnection from the same id gets this one too.
        missed.push(live);
    }
}

#[tokio::test]
async fn reconnecting_while_notifications_are_being_written_loses_none_and_repeats_none() {
    let rt = rt(&[SLUG]).await;
    let alice = rt
        .app
        .user(SLUG, "alice", Some(Role::Consultant), &[], &[])
        .await;
    let token = rt.app.token(SLUG, "alice").await;
    let app = &rt.app;
    let writer = async {
        let mut ids = Vec::new();
        for i in 0..40 {
            ids.push(give(app, SLUG, alice, &format!("n{i}")).await);
            tokio::task::yield_now().await;
        }
        ids
    };
    let reader = async {
        // Connect mid-way through the writes, resuming from the start.
        tokio::time::sleep(Duration::from_millis(20)).await;
        let (status, _, stream) = open_on(
            &app.router,
            stream_request(SLUG, "", Some(&token), &[("last-event-id", "0")]),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        stream
    };
    let (written, mut stream) = tokio::join!(writer, reader);
    stream.expect("connection_established").await;
    let mut received = Vec::new();
    while let Some(frame) = stream.event(Duration::from_millis(500)).await {
        assert_eq!(frame.kind(), "notification_message");
        received.push(frame.id.expect("id"));
    }
    assert_eq!(
        received, written,
        "every notification exactly once, in order"
    );
}

#[tokio::test]
async fn a_large_notification_is_read_from_its_row_and_delivered_whole() {
    let rt = rt(&[SLUG]).await;
    let alice = rt
        .app
        .user(SLUG, "alice", Some(Role::Consultant), &[], &[])
        .await;
    let token = rt.app.token(SLUG, "alice").await;
    let mut tab = connect(&rt.app.router, SLUG, &token, alice).await;
    let message = "é".repeat(6000);
    let id = give_message(&rt.app, SLUG, alice, "big", &message).await;
    let frame = tab.expect("notification_message").await;
    assert_eq!(frame.id, Some(id));
    assert_eq!(frame.data["notification"]["message"], message.as_str());
}

#[tokio::test]
async fn a_slow_client_is_closed_with_an_error_when_its_buffer_fills_while_others_keep_receiving() {
    let rt = rt_with(
        &[SLUG],
        Realtime::new(4, Duration::from_secs(30)),
        CorsOrigins::Any,
    )
    .await;
    let alice = rt
        .app
        .user(SLUG, "alice", Some(Role::Consultant), &[], &[])
        .await;
    let token = rt.app.token(SLUG, "alice").await;
    let schema = schema(&rt.app, SLUG);
    // The slow tab is never read until the end.
    let (status, _, mut slow) =
        open_on(&rt.app.router, stream_request(SLUG, "", Some(&token), &[])).await;
    assert_eq!(status, StatusCode::OK);
    let mut fast = connect(&rt.app.router, SLUG, &token, alice).await;
    let mut ids = Vec::new();
    for i in 0..8 {
        let id = give(&rt.app, SLUG, alice, &format!("n{i}")).await;
        assert_eq!(fast.expect("notification_message").await.id, Some(id));
        ids.push(id);
    }
    assert_eq!(
        rt.realtime.hub().user_connections(&schema, alice),
        1,
        "the slow tab was closed"
    );
    assert!(rt.realtime.is_online(&schema, alice));
    // What it had buffered, then an error, then the end.
    slow.expect("connection_established").await;
    for id in &ids[..4] {
        assert_eq!(slow.expect("notification_message").await.id, Some(*id));
    }
    let error = slow.expect("error").await;
    assert!(error.data["message"]
        .as_str()
        .expect("message")
        .contains("Last-Event-ID"));
    assert!(slow.frame(SECOND).await.is_none());
    assert!(slow.ended, "the response ended");
    // It resumes from the last id it got.
    let (_, _, mut again) = open_on(
        &rt.app.router,
        stream_request(
            SLUG,
            "",
            Some(&token),
            &[("last-event-id", &ids[3].to_string())],
        ),
    )
    .await;
    again.expect("connection_established").await;
    for id in &ids[4..] {
        assert_eq!(again.expect("notification_message").await.id, Some(*id));
    }
}

#[tokio::test]
async fn heartbeats_arrive_at_the_configured_interval() {
    let rt = rt_with(
        &[SLUG],
        Realtime::new(16, Duration::from_millis(200)),
        CorsOrigins::Any,
    )
    .await;
    let alice = rt
        .app
        .user(SLUG, "alice", Some(Role::Consultant), &[], &[])
        .await;
    let token = rt.app.token(SLUG, "alice").await;
    let mut tab = connect(&rt.app.router, SLUG, &token, alice).await;
    let started = Instant::now();
    for _ in 0..2 {
        let beat = tab.frame(SECOND).await.expect("a heartbeat");
        assert_eq!(beat.kind(), "heartbeat");
        assert_eq!(beat.id, None);
        let at = beat.data["timestamp"].as_str().expect("timestamp");
        chrono::DateTime::parse_from_rfc3339(at).expect("an ISO timestamp");
    }
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(350) && elapsed < SECOND,
        "{elapsed:?}"
    );
}

#[tokio::test]
async fn a_user_is_online_while_any_stream_is_open() {
    let rt = rt(&[SLUG, OTHER]).await;
    let alice = rt
        .app
        .user(SLUG, "alice", Some(Role::Consultant), &[], &[])
        .await;
    let token = rt.app.token(SLUG, "alice").await;
    let acme = schema(&rt.app, SLUG);
    assert!(!rt.realtime.is_online(&acme, alice));
    let tab1 = connect(&rt.app.router, SLUG, &token, alice).await;
    let tab2 = connect(&rt.app.router, SLUG, &token, alice).await;
    assert!(rt.realtime.is_online(&acme, alice));
    assert_eq!(rt.realtime.online_users(&acme), vec![alice]);
    assert!(!rt.realtime.is_online(&schema(&rt.app, OTHER), alice));
    drop(tab1);
    assert!(rt.realtime.is_online(&acme, alice), "one tab is still open");
    drop(tab2);
    assert!(!rt.realtime.is_online(&acme, alice));
    assert_eq!(rt.realtime.hub().connections(), 0);
}

#[tokio::test]
async fn cors_preflights_allow_the_client_headers_and_the_stream_carries_the_origin() {
    let origin = "https://crm.example.com";
    let rt = rt_with(
        &[SLUG],
        Realtime::default(),
        CorsOrigins::List(vec![origin.to_owned()]),
    )
    .await;
    let alice = rt
        .app
        .user(SLUG, "alice", Some(Role::Consultant), &[], &[])
        .await;
    let token = rt.app.token(SLUG, "alice").await;
    for path in [STREAM, "/api/v1/notifications/"] {
        let preflight = Request::builder()
            .method(Method::OPTIONS)
            .uri(path)
            .header("host", "acme.localhost")
            .header("origin", origin)
            .header("access-control-request-method", "GET")
            .header(
                "access-control-request-headers",
                "authorization, content-type, cache-control, pragma, expires",
            )
            .body(Body::empty())
            .expect("request");
        let response = rt
            .app
            .router
            .clone()
            .oneshot(preflight)
            .await
            .expect("infallible");
        assert!(
            response.status().is_success(),
            "{path}: {}",
            response.status()
        );
        let headers = response.headers();
        assert_eq!(headers["access-control-allow-origin"], origin);
        let allowed = headers["access-control-allow-headers"]
            .to_str()
            .expect("ascii")
            .to_lowercase();
        for name in [
            "authorization",
            "content-type",
            "cache-control",
            "pragma",
            "expires",
        ] {
            assert!(allowed.contains(name), "{name} in {allowed}");
        }
    }
    let (status, headers, mut stream) = open_on(
        &rt.app.router,
        stream_request(
            SLUG,
            &format!("?token={token}"),
            None,
            &[("origin", origin)],
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["access-control-allow-origin"], origin);
    assert_eq!(
        stream.expect("connection_established").await.data["user_id"],
        alice
    );
    // Another origin is not allowed.
    let (_, headers, _) = open_on(
        &rt.app.router,
        stream_request(
            SLUG,
            &format!("?token={token}"),
            None,
            &[("origin", "https://evil.example")],
        ),
    )
    .await;
    assert!(headers.get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn the_development_default_allows_any_origin_on_the_stream() {
    let rt = rt(&[SLUG]).await;
    let alice = rt
        .app
        .user(SLUG, "alice", Some(Role::Consultant), &[], &[])
        .await;
    let token = rt.app.token(SLUG, "alice").await;
    let (_, headers, mut stream) = open_on(
        &rt.app.router,
        stream_request(
            SLUG,
            "",
            Some(&token),
            &[("origin", "http://acme-immigrate.localhost:5173")],
        ),
    )
    .await;
    assert_eq!(headers["access-control-allow-origin"], "*");
    stream.expect("connection_established").await;
    let _ = alice;
}

#[tokio::test]
async fn streams_catch_up_after_the_listener_loses_its_database_connection() {
    let rt = rt(&[SLUG]).await;
    let alice = rt
        .app
        .user(SLUG, "alice", Some(Role::Consultant), &[], &[])
        .await;
    let token = rt.app.token(SLUG, "alice").await;
    let mut tab = connect(&rt.app.router, SLUG, &token, alice).await;
    let before = give(&rt.app, SLUG, alice, "before").await;
    assert_eq!(tab.expect("notification_message").await.id, Some(before));
    let killed: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
          WHERE datname = current_database() AND query LIKE 'LISTEN%'",
    )
    .fetch_all(rt.app.tenancy.db.pool())
    .await
    .expect("terminate");
    assert_eq!(killed, vec![true], "the listener's connection");
    // Written while the listener is (probably) down: its notice may be lost.
    let during = give(&rt.app, SLUG, alice, "during").await;
    assert_eq!(
        tab.event(Duration::from_secs(3)).await.map(|f| f.id),
        Some(Some(during))
    );
    let after = give(&rt.app, SLUG, alice, "after").await;
    assert_eq!(tab.expect("notification_message").await.id, Some(after));
    tab.expect_quiet(Duration::from_millis(300)).await;
}

/// A `tracing` writer into a shared buffer.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn request_logs_name_the_path_but_never_the_token() {
    let rt = rt(&[SLUG]).await;
    let alice = rt
        .app
        .user(SLUG, "alice", Some(Role::Consultant), &[], &[])
        .await;
    let token = rt.app.token(SLUG, "alice").await;
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let guard = tracing::subscriber::set_default(subscriber);
    let (status, _, mut stream) = open_on(
        &rt.app.router,
        stream_request(SLUG, &format!("?token={token}&last_event_id=0"), None, &[]),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    stream.expect("connection_established").await;
    drop(stream);
    let (status, _, _) = open_on(
        &rt.app.router,
        stream_request(SLUG, "?token=bad.token.value", None, &[]),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    drop(guard);
    let logs = String::from_utf8(captured.0.lock().expect("lock").clone()).expect("utf-8");
    assert!(logs.contains(STREAM), "the request was logged: {logs}");
    assert!(!logs.contains(&token), "no token in the logs");
    assert!(!logs.contains("bad.token.value"));
    assert!(!logs.contains("token="));
    let _ = alice;
}
