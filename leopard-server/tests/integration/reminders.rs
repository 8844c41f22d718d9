//! `/api/v1/reminders/` over HTTP against a real PostgreSQL database: wire fields, the
//! original's page sizes, filters and ordering, scope by the linked client's branch (out of
//! scope is a 404), link validation, merge-patch, `completed/`, recorded events and validation
//! (nothing written on a 4xx).

use crate::common;

use std::collections::BTreeSet;

use common::{Org, TestApp};
use http::{Method, StatusCode};
use leopard_rbac::Role;
use serde_json::{json, Value};

const SLUG: &str = "acme";

/// The Reminder serializer's fields per original-backend.md §2.14.
const REMINDER_FIELDS: &[&str] = &[
    "id",
    "reminder_date",
    "reminder_time",
    "title",
    "meta_info",
    "created_by",
    "created_by_name",
    "created_at",
    "read",
    "is_completed",
    "notification_created",
    "content_type",
    "object_id",
];

/// An org with a super admin (`root`), a consultant of A (`cons_a`), a region manager of North
/// (`rm_north`) and a user without any role (`nobody`).
struct World {
    app: TestApp,
    org: Org,
    root: String,
}

async fn world() -> World {
    let app = TestApp::new(&[SLUG]).await;
    let org = app.seed_org(SLUG).await;
    app.user(SLUG, "root", Some(Role::SuperAdmin), &[], &[])
        .await;
    app.user(SLUG, "cons_a", Some(Role::Consultant), &[org.a], &[])
        .await;
    app.user(
        SLUG,
        "rm_north",
        Some(Role::RegionManager),
        &[],
        &[org.north],
    )
    .await;
    app.user(SLUG, "nobody", None, &[org.a], &[]).await;
    let root = app.token(SLUG, "root").await;
    World { app, org, root }
}

impl World {
    async fn token(&self, username: &str) -> String {
        self.app.token(SLUG, username).await
    }

