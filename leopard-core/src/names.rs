//! Validated names: tenant slugs, PostgreSQL schema names and host names.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::CoreError;

/// Slugs that are refused because they collide with infrastructure host names or routes.
pub const RESERVED_SLUGS: &[&str] = &[
    "admin", "api", "app", "assets", "auth", "cdn", "default", "docs", "health", "help", "mail",
    "media", "platform", "postgres", "public", "root", "static", "status", "support", "system",
    "template", "www",
];

/// The longest slug accepted, in bytes.
const SLUG_MAX: usize = 40;
/// PostgreSQL's identifier limit (`NAMEDATALEN - 1`).
const IDENT_MAX: usize = 63;
/// Prefix of every tenant schema.
const SCHEMA_PREFIX: &str = "tenant_";

/// A tenant's short name: lower-case ASCII letters, digits and `-`, 1–40 bytes, starting and
/// ending with a letter or digit, never one of [`RESERVED_SLUGS`].
///
/// The slug appears in host names (`acme.localhost`, `acme-immigrate.localhost`), in the JWT `tid`
/// claim, and derives the tenant's schema name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TenantSlug(String);

impl TenantSlug {
    /// Validates `raw` as a slug.
    pub fn parse(raw: &str) -> Result<Self, CoreError> {
        let fail = |reason| {
            Err(CoreError::InvalidSlug {
                value: raw.to_owned(),
                reason,
            })
        };
        if raw.is_empty() {
            return fail("must not be empty");
        }
        if raw.len() > SLUG_MAX {
            return fail("must be at most 40 characters");
        }
        if !raw
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return fail("may contain only lower-case letters, digits and '-'");
        }
        if raw.starts_with('-') || raw.ends_with('-') {
            return fail("must start and end with a letter or digit");
        }
        if RESERVED_SLUGS.contains(&raw) {
            return fail("is a reserved name");
        }
        Ok(Self(raw.to_owned()))
    }

    /// The slug as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The schema that holds this tenant's data: `tenant_<slug>` with `-` turned into `_`.
    pub fn schema_name(&self) -> SchemaName {
        // A valid slug always yields a valid schema name (≤ 47 bytes, [a-z0-9_]).
        SchemaName(format!("{SCHEMA_PREFIX}{}", self.0.replace('-', "_")))
    }
}

impl fmt::Display for TenantSlug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for TenantSlug {
    type Err = CoreError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// A PostgreSQL schema that holds one tenant's tables.
///
/// Valid names are lower-case ASCII letters, digits and `_`, start with a letter or `_`, are at
/// most 63 bytes, and are never `public`, `information_schema` or `pg_*`. SQL text only ever gets
/// the quoted form ([`SchemaName::quoted`]); the raw form ([`SchemaName::as_str`]) is for binding
/// as a query parameter. `Display` renders the quoted form, so formatting one into SQL is safe.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SchemaName(String);

impl SchemaName {
    /// Validates `raw` as a tenant schema name.
    pub fn parse(raw: &str) -> Result<Self, CoreError> {
        let fail = |reason| {
            Err(CoreError::InvalidSchemaName {
                value: raw.to_owned(),
                reason,
            })
        };
        if raw.is_empty() {
            return fail("must not be empty");
        }
        if raw.len() > IDENT_MAX {
            return fail("must be at most 63 bytes");
        }
        let mut bytes = raw.bytes();
        let first_ok = bytes
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b == b'_');
        if !first_ok {
            return fail("must start with a lower-case letter or '_'");
        }
        if !bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_') {
            return fail("may contain only lower-case letters, digits and '_'");
        }
        if raw == "public" || raw == "information_schema" {
            return fail("is a system schema");
        }
        if raw.starts_with("pg_") {
            return fail("the pg_ prefix is reserved by PostgreSQL");
        }
        Ok(Self(raw.to_owned()))
    }

    /// The bare name, for binding as a query parameter (never for splicing into SQL).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name as a quoted SQL identifier, e.g. `"tenant_acme"`.
    pub fn quoted(&self) -> String {
        format!("\"{}\"", self.0.replace('"', "\"\""))
    }
}

impl fmt::Display for SchemaName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.quoted())
    }
}

