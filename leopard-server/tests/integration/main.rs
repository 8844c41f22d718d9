//! The server's integration tests, one binary: each module drives the real router (or real
//! `leopard` processes) against real PostgreSQL, one private database or tenant per test.
//!
//! One binary rather than one per file: every file links the whole server, and forty copies of
//! it cost CI minutes of linking and gigabytes of disk. Run one module with
//! `cargo test -p leopard-server --test integration -- web::`.

mod common;

mod agents;
mod auth;
mod calendar;
mod clients;
mod college_applications;
mod countries;
mod counts;
mod crm_handlers;
mod demo;
mod demo_as_root;
mod demo_data;
mod events;
mod groups_permissions;
mod institutes;
mod limits;
mod notes;
mod notifications;
mod null_characters;
mod openapi;
mod org;
mod org_scope;
mod permission_matrix;
mod platform;
mod principal_cache;
mod profile_pictures;
mod profile_sections;
mod queries;
mod reminders;
mod scheduler;
mod server;
mod sse;
mod sse_processes;
mod tasks;
mod tenant_backup;
mod tenant_binding;
mod usernames;
mod users;
mod users_scope;
mod visa;
mod web;
mod web_admin;
mod web_apps;
mod web_client_tabs;
mod web_work;
