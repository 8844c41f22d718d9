//! The service's error type and how each variant is answered.
//!
//! Clients see `{"detail": "...", "code": "..."}` (or, for invalid fields, `{"<field>":
//! ["message", ...]}`). Database and tenancy failures are logged in full and answered with a
//! generic message, so no SQL, schema name or connection detail ever reaches a client.

use std::collections::BTreeMap;

use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use leopard_tenancy::TenancyError;
use serde_json::json;

/// Messages per invalid field, e.g. `{"body": ["This field may not be blank."]}`.
pub type FieldErrors = BTreeMap<&'static str, Vec<String>>;

/// Everything a handler of this service can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// One or more fields are invalid (400, field → messages).
    #[error("invalid fields: {0:?}")]
    Validation(FieldErrors),
    /// The request body is not the JSON the endpoint expects (400 `invalid_json`, or 415
    /// `unsupported_media_type` without a JSON `Content-Type`).
    #[error("unreadable JSON body: {0}")]
    Json(#[from] JsonRejection),
    /// No route matches (404 `not_found`).
    #[error("no such route")]
    NotFound,
    /// A tenancy operation failed (logged; 500 `internal_error` or 503 `unavailable`).
    #[error(transparent)]
    Tenancy(#[from] TenancyError),
    /// A query failed (logged; 500 `internal_error` or 503 `unavailable`).
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

impl ApiError {
    /// A validation error on one field.
    pub fn field(field: &'static str, message: impl Into<String>) -> Self {
        Self::Validation(BTreeMap::from([(field, vec![message.into()])]))
    }

    /// The database error behind this error, if any.
    fn database_error(&self) -> Option<&sqlx::Error> {
        match self {
            Self::Database(err) | Self::Tenancy(TenancyError::Database(err)) => Some(err),
            _ => None,
        }
    }
}

fn detail(status: StatusCode, detail: &str, code: &str) -> Response {
    (status, Json(json!({ "detail": detail, "code": code }))).into_response()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match &self {
            Self::Validation(fields) => {
                return (StatusCode::BAD_REQUEST, Json(json!(fields))).into_response()
            }
            Self::Json(JsonRejection::MissingJsonContentType(_)) => {
                return detail(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "Expected a request body with Content-Type: application/json.",
                    "unsupported_media_type",
                )
            }
            Self::Json(rejection) => {
                // axum's text names the JSON problem (syntax error at line 1 column 9, invalid
                // type for `body`, ...) and nothing about the server.
                return detail(
                    StatusCode::BAD_REQUEST,
                    &rejection.body_text(),
                    "invalid_json",
                );
            }
            Self::NotFound => return detail(StatusCode::NOT_FOUND, "Not found.", "not_found"),
            Self::Tenancy(_) | Self::Database(_) => {}
        }
        if let Some(sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed) = self.database_error() {
            tracing::warn!(error = %self, "database unavailable");
            return detail(
                StatusCode::SERVICE_UNAVAILABLE,
                "The service is temporarily unavailable; try again shortly.",
                "unavailable",
            );
        }
        tracing::error!(error = %self, "request failed");
        detail(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Internal server error.",
            "internal_error",
        )
    }
}