impl std::str::FromStr for SchemaName {
    type Err = CoreError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// A normalised host name as used for tenant resolution: lower-case, without port, without a
/// leading `www.` and without a trailing dot.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HostName(String);

impl HostName {
    /// Normalises and validates a `Host` header value or a configured domain.
    pub fn parse(raw: &str) -> Result<Self, CoreError> {
        let fail = |reason| {
            Err(CoreError::InvalidHostName {
                value: raw.to_owned(),
                reason,
            })
        };
        let normalised = normalize_host(raw);
        if normalised.is_empty() {
            return fail("must not be empty");
        }
        if normalised.len() > 253 {
            return fail("must be at most 253 characters");
        }
        for label in normalised.split('.') {
            if label.is_empty() || label.len() > 63 {
                return fail("each dot-separated label must be 1-63 characters");
            }
            if !label
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            {
                return fail("may contain only letters, digits, '-' and '.'");
            }
            if label.starts_with('-') || label.ends_with('-') {
                return fail("labels must not start or end with '-'");
            }
        }
        Ok(Self(normalised))
    }

    /// The normalised host.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for HostName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Lower-cases a host, strips a port, a trailing dot and one leading `www.`; performs no
/// validation (resolution of an invalid host simply finds no tenant).
pub(crate) fn normalize_host(raw: &str) -> String {
    let mut host = raw.trim();
    if let Some(rest) = host.strip_prefix('[') {
        // IPv6 literal: keep it whole, drop the port.
        host = rest.split(']').next().unwrap_or(rest);
    } else if let Some((name, port)) = host.rsplit_once(':') {
        if port.bytes().all(|b| b.is_ascii_digit()) {
            host = name;
        }
    }
    let host = host.strip_suffix('.').unwrap_or(host);
    let lowered = host.to_ascii_lowercase();
    match lowered.strip_prefix("www.") {
        Some(rest) => rest.to_owned(),
        None => lowered,
    }
}

impl HostName {
    /// Normalises a `Host` header value without validating it (see [`HostName::parse`] for the
    /// rules that are applied): lower-case, no port, no trailing dot, no leading `www.`.
    pub fn normalize(raw: &str) -> String {
        normalize_host(raw)
    }
}

macro_rules! string_serde {
    ($name:ident) => {
        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }
        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let raw = String::deserialize(d)?;
                Self::parse(&raw).map_err(serde::de::Error::custom)
            }
        }
    };
}
string_serde!(TenantSlug);
string_serde!(SchemaName);
string_serde!(HostName);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_slug_is_accepted_and_derives_its_schema() {
        let slug = TenantSlug::parse("acme-corp2").expect("valid");
        assert_eq!(slug.as_str(), "acme-corp2");
        assert_eq!(slug.schema_name().as_str(), "tenant_acme_corp2");
        assert_eq!(slug.schema_name().quoted(), "\"tenant_acme_corp2\"");
    }

    #[test]
    fn slugs_breaking_any_rule_are_refused() {
        let long = "a".repeat(41);
        for bad in [
            "",
            "Acme",
            "ac_me",
            "-acme",
            "acme-",
            "ac me",
            "www",
            "public",
            "api",
            &long,
            "acmé",
            "acme\"; drop schema public; --",
        ] {
            assert!(TenantSlug::parse(bad).is_err(), "{bad:?} must be refused");
        }
        assert!(TenantSlug::parse(&"a".repeat(40)).is_ok());
    }

    #[test]
    fn schema_names_refuse_injection_and_system_schemas() {
        for bad in [
            "acme\"; drop schema public; --",
            "tenant_acme\"",
            "public",
            "information_schema",
            "pg_catalog",
            "pg_temp_1",
            "Tenant_Acme",
            "1tenant",
            "",
            &"a".repeat(64),
            "tenant acme",
            "tenant-acme",
        ] {
            assert!(SchemaName::parse(bad).is_err(), "{bad:?} must be refused");
        }
        assert!(SchemaName::parse(&"a".repeat(63)).is_ok());
        assert_eq!(
            SchemaName::parse("tenant_acme").expect("valid").to_string(),
            "\"tenant_acme\""
        );
    }

    #[test]
    fn host_names_are_normalised_before_validation() {
        let host = HostName::parse("WWW.Acme.LocalHost:8000").expect("valid");
        assert_eq!(host.as_str(), "acme.localhost");
        assert_eq!(HostName::normalize("acme.example.com."), "acme.example.com");
        assert_eq!(HostName::normalize("[::1]:8000"), "::1");
        assert!(HostName::parse("bad_host.example").is_err());
        assert!(HostName::parse("-x.example").is_err());
        assert!(HostName::parse("").is_err());
    }

    #[test]
    fn deserializing_an_invalid_slug_fails() {
        let err = serde_json::from_str::<TenantSlug>("\"Bad Slug\"");
        assert!(err.is_err());
        let ok: TenantSlug = serde_json::from_str("\"acme\"").expect("valid");
        assert_eq!(ok.as_str(), "acme");
    }
}
