//! Tenant records as stored in the public registry, and the in-memory view used per request.

use chrono::{DateTime, Utc};
use leopard_core::{HostName, SchemaName, TenantId, TenantSlug};
use serde::{Deserialize, Serialize};

use crate::TenancyError;

/// A tenant's subscription state; only `TRIAL` and `ACTIVE` tenants are served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum SubscriptionStatus {
    /// Trial period (served).
    Trial,
    /// Paying customer (served).
    Active,
    /// Suspended, e.g. for non-payment (refused with 403 `tenant_inactive`).
    Suspended,
    /// Cancelled (refused with 403 `tenant_inactive`).
    Cancelled,
}

impl SubscriptionStatus {
    /// The stored and wire form: `TRIAL`, `ACTIVE`, `SUSPENDED`, `CANCELLED`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Trial => "TRIAL",
            Self::Active => "ACTIVE",
            Self::Suspended => "SUSPENDED",
            Self::Cancelled => "CANCELLED",
        }
    }

    /// Parses the stored form (case-insensitive).
    pub fn parse(raw: &str) -> Result<Self, TenancyError> {
        match raw.to_ascii_uppercase().as_str() {
            "TRIAL" => Ok(Self::Trial),
            "ACTIVE" => Ok(Self::Active),
            "SUSPENDED" => Ok(Self::Suspended),
            "CANCELLED" => Ok(Self::Cancelled),
            _ => Err(TenancyError::InvalidField {
                field: "subscription_status",
                message: format!("{raw:?} is not one of TRIAL, ACTIVE, SUSPENDED, CANCELLED"),
            }),
        }
    }

    /// Whether requests for a tenant in this state are served.
    pub const fn is_serving(self) -> bool {
        matches!(self, Self::Trial | Self::Active)
    }
}

impl std::str::FromStr for SubscriptionStatus {
    type Err = TenancyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// What a request needs to know about its tenant; immutable, shared through `Arc`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantInfo {
    /// Registry id (`tenant_id` in the public API).
    pub id: TenantId,
    /// Short name, also the JWT `tid` claim.
    pub slug: TenantSlug,
    /// The schema holding the tenant's data.
    pub schema: SchemaName,
    /// Display name.
    pub name: String,
    /// Administrative on/off switch.
    pub is_active: bool,
    /// Subscription state.
    pub status: SubscriptionStatus,
    /// The most users the tenant may have.
    pub max_users: i32,
}

impl TenantInfo {
    /// Whether the tenant's requests are served (active and in `TRIAL` or `ACTIVE`).
    pub fn is_serving(&self) -> bool {
        self.is_active && self.status.is_serving()
    }
}

/// A full registry row, as listed by the CLI and the platform API.
#[derive(Debug, Clone, Serialize)]
pub struct Tenant {
    /// Registry id.
    pub id: TenantId,
    /// Short name.
    pub slug: TenantSlug,
    /// Schema name.
    pub schema_name: SchemaName,
    /// Display name.
    pub name: String,
    /// Administrative on/off switch.
    pub is_active: bool,
    /// Subscription state.
    pub subscription_status: SubscriptionStatus,
    /// Free-form settings.
    pub settings: serde_json::Value,
    /// The most users the tenant may have.
    pub max_users: i32,
    /// Contact e-mail address.
    pub contact_email: Option<String>,
    /// Contact phone number.
    pub contact_phone: Option<String>,
    /// The tenant's domains, primary first.
    pub domains: Vec<String>,
    /// How long provisioning took, in milliseconds.
    pub provision_ms: Option<i32>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// Input for provisioning a tenant.
#[derive(Debug, Clone)]
pub struct NewTenant {
    /// Short name; derives the schema name.
    pub slug: TenantSlug,
    /// Display name (1–200 characters).
    pub name: String,
    /// Initial subscription state (default `TRIAL`).
    pub status: SubscriptionStatus,
    /// Extra domains besides the two derived from the slug.
    pub domains: Vec<HostName>,
    /// The most users the tenant may have (default 50).
    pub max_users: i32,
    /// Contact e-mail address.
    pub contact_email: Option<String>,
    /// Contact phone number.
    pub contact_phone: Option<String>,
    /// Free-form settings (default `{}`).
    pub settings: serde_json::Value,
}

impl NewTenant {
    /// A tenant with the given slug and name and default everything else.
    pub fn new(slug: TenantSlug, name: impl Into<String>) -> Self {
        Self {
            slug,
            name: name.into(),
            status: SubscriptionStatus::Trial,
            domains: Vec::new(),
            max_users: 50,
            contact_email: None,
            contact_phone: None,
            settings: serde_json::json!({}),
        }
    }

    /// Checks the fields the newtypes cannot.
    pub(crate) fn validate(&self) -> Result<(), TenancyError> {
        let name_len = self.name.trim().chars().count();
        if name_len == 0 || name_len > 200 {
            return Err(TenancyError::InvalidField {
                field: "name",
                message: "must be 1-200 characters".into(),
            });
        }
        if self.max_users < 0 {
            return Err(TenancyError::InvalidField {
                field: "max_users",
                message: "must not be negative".into(),
            });
        }
        if let Some(email) = &self.contact_email {
            if email.len() > 254 || !email.contains('@') {
                return Err(TenancyError::InvalidField {
                    field: "contact_email",
                    message: "must be an e-mail address".into(),
                });
            }
        }
        if let Some(phone) = &self.contact_phone {
            if phone.len() > 20 {
                return Err(TenancyError::InvalidField {
                    field: "contact_phone",
                    message: "must be at most 20 characters".into(),
                });
            }
        }
        if !self.settings.is_object() {
            return Err(TenancyError::InvalidField {
                field: "settings",
                message: "must be a JSON object".into(),
            });
        }
        Ok(())
    }
}
