//! The OpenAPI 3.1 document of the server, generated from the route table, and the Swagger UI
//! that renders it.
//!
//! Every path and method of [`api::table`] becomes an operation, and so does every route that
//! [`crate::app::router`] mounts itself ([`direct_routes`]): nothing is written by hand per
//! resource, so a resource added to the table is documented as soon as it is served. What the
//! table does not say is derived from the path and method:
//!
//! - operation id: the method and the path's words (`get_clients_id_timeline`); tag: the
//!   resource, the first word after `/api/v1/` (`clients`), or `platform`, `auth`, …;
//! - path parameters: one per `{param}`, an `int64` for `id` and `*_id`, a string otherwise;
//! - security: a tenant access token for [`Access::Tenant`], none for
//!   [`Access::TenantPublic`] and the platform token routes, a platform token for the other
//!   [`Access::Platform`] routes;
//! - request body: a JSON object for POST, PUT and PATCH (required for PUT, PATCH and a
//!   create);
//! - success: 201 for a POST on a collection path (no trailing `{param}`) that also takes GET,
//!   204 for DELETE, 200 otherwise; a GET on such a collection answers a page
//!   `{count, next, previous, results}` and takes `page` and `page_size`;
//! - errors: 400 (`{"field": ["message"]}` or `{"detail", "code"}`), 401 where a token or
//!   credentials are checked, 403, 404 and 405, all with the bodies of
//!   [`leopard_http::ApiError`].
//!
//! A route where a default does not hold says so in the table ([`crate::api::OpDoc`]: a list
//! answered without pages, a 200 create, an upload, a file body).
//!
//! The document is served at [`SCHEMA_PATH`] and the Swagger UI at [`DOCS_PATH`] on every host
//! (tenant and base hosts alike) without a token. The UI's files come from the
//! `utoipa-swagger-ui` crate, which ships them vendored: the page loads nothing from another
//! host.

use std::collections::BTreeSet;
use std::sync::{Arc, LazyLock};

use axum::extract::Path;
use axum::http::{header, HeaderValue, Method};
use axum::response::{IntoResponse, Response};
use leopard_http::ApiError;
use serde_json::{json, Map, Value};

use crate::api::{self, Access, OpDoc};

/// Where the OpenAPI document is served (JSON).
pub const SCHEMA_PATH: &str = "/api/schema/";

/// Where the Swagger UI is served; its files are below it (`/api/docs/swagger-ui.css`, …).
pub const DOCS_PATH: &str = "/api/docs/";

/// The route of the Swagger UI's files (one path segment: the UI's files are flat).
pub const DOCS_FILE_PATH: &str = "/api/docs/{file}";

/// Who may call an operation, and on which host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// Any host, no tenant, no token (health, the document and its UI).
    Anyone,
    /// A tenant host, no token.
    TenantPublic,
    /// A tenant host and a tenant access token.
    Tenant,
    /// A tenant host and a tenant access token, in the `Authorization` header or the `token`
    /// query parameter (the notification stream: `EventSource` cannot send headers).
    TenantOrQueryToken,
    /// The base host, no token (platform login and refresh).
    PlatformPublic,
    /// The base host and a platform token.
    Platform,
}

impl Auth {
    /// The access of a table route: [`Access::Platform`] routes under
    /// `/api/platform/token/` are the platform login and refresh, which take no token.
    pub fn of(access: Access, path: &str) -> Self {
        match access {
            Access::TenantPublic => Self::TenantPublic,
            Access::Tenant => Self::Tenant,
            Access::Platform if path.starts_with("/api/platform/token/") => Self::PlatformPublic,
            Access::Platform => Self::Platform,
        }
    }

    fn host(self) -> &'static str {
        match self {
            Self::Anyone => "Any host.",
            Self::TenantPublic => "Tenant host (`<slug>.<base domain>`), no token.",
            Self::Tenant => "Tenant host (`<slug>.<base domain>`), tenant access token.",
            Self::TenantOrQueryToken => {
                "Tenant host (`<slug>.<base domain>`), tenant access token in the \
                 `Authorization` header or the `token` query parameter."
            }
            Self::PlatformPublic => "Base host (no tenant's), no token.",
            Self::Platform => "Base host (no tenant's), platform token.",
        }
    }

    fn security(self) -> Value {
        match self {
            Self::Anyone | Self::TenantPublic | Self::PlatformPublic => json!([]),
            Self::Tenant => json!([{"tenantToken": []}]),
            Self::TenantOrQueryToken => json!([{"tenantToken": []}, {"tenantQueryToken": []}]),
            Self::Platform => json!([{"platformToken": []}]),
        }
    }

    fn checks_credentials(self) -> bool {
        self != Self::Anyone
    }

    fn on_a_tenant_or_base_host(self) -> bool {
        self != Self::Anyone
    }
}

