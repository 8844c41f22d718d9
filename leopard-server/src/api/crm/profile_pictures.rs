//! `/api/v1/clients/{id}/profile-picture/`: a client's profile picture (one per client), and
//! `…/profile-picture/file/` serving its bytes.
//!
//! Permissions are verb-level (`view_profilepicture`, `add_profilepicture`,
//! `delete_profilepicture`); the picture follows its client's branch (out of scope or missing
//! client → 404 "Client not found"; no picture → 404 "Profile picture not found").
//!
//! Uploads are multipart (field `file`). The type is decided from the bytes (JPEG, PNG or WebP
//! magic numbers; the declared content type and the file name are ignored) and the size is at
//! most 5 MiB (413 beyond; the route's body limit sits a little above so the answer is this
//! JSON, not an opaque rejection). Anything else — no file, an empty file, a text file named
//! `.png` — is a 400. A new upload replaces the previous picture; the old file is removed after
//! the commit.
//!
//! Files are stored per tenant and never served statically:
//! `<media_dir>/<tenant schema>/profile_pictures/client_<id>/<random>.<ext>`, written to a
//! temporary file and renamed into place; the row and the file change together (a failed
//! upload removes its new file and leaves the old picture untouched).
//!
//! `file_url` is absolute (scheme and `Host` of the request) and **signed**: the SPA uses it as
//! `<img src>`, which cannot send a Bearer header, so it carries `exp` (Unix seconds, one hour
//! ahead) and `sig`, an HMAC-SHA256 of (tenant slug, client id, file name, expiry) under a key
//! derived from the token secret for this purpose only. The file route accepts either a Bearer
//! token (with the same permission and scope as GET) or a valid, unexpired signature for the
//! current file of that client; a replaced picture's links stop working.
//!
//! Writes record `ProfilePicture.CREATE` (first upload), `ProfilePicture.UPDATE` (replacement)
//! and `ProfilePicture.DELETE`, keyed by the picture id, their state carrying `client_id` (never
//! the signed URL).

use std::path::{Component, Path as FsPath, PathBuf};

