//! Leopard's axum pieces: the [`ApiError`] type (the only place where errors become HTTP
//! responses), the [`Tenant`] extractor, password hashing ([`password`]) and HS256 tokens
//! ([`jwt`]).

mod error;
mod extract;
pub mod jwt;
pub mod password;

pub use error::ApiError;
pub use extract::Tenant;
pub use jwt::{Claims, ClaimsInput, JwtError, JwtKeys, TokenPair, TokenType};
pub use password::{PasswordError, Verification};
