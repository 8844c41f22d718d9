//! Slow, silent and oversized clients, and the graceful shutdown (issue 17, scenarios 4 and 5),
//! against real PostgreSQL: bodies over the limit are a 413 JSON and bodies that stop arriving a
//! 408 JSON (in process, both changing nothing); silent connections and slow headers are closed
//! by a real `leopard serve` while real clients are served; on SIGTERM the in-flight request
//! completes, notification streams end with a `retry:` hint, new connections are refused and the
//! process exits within its bound.

use crate::common;

use std::time::{Duration, Instant};

use axum::body::Body;
use common::processes::{free_port, healthy, serve_with, Guard};
use common::TestApp;
use http::{Request, StatusCode};
use leopard_rbac::Role;
use serde_json::json;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

const SLUG: &str = "acme";
const HOST: &str = "acme.localhost";

/// A tenant with its organisation and a Super Admin `root`: (app, root's token, branch A).
async fn world(adjust: impl FnOnce(&mut leopard_server::app::AppConfig)) -> (TestApp, String, i64) {
    let app = TestApp::with_config(&[SLUG], adjust).await;
    let org = app.seed_org(SLUG).await;
    app.user(SLUG, "root", Some(Role::SuperAdmin), &[], &[])
        .await;
    let token = app.token(SLUG, "root").await;
    (app, token, org.a)
}

async fn clients(app: &TestApp) -> i64 {
    app.tenant_count(SLUG, "SELECT count(*) FROM clients").await
}

fn post_clients(token: &str, body: Body) -> Request<Body> {
    Request::post("/api/v1/clients/")
        .header("host", HOST)
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .body(body)
        .expect("request")
}

#[tokio::test]
async fn a_json_body_over_the_configured_limit_is_a_413_json_error_and_creates_nothing() {
    let (app, token, branch) = world(|config| config.body_limits.max_body_bytes = 2048).await;
    let big = json!({
        "first_name": "x".repeat(4000), "gender": "MALE", "country": "AU", "branch_id": branch,
    });
    let (status, _, body) = app
        .send(post_clients(&token, Body::from(big.to_string())))
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert_eq!(body["code"], "request_too_large");
    assert_eq!(
        body["detail"],
        "Request body is larger than the limit of 2048 bytes."
    );
    assert_eq!(clients(&app).await, 0, "nothing was created");

    // A body within the limit is served as before.
    let small =
        json!({"first_name": "Ada", "gender": "FEMALE", "country": "AU", "branch_id": branch});
    let (status, _, body) = app
        .send(post_clients(&token, Body::from(small.to_string())))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(clients(&app).await, 1);
}

#[tokio::test]
async fn a_web_form_over_the_configured_limit_is_a_413_page_and_signs_nobody_in() {
    let (app, _, _) = world(|config| config.body_limits.max_body_bytes = 2048).await;
    let form = format!("username=root&password={}", "x".repeat(4000));
    let request = Request::post("/login/")
        .header("host", HOST)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("accept", "text/html")
        .body(Body::from(form))
        .expect("request");
    let (status, _, _) = app.send(request).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        app.tenant_count(SLUG, "SELECT count(*) FROM web_sessions")
            .await,
        0,
        "nobody was signed in"
    );
}

#[tokio::test]
async fn a_body_that_stops_arriving_is_a_408_json_error_that_closes_the_connection_and_creates_nothing(
) {
    let (app, token, branch) = world(|config| {
        config.body_limits.body_timeout = Duration::from_millis(300);
    })
    .await;
    let (sender, receiver) =
        tokio::sync::mpsc::channel::<Result<axum::body::Bytes, std::io::Error>>(1);
    let full =
        json!({"first_name": "Slow", "gender": "MALE", "country": "AU", "branch_id": branch})
            .to_string();
    sender
        .send(Ok(axum::body::Bytes::copy_from_slice(
            &full.as_bytes()[..10],
        )))
        .await
        .expect("first half");
    let stream = futures::stream::unfold(receiver, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    let (status, headers, body) = app
        .send(post_clients(&token, Body::from_stream(stream)))
        .await;
    assert_eq!(status, StatusCode::REQUEST_TIMEOUT, "{body}");
    assert_eq!(body["code"], "request_timeout");
    assert_eq!(headers["connection"], "close");
    drop(sender);
    assert_eq!(clients(&app).await, 0, "nothing was created");
}

/// Reads until the peer closes the connection (or resets it); `false` when it is still open
/// after `wait`.
async fn closed_within(stream: &mut TcpStream, wait: Duration) -> bool {
    let mut buffer = [0u8; 1024];
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buffer)).await {
            Ok(Ok(0) | Err(_)) => return true,
            Ok(Ok(_)) => continue,
            Err(_) => return false,
        }
    }
}

