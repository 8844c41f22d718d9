//! The OpenAPI document at `/api/schema/` and the Swagger UI at `/api/docs/`: the document
//! covers exactly the routes the server answers (the route table and the routes mounted
//! directly), declares OpenAPI 3.1, says truly which lists answer pages, and the UI page loads
//! only files the server itself serves.

use crate::common;

use std::collections::BTreeSet;

use common::TestApp;
use http::{header, Method, StatusCode};
use leopard_rbac::Role;
use leopard_server::api;
use leopard_server::app::STREAM_PATH;
use leopard_server::openapi::{DOCS_FILE_PATH, DOCS_PATH, SCHEMA_PATH};
use serde_json::{json, Value};

/// The base host (no tenant's), verbatim.
const BASE: &str = "localhost:8000";

/// The methods a route may serve.
const METHODS: [Method; 5] = [
    Method::GET,
    Method::POST,
    Method::PUT,
    Method::PATCH,
    Method::DELETE,
];

/// The document as served on the base host, without a token.
async fn fetch(app: &TestApp, host: &str) -> Value {
    let (status, headers, doc) = app.call(Method::GET, host, SCHEMA_PATH, None, None).await;
    assert_eq!(status, StatusCode::OK, "{doc}");
    assert_eq!(headers[header::CONTENT_TYPE], "application/json");
    doc
}

/// Every `(METHOD, path, operation)` of `doc`.
fn operations(doc: &Value) -> Vec<(Method, String, Value)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            let method =
                Method::from_bytes(method.to_ascii_uppercase().as_bytes()).expect("method");
            out.push((method, path.clone(), op.clone()));
        }
    }
    out
}

/// `path` with each `{param}` replaced by a value its route accepts.
fn concrete(path: &str) -> String {
    if path == DOCS_FILE_PATH {
        return format!("{DOCS_PATH}index.css");
    }
    path.split('/')
        .map(|s| if s.starts_with('{') { "1" } else { s })
        .collect::<Vec<_>>()
        .join("/")
}

/// The host an operation answers on: its tag and security tell.
fn host_of(op: &Value) -> &'static str {
    if op["tags"][0] == "platform" || op["description"] == "Any host." {
        BASE
    } else {
        "acme"
    }
}

fn is_page(op: &Value) -> bool {
    op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
        == "#/components/schemas/Page"
}

/// The router's own answer to an unknown path.
fn is_router_fallback(status: StatusCode, body: &Value) -> bool {
    status == StatusCode::NOT_FOUND && *body == json!({"detail": "Not found.", "code": "not_found"})
}

#[tokio::test]
async fn the_schema_documents_every_route_of_the_table_and_the_routes_mounted_directly_and_nothing_else(
) {
    let app = TestApp::new(&["acme"]).await;
    let doc = fetch(&app, BASE).await;
    let version = doc["openapi"].as_str().expect("openapi");
    assert!(version.starts_with("3.1."), "{version}");

    let documented: BTreeSet<(String, String)> = operations(&doc)
        .into_iter()
        .map(|(m, p, _)| (m.to_string(), p))
        .collect();
    let mut served: BTreeSet<(String, String)> = api::table()
        .iter()
        .flat_map(|r| r.methods.iter().map(|m| (m.to_string(), r.path.to_owned())))
        .collect();
    let table_operations = served.len();
    for path in [
        "/health/",
        "/api/public/tenant-info/",
        STREAM_PATH,
        SCHEMA_PATH,
        DOCS_PATH,
        DOCS_FILE_PATH,
    ] {
        served.insert(("GET".to_owned(), path.to_owned()));
    }
    let missing: Vec<_> = served.difference(&documented).collect();
    let extra: Vec<_> = documented.difference(&served).collect();
    assert!(missing.is_empty(), "served but not documented: {missing:?}");
    assert!(extra.is_empty(), "documented but not served: {extra:?}");
    assert!(
        table_operations > 100,
        "{table_operations} table operations"
    );
}

