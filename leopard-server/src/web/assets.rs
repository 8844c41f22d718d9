//! The web interface's static files: embedded in the binary from `leopard-server/assets/`,
//! served at `/static/<name>.<hash>.<ext>` with a content hash in the name and a one-year
//! immutable cache; a name with another hash (an old page after an upgrade) is a 404.

use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

/// One embedded file.
#[derive(Debug)]
pub struct Asset {
    /// `app.css`, …
    pub name: &'static str,
    /// The URL it is served at, with its content hash.
    pub url: String,
    /// The media type.
    pub media_type: &'static str,
    /// The content.
    pub body: &'static [u8],
}

fn asset(name: &'static str, media_type: &'static str, body: &'static [u8]) -> Asset {
    let digest = Sha256::digest(body);
    let hash = super::session::hex(&digest[..6]);
    let (stem, ext) = name.rsplit_once('.').unwrap_or((name, ""));
    Asset {
        name,
        url: format!("/static/{stem}.{hash}.{ext}"),
        media_type,
        body,
    }
}

static ASSETS: LazyLock<Vec<Asset>> = LazyLock::new(|| {
    vec![
        asset(
            "app.css",
            "text/css; charset=utf-8",
            include_bytes!("../../assets/app.css"),
        ),
        asset(
            "app.js",
            "text/javascript; charset=utf-8",
            include_bytes!("../../assets/app.js"),
        ),
        asset(
            "icon.svg",
            "image/svg+xml",
            include_bytes!("../../assets/icon.svg"),
        ),
    ]
});

/// The hashed URL of embedded file `name` (`app.css`).
pub fn url(name: &str) -> &'static str {
    ASSETS
        .iter()
        .find(|a| a.name == name)
        .map_or("/static/missing", |a| a.url.as_str())
}

/// Every embedded file.
pub fn all() -> &'static [Asset] {
    &ASSETS
}

/// `GET /static/{file}`.
pub async fn serve(Path(file): Path<String>) -> Response {
    let wanted = format!("/static/{file}");
    match ASSETS.iter().find(|a| a.url == wanted) {
        Some(asset) => (
            [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static(asset.media_type),
                ),
                (
                    header::CACHE_CONTROL,
                    HeaderValue::from_static("public, max-age=31536000, immutable"),
                ),
                (
                    header::X_CONTENT_TYPE_OPTIONS,
                    HeaderValue::from_static("nosniff"),
                ),
            ],
            asset.body,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "Not found.").into_response(),
    }
}
