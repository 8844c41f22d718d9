//! Two real `leopard serve` processes on one test database (tenant `acme`), and a client, for
//! the tests of caches that must stay correct across instances.

use std::process::Child;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;

use super::processes::{free_port, healthy, serve};
use super::TestApp;

const HOST: &str = "acme.localhost";
/// The bound within which a change made on one instance is in force on another.
pub const BOUND: Duration = Duration::from_secs(1);

/// Two processes and a client; both stopped when dropped.
pub struct Pair {
    /// The processes.
    pub servers: Vec<Child>,
    /// Their ports.
    pub ports: [u16; 2],
    /// The HTTP client.
    pub client: reqwest::Client,
    _dirs: tempfile::TempDir,
}

impl Drop for Pair {
    fn drop(&mut self) {
        for server in &mut self.servers {
            let _ = server.kill();
            let _ = server.wait();
        }
    }
}

impl Pair {
    pub async fn start(app: &TestApp) -> Self {
        let dirs = tempfile::tempdir().expect("temp dir");
        let ports = [free_port(), free_port()];
        let servers = vec![
            serve(app, ports[0], &dirs.path().join("a"), 8),
            serve(app, ports[1], &dirs.path().join("b"), 8),
        ];
        let pair = Self {
            servers,
            ports,
            client: reqwest::Client::new(),
            _dirs: dirs,
        };
        for port in ports {
            pair.healthy(port).await;
        }
        pair
    }

    pub async fn healthy(&self, port: u16) {
        healthy(&self.client, port).await;
    }

    pub async fn login(&self, username: &str) -> String {
        super::processes::login(&self.client, self.ports[0], HOST, username).await
    }

    pub async fn call(
        &self,
        instance: usize,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self
            .client
            .request(
                method,
                format!("http://127.0.0.1:{}{path}", self.ports[instance]),
            )
            .header("host", HOST)
            .bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request");
        let status = response.status();
        let body = response.json().await.unwrap_or(Value::Null);
        (status, body)
    }

    pub async fn get(&self, instance: usize, path: &str, token: &str) -> (StatusCode, Value) {
        self.call(instance, reqwest::Method::GET, path, token, None)
            .await
    }

    /// Polls `GET path` on `instance` until `wanted` holds; answers how long it took, or
    /// panics after [`BOUND`].
    pub async fn until(
        &self,
        instance: usize,
        path: &str,
        token: &str,
        what: &str,
        wanted: impl Fn(StatusCode, &Value) -> bool,
    ) -> Duration {
        let start = Instant::now();
        loop {
            let (status, body) = self.get(instance, path, token).await;
            if wanted(status, &body) {
                return start.elapsed();
            }
            assert!(
                start.elapsed() < BOUND,
                "{what}: still {status} {body} after {:?}",
                start.elapsed()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// The `id`s of a list page's results.
pub fn ids(body: &Value) -> Vec<i64> {
    body["results"]
        .as_array()
        .map(|rows| rows.iter().filter_map(|r| r["id"].as_i64()).collect())
        .unwrap_or_default()
}
