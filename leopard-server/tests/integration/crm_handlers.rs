//! The CRM event handlers of the server: the client timeline (`timeline.client`) and the client
//! notifications (`notifications.client_assigned`, `notifications.client_stage_changed`), run
//! by a started bus over recorded events and, for re-delivery, called directly twice.

use crate::common;

use std::time::Duration;

use common::TestApp;
use leopard_events::{Action, Event, NewEvent};
use leopard_rbac::Role;
use leopard_server::handlers;
use serde_json::{json, Value};
use sqlx::Row as _;

/// Inserts a client (stage LEAD) in `branch` assigned to `assigned_to`; returns its id.
async fn client(app: &TestApp, branch: Option<i64>, assigned_to: Option<i64>) -> i64 {
    let mut tx = app.context("acme").begin().await.expect("tx");
    let id = sqlx::query_scalar(
        "INSERT INTO clients (first_name, last_name, country, branch_id, assigned_to_id, stage)
         VALUES ('Jane', 'Doe', 'AU', $1, $2, 'LEAD') RETURNING id",
    )
    .bind(branch)
    .bind(assigned_to)
    .fetch_one(&mut *tx)
    .await
    .expect("client");
    tx.commit().await.expect("commit");
    id
}

/// The client's state as the API records it.
fn state(stage: &str, assigned_to: Option<i64>, branch: Option<i64>) -> Value {
    json!({
        "stage": stage, "assigned_to": assigned_to, "branch_id": branch,
        "first_name": "Jane", "last_name": "Doe",
    })
}

/// A per-field update event of client `id` by `actor`.
fn field_update(id: i64, field: &str, previous: Value, current: Value, actor: i64) -> NewEvent {
    let mut event = NewEvent::new("Client", id, Action::Update)
        .with_previous(previous)
        .with_current(current)
        .by(actor);
    event.event_type = format!("Client.{field}.UPDATE");
    event.changed_fields = vec![field.to_owned()];
    event
}

/// Records `event` in its own committed tenant transaction; returns it as handlers receive it.
async fn record(app: &TestApp, event: NewEvent) -> Event {
    let mut tx = app.context("acme").begin().await.expect("tx");
    let tenant_id = tx.tenant().id.0;
    let id = leopard_events::record(&mut tx, event.clone())
        .await
        .expect("record");
    tx.commit().await.expect("commit");
    Event {
        id,
        tenant_id,
        tenant_slug: "acme".to_owned(),
        event_type: event.event_type,
        entity_type: event.entity_type,
        entity_id: event.entity_id,
        action: event.action,
        previous: event.previous,
        current: event.current,
        changed_fields: event.changed_fields,
        actor_id: event.actor_id,
        occurred_at: chrono::Utc::now(),
        attempt: 1,
    }
}

