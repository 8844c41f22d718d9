//! `leopard demo` with no database URL: it starts its own PostgreSQL, serves the demo tenants,
//! and stops that PostgreSQL when it stops.

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

async fn get(client: &reqwest::Client, url: &str, host: &str) -> (u16, serde_json::Value) {
    let response = client
        .get(url)
        .header("host", host)
        .send()
        .await
        .expect("request");
    let status = response.status().as_u16();
    (status, response.json().await.expect("JSON"))
}

#[tokio::test]
async fn demo_with_no_database_url_serves_both_tenants_and_stops_its_postgres_on_sigterm() {
    if leopard_tenancy::embedded::EmbeddedPostgres::find_binaries().is_none() {
        panic!("{}", leopard_tenancy::embedded::NO_BINARIES_HELP);
    }
    let data_dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let bind = format!("127.0.0.1:{port}");
    let mut child = Command::new(env!("CARGO_BIN_EXE_leopard"))
        .args(["demo", "--bind", &bind, "--data-dir"])
        .arg(data_dir.path())
        .env_remove("DATABASE_URL")
        .env_remove("LEOPARD_DATABASE_URL")
        .env("LEOPARD_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the binary runs");

    // The banner appears once the server listens.
    let stdout = child.stdout.take().expect("stdout");
    let banner = tokio::task::spawn_blocking(move || {
        let mut lines = Vec::new();
        for line in BufReader::new(stdout).lines() {
            let line = line.expect("line");
            let done = line.starts_with("Stop with");
            lines.push(line);
            if done {
                break;
            }
        }
        lines.join("\n")
    });
    let banner = tokio::time::timeout(Duration::from_secs(120), banner)
        .await
        .expect("demo started within 2 minutes")
        .expect("joined");
    assert!(banner.contains("acme"), "{banner}");

    let client = reqwest::Client::new();
    let base = format!("http://{bind}");
    let (status, body) = get(&client, &format!("{base}/health/"), "localhost").await;
    assert_eq!(status, 200);
    assert_eq!(body["status"], "healthy");
    for (host, name) in [
        ("acme.localhost", "Acme Corp"),
        ("acme-immigrate.localhost", "Acme Corp"),
        ("globex.localhost", "Globex Corporation"),
    ] {
        let (status, body) = get(&client, &format!("{base}/api/public/tenant-info/"), host).await;
        assert_eq!(status, 200, "{host}");
        assert_eq!(body["tenant_name"], name, "{host}");
    }

    // Every demo user logs in with the printed password and has its role.
    assert!(
        banner.contains(leopard_server::seed::DEMO_PASSWORD),
        "{banner}"
    );
    for (username, role, _, _) in leopard_server::seed::DEMO_USERS {
        let response = client
            .post(format!("{base}/api/token/"))
            .header("host", "globex.localhost")
            .json(&serde_json::json!({
                "username": username, "password": leopard_server::seed::DEMO_PASSWORD }))
            .send()
            .await
            .expect("login");
        assert_eq!(response.status().as_u16(), 200, "{username}");
        let tokens: serde_json::Value = response.json().await.expect("JSON");
        let access = tokens["access"].as_str().expect("access");
        let profile: serde_json::Value = client
            .get(format!("{base}/api/v1/users/profile/"))
            .header("host", "globex.localhost")
            .bearer_auth(access)
            .send()
            .await
            .expect("profile")
            .json()
            .await
            .expect("JSON");
        assert_eq!(profile["primary_group"], role.group_name(), "{username}");
    }
    // The demo's platform admin logs in on the base host with the same password.
    let response = client
        .post(format!("{base}/api/platform/token/"))
        .header("host", "localhost")
        .json(&serde_json::json!({
            "username": leopard_server::seed::DEMO_PLATFORM_ADMIN,
            "password": leopard_server::seed::DEMO_PASSWORD }))
        .send()
        .await
        .expect("platform login");
    assert_eq!(response.status().as_u16(), 200, "the demo platform admin");
    assert!(
        data_dir.path().join("jwt-secret").exists(),
        "dev mode keeps its generated secret in the data directory"
    );

    let pid_file = std::fs::read_to_string(data_dir.path().join("postgres/postmaster.pid"))
        .expect("the embedded cluster runs under the data directory");
    let pg_pid: u32 = pid_file
        .lines()
        .next()
        .expect("pid line")
        .trim()
        .parse()
        .expect("pid");
    assert!(std::path::Path::new(&format!("/proc/{pg_pid}")).exists());

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let started = Instant::now();
    let exit = loop {
        if let Some(exit) = child.try_wait().expect("wait") {
            break exit;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "demo did not stop"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(exit.success(), "graceful exit: {exit:?}");
    let started = Instant::now();
    while std::path::Path::new(&format!("/proc/{pg_pid}")).exists() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "PostgreSQL still runs"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!data_dir.path().join("postgres/postmaster.pid").exists());
}
