//! Real time: the notification stream `GET /api/v1/notifications/stream/` (Server-Sent
//! Events) and the PostgreSQL listener that feeds it across server processes.
//!
//! **Delivery.** [`crate::notify::notify`] publishes a notice on [`crate::notify::CHANNEL`] in
//! the transaction that writes the row. Every process runs one [`Listener`] (a `LISTEN`
//! connection of the pool); for a notice about a user with open streams on this process it
//! builds the `notification_message` frame (from the notice, or by reading the row when the
//! notice was too big to carry it) and publishes it on the process's [`Hub`], keyed by (tenant
//! schema, user id). So a notification written by any process — API request, event handler,
//! scheduler — reaches every open tab of its recipient on every process, and nothing crosses
//! tenants.
//!
//! **Frames** (unnamed `data:` JSON frames, spec §1): `connection_established` first, then
//! `notification_message` (with `id: <notification id>`), `notification_read`,
//! `unread_count_update`, `heartbeat` (every `heartbeat` interval, 30 s by default) and `error`
//! (then the stream ends).
//!
//! **Resume.** A stream opened with `Last-Event-ID: <id>` (or `?last_event_id=<id>`) first
//! replays the caller's notifications with a greater id, in id order, then continues live.
//! The stream subscribes to the hub *before* reading the replay, and drops live frames of
//! notifications it has just replayed, so there is neither a gap nor a duplicate at the seam.
//! At most [`REPLAY_LIMIT`] notifications are replayed per connection: with more missed, the
//! stream ends after them and the client's reconnection (with the last id) fetches the next
//! batch.
//!
//! **Interruptions.** If the listener loses its database connection, notices sent meanwhile are
//! lost; once it has reconnected it asks every open stream to resynchronise: each replays the
//! notifications after the last id it delivered (or after the newest one that existed when it
//! connected). Clients need do nothing.
//!
//! **Slow clients.** Each stream buffers at most `buffer` frames; when a frame finds the buffer
//! full the stream is removed from the hub, gets the frames already buffered, an `error` frame,
//! and ends (the client reconnects with `Last-Event-ID`). Other streams are not delayed.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use chrono::{SecondsFormat, Utc};
use leopard_http::sse::{Hub, Received, Subscription};
use leopard_http::{ApiError, AuthUser, Tenant};
use leopard_tenancy::{TenantContext, TenantRegistry};
use serde::Deserialize;
use serde_json::{json, Value};
use sqlx::postgres::{PgListener, PgPool};
use tokio::task::JoinHandle;
use tokio::time::{Interval, MissedTickBehavior};

use crate::api::input::{list_params, param};
use crate::app::AppState;
use crate::notify::{CHANNEL, MESSAGE_JSON};

/// Default interval between heartbeat frames.
pub const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(30);

/// Default number of frames a stream may have waiting before it is closed as too slow.
pub const DEFAULT_BUFFER: usize = 256;

/// Most notifications replayed on one connection.
pub const REPLAY_LIMIT: usize = 1000;

/// What the hub carries to a stream.
#[derive(Debug, Clone)]
pub enum Push {
    /// A ready SSE frame; `notification` is the id of a `notification_message`.
    Frame {
        /// The notification id, for `notification_message` frames.
        notification: Option<i64>,
        /// The encoded frame.
        bytes: Bytes,
    },
    /// Notices may have been lost: replay after the last delivered id.
    Resync,
}

/// The process's streams and their settings.
#[derive(Debug)]
pub struct Realtime {
    hub: Hub<Push>,
    heartbeat: Duration,
}

impl Default for Realtime {
    fn default() -> Self {
        Self::new(DEFAULT_BUFFER, DEFAULT_HEARTBEAT)
    }
}

impl Realtime {
    /// Streams buffering at most `buffer` frames each, with a heartbeat every `heartbeat`.
    pub fn new(buffer: usize, heartbeat: Duration) -> Self {
        Self {
            hub: Hub::new(buffer),
            heartbeat: heartbeat.max(Duration::from_millis(10)),
        }
    }