/// Waits until every recorded event is completed (bounded, polling the database).
async fn all_completed(app: &TestApp) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let pending: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM public.leopard_events WHERE state <> 'completed'",
        )
        .fetch_one(app.tenancy.db.pool())
        .await
        .expect("pending");
        if pending == 0 {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{pending} events never completed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `(notification_type, recipient, title, message, meta_info, created_by)` of every
/// notification, by id.
async fn notifications(app: &TestApp) -> Vec<(String, i64, String, String, Value, Option<i64>)> {
    let mut tx = app.context("acme").begin().await.expect("tx");
    let rows = sqlx::query(
        "SELECT notification_type, assigned_to_id, title, message, meta_info, created_by_id
           FROM notifications ORDER BY id",
    )
    .fetch_all(&mut *tx)
    .await
    .expect("notifications");
    tx.commit().await.expect("commit");
    rows.iter()
        .map(|r| {
            (
                r.get("notification_type"),
                r.get("assigned_to_id"),
                r.get("title"),
                r.get("message"),
                r.get("meta_info"),
                r.get("created_by_id"),
            )
        })
        .collect()
}

/// `(client_id, activity_type, performed_by_id, description, metadata)` of every timeline
/// entry, in timeline order (when the events happened).
async fn timeline(app: &TestApp) -> Vec<(i64, String, Option<i64>, String, Value)> {
    let mut tx = app.context("acme").begin().await.expect("tx");
    let rows = sqlx::query(
        "SELECT client_id, activity_type, performed_by_id, description, metadata
           FROM client_activities ORDER BY created_at, id",
    )
    .fetch_all(&mut *tx)
    .await
    .expect("timeline");
    tx.commit().await.expect("commit");
    rows.iter()
        .map(|r| {
            (
                r.get("client_id"),
                r.get("activity_type"),
                r.get("performed_by_id"),
                r.get("description"),
                r.get("metadata"),
            )
        })
        .collect()
}

#[tokio::test]
async fn assigning_a_client_writes_one_timeline_entry_and_one_notification_for_the_assignee() {
    let (app, bus) = TestApp::with_bus(&["acme"]).await;
    let org = app.seed_org("acme").await;
    let admin = app
        .user("acme", "admin", Some(Role::BranchAdmin), &[org.a], &[])
        .await;
    let jane = app
        .user("acme", "jane", Some(Role::Consultant), &[org.a], &[])
        .await;
    let id = client(&app, Some(org.a), None).await;
    let event = record(
        &app,
        field_update(
            id,
            "assigned_to",
            state("LEAD", None, Some(org.a)),
            state("LEAD", Some(jane), Some(org.a)),
            admin,
        ),
    )
    .await;
    all_completed(&app).await;

    let entries = timeline(&app).await;
    assert_eq!(entries.len(), 1, "{entries:?}");
    let (client_id, kind, by, description, metadata) = &entries[0];
    assert_eq!(
        (*client_id, kind.as_str(), *by, description.as_str()),
        (id, "ASSIGNED", Some(admin), "Assigned to jane Tester")
    );
    assert_eq!(metadata["old_assigned_to"], Value::Null);
    assert_eq!(metadata["new_assigned_to"], json!(jane));
    assert_eq!(metadata["event_id"], json!(event.id));

    let notes = notifications(&app).await;
    assert_eq!(notes.len(), 1, "{notes:?}");
    let (kind, recipient, title, message, meta, created_by) = &notes[0];
    assert_eq!(kind, "CLIENT_ASSIGNED");
    assert_eq!(*recipient, jane);
    assert_eq!(title, "Client Assigned: Jane Doe");
    assert_eq!(message, "Client \"Jane Doe\" has been assigned to you.");
    assert_eq!(
        *meta,
        json!({"client_id": id, "entity_type": "client", "entity_id": id, "event_id": event.id})
    );
    assert_eq!(*created_by, Some(admin));
    bus.shutdown().await;
}

#[tokio::test]
async fn re_delivering_the_same_event_to_the_handlers_writes_nothing_twice() {
    let app = TestApp::new(&["acme"]).await;
    let org = app.seed_org("acme").await;
    let admin = app
        .user("acme", "admin", Some(Role::BranchAdmin), &[org.a], &[])
        .await;
    let boss = app
        .user("acme", "boss", Some(Role::BranchAdmin), &[org.a], &[])
        .await;
    let jane = app
        .user("acme", "jane", Some(Role::Consultant), &[org.a], &[])
        .await;
    let id = client(&app, Some(org.a), Some(jane)).await;
    let assigned = record(
        &app,
        field_update(
            id,
            "assigned_to",
            state("LEAD", None, Some(org.a)),
            state("LEAD", Some(jane), Some(org.a)),
            admin,
        ),
    )
    .await;
    let staged = record(
        &app,
        field_update(
            id,
            "stage",
            state("LEAD", Some(jane), Some(org.a)),
            state("CLIENT", Some(jane), Some(org.a)),
            admin,
        ),
    )
    .await;

    for delivery in 0..2 {
        let mut tx = app.context("acme").begin().await.expect("tx");
        let entry = handlers::record_client_timeline(&mut tx, &assigned)
            .await
            .expect("timeline");
        let notice = handlers::notify_client_assigned(&mut tx, &assigned)
            .await
            .expect("notice");
        let stage_entry = handlers::record_client_timeline(&mut tx, &staged)
            .await
            .expect("timeline");
        let stage_notices = handlers::notify_client_stage_changed(&mut tx, &staged)
            .await
            .expect("notices");
        tx.commit().await.expect("commit");
        if delivery == 0 {
            assert!(entry.is_some() && notice.is_some() && stage_entry.is_some());
            assert_eq!(stage_notices.len(), 1, "only boss is notified");
        } else {
            assert_eq!(entry, None);
            assert_eq!(notice, None);
            assert_eq!(stage_entry, None);
            assert!(stage_notices.is_empty());
        }
    }
    assert_eq!(timeline(&app).await.len(), 2);
    let notes = notifications(&app).await;
    let recipients: Vec<(&str, i64)> = notes.iter().map(|n| (n.0.as_str(), n.1)).collect();
    assert_eq!(
        recipients,
        [("CLIENT_ASSIGNED", jane), ("CLIENT_STAGE_CHANGED", boss)]
    );
}

#[tokio::test]
async fn assigning_a_client_to_oneself_notifies_nobody_but_still_writes_the_timeline() {
    let (app, bus) = TestApp::with_bus(&["acme"]).await;
    let org = app.seed_org("acme").await;
    let jane = app
        .user("acme", "jane", Some(Role::Consultant), &[org.a], &[])
        .await;
    let id = client(&app, Some(org.a), None).await;
    record(
        &app,
        field_update(
            id,
            "assigned_to",
            state("LEAD", None, Some(org.a)),
            state("LEAD", Some(jane), Some(org.a)),
            jane,
        ),
    )
    .await;
    all_completed(&app).await;

    assert!(notifications(&app).await.is_empty());
    let entries = timeline(&app).await;
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].1, "ASSIGNED");
    assert_eq!(entries[0].2, Some(jane));
    bus.shutdown().await;
}

