//! Who may act, and where: tokens (`auth`), users and their memberships (`users`), groups and
//! their permissions (`groups`, `permissions`), and the organisation units a scope is made of
//! (`regions`, `branches`).

pub mod auth;
pub mod branches;
pub mod groups;
pub mod permissions;
pub mod regions;
pub mod users;
