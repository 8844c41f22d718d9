//! The reference Leopard server behind the `leopard` binary: configuration, the CLI commands, and
//! the HTTP application.

pub mod api;
pub mod app;
pub mod cli;
pub mod config;
pub mod counts;
pub mod db;
pub mod handlers;
pub mod identity;
pub mod listener;
pub mod migrations;
pub mod notify;
pub mod openapi;
pub mod principals;
pub mod realtime;
pub mod scheduler;
pub mod seed;
pub mod web;
