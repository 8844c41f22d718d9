//! A mixed-load harness for a running Leopard server: `--concurrency` workers issue a weighted
//! mix of realistic calls (lists, details, a create, a stage move, dashboards, a login) for
//! `--duration` seconds, then it prints requests/s, errors and latency percentiles per call.
//!
//! ```text
//! cargo run --release --example load_mix -- --base http://127.0.0.1:8000 \
//!     --host acme.localhost --duration 30 --concurrency 16
//! ```
//!
//! It logs in as the demo users (`admin`, `consultant`; password `--password`), so run it against
//! `leopard demo` (scripts/bench-mix.sh does all of it). Every worker owns a deterministic
//! pseudo-random sequence (seeded by its index), so two runs issue the same mix.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

/// One kind of call of the mix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Call {
    ClientList,
    ClientListScoped,
    ClientDetail,
    TaskList,
    CollegeList,
    NoteCreate,
    CollegeStageMove,
    VisaDashboard,
    CollegeDashboard,
    Login,
}

impl Call {
    /// The calls with their weights (out of 100).
    const MIX: [(Call, u32); 10] = [
        (Call::ClientList, 15),
        (Call::ClientListScoped, 10),
        (Call::ClientDetail, 20),
        (Call::TaskList, 10),
        (Call::CollegeList, 10),
        (Call::NoteCreate, 10),
        (Call::CollegeStageMove, 10),
        (Call::VisaDashboard, 5),
        (Call::CollegeDashboard, 8),
        (Call::Login, 2),
    ];

    fn label(self) -> &'static str {
        match self {
            Call::ClientList => "GET  /api/v1/clients/ (admin)",
            Call::ClientListScoped => "GET  /api/v1/clients/ (consultant)",
            Call::ClientDetail => "GET  /api/v1/clients/{id}/",
            Call::TaskList => "GET  /api/v1/tasks/",
            Call::CollegeList => "GET  /api/v1/college-applications/",
            Call::NoteCreate => "POST /api/v1/notes/",
            Call::CollegeStageMove => "PATCH /api/v1/college-applications/{id}/",
            Call::VisaDashboard => "GET  /api/v1/visa-applications/dashboard-statistics/",
            Call::CollegeDashboard => "GET  /api/v1/college-applications/dashboard-statistics/",
            Call::Login => "POST /api/token/",
        }
    }

    fn pick(rng: &mut StdRng) -> Call {
        let total: u32 = Self::MIX.iter().map(|(_, w)| w).sum();
        let mut roll = rng.gen_range(0..total);
        for (call, weight) in Self::MIX {
            if roll < weight {
                return call;
            }
            roll -= weight;
        }
        Call::ClientDetail
    }
}

/// The command line.
#[derive(Debug, Clone)]
struct Args {
    base: String,
    host: String,
    duration: Duration,
    concurrency: usize,
    password: String,
}

fn parse_args() -> Result<Args> {
    let mut args = Args {
        base: "http://127.0.0.1:8000".into(),
        host: "acme.localhost".into(),
        duration: Duration::from_secs(20),
        concurrency: 16,
        password: "Leopard-Demo-2026".into(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--base" => args.base = value.trim_end_matches('/').to_owned(),
            "--host" => args.host = value,
            "--duration" => {
                args.duration = Duration::from_secs(value.trim_end_matches('s').parse()?)
            }
            "--concurrency" => args.concurrency = value.parse()?,
            "--password" => args.password = value,
            other => bail!("unknown flag {other}"),
        }
    }
    Ok(args)
}

/// What the workers need: tokens and the ids they pick from.
#[derive(Debug, Clone)]
struct Fixture {
    admin: String,
    consultant: String,
    clients: Vec<i64>,
    /// `(application id, the stage ids of its type)`.
    applications: Vec<(i64, Vec<i64>)>,
}

struct Harness {
    http: reqwest::Client,
    args: Args,
}

