//! Leopard's policy engine (pure: no IO, no async).
//!
//! - [`catalogue`]: every CRM model × [`Action`] as a Django-style [`Permission`]
//!   (`view_client`, "Can view client", `immigration.client`) plus the extra permissions, and
//!   [`PermissionSet`], a bitset over the catalogue;
//! - [`Role`]: the four built-in groups with their default permissions and [`Scope`]s;
//! - [`Principal`]: the user as the policy sees it, built once per request;
//! - [`check`]: one decision with its explanation ([`Decision`]); [`filter`]: the same decision
//!   as a SQL predicate for lists, guaranteed to agree with [`check`];
//! - [`grantable_roles`], [`may_assign_branches`], [`may_assign_regions`], [`may_grant`]: the
//!   user-management hierarchy.

pub mod catalogue;
mod error;
mod hierarchy;
mod policy;
mod principal;
mod role;

pub use catalogue::{Action, Permission, PermissionSet, ResourceKind};
pub use error::RbacError;
pub use hierarchy::{grantable_roles, may_assign_branches, may_assign_regions, may_grant};
pub use policy::{
    check, filter, Decision, DenyReason, Resource, ScopeColumns, SqlParam, SqlPredicate,
};
pub use principal::Principal;
pub use role::{Role, Scope};
