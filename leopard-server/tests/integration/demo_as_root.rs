//! `leopard demo` run as root from a fresh directory only root may enter (the README's first
//! command from a checkout under /root or a `mktemp -d` folder): PostgreSQL runs as the `postgres`
//! user, which cannot enter that directory, so the cluster lives under
//! `/var/lib/leopard/postgres/` behind a link in `./.leopard/postgres`, and a second start finds it
//! again.

use std::io::{BufRead as _, BufReader};
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// Starts `leopard demo` with `cwd` as its working directory and the default data directory
/// (`./.leopard`); returns the process and its banner.
async fn start_demo(cwd: &Path, bind: &str) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_leopard"))
        .args(["demo", "--bind", bind])
        .current_dir(cwd)
        .env_remove("DATABASE_URL")
        .env_remove("LEOPARD_DATABASE_URL")
        .env_remove("LEOPARD_DATA_DIR")
        .env("LEOPARD_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the binary runs");
    let stdout = child.stdout.take().expect("stdout");
    let banner = tokio::task::spawn_blocking(move || {
        let mut lines = Vec::new();
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let done = line.starts_with("Stop with");
            lines.push(line);
            if done {
                break;
            }
        }
        lines.join("\n")
    });
    let banner = tokio::time::timeout(Duration::from_secs(180), banner)
        .await
        .expect("demo started within 3 minutes")
        .expect("joined");
    assert!(banner.contains("Stop with"), "demo did not start: {banner}");
    (child, banner)
}

/// `GET /health/` is 200 and admin logs in on acme.localhost with the demo password.
async fn health_and_login(base: &str) {
    let client = reqwest::Client::new();
    let health = client
        .get(format!("{base}/health/"))
        .send()
        .await
        .expect("health");
    assert_eq!(health.status().as_u16(), 200);
    let login = client
        .post(format!("{base}/api/token/"))
        .header("host", "acme.localhost")
        .json(&serde_json::json!({"username": "admin", "password": "Leopard-Demo-2026"}))
        .send()
        .await
        .expect("login");
    assert_eq!(login.status().as_u16(), 200);
    let tokens: serde_json::Value = login.json().await.expect("JSON");
    assert!(
        tokens["access"].as_str().is_some_and(|t| !t.is_empty()),
        "{tokens}"
    );
}

/// SIGTERM, then a clean exit within a minute.
async fn stop(mut child: Child) {
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
}

#[tokio::test]
async fn demo_as_root_from_a_directory_only_root_may_enter_serves_logins_and_restarts_on_its_cluster(
) {
    let is_root = std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0);
    if !is_root {
        eprintln!(
            "skipped: this test checks `leopard demo` as root (PostgreSQL then runs as the postgres \
             user); run the suite as root, as .ci/run does, to include it"
        );
        return;
    }
    if leopard_tenancy::embedded::EmbeddedPostgres::find_binaries().is_none() {
        panic!("{}", leopard_tenancy::embedded::NO_BINARIES_HELP);
    }
    // Like `mktemp -d` or a checkout under /root: a new directory of mode 0700.
    let closed = tempfile::tempdir().expect("temp dir");
    std::fs::set_permissions(closed.path(), std::fs::Permissions::from_mode(0o700)).expect("chmod");

    let bind = format!("127.0.0.1:{}", free_port());
    let base = format!("http://{bind}");
    let (child, banner) = start_demo(closed.path(), &bind).await;
    let link = closed.path().join(".leopard/postgres");
    let target = std::fs::read_link(&link).expect("./.leopard/postgres is a link to the cluster");
    assert!(
        target.starts_with(leopard_tenancy::embedded::RELOCATION_ROOT),
        "{}",
        target.display()
    );
    assert!(
        banner.contains(&target.display().to_string()),
        "the banner names the data directory: {banner}"
    );
    health_and_login(&base).await;
    stop(child).await;
    let mode = std::fs::metadata(closed.path())
        .expect("meta")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o700, "the directory keeps its permissions");
    assert!(
        !target.join("postmaster.pid").exists(),
        "the cluster stopped with the demo"
    );

    // A second start finds the same cluster through the link (tenants and users kept).
    let bind = format!("127.0.0.1:{}", free_port());
    let base = format!("http://{bind}");
    let (child, _) = start_demo(closed.path(), &bind).await;
    assert_eq!(std::fs::read_link(&link).expect("link"), target);
    health_and_login(&base).await;
    stop(child).await;

    std::fs::remove_dir_all(&target).expect("remove the relocated cluster");
}
