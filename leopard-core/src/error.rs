//! The one error type of `leopard-core`: a value that failed validation.

/// Why a value was refused by one of the validated newtypes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CoreError {
    /// A tenant slug broke the slug rules.
    #[error("invalid tenant slug {value:?}: {reason}")]
    InvalidSlug {
        /// The refused input.
        value: String,
        /// A human explanation of the broken rule.
        reason: &'static str,
    },
    /// A schema name broke the schema-name rules.
    #[error("invalid schema name {value:?}: {reason}")]
    InvalidSchemaName {
        /// The refused input.
        value: String,
        /// A human explanation of the broken rule.
        reason: &'static str,
    },
    /// A host (domain) name broke the host-name rules.
    #[error("invalid host name {value:?}: {reason}")]
    InvalidHostName {
        /// The refused input.
        value: String,
        /// A human explanation of the broken rule.
        reason: &'static str,
    },
    /// A country code that is not an assigned ISO 3166-1 alpha-2 code.
    #[error("\"{0}\" is not a valid choice.")]
    InvalidCountry(String),
}