use axum::extract::multipart::{Multipart, MultipartRejection};
use axum::extract::{DefaultBodyLimit, FromRequestParts, Path, RawQuery, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::Json;
use hmac::{Hmac, Mac};
use http::Method;
use leopard_http::auth::unix_now;
use leopard_http::{ApiError, AuthUser};
use leopard_rbac::{Action, ResourceKind};
use leopard_tenancy::TenantContext;
use rand::RngCore as _;
use serde::Serialize;
use sha2::Sha256;
use sqlx::PgConnection;

use crate::api::crm::clients::client_in_scope;
use crate::api::events;
use crate::api::input::{list_params, param, path_id, rfc3339};
use crate::api::{require, route, Access, ApiRoute};
use crate::app::AppState;

type HmacSha256 = Hmac<Sha256>;

/// The event entity name.
const ENTITY: &str = "ProfilePicture";

/// The permission kind.
const KIND: ResourceKind = ResourceKind::ProfilePicture;

/// The largest picture accepted, in bytes (5 MiB).
pub const MAX_PICTURE_BYTES: usize = 5 * 1024 * 1024;

/// The upload route's body limit: the picture plus room for the multipart framing.
pub(crate) const BODY_LIMIT: usize = MAX_PICTURE_BYTES + 256 * 1024;

/// How long a signed `file_url` stays valid, in seconds.
const URL_TTL_SECS: i64 = 60 * 60;

/// The profile-picture routes.
pub fn routes() -> Vec<ApiRoute> {
    vec![
        route(
            "/api/v1/clients/{id}/profile-picture/",
            Access::Tenant,
            [
                (Method::GET, get(retrieve)),
                (
                    Method::POST,
                    post(upload).layer(DefaultBodyLimit::max(BODY_LIMIT)),
                ),
                (Method::DELETE, delete(destroy)),
            ],
        )
        .upload(Method::POST, "file"),
        route(
            "/api/v1/clients/{id}/profile-picture/file/",
            Access::Tenant,
            [(Method::GET, get(file))],
        )
        .produces(Method::GET, "image/*"),
    ]
}

/// The media store: its root directory and the key of signed file URLs.
pub struct Media {
    /// `<media_dir>`: one directory per tenant schema below.
    dir: PathBuf,
    /// HMAC key of the signed file URLs (derived from the token secret).
    url_key: Vec<u8>,
}

impl std::fmt::Debug for Media {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Media")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl Media {
    /// The store under `dir`, signing URLs with a key derived from `secret` (at least 32
    /// bytes, like the token secret it is).
    pub fn new(dir: PathBuf, secret: &[u8]) -> Result<Self, ApiError> {
        if secret.len() < leopard_http::jwt::MIN_SECRET_LEN {
            return Err(ApiError::Internal("the secret is too short".into()));
        }
        let mut mac = <HmacSha256 as Mac>::new_from_slice(secret)
            .map_err(|e| ApiError::Internal(format!("media key: {e}")))?;
        mac.update(b"leopard media urls");
        Ok(Self {
            dir,
            url_key: mac.finalize().into_bytes().to_vec(),
        })
    }

    /// The directory of `tenant`'s files.
    fn tenant_dir(&self, tenant: &TenantContext) -> PathBuf {
        self.dir.join(tenant.tenant().schema.as_str())
    }

    /// The absolute path of stored file `file` (relative, as in the `file` column) of `tenant`;
    /// `None` for a path that would leave the tenant's directory.
    fn path_of(&self, tenant: &TenantContext, file: &str) -> Option<PathBuf> {
        let relative = FsPath::new(file);
        relative
            .components()
            .all(|c| matches!(c, Component::Normal(_)))
            .then(|| self.tenant_dir(tenant).join(relative))
    }

    /// The HMAC of (tenant, client, file, expiry).
    fn mac(&self, tenant: &str, client: i64, file: &str, exp: i64) -> Option<HmacSha256> {
        let mut mac = <HmacSha256 as Mac>::new_from_slice(&self.url_key).ok()?;
        mac.update(format!("{tenant}\n{client}\n{file}\n{exp}").as_bytes());
        Some(mac)
    }

    /// The hex signature of a file URL.
    fn sign(&self, tenant: &str, client: i64, file: &str, exp: i64) -> String {
        self.mac(tenant, client, file, exp)
            .map(|m| hex(&m.finalize().into_bytes()))
            .unwrap_or_default()
    }

    /// Whether `sig` signs (tenant, client, file, exp) and `exp` is not past.
    fn verify(&self, tenant: &str, client: i64, file: &str, exp: i64, sig: &str) -> bool {
        let Some(bytes) = unhex(sig) else {
            return false;
        };
        exp >= unix_now()
            && self
                .mac(tenant, client, file, exp)
                .is_some_and(|m| m.verify_slice(&bytes).is_ok())
    }
}

/// A profile picture as the API answers it (the original's ProfilePictureOutput).
#[derive(Debug, Clone, Serialize)]
pub struct ProfilePictureOutput {
    /// Id.
    pub id: i64,
    /// The client's id.
    pub client: i64,
    /// The stored file, relative to the tenant's media directory.
    pub file: String,
    /// Absolute, signed URL of the bytes (usable as `<img src>` for an hour).
    pub file_url: String,
    /// Size in bytes.
    pub file_size: i32,
    /// MIME type detected from the bytes (`image/jpeg`, `image/png`, `image/webp`).
    pub file_type: String,
    /// The uploader's id.
    pub uploaded_by: Option<i64>,
    /// The uploader's "First Last" (or username).
    pub uploaded_by_name: Option<String>,
    /// Creation time, RFC 3339.
    pub created_at: String,
    /// Last change, RFC 3339.
    pub updated_at: String,
}

/// A picture row (the output without its URL; also the event state).
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
struct PictureRow {
    id: i64,
    client_id: i64,
    file: String,
    file_size: i32,
    file_type: String,
    uploaded_by: Option<i64>,
    uploaded_by_name: Option<String>,
    created_at: String,
    updated_at: String,
}

const PICTURE_SELECT: &str = concat!(
    "SELECT p.id, p.client_id, p.file, p.file_size, p.file_type,
            p.uploaded_by_id AS uploaded_by,
            CASE WHEN u.id IS NULL THEN NULL
                 ELSE COALESCE(NULLIF(btrim(u.first_name || ' ' || u.last_name), ''), u.username)
            END AS uploaded_by_name, ",
    rfc3339!("p.created_at"),
    " AS created_at, ",
    rfc3339!("p.updated_at"),
    " AS updated_at
       FROM profile_pictures p
       LEFT JOIN users u ON u.id = p.uploaded_by_id"
);

/// An accepted image format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageKind {
    /// `image/jpeg`.
    Jpeg,
    /// `image/png`.
    Png,
    /// `image/webp`.
    Webp,
}

