//! HS256 JSON Web Tokens with the original backend's claims.
//!
//! Tokens carry `token_type` (`"access"` / `"refresh"`), `exp`, `iat`, `jti`, `user_id` (a
//! string such as `"42"`), `tid` (the tenant slug), `username`, `email` and `groups`. Only HS256
//! is accepted on decode; any other `alg` (including `none`) is refused before the signature is
//! looked at. Binding a token to the request's tenant is the caller's job, through
//! [`Claims::require_tenant`]. No error message names a tenant.

use std::fmt;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use password_hash::rand_core::{OsRng, RngCore};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The shortest signing secret [`JwtKeys::new`] accepts, in bytes.
pub const MIN_SECRET_LEN: usize = 32;

/// The only signing algorithm issued and accepted.
const ALGORITHM: &str = "HS256";

/// A failure issuing or decoding a token.
#[derive(Debug, thiserror::Error)]
pub enum JwtError {
    /// The signing secret is shorter than [`MIN_SECRET_LEN`] bytes.
    #[error("the JWT signing secret must be at least {MIN_SECRET_LEN} bytes long")]
    WeakSecret,
    /// The token is not three base64url segments of the expected JSON.
    #[error("malformed token")]
    Malformed,
    /// The header names an algorithm other than HS256 (for example `none`).
    #[error("unsupported token algorithm")]
    UnsupportedAlgorithm,
    /// The signature does not match the header and payload.
    #[error("invalid token signature")]
    BadSignature,
    /// The token's `exp` has passed.
    #[error("token expired")]
    Expired,
    /// An access token was expected and a refresh token given, or the reverse.
    #[error("wrong token type")]
    WrongTokenType,
    /// The token was issued for another tenant.
    #[error("token not valid for this tenant")]
    WrongTenant,
    /// Issuing failed (random source or encoding); a server-side fault.
    #[error("token issuing failed: {0}")]
    Issuing(String),
}

/// The kind of a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenType {
    /// A short-lived token authenticating requests.
    Access,
    /// A longer-lived token exchanged for a new pair.
    Refresh,
}

/// The user-specific claims copied into both tokens of a pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimsInput {
    /// The user's id, as a string (e.g. `"42"`).
    pub user_id: String,
    /// The tenant slug the token is bound to.
    pub tid: String,
    /// The user's username.
    pub username: String,
    /// The user's email address.
    pub email: String,
    /// The user's group (role) names at issue time.
    pub groups: Vec<String>,
}

/// The decoded claims of a token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Access or refresh.
    pub token_type: TokenType,
    /// Expiry, in seconds since the Unix epoch.
    pub exp: i64,
    /// Issue time, in seconds since the Unix epoch.
    pub iat: i64,
    /// A unique token id: 32 lower-case hex digits.
    pub jti: String,
    /// The user's id, as a string.
    pub user_id: String,
    /// The tenant slug the token is bound to.
    pub tid: String,
    /// The user's username.
    pub username: String,
    /// The user's email address.
    pub email: String,
    /// The user's group names at issue time.
    pub groups: Vec<String>,
}

impl Claims {
    /// Fails with [`JwtError::WrongTenant`] unless the token was issued for tenant `slug`.
    pub fn require_tenant(&self, slug: &str) -> Result<(), JwtError> {
        if self.tid == slug {
            Ok(())
        } else {
            Err(JwtError::WrongTenant)
        }
    }
}

/// An access token and a refresh token issued together.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TokenPair {
    /// The access token.
    pub access: String,
    /// The refresh token.
    pub refresh: String,
}

#[derive(Serialize, Deserialize)]
struct Header {
    alg: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    typ: Option<String>,
}

/// The HS256 signing secret. Its `Debug` output never shows the secret.
#[derive(Clone)]
pub struct JwtKeys {
    /// HMAC state keyed with the secret, cloned for every signature.
    mac: HmacSha256,
}

impl fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtKeys").finish_non_exhaustive()
    }
}

impl JwtKeys {
    /// Keys for a separate purpose derived from `secret` (HMAC-SHA256 of `purpose`): tokens
    /// signed with one purpose's keys never verify with another's, so e.g. platform tokens are
    /// refused on tenant routes by signature alone.
    pub fn derived(secret: &[u8], purpose: &str) -> Result<Self, JwtError> {
        if secret.len() < MIN_SECRET_LEN {
            return Err(JwtError::WeakSecret);
        }
        let mut mac =
            <HmacSha256 as Mac>::new_from_slice(secret).map_err(|_| JwtError::WeakSecret)?;
        mac.update(purpose.as_bytes());
        Self::new(&mac.finalize().into_bytes())
    }

    /// Keys from `secret`; refuses secrets shorter than [`MIN_SECRET_LEN`] bytes.
    pub fn new(secret: &[u8]) -> Result<Self, JwtError> {
        if secret.len() < MIN_SECRET_LEN {
            return Err(JwtError::WeakSecret);
        }
        let mac = <HmacSha256 as Mac>::new_from_slice(secret).map_err(|_| JwtError::WeakSecret)?;
        Ok(Self { mac })
    }

