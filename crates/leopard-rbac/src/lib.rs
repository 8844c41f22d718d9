//! Leopard's policy engine (pure: no IO, no async).
//!
//! This crate is intentionally empty until the identity/RBAC issue fills it: roles and groups
//! with Django-style permission codenames, tenant > region > branch > own scopes, `check` with an
//! explanation and a SQL filter for lists that always agrees with `check`. Nothing here pretends
//! to decide anything yet.