#[tokio::test]
async fn the_schema_is_served_without_a_token_on_tenant_hosts_and_the_base_host_alike() {
    let app = TestApp::new(&["acme"]).await;
    let on_base = fetch(&app, BASE).await;
    let on_tenant = fetch(&app, "acme").await;
    assert_eq!(on_base, on_tenant);
    let (status, _, body) = app
        .call(Method::POST, "acme", SCHEMA_PATH, None, Some(json!({})))
        .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{body}");
    assert_eq!(body["code"], "method_not_allowed");
}

#[tokio::test]
async fn every_documented_operation_is_answered_by_its_route_and_every_other_method_is_a_405() {
    let app = TestApp::new(&["acme"]).await;
    let doc = fetch(&app, BASE).await;
    let ops = operations(&doc);
    for (method, path, op) in &ops {
        let host = host_of(op);
        let body = matches!(*method, Method::POST | Method::PUT | Method::PATCH).then(|| json!({}));
        let (status, _, reply) = app
            .call(method.clone(), host, &concrete(path), None, body)
            .await;
        assert!(
            !is_router_fallback(status, &reply) && status != StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path} on {host}: {status} {reply}"
        );
    }
    let paths: BTreeSet<&String> = ops.iter().map(|(_, p, _)| p).collect();
    let mut refused = 0;
    for path in paths {
        let op = &doc["paths"][path];
        let host = host_of(
            op.as_object()
                .and_then(|o| o.values().next())
                .expect("an operation"),
        );
        for method in METHODS {
            if op.get(method.as_str().to_ascii_lowercase()).is_some() {
                continue;
            }
            let (status, _, reply) = app
                .call(method.clone(), host, &concrete(path), None, None)
                .await;
            assert_eq!(
                status,
                StatusCode::METHOD_NOT_ALLOWED,
                "{method} {path} is not documented, yet answered {reply}"
            );
            assert_eq!(reply["code"], "method_not_allowed", "{method} {path}");
            refused += 1;
        }
    }
    assert!(refused > 100, "{refused} undocumented methods refused");
}

#[tokio::test]
async fn every_operation_has_a_unique_id_a_tag_its_path_parameters_security_and_error_bodies() {
    let app = TestApp::new(&["acme"]).await;
    let doc = fetch(&app, BASE).await;
    let mut ids = BTreeSet::new();
    for (method, path, op) in operations(&doc) {
        let id = op["operationId"].as_str().expect("operationId").to_owned();
        assert!(ids.insert(id.clone()), "{id} twice");
        assert!(op["tags"][0].is_string(), "{method} {path}");
        let declared: Vec<&str> = op["parameters"]
            .as_array()
            .expect("parameters")
            .iter()
            .filter(|p| p["in"] == "path")
            .map(|p| {
                assert_eq!(p["required"], true, "{method} {path}");
                p["name"].as_str().expect("name")
            })
            .collect();
        assert_eq!(
            declared,
            leopard_server::openapi::path_params(&path),
            "{method} {path}"
        );
        for p in op["parameters"].as_array().expect("parameters") {
            let name = p["name"].as_str().expect("name");
            if p["in"] == "path" && (name == "id" || name.ends_with("_id")) {
                assert_eq!(p["schema"]["type"], "integer", "{method} {path} {name}");
            }
        }
        let responses = op["responses"].as_object().expect("responses");
        assert!(
            responses.keys().any(|s| s.starts_with('2')),
            "{method} {path}: no success"
        );
        assert_eq!(
            responses["405"]["$ref"], "#/components/responses/MethodNotAllowed",
            "{method} {path}"
        );
        if matches!(method, Method::POST | Method::PUT | Method::PATCH) {
            assert!(op["requestBody"]["content"].is_object(), "{method} {path}");
        }
        if is_page(&op) {
            let names: Vec<&str> = op["parameters"]
                .as_array()
                .expect("parameters")
                .iter()
                .filter(|p| p["in"] == "query")
                .filter_map(|p| p["name"].as_str())
                .collect();
            assert_eq!(names, ["page", "page_size"], "{method} {path}");
        }
    }
    let security = |method: &str, path: &str| doc["paths"][path][method]["security"].clone();
    assert_eq!(
        security("get", "/api/v1/clients/"),
        json!([{"tenantToken": []}])
    );
    assert_eq!(security("post", "/api/token/"), json!([]));
    assert_eq!(security("post", "/api/platform/token/"), json!([]));
    assert_eq!(
        security("get", "/api/platform/tenants/"),
        json!([{"platformToken": []}])
    );
    assert_eq!(security("get", "/health/"), json!([]));
    let upload = &doc["paths"]["/api/v1/clients/{id}/profile-picture/"]["post"];
    assert!(
        upload["requestBody"]["content"]["multipart/form-data"]["schema"]["properties"]["file"]
            .is_object(),
        "{upload}"
    );
    assert_eq!(
        doc["components"]["schemas"]["Error"]["required"],
        json!(["detail", "code"])
    );
    assert_eq!(
        doc["components"]["schemas"]["Page"]["required"],
        json!(["count", "next", "previous", "results"])
    );
    // Every reference resolves.
    let text = doc.to_string();
    for reference in text.split("\"$ref\":\"").skip(1) {
        let target = reference.split('"').next().expect("a reference");
        let pointer = target.strip_prefix('#').expect("a local reference");
        assert!(doc.pointer(pointer).is_some(), "{target} does not resolve");
    }
}