    /// The hub: open streams per (tenant schema, user), presence, counts.
    pub fn hub(&self) -> &Hub<Push> {
        &self.hub
    }

    /// The heartbeat interval.
    pub fn heartbeat(&self) -> Duration {
        self.heartbeat
    }

    /// Whether `user` of the tenant with schema `schema` has an open stream on this process.
    pub fn is_online(&self, schema: &str, user: i64) -> bool {
        self.hub.is_online(schema, user)
    }

    /// The users of the tenant with schema `schema` with an open stream on this process.
    pub fn online_users(&self, schema: &str) -> Vec<i64> {
        self.hub.online_users(schema)
    }

    /// Ends every stream (graceful shutdown: open responses complete).
    pub fn close_all(&self) {
        self.hub.close_all();
    }
}

// ----- frames ------------------------------------------------------------------------------

/// An unnamed SSE frame: `[id: <id>\n]data: <json>\n\n`.
pub fn frame(id: Option<i64>, data: &str) -> Bytes {
    let mut out = String::with_capacity(data.len() + 32);
    if let Some(id) = id {
        out.push_str("id: ");
        out.push_str(&id.to_string());
        out.push('\n');
    }
    out.push_str("data: ");
    out.push_str(data);
    out.push_str("\n\n");
    Bytes::from(out)
}

/// A `notification_message` frame around the stream's notification object (JSON text).
fn message_frame(id: i64, notification_json: &str) -> Bytes {
    frame(
        Some(id),
        &format!(r#"{{"type":"notification_message","notification":{notification_json}}}"#),
    )
}

fn json_frame(data: &Value) -> Bytes {
    frame(None, &data.to_string())
}

fn error_frame(message: &str) -> Bytes {
    json_frame(&json!({"type": "error", "message": message}))
}

fn now_iso() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Micros, true)
}

// ----- the stream --------------------------------------------------------------------------

/// `GET /api/v1/notifications/stream/`: the caller's live notifications. The access token comes
/// from `Authorization: Bearer` or `?token=` (EventSource cannot send headers) and is checked
/// like on every tenant route (signature, expiry, type, active user, bound to this tenant).
pub async fn stream(
    State(state): State<AppState>,
    tenant: Tenant,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let params = list_params(query.as_deref());
    let token = bearer(&headers)
        .or_else(|| param(&params, "token"))
        .ok_or(ApiError::NotAuthenticated)?;
    let auth = state.auth.authenticate(token, &tenant).await?;
    open(&state, &auth, &headers, &params).await
}

/// Opens the notification stream of `auth` (authenticated by a token here, by the web
/// session's cookie in [`crate::web`]), resuming after `Last-Event-ID` (or `?last_event_id=`).
pub(crate) async fn open(
    state: &AppState,
    auth: &AuthUser,
    headers: &HeaderMap,
    params: &HashMap<String, String>,
) -> Result<Response, ApiError> {
    let tenant = &auth.tenant;
    let last_event_id = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<i64>().ok())
        .or_else(|| param(params, "last_event_id").and_then(|v| v.parse().ok()))
        .filter(|id| *id >= 0);
    let user = auth.user_id.0;
    let realtime = Arc::clone(&state.realtime);
    // Subscribe first: anything committed from now on reaches the subscription.
    let subscription = realtime
        .hub
        .subscribe(tenant.tenant().schema.as_str(), user);
    let mut heartbeat = tokio::time::interval_at(
        tokio::time::Instant::now() + realtime.heartbeat,
        realtime.heartbeat,
    );
    heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut stream = StreamState {
        subscription,
        heartbeat,
        tenant: auth.tenant.clone(),
        user,
        pending: VecDeque::new(),
        replayed: Vec::new(),
        last_id: 0,
        finished: false,
    };
    stream.pending.push_back(json_frame(&json!({
        "type": "connection_established",
        "message": "SSE connection established",
        "user_id": user,
    })));
    match last_event_id {
        Some(last) => stream.replay(last).await?,
        None => stream.last_id = newest_id(&auth.tenant, user).await?,
    }
    tracing::debug!(user, "notification stream opened");
    let body = Body::from_stream(futures::stream::unfold(stream, StreamState::next));
    let mut response = Response::new(body);
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, no-store, must-revalidate"),
    );
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    headers.insert(header::CONNECTION, HeaderValue::from_static("keep-alive"));
    Ok(response)
}