    /// Issues an access token valid for `access_ttl` and a refresh token valid for `refresh_ttl`,
    /// both issued at `now` (seconds since the Unix epoch), each with its own `jti`.
    pub fn issue_pair(
        &self,
        input: &ClaimsInput,
        now: i64,
        access_ttl: Duration,
        refresh_ttl: Duration,
    ) -> Result<TokenPair, JwtError> {
        Ok(TokenPair {
            access: self.issue(input, TokenType::Access, now, access_ttl)?,
            refresh: self.issue(input, TokenType::Refresh, now, refresh_ttl)?,
        })
    }

    /// Issues one token of type `token_type`, valid for `ttl` from `now`.
    pub fn issue(
        &self,
        input: &ClaimsInput,
        token_type: TokenType,
        now: i64,
        ttl: Duration,
    ) -> Result<String, JwtError> {
        let ttl = i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX);
        let claims = Claims {
            token_type,
            exp: now.saturating_add(ttl),
            iat: now,
            jti: new_jti()?,
            user_id: input.user_id.clone(),
            tid: input.tid.clone(),
            username: input.username.clone(),
            email: input.email.clone(),
            groups: input.groups.clone(),
        };
        self.encode(&claims)
    }

    /// Signs `claims` as an HS256 token.
    pub fn encode(&self, claims: &Claims) -> Result<String, JwtError> {
        let header = Header {
            alg: ALGORITHM.to_owned(),
            typ: Some("JWT".to_owned()),
        };
        let header = serde_json::to_vec(&header).map_err(|e| JwtError::Issuing(e.to_string()))?;
        let payload = serde_json::to_vec(claims).map_err(|e| JwtError::Issuing(e.to_string()))?;
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(payload)
        );
        let mut mac = self.mac.clone();
        mac.update(signing_input.as_bytes());
        let signature = mac.finalize().into_bytes();
        Ok(format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature)
        ))
    }

    /// Decodes and checks `token`: well-formed, HS256, correctly signed, of type `expected_type`
    /// and not expired at `now` (seconds since the Unix epoch).
    pub fn decode(
        &self,
        token: &str,
        expected_type: TokenType,
        now: i64,
    ) -> Result<Claims, JwtError> {
        let (signing_input, signature) = token.rsplit_once('.').ok_or(JwtError::Malformed)?;
        let (header, payload) = signing_input.split_once('.').ok_or(JwtError::Malformed)?;
        if payload.contains('.') {
            return Err(JwtError::Malformed);
        }
        let header: Header = decode_json(header)?;
        if header.alg != ALGORITHM {
            return Err(JwtError::UnsupportedAlgorithm);
        }
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| JwtError::Malformed)?;
        let mut mac = self.mac.clone();
        mac.update(signing_input.as_bytes());
        mac.verify_slice(&signature)
            .map_err(|_| JwtError::BadSignature)?;
        let claims: Claims = decode_json(payload)?;
        if now >= claims.exp {
            return Err(JwtError::Expired);
        }
        if claims.token_type != expected_type {
            return Err(JwtError::WrongTokenType);
        }
        Ok(claims)
    }
}

fn decode_json<T: for<'de> Deserialize<'de>>(segment: &str) -> Result<T, JwtError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(segment)
        .map_err(|_| JwtError::Malformed)?;
    serde_json::from_slice(&bytes).map_err(|_| JwtError::Malformed)
}