    /// A client in `branch`, created by the super admin; returns its id.
    async fn client(&self, name: &str, branch: i64) -> i64 {
        let (status, _, json) = self
            .app
            .call(
                Method::POST,
                SLUG,
                "/api/v1/clients/",
                Some(&self.root),
                Some(
                    json!({"first_name": name, "gender": "MALE", "country": "AU", "branch_id": branch}),
                ),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{json}");
        json["id"].as_i64().expect("id")
    }

    async fn post(&self, token: &str, body: Value) -> (StatusCode, Value) {
        let (status, _, json) = self
            .app
            .call(
                Method::POST,
                SLUG,
                "/api/v1/reminders/",
                Some(token),
                Some(body),
            )
            .await;
        (status, json)
    }

    /// A reminder `title` on `client` by the holder of `token`; returns its id.
    async fn reminder(&self, token: &str, client: i64, title: &str) -> i64 {
        let (status, json) = self
            .post(
                token,
                json!({"title": title, "content_type": 10, "object_id": client,
                       "reminder_date": "2030-01-15", "reminder_time": "09:30"}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{json}");
        json["id"].as_i64().expect("id")
    }

    async fn send(
        &self,
        method: Method,
        token: &str,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let (status, _, json) = self.app.call(method, SLUG, path, Some(token), body).await;
        (status, json)
    }

    async fn list(&self, token: &str, query: &str) -> Value {
        let (status, _, json) = self
            .app
            .get(SLUG, &format!("/api/v1/reminders/{query}"), token)
            .await;
        assert_eq!(status, StatusCode::OK, "{json}");
        json
    }

    async fn ids(&self, token: &str, query: &str) -> Vec<i64> {
        self.list(token, query).await["results"]
            .as_array()
            .expect("results")
            .iter()
            .map(|r| r["id"].as_i64().expect("id"))
            .collect()
    }

    async fn count(&self) -> i64 {
        self.app
            .tenant_count(SLUG, "SELECT count(*) FROM reminders")
            .await
    }
}

fn keys(value: &Value) -> BTreeSet<String> {
    value.as_object().expect("object").keys().cloned().collect()
}

fn set(ids: Vec<i64>) -> BTreeSet<i64> {
    ids.into_iter().collect()
}

#[tokio::test]
async fn a_reminder_answers_exactly_the_spec_fields_in_create_list_and_retrieve() {
    let w = world().await;
    let client = w.client("Ann", w.org.a).await;
    let token = w.token("cons_a").await;
    let (status, created) = w
        .post(
            &token,
            json!({"title": "Call back", "content_type": 10, "object_id": client,
                   "reminder_date": "2030-01-15", "reminder_time": "09:30",
                   "meta_info": {"note_content": "about the visa"}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let expected: BTreeSet<String> = REMINDER_FIELDS.iter().map(|f| (*f).to_owned()).collect();
    assert_eq!(keys(&created), expected);
    assert_eq!(created["reminder_date"], "2030-01-15");
    assert_eq!(created["reminder_time"], "09:30:00");
    assert_eq!(created["content_type"], 10);
    assert_eq!(created["object_id"], client);
    assert_eq!(created["meta_info"]["note_content"], "about the visa");
    assert_eq!(created["created_by_name"], "cons_a Tester");
    assert_eq!(
        (
            &created["read"],
            &created["is_completed"],
            &created["notification_created"]
        ),
        (&json!(false), &json!(false), &json!(false))
    );
    let id = created["id"].as_i64().expect("id");
    let (status, one) = w
        .send(
            Method::GET,
            &token,
            &format!("/api/v1/reminders/{id}/"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(one, created);
    let page = w
        .list(&token, &format!("?content_type=10&object_id={client}"))
        .await;
    assert_eq!(page["count"], 1);
    assert_eq!(page["results"][0], one, "list and retrieve agree");
}

#[tokio::test]
async fn lists_default_to_ten_per_page_and_cap_page_size_at_fifty() {
    let w = world().await;
    let client = w.client("Ann", w.org.a).await;
    let mut tx = w.app.context(SLUG).begin().await.expect("tx");
    sqlx::query(
        "INSERT INTO reminders (content_type_id, object_id, title)
         SELECT 10, $1, 'r' || g FROM generate_series(1, 55) g",
    )
    .bind(client)
    .execute(&mut *tx)
    .await
    .expect("seed");
    tx.commit().await.expect("commit");
    let page = w.list(&w.root, "").await;
    assert_eq!(page["count"], 55);
    assert_eq!(page["results"].as_array().map(Vec::len), Some(10));
    assert!(page["next"].as_str().is_some_and(|n| n.contains("page=2")));
    let page = w.list(&w.root, "?page_size=100").await;
    assert_eq!(page["results"].as_array().map(Vec::len), Some(50));
    let page = w.list(&w.root, "?page_size=20&page=3").await;
    assert_eq!(page["results"].as_array().map(Vec::len), Some(15));
}

#[tokio::test]
async fn lists_filter_by_link_and_flags_and_order_by_whitelisted_fields() {
    let w = world().await;
    let one = w.client("One", w.org.a).await;
    let two = w.client("Two", w.org.a).await;
    let mut ids = Vec::new();
    for (client, title, date) in [
        (one, "b", "2030-01-01"),
        (one, "a", "2030-03-01"),
        (two, "c", "2030-02-01"),
    ] {
        let (status, body) = w
            .post(
                &w.root,
                json!({"title": title, "content_type": 10, "object_id": client,
                       "reminder_date": date}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        ids.push(body["id"].as_i64().expect("id"));
    }
    assert_eq!(
        w.ids(&w.root, "").await,
        vec![ids[1], ids[2], ids[0]],
        "default: newest reminder date first"
    );
    assert_eq!(
        w.ids(&w.root, "?ordering=title").await,
        vec![ids[1], ids[0], ids[2]]
    );
    assert_eq!(
        w.ids(&w.root, "?ordering=-title").await,
        vec![ids[2], ids[0], ids[1]]
    );
    assert_eq!(
        set(w
            .ids(&w.root, &format!("?content_type=10&object_id={one}"))
            .await),
        BTreeSet::from([ids[0], ids[1]])
    );
    let (status, _) = w
        .send(
            Method::POST,
            &w.root,
            &format!("/api/v1/reminders/{}/completed/", ids[0]),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = w
        .send(
            Method::PATCH,
            &w.root,
            &format!("/api/v1/reminders/{}/", ids[2]),
            Some(json!({"read": true})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(w.ids(&w.root, "?is_completed=true").await, vec![ids[0]]);
    assert_eq!(
        set(w.ids(&w.root, "?is_completed=false").await),
        BTreeSet::from([ids[1], ids[2]])
    );
    assert_eq!(w.ids(&w.root, "?read=true").await, vec![ids[2]]);
    for bad in ["?ordering=password", "?object_id=abc", "?content_type=x"] {
        let (status, _, body) = w
            .app
            .get(SLUG, &format!("/api/v1/reminders/{bad}"), &w.root)
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
    }
}

#[tokio::test]
async fn a_consultant_of_branch_a_gets_404_for_a_reminder_of_branch_b_and_lists_exclude_it() {
    let w = world().await;
    let in_a = w.client("InA", w.org.a).await;
    let in_b = w.client("InB", w.org.b).await;
    let in_c = w.client("InC", w.org.c).await;
    let ra = w.reminder(&w.root, in_a, "a").await;
    let rb = w.reminder(&w.root, in_b, "b").await;
    let rc = w.reminder(&w.root, in_c, "c").await;
    let token = w.token("cons_a").await;
    assert_eq!(w.ids(&token, "").await, vec![ra]);
    let path = format!("/api/v1/reminders/{rb}/");
    let (status, _) = w.send(Method::GET, &token, &path, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = w
        .send(Method::PATCH, &token, &path, Some(json!({"title": "x"})))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = w
        .send(Method::POST, &token, &format!("{path}completed/"), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = w.send(Method::DELETE, &token, &path, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, untouched) = w.send(Method::GET, &w.root, &path, None).await;
    assert_eq!(untouched["title"], "b");
    assert_eq!(untouched["is_completed"], false);
    let rm = w.token("rm_north").await;
    assert_eq!(set(w.ids(&rm, "").await), BTreeSet::from([ra, rb]));
    assert_eq!(set(w.ids(&w.root, "").await), BTreeSet::from([ra, rb, rc]));
}

#[tokio::test]
async fn links_must_name_an_existing_client_in_scope() {
    let w = world().await;
    let in_b = w.client("InB", w.org.b).await;
    let token = w.token("cons_a").await;
    let (status, body) = w
        .post(
            &token,
            json!({"title": "x", "content_type": 999, "object_id": in_b}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["content_type"].is_array(), "{body}");
    let (status, body) = w
        .post(
            &token,
            json!({"title": "x", "content_type": 12, "object_id": 1}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body["content_type"][0],
        "Reminders can only be linked to clients."
    );
    let (status, out_of_scope) = w
        .post(
            &token,
            json!({"title": "x", "content_type": 10, "object_id": in_b}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, unknown) = w
        .post(
            &token,
            json!({"title": "x", "content_type": 10, "object_id": 999_999}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        unknown["object_id"][0]
            .as_str()
            .map(|s| s.replace("999999", &in_b.to_string())),
        out_of_scope["object_id"][0].as_str().map(str::to_owned),
        "unknown and out of scope look the same"
    );
    assert_eq!(w.count().await, 0);
}

#[tokio::test]
async fn bad_input_is_a_400_and_writes_nothing() {
    let w = world().await;
    let client = w.client("Ann", w.org.a).await;
    for body in [
        json!({"content_type": 10, "object_id": client}),
        json!({"title": "x".repeat(256), "content_type": 10, "object_id": client}),
        json!({"title": "x", "content_type": 10, "object_id": client, "reminder_date": "15/01/2030"}),
        json!({"title": "x", "content_type": 10, "object_id": client, "reminder_date": "2030-02-30"}),
        json!({"title": "x", "content_type": 10, "object_id": client, "reminder_time": "25:00"}),
        json!({"title": "x", "content_type": 10, "object_id": client, "meta_info": "text"}),
        json!({"title": "x", "content_type": 10, "object_id": client, "read": "yes"}),
        json!({"title": "x", "content_type": "client", "object_id": client}),
        json!({"title": "x", "content_type": 10}),
        json!("nope"),
    ] {
        let (status, reply) = w.post(&w.root, body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body} → {reply}");
    }
    assert_eq!(w.count().await, 0);
    let (status, _) = w
        .send(Method::GET, &w.root, "/api/v1/reminders/abc/", None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn patch_is_a_merge_patch_put_is_405_and_completed_and_delete_work() {
    let w = world().await;
    let client = w.client("Ann", w.org.a).await;
    let other_b = w.client("InB", w.org.b).await;
    let token = w.token("cons_a").await;
    let id = w.reminder(&token, client, "Call").await;
    let path = format!("/api/v1/reminders/{id}/");
    let (status, body) = w
        .send(
            Method::PATCH,
            &token,
            &path,
            Some(json!({"reminder_time": null, "title": "Call again"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["reminder_time"], Value::Null);
    assert_eq!(
        body["reminder_date"], "2030-01-15",
        "absent fields unchanged"
    );
    assert_eq!(body["title"], "Call again");
    let (status, body) = w
        .send(Method::PATCH, &token, &path, Some(json!({"title": null})))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = w
        .send(
            Method::PATCH,
            &token,
            &path,
            Some(json!({"object_id": other_b})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["object_id"].is_array());
    let (status, _) = w
        .send(Method::PUT, &token, &path, Some(json!({"title": "x"})))
        .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    let (_, unchanged) = w.send(Method::GET, &token, &path, None).await;
    assert_eq!(unchanged["title"], "Call again");
    assert_eq!(unchanged["object_id"], client);
    let (status, done) = w
        .send(Method::POST, &token, &format!("{path}completed/"), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(done["is_completed"], true);
    assert_eq!(done["id"], id);
    let (status, _) = w.send(Method::DELETE, &token, &path, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(w.count().await, 0);
    let nobody = w.token("nobody").await;
    let (status, _, _) = w.app.get(SLUG, "/api/v1/reminders/", &nobody).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn writes_record_reminder_events_with_the_client_id() {
    let w = world().await;
    let client = w.client("Ann", w.org.a).await;
    let id = w.reminder(&w.root, client, "Call").await;
    let path = format!("/api/v1/reminders/{id}/");
    let (status, _) = w
        .send(Method::POST, &w.root, &format!("{path}completed/"), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = w.send(Method::DELETE, &w.root, &path, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let rows: Vec<(String, Option<Value>)> = sqlx::query_as(
        "SELECT event_type, COALESCE(current, previous) FROM public.leopard_events
          WHERE entity_type = 'Reminder' ORDER BY id",
    )
    .fetch_all(w.app.tenancy.db.pool())
    .await
    .expect("events");
    let types: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
    assert_eq!(
        types,
        vec![
            "Reminder.CREATE",
            "Reminder.UPDATE",
            "Reminder.is_completed.UPDATE",
            "Reminder.DELETE"
        ]
    );
    for (_, state) in &rows {
        assert_eq!(state.as_ref().expect("state")["client_id"], client);
    }
}
