//! `/api/v1/events/` over HTTP against a real PostgreSQL database: wire fields (location kept,
//! duration always `end − start`), visibility (own and created events, team events with
//! `view_team_events`; lists and detail routes agree; out of reach is a 404), assignment rules,
//! merge-patch, the `upcoming/` and `today/` windows, filters, recorded events and validation
//! (nothing written on a 4xx).

use crate::common;

use std::collections::BTreeSet;

use chrono::{Duration, Utc};
use common::{Org, TestApp};
use http::{Method, StatusCode};
use leopard_rbac::Role;
use serde_json::{json, Value};

const SLUG: &str = "acme";

/// EventOutput's fields per original-backend.md §2.12.
const EVENT_FIELDS: &[&str] = &[
    "id",
    "title",
    "description",
    "start",
    "end",
    "duration",
    "duration_minutes",
    "assigned_to",
    "assigned_to_name",
    "assigned_to_full_name",
    "hex_color",
    "location",
    "all_day",
    "branch",
    "branch_id",
    "branch_name",
    "created_by",
    "created_by_name",
    "created_at",
    "updated_by",
    "updated_by_name",
    "updated_at",
    "is_past",
    "is_ongoing",
    "is_upcoming",
];

/// The users of [`world`].
const USERS: &[&str] = &[
    "root", "ba_a", "cons_a", "cons_a2", "cons_b", "cons_c", "rm_north",
];

/// An org with a super admin (`root`), a branch admin of A (`ba_a`, holding
/// `view_team_events` and `assign_calendarevent_to_others`), consultants of A (`cons_a`,
/// `cons_a2`), B (`cons_b`) and C (`cons_c`), and a region manager of North (`rm_north`).
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
    app.user(SLUG, "ba_a", Some(Role::BranchAdmin), &[org.a], &[])
        .await;
    for (name, branch) in [
        ("cons_a", org.a),
        ("cons_a2", org.a),
        ("cons_b", org.b),
        ("cons_c", org.c),
    ] {
        app.user(SLUG, name, Some(Role::Consultant), &[branch], &[])
            .await;
    }
    app.user(
        SLUG,
        "rm_north",
        Some(Role::RegionManager),
        &[],
        &[org.north],
    )
    .await;
    let root = app.token(SLUG, "root").await;
    World { app, org, root }
}

impl World {
    async fn token(&self, username: &str) -> String {
        self.app.token(SLUG, username).await
    }

    async fn user_id(&self, username: &str) -> i64 {
        self.app
            .tenant_count(
                SLUG,
                &format!("SELECT id FROM users WHERE username = '{username}'"),
            )
            .await
    }

    /// Runs `sql` with `$1` = user `username` in the tenant schema.
    async fn exec(&self, sql: &str, username: &str) {
        let user = self.user_id(username).await;
        let mut tx = self.app.context(SLUG).begin().await.expect("tx");
        sqlx::query(sql)
            .bind(user)
            .execute(&mut *tx)
            .await
            .expect("exec");
        tx.commit().await.expect("commit");
    }

    /// Gives `username` permission `codename` directly.
    async fn grant(&self, username: &str, codename: &str) {
        self.exec(
            &format!(
                "INSERT INTO user_permissions (user_id, permission_id)
                 SELECT $1, id FROM permissions WHERE codename = '{codename}'"
            ),
            username,
        )
        .await;
    }

    async fn post(&self, token: &str, body: Value) -> (StatusCode, Value) {
        let (status, _, json) = self
            .app
            .call(
                Method::POST,
                SLUG,
                "/api/v1/events/",
                Some(token),
                Some(body),
            )
            .await;
        (status, json)
    }

