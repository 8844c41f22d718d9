//! `/api/v1/agents/` over HTTP against a real PostgreSQL database: wire fields, verb-level
//! permissions, unique live names (case-insensitive), soft delete and restore, validation, and
//! the client's `agent_name` / `agent_id` validation.

use crate::common;

use std::collections::BTreeSet;

use common::{Org, TestApp};
use http::{Method, StatusCode};
use leopard_rbac::Role;
use serde_json::{json, Value};

const SLUG: &str = "acme";

/// AgentOutput's fields per original-backend.md §2.3.
const AGENT_FIELDS: &[&str] = &[
    "id",
    "agent_name",
    "agent_type",
    "agent_type_display",
    "company_name",
    "designation",
    "phone_number",
    "email",
    "website",
    "invoice_to",
    "street",
    "suburb",
    "state",
    "postcode",
    "country",
    "description",
    "created_by",
    "created_by_name",
    "created_at",
    "updated_by",
    "updated_by_name",
    "updated_at",
];

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
    let root = app.token(SLUG, "root").await;
    World { app, org, root }
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default()
}

impl World {
    async fn create(&self, token: &str, body: Value) -> (StatusCode, Value) {
        let (status, _, body) = self
            .app
            .call(
                Method::POST,
                SLUG,
                "/api/v1/agents/",
                Some(token),
                Some(body),
            )
            .await;
        (status, body)
    }

    async fn count(&self, sql: &str) -> i64 {
        self.app.tenant_count(SLUG, sql).await
    }
}

