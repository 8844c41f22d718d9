//! `/api/v1/clients/{id}/profile-picture/` over HTTP against a real PostgreSQL database: multipart
//! uploads checked from the bytes (type and size), per-tenant storage with atomic replacement,
//! the file served only through the API (Bearer or a signed URL), scope by the client's branch,
//! and the `PROFILE_PICTURE_UPLOADED` timeline entry.

use crate::common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use axum::body::Body;
use common::{multipart, Org, TestApp};
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::BodyExt as _;
use leopard_rbac::Role;
use serde_json::{json, Value};
use tower::ServiceExt as _;

const SLUG: &str = "acme";

const PNG: &[u8] = include_bytes!("fixtures/pixel.png");
const JPEG: &[u8] = include_bytes!("fixtures/pixel.jpg");
const WEBP: &[u8] = include_bytes!("fixtures/pixel.webp");

/// ProfilePictureOutput's fields per original-backend.md §2.2.
const PICTURE_FIELDS: &[&str] = &[
    "id",
    "client",
    "file",
    "file_url",
    "file_size",
    "file_type",
    "uploaded_by",
    "uploaded_by_name",
    "created_at",
    "updated_at",
];

const MAX: usize = 5 * 1024 * 1024;

/// A raw answer: status, headers, body bytes.
type Raw = (StatusCode, HeaderMap, Vec<u8>);

/// An org with a super admin (`root`), a consultant of A (`cons_a`) and clients in A and C.
struct World {
    app: TestApp,
    root: String,
    cons_a: String,
    client_a: i64,
    client_c: i64,
}

async fn world() -> World {
    world_on(TestApp::new(&[SLUG]).await).await
}

async fn world_on(app: TestApp) -> World {
    let org: Org = app.seed_org(SLUG).await;
    app.user(SLUG, "root", Some(Role::SuperAdmin), &[], &[])
        .await;
    app.user(SLUG, "cons_a", Some(Role::Consultant), &[org.a], &[])
        .await;
    let root = app.token(SLUG, "root").await;
    let cons_a = app.token(SLUG, "cons_a").await;
    let client_a = client(&app, SLUG, &root, org.a).await;
    let client_c = client(&app, SLUG, &root, org.c).await;
    World {
        app,
        root,
        cons_a,
        client_a,
        client_c,
    }
}