/// One documented path: its methods, who may call them, and what the defaults do not say.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// The path, with `{param}` placeholders.
    pub path: &'static str,
    /// The methods served at `path`.
    pub methods: Vec<Method>,
    /// Who may call it.
    pub auth: Auth,
    /// Per-method documentation beyond the defaults.
    pub docs: Vec<(Method, OpDoc)>,
    /// What the success body is when it is not decided by the defaults.
    pub body: Option<Value>,
}

/// The routes [`crate::app::router`] mounts itself, outside [`api::table`].
pub fn direct_routes() -> Vec<Endpoint> {
    let endpoint = |path, auth, body| Endpoint {
        path,
        methods: vec![Method::GET],
        auth,
        docs: Vec::new(),
        body: Some(body),
    };
    let produces = |media| {
        vec![(
            Method::GET,
            OpDoc {
                produces: Some(media),
                ..OpDoc::default()
            },
        )]
    };
    vec![
        endpoint(
            "/health/",
            Auth::Anyone,
            json!({"$ref": "#/components/schemas/Health"}),
        ),
        endpoint(
            "/api/public/tenant-info/",
            Auth::TenantPublic,
            json!({
                "type": "object",
                "required": ["tenant_name", "tenant_id"],
                "properties": {
                    "tenant_name": {"type": "string"},
                    "tenant_id": {"type": "integer", "format": "int64"},
                },
            }),
        ),
        Endpoint {
            docs: produces("text/event-stream"),
            ..endpoint(
                crate::app::STREAM_PATH,
                Auth::TenantOrQueryToken,
                json!({"type": "string"}),
            )
        },
        endpoint(
            SCHEMA_PATH,
            Auth::Anyone,
            json!({"type": "object", "description": "This document."}),
        ),
        Endpoint {
            docs: produces("text/html"),
            ..endpoint(DOCS_PATH, Auth::Anyone, json!({"type": "string"}))
        },
        Endpoint {
            docs: produces("application/octet-stream"),
            ..endpoint(DOCS_FILE_PATH, Auth::Anyone, json!({"type": "string"}))
        },
    ]
}

/// Every documented path: [`api::table`], then [`direct_routes`].
pub fn endpoints() -> Vec<Endpoint> {
    let mut all: Vec<Endpoint> = api::table()
        .iter()
        .map(|route| Endpoint {
            path: route.path,
            methods: route.methods.clone(),
            auth: Auth::of(route.access, route.path),
            docs: route
                .methods
                .iter()
                .map(|m| (m.clone(), route.doc(m)))
                .collect(),
            body: None,
        })
        .collect();
    all.extend(direct_routes());
    all
}

/// The OpenAPI 3.1 document of every route of the server.
pub fn document() -> Value {
    let endpoints = endpoints();
    let mut paths = Map::new();
    let mut tags = BTreeSet::new();
    for endpoint in &endpoints {
        let mut item = Map::new();
        for method in &endpoint.methods {
            let op = operation(endpoint, method);
            if let Some(tag) = op["tags"][0].as_str() {
                tags.insert(tag.to_owned());
            }
            item.insert(method.as_str().to_ascii_lowercase(), op);
        }
        paths.insert(endpoint.path.to_owned(), Value::Object(item));
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Leopard API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The Leopard CRM API, generated from the server's route table.\n\n\
                Tenant routes answer on a tenant's host (`<slug>.<base domain>`, e.g. \
                `acme.localhost:8000`) and take that tenant's access token \
                (`POST /api/token/`); platform routes answer on the base host (e.g. \
                `localhost:8000`) and take a platform token (`POST /api/platform/token/`). \
                Lists answer pages `{count, next, previous, results}` (`page`, \
                `page_size` ≤ 1000); validation errors are 400 `{\"field\": [\"message\"]}`, \
                every other error `{\"detail\", \"code\"}`.",
            "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"},
        },
        "servers": [{"url": "/", "description": "The host this document was fetched from."}],
        "tags": tags.into_iter().map(|t| json!({"name": t})).collect::<Vec<_>>(),
        "paths": paths,
        "components": components(),
    })
}

