//! Country fields over HTTP against PostgreSQL: every country field of every resource, on every
//! write path (create, PUT, PATCH, upsert), takes exactly the ISO 3166-1 alpha-2 codes (in any
//! case, answered upper-case) and answers anything else with 400
//! `{"field": ["\"ZZ\" is not a valid choice."]}`, changing nothing. The OpenAPI document
//! lists the codes.

use crate::common;

use common::{Org, TestApp};
use http::{Method, StatusCode};
use leopard_rbac::Role;
use serde_json::{json, Value};

const SLUG: &str = "acme";

/// A resource with country fields: where it is created, a valid body, its country fields, the
/// table holding its rows, and how its detail path is made from a created row.
struct Case {
    create: &'static str,
    body: Value,
    fields: &'static [&'static str],
    table: &'static str,
    detail: fn(&Value) -> String,
}

struct World {
    app: TestApp,
    token: String,
    org: Org,
    client: i64,
}

impl World {
    async fn new() -> Self {
        let app = TestApp::new(&[SLUG]).await;
        let org = app.seed_org(SLUG).await;
        app.user(SLUG, "root", Some(Role::SuperAdmin), &[], &[])
            .await;
        let token = app.token(SLUG, "root").await;
        let mut world = Self {
            app,
            token,
            org,
            client: 0,
        };
        let (status, client) = world
            .send(
                Method::POST,
                "/api/v1/clients/",
                json!({"first_name": "Asha", "gender": "FEMALE", "country": "NP",
                       "branch_id": world.org.a}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{client}");
        world.client = client["id"].as_i64().expect("client id");
        world
    }

    async fn send(&self, method: Method, path: &str, body: Value) -> (StatusCode, Value) {
        let (status, _, json) = self
            .app
            .call(method, SLUG, path, Some(&self.token), Some(body))
            .await;
        (status, json)
    }

    async fn get(&self, path: &str) -> Value {
        let (status, _, json) = self.app.get(SLUG, path, &self.token).await;
        assert_eq!(status, StatusCode::OK, "GET {path}: {json}");
        json
    }

    async fn rows(&self, table: &str) -> i64 {
        self.app
            .tenant_count(SLUG, &format!("SELECT count(*) FROM {table}"))
            .await
    }

    async fn institute(&self) -> i64 {
        let (status, json) = self
            .send(
                Method::POST,
                "/api/v1/institutes/",
                json!({"name": "Harbour University", "short_name": "HU"}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{json}");
        json["id"].as_i64().expect("institute id")
    }

    /// Every resource that has a country field.
    async fn cases(&self) -> Vec<Case> {
        let client = self.client;
        let institute = self.institute().await;
        fn by_id(row: &Value, base: &str) -> String {
            format!("{base}{}/", row["id"])
        }
        vec![
            Case {
                create: "/api/v1/clients/",
                body: json!({"first_name": "Bikash", "gender": "MALE", "country": "AU",
                             "branch_id": self.org.a}),
                fields: &["country"],
                table: "clients",
                detail: |r| by_id(r, "/api/v1/clients/"),
            },
            Case {
                create: "/api/v1/passports/",
                body: json!({"client_id": client, "passport_no": "PA1", "passport_country": "NP",
                             "country_of_birth": "NP", "nationality": "NP"}),
                fields: &["passport_country", "country_of_birth", "nationality"],
                table: "passports",
                detail: |r| format!("/api/v1/passports/{}/", r["client_id"]),
            },
            Case {
                create: "/api/v1/qualifications/",
                body: json!({"client_id": client, "course": "BSc", "country": "IN"}),
                fields: &["country"],
                table: "qualifications",
                detail: |r| by_id(r, "/api/v1/qualifications/"),
            },
            Case {
                create: "/api/v1/employments/",
                body: json!({"client_id": client, "employer_name": "ACME", "position": "Clerk",
                             "start_date": "2020-01-01", "end_date": "2021-01-01",
                             "country": "AU"}),
                fields: &["country"],
                table: "employments",
                detail: |r| by_id(r, "/api/v1/employments/"),
            },
            Case {
                create: "/api/v1/institute-locations/",
                body: json!({"institute": institute, "state": "NSW", "country": "AU"}),
                fields: &["country"],
                table: "institute_locations",
                detail: |r| by_id(r, "/api/v1/institute-locations/"),
            },
            Case {
                create: "/api/v1/agents/",
                body: json!({"agent_name": "Globe Partners", "agent_type": "SUPER_AGENT",
                             "country": "GB"}),
                fields: &["country"],
                table: "agents",
                detail: |r| by_id(r, "/api/v1/agents/"),
            },
            Case {
                create: "/api/v1/branches/",
                body: json!({"name": "Branch E", "country": "AU"}),
                fields: &["country"],
                table: "branches",
                detail: |r| by_id(r, "/api/v1/branches/"),
            },
        ]
    }
}

fn refused(json: &Value, field: &str, value: &str) -> bool {
    json[field] == json!([format!("\"{value}\" is not a valid choice.")])
}

#[tokio::test]
async fn every_create_refuses_an_unknown_country_code_on_each_country_field_and_writes_nothing() {
    let w = World::new().await;
    for case in w.cases().await {
        let before = w.rows(case.table).await;
        for field in case.fields {
            for bad in ["ZZ", "XX", "UK", "Nepal", "N1"] {
                let mut body = case.body.clone();
                body[*field] = json!(bad);
                let (status, json) = w.send(Method::POST, case.create, body).await;
                assert_eq!(
                    status,
                    StatusCode::BAD_REQUEST,
                    "{} {field}={bad}: {json}",
                    case.create
                );
                assert!(
                    refused(&json, field, bad),
                    "{} {field}={bad}: {json}",
                    case.create
                );
            }
        }
        assert_eq!(
            w.rows(case.table).await,
            before,
            "{} wrote a row",
            case.create
        );
    }
    // The upsert path of passports too.
    let mut body = json!({"client_id": w.client, "passport_no": "PA2", "passport_country": "NP",
                          "country_of_birth": "NP", "nationality": "XX"});
    let (status, json) = w
        .send(Method::POST, "/api/v1/passports/upsert/", body.clone())
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{json}");
    assert!(refused(&json, "nationality", "XX"), "{json}");
    assert_eq!(w.rows("passports").await, 0);
    body["nationality"] = json!("np");
    let (status, json) = w
        .send(Method::POST, "/api/v1/passports/upsert/", body)
        .await;
    assert_eq!(status, StatusCode::OK, "{json}");
    assert_eq!(json["nationality"], "NP");
}

#[tokio::test]
async fn every_put_patch_and_upsert_refuses_an_unknown_code_and_leaves_the_row_as_it_was() {
    let w = World::new().await;
    for case in w.cases().await {
        let (status, created) = w.send(Method::POST, case.create, case.body.clone()).await;
        assert!(status.is_success(), "{}: {created}", case.create);
        let detail = (case.detail)(&created);
        let stored = w.get(&detail).await;
        for field in case.fields {
            for method in [Method::PUT, Method::PATCH] {
                let mut body = case.body.clone();
                body[*field] = json!("ZZ");
                let (status, json) = w.send(method.clone(), &detail, body).await;
                assert_eq!(
                    status,
                    StatusCode::BAD_REQUEST,
                    "{method} {detail} {field}: {json}"
                );
                assert!(
                    refused(&json, field, "ZZ"),
                    "{method} {detail} {field}: {json}"
                );
            }
            if case.create == "/api/v1/passports/" {
                let mut body = case.body.clone();
                body[*field] = json!("ZZ");
                let (status, json) = w.send(Method::POST, case.create, body).await;
                assert_eq!(status, StatusCode::BAD_REQUEST, "upsert {field}: {json}");
            }
        }
        assert_eq!(w.get(&detail).await, stored, "{detail} changed");
    }
}

#[tokio::test]
async fn assigned_codes_are_accepted_in_any_case_and_answered_upper_case() {
    let w = World::new().await;
    for case in w.cases().await {
        let mut body = case.body.clone();
        for field in case.fields {
            body[*field] = json!("ie");
        }
        let (status, created) = w.send(Method::POST, case.create, body).await;
        assert!(status.is_success(), "{}: {created}", case.create);
        for field in case.fields {
            assert_eq!(created[*field], "IE", "{} {field}", case.create);
        }
        let detail = (case.detail)(&created);
        for (field, code) in case.fields.iter().zip(["ad", "Zw", "np"]) {
            let (status, json) = w
                .send(Method::PATCH, &detail, json!({ *field: code }))
                .await;
            assert_eq!(status, StatusCode::OK, "PATCH {detail} {field}: {json}");
            assert_eq!(json[*field], code.to_ascii_uppercase(), "{detail} {field}");
        }
    }
}

#[tokio::test]
async fn optional_country_fields_of_agents_and_branches_may_still_be_cleared() {
    let w = World::new().await;
    for (create, body, cleared) in [
        (
            "/api/v1/agents/",
            json!({"agent_name": "Clearable", "agent_type": "SUB_AGENT", "country": "NZ"}),
            Value::Null,
        ),
        (
            "/api/v1/branches/",
            json!({"name": "Clearable", "country": "NZ"}),
            json!(""),
        ),
    ] {
        let (status, created) = w.send(Method::POST, create, body).await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        assert_eq!(created["country"], "NZ");
        let detail = format!("{create}{}/", created["id"]);
        let (status, json) = w
            .send(Method::PATCH, &detail, json!({"country": null}))
            .await;
        assert_eq!(status, StatusCode::OK, "{json}");
        assert_eq!(json["country"], cleared, "{create}");
    }
}

#[tokio::test]
async fn the_openapi_document_lists_the_country_codes_for_every_country_field() {
    let w = World::new().await;
    let (status, _, doc) = w
        .app
        .call(Method::GET, SLUG, "/api/schema/", None, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let codes = doc["components"]["schemas"]["CountryCode"]["enum"]
        .as_array()
        .expect("a CountryCode enum");
    assert_eq!(codes.len(), 249);
    assert!(codes.contains(&json!("NP")) && !codes.contains(&json!("ZZ")));
    let reference = json!({"$ref": "#/components/schemas/CountryCode"});
    for case in w.cases().await {
        let schema = &doc["paths"][case.create]["post"]["requestBody"]["content"]
            ["application/json"]["schema"];
        for field in case.fields {
            assert_eq!(
                schema["properties"][*field], reference,
                "{} {field}",
                case.create
            );
        }
    }
    for (path, field) in [
        ("/api/v1/clients/{id}/", "country"),
        ("/api/v1/passports/{client_id}/", "nationality"),
        ("/api/v1/passports/upsert/", "passport_country"),
        ("/api/v1/institute-locations/{id}/", "country"),
    ] {
        for method in ["put", "patch", "post"] {
            let Some(op) = doc["paths"][path].get(method) else {
                continue;
            };
            assert_eq!(
                op["requestBody"]["content"]["application/json"]["schema"]["properties"][field],
                reference,
                "{method} {path}"
            );
        }
    }
}

#[tokio::test]
async fn the_tenant_country_names_table_holds_exactly_the_validators_list() {
    let w = World::new().await;
    let mut tx = w.app.context(SLUG).begin().await.expect("tx");
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT code::text, name::text FROM country_names ORDER BY code")
            .fetch_all(&mut *tx)
            .await
            .expect("country names");
    let expected: Vec<(String, String)> = leopard_core::COUNTRIES
        .iter()
        .map(|(c, n)| ((*c).to_owned(), (*n).to_owned()))
        .collect();
    assert_eq!(rows, expected);
}
