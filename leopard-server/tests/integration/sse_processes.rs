//! Two real `leopard serve` processes on one database: a notification written through one
//! reaches a stream held by the other (PostgreSQL `LISTEN/NOTIFY` between them), and both stop
//! cleanly on SIGTERM with streams open.

use crate::common;

use std::process::{Child, Command};
use std::time::{Duration, Instant};

use common::processes::{free_port, healthy, login, serve};
use common::TestApp;
use leopard_rbac::Role;
use serde_json::{json, Value};

const SLUG: &str = "acme";
const HOST: &str = "acme.localhost";

/// Reads `data:` frames from an SSE response until one satisfies `wanted`, within `wait`.
async fn frame_where(
    response: &mut reqwest::Response,
    buffer: &mut String,
    wait: Duration,
    wanted: impl Fn(&Value) -> bool,
) -> Option<Value> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        while let Some(end) = buffer.find("\n\n") {
            let frame: String = buffer.drain(..end + 2).collect();
            if let Some(data) = frame.lines().find_map(|l| l.strip_prefix("data: ")) {
                let value: Value = serde_json::from_str(data).expect("JSON frame");
                if wanted(&value) {
                    return Some(value);
                }
            }
        }
        match tokio::time::timeout_at(deadline, response.chunk()).await {
            Ok(Ok(Some(bytes))) => buffer.push_str(&String::from_utf8_lossy(&bytes)),
            _ => return None,
        }
    }
}

fn stop(server: &mut Child) {
    let status = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let exit = server.wait().expect("the server stops");
    assert!(exit.success(), "{exit:?}");
}

#[tokio::test]
async fn a_notification_written_through_one_process_reaches_a_stream_held_by_another_within_a_second(
) {
    let app = TestApp::new(&[SLUG]).await;
    let org = app.seed_org(SLUG).await;
    app.user(SLUG, "root", Some(Role::SuperAdmin), &[], &[])
        .await;
    let cleo = app
        .user(SLUG, "cleo", Some(Role::Consultant), &[org.a], &[])
        .await;
    let dirs = tempfile::tempdir().expect("temp dir");
    let (port_a, port_b) = (free_port(), free_port());
    let mut a = serve(&app, port_a, &dirs.path().join("a"), 4);
    let mut b = serve(&app, port_b, &dirs.path().join("b"), 4);
    let client = reqwest::Client::new();
    healthy(&client, port_a).await;
    healthy(&client, port_b).await;
    let root = login(&client, port_a, HOST, "root").await;
    let cleo_token = login(&client, port_b, HOST, "cleo").await;

    // Cleo's stream is held by process B.
    let mut stream = client
        .get(format!(
            "http://127.0.0.1:{port_b}/api/v1/notifications/stream/?token={cleo_token}"
        ))
        .header("host", HOST)
        .send()
        .await
        .expect("stream");
    assert_eq!(stream.status(), 200);
    let mut buffer = String::new();
    let hello = frame_where(&mut stream, &mut buffer, Duration::from_secs(5), |f| {
        f["type"] == "connection_established"
    })
    .await
    .expect("connection_established first");
    assert_eq!(hello["user_id"], cleo);

    // A task assigned to Cleo is created through process A; its event handler writes the
    // notification (in whichever process runs the event), B's listener pushes it.
    let response = client
        .post(format!("http://127.0.0.1:{port_a}/api/v1/tasks/"))
        .header("host", HOST)
        .bearer_auth(&root)
        .json(&json!({
            "title": "Across processes", "detail": "d",
            "due_date": "2031-01-01T09:00:00Z", "assigned_to": cleo,
        }))
        .send()
        .await
        .expect("create task");
    assert_eq!(response.status(), 201);
    let committed = Instant::now();
    let pushed = frame_where(&mut stream, &mut buffer, Duration::from_secs(1), |f| {
        f["type"] == "notification_message"
    })
    .await
    .expect("the notification reached the other process's stream within a second");
    assert_eq!(pushed["notification"]["notification_type"], "TASK_ASSIGNED");
    assert_eq!(
        pushed["notification"]["title"],
        "New Task Assigned: Across processes"
    );
    assert!(committed.elapsed() <= Duration::from_secs(1));

    // Both stop cleanly with the stream still open.
    stop(&mut a);
    stop(&mut b);
}