/// The shared schemas, responses and security schemes.
fn components() -> Value {
    let error_response = |description: &str| {
        json!({
            "description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        })
    };
    json!({
        "schemas": {
            "Error": {
                "type": "object",
                "description": "Every error but a validation error.",
                "required": ["detail", "code"],
                "properties": {
                    "detail": {"type": "string"},
                    "code": {
                        "type": "string",
                        "examples": ["not_found", "permission_denied", "not_authenticated"],
                    },
                },
            },
            "ValidationError": {
                "type": "object",
                "description": "The messages of each invalid field.",
                "additionalProperties": {"type": "array", "items": {"type": "string"}},
            },
            "Page": {
                "type": "object",
                "description": "One page of a list.",
                "required": ["count", "next", "previous", "results"],
                "properties": {
                    "count": {"type": "integer", "format": "int64", "minimum": 0},
                    "next": {"type": ["string", "null"], "format": "uri"},
                    "previous": {"type": ["string", "null"], "format": "uri"},
                    "results": {"type": "array", "items": {"type": "object"}},
                },
            },
            "CountryCode": {
                "type": "string",
                "description": "An ISO 3166-1 alpha-2 country code, upper-case (any case is \
                                accepted on input); another value is a 400 on its field.",
                "enum": leopard_core::Country::codes().collect::<Vec<_>>(),
            },
            "Health": {
                "type": "object",
                "required": ["status", "service"],
                "properties": {
                    "status": {"type": "string", "enum": ["healthy", "unhealthy"]},
                    "service": {"type": "string"},
                    "error": {"type": "string"},
                },
            },
        },
        "responses": {
            "BadRequest": {
                "description": "Invalid input: per-field messages, or a detail.",
                "content": {"application/json": {"schema": {"anyOf": [
                    {"$ref": "#/components/schemas/ValidationError"},
                    {"$ref": "#/components/schemas/Error"},
                ]}}},
            },
            "Unauthorized": error_response(
                "No, an invalid or an expired token (`not_authenticated`, `token_not_valid`), \
                 or wrong credentials (`no_active_account`)."),
            "Forbidden": error_response(
                "A missing permission (`permission_denied`) or a tenant that is not active \
                 (`tenant_inactive`)."),
            "NotFound": error_response(
                "No such object in the caller's scope, or no tenant for the host \
                 (`tenant_not_found`)."),
            "MethodNotAllowed": error_response("The path does not take this method."),
            "Conflict": error_response(
                "The write collided with a concurrent change (or a row still in use); try again.",
            ),
            "PayloadTooLarge": error_response("The upload is too large (`file_too_large`)."),
            "TooManyRequests": error_response("Too many failed logins (`throttled`)."),
            "ServiceUnavailable": {
                "description": "The database does not answer.",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Health"}}},
            },
        },
        "securitySchemes": {
            "tenantToken": {
                "type": "http",
                "scheme": "bearer",
                "bearerFormat": "JWT",
                "description": "An access token of the host's tenant (`POST /api/token/`).",
            },
            "tenantQueryToken": {
                "type": "apiKey",
                "in": "query",
                "name": "token",
                "description": "An access token of the host's tenant, in the query.",
            },
            "platformToken": {
                "type": "http",
                "scheme": "bearer",
                "bearerFormat": "JWT",
                "description": "A platform admin's access token (`POST /api/platform/token/`).",
            },
        },
    })
}

/// The names of `path`'s `{param}` placeholders, in order.
pub fn path_params(path: &str) -> Vec<&str> {
    path.split('/')
        .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .collect()
}

/// Whether the last segment of `path` is a `{param}` (an object path, not a collection).
fn ends_with_param(path: &str) -> bool {
    path.trim_end_matches('/')
        .rsplit('/')
        .next()
        .is_some_and(|s| s.starts_with('{'))
}

/// Whether a path parameter is an integer id.
fn is_id(name: &str) -> bool {
    name == "id" || name.ends_with("_id")
}

/// The words of `path` that name it: its segments less `api`, `v1` and the placeholders'
/// braces, with `-` as `_`.
fn words(path: &str) -> Vec<String> {
    path.split('/')
        .filter(|s| !s.is_empty() && *s != "api" && *s != "v1")
        .map(|s| s.trim_matches(|c| c == '{' || c == '}').replace('-', "_"))
        .collect()
}

/// The tag (resource) of `path`.
pub fn tag(path: &str) -> String {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    match segments.as_slice() {
        ["api", "v1", resource, ..] => (*resource).to_owned(),
        ["api", "token", ..] => "auth".to_owned(),
        ["api", "schema" | "docs", ..] => "openapi".to_owned(),
        ["api", group, ..] => (*group).to_owned(),
        [first, ..] => (*first).to_owned(),
        [] => "root".to_owned(),
    }
}

/// The operation id of `method` on `path`: `get_clients_id_timeline`.
pub fn operation_id(method: &Method, path: &str) -> String {
    let mut id = method.as_str().to_ascii_lowercase();
    for word in words(path) {
        id.push('_');
        id.push_str(&word);
    }
    id
}

/// Whether `method` on `endpoint` answers a page.
pub fn is_paginated(endpoint: &Endpoint, method: &Method, doc: &OpDoc) -> bool {
    *method == Method::GET
        && doc.paginated.unwrap_or_else(|| {
            endpoint.body.is_none()
                && !ends_with_param(endpoint.path)
                && endpoint.methods.contains(&Method::POST)
        })
}

/// The success statuses of `method` on `endpoint`.
pub fn success_statuses(endpoint: &Endpoint, method: &Method, doc: &OpDoc) -> Vec<u16> {
    if let Some(statuses) = doc.statuses {
        return statuses.to_vec();
    }
    let status = match *method {
        Method::DELETE => 204,
        Method::POST
            if !ends_with_param(endpoint.path) && endpoint.methods.contains(&Method::GET) =>
        {
            201
        }
        _ => 200,
    };
    vec![status]
}

fn operation(endpoint: &Endpoint, method: &Method) -> Value {
    let doc = endpoint
        .docs
        .iter()
        .find(|(m, _)| m == method)
        .map(|(_, d)| *d)
        .unwrap_or_default();
    let paginated = is_paginated(endpoint, method, &doc);
    let mut parameters: Vec<Value> = path_params(endpoint.path)
        .into_iter()
        .map(|name| {
            let schema = if is_id(name) {
                json!({"type": "integer", "format": "int64"})
            } else {
                json!({"type": "string"})
            };
            json!({"name": name, "in": "path", "required": true, "schema": schema})
        })
        .collect();
    if paginated {
        parameters.push(json!({
            "name": "page", "in": "query", "required": false,
            "description": "The 1-based page number; past the last page is a 404.",
            "schema": {"type": "integer", "format": "int64", "minimum": 1, "default": 1},
        }));
        parameters.push(json!({
            "name": "page_size", "in": "query", "required": false,
            "description": format!(
                "Rows per page; larger sizes are capped (at {} at most).",
                leopard_http::pagination::MAX_PAGE_SIZE
            ),
            "schema": {"type": "integer", "format": "int64", "minimum": 1},
        }));
    }
    let statuses = success_statuses(endpoint, method, &doc);
    let mut responses = Map::new();
    for status in &statuses {
        responses.insert(
            status.to_string(),
            success(endpoint, method, &doc, *status, paginated),
        );
    }
    let auth = endpoint.auth;
    let refs: &[(&str, &str, bool)] = &[
        ("400", "BadRequest", auth.on_a_tenant_or_base_host()),
        ("401", "Unauthorized", auth.checks_credentials()),
        ("403", "Forbidden", auth.on_a_tenant_or_base_host()),
        (
            "404",
            "NotFound",
            auth.on_a_tenant_or_base_host() || endpoint.path == DOCS_FILE_PATH,
        ),
        ("405", "MethodNotAllowed", true),
        (
            "409",
            "Conflict",
            auth.on_a_tenant_or_base_host() && *method != Method::GET,
        ),
        ("413", "PayloadTooLarge", doc.upload.is_some()),
        (
            "429",
            "TooManyRequests",
            matches!(auth, Auth::TenantPublic | Auth::PlatformPublic) && *method == Method::POST,
        ),
        ("503", "ServiceUnavailable", endpoint.path == "/health/"),
    ];
    for (status, name, applies) in refs {
        if *applies {
            responses.insert(
                (*status).to_owned(),
                json!({"$ref": format!("#/components/responses/{name}")}),
            );
        }
    }
    let mut op = json!({
        "operationId": operation_id(method, endpoint.path),
        "tags": [tag(endpoint.path)],
        "summary": summary(endpoint, method, paginated, statuses.contains(&201)),
        "description": auth.host(),
        "parameters": parameters,
        "responses": responses,
        "security": auth.security(),
    });
    if let Some(body) = request_body(method, &doc, &statuses) {
        op["requestBody"] = body;
    }
    op
}

/// A short summary: the verb and the path's words.
fn summary(endpoint: &Endpoint, method: &Method, paginated: bool, created: bool) -> String {
    let verb = match *method {
        Method::GET if paginated => "List",
        Method::GET => "Read",
        Method::POST if created => "Create",
        Method::POST => "Post",
        Method::PUT => "Replace",
        Method::PATCH => "Update",
        Method::DELETE => "Delete",
        _ => method.as_str(),
    };
    let what = words(endpoint.path).join(" ").replace('_', " ");
    format!("{verb} {what}")
}

fn success(
    endpoint: &Endpoint,
    method: &Method,
    doc: &OpDoc,
    status: u16,
    paginated: bool,
) -> Value {
    let description = match status {
        201 => "Created.",
        204 => "Done; no body.",
        _ => "OK.",
    };
    if status == 204 {
        return json!({"description": description});
    }
    let (media, schema) = if let Some(media) = doc.produces {
        let schema = endpoint
            .body
            .clone()
            .unwrap_or_else(|| json!({"type": "string", "format": "binary"}));
        (media, schema)
    } else if paginated {
        (
            "application/json",
            json!({"$ref": "#/components/schemas/Page"}),
        )
    } else if let Some(body) = &endpoint.body {
        ("application/json", body.clone())
    } else if *method == Method::GET {
        ("application/json", json!({"type": ["object", "array"]}))
    } else {
        ("application/json", json!({"type": "object"}))
    };
    json!({"description": description, "content": {media: {"schema": schema}}})
}

fn request_body(method: &Method, doc: &OpDoc, statuses: &[u16]) -> Option<Value> {
    if !matches!(*method, Method::POST | Method::PUT | Method::PATCH) {
        return None;
    }
    if let Some(field) = doc.upload {
        return Some(json!({
            "required": true,
            "content": {"multipart/form-data": {"schema": {
                "type": "object",
                "required": [field],
                "properties": {field: {"type": "string", "format": "binary"}},
            }}},
        }));
    }
    let required = *method != Method::POST || statuses.contains(&201);
    let mut schema = json!({"type": "object"});
    if let Some(fields) = doc.countries {
        let country = json!({"$ref": "#/components/schemas/CountryCode"});
        schema["properties"] = fields
            .iter()
            .map(|f| ((*f).to_owned(), country.clone()))
            .collect();
    }
    Some(json!({
        "required": required,
        "content": {"application/json": {"schema": schema}},
    }))
}

/// The document as served, built once.
static DOCUMENT: LazyLock<Vec<u8>> = LazyLock::new(|| document().to_string().into_bytes());

/// The Swagger UI's configuration: the document above, no online validator.
static UI_CONFIG: LazyLock<Arc<utoipa_swagger_ui::Config<'static>>> =
    LazyLock::new(|| Arc::new(utoipa_swagger_ui::Config::new([SCHEMA_PATH]).validator_url("none")));

/// `GET /api/schema/`: the OpenAPI document.
pub async fn schema() -> Response {
    let mut response = DOCUMENT.as_slice().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// `GET /api/docs/`: the Swagger UI page.
pub async fn docs() -> Result<Response, ApiError> {
    ui_file("index.html")
}

/// `GET /api/docs/{file}`: one of the Swagger UI's files.
pub async fn docs_file(Path(file): Path<String>) -> Result<Response, ApiError> {
    ui_file(&file)
}

fn ui_file(name: &str) -> Result<Response, ApiError> {
    let file = utoipa_swagger_ui::serve(name, Arc::clone(&UI_CONFIG))
        .map_err(|e| ApiError::Internal(format!("serving the Swagger UI: {e}")))?
        .ok_or_else(|| ApiError::NotFound("No such file.".into()))?;
    let content_type = HeaderValue::from_str(&file.content_type)
        .unwrap_or(HeaderValue::from_static("application/octet-stream"));
    let mut response = file.bytes.into_owned().into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, content_type);
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_integers_words_name_the_path_and_collections_are_told_from_objects() {
        assert_eq!(
            path_params("/api/v1/x/{id}/y/{client_id}/"),
            ["id", "client_id"]
        );
        assert!(is_id("client_id") && is_id("id") && !is_id("slug"));
        assert!(ends_with_param("/api/v1/clients/{id}/"));
        assert!(!ends_with_param("/api/v1/clients/{id}/timeline/"));
        assert_eq!(
            operation_id(&Method::GET, "/api/v1/visa-types/{id}/"),
            "get_visa_types_id"
        );
        assert_eq!(tag("/api/v1/visa-types/{id}/"), "visa-types");
        assert_eq!(tag("/api/platform/tenants/"), "platform");
        assert_eq!(tag("/api/token/refresh/"), "auth");
        assert_eq!(tag("/health/"), "health");
    }
}