    /// An event created by the holder of `token` with `extra` fields over a default body (one
    /// hour, starting in a day); returns its id.
    async fn event(&self, token: &str, title: &str, extra: Value) -> i64 {
        let start = Utc::now() + Duration::days(1);
        let mut body = json!({
            "title": title,
            "start": start.to_rfc3339(),
            "end": (start + Duration::hours(1)).to_rfc3339(),
        });
        if let (Some(map), Value::Object(more)) = (body.as_object_mut(), extra) {
            map.extend(more);
        }
        let (status, json) = self.post(token, body).await;
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

    async fn list(&self, token: &str, path: &str) -> Value {
        let (status, _, json) = self.app.get(SLUG, path, token).await;
        assert_eq!(status, StatusCode::OK, "{path}: {json}");
        json
    }

    async fn ids(&self, token: &str, path: &str) -> Vec<i64> {
        self.list(token, path).await["results"]
            .as_array()
            .expect("results")
            .iter()
            .map(|e| e["id"].as_i64().expect("id"))
            .collect()
    }

    async fn visible(&self, token: &str) -> BTreeSet<i64> {
        self.ids(token, "/api/v1/events/?page_size=1000")
            .await
            .into_iter()
            .collect()
    }

    /// The events `username` sees, asserting that the list and the detail route agree on
    /// every event in `all`.
    async fn agreed(&self, username: &str, all: &[i64]) -> BTreeSet<i64> {
        let token = self.token(username).await;
        let listed = self.visible(&token).await;
        for id in all {
            let (status, _) = self
                .send(Method::GET, &token, &format!("/api/v1/events/{id}/"), None)
                .await;
            let expected = if listed.contains(id) {
                StatusCode::OK
            } else {
                StatusCode::NOT_FOUND
            };
            assert_eq!(status, expected, "{username}, event {id}");
        }
        listed
    }

    async fn count(&self) -> i64 {
        self.app
            .tenant_count(SLUG, "SELECT count(*) FROM calendar_events")
            .await
    }
}

fn keys(value: &Value) -> BTreeSet<String> {
    value.as_object().expect("object").keys().cloned().collect()
}

#[tokio::test]
async fn an_event_answers_exactly_the_spec_fields_and_keeps_its_location() {
    let w = world().await;
    let token = w.token("cons_a").await;
    let me = w.user_id("cons_a").await;
    let (status, created) = w
        .post(
            &token,
            json!({"title": "Intake meeting", "description": "docs",
                   "start": "2031-05-01T09:00:00Z", "end": "2031-05-01T10:30:00Z",
                   "location": "Room 4", "hex_color": "ff0000", "assigned_to_id": me,
                   "branch_id": w.org.a}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let expected: BTreeSet<String> = EVENT_FIELDS.iter().map(|f| (*f).to_owned()).collect();
    assert_eq!(keys(&created), expected);
    assert_eq!(created["location"], "Room 4");
    assert_eq!(created["hex_color"], "#ff0000");
    assert_eq!(created["duration"], "01:30:00");
    assert_eq!(created["duration_minutes"], 90);
    assert_eq!(created["start"], "2031-05-01T09:00:00.000000Z");
    assert_eq!(created["assigned_to_name"], "cons_a");
    assert_eq!(created["assigned_to_full_name"], "cons_a Tester");
    assert_eq!(created["branch"], w.org.a);
    assert_eq!(created["branch_id"], w.org.a);
    assert_eq!(created["branch_name"], "Branch A");
    assert_eq!(created["created_by_name"], "cons_a");
    assert_eq!(
        (
            &created["is_past"],
            &created["is_ongoing"],
            &created["is_upcoming"]
        ),
        (&json!(false), &json!(false), &json!(true))
    );
    let id = created["id"].as_i64().expect("id");
    let (status, one) = w
        .send(Method::GET, &token, &format!("/api/v1/events/{id}/"), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(one, created);
    let page = w.list(&token, "/api/v1/events/").await;
    assert_eq!(page["results"][0], one, "list and retrieve agree");
    let (status, long) = w
        .post(
            &token,
            json!({"title": "Retreat", "start": "2031-05-01T09:00:00Z",
                   "end": "2031-05-02T11:00:00+00:00"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(long["duration"], "1 02:00:00");
    assert_eq!(long["duration_minutes"], 26 * 60);
    assert_eq!(long["hex_color"], "#3788d8");
    assert_eq!(long["location"], "");
}

#[tokio::test]
async fn without_the_team_permission_a_user_sees_only_events_assigned_to_or_created_by_them() {
    let w = world().await;
    w.grant("cons_a", "assign_calendarevent_to_others").await;
    let cons_a = w.token("cons_a").await;
    let cons_a2 = w.user_id("cons_a2").await;
    let own = w.event(&cons_a, "own", json!({"branch_id": w.org.a})).await;
    let delegated = w
        .event(&cons_a, "delegated", json!({"assigned_to_id": cons_a2}))
        .await;
    let all = [own, delegated];
    assert_eq!(
        w.agreed("cons_a", &all).await,
        BTreeSet::from([own, delegated])
    );
    assert_eq!(
        w.agreed("cons_a2", &all).await,
        BTreeSet::from([delegated]),
        "a colleague of the same branch without view_team_events sees only its own"
    );
    assert_eq!(w.agreed("cons_b", &all).await, BTreeSet::new());
    assert_eq!(w.agreed("rm_north", &all).await, BTreeSet::new());
    let cons_b = w.token("cons_b").await;
    let (status, body) = w
        .send(
            Method::PATCH,
            &cons_b,
            &format!("/api/v1/events/{own}/"),
            Some(json!({"title": "x"})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["detail"], "Event not found");
    let (status, _) = w
        .send(
            Method::DELETE,
            &cons_b,
            &format!("/api/v1/events/{own}/"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(w.count().await, 2);
}

#[tokio::test]
async fn team_events_follow_the_event_branch_or_the_assignees_branches() {
    let w = world().await;
    let cons_a = w.user_id("cons_a").await;
    let cons_b = w.user_id("cons_b").await;
    let cons_c = w.user_id("cons_c").await;
    let in_a = w
        .event(&w.root, "in A", json!({"branch_id": w.org.a}))
        .await;
    let in_b = w
        .event(&w.root, "in B", json!({"branch_id": w.org.b}))
        .await;
    let in_c = w
        .event(&w.root, "in C", json!({"branch_id": w.org.c}))
        .await;
    let for_a = w
        .event(&w.root, "for cons_a", json!({"assigned_to_id": cons_a}))
        .await;
    let for_b = w
        .event(&w.root, "for cons_b", json!({"assigned_to_id": cons_b}))
        .await;
    let for_c = w
        .event(&w.root, "for cons_c", json!({"assigned_to_id": cons_c}))
        .await;
    let nowhere = w.event(&w.root, "nowhere", json!({})).await;
    let all = [in_a, in_b, in_c, for_a, for_b, for_c, nowhere];
    // A branch admin holds view_team_events: its branch's events and its members' events.
    assert_eq!(w.agreed("ba_a", &all).await, BTreeSet::from([in_a, for_a]));
    // A region manager without it sees nothing of others; with it, its regions' branches.
    assert_eq!(w.agreed("rm_north", &all).await, BTreeSet::new());
    w.grant("rm_north", "view_team_events").await;
    assert_eq!(
        w.agreed("rm_north", &all).await,
        BTreeSet::from([in_a, in_b, for_a, for_b])
    );
    // A super admin with the permission sees everything, not only what it created.
    w.app
        .user(SLUG, "root2", Some(Role::SuperAdmin), &[], &[])
        .await;
    assert_eq!(w.agreed("root2", &all).await, all.into_iter().collect());
    // Without the team permission the branch admin keeps its own events only.
    w.exec(
        "DELETE FROM group_permissions
          WHERE group_id = (SELECT id FROM groups WHERE name = 'BRANCH_ADMIN')
            AND permission_id = (SELECT id FROM permissions WHERE codename = 'view_team_events')
            AND $1 > 0",
        "ba_a",
    )
    .await;
    assert_eq!(w.agreed("ba_a", &all).await, BTreeSet::new());
    for user in USERS {
        w.agreed(user, &all).await;
    }
}

#[tokio::test]
async fn assigning_others_needs_the_permission_and_an_assignee_in_scope() {
    let w = world().await;
    let cons_a = w.token("cons_a").await;
    let me = w.user_id("cons_a").await;
    let colleague = w.user_id("cons_a2").await;
    let outsider = w.user_id("cons_c").await;
    let start = "2031-01-01T10:00:00Z";
    let end = "2031-01-01T11:00:00Z";
    let (status, body) = w
        .post(
            &cons_a,
            json!({"title": "x", "start": start, "end": end, "assigned_to_id": colleague}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, _) = w
        .post(
            &cons_a,
            json!({"title": "x", "start": start, "end": end, "assigned_to_id": me}),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "assigning oneself needs nothing"
    );
    let ba = w.token("ba_a").await;
    let (status, _) = w
        .post(
            &ba,
            json!({"title": "x", "start": start, "end": end, "assigned_to_id": colleague}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, body) = w
        .post(
            &ba,
            json!({"title": "x", "start": start, "end": end, "assigned_to_id": outsider}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, body) = w
        .post(
            &ba,
            json!({"title": "x", "start": start, "end": end, "assigned_to_id": 999_999}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["assigned_to_id"].is_array(), "{body}");
    let (status, body) = w
        .post(
            &ba,
            json!({"title": "x", "start": start, "end": end, "branch_id": 999_999}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["branch_id"].is_array(), "{body}");
    let (status, _) = w
        .post(
            &ba,
            json!({"title": "x", "start": start, "end": end, "branch_id": w.org.c}),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "a branch outside the caller's scope"
    );
    assert_eq!(w.count().await, 2);
    // Reassigning through PATCH follows the same rules.
    let own = w.event(&cons_a, "mine", json!({})).await;
    let (status, _) = w
        .send(
            Method::PATCH,
            &cons_a,
            &format!("/api/v1/events/{own}/"),
            Some(json!({"assigned_to_id": colleague})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn patch_is_a_merge_patch_that_recomputes_the_duration_and_put_is_405() {
    let w = world().await;
    let ba = w.token("ba_a").await;
    let colleague = w.user_id("cons_a2").await;
    let id = w
        .event(
            &ba,
            "Plan",
            json!({"assigned_to_id": colleague, "branch_id": w.org.a, "location": "HQ",
                   "start": "2031-02-01T09:00:00Z", "end": "2031-02-01T10:00:00Z"}),
        )
        .await;
    let path = format!("/api/v1/events/{id}/");
    let (status, body) = w
        .send(
            Method::PATCH,
            &ba,
            &path,
            Some(
                json!({"end": "2031-02-01T12:15:00Z", "assigned_to_id": null,
                        "branch_id": w.org.b}),
            ),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "branch B is outside ba_a's scope: {body}"
    );
    let (status, body) = w
        .send(
            Method::PATCH,
            &ba,
            &path,
            Some(json!({"end": "2031-02-01T12:15:00Z", "assigned_to_id": null})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["duration"], "03:15:00");
    assert_eq!(body["duration_minutes"], 195);
    assert_eq!(body["assigned_to"], Value::Null, "null unassigns");
    assert_eq!(body["location"], "HQ", "absent fields unchanged");
    assert_eq!(body["updated_by_name"], "ba_a");
    let (status, body) = w
        .send(Method::PATCH, &ba, &path, Some(json!({"branch_id": null})))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["branch"], Value::Null);
    let (status, body) = w
        .send(
            Method::PATCH,
            &ba,
            &path,
            Some(json!({"start": "2031-02-01T13:00:00Z"})),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "start after the stored end"
    );
    assert!(body["end"].is_array(), "{body}");
    let (status, body) = w
        .send(Method::PATCH, &ba, &path, Some(json!({"start": null})))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, _) = w
        .send(Method::PUT, &ba, &path, Some(json!({"title": "x"})))
        .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    let (_, stored) = w.send(Method::GET, &ba, &path, None).await;
    assert_eq!(stored["start"], "2031-02-01T09:00:00.000000Z");
    assert_eq!(stored["duration"], "03:15:00");
    let (status, _) = w.send(Method::DELETE, &ba, &path, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(w.count().await, 0);
}

#[tokio::test]
async fn bad_input_is_a_400_and_writes_nothing() {
    let w = world().await;
    let (s, e) = ("2031-01-01T10:00:00Z", "2031-01-01T11:00:00Z");
    for body in [
        json!({"start": s, "end": e}),
        json!({"title": "x".repeat(201), "start": s, "end": e}),
        json!({"title": "x", "start": s, "end": e, "location": "l".repeat(256)}),
        json!({"title": "x", "start": "tomorrow", "end": e}),
        json!({"title": "x", "start": s, "end": "2031-13-01T00:00:00Z"}),
        json!({"title": "x", "start": s}),
        json!({"title": "x", "start": e, "end": s}),
        json!({"title": "x", "start": s, "end": s}),
        json!({"title": "x", "start": s, "end": e, "hex_color": "red"}),
        json!({"title": "x", "start": s, "end": e, "all_day": "yes"}),
        json!({"title": "x", "start": s, "end": e, "assigned_to_id": "abc"}),
        json!({"title": 5, "start": s, "end": e}),
        json!([1, 2]),
    ] {
        let (status, reply) = w.post(&w.root, body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body} → {reply}");
    }
    let (status, reply) = w
        .post(&w.root, json!({"title": "x", "start": e, "end": s}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(reply["end"].is_array(), "{reply}");
    assert_eq!(w.count().await, 0);
    let (status, _) = w
        .send(Method::GET, &w.root, "/api/v1/events/abc/", None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    for bad in [
        "/api/v1/events/?start_date=someday",
        "/api/v1/events/?assigned_to=x",
        "/api/v1/events/upcoming/?days=abc",
        "/api/v1/events/upcoming/?days=-1",
    ] {
        let (status, _, body) = w.app.get(SLUG, bad, &w.root).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
    }
}

#[tokio::test]
async fn upcoming_and_today_list_the_visible_events_of_their_windows_by_start() {
    let w = world().await;
    let now = Utc::now();
    let at = |hours: i64| (now + Duration::hours(hours)).to_rfc3339();
    let mut make = Vec::new();
    for (title, from, to) in [
        ("ongoing", -1, 1),
        ("in three days", 72, 73),
        ("in ten days", 240, 241),
        ("last week", -170, -169),
    ] {
        let (status, body) = w
            .post(
                &w.root,
                json!({"title": title, "start": at(from), "end": at(to)}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        make.push(body["id"].as_i64().expect("id"));
    }
    let (ongoing, three, ten) = (make[0], make[1], make[2]);
    let page = w.list(&w.root, "/api/v1/events/upcoming/").await;
    assert!(
        page["count"].is_i64() && page["results"].is_array(),
        "paginated: {page}"
    );
    assert_eq!(
        w.ids(&w.root, "/api/v1/events/upcoming/").await,
        vec![ongoing, three]
    );
    assert_eq!(
        w.ids(&w.root, "/api/v1/events/upcoming/?days=14").await,
        vec![ongoing, three, ten]
    );
    let today = w.list(&w.root, "/api/v1/events/today/").await;
    assert_eq!(today["count"], 1, "{today}");
    assert_eq!(today["results"][0]["id"], ongoing);
    assert_eq!(today["results"][0]["is_ongoing"], true);
    let (_, last_week) = w
        .send(
            Method::GET,
            &w.root,
            &format!("/api/v1/events/{}/", make[3]),
            None,
        )
        .await;
    assert_eq!(last_week["is_past"], true);
    let cons = w.token("cons_a").await;
    assert_eq!(
        w.ids(&cons, "/api/v1/events/today/").await,
        Vec::<i64>::new(),
        "windows are visibility-scoped"
    );
}

#[tokio::test]
async fn the_list_filters_by_window_assignee_branch_and_search_newest_start_first() {
    let w = world().await;
    let cons_a = w.user_id("cons_a").await;
    let early = w
        .event(
            &w.root,
            "Early",
            json!({"start": "2031-03-01T09:00:00Z", "end": "2031-03-01T10:00:00Z",
                   "location": "Harbour office", "branch_id": w.org.a}),
        )
        .await;
    let late = w
        .event(
            &w.root,
            "Late",
            json!({"start": "2031-03-10T09:00:00Z", "end": "2031-03-10T10:00:00Z",
                   "assigned_to_id": cons_a, "description": "visa harbour"}),
        )
        .await;
    let plain = w
        .event(
            &w.root,
            "Plain",
            json!({"start": "2031-03-05T09:00:00Z", "end": "2031-03-05T10:00:00Z"}),
        )
        .await;
    assert_eq!(
        w.ids(&w.root, "/api/v1/events/").await,
        vec![late, plain, early]
    );
    assert_eq!(
        w.ids(&w.root, "/api/v1/events/?start_date=2031-03-05T09:30:00Z")
            .await,
        vec![late, plain]
    );
    assert_eq!(
        w.ids(&w.root, "/api/v1/events/?end_date=2031-03-05").await,
        vec![early]
    );
    assert_eq!(
        w.ids(&w.root, &format!("/api/v1/events/?assigned_to={cons_a}"))
            .await,
        vec![late]
    );
    assert_eq!(
        w.ids(&w.root, &format!("/api/v1/events/?branch={}", w.org.a))
            .await,
        vec![early]
    );
    assert_eq!(
        w.ids(&w.root, "/api/v1/events/?search=HARBOUR").await,
        vec![late, early]
    );
}

#[tokio::test]
async fn writes_record_calendar_event_events() {
    let w = world().await;
    let id = w.event(&w.root, "Plan", json!({})).await;
    let path = format!("/api/v1/events/{id}/");
    let (status, _) = w
        .send(
            Method::PATCH,
            &w.root,
            &path,
            Some(json!({"location": "HQ"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = w.send(Method::DELETE, &w.root, &path, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let types: Vec<String> = sqlx::query_scalar(
        "SELECT event_type FROM public.leopard_events
          WHERE entity_type = 'CalendarEvent' ORDER BY id",
    )
    .fetch_all(w.app.tenancy.db.pool())
    .await
    .expect("events");
    assert_eq!(
        types,
        vec![
            "CalendarEvent.CREATE",
            "CalendarEvent.UPDATE",
            "CalendarEvent.location.UPDATE",
            "CalendarEvent.DELETE"
        ]
    );
}