impl Harness {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.args.base)
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Result<reqwest::StatusCode> {
        let mut request = self
            .http
            .request(method, self.url(path))
            .header("host", &self.args.host);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await?;
        let status = response.status();
        // Read the whole body: a call is done when its last byte arrived.
        response.bytes().await?;
        Ok(status)
    }

    async fn json(&self, path: &str, token: &str) -> Result<Value> {
        let response = self
            .http
            .get(self.url(path))
            .header("host", &self.args.host)
            .bearer_auth(token)
            .send()
            .await?;
        let status = response.status();
        let body: Value = response.json().await?;
        if !status.is_success() {
            bail!("GET {path}: {status} {body}");
        }
        Ok(body)
    }

    async fn login(&self, username: &str) -> Result<String> {
        let response = self
            .http
            .post(self.url("/api/token/"))
            .header("host", &self.args.host)
            .json(&json!({"username": username, "password": self.args.password}))
            .send()
            .await?;
        let body: Value = response.json().await?;
        body["access"]
            .as_str()
            .map(str::to_owned)
            .with_context(|| format!("login of {username}: {body}"))
    }

    async fn fixture(&self) -> Result<Fixture> {
        let admin = self.login("admin").await?;
        let consultant = self.login("consultant").await?;
        let ids = |page: &Value| -> Vec<i64> {
            page["results"]
                .as_array()
                .map(|a| a.iter().filter_map(|r| r["id"].as_i64()).collect())
                .unwrap_or_default()
        };
        let clients = ids(&self.json("/api/v1/clients/?page_size=100", &admin).await?);
        let stages = self.json("/api/v1/stages/", &admin).await?;
        let mut by_type: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
        for stage in stages.as_array().into_iter().flatten() {
            if let (Some(t), Some(id)) = (stage["application_type"].as_i64(), stage["id"].as_i64())
            {
                by_type.entry(t).or_default().push(id);
            }
        }
        let apps = self
            .json("/api/v1/college-applications/?page_size=100", &admin)
            .await?;
        let applications = apps["results"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|a| {
                let id = a["id"].as_i64()?;
                let stages = by_type.get(&a["application_type"].as_i64()?)?.clone();
                Some((id, stages))
            })
            .collect::<Vec<_>>();
        if clients.is_empty() || applications.is_empty() {
            bail!(
                "the tenant has no clients or college applications: run it against `leopard demo`"
            );
        }
        Ok(Fixture {
            admin,
            consultant,
            clients,
            applications,
        })
    }

    /// Runs one call; returns whether it succeeded (2xx).
    async fn run(&self, call: Call, fx: &Fixture, rng: &mut StdRng) -> Result<bool> {
        use reqwest::Method;
        let client = fx.clients[rng.gen_range(0..fx.clients.len())];
        let status = match call {
            Call::ClientList => {
                self.send(Method::GET, "/api/v1/clients/", Some(&fx.admin), None)
                    .await?
            }
            Call::ClientListScoped => {
                self.send(Method::GET, "/api/v1/clients/", Some(&fx.consultant), None)
                    .await?
            }
            Call::ClientDetail => {
                self.send(
                    Method::GET,
                    &format!("/api/v1/clients/{client}/"),
                    Some(&fx.admin),
                    None,
                )
                .await?
            }
            Call::TaskList => {
                self.send(Method::GET, "/api/v1/tasks/", Some(&fx.admin), None)
                    .await?
            }
            Call::CollegeList => {
                self.send(
                    Method::GET,
                    "/api/v1/college-applications/",
                    Some(&fx.admin),
                    None,
                )
                .await?
            }
            Call::NoteCreate => {
                self.send(
                    Method::POST,
                    "/api/v1/notes/",
                    Some(&fx.admin),
                    Some(json!({"client": client, "content": "Load test note"})),
                )
                .await?
            }
            Call::CollegeStageMove => {
                let (id, stages) = &fx.applications[rng.gen_range(0..fx.applications.len())];
                let stage = stages[rng.gen_range(0..stages.len())];
                self.send(
                    Method::PATCH,
                    &format!("/api/v1/college-applications/{id}/"),
                    Some(&fx.admin),
                    Some(json!({"stage_id": stage})),
                )
                .await?
            }
            Call::VisaDashboard => {
                self.send(
                    Method::GET,
                    "/api/v1/visa-applications/dashboard-statistics/",
                    Some(&fx.admin),
                    None,
                )
                .await?
            }
            Call::CollegeDashboard => {
                self.send(
                    Method::GET,
                    "/api/v1/college-applications/dashboard-statistics/?time_filter=this_month",
                    Some(&fx.admin),
                    None,
                )
                .await?
            }
            Call::Login => {
                self.send(
                    Method::POST,
                    "/api/token/",
                    None,
                    Some(json!({"username": "consultant", "password": self.args.password})),
                )
                .await?
            }
        };
        Ok(status.is_success())
    }
}