/// The bearer token of `headers`, if any.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
        .filter(|t| !t.is_empty())
}

/// The id of `user`'s newest notification (0 for none): the resume cursor of a stream opened
/// without `Last-Event-ID`.
async fn newest_id(tenant: &TenantContext, user: i64) -> Result<i64, ApiError> {
    let mut tx = tenant.begin().await?;
    let id: i64 = sqlx::query_scalar(
        "SELECT coalesce(max(id), 0) FROM notifications WHERE assigned_to_id = $1",
    )
    .bind(user)
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(id)
}

/// One open stream: its subscription, its heartbeat, and frames waiting to be sent.
struct StreamState {
    subscription: Subscription<Push>,
    heartbeat: Interval,
    tenant: TenantContext,
    user: i64,
    /// Frames to send before anything else (greeting, replay).
    pending: VecDeque<Bytes>,
    /// Ids just replayed (sorted): live frames of these are duplicates. Cleared at the next
    /// heartbeat, by when every notice sent before the replay has arrived.
    replayed: Vec<i64>,
    /// The newest notification id delivered (or the cursor the stream started from).
    last_id: i64,
    /// End once `pending` is sent.
    finished: bool,
}

/// What woke a stream.
enum Wake {
    Received(Received<Push>),
    Heartbeat,
}

impl StreamState {
    /// Queues the caller's notifications after `after` (at most [`REPLAY_LIMIT`]; with more,
    /// the stream ends after them so the client resumes from the last one).
    async fn replay(&mut self, after: i64) -> Result<(), ApiError> {
        let mut tx = self.tenant.begin().await?;
        let rows: Vec<(i64, String)> = sqlx::query_as(&format!(
            "SELECT id, {MESSAGE_JSON}::text FROM notifications
              WHERE assigned_to_id = $1 AND id > $2
              ORDER BY id LIMIT $3"
        ))
        .bind(self.user)
        .bind(after)
        .bind(i64::try_from(REPLAY_LIMIT + 1).unwrap_or(i64::MAX))
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        self.last_id = self.last_id.max(after);
        if rows.len() > REPLAY_LIMIT {
            self.finished = true;
        }
        for (id, json) in rows.into_iter().take(REPLAY_LIMIT) {
            self.pending.push_back(message_frame(id, &json));
            self.replayed.push(id);
            self.last_id = self.last_id.max(id);
        }
        self.replayed.sort_unstable();
        Ok(())
    }

    /// The next frame, or `None` to end the response.
    async fn next(mut self) -> Option<(Result<Bytes, Infallible>, Self)> {
        loop {
            if let Some(frame) = self.pending.pop_front() {
                return Some((Ok(frame), self));
            }
            if self.finished {
                return None;
            }
            let wake = tokio::select! {
                received = self.subscription.recv() => Wake::Received(received),
                _ = self.heartbeat.tick() => Wake::Heartbeat,
            };
            match wake {
                Wake::Received(Received::Message(Push::Frame {
                    notification,
                    bytes,
                })) => {
                    if let Some(id) = notification {
                        if self.replayed.binary_search(&id).is_ok() {
                            continue;
                        }
                        self.last_id = self.last_id.max(id);
                    }
                    return Some((Ok(bytes), self));
                }
                Wake::Received(Received::Message(Push::Resync)) => {
                    if let Err(err) = self.replay(self.last_id).await {
                        tracing::warn!(error = %err, "stream resynchronisation failed");
                        self.finished = true;
                        return Some((
                            Ok(error_frame(
                                "Notifications may have been missed; reconnect to resume.",
                            )),
                            self,
                        ));
                    }
                }
                Wake::Received(Received::Overflowed) => {
                    self.finished = true;
                    return Some((
                        Ok(error_frame(
                            "The stream fell behind and was closed; reconnect with Last-Event-ID to resume.",
                        )),
                        self,
                    ));
                }
                Wake::Received(Received::Closed) => {
                    // The server is shutting down: tell the client to reconnect in a second
                    // (to another instance, or this one restarted), then end.
                    self.finished = true;
                    return Some((Ok(Bytes::from_static(SHUTDOWN_RETRY_FRAME)), self));
                }
                Wake::Heartbeat => {
                    self.replayed = Vec::new();
                    return Some((
                        Ok(json_frame(
                            &json!({"type": "heartbeat", "timestamp": now_iso()}),
                        )),
                        self,
                    ));
                }
            }
        }
    }
}