#[tokio::test]
async fn a_stage_change_notifies_only_the_branch_admins_of_the_clients_branch_except_the_actor() {
    let (app, bus) = TestApp::with_bus(&["acme"]).await;
    let org = app.seed_org("acme").await;
    let actor = app
        .user("acme", "actor", Some(Role::BranchAdmin), &[org.a], &[])
        .await;
    let colleague = app
        .user("acme", "colleague", Some(Role::BranchAdmin), &[org.a], &[])
        .await;
    app.user("acme", "elsewhere", Some(Role::BranchAdmin), &[org.b], &[])
        .await;
    let jane = app
        .user("acme", "jane", Some(Role::Consultant), &[org.a], &[])
        .await;
    app.user("acme", "boss", Some(Role::SuperAdmin), &[], &[])
        .await;
    let id = client(&app, Some(org.a), Some(jane)).await;
    let event = record(
        &app,
        field_update(
            id,
            "stage",
            state("LEAD", Some(jane), Some(org.a)),
            state("CLIENT", Some(jane), Some(org.a)),
            actor,
        ),
    )
    .await;
    all_completed(&app).await;

    let notes = notifications(&app).await;
    assert_eq!(notes.len(), 1, "{notes:?}");
    let (kind, recipient, title, message, meta, created_by) = &notes[0];
    assert_eq!(kind, "CLIENT_STAGE_CHANGED");
    assert_eq!(*recipient, colleague);
    assert_eq!(title, "Client Stage Changed: Jane Doe");
    assert_eq!(message, "Client \"Jane Doe\" stage changed to Client.");
    assert_eq!(meta["event_id"], json!(event.id));
    assert_eq!(meta["client_id"], json!(id));
    assert_eq!(*created_by, Some(actor));

    let entries = timeline(&app).await;
    assert_eq!(entries.len(), 1);
    let (client_id, kind, by, description, metadata) = &entries[0];
    assert_eq!(
        (*client_id, kind.as_str(), *by, description.as_str()),
        (
            id,
            "STAGE_CHANGED",
            Some(actor),
            "Stage changed from Lead to Client"
        )
    );
    assert_eq!(metadata["old_stage"], "LEAD");
    assert_eq!(metadata["new_stage"], "CLIENT");
    bus.shutdown().await;
}