/// The latencies (µs) and error count of one call.
#[derive(Debug, Default)]
struct Samples {
    micros: Vec<u64>,
    errors: u64,
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * (sorted.len() as f64 - 1.0)).round() as usize;
    sorted[rank.min(sorted.len() - 1)] as f64 / 1000.0
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = parse_args()?;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency)
        .timeout(Duration::from_secs(30))
        .build()?;
    let harness = std::sync::Arc::new(Harness { http, args });
    let fixture = std::sync::Arc::new(harness.fixture().await?);
    println!(
        "mix over {} clients and {} college applications; {} workers for {:?}",
        fixture.clients.len(),
        fixture.applications.len(),
        harness.args.concurrency,
        harness.args.duration
    );
    let started = Instant::now();
    let deadline = started + harness.args.duration;
    let mut workers = Vec::new();
    for worker in 0..harness.args.concurrency {
        let harness = std::sync::Arc::clone(&harness);
        let fixture = std::sync::Arc::clone(&fixture);
        workers.push(tokio::spawn(async move {
            let mut rng = StdRng::seed_from_u64(worker as u64);
            let mut samples: BTreeMap<Call, Samples> = BTreeMap::new();
            while Instant::now() < deadline {
                let call = Call::pick(&mut rng);
                let t0 = Instant::now();
                let ok = harness.run(call, &fixture, &mut rng).await.unwrap_or(false);
                let entry = samples.entry(call).or_default();
                entry.micros.push(t0.elapsed().as_micros() as u64);
                if !ok {
                    entry.errors += 1;
                }
            }
            samples
        }));
    }
    let mut all: BTreeMap<Call, Samples> = BTreeMap::new();
    for worker in workers {
        for (call, s) in worker.await? {
            let entry = all.entry(call).or_default();
            entry.micros.extend(s.micros);
            entry.errors += s.errors;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "\n| call | share | req/s | errors | p50 ms | p90 ms | p99 ms | max ms |\n| --- | --- | --- | --- | --- | --- | --- | --- |"
    );
    let total: usize = all.values().map(|s| s.micros.len()).sum();
    let mut every = Vec::with_capacity(total);
    let mut errors = 0;
    for (call, mut s) in all {
        s.micros.sort_unstable();
        every.extend_from_slice(&s.micros);
        errors += s.errors;
        println!(
            "| `{}` | {:.0} % | {:.1} | {} | {:.1} | {:.1} | {:.1} | {:.1} |",
            call.label(),
            100.0 * s.micros.len() as f64 / total.max(1) as f64,
            s.micros.len() as f64 / elapsed,
            s.errors,
            percentile(&s.micros, 50.0),
            percentile(&s.micros, 90.0),
            percentile(&s.micros, 99.0),
            percentile(&s.micros, 100.0),
        );
    }
    every.sort_unstable();
    println!(
        "| **all** | 100 % | {:.1} | {} | {:.1} | {:.1} | {:.1} | {:.1} |",
        total as f64 / elapsed,
        errors,
        percentile(&every, 50.0),
        percentile(&every, 90.0),
        percentile(&every, 99.0),
        percentile(&every, 100.0),
    );
    if errors > 0 {
        bail!("{errors} calls failed");
    }
    Ok(())
}