#[tokio::test]
async fn an_agent_is_created_with_the_original_fields_and_read_back_identically() {
    let w = world().await;
    let (status, created) = w
        .create(
            &w.root,
            json!({"agent_name": "Globe Partners", "agent_type": "SUPER_AGENT",
                   "company_name": "Globe Pty", "email": "hi@globe.example.com",
                   "website": "https://globe.example.com", "country": "au",
                   "phone_number": "0400111222"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let expected: BTreeSet<String> = AGENT_FIELDS.iter().map(|f| (*f).to_owned()).collect();
    assert_eq!(keys(&created), expected);
    assert_eq!(created["agent_type_display"], "Super Agent");
    assert_eq!(created["country"], "AU");
    assert_eq!(created["created_by_name"], "root Tester");
    let path = format!("/api/v1/agents/{}/", created["id"]);
    let (status, _, one) = w.app.get(SLUG, &path, &w.root).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(one, created);
    let (_, _, page) = w.app.get(SLUG, "/api/v1/agents/", &w.root).await;
    assert_eq!(page["count"], 1);
    assert_eq!(page["results"][0], created, "list and retrieve agree");
}

#[tokio::test]
async fn an_agent_without_email_or_country_answers_null_for_both() {
    let w = world().await;
    let (status, created) = w
        .create(
            &w.root,
            json!({"agent_name": "Solo", "agent_type": "SUB_AGENT"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["email"], Value::Null);
    assert_eq!(created["country"], Value::Null);
    assert_eq!(created["agent_type_display"], "Sub Agent");
}

#[tokio::test]
async fn names_are_unique_among_live_agents_ignoring_case_and_free_again_after_a_delete() {
    let w = world().await;
    let (_, first) = w
        .create(
            &w.root,
            json!({"agent_name": "Acme Agents", "agent_type": "SUB_AGENT"}),
        )
        .await;
    let (status, body) = w
        .create(
            &w.root,
            json!({"agent_name": "ACME agents", "agent_type": "SUB_AGENT"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["agent_name"].is_array(), "{body}");
    assert_eq!(w.count("SELECT count(*) FROM agents").await, 1);

    let path = format!("/api/v1/agents/{}/", first["id"]);
    let (status, _, _) = w
        .app
        .call(Method::DELETE, SLUG, &path, Some(&w.root), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _, _) = w.app.get(SLUG, &path, &w.root).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, second) = w
        .create(
            &w.root,
            json!({"agent_name": "acme agents", "agent_type": "SUB_AGENT"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{second}");

    // Restoring the first now collides with the live second one.
    let restore = format!("/api/v1/agents/{}/restore/", first["id"]);
    let (status, _, body) = w
        .app
        .call(Method::POST, SLUG, &restore, Some(&w.root), None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(
        w.count("SELECT count(*) FROM agents WHERE deleted_at IS NULL")
            .await,
        1
    );
}

#[tokio::test]
async fn a_soft_deleted_agent_is_hidden_restored_and_listed_with_include_deleted() {
    let w = world().await;
    let (_, agent) = w
        .create(
            &w.root,
            json!({"agent_name": "Phoenix", "agent_type": "SUB_AGENT"}),
        )
        .await;
    let path = format!("/api/v1/agents/{}/", agent["id"]);
    w.app
        .call(Method::DELETE, SLUG, &path, Some(&w.root), None)
        .await;
    let (_, _, page) = w.app.get(SLUG, "/api/v1/agents/", &w.root).await;
    assert_eq!(page["count"], 0);
    let (_, _, page) = w
        .app
        .get(SLUG, "/api/v1/agents/?include_deleted=true", &w.root)
        .await;
    assert_eq!(page["count"], 1);
    let restore = format!("/api/v1/agents/{}/restore/", agent["id"]);
    let (status, _, restored) = w
        .app
        .call(Method::POST, SLUG, &restore, Some(&w.root), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{restored}");
    assert_eq!(restored["agent_name"], "Phoenix");
    let (status, _, body) = w
        .app
        .call(Method::POST, SLUG, &restore, Some(&w.root), None)
        .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "a live agent is not restorable"
    );
    assert_eq!(body["detail"], "Agent not found or not soft-deleted");
    assert_eq!(
        w.count("SELECT count(*) FROM public.leopard_events WHERE entity_type = 'Agent'")
            .await,
        3,
        "create, delete, restore"
    );
}

#[tokio::test]
async fn invalid_agent_bodies_are_400_and_write_nothing() {
    let w = world().await;
    for body in [
        json!({"agent_type": "SUB_AGENT"}),
        json!({"agent_name": "X", "agent_type": "BOSS"}),
        json!({"agent_name": "X"}),
        json!({"agent_name": "X", "agent_type": "SUB_AGENT", "email": "nope"}),
        json!({"agent_name": "X", "agent_type": "SUB_AGENT", "country": "XYZ"}),
        json!({"agent_name": "X", "agent_type": "SUB_AGENT", "website": "not a url"}),
        json!({"agent_name": "X", "agent_type": "SUB_AGENT", "phone_number": "1".repeat(16)}),
        json!({"agent_name": "x".repeat(101), "agent_type": "SUB_AGENT"}),
        json!({"agent_name": "X", "agent_type": "SUB_AGENT", "description": "d".repeat(501)}),
    ] {
        let (status, reply) = w.create(&w.root, body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body} → {reply}");
    }
    assert_eq!(w.count("SELECT count(*) FROM agents").await, 0);
}

#[tokio::test]
async fn patch_is_a_merge_patch_and_null_clears_the_email() {
    let w = world().await;
    let (_, agent) = w
        .create(
            &w.root,
            json!({"agent_name": "Kite", "agent_type": "SUB_AGENT", "email": "k@kite.example.com",
                   "street": "1 Main St"}),
        )
        .await;
    let path = format!("/api/v1/agents/{}/", agent["id"]);
    let (status, _, updated) = w
        .app
        .call(
            Method::PATCH,
            SLUG,
            &path,
            Some(&w.root),
            Some(json!({"email": null, "agent_type": "SUPER_AGENT"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(updated["email"], Value::Null);
    assert_eq!(updated["agent_type"], "SUPER_AGENT");
    assert_eq!(updated["street"], "1 Main St", "absent fields unchanged");
    assert_eq!(updated["updated_by_name"], "root Tester");
}

#[tokio::test]
async fn a_consultant_without_agent_permissions_gets_403_on_every_agent_route() {
    let w = world().await;
    let (_, agent) = w
        .create(
            &w.root,
            json!({"agent_name": "Hidden", "agent_type": "SUB_AGENT"}),
        )
        .await;
    let token = w.app.token(SLUG, "cons_a").await;
    let path = format!("/api/v1/agents/{}/", agent["id"]);
    let (status, _, _) = w.app.get(SLUG, "/api/v1/agents/", &token).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, _) = w.app.get(SLUG, &path, &token).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = w
        .create(
            &token,
            json!({"agent_name": "Mine", "agent_type": "SUB_AGENT"}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, _) = w
        .app
        .call(Method::DELETE, SLUG, &path, Some(&token), None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        w.count("SELECT count(*) FROM agents WHERE deleted_at IS NULL")
            .await,
        1
    );
}

#[tokio::test]
async fn a_client_shows_its_agent_and_category_names_and_unknown_links_are_400() {
    let w = world().await;
    let (_, agent) = w
        .create(
            &w.root,
            json!({"agent_name": "Referrer", "agent_type": "SUB_AGENT"}),
        )
        .await;
    let (status, _, client) = w
        .app
        .call(
            Method::POST,
            SLUG,
            "/api/v1/clients/",
            Some(&w.root),
            Some(
                json!({"first_name": "Ana", "gender": "FEMALE", "country": "AU",
                        "branch_id": w.org.a, "agent_id": agent["id"], "visa_category_id": 1}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{client}");
    assert_eq!(client["agent"], agent["id"]);
    assert_eq!(client["agent_name"], "Referrer");
    assert_eq!(client["visa_category"], 1);
    assert_eq!(client["visa_category_name"], "Work Visa");

    for body in [
        json!({"first_name": "Bo", "gender": "MALE", "country": "AU", "branch_id": w.org.a,
               "agent_id": 999_999}),
        json!({"first_name": "Bo", "gender": "MALE", "country": "AU", "branch_id": w.org.a,
               "visa_category_id": 999_999}),
    ] {
        let (status, _, reply) = w
            .app
            .call(
                Method::POST,
                SLUG,
                "/api/v1/clients/",
                Some(&w.root),
                Some(body),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{reply}");
    }
    assert_eq!(w.count("SELECT count(*) FROM clients").await, 1);

    let path = format!("/api/v1/clients/{}/", client["id"]);
    let (status, _, reply) = w
        .app
        .call(
            Method::PATCH,
            SLUG,
            &path,
            Some(&w.root),
            Some(json!({"agent_id": 999_999})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{reply}");
    assert!(reply["agent_id"].is_array(), "{reply}");
    let (_, _, unchanged) = w.app.get(SLUG, &path, &w.root).await;
    assert_eq!(unchanged["agent"], agent["id"]);
}
