//! Typed database ids, so a tenant id is never passed where a user id is expected.

use serde::{Deserialize, Serialize};

macro_rules! typed_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub i64);

        impl $name {
            /// The raw integer, for binding as a query parameter.
            pub const fn get(self) -> i64 {
                self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }

        impl From<i64> for $name {
            fn from(raw: i64) -> Self {
                Self(raw)
            }
        }
    };
}

typed_id!(
    /// Primary key of a tenant in the public registry.
    TenantId
);
typed_id!(
    /// Primary key of a domain row in the public registry.
    DomainId
);
typed_id!(
    /// Primary key of a user inside one tenant's schema.
    UserId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_ids_serialize_as_bare_integers() {
        let json = serde_json::to_string(&TenantId(7)).expect("serializes");
        assert_eq!(json, "7");
        let back: TenantId = serde_json::from_str("7").expect("deserializes");
        assert_eq!(back, TenantId(7));
    }
}
