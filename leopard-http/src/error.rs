//! [`ApiError`]: every error a handler can return, and its one mapping to an HTTP response.
//!
//! Bodies follow the wire contract: validation errors are 400 `{"field": ["message", …]}`,
//! everything else `{"detail": "…", "code": "…"}`. Internal errors are logged with their cause
//! and answered with a generic 500 that reveals nothing.

use std::collections::BTreeMap;

use axum::response::{IntoResponse, Response};
use axum::Json;
use http::StatusCode;
use leopard_tenancy::TenancyError;

/// An error answered to an HTTP client.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400 with per-field messages.
    #[error("validation failed: {0:?}")]
    Validation(BTreeMap<String, Vec<String>>),
    /// 400 with a detail message.
    #[error("{0}")]
    BadRequest(String),
    /// 404.
    #[error("{0}")]
    NotFound(String),
    /// 404 `tenant_not_found`.
    #[error("tenant not found")]
    TenantNotFound,
    /// 403 `tenant_inactive`.
    #[error("tenant inactive")]
    TenantInactive,
    /// 401 `token_not_valid`: a bearer token is missing its signature, expired, of the wrong
    /// type or bound to another tenant. The body is generic and names no tenant.
    #[error("token is invalid or expired")]
    Unauthorized,
    /// 401 `not_authenticated`: no credentials were sent.
    #[error("authentication credentials were not provided")]
    NotAuthenticated,
    /// 401 `no_active_account`: a login with a wrong username or password, or of an inactive
    /// user (one message for all, so accounts cannot be probed).
    #[error("no active account found with the given credentials")]
    InvalidCredentials,
    /// 403 `permission_denied` with a detail message.
    #[error("{0}")]
    Forbidden(String),
    /// 405.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// 409 with a detail message.
    #[error("{0}")]
    Conflict(String),
    /// 413 `file_too_large` with a detail message (an upload beyond its limit).
    #[error("{0}")]
    PayloadTooLarge(String),
    /// 413 `request_too_large`: a request body beyond the server's limit (`--max-body-bytes`),
    /// in bytes.
    #[error("request body over {0} bytes")]
    BodyTooLarge(usize),
    /// 408 `request_timeout`: the client did not send its whole body in time
    /// (`--body-timeout-secs`). The connection is closed after the answer.
    #[error("request body not received in time")]
    RequestTimeout,
    /// 429 `throttled`, retry after this many seconds.
    #[error("throttled for {0} s")]
    Throttled(u64),
    /// 503: a dependency (the database) is unavailable.
    #[error("service unavailable")]
    Unavailable,
    /// 500: a bug or an unexpected failure; the cause is logged, never sent.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    /// A 400 for one field.
    pub fn field(field: &str, message: impl Into<String>) -> Self {
        Self::Validation(BTreeMap::from([(field.to_owned(), vec![message.into()])]))
    }

    /// The 403 of a missing permission, in the original's words.
    pub fn permission_denied() -> Self {
        Self::Forbidden("You do not have permission to perform this action.".into())
    }

    /// The HTTP status this error answers with.
    pub fn status(&self) -> StatusCode {
        self.status_and_code().0
    }

    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            Self::Validation(_) => (StatusCode::BAD_REQUEST, "invalid"),
            Self::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            Self::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            Self::TenantNotFound => (StatusCode::NOT_FOUND, "tenant_not_found"),
            Self::TenantInactive => (StatusCode::FORBIDDEN, "tenant_inactive"),
            Self::Unauthorized => (StatusCode::UNAUTHORIZED, "token_not_valid"),
            Self::NotAuthenticated => (StatusCode::UNAUTHORIZED, "not_authenticated"),
            Self::InvalidCredentials => (StatusCode::UNAUTHORIZED, "no_active_account"),
            Self::Forbidden(_) => (StatusCode::FORBIDDEN, "permission_denied"),
            Self::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            Self::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            Self::PayloadTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "file_too_large"),
            Self::BodyTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "request_too_large"),
            Self::RequestTimeout => (StatusCode::REQUEST_TIMEOUT, "request_timeout"),
            Self::Throttled(_) => (StatusCode::TOO_MANY_REQUESTS, "throttled"),
            Self::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            Self::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal_error"),
        }
    }
}