fn new_jti() -> Result<String, JwtError> {
    let mut bytes = [0u8; 16];
    OsRng
        .try_fill_bytes(&mut bytes)
        .map_err(|e| JwtError::Issuing(e.to_string()))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";
    const NOW: i64 = 1_700_000_000;
    const ACCESS_TTL: Duration = Duration::from_secs(4 * 3600);
    const REFRESH_TTL: Duration = Duration::from_secs(24 * 3600);

    fn input() -> ClaimsInput {
        ClaimsInput {
            user_id: "42".into(),
            tid: "acme".into(),
            username: "admin@acme.com".into(),
            email: "admin@acme.com".into(),
            groups: vec!["Super Admin".into()],
        }
    }

    fn keys() -> Result<JwtKeys, JwtError> {
        JwtKeys::new(SECRET)
    }

    fn pair() -> Result<TokenPair, JwtError> {
        keys()?.issue_pair(&input(), NOW, ACCESS_TTL, REFRESH_TTL)
    }

    #[test]
    fn a_secret_shorter_than_32_bytes_is_refused() {
        assert!(matches!(
            JwtKeys::new(b"too short"),
            Err(JwtError::WeakSecret)
        ));
    }

    #[test]
    fn an_issued_pair_decodes_back_to_its_claims() -> Result<(), JwtError> {
        let keys = keys()?;
        let pair = pair()?;
        let access = keys.decode(&pair.access, TokenType::Access, NOW + 1)?;
        assert_eq!(access.token_type, TokenType::Access);
        assert_eq!(access.iat, NOW);
        assert_eq!(access.exp, NOW + 4 * 3600);
        assert_eq!(access.user_id, "42");
        assert_eq!(access.tid, "acme");
        assert_eq!(access.username, "admin@acme.com");
        assert_eq!(access.email, "admin@acme.com");
        assert_eq!(access.groups, vec!["Super Admin".to_owned()]);
        assert_eq!(access.jti.len(), 32);
        assert!(access.jti.bytes().all(|b| b.is_ascii_hexdigit()));

        let refresh = keys.decode(&pair.refresh, TokenType::Refresh, NOW + 1)?;
        assert_eq!(refresh.token_type, TokenType::Refresh);
        assert_eq!(refresh.exp, NOW + 24 * 3600);
        assert_ne!(refresh.jti, access.jti);
        Ok(())
    }

    #[test]
    fn a_token_with_a_tampered_payload_is_refused() -> Result<(), JwtError> {
        let keys = keys()?;
        let token = pair()?.access;
        let mut parts: Vec<&str> = token.split('.').collect();
        let mut claims: Claims = decode_json(parts[1])?;
        claims.user_id = "1".into();
        let forged =
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).map_err(|_| JwtError::Malformed)?);
        parts[1] = &forged;
        let tampered = parts.join(".");
        assert!(matches!(
            keys.decode(&tampered, TokenType::Access, NOW),
            Err(JwtError::BadSignature)
        ));
        Ok(())
    }

    #[test]
    fn a_token_signed_with_another_secret_is_refused() -> Result<(), JwtError> {
        let other = JwtKeys::new(b"another secret of at least 32 bytes!")?;
        let token = other.issue(&input(), TokenType::Access, NOW, ACCESS_TTL)?;
        assert!(matches!(
            keys()?.decode(&token, TokenType::Access, NOW),
            Err(JwtError::BadSignature)
        ));
        Ok(())
    }

    #[test]
    fn an_unsigned_alg_none_token_is_refused() -> Result<(), JwtError> {
        let keys = keys()?;
        let valid = keys.decode(&pair()?.access, TokenType::Access, NOW)?;
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
        let payload =
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&valid).map_err(|_| JwtError::Malformed)?);
        for token in [
            format!("{header}.{payload}."),
            format!("{header}.{payload}"),
        ] {
            assert!(
                matches!(
                    keys.decode(&token, TokenType::Access, NOW),
                    Err(JwtError::UnsupportedAlgorithm | JwtError::Malformed)
                ),
                "{token}"
            );
        }
        let token = format!("{header}.{payload}.");
        assert!(matches!(
            keys.decode(&token, TokenType::Access, NOW),
            Err(JwtError::UnsupportedAlgorithm)
        ));
        Ok(())
    }

    #[test]
    fn a_refresh_token_is_not_accepted_as_an_access_token() -> Result<(), JwtError> {
        let keys = keys()?;
        let pair = pair()?;
        assert!(matches!(
            keys.decode(&pair.refresh, TokenType::Access, NOW),
            Err(JwtError::WrongTokenType)
        ));
        assert!(matches!(
            keys.decode(&pair.access, TokenType::Refresh, NOW),
            Err(JwtError::WrongTokenType)
        ));
        Ok(())
    }

    #[test]
    fn an_expired_token_is_refused() -> Result<(), JwtError> {
        let keys = keys()?;
        let access = pair()?.access;
        assert!(keys
            .decode(&access, TokenType::Access, NOW + 4 * 3600 - 1)
            .is_ok());
        assert!(matches!(
            keys.decode(&access, TokenType::Access, NOW + 4 * 3600),
            Err(JwtError::Expired)
        ));
        Ok(())
    }

    #[test]
    fn malformed_tokens_are_refused() -> Result<(), JwtError> {
        let keys = keys()?;
        for token in ["", ".", "..", "a.b.c", "a.b.c.d", "not a token", "é.é.é"] {
            assert!(
                matches!(
                    keys.decode(token, TokenType::Access, NOW),
                    Err(JwtError::Malformed)
                ),
                "{token}"
            );
        }
        Ok(())
    }

    #[test]
    fn a_token_for_a_foreign_tenant_fails_require_tenant_without_naming_it() -> Result<(), JwtError>
    {
        let claims = keys()?.decode(&pair()?.access, TokenType::Access, NOW)?;
        assert!(claims.require_tenant("acme").is_ok());
        let err = claims.require_tenant("globex");
        assert!(matches!(err, Err(JwtError::WrongTenant)));
        let message = err.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(!message.contains("acme") && !message.contains("globex"));
        Ok(())
    }

    #[tokio::test]
    async fn a_token_error_becomes_a_generic_401_that_names_no_tenant() {
        use axum::response::IntoResponse;
        use http_body_util::BodyExt;

        for err in [
            JwtError::WrongTenant,
            JwtError::Expired,
            JwtError::BadSignature,
        ] {
            let response = crate::ApiError::from(err).into_response();
            assert_eq!(response.status(), http::StatusCode::UNAUTHORIZED);
            let body = response.into_body().collect().await.map(|b| b.to_bytes());
            let body: serde_json::Value = body
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok())
                .unwrap_or_default();
            assert_eq!(
                body,
                serde_json::json!({
                    "detail": "Token is invalid or expired",
                    "code": "token_not_valid"
                })
            );
        }
    }
}
