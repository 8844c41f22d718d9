//! Real `leopard serve` processes over a test database, for the tests that need more than one
//! instance (notices between processes, the principal cache, shutdown).

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::TestApp;

/// The JWT secret every test process shares, so a token from one is valid on the other.
pub const SECRET: &str = "a-shared-secret-of-at-least-32-bytes!";

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// A `leopard serve` process on `port` over `app`'s database, with a pool of `pool_size`, no
/// scheduler, [`SECRET`] and its own `data_dir`.
pub fn serve(app: &TestApp, port: u16, data_dir: &std::path::Path, pool_size: u32) -> Child {
    serve_with(app, port, data_dir, pool_size, &[])
}

/// [`serve`] with extra `serve` flags (`--header-timeout-secs`, …).
pub fn serve_with(
    app: &TestApp,
    port: u16,
    data_dir: &std::path::Path,
    pool_size: u32,
    flags: &[&str],
) -> Child {
    Command::new(env!("CARGO_BIN_EXE_leopard"))
        .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
        .args(["--pool-size", &pool_size.to_string()])
        .args(["--no-scheduler", "--jwt-secret", SECRET])
        .arg("--data-dir")
        .arg(data_dir)
        .args(flags)
        .env("LEOPARD_DATABASE_URL", app.tenancy.db.url())
        .env("LEOPARD_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the binary runs")
}

/// Runs the `leopard` binary with `args` against the database at `url`; (success, stdout +
/// stderr).
pub fn cli(url: &str, args: &[&str]) -> (bool, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_leopard"))
        .args(args)
        .env("LEOPARD_DATABASE_URL", url)
        .env("LEOPARD_LOG", "warn")
        .output()
        .expect("the binary runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

/// Logs `username` in on `host` through the server on `port` (the test password); the access
/// token, or `None` when the login was refused or failed.
pub async fn login_over_http(
    client: &reqwest::Client,
    port: u16,
    host: &str,
    username: &str,
) -> Option<String> {
    let response = client
        .post(format!("http://127.0.0.1:{port}/api/token/"))
        .header("host", host)
        .json(&serde_json::json!({"username": username, "password": super::PASSWORD}))
        .send()
        .await
        .ok()?;
    if !response.status().is_success() {
        return None;
    }
    let body: serde_json::Value = response.json().await.ok()?;
    body["access"].as_str().map(str::to_owned)
}

/// [`login_over_http`] that must succeed.
pub async fn login(client: &reqwest::Client, port: u16, host: &str, username: &str) -> String {
    login_over_http(client, port, host, username)
        .await
        .unwrap_or_else(|| panic!("{username} logs in on {host}"))
}

/// Waits (up to 30 s) until the server on `port` answers `/health/` with a success.
pub async fn healthy(client: &reqwest::Client, port: u16) {
    for _ in 0..300 {
        let ok = client
            .get(format!("http://127.0.0.1:{port}/health/"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        if ok {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the server on port {port} never became healthy");
}

/// A server process that is killed when dropped, so a failing test leaves no process behind.
pub struct Guard(pub Child);

impl Guard {
    /// Sends SIGTERM and waits for the exit (up to `wait`): the exit status, or `None` when it
    /// did not stop in time (it is then killed).
    pub fn terminate(&mut self, wait: Duration) -> Option<std::process::ExitStatus> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let deadline = std::time::Instant::now() + wait;
        while std::time::Instant::now() < deadline {
            if let Ok(Some(status)) = self.0.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}