impl ApiError {
    /// The message a client may see: the `detail` of the JSON body, and what an HTML page
    /// shows. Never an internal cause (a validation error, whose messages are per field, says
    /// so in one sentence).
    pub fn detail(&self) -> String {
        match self {
            Self::Validation(_) => "Please correct the errors below.".into(),
            Self::BadRequest(detail)
            | Self::NotFound(detail)
            | Self::Conflict(detail)
            | Self::PayloadTooLarge(detail)
            | Self::Forbidden(detail) => detail.clone(),
            Self::NotAuthenticated => "Authentication credentials were not provided.".into(),
            Self::InvalidCredentials => "No active account found with the given credentials".into(),
            Self::MethodNotAllowed => "Method not allowed.".into(),
            Self::BodyTooLarge(limit) => {
                format!("Request body is larger than the limit of {limit} bytes.")
            }
            Self::RequestTimeout => "The request body was not received in time.".into(),
            Self::Throttled(seconds) => {
                format!("Request was throttled. Expected available in {seconds} seconds.")
            }
            Self::TenantNotFound => leopard_tenancy::layer::TENANT_NOT_FOUND_DETAIL.into(),
            Self::TenantInactive => leopard_tenancy::layer::TENANT_INACTIVE_DETAIL.into(),
            Self::Unauthorized => "Token is invalid or expired".into(),
            Self::Unavailable => "Service temporarily unavailable.".into(),
            Self::Internal(_) => "Internal server error.".into(),
        }
    }

    /// The stable error code of the JSON body (`not_found`, `permission_denied`, …).
    pub fn code(&self) -> &'static str {
        self.status_and_code().1
    }

    /// Headers the response needs besides its body (`Retry-After`, `WWW-Authenticate`).
    pub fn extra_headers(&self) -> Vec<(http::HeaderName, http::HeaderValue)> {
        match self {
            Self::NotAuthenticated | Self::Unauthorized => vec![(
                http::header::WWW_AUTHENTICATE,
                http::HeaderValue::from_static("Bearer realm=\"api\""),
            )],
            Self::Throttled(seconds) => {
                vec![(http::header::RETRY_AFTER, http::HeaderValue::from(*seconds))]
            }
            Self::Unavailable => vec![(
                http::header::RETRY_AFTER,
                http::HeaderValue::from(UNAVAILABLE_RETRY_AFTER_SECS),
            )],
            Self::RequestTimeout => vec![(
                http::header::CONNECTION,
                http::HeaderValue::from_static("close"),
            )],
            Self::Validation(_)
            | Self::BadRequest(_)
            | Self::NotFound(_)
            | Self::TenantNotFound
            | Self::TenantInactive
            | Self::InvalidCredentials
            | Self::Forbidden(_)
            | Self::MethodNotAllowed
            | Self::Conflict(_)
            | Self::PayloadTooLarge(_)
            | Self::BodyTooLarge(_)
            | Self::Internal(_) => Vec::new(),
        }
    }

    /// Logs the cause of an internal error (the response never carries it).
    pub fn log_internal(&self) {
        if let Self::Internal(cause) = self {
            tracing::error!(%cause, "internal error");
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        self.log_internal();
        let body = match &self {
            Self::Validation(fields) => serde_json::json!(fields),
            _ => serde_json::json!({ "detail": self.detail(), "code": code }),
        };
        let mut response = (status, Json(body)).into_response();
        response.headers_mut().extend(self.extra_headers());
        response
    }
}