#[tokio::test]
async fn a_stage_change_of_a_client_without_a_branch_notifies_nobody() {
    let app = TestApp::new(&["acme"]).await;
    let org = app.seed_org("acme").await;
    let actor = app
        .user("acme", "actor", Some(Role::SuperAdmin), &[], &[])
        .await;
    app.user("acme", "admin", Some(Role::BranchAdmin), &[org.a], &[])
        .await;
    let id = client(&app, None, None).await;
    let event = record(
        &app,
        field_update(
            id,
            "stage",
            state("LEAD", None, None),
            state("FOLLOW_UP", None, None),
            actor,
        ),
    )
    .await;
    let mut tx = app.context("acme").begin().await.expect("tx");
    let written = handlers::notify_client_stage_changed(&mut tx, &event)
        .await
        .expect("notices");
    tx.commit().await.expect("commit");
    assert!(written.is_empty());
    assert!(notifications(&app).await.is_empty());
}

#[tokio::test]
async fn creating_a_client_with_an_assignee_notifies_them_and_deleting_it_writes_the_timeline() {
    let (app, bus) = TestApp::with_bus(&["acme"]).await;
    let org = app.seed_org("acme").await;
    let admin = app
        .user("acme", "admin", Some(Role::BranchAdmin), &[org.a], &[])
        .await;
    let jane = app
        .user("acme", "jane", Some(Role::Consultant), &[org.a], &[])
        .await;
    let id = client(&app, Some(org.a), Some(jane)).await;
    record(
        &app,
        NewEvent::created("Client", id, state("LEAD", Some(jane), Some(org.a))).by(admin),
    )
    .await;
    record(
        &app,
        NewEvent::deleted("Client", id, state("LEAD", Some(jane), Some(org.a))).by(admin),
    )
    .await;
    all_completed(&app).await;

    let notes = notifications(&app).await;
    let recipients: Vec<(&str, i64)> = notes.iter().map(|n| (n.0.as_str(), n.1)).collect();
    assert_eq!(recipients, [("CLIENT_ASSIGNED", jane)]);
    let kinds: Vec<(String, String)> = timeline(&app)
        .await
        .into_iter()
        .map(|e| (e.1, e.3))
        .collect();
    assert_eq!(
        kinds,
        [
            ("CLIENT_CREATED".to_owned(), "Client created".to_owned()),
            ("CLIENT_DELETED".to_owned(), "Client deleted".to_owned()),
        ]
    );
    bus.shutdown().await;
}

#[test]
fn the_handler_registry_lists_the_client_handlers_with_their_event_types() {
    let registry = handlers::registry().expect("no duplicate handlers");
    let described = registry.describe();
    let find = |name: &str| {
        described
            .iter()
            .find(|h| h.name == name)
            .unwrap_or_else(|| panic!("{name} is registered"))
    };
    assert_eq!(
        find("timeline.client").event_types,
        [
            "Client.CREATE",
            "Client.stage.UPDATE",
            "Client.assigned_to.UPDATE",
            "Client.DELETE"
        ]
    );
    assert_eq!(
        find("notifications.client_assigned").event_types,
        ["Client.CREATE", "Client.assigned_to.UPDATE"]
    );
    let stage = find("notifications.client_stage_changed");
    assert_eq!(stage.event_types, ["Client.stage.UPDATE"]);
    assert!(stage.transactional);
    assert_eq!(stage.crate_name, "leopard-server");
}

#[tokio::test]
async fn the_leopard_events_handlers_command_lists_the_client_handlers() {
    let app = TestApp::new(&["acme"]).await;
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_leopard"))
        .args(["events", "handlers"])
        .env("LEOPARD_DATABASE_URL", app.tenancy.db.url())
        .env("LEOPARD_LOG", "warn")
        .output()
        .expect("the binary runs");
    let out = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{out}");
    for name in [
        "timeline.client",
        "notifications.client_assigned",
        "notifications.client_stage_changed",
    ] {
        assert!(
            out.lines()
                .any(|l| l.starts_with(name) && l.contains("leopard-server")),
            "{name} missing from {out}"
        );
    }
}