/// The last frame of a stream the server closes on shutdown: an SSE `retry:` hint (ms), so
/// clients reconnect after a second and resume with `Last-Event-ID`.
pub const SHUTDOWN_RETRY_FRAME: &[u8] = b"retry: 1000\n\n";

// ----- the listener ------------------------------------------------------------------------

/// A notice on [`CHANNEL`] (see [`crate::notify`]).
#[derive(Debug, Deserialize)]
struct Notice {
    /// The tenant's schema.
    t: String,
    /// The recipient.
    u: i64,
    /// `m` new notification, `r` marked read, `c` count changed.
    k: String,
    /// The new notification's id.
    #[serde(default)]
    id: Option<i64>,
    /// The new notification's stream object, when it fitted.
    #[serde(default)]
    n: Option<Value>,
    /// Notifications marked read.
    #[serde(default)]
    ids: Vec<i64>,
    /// The recipient's unread count after the change.
    #[serde(default)]
    c: Option<i64>,
}

/// The running listener; stops when dropped (or when the pool closes).
#[derive(Debug)]
pub struct Listener {
    handle: JoinHandle<()>,
    caches: crate::principals::Notices,
}

impl Listener {
    /// Starts listening on [`CHANNEL`] with a connection of `pool`, publishing to `realtime`'s
    /// hub. Returns once `LISTEN` is active: a notification committed afterwards is delivered.
    pub async fn start(
        pool: &PgPool,
        registry: Arc<TenantRegistry>,
        realtime: Arc<Realtime>,
    ) -> Result<Self, sqlx::Error> {
        Self::start_with_caches(pool, registry, realtime, Default::default()).await
    }

    /// Like [`Listener::start`], on the same connection also listening for the changes that
    /// invalidate the caches of `caches` (principals, list counts) and keeping those caches
    /// live while it is connected.
    pub async fn start_with_caches(
        pool: &PgPool,
        registry: Arc<TenantRegistry>,
        realtime: Arc<Realtime>,
        caches: crate::principals::Notices,
    ) -> Result<Self, sqlx::Error> {
        let mut listener = PgListener::connect_with(pool).await?;
        listener.listen(CHANNEL).await?;
        for channel in caches.channels() {
            listener.listen(channel).await?;
        }
        caches.connected();
        let kept = caches.clone();
        let handle = tokio::spawn(async move {
            let caches = kept;
            let mut contexts = Contexts {
                registry,
                by_schema: HashMap::new(),
            };
            let mut interrupted = false;
            loop {
                if interrupted {
                    // A query through the listener reconnects it (and LISTENs again) if its
                    // connection was dropped; once it answers, notices flow again and streams
                    // catch up on what was missed meanwhile. A dead connection that was not
                    // dropped yet fails here and is replaced by `try_recv` below.
                    match sqlx::query("SELECT 1").execute(&mut listener).await {
                        Ok(_) => {
                            interrupted = false;
                            caches.connected();
                            let streams = realtime.hub.publish_all(&Push::Resync);
                            tracing::warn!(
                                streams,
                                "notification listener reconnected; streams resynchronise"
                            );
                        }
                        Err(sqlx::Error::PoolClosed) => return,
                        Err(_) => {}
                    }
                }
                match listener.try_recv().await {
                    Ok(Some(notification)) if notification.channel() == CHANNEL => {
                        handle_notice(&realtime, &mut contexts, notification.payload()).await;
                    }
                    Ok(Some(notification)) => {
                        caches.notice(notification.channel(), notification.payload());
                    }
                    // The connection was lost (and replaced): notices may have been missed.
                    Ok(None) => {
                        interrupted = true;
                        caches.lost();
                    }
                    Err(sqlx::Error::PoolClosed) => {
                        tracing::debug!("pool closed; notification listener stops");
                        caches.lost();
                        return;
                    }
                    Err(err) => {
                        tracing::warn!(error = %err, "notification listener failed; retrying");
                        interrupted = true;
                        caches.lost();
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                }
            }
        });
        Ok(Self { handle, caches })
    }

    /// Stops listening.
    pub fn stop(self) {}
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.handle.abort();
        self.caches.lost();
    }
}