impl From<TenancyError> for ApiError {
    fn from(err: TenancyError) -> Self {
        match err {
            TenancyError::Invalid(e) => Self::BadRequest(e.to_string()),
            TenancyError::InvalidField { field, message } => Self::field(field, message),
            TenancyError::TenantNotFound(_) => Self::TenantNotFound,
            TenancyError::TenantInactive(_) => Self::TenantInactive,
            TenancyError::AlreadyExists { what, value } => {
                Self::Conflict(format!("A {what} named {value} already exists."))
            }
            TenancyError::NotConfirmed(what) => {
                Self::BadRequest(format!("Refusing to {what} without explicit confirmation."))
            }
            TenancyError::MigrationLocked => {
                Self::Conflict("A migration run is in progress; try again later.".into())
            }
            e @ (TenancyError::MigrationFailed { .. }
            | TenancyError::ChecksumMismatch { .. }
            | TenancyError::InvalidMigrationSet(_)
            | TenancyError::Embedded(_)
            | TenancyError::EmbeddedStart { .. }
            | TenancyError::RestoreMismatch { .. }
            | TenancyError::Io { .. }) => Self::Internal(e.to_string()),
            // A refused tenant archive is the caller's input at fault.
            e @ (TenancyError::ArchiveForeign(_)
            | TenancyError::ArchiveCorrupt(_)
            | TenancyError::ArchiveFormat { .. }
            | TenancyError::ArchiveMigrationVersion { .. }
            | TenancyError::ArchiveSchema(_)) => Self::BadRequest(e.to_string()),
            TenancyError::Database(e) => e.into(),
        }
    }
}

impl From<leopard_rbac::RbacError> for ApiError {
    fn from(err: leopard_rbac::RbacError) -> Self {
        match err {
            leopard_rbac::RbacError::UnknownPermission(codename) => {
                Self::field("permission", format!("Unknown permission {codename:?}."))
            }
            leopard_rbac::RbacError::UnknownRole(name) => {
                Self::field("group_name", format!("Unknown role {name:?}."))
            }
        }
    }
}

impl From<crate::password::PasswordError> for ApiError {
    fn from(err: crate::password::PasswordError) -> Self {
        Self::Internal(err.to_string())
    }
}

