//! Leopard's axum pieces: the [`ApiError`] type (the only place where errors become HTTP
//! responses), the [`Tenant`] and [`AuthUser`] extractors, [`Pagination`], login
//! [`Throttle`]s, password hashing ([`password`]), HS256 tokens ([`jwt`]) and the real-time hub behind
//! Server-Sent Events streams ([`sse`]).

pub mod auth;
mod error;
mod extract;
pub mod jwt;
pub mod limits;
pub mod pagination;
pub mod password;
pub mod principals;
pub mod sse;
pub mod throttle;

pub use auth::{AuthUser, Authenticator, PrincipalSource};
pub use error::ApiError;
pub use error::UNAVAILABLE_RETRY_AFTER_SECS;
pub use extract::{JsonBody, Tenant};
pub use jwt::{Claims, ClaimsInput, JwtError, JwtKeys, TokenPair, TokenType};
pub use limits::{BodyDeadlineLayer, BodyLimits};
pub use pagination::{Page, Pagination};
pub use password::{PasswordError, Verification};
pub use principals::PrincipalCache;
pub use throttle::Throttle;
