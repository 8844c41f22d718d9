//! `/api/v1/notifications/` over HTTP against a real PostgreSQL database: the wire fields, every
//! route, only the caller's own rows (someone else's is a 404), filters, ordering, marking read
//! and completed, bulk reads, the unread count, the overdue list, users without a role, and
//! validation.

use crate::common;

use std::collections::BTreeSet;

use chrono::{Duration, Utc};
use common::TestApp;
use http::{Method, StatusCode};
use leopard_rbac::Role;
use leopard_server::notify::{notify, NewNotification, NotificationType};
use serde_json::{json, Value};

const SLUG: &str = "acme";

/// NotificationOutput's fields per original-backend.md §2.10.
const NOTIFICATION_FIELDS: &[&str] = &[
    "id",
    "notification_type",
    "notification_type_display",
    "assigned_to",
    "assigned_to_name",
    "title",
    "message",
    "due_date",
    "meta_info",
    "read",
    "read_at",
    "is_completed",
    "is_overdue",
    "created_at",
    "updated_at",
];

/// Users `alice` (consultant), `bob` (consultant) and `nobody` (no role), with tokens.
struct World {
    app: TestApp,
    alice: i64,
    bob: i64,
    nobody: i64,
    alice_token: String,
    bob_token: String,
}

async fn world() -> World {
    let app = TestApp::new(&[SLUG]).await;
    let org = app.seed_org(SLUG).await;
    let alice = app
        .user(SLUG, "alice", Some(Role::Consultant), &[org.a], &[])
        .await;
    let bob = app
        .user(SLUG, "bob", Some(Role::Consultant), &[org.a], &[])
        .await;
    let nobody = app.user(SLUG, "nobody", None, &[], &[]).await;
    let alice_token = app.token(SLUG, "alice").await;
    let bob_token = app.token(SLUG, "bob").await;
    World {
        app,
        alice,
        bob,
        nobody,
        alice_token,
        bob_token,
    }
}

/// Writes a notification for `user` through the notification service; returns its id.
async fn give(
    app: &TestApp,
    user: i64,
    kind: NotificationType,
    title: &str,
    due: Option<chrono::DateTime<Utc>>,
) -> i64 {
    let mut tx = app.context(SLUG).begin().await.expect("tx");
    let mut n = NewNotification::new(kind, user, title, format!("{title} message"));
    n.due_date = due;
    n.meta_info = json!({"task_id": 7});
    let id = notify(&mut tx, n).await.expect("notify").expect("written");
    tx.commit().await.expect("commit");
    id
}

fn keys(value: &Value) -> BTreeSet<String> {
    value
        .as_object()
        .expect("an object")
        .keys()
        .cloned()
        .collect()
}

fn ids(page: &Value) -> Vec<i64> {
    page["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|n| n["id"].as_i64().expect("id"))
        .collect()
}

#[tokio::test]
async fn the_list_answers_the_callers_own_notifications_newest_first_with_the_original_fields() {
    let w = world().await;
    let first = give(
        &w.app,
        w.alice,
        NotificationType::ClientAssigned,
        "One",
        None,
    )
    .await;
    let second = give(&w.app, w.alice, NotificationType::TaskAssigned, "Two", None).await;
    give(&w.app, w.bob, NotificationType::TaskAssigned, "Bob's", None).await;
    let (status, _, page) = w
        .app
        .get(SLUG, "/api/v1/notifications/", &w.alice_token)
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["count"], 2);
    assert_eq!(ids(&page), vec![second, first]);
    let item = &page["results"][1];
    let expected: BTreeSet<String> = NOTIFICATION_FIELDS.iter().map(|s| s.to_string()).collect();
    assert_eq!(keys(item), expected);
    assert_eq!(item["notification_type"], "CLIENT_ASSIGNED");
    assert_eq!(item["notification_type_display"], "Client Assigned");
    assert_eq!(item["assigned_to"], w.alice);
    assert_eq!(item["assigned_to_name"], "alice Tester");
    assert_eq!(item["title"], "One");
    assert_eq!(item["message"], "One message");
    assert_eq!(item["meta_info"], json!({"task_id": 7}));
    assert_eq!(item["read"], false);
    assert_eq!(item["read_at"], Value::Null);
    assert_eq!(item["is_completed"], false);
    assert_eq!(item["is_overdue"], false);
    assert_eq!(item["due_date"], Value::Null);
    assert!(item["created_at"].as_str().expect("time").ends_with('Z'));
    assert_eq!(
        page["results"][0]["notification_type_display"],
        "Task Assigned"
    );
}