impl From<crate::jwt::JwtError> for ApiError {
    fn from(err: crate::jwt::JwtError) -> Self {
        use crate::jwt::JwtError;
        match err {
            JwtError::Malformed
            | JwtError::UnsupportedAlgorithm
            | JwtError::BadSignature
            | JwtError::Expired
            | JwtError::WrongTokenType
            | JwtError::WrongTenant => Self::Unauthorized,
            e @ (JwtError::WeakSecret | JwtError::Issuing(_)) => Self::Internal(e.to_string()),
        }
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(err: sqlx::Error) -> Self {
        match err {
            e @ (sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Protocol(_)
            | sqlx::Error::WorkerCrashed) => {
                tracing::error!(error = %e, "database unavailable");
                Self::Unavailable
            }
            sqlx::Error::Database(db) if is_unavailability(db.code().as_deref()) => {
                // The server is shutting down, restarting or refusing connections (SQLSTATE
                // classes 08 and 57): the client may retry shortly.
                tracing::error!(error = %db, "database unavailable");
                Self::Unavailable
            }
            sqlx::Error::Database(db) if is_concurrency_refusal(db.code().as_deref()) => {
                // A row the write refers to was deleted by a concurrent request after the
                // handler checked it (foreign key), or two transactions collided: the client
                // may retry. Handlers that can name the field answer a 400 themselves.
                tracing::warn!(error = %db, "write refused by a concurrent change");
                Self::Conflict(
                    "The change collided with a concurrent change to a row it refers to; \
                     try again."
                        .into(),
                )
            }
            other => Self::Internal(other.to_string()),
        }
    }
}

/// Whether a database error's SQLSTATE says a concurrent change refused the write:
/// `foreign_key_violation` (23503), `serialization_failure` (40001), `deadlock_detected`
/// (40P01).
fn is_concurrency_refusal(code: Option<&str>) -> bool {
    matches!(code, Some("23503" | "40001" | "40P01"))
}

/// Whether a database error's SQLSTATE says the database is (for now) unavailable: class 08
/// (connection exception) or 57 (operator intervention: `admin_shutdown`, `crash_shutdown`,
/// `cannot_connect_now`, … — but not `query_canceled` 57014, a statement timeout).
fn is_unavailability(code: Option<&str>) -> bool {
    code.is_some_and(|c| (c.starts_with("08") || c.starts_with("57")) && c != "57014")
}

/// The `Retry-After` of a 503 (seconds): a database restart usually takes about this long.
pub const UNAVAILABLE_RETRY_AFTER_SECS: u64 = 1;

impl From<leopard_events::EventsError> for ApiError {
    fn from(err: leopard_events::EventsError) -> Self {
        use leopard_events::EventsError;
        match err {
            EventsError::Database(e) => e.into(),
            EventsError::Tenancy(e) => e.into(),
            EventsError::UnknownTenant(_) => Self::TenantNotFound,
            EventsError::UnknownEvent(id) => Self::NotFound(format!("No event {id}.")),
            e @ (EventsError::DuplicateHandler(_)
            | EventsError::Invalid { .. }
            | EventsError::Serialization(_)) => Self::Internal(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt as _;

    async fn answer(err: ApiError) -> (StatusCode, http::HeaderMap, serde_json::Value) {
        let response = err.into_response();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        (
            status,
            headers,
            serde_json::from_slice(&bytes).expect("JSON"),
        )
    }

    #[test]
    fn only_foreign_key_serialization_and_deadlock_refusals_count_as_concurrent_changes() {
        for code in ["23503", "40001", "40P01"] {
            assert!(is_concurrency_refusal(Some(code)), "{code}");
        }
        for code in [Some("23505"), Some("22P02"), Some("42P01"), None] {
            assert!(!is_concurrency_refusal(code), "{code:?}");
        }
    }

    #[tokio::test]
    async fn every_variant_answers_its_status_and_code_and_never_leaks_internals() {
        let cases = [
            (ApiError::BadRequest("b".into()), 400, "bad_request"),
            (ApiError::NotFound("n".into()), 404, "not_found"),
            (ApiError::TenantNotFound, 404, "tenant_not_found"),
            (ApiError::TenantInactive, 403, "tenant_inactive"),
            (ApiError::Unauthorized, 401, "token_not_valid"),
            (ApiError::NotAuthenticated, 401, "not_authenticated"),
            (ApiError::InvalidCredentials, 401, "no_active_account"),
            (ApiError::Forbidden("f".into()), 403, "permission_denied"),
            (ApiError::MethodNotAllowed, 405, "method_not_allowed"),
            (ApiError::Conflict("c".into()), 409, "conflict"),
            (ApiError::PayloadTooLarge("p".into()), 413, "file_too_large"),
            (ApiError::BodyTooLarge(1024), 413, "request_too_large"),
            (ApiError::RequestTimeout, 408, "request_timeout"),
            (ApiError::Throttled(7), 429, "throttled"),
            (ApiError::Unavailable, 503, "unavailable"),
            (
                ApiError::Internal("secret table name".into()),
                500,
                "internal_error",
            ),
        ];
        for (err, status, code) in cases {
            let (got, headers, body) = answer(err).await;
            assert_eq!(got.as_u16(), status, "{code}");
            assert_eq!(body["code"], code, "{code}");
            assert!(body["detail"].is_string(), "{code}: {body}");
            assert!(!body.to_string().contains("secret"), "{code}: {body}");
            if code == "throttled" {
                assert_eq!(headers[http::header::RETRY_AFTER], "7");
            }
            if code == "unavailable" {
                assert_eq!(headers[http::header::RETRY_AFTER], "1");
            }
            if code == "request_timeout" {
                assert_eq!(headers[http::header::CONNECTION], "close");
            }
        }
    }

    #[test]
    fn connection_and_shutdown_sqlstates_are_unavailability_but_a_statement_timeout_is_not() {
        for code in ["08006", "08001", "57P01", "57P02", "57P03"] {
            assert!(is_unavailability(Some(code)), "{code}");
        }
        for code in ["57014", "23505", "40001", "42P01"] {
            assert!(!is_unavailability(Some(code)), "{code}");
        }
        assert!(!is_unavailability(None));
    }

    #[tokio::test]
    async fn validation_errors_answer_the_field_map_itself() {
        let (status, _, body) = answer(ApiError::field("name", "This field is required.")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(
            body,
            serde_json::json!({"name": ["This field is required."]})
        );
    }
}
