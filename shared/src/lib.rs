#![recursion_limit = "256"]
//! The session service's domain, shared by every Lambda binary and the local server.
//!
//! A request travels: transport (Lambda or local server) → [`routes`] → a handler in [`api`]
//! → domain rules in [`domain`] → the [`store`]. Each layer knows only the one below it.

pub mod api;
pub mod app;
pub mod auth_settings;
pub mod claims;
pub mod clock;
pub mod config;
pub mod domain;
pub mod email;
pub mod endpoint;
pub mod environment;
pub mod error;
pub mod fixtures;
pub mod http;
pub mod ids;
pub mod keyring;
pub mod limits;
pub mod metrics;
mod route_table;
pub mod routes;
pub mod state;
pub mod store;
pub mod telemetry;
pub mod tokens;
pub mod webhooks;
pub mod wire;