#[tokio::test]
async fn include_read_false_hides_read_ones_and_type_filters_exactly() {
    let w = world().await;
    let read = give(
        &w.app,
        w.alice,
        NotificationType::TaskAssigned,
        "Read",
        None,
    )
    .await;
    let unread = give(
        &w.app,
        w.alice,
        NotificationType::TaskAssigned,
        "Unread",
        None,
    )
    .await;
    let reminder = give(&w.app, w.alice, NotificationType::ReminderDue, "Due", None).await;
    let path = format!("/api/v1/notifications/{read}/mark_read/");
    let (status, _, _) = w
        .app
        .call(
            Method::POST,
            SLUG,
            &path,
            Some(&w.alice_token),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    for (query, expected) in [
        ("", vec![reminder, unread, read]),
        ("?include_read=false", vec![reminder, unread]),
        ("?include_read=0", vec![reminder, unread]),
        // Only the literal true values count once the parameter is given.
        ("?include_read=maybe", vec![reminder, unread]),
        ("?include_read=true", vec![reminder, unread, read]),
        ("?include_read=1", vec![reminder, unread, read]),
        ("?type=REMINDER_DUE", vec![reminder]),
        ("?type=TASK_ASSIGNED&include_read=false", vec![unread]),
        ("?type=task_assigned", vec![]),
    ] {
        let (status, _, page) = w
            .app
            .get(
                SLUG,
                &format!("/api/v1/notifications/{query}"),
                &w.alice_token,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{query}");
        assert_eq!(ids(&page), expected, "{query}");
    }
}

#[tokio::test]
async fn the_list_paginates_with_a_stable_order_when_created_at_ties() {
    let w = world().await;
    let mut tx = w.app.context(SLUG).begin().await.expect("tx");
    let mut made = Vec::new();
    for i in 0..5 {
        // One transaction: now() is the same for all five rows.
        let n = NewNotification::new(NotificationType::SystemAlert, w.alice, format!("n{i}"), "");
        made.push(notify(&mut tx, n).await.expect("notify").expect("written"));
    }
    tx.commit().await.expect("commit");
    made.reverse();
    let mut seen = Vec::new();
    for page in 1..=3 {
        let (_, _, body) = w
            .app
            .get(
                SLUG,
                &format!("/api/v1/notifications/?page={page}&page_size=2"),
                &w.alice_token,
            )
            .await;
        assert_eq!(body["count"], 5);
        seen.extend(ids(&body));
    }
    assert_eq!(seen, made);
}

#[tokio::test]
async fn the_detail_works_for_the_owner_and_is_a_404_for_anyone_else() {
    let w = world().await;
    let id = give(
        &w.app,
        w.alice,
        NotificationType::TaskAssigned,
        "Mine",
        None,
    )
    .await;
    let path = format!("/api/v1/notifications/{id}/");
    let (status, _, body) = w.app.get(SLUG, &path, &w.alice_token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["id"], id);
    assert_eq!(keys(&body).len(), NOTIFICATION_FIELDS.len());
    let (status, _, body) = w.app.get(SLUG, &path, &w.bob_token).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["code"], "not_found");
    for bad in [
        "/api/v1/notifications/999999/",
        "/api/v1/notifications/abc/",
    ] {
        let (status, _, _) = w.app.get(SLUG, bad, &w.alice_token).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{bad}");
    }
}

#[tokio::test]
async fn someone_elses_notification_cannot_be_marked_or_updated_and_stays_unchanged() {
    let w = world().await;
    let id = give(
        &w.app,
        w.alice,
        NotificationType::TaskAssigned,
        "Mine",
        None,
    )
    .await;
    for (method, path, body) in [
        (
            Method::POST,
            format!("/api/v1/notifications/{id}/mark_read/"),
            json!({}),
        ),
        (
            Method::PATCH,
            format!("/api/v1/notifications/{id}/update_notification/"),
            json!({"read": true, "is_completed": true}),
        ),
        (
            Method::PUT,
            format!("/api/v1/notifications/{id}/update_notification/"),
            json!({"read": true}),
        ),
    ] {
        let (status, _, reply) = w
            .app
            .call(method.clone(), SLUG, &path, Some(&w.bob_token), Some(body))
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}: {reply}");
    }
    let (status, _, body) = w
        .app
        .call(
            Method::POST,
            SLUG,
            "/api/v1/notifications/bulk_mark_read/",
            Some(&w.bob_token),
            Some(json!({"notification_ids": [id]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"marked_read_count": 0}));
    assert_eq!(
        w.app
            .tenant_count(
                SLUG,
                "SELECT count(*) FROM notifications WHERE read OR is_completed"
            )
            .await,
        0
    );
}

#[tokio::test]
async fn mark_read_sets_read_and_read_at_and_is_idempotent() {
    let w = world().await;
    let id = give(
        &w.app,
        w.alice,
        NotificationType::TaskAssigned,
        "Mine",
        None,
    )
    .await;
    let path = format!("/api/v1/notifications/{id}/mark_read/");
    let (status, _, first) = w
        .app
        .call(
            Method::POST,
            SLUG,
            &path,
            Some(&w.alice_token),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!(first["read"], true);
    assert!(first["read_at"].is_string());
    assert_eq!(keys(&first).len(), NOTIFICATION_FIELDS.len());
    let (status, _, again) = w
        .app
        .call(Method::POST, SLUG, &path, Some(&w.alice_token), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again["read_at"], first["read_at"]);
    let (_, _, count) = w
        .app
        .get(SLUG, "/api/v1/notifications/unread_count/", &w.alice_token)
        .await;
    assert_eq!(count, json!({"unread_count": 0}));
}

#[tokio::test]
async fn update_notification_sets_and_clears_read_and_sets_is_completed() {
    let w = world().await;
    let id = give(
        &w.app,
        w.alice,
        NotificationType::TaskAssigned,
        "Mine",
        None,
    )
    .await;
    let path = format!("/api/v1/notifications/{id}/update_notification/");
    let call = |method: Method, body: Value| {
        let app = &w.app;
        let path = path.clone();
        let token = w.alice_token.clone();
        async move {
            app.call(method, SLUG, &path, Some(&token), Some(body))
                .await
        }
    };
    let (status, _, body) = call(Method::PATCH, json!({"read": true})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["read"], true);
    assert!(body["read_at"].is_string());
    assert_eq!(body["is_completed"], false);
    let (status, _, body) = call(Method::PUT, json!({"is_completed": true})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["read"], true, "an absent field is unchanged");
    assert_eq!(body["is_completed"], true);
    let (status, _, body) = call(Method::PATCH, json!({"read": false})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["read"], false);
    assert_eq!(body["read_at"], Value::Null);
    assert_eq!(body["is_completed"], true);
    // Validation: nothing changes.
    for bad in [
        json!({"read": "yes"}),
        json!({"is_completed": 1}),
        json!([1]),
    ] {
        let (status, _, reply) = call(Method::PATCH, bad.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {reply}");
    }
    let (_, _, reply) = call(Method::PATCH, json!({"read": "yes"})).await;
    assert_eq!(reply["read"][0], "Must be a valid boolean.");
    let (_, _, body) = w
        .app
        .get(
            SLUG,
            &format!("/api/v1/notifications/{id}/"),
            &w.alice_token,
        )
        .await;
    assert_eq!(body["read"], false);
}

#[tokio::test]
async fn bulk_mark_read_marks_only_the_callers_unread_ones_and_requires_ids() {
    let w = world().await;
    let a1 = give(&w.app, w.alice, NotificationType::TaskAssigned, "1", None).await;
    let a2 = give(&w.app, w.alice, NotificationType::TaskAssigned, "2", None).await;
    let a3 = give(&w.app, w.alice, NotificationType::TaskAssigned, "3", None).await;
    let b1 = give(&w.app, w.bob, NotificationType::TaskAssigned, "b", None).await;
    let bulk = |body: Value| {
        let app = &w.app;
        let token = w.alice_token.clone();
        async move {
            app.call(
                Method::POST,
                SLUG,
                "/api/v1/notifications/bulk_mark_read/",
                Some(&token),
                Some(body),
            )
            .await
        }
    };
    let (status, _, body) = bulk(json!({"notification_ids": [a1, a2, b1, 999_999, a1]})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!({"marked_read_count": 2}));
    let (_, _, body) = bulk(json!({"notification_ids": [a1, a2, a3]})).await;
    assert_eq!(
        body,
        json!({"marked_read_count": 1}),
        "already read ones do not count"
    );
    for bad in [
        json!({}),
        json!({"notification_ids": []}),
        json!({"notification_ids": null}),
    ] {
        let (status, _, reply) = bulk(bad.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(
            reply["detail"], "notification_ids list is required",
            "{bad}"
        );
    }
    let (status, _, _) = bulk(json!({"notification_ids": ["x"]})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (_, _, body) = w
        .app
        .get(SLUG, &format!("/api/v1/notifications/{b1}/"), &w.bob_token)
        .await;
    assert_eq!(body["read"], false, "bob's notification is untouched");
}

#[tokio::test]
async fn unread_count_counts_only_the_callers_unread_notifications() {
    let w = world().await;
    for i in 0..3 {
        give(
            &w.app,
            w.alice,
            NotificationType::TaskAssigned,
            &format!("{i}"),
            None,
        )
        .await;
    }
    give(&w.app, w.bob, NotificationType::TaskAssigned, "b", None).await;
    let (status, _, body) = w
        .app
        .get(SLUG, "/api/v1/notifications/unread_count/", &w.alice_token)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"unread_count": 3}));
}

#[tokio::test]
async fn overdue_is_an_unpaginated_list_of_past_due_uncompleted_ones_by_due_date() {
    let w = world().await;
    let now = Utc::now();
    let later = give(
        &w.app,
        w.alice,
        NotificationType::TaskOverdue,
        "1h",
        Some(now - Duration::hours(1)),
    )
    .await;
    let earlier = give(
        &w.app,
        w.alice,
        NotificationType::TaskOverdue,
        "2d",
        Some(now - Duration::days(2)),
    )
    .await;
    let done = give(
        &w.app,
        w.alice,
        NotificationType::TaskOverdue,
        "done",
        Some(now - Duration::days(3)),
    )
    .await;
    give(
        &w.app,
        w.alice,
        NotificationType::TaskDueSoon,
        "future",
        Some(now + Duration::days(1)),
    )
    .await;
    give(
        &w.app,
        w.alice,
        NotificationType::SystemAlert,
        "undated",
        None,
    )
    .await;
    give(
        &w.app,
        w.bob,
        NotificationType::TaskOverdue,
        "bob",
        Some(now - Duration::days(5)),
    )
    .await;
    let (status, _, _) = w
        .app
        .call(
            Method::PATCH,
            SLUG,
            &format!("/api/v1/notifications/{done}/update_notification/"),
            Some(&w.alice_token),
            Some(json!({"is_completed": true})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, body) = w
        .app
        .get(SLUG, "/api/v1/notifications/overdue/", &w.alice_token)
        .await;
    assert_eq!(status, StatusCode::OK);
    let list = body.as_array().expect("a bare array");
    let got: Vec<i64> = list.iter().map(|n| n["id"].as_i64().expect("id")).collect();
    assert_eq!(got, vec![earlier, later]);
    assert!(list.iter().all(|n| n["is_overdue"] == true));
    assert_eq!(keys(&list[0]).len(), NOTIFICATION_FIELDS.len());
}

#[tokio::test]
async fn a_user_without_a_role_reads_and_marks_their_own_notifications() {
    let w = world().await;
    let token = w.app.token(SLUG, "nobody").await;
    let id = give(
        &w.app,
        w.nobody,
        NotificationType::SystemAlert,
        "Welcome",
        None,
    )
    .await;
    let (status, _, page) = w.app.get(SLUG, "/api/v1/notifications/", &token).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(ids(&page), vec![id]);
    assert_eq!(
        page["results"][0]["notification_type_display"],
        "System Alert"
    );
    let (status, _, body) = w
        .app
        .call(
            Method::POST,
            SLUG,
            &format!("/api/v1/notifications/{id}/mark_read/"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _, body) = w
        .app
        .get(SLUG, "/api/v1/notifications/unread_count/", &token)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["unread_count"], 0);
}

#[tokio::test]
async fn routes_refuse_missing_tokens_and_unserved_methods() {
    let w = world().await;
    for path in [
        "/api/v1/notifications/",
        "/api/v1/notifications/unread_count/",
        "/api/v1/notifications/overdue/",
        "/api/v1/notifications/stream/",
    ] {
        let (status, _, body) = w.app.call(Method::GET, SLUG, path, None, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(body["code"], "not_authenticated", "{path}");
    }
    for (method, path) in [
        (Method::POST, "/api/v1/notifications/"),
        (Method::DELETE, "/api/v1/notifications/1/"),
        (Method::GET, "/api/v1/notifications/bulk_mark_read/"),
        (Method::GET, "/api/v1/notifications/1/mark_read/"),
        (Method::POST, "/api/v1/notifications/stream/"),
    ] {
        let (status, _, body) = w
            .app
            .call(
                method.clone(),
                SLUG,
                path,
                Some(&w.alice_token),
                Some(json!({})),
            )
            .await;
        assert_eq!(
            status,
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path}: {body}"
        );
        assert_eq!(body["code"], "method_not_allowed");
    }
}
