//! Leopard's axum pieces: the [`ApiError`] type (the only place where errors become HTTP
//! responses) and the [`Tenant`] extractor.

mod error;
mod extract;

pub use error::ApiError;
pub use extract::Tenant;