#[tokio::test]
async fn lists_documented_as_pages_answer_pages_and_the_other_reads_do_not() {
    let app = TestApp::new(&["acme"]).await;
    app.user("acme", "alice", Some(Role::SuperAdmin), &[], &[])
        .await;
    let token = app.token("acme", "alice").await;
    let doc = fetch(&app, BASE).await;
    let mut pages = 0;
    let mut others = 0;
    for (method, path, op) in operations(&doc) {
        if method != Method::GET
            || path.contains('{')
            || path == STREAM_PATH
            || op["security"] != json!([{"tenantToken": []}])
        {
            continue;
        }
        let (status, _, body) = app.get("acme", &path, &token).await;
        assert_eq!(status, StatusCode::OK, "GET {path}: {body}");
        let answered_a_page = body["results"].is_array() && body["count"].is_i64();
        assert_eq!(is_page(&op), answered_a_page, "GET {path}: {body}");
        if answered_a_page {
            pages += 1;
        } else {
            others += 1;
        }
    }
    assert!(pages > 20 && others > 5, "{pages} pages, {others} others");
}

#[tokio::test]
async fn the_docs_page_loads_only_its_own_files_and_each_of_them_is_served() {
    let app = TestApp::new(&["acme"]).await;
    for host in [BASE, "acme"] {
        let (status, headers, page) = app.call(Method::GET, host, DOCS_PATH, None, None).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        assert!(
            headers[header::CONTENT_TYPE]
                .to_str()
                .expect("ascii")
                .starts_with("text/html"),
            "{headers:?}"
        );
        let html = page.as_str().expect("HTML");
        assert!(html.contains("swagger-ui"), "{html}");
        let mut assets = Vec::new();
        for attribute in ["src=\"", "href=\""] {
            for rest in html.split(attribute).skip(1) {
                let target = rest.split('"').next().expect("attribute value");
                assert!(
                    !target.contains("://") && !target.starts_with("//"),
                    "{target} is on another host"
                );
                assets.push(target.trim_start_matches("./").to_owned());
            }
        }
        assert!(assets.len() >= 4, "{assets:?}");
        for asset in &assets {
            let (status, _, body) = app
                .call(
                    Method::GET,
                    host,
                    &format!("{DOCS_PATH}{asset}"),
                    None,
                    None,
                )
                .await;
            assert_eq!(status, StatusCode::OK, "{asset} on {host}");
            assert!(!body.is_null(), "{asset} is empty");
        }
        let (_, _, initializer) = app
            .call(
                Method::GET,
                host,
                &format!("{DOCS_PATH}swagger-initializer.js"),
                None,
                None,
            )
            .await;
        let initializer = initializer.as_str().expect("JavaScript");
        assert!(initializer.contains(SCHEMA_PATH), "{initializer}");
        assert!(
            initializer.contains("\"validatorUrl\": \"none\""),
            "{initializer}"
        );
    }
    let (status, _, body) = app
        .call(
            Method::GET,
            "acme",
            &format!("{DOCS_PATH}nothing.js"),
            None,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
}