impl ImageKind {
    /// The format of `bytes` by its magic number, if it is one of the accepted ones.
    pub fn sniff(bytes: &[u8]) -> Option<Self> {
        if bytes.len() >= 4 && bytes[..3] == [0xFF, 0xD8, 0xFF] {
            Some(Self::Jpeg)
        } else if bytes.len() >= 16
            && bytes[..8] == [0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A]
            && &bytes[12..16] == b"IHDR"
        {
            Some(Self::Png)
        } else if bytes.len() >= 16
            && &bytes[..4] == b"RIFF"
            && &bytes[8..12] == b"WEBP"
            && &bytes[12..15] == b"VP8"
        {
            Some(Self::Webp)
        } else {
            None
        }
    }

    /// The MIME type.
    pub fn mime(self) -> &'static str {
        match self {
            Self::Jpeg => "image/jpeg",
            Self::Png => "image/png",
            Self::Webp => "image/webp",
        }
    }

    /// The file extension.
    pub fn extension(self) -> &'static str {
        match self {
            Self::Jpeg => "jpg",
            Self::Png => "png",
            Self::Webp => "webp",
        }
    }
}

fn client_not_found() -> ApiError {
    ApiError::NotFound("Client not found".into())
}

fn picture_not_found() -> ApiError {
    ApiError::NotFound("Profile picture not found".into())
}

/// The 413 of an oversized upload.
fn too_large() -> ApiError {
    ApiError::PayloadTooLarge(format!(
        "The file is too large: profile pictures may be at most {} MB.",
        MAX_PICTURE_BYTES / (1024 * 1024)
    ))
}