#[tokio::test]
async fn silent_connections_and_slow_headers_are_closed_while_real_clients_are_served() {
    let (app, _, _) = world(|_| {}).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let _server = Guard(serve_with(
        &app,
        port,
        dir.path(),
        4,
        &["--header-timeout-secs", "1"],
    ));
    let client = reqwest::Client::new();
    healthy(&client, port).await;

    // 200 connections that never send a byte, and one that stops in the middle of its headers.
    let mut silent = Vec::new();
    for _ in 0..200 {
        silent.push(
            TcpStream::connect(("127.0.0.1", port))
                .await
                .expect("connect"),
        );
    }
    let mut slow = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    slow.write_all(b"GET /health/ HTTP/1.1\r\nHost: loc")
        .await
        .expect("partial headers");

    // Real clients are served beside them.
    for _ in 0..20 {
        let response = client
            .get(format!("http://127.0.0.1:{port}/health/"))
            .send()
            .await
            .expect("health");
        assert_eq!(response.status(), 200);
    }

    assert!(
        closed_within(&mut slow, Duration::from_secs(10)).await,
        "a connection that stopped in its headers is closed"
    );
    for stream in &mut silent {
        assert!(
            closed_within(stream, Duration::from_secs(10)).await,
            "a silent connection is closed"
        );
    }
    let response = client
        .get(format!("http://127.0.0.1:{port}/health/"))
        .send()
        .await
        .expect("health");
    assert_eq!(response.status(), 200, "the server still serves");
}

#[tokio::test]
async fn on_sigterm_the_in_flight_request_completes_streams_end_with_a_retry_hint_and_the_process_exits(
) {
    let (app, _, branch) = world(|_| {}).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let mut server = Guard(serve_with(
        &app,
        port,
        dir.path(),
        4,
        &["--shutdown-timeout-secs", "5"],
    ));
    let client = reqwest::Client::new();
    healthy(&client, port).await;
    let token = common::processes::login(&client, port, HOST, "root").await;

    // A notification stream is open.
    let mut stream = client
        .get(format!(
            "http://127.0.0.1:{port}/api/v1/notifications/stream/?token={token}"
        ))
        .header("host", HOST)
        .send()
        .await
        .expect("stream");
    assert_eq!(stream.status(), 200);

    // A request is in flight: its headers and half its body are sent.
    let body =
        json!({"first_name": "Inflight", "gender": "MALE", "country": "AU", "branch_id": branch})
            .to_string();
    let (first, rest) = body.as_bytes().split_at(body.len() / 2);
    let mut inflight = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    let head = format!(
        "POST /api/v1/clients/ HTTP/1.1\r\nHost: {HOST}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    inflight.write_all(head.as_bytes()).await.expect("headers");
    inflight.write_all(first).await.expect("first half");
    tokio::time::sleep(Duration::from_millis(300)).await;

    let signalled = Instant::now();
    let pid = server.0.id().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill runs");
    assert!(killed.success());
    tokio::time::sleep(Duration::from_millis(300)).await;

    // New connections are refused (the listener is closed).
    assert!(
        TcpStream::connect(("127.0.0.1", port)).await.is_err(),
        "a new connection after SIGTERM is refused"
    );

    // The in-flight request completes.
    inflight.write_all(rest).await.expect("second half");
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), inflight.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");

    // The stream ended with a retry hint.
    let mut frames = String::new();
    while let Ok(Ok(Some(chunk))) =
        tokio::time::timeout(Duration::from_secs(5), stream.chunk()).await
    {
        frames.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(frames.ends_with("retry: 1000\n\n"), "{frames:?}");

    let status = server
        .terminate(Duration::from_secs(10))
        .expect("the server exits");
    assert!(status.success(), "{status:?}");
    assert!(signalled.elapsed() < Duration::from_secs(10));
    assert_eq!(
        app.tenant_count(
            SLUG,
            "SELECT count(*) FROM clients WHERE first_name = 'Inflight'"
        )
        .await,
        1,
        "the answered write was kept"
    );
}