/// A client in `branch` of tenant `slug`; returns its id.
async fn client(app: &TestApp, slug: &str, token: &str, branch: i64) -> i64 {
    let (status, _, json) = app
        .call(
            Method::POST,
            slug,
            "/api/v1/clients/",
            Some(token),
            Some(
                json!({"first_name": "Pic", "gender": "FEMALE", "country": "NP",
                        "branch_id": branch}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{json}");
    json["id"].as_i64().expect("id")
}

/// Sends `request` and returns the raw answer.
async fn raw(app: &TestApp, request: Request<Body>) -> Raw {
    let response = app
        .router
        .clone()
        .oneshot(request)
        .await
        .expect("infallible");
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes()
        .to_vec();
    (status, headers, bytes)
}

fn json_of(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap_or(Value::Null)
}

/// Uploads `bytes` as `filename` (declared `content_type`) for `client` of `slug`.
async fn upload_to(
    app: &TestApp,
    slug: &str,
    token: &str,
    client: i64,
    (filename, content_type, bytes): (&str, &str, &[u8]),
) -> (StatusCode, Value) {
    let (content_type, body) = multipart("file", filename, content_type, bytes);
    let request = Request::builder()
        .method(Method::POST)
        .uri(format!("/api/v1/clients/{client}/profile-picture/"))
        .header("host", format!("{slug}.localhost"))
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", content_type)
        .body(Body::from(body))
        .expect("request");
    let (status, _, bytes) = raw(app, request).await;
    (status, json_of(&bytes))
}

/// `GET` of `uri` on `slug` with an optional Bearer token, raw.
async fn fetch(app: &TestApp, slug: &str, uri: &str, token: Option<&str>) -> Raw {
    let mut request = Request::builder()
        .method(Method::GET)
        .uri(uri)
        .header("host", format!("{slug}.localhost"));
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    raw(app, request.body(Body::empty()).expect("request")).await
}

/// The path and query of an absolute URL.
fn path_and_query(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.find('/')
        .map_or("/".to_owned(), |i| rest[i..].to_owned())
}

impl World {
    async fn upload(
        &self,
        token: &str,
        client: i64,
        file: (&str, &str, &[u8]),
    ) -> (StatusCode, Value) {
        upload_to(&self.app, SLUG, token, client, file).await
    }

    /// The tenant's media directory.
    fn tenant_dir(&self, slug: &str) -> PathBuf {
        self.app
            .media
            .path()
            .join(self.app.context(slug).tenant().schema.as_str())
    }

    /// The files in client `client`'s picture directory of `slug`.
    fn stored(&self, slug: &str, client: i64) -> BTreeSet<String> {
        let dir = self
            .tenant_dir(slug)
            .join("profile_pictures")
            .join(format!("client_{client}"));
        std::fs::read_dir(&dir)
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    }

    async fn rows(&self) -> i64 {
        self.app
            .tenant_count(SLUG, "SELECT count(*) FROM profile_pictures")
            .await
    }
}

fn keys(value: &Value) -> BTreeSet<String> {
    value.as_object().expect("object").keys().cloned().collect()
}

// ----- upload and read ---------------------------------------------------------------------

#[tokio::test]
async fn a_png_upload_answers_the_spec_fields_and_is_stored_under_the_tenant() {
    let w = world().await;
    let (status, json) = w
        .upload(&w.root, w.client_a, ("me.png", "image/png", PNG))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{json}");
    let expected: BTreeSet<String> = PICTURE_FIELDS.iter().map(|s| (*s).to_owned()).collect();
    assert_eq!(keys(&json), expected);
    assert_eq!(json["client"], w.client_a);
    assert_eq!(json["file_type"], "image/png");
    assert_eq!(json["file_size"], PNG.len());
    assert_eq!(json["uploaded_by_name"], "root Tester");
    let file = json["file"].as_str().expect("file");
    assert!(
        file.starts_with(&format!("profile_pictures/client_{}/", w.client_a))
            && file.ends_with(".png"),
        "{file}"
    );
    let url = json["file_url"].as_str().expect("url");
    assert!(
        url.starts_with(&format!(
            "http://acme.localhost/api/v1/clients/{}/profile-picture/file/?",
            w.client_a
        )),
        "{url}"
    );
    let on_disk = w.tenant_dir(SLUG).join(file);
    assert_eq!(std::fs::read(&on_disk).expect("stored"), PNG);
    let (status, _, got) = w
        .app
        .get(
            SLUG,
            &format!("/api/v1/clients/{}/profile-picture/", w.client_a),
            &w.root,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(keys(&got), expected);
    assert_eq!(got["id"], json["id"]);
    assert_eq!(got["file"], json["file"]);
}

#[tokio::test]
async fn the_type_comes_from_the_bytes_not_from_the_declared_type_or_name() {
    let w = world().await;
    for (bytes, declared, expected, ext) in [
        (JPEG, "image/png", "image/jpeg", ".jpg"),
        (WEBP, "application/octet-stream", "image/webp", ".webp"),
        (PNG, "image/jpeg", "image/png", ".png"),
    ] {
        let (status, json) = w
            .upload(&w.root, w.client_a, ("photo.gif", declared, bytes))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{expected}: {json}");
        assert_eq!(json["file_type"], expected);
        assert!(
            json["file"].as_str().is_some_and(|f| f.ends_with(ext)),
            "{json}"
        );
    }
    // A text file named and declared as a PNG is refused; nothing changes.
    let before = w.stored(SLUG, w.client_a);
    let (status, json) = w
        .upload(
            &w.root,
            w.client_a,
            ("evil.png", "image/png", b"<script>alert(1)</script>"),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{json}");
    assert!(json["file"].is_array(), "{json}");
    assert_eq!(w.stored(SLUG, w.client_a), before);
    let (_, _, current) = w
        .app
        .get(
            SLUG,
            &format!("/api/v1/clients/{}/profile-picture/", w.client_a),
            &w.root,
        )
        .await;
    assert_eq!(
        current["file_type"], "image/png",
        "the last good picture stays"
    );
}

#[tokio::test]
async fn pictures_up_to_5_mb_are_accepted_and_bigger_ones_get_a_json_413() {
    let w = world().await;
    let mut big = PNG.to_vec();
    big.resize(MAX, 0);
    let (status, json) = w
        .upload(&w.root, w.client_a, ("big.png", "image/png", &big))
        .await;
    assert_eq!(status, StatusCode::CREATED, "exactly 5 MB: {json}");
    assert_eq!(json["file_size"], MAX);
    big.push(0);
    let (status, json) = w
        .upload(&w.root, w.client_c, ("big.png", "image/png", &big))
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{json}");
    assert!(
        json["detail"].as_str().is_some_and(|d| d.contains("5 MB")),
        "{json}"
    );
    // Far beyond the route's body limit: still a JSON 413.
    big.resize(MAX * 2, 0);
    let (status, json) = w
        .upload(&w.root, w.client_c, ("huge.png", "image/png", &big))
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{json}");
    assert_eq!(json["code"], "file_too_large", "{json}");
    assert!(w.stored(SLUG, w.client_c).is_empty());
    assert_eq!(w.rows().await, 1);
}

#[tokio::test]
async fn a_missing_file_an_empty_file_or_a_non_multipart_body_is_a_400() {
    let w = world().await;
    let path = format!("/api/v1/clients/{}/profile-picture/", w.client_a);
    let (content_type, body) = multipart("avatar", "me.png", "image/png", PNG);
    let request = Request::builder()
        .method(Method::POST)
        .uri(&path)
        .header("host", "acme.localhost")
        .header("authorization", format!("Bearer {}", w.root))
        .header("content-type", content_type)
        .body(Body::from(body))
        .expect("request");
    let (status, _, bytes) = raw(&w.app, request).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(json_of(&bytes)["file"].is_array(), "no `file` field");
    let (status, json) = w
        .upload(&w.root, w.client_a, ("e.png", "image/png", b""))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{json}");
    let (status, _, json) = w
        .app
        .call(
            Method::POST,
            SLUG,
            &path,
            Some(&w.root),
            Some(json!({"file": "x"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{json}");
    assert!(json["detail"].is_string(), "{json}");
    assert_eq!(w.rows().await, 0);
}

#[tokio::test]
async fn a_new_upload_replaces_the_picture_and_removes_the_old_file() {
    let w = world().await;
    let (_, first) = w
        .upload(&w.root, w.client_a, ("a.png", "image/png", PNG))
        .await;
    let (status, second) = w
        .upload(&w.cons_a, w.client_a, ("b.jpg", "image/jpeg", JPEG))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{second}");
    assert_eq!(w.rows().await, 1);
    assert_eq!(second["id"], first["id"], "one picture per client");
    assert_eq!(second["uploaded_by_name"], "cons_a Tester");
    let name = |v: &Value| {
        v["file"]
            .as_str()
            .and_then(|f| f.rsplit('/').next())
            .expect("file")
            .to_owned()
    };
    assert_eq!(w.stored(SLUG, w.client_a), BTreeSet::from([name(&second)]));
    assert_ne!(name(&first), name(&second));
}

#[tokio::test]
async fn delete_removes_the_row_and_the_file_and_then_get_is_404() {
    let w = world().await;
    let path = format!("/api/v1/clients/{}/profile-picture/", w.client_a);
    let (status, _, json) = w.app.get(SLUG, &path, &w.root).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(json["detail"], "Profile picture not found");
    w.upload(&w.root, w.client_a, ("a.png", "image/png", PNG))
        .await;
    // Consultants may upload but not delete (the original's grants).
    let (status, _, _) = w
        .app
        .call(Method::DELETE, SLUG, &path, Some(&w.cons_a), None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, _) = w
        .app
        .call(Method::DELETE, SLUG, &path, Some(&w.root), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(w.stored(SLUG, w.client_a).is_empty());
    assert_eq!(w.rows().await, 0);
    let (status, _, json) = w.app.get(SLUG, &path, &w.root).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(json["detail"], "Profile picture not found");
    let (status, _, _) = w
        .app
        .call(Method::DELETE, SLUG, &path, Some(&w.root), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

// ----- serving the bytes -------------------------------------------------------------------

#[tokio::test]
async fn the_file_is_served_with_a_bearer_token_and_safe_headers() {
    let w = world().await;
    w.upload(&w.root, w.client_a, ("a.webp", "image/webp", WEBP))
        .await;
    let uri = format!("/api/v1/clients/{}/profile-picture/file/", w.client_a);
    let (status, headers, bytes) = fetch(&w.app, SLUG, &uri, Some(&w.cons_a)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(bytes, WEBP);
    assert_eq!(headers["content-type"], "image/webp");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert!(
        headers["cache-control"]
            .to_str()
            .is_ok_and(|c| c.contains("private")),
        "{headers:?}"
    );
    let (status, _, _) = fetch(&w.app, SLUG, &uri, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "no token, no signature");
}

#[tokio::test]
async fn the_signed_file_url_works_without_a_token_until_the_picture_changes() {
    let w = world().await;
    let (_, first) = w
        .upload(&w.root, w.client_a, ("a.png", "image/png", PNG))
        .await;
    let signed = path_and_query(first["file_url"].as_str().expect("url"));
    assert!(
        signed.contains("sig=") && signed.contains("exp="),
        "{signed}"
    );
    let (status, headers, bytes) = fetch(&w.app, SLUG, &signed, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(bytes, PNG);
    assert_eq!(headers["content-type"], "image/png");
    // A tampered signature, expiry or client is refused.
    let tampered = signed.replacen("sig=", "sig=00", 1);
    assert_eq!(
        fetch(&w.app, SLUG, &tampered, None).await.0,
        StatusCode::FORBIDDEN
    );
    let later = signed.replacen("exp=", "exp=9", 1);
    assert_eq!(
        fetch(&w.app, SLUG, &later, None).await.0,
        StatusCode::FORBIDDEN
    );
    let other = signed.replacen(
        &format!("/clients/{}/", w.client_a),
        &format!("/clients/{}/", w.client_c),
        1,
    );
    assert_eq!(
        fetch(&w.app, SLUG, &other, None).await.0,
        StatusCode::FORBIDDEN
    );
    // A replaced picture's link stops working.
    w.upload(&w.root, w.client_a, ("b.jpg", "image/jpeg", JPEG))
        .await;
    assert_eq!(
        fetch(&w.app, SLUG, &signed, None).await.0,
        StatusCode::FORBIDDEN
    );
}

// ----- scope and tenants -------------------------------------------------------------------

#[tokio::test]
async fn a_consultant_of_branch_a_gets_404_for_a_branch_c_clients_picture() {
    let w = world().await;
    w.upload(&w.root, w.client_c, ("c.png", "image/png", PNG))
        .await;
    let path = format!("/api/v1/clients/{}/profile-picture/", w.client_c);
    let (status, _, json) = w.app.get(SLUG, &path, &w.cons_a).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{json}");
    let (status, _, _) = fetch(&w.app, SLUG, &format!("{path}file/"), Some(&w.cons_a)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, json) = w
        .upload(&w.cons_a, w.client_c, ("x.png", "image/png", PNG))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{json}");
    let before = w.stored(SLUG, w.client_c);
    assert_eq!(before.len(), 1, "the consultant's upload wrote nothing");
    let (status, _, _) = w
        .app
        .call(Method::DELETE, SLUG, &path, Some(&w.root), None)
        .await;
    assert_eq!(
        status,
        StatusCode::NO_CONTENT,
        "the super admin reaches every branch"
    );
    let (status, json) = w
        .upload(&w.root, 999_999, ("x.png", "image/png", PNG))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{json}");
}

#[tokio::test]
async fn each_tenant_stores_its_pictures_apart_and_cannot_fetch_the_others() {
    let app = TestApp::new(&["acme", "globex"]).await;
    let w = world_on(app).await;
    let org = w.app.seed_org("globex").await;
    w.app
        .user("globex", "groot", Some(Role::SuperAdmin), &[], &[])
        .await;
    let groot = w.app.token("globex", "groot").await;
    let globex_client = client(&w.app, "globex", &groot, org.a).await;
    let (status, acme) = w
        .upload(&w.root, w.client_a, ("a.png", "image/png", PNG))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, globex) = upload_to(
        &w.app,
        "globex",
        &groot,
        globex_client,
        ("g.jpg", "image/jpeg", JPEG),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{globex}");
    let acme_file = w
        .tenant_dir("acme")
        .join(acme["file"].as_str().expect("file"));
    let globex_file = w
        .tenant_dir("globex")
        .join(globex["file"].as_str().expect("file"));
    assert!(acme_file.is_file() && globex_file.is_file());
    assert_ne!(w.tenant_dir("acme"), w.tenant_dir("globex"));
    assert!(!Path::new(&w.tenant_dir("globex"))
        .join(acme["file"].as_str().expect("file"))
        .exists());
    // A globex token on acme's host: 401. On its own host, acme's client id is not its own.
    let uri = format!("/api/v1/clients/{}/profile-picture/file/", w.client_a);
    assert_eq!(
        fetch(&w.app, "acme", &uri, Some(&groot)).await.0,
        StatusCode::UNAUTHORIZED
    );
    let (status, _, bytes) = fetch(&w.app, "globex", &uri, Some(&groot)).await;
    assert!(bytes != PNG, "globex never gets acme's bytes ({status})");
    // acme's signed link does not open on globex's host.
    let signed = path_and_query(acme["file_url"].as_str().expect("url"));
    let (status, _, bytes) = fetch(&w.app, "globex", &signed, None).await;
    assert!(status.is_client_error(), "{status}");
    assert_ne!(bytes, PNG);
}

// ----- timeline ----------------------------------------------------------------------------

#[tokio::test]
async fn an_upload_writes_a_profile_picture_uploaded_timeline_entry() {
    let (app, bus) = TestApp::with_bus(&[SLUG]).await;
    let w = world_on(app).await;
    w.upload(&w.root, w.client_a, ("a.png", "image/png", PNG))
        .await;
    w.upload(&w.root, w.client_a, ("b.png", "image/png", PNG))
        .await;
    let path = format!(
        "/api/v1/clients/{}/timeline/?activity_type=PROFILE_PICTURE_UPLOADED",
        w.client_a
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let page = loop {
        let (status, _, page) = w.app.get(SLUG, &path, &w.root).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        if page["count"] == 2 {
            break page;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "entries never appeared: {page}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let entry = &page["results"][0];
    assert_eq!(entry["activity_type_display"], "Profile Picture Uploaded");
    assert_eq!(entry["description"], "Profile picture uploaded");
    assert_eq!(entry["metadata"]["file_type"], "image/png");
    assert_eq!(entry["performed_by_name"], "root Tester");
    let events: Vec<(String, Value)> = sqlx::query_as(
        "SELECT event_type, current FROM public.leopard_events
          WHERE entity_type = 'ProfilePicture' ORDER BY id",
    )
    .fetch_all(w.app.tenancy.db.pool())
    .await
    .expect("events");
    let types: Vec<&str> = events.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(types, ["ProfilePicture.CREATE", "ProfilePicture.UPDATE"]);
    for (_, state) in &events {
        assert_eq!(state["client_id"], w.client_a);
        assert!(
            state.get("file_url").is_none(),
            "no signed URL in events: {state}"
        );
    }
    bus.shutdown().await;
}
