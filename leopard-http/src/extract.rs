//! Extractors.

use axum::extract::FromRequestParts;
use http::request::Parts;
use leopard_tenancy::TenantContext;

use crate::limits::{body_api_error, BodyLimits};
use crate::ApiError;

/// The request's tenant, put there by [`leopard_tenancy::TenancyLayer`].
///
/// A route outside the layer (or on a public path) has no tenant and answers 404
/// `tenant_not_found`.
#[derive(Debug, Clone)]
pub struct Tenant(pub TenantContext);

impl<S: Send + Sync> FromRequestParts<S> for Tenant {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<TenantContext>()
            .cloned()
            .map(Tenant)
            .ok_or(ApiError::TenantNotFound)
    }
}

impl std::ops::Deref for Tenant {
    type Target = TenantContext;
    fn deref(&self) -> &TenantContext {
        &self.0
    }
}

/// A JSON request body whose rejections are API errors: a malformed or mistyped body is a 400
/// `{"detail", "code": "bad_request"}`, never axum's plain-text 422.
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonBody<T>(pub T);

impl<T, S> axum::extract::FromRequest<S> for JsonBody<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, Self::Rejection> {
        let limits = req.extensions().get::<BodyLimits>().copied();
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(Self(value)),
            Err(rejection) if rejection.status() == http::StatusCode::PAYLOAD_TOO_LARGE => Err(
                ApiError::BodyTooLarge(limits.unwrap_or_default().max_body_bytes),
            ),
            Err(rejection) => Err(body_api_error(&rejection, limits.as_ref(), || {
                ApiError::BadRequest(rejection.body_text())
            })),
        }
    }
}
