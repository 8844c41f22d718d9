//! `/api/v1/notes/` over HTTP against a real PostgreSQL database: wire fields, scope by the
//! client's branch (out of scope is a 404), the author rules for edit and delete, validation
//! (nothing written on a 4xx), recorded events and the timeline entries their handler writes.

use crate::common;

use std::collections::BTreeSet;

use common::{Org, TestApp};
use http::{Method, StatusCode};
use leopard_rbac::Role;
use serde_json::{json, Value};

const SLUG: &str = "acme";

/// NoteOutput's fields per original-backend.md §2.13.
const NOTE_FIELDS: &[&str] = &[
    "id",
    "client",
    "author",
    "author_name",
    "content",
    "created_at",
    "updated_at",
];

/// An org with a super admin (`root`), two consultants of A (`cons_a`, `cons_a2`), a consultant
/// of B (`cons_b`), a region manager of North (`rm_north`), a branch admin of A (`ba_a`), a user
/// of A holding only view/add permissions directly (`viewer`) and a user without any role
/// (`nobody`).
struct World {
    app: TestApp,
    org: Org,
    root: String,
}

async fn world() -> World {
    world_on(TestApp::new(&[SLUG]).await).await
}

async fn world_on(app: TestApp) -> World {
    let org = app.seed_org(SLUG).await;
    app.user(SLUG, "root", Some(Role::SuperAdmin), &[], &[])
        .await;
    for (name, branch) in [("cons_a", org.a), ("cons_a2", org.a), ("cons_b", org.b)] {
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
    app.user(SLUG, "ba_a", Some(Role::BranchAdmin), &[org.a], &[])
        .await;
    let viewer = app.user(SLUG, "viewer", None, &[org.a], &[]).await;
    app.user(SLUG, "nobody", None, &[org.a], &[]).await;
    grant(&app, viewer, &["view_note", "add_note"]).await;
    let root = app.token(SLUG, "root").await;
    World { app, org, root }
}

/// Gives `user` the permissions `codenames` directly.
async fn grant(app: &TestApp, user: i64, codenames: &[&str]) {
    let mut tx = app.context(SLUG).begin().await.expect("tx");
    for codename in codenames {
        sqlx::query(
            "INSERT INTO user_permissions (user_id, permission_id)
             SELECT $1, id FROM permissions WHERE codename = $2",
        )
        .bind(user)
        .bind(codename)
        .execute(&mut *tx)
        .await
        .expect("grant");
    }
    tx.commit().await.expect("commit");
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

    async fn post_note(&self, token: &str, body: Value) -> (StatusCode, Value) {
        let (status, _, json) = self
            .app
            .call(
                Method::POST,
                SLUG,
                "/api/v1/notes/",
                Some(token),
                Some(body),
            )
            .await;
        (status, json)
    }

    /// A note on `client` by the holder of `token`; returns its id.
    async fn note(&self, token: &str, client: i64, content: &str) -> i64 {
        let (status, json) = self
            .post_note(token, json!({"client": client, "content": content}))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{json}");
        json["id"].as_i64().expect("id")
    }

    async fn send(
        &self,
        method: Method,
        token: &str,
        id: i64,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let (status, _, json) = self
            .app
            .call(
                method,
                SLUG,
                &format!("/api/v1/notes/{id}/"),
                Some(token),
                body,
            )
            .await;
        (status, json)
    }

    async fn ids(&self, token: &str, query: &str) -> BTreeSet<i64> {
        let (status, _, json) = self
            .app
            .get(SLUG, &format!("/api/v1/notes/{query}"), token)
            .await;
        assert_eq!(status, StatusCode::OK, "{json}");
        json["results"]
            .as_array()
            .expect("results")
            .iter()
            .map(|n| n["id"].as_i64().expect("id"))
            .collect()
    }

    async fn count(&self) -> i64 {
        self.app
            .tenant_count(SLUG, "SELECT count(*) FROM notes")
            .await
    }

    async fn content_of(&self, id: i64) -> String {
        let mut tx = self.app.context(SLUG).begin().await.expect("tx");
        let content: String = sqlx::query_scalar("SELECT content FROM notes WHERE id = $1")
            .bind(id)
            .fetch_one(&mut *tx)
            .await
            .expect("note");
        tx.commit().await.expect("commit");
        content
    }
}

fn keys(value: &Value) -> BTreeSet<String> {
    value.as_object().expect("object").keys().cloned().collect()
}

#[tokio::test]
async fn a_note_answers_exactly_the_spec_fields_in_create_list_and_retrieve() {
    let w = world().await;
    let client = w.client("Ann", w.org.a).await;
    let token = w.token("cons_a").await;
    let (status, created) = w
        .post_note(
            &token,
            json!({"client": client, "content": "  Called about visa.  "}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let expected: BTreeSet<String> = NOTE_FIELDS.iter().map(|f| (*f).to_owned()).collect();
    assert_eq!(keys(&created), expected);
    assert_eq!(created["content"], "Called about visa.", "stored trimmed");
    assert_eq!(created["client"], client);
    assert_eq!(created["author_name"], "cons_a Tester");
    let id = created["id"].as_i64().expect("id");
    let (status, one) = w.send(Method::GET, &token, id, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(one, created, "retrieve answers what create answered");
    let (_, _, page) = w.app.get(SLUG, "/api/v1/notes/", &token).await;
    assert_eq!(page["count"], 1);
    assert_eq!(page["results"][0], one, "list and retrieve agree");
}

#[tokio::test]
async fn the_list_is_newest_first_and_filters_by_client_and_author() {
    let w = world().await;
    let one = w.client("One", w.org.a).await;
    let two = w.client("Two", w.org.a).await;
    let cons = w.token("cons_a").await;
    let cons2 = w.token("cons_a2").await;
    let first = w.note(&cons, one, "first").await;
    let second = w.note(&cons2, one, "second").await;
    let third = w.note(&cons, two, "third").await;
    let (_, _, page) = w.app.get(SLUG, "/api/v1/notes/", &w.root).await;
    let order: Vec<i64> = page["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|n| n["id"].as_i64().expect("id"))
        .collect();
    assert_eq!(order, vec![third, second, first]);
    assert_eq!(
        w.ids(&w.root, &format!("?client={one}")).await,
        BTreeSet::from([first, second])
    );
    let author: i64 = w
        .app
        .tenant_count(SLUG, "SELECT id FROM users WHERE username = 'cons_a'")
        .await;
    assert_eq!(
        w.ids(&w.root, &format!("?author={author}")).await,
        BTreeSet::from([first, third])
    );
    let (status, _, body) = w.app.get(SLUG, "/api/v1/notes/?client=abc", &w.root).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}

#[tokio::test]
async fn a_consultant_of_branch_a_gets_404_for_a_note_of_branch_b_and_lists_exclude_it() {
    let w = world().await;
    let in_a = w.client("InA", w.org.a).await;
    let in_b = w.client("InB", w.org.b).await;
    let note_a = w.note(&w.root, in_a, "a").await;
    let note_b = w.note(&w.root, in_b, "b").await;
    let token = w.token("cons_a").await;
    assert_eq!(w.ids(&token, "").await, BTreeSet::from([note_a]));
    assert_eq!(
        w.ids(&token, &format!("?client={in_b}")).await,
        BTreeSet::new()
    );
    let (status, body) = w.send(Method::GET, &token, note_b, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["detail"], "No Note matches the given query.");
    let (status, _) = w
        .send(
            Method::PATCH,
            &token,
            note_b,
            Some(json!({"content": "hijack"})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = w.send(Method::DELETE, &token, note_b, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(w.content_of(note_b).await, "b", "nothing changed");
    let (status, _) = w.send(Method::GET, &token, note_a, None).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn a_region_manager_sees_exactly_its_regions_notes_and_a_super_admin_sees_all() {
    let w = world().await;
    let mut notes = Vec::new();
    for (name, branch) in [
        ("A", w.org.a),
        ("B", w.org.b),
        ("C", w.org.c),
        ("D", w.org.d),
    ] {
        let client = w.client(name, branch).await;
        notes.push(w.note(&w.root, client, name).await);
    }
    let rm = w.token("rm_north").await;
    assert_eq!(w.ids(&rm, "").await, BTreeSet::from([notes[0], notes[1]]));
    let (status, _) = w.send(Method::GET, &rm, notes[2], None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        w.ids(&w.root, "").await,
        notes.iter().copied().collect::<BTreeSet<_>>()
    );
}

#[tokio::test]
async fn notes_of_a_soft_deleted_client_are_hidden() {
    let w = world().await;
    let client = w.client("Gone", w.org.a).await;
    let note = w.note(&w.root, client, "kept").await;
    let (status, _, _) = w
        .app
        .call(
            Method::DELETE,
            SLUG,
            &format!("/api/v1/clients/{client}/"),
            Some(&w.root),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(w.ids(&w.root, "").await, BTreeSet::new());
    let (status, _) = w.send(Method::GET, &w.root, note, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = w
        .post_note(&w.root, json!({"client": client, "content": "late"}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}

#[tokio::test]
async fn an_unknown_or_out_of_scope_client_is_the_same_400_on_client() {
    let w = world().await;
    let in_b = w.client("InB", w.org.b).await;
    let token = w.token("cons_a").await;
    let (status, out_of_scope) = w
        .post_note(&token, json!({"client": in_b, "content": "x"}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, unknown) = w
        .post_note(&token, json!({"client": 999_999, "content": "x"}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(out_of_scope["client"].is_array(), "{out_of_scope}");
    assert!(unknown["client"].is_array(), "{unknown}");
    let shape = |v: &Value| {
        v["client"][0]
            .as_str()
            .map(|s| s.replace("999999", &in_b.to_string()))
    };
    assert_eq!(
        shape(&unknown),
        out_of_scope["client"][0].as_str().map(str::to_owned)
    );
    assert_eq!(w.count().await, 0);
}

#[tokio::test]
async fn creating_a_note_needs_add_note() {
    let w = world().await;
    let client = w.client("Ann", w.org.a).await;
    let token = w.token("nobody").await;
    let (status, body) = w
        .post_note(&token, json!({"client": client, "content": "x"}))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["detail"], "You do not have permission to add notes.");
    let (status, _, _) = w.app.get(SLUG, "/api/v1/notes/", &token).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "no view_note either");
    assert_eq!(w.count().await, 0);
}

#[tokio::test]
async fn the_author_may_edit_and_delete_their_note_without_the_permissions() {
    let w = world().await;
    let client = w.client("Ann", w.org.a).await;
    let viewer = w.token("viewer").await;
    let note = w.note(&viewer, client, "mine").await;
    let (status, body) = w
        .send(
            Method::PATCH,
            &viewer,
            note,
            Some(json!({"content": "still mine"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["content"], "still mine");
    let (status, _) = w.send(Method::DELETE, &viewer, note, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(w.count().await, 0);
}

#[tokio::test]
async fn someone_elses_note_needs_change_note_to_edit_and_delete_note_to_delete() {
    let w = world().await;
    let client = w.client("Ann", w.org.a).await;
    let author = w.token("cons_a").await;
    let note = w.note(&author, client, "original").await;
    // A viewer without change_note/delete_note: 403 with a clear message.
    let viewer = w.token("viewer").await;
    let (status, body) = w
        .send(Method::PUT, &viewer, note, Some(json!({"content": "nope"})))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        body["detail"],
        "You do not have permission to edit this note."
    );
    let (status, body) = w.send(Method::DELETE, &viewer, note, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        body["detail"],
        "You do not have permission to delete this note."
    );
    assert_eq!(w.content_of(note).await, "original");
    // Another consultant holds change_note but not delete_note.
    let colleague = w.token("cons_a2").await;
    let (status, body) = w
        .send(
            Method::PATCH,
            &colleague,
            note,
            Some(json!({"content": "edited"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _) = w.send(Method::DELETE, &colleague, note, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // The branch admin holds delete_note.
    let admin = w.token("ba_a").await;
    let (status, _) = w.send(Method::DELETE, &admin, note, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(w.count().await, 0);
}

#[tokio::test]
async fn bad_content_is_a_400_and_changes_nothing() {
    let w = world().await;
    let client = w.client("Ann", w.org.a).await;
    for body in [
        json!({"client": client, "content": "   "}),
        json!({"client": client, "content": "x".repeat(10_001)}),
        json!({"client": client, "content": 5}),
        json!({"client": client}),
        json!({"client": "abc", "content": "x"}),
        json!({"content": "x"}),
        json!(["not", "an", "object"]),
    ] {
        let (status, reply) = w.post_note(&w.root, body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body} → {reply}");
    }
    assert_eq!(w.count().await, 0);
    let long = w.note(&w.root, client, &"y".repeat(10_000)).await;
    let (status, reply) = w
        .send(Method::PATCH, &w.root, long, Some(json!({"content": ""})))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{reply}");
    assert!(reply["content"].is_array());
    let (status, _) = w
        .send(Method::PUT, &w.root, long, Some(json!({"client": client})))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "PUT requires content");
    assert_eq!(w.content_of(long).await, "y".repeat(10_000));
    let (status, _, _) = w.app.get(SLUG, "/api/v1/notes/abc/", &w.root).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn writes_record_note_events_with_the_client_id() {
    let w = world().await;
    let client = w.client("Ann", w.org.a).await;
    let note = w.note(&w.root, client, "one").await;
    let (status, _) = w
        .send(
            Method::PATCH,
            &w.root,
            note,
            Some(json!({"content": "two"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = w
        .send(
            Method::PATCH,
            &w.root,
            note,
            Some(json!({"content": "two"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "an unchanged edit records nothing");
    let (status, _) = w.send(Method::DELETE, &w.root, note, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let rows: Vec<(String, Option<Value>, Option<Value>)> = sqlx::query_as(
        "SELECT event_type, previous, current FROM public.leopard_events
          WHERE entity_type = 'Note' ORDER BY id",
    )
    .fetch_all(w.app.tenancy.db.pool())
    .await
    .expect("events");
    let types: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
    assert_eq!(
        types,
        vec![
            "Note.CREATE",
            "Note.UPDATE",
            "Note.content.UPDATE",
            "Note.DELETE"
        ]
    );
    assert_eq!(rows[0].2.as_ref().expect("current")["client_id"], client);
    assert_eq!(rows[1].1.as_ref().expect("previous")["content"], "one");
    assert_eq!(rows[1].2.as_ref().expect("current")["content"], "two");
    assert_eq!(rows[3].1.as_ref().expect("previous")["client_id"], client);
}

#[tokio::test]
async fn adding_editing_and_deleting_a_note_each_write_one_timeline_entry() {
    let (app, running) = TestApp::with_bus(&[SLUG]).await;
    let w = world_on(app).await;
    let client = w.client("Ann", w.org.a).await;
    let token = w.token("cons_a").await;
    let note = w.note(&token, client, "hello").await;
    let (status, _) = w
        .send(
            Method::PATCH,
            &token,
            note,
            Some(json!({"content": "hello again"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = w.send(Method::DELETE, &w.root, note, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let pending = w
            .app
            .tenant_count(
                SLUG,
                "SELECT count(*) FROM public.leopard_events WHERE state <> 'completed'",
            )
            .await;
        if pending == 0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "events were not processed"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    running.shutdown().await;
    let (status, _, page) = w
        .app
        .get(
            SLUG,
            &format!("/api/v1/clients/{client}/timeline/?activity_type=NOTE_ADDED"),
            &token,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["count"], 1);
    let added = &page["results"][0];
    assert_eq!(added["description"], "Note added");
    assert_eq!(added["activity_type_display"], "Note Added");
    assert_eq!(added["performed_by_name"], "cons_a Tester");
    assert_eq!(added["metadata"]["note_id"], note);
    assert_eq!(added["metadata"]["content"], "hello");
    for (kind, description, display, performer) in [
        ("NOTE_EDITED", "Note edited", "Note Edited", "cons_a Tester"),
        (
            "NOTE_DELETED",
            "Note deleted",
            "Note Deleted",
            "root Tester",
        ),
    ] {
        let (_, _, page) = w
            .app
            .get(
                SLUG,
                &format!("/api/v1/clients/{client}/timeline/?activity_type={kind}"),
                &token,
            )
            .await;
        assert_eq!(page["count"], 1, "{kind}: {page}");
        let entry = &page["results"][0];
        assert_eq!(entry["description"], description);
        assert_eq!(entry["activity_type_display"], display);
        assert_eq!(entry["performed_by_name"], performer);
    }
    let (_, _, deleted) = w
        .app
        .get(
            SLUG,
            &format!("/api/v1/clients/{client}/timeline/?activity_type=NOTE_DELETED"),
            &token,
        )
        .await;
    assert_eq!(
        deleted["results"][0]["metadata"].get("content"),
        None,
        "a deleted note's text is not copied into the timeline"
    );
}