/// Tenant contexts by schema, for reading rows a notice did not carry.
struct Contexts {
    registry: Arc<TenantRegistry>,
    by_schema: HashMap<String, TenantContext>,
}

impl Contexts {
    fn get(&mut self, schema: &str) -> Option<TenantContext> {
        if let Some(found) = self.by_schema.get(schema) {
            return Some(found.clone());
        }
        let tenant = self
            .registry
            .tenants()
            .into_iter()
            .find(|t| t.schema.as_str() == schema)?;
        let context = self.registry.context(tenant);
        self.by_schema.insert(schema.to_owned(), context.clone());
        Some(context)
    }
}

/// Publishes one notice to the recipient's streams on this process.
async fn handle_notice(realtime: &Realtime, contexts: &mut Contexts, payload: &str) {
    let notice: Notice = match serde_json::from_str(payload) {
        Ok(notice) => notice,
        Err(err) => {
            tracing::warn!(error = %err, "ignoring a malformed notification notice");
            return;
        }
    };
    let hub = &realtime.hub;
    if !hub.is_online(&notice.t, notice.u) {
        return;
    }
    match notice.k.as_str() {
        "m" => {
            let Some(id) = notice.id else { return };
            let json = match notice.n {
                Some(n) => n.to_string(),
                None => match load_message(contexts, &notice.t, notice.u, id).await {
                    Some(json) => json,
                    None => return,
                },
            };
            hub.publish(
                &notice.t,
                notice.u,
                Push::Frame {
                    notification: Some(id),
                    bytes: message_frame(id, &json),
                },
            );
        }
        "r" | "c" => {
            if !notice.ids.is_empty() {
                let read = json_frame(&json!({
                    "type": "notification_read",
                    "notification_ids": notice.ids,
                }));
                hub.publish(
                    &notice.t,
                    notice.u,
                    Push::Frame {
                        notification: None,
                        bytes: read,
                    },
                );
            }
            if let Some(count) = notice.c {
                let update = json_frame(&json!({
                    "type": "unread_count_update",
                    "unread_count": count,
                }));
                hub.publish(
                    &notice.t,
                    notice.u,
                    Push::Frame {
                        notification: None,
                        bytes: update,
                    },
                );
            }
        }
        other => tracing::debug!(kind = other, "ignoring an unknown notification notice"),
    }
}

/// The stream object of notification `id` of `user`, read from the tenant's schema.
async fn load_message(contexts: &mut Contexts, schema: &str, user: i64, id: i64) -> Option<String> {
    let context = contexts.get(schema)?;
    let loaded = async {
        let mut tx = context.begin().await?;
        let json: Option<String> = sqlx::query_scalar(&format!(
            "SELECT {MESSAGE_JSON}::text FROM notifications WHERE id = $1 AND assigned_to_id = $2"
        ))
        .bind(id)
        .bind(user)
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok::<_, ApiError>(json)
    };
    match loaded.await {
        Ok(json) => json,
        Err(err) => {
            tracing::warn!(error = %err, "reading a notification for its stream failed");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_unnamed_data_frames_with_an_optional_id() {
        assert_eq!(
            frame(None, r#"{"type":"heartbeat"}"#),
            Bytes::from("data: {\"type\":\"heartbeat\"}\n\n")
        );
        assert_eq!(
            message_frame(7, "{}"),
            Bytes::from("id: 7\ndata: {\"type\":\"notification_message\",\"notification\":{}}\n\n")
        );
    }
}