/// A 400 on `file`.
fn bad_file(message: &str) -> ApiError {
    ApiError::field("file", message)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 || !s.is_ascii() {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
        .collect()
}

/// `scheme://host` of the request (`https` only when a proxy says so), like the pagination
/// links.
fn origin(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    let scheme = headers
        .get("x-forwarded-proto")
        .and_then(|h| h.to_str().ok())
        .filter(|s| *s == "https")
        .unwrap_or("http");
    format!("{scheme}://{host}")
}

/// The answer for `row`: its signed absolute URL added.
fn output(
    media: &Media,
    tenant: &TenantContext,
    headers: &HeaderMap,
    row: PictureRow,
) -> ProfilePictureOutput {
    let exp = unix_now() + URL_TTL_SECS;
    let sig = media.sign(tenant.tenant().slug.as_str(), row.client_id, &row.file, exp);
    let file_url = format!(
        "{}/api/v1/clients/{}/profile-picture/file/?exp={exp}&sig={sig}",
        origin(headers),
        row.client_id
    );
    ProfilePictureOutput {
        id: row.id,
        client: row.client_id,
        file: row.file,
        file_url,
        file_size: row.file_size,
        file_type: row.file_type,
        uploaded_by: row.uploaded_by,
        uploaded_by_name: row.uploaded_by_name,
        created_at: row.created_at,
        updated_at: row.updated_at,
    }
}

// ----- handlers ----------------------------------------------------------------------------

/// `GET /api/v1/clients/{id}/profile-picture/`.
pub(crate) async fn retrieve(
    State(state): State<AppState>,
    auth: AuthUser,
    headers: HeaderMap,
    Path(raw): Path<String>,
) -> Result<Json<ProfilePictureOutput>, ApiError> {
    require(&auth.principal, Action::View, KIND)?;
    let client = path_id(&raw).ok_or_else(client_not_found)?;
    let mut tx = auth.tenant.begin().await?;
    client_in_scope(
        &mut tx,
        &auth.principal,
        Action::View,
        KIND,
        client,
        false,
        client_not_found,
    )
    .await?;
    let row = fetch_picture(&mut tx, client, false)
        .await?
        .ok_or_else(picture_not_found)?;
    tx.commit().await?;
    Ok(Json(output(&state.media, &auth.tenant, &headers, row)))
}

/// `POST /api/v1/clients/{id}/profile-picture/`: multipart field `file`; 201.
pub(crate) async fn upload(
    State(state): State<AppState>,
    auth: AuthUser,
    headers: HeaderMap,
    Path(raw): Path<String>,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Response, ApiError> {
    let principal = &auth.principal;
    if require(principal, Action::Add, KIND).is_err() {
        return Err(ApiError::Forbidden(
            "You do not have permission to upload profile pictures.".into(),
        ));
    }
    let client = path_id(&raw).ok_or_else(client_not_found)?;
    // Refuse an unknown or out-of-scope client before reading the upload.
    let mut tx = auth.tenant.begin().await?;
    client_in_scope(
        &mut tx,
        principal,
        Action::Add,
        KIND,
        client,
        false,
        client_not_found,
    )
    .await?;
    tx.commit().await?;
    let bytes = match read_file(multipart).await {
        Ok(bytes) => bytes,
        Err(Upload::TooLarge) => return Err(too_large()),
        Err(Upload::Invalid(err)) => return Err(err),
    };
    let kind = ImageKind::sniff(&bytes)
        .ok_or_else(|| bad_file("Upload a valid image: a JPEG, PNG or WebP file."))?;
    let size = i32::try_from(bytes.len()).map_err(|_| bad_file("The file is too large."))?;
    let tenant = &auth.tenant;
    let dir = format!("profile_pictures/client_{client}");
    let name = format!("{dir}/{}.{}", random_name(), kind.extension());
    let path = state.media.path_of(tenant, &name).ok_or_else(|| {
        ApiError::Internal("a generated file name left the media directory".into())
    })?;
    write_atomically(&path, &bytes).await?;
    let saved = save(&state, &auth, client, &name, size, kind).await;
    match saved {
        Ok((row, old)) => {
            if let Some(old) = old.filter(|o| *o != name) {
                remove_stored(&state.media, tenant, &old).await;
            }
            let out = output(&state.media, tenant, &headers, row);
            Ok((StatusCode::CREATED, Json(out)).into_response())
        }
        Err(err) => {
            remove_file(&path).await;
            Err(err)
        }
    }
}

/// Records the new picture of `client` (file `name`) in one transaction with its event;
/// returns the row and the previous file.
async fn save(
    state: &AppState,
    auth: &AuthUser,
    client: i64,
    name: &str,
    size: i32,
    kind: ImageKind,
) -> Result<(PictureRow, Option<String>), ApiError> {
    let mut tx = auth.tenant.begin().await?;
    client_in_scope(
        &mut tx,
        &auth.principal,
        Action::Add,
        KIND,
        client,
        true,
        client_not_found,
    )
    .await?;
    let before = fetch_picture(&mut tx, client, true).await?;
    let id = upsert_picture(&mut tx, client, name, size, kind.mime(), auth.user_id.get()).await?;
    let row = fetch_picture(&mut tx, client, false)
        .await?
        .ok_or_else(picture_not_found)?;
    let actor = auth.user_id.get();
    let event = match &before {
        Some(before) => events::updated_fields(
            ENTITY,
            id,
            events::state(before)?,
            events::state(&row)?,
            &["file", "file_size", "file_type", "uploaded_by"],
            actor,
        ),
        None => events::created(ENTITY, id, events::state(&row)?, actor),
    };
    events::record(&mut tx, vec![event]).await?;
    events::commit(tx, &state.waker).await?;
    Ok((row, before.map(|b| b.file)))
}

/// `DELETE /api/v1/clients/{id}/profile-picture/`: the row, then the file.
pub(crate) async fn destroy(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(raw): Path<String>,
) -> Result<StatusCode, ApiError> {
    require(&auth.principal, Action::Delete, KIND)?;
    let client = path_id(&raw).ok_or_else(client_not_found)?;
    let mut tx = auth.tenant.begin().await?;
    client_in_scope(
        &mut tx,
        &auth.principal,
        Action::Delete,
        KIND,
        client,
        true,
        client_not_found,
    )
    .await?;
    let before = fetch_picture(&mut tx, client, true)
        .await?
        .ok_or_else(picture_not_found)?;
    sqlx::query("DELETE FROM profile_pictures WHERE id = $1")
        .bind(before.id)
        .execute(&mut *tx)
        .await?;
    let event = events::deleted(
        ENTITY,
        before.id,
        events::state(&before)?,
        auth.user_id.get(),
    );
    events::record(&mut tx, vec![event]).await?;
    events::commit(tx, &state.waker).await?;
    remove_stored(&state.media, &auth.tenant, &before.file).await;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/v1/clients/{id}/profile-picture/file/`: the bytes, for a Bearer token with the
/// view permission and scope, or for a valid signature (`exp`, `sig`) of the current file.
pub(crate) async fn file(
    State(state): State<AppState>,
    Path(raw): Path<String>,
    RawQuery(query): RawQuery,
    request: Request,
) -> Result<Response, ApiError> {
    let (mut parts, _) = request.into_parts();
    let tenant = parts
        .extensions
        .get::<TenantContext>()
        .cloned()
        .ok_or(ApiError::TenantNotFound)?;
    let client = path_id(&raw).ok_or_else(client_not_found)?;
    let params = list_params(query.as_deref());
    let signature =
        param(&params, "sig").filter(|_| leopard_http::auth::bearer_token(&parts).is_none());
    let row = match signature {
        Some(sig) => {
            let exp: i64 = param(&params, "exp")
                .and_then(|e| e.parse().ok())
                .unwrap_or(0);
            let mut tx = tenant.begin().await?;
            let row = live_client_picture(&mut tx, client).await?;
            tx.commit().await?;
            match row {
                Some(row)
                    if state.media.verify(
                        tenant.tenant().slug.as_str(),
                        client,
                        &row.file,
                        exp,
                        sig,
                    ) =>
                {
                    row
                }
                _ => {
                    return Err(ApiError::Forbidden(
                        "This link is invalid or has expired.".into(),
                    ))
                }
            }
        }
        None => {
            let auth = AuthUser::from_request_parts(&mut parts, &state).await?;
            require(&auth.principal, Action::View, KIND)?;
            let mut tx = auth.tenant.begin().await?;
            client_in_scope(
                &mut tx,
                &auth.principal,
                Action::View,
                KIND,
                client,
                false,
                client_not_found,
            )
            .await?;
            let row = fetch_picture(&mut tx, client, false)
                .await?
                .ok_or_else(picture_not_found)?;
            tx.commit().await?;
            row
        }
    };
    let path = state
        .media
        .path_of(&tenant, &row.file)
        .ok_or_else(picture_not_found)?;
    let bytes = match tokio::fs::read(&path).await {
        Ok(bytes) => bytes,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Err(picture_not_found()),
        Err(err) => {
            return Err(ApiError::Internal(format!(
                "reading {}: {err}",
                path.display()
            )))
        }
    };
    let content_type = HeaderValue::from_str(&row.file_type)
        .unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream"));
    Ok((
        [
            (header::CONTENT_TYPE, content_type),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("private, max-age=300"),
            ),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            (
                header::CONTENT_DISPOSITION,
                HeaderValue::from_static("inline"),
            ),
        ],
        bytes,
    )
        .into_response())
}

// ----- files -------------------------------------------------------------------------------

/// Why an upload's body was refused.
enum Upload {
    /// Beyond [`MAX_PICTURE_BYTES`]: a 413.
    TooLarge,
    /// Anything else: the 400.
    Invalid(ApiError),
}

/// The bytes of multipart field `file` (at most [`MAX_PICTURE_BYTES`]).
async fn read_file(multipart: Result<Multipart, MultipartRejection>) -> Result<Vec<u8>, Upload> {
    let no_file = || Upload::Invalid(bad_file("No file was submitted."));
    let broken = |status: StatusCode| {
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            Upload::TooLarge
        } else {
            Upload::Invalid(ApiError::BadRequest(
                "Send the picture as multipart/form-data with a field named \"file\".".into(),
            ))
        }
    };
    let mut multipart = multipart.map_err(|e| broken(e.status()))?;
    loop {
        let Some(mut field) = multipart
            .next_field()
            .await
            .map_err(|e| broken(e.status()))?
        else {
            return Err(no_file());
        };
        if field.name() != Some("file") {
            continue;
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = field.chunk().await.map_err(|e| broken(e.status()))? {
            if bytes.len() + chunk.len() > MAX_PICTURE_BYTES {
                return Err(Upload::TooLarge);
            }
            bytes.extend_from_slice(&chunk);
        }
        if bytes.is_empty() {
            return Err(Upload::Invalid(bad_file("The submitted file is empty.")));
        }
        return Ok(bytes);
    }
}

/// 32 random hex digits.
fn random_name() -> String {
    let mut bytes = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut bytes);
    hex(&bytes)
}

/// Writes `bytes` to `path` through a temporary file in the same directory, synced and renamed
/// into place, so `path` is either absent or complete.
async fn write_atomically(path: &FsPath, bytes: &[u8]) -> Result<(), ApiError> {
    use tokio::io::AsyncWriteExt as _;
    let io = |what: &str, err: std::io::Error| {
        ApiError::Internal(format!("{what} {}: {err}", path.display()))
    };
    let dir = path
        .parent()
        .ok_or_else(|| ApiError::Internal(format!("{} has no directory", path.display())))?;
    tokio::fs::create_dir_all(dir)
        .await
        .map_err(|e| io("creating the directory of", e))?;
    let temp = dir.join(format!(".upload-{}.tmp", random_name()));
    let written = async {
        let mut file = tokio::fs::File::create(&temp).await?;
        file.write_all(bytes).await?;
        file.sync_all().await?;
        drop(file);
        tokio::fs::rename(&temp, path).await
    }
    .await;
    if let Err(err) = written {
        remove_file(&temp).await;
        return Err(io("writing", err));
    }
    Ok(())
}

/// Removes a file, logging (not failing) when that goes wrong.
async fn remove_file(path: &FsPath) {
    if let Err(err) = tokio::fs::remove_file(path).await {
        if err.kind() != std::io::ErrorKind::NotFound {
            tracing::warn!(path = %path.display(), %err, "could not remove a media file");
        }
    }
}

/// Removes stored file `file` of `tenant`.
async fn remove_stored(media: &Media, tenant: &TenantContext, file: &str) {
    if let Some(path) = media.path_of(tenant, file) {
        remove_file(&path).await;
    }
}

// ----- data --------------------------------------------------------------------------------

/// The picture of client `client` (callers check scope first), locked with `lock`.
async fn fetch_picture(
    conn: &mut PgConnection,
    client: i64,
    lock: bool,
) -> Result<Option<PictureRow>, ApiError> {
    let sql = format!(
        "{PICTURE_SELECT} WHERE p.client_id = $1{}",
        if lock { " FOR UPDATE OF p" } else { "" }
    );
    Ok(sqlx::query_as(&sql)
        .bind(client)
        .fetch_optional(&mut *conn)
        .await?)
}

/// The picture of live client `client` (for a signed link: the signature stands for scope).
async fn live_client_picture(
    conn: &mut PgConnection,
    client: i64,
) -> Result<Option<PictureRow>, ApiError> {
    Ok(sqlx::query_as(&format!(
        "{PICTURE_SELECT} JOIN clients c ON c.id = p.client_id
          WHERE p.client_id = $1 AND c.deleted_at IS NULL"
    ))
    .bind(client)
    .fetch_optional(&mut *conn)
    .await?)
}

/// Inserts or replaces the picture of `client`; returns its id.
async fn upsert_picture(
    conn: &mut PgConnection,
    client: i64,
    file: &str,
    size: i32,
    mime: &str,
    user: i64,
) -> Result<i64, ApiError> {
    Ok(sqlx::query_scalar(
        "INSERT INTO profile_pictures (client_id, file, file_size, file_type, uploaded_by_id)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (client_id) DO UPDATE
            SET file = EXCLUDED.file, file_size = EXCLUDED.file_size,
                file_type = EXCLUDED.file_type, uploaded_by_id = EXCLUDED.uploaded_by_id,
                created_at = now(), updated_at = now()
         RETURNING id",
    )
    .bind(client)
    .bind(file)
    .bind(size)
    .bind(mime)
    .bind(user)
    .fetch_one(&mut *conn)
    .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_are_recognised_by_their_bytes_only() {
        let png = [
            0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13, b'I', b'H', b'D', b'R',
        ];
        assert_eq!(ImageKind::sniff(&png), Some(ImageKind::Png));
        assert_eq!(
            ImageKind::sniff(&[0xFF, 0xD8, 0xFF, 0xE0]),
            Some(ImageKind::Jpeg)
        );
        assert_eq!(
            ImageKind::sniff(b"RIFF\x24\0\0\0WEBPVP8 \x18\0"),
            Some(ImageKind::Webp)
        );
        assert_eq!(ImageKind::sniff(b"hello, I am a text file"), None);
        assert_eq!(ImageKind::sniff(b"GIF89a............"), None);
        assert_eq!(ImageKind::sniff(&png[..8]), None);
    }

    #[test]
    fn signatures_bind_tenant_client_file_and_expiry() {
        let media = Media::new(PathBuf::from("/tmp/x"), &[7u8; 32]).expect("media");
        let exp = unix_now() + 60;
        let sig = media.sign("acme", 5, "a.png", exp);
        assert!(media.verify("acme", 5, "a.png", exp, &sig));
        assert!(!media.verify("other", 5, "a.png", exp, &sig));
        assert!(!media.verify("acme", 6, "a.png", exp, &sig));
        assert!(!media.verify("acme", 5, "b.png", exp, &sig));
        assert!(!media.verify("acme", 5, "a.png", exp + 1, &sig));
        assert!(!media.verify("acme", 5, "a.png", exp, "zz"));
        let old = unix_now() - 1;
        assert!(!media.verify(
            "acme",
            5,
            "a.png",
            old,
            &media.sign("acme", 5, "a.png", old)
        ));
    }

    #[test]
    fn stored_paths_stay_inside_the_tenant_directory() {
        let parts = |p: &str| {
            FsPath::new(p)
                .components()
                .all(|c| matches!(c, Component::Normal(_)))
        };
        assert!(parts("profile_pictures/client_1/ab.png"));
        assert!(!parts("../other/profile_pictures/x.png"));
        assert!(!parts("/etc/passwd"));
    }
}
