//! The `tidesync` server: configuration, routes, auth and lifecycle.

pub mod app;
pub mod auth;
pub mod background;
pub mod commands;
pub mod config;
pub mod db;
pub mod demo;
pub mod error;
pub mod exports;
pub mod import;
pub mod limits;
pub mod memory;
pub mod notify;
pub mod password;
pub mod progress;
pub mod router;
pub mod routes;
pub mod schema;
pub mod session;
pub mod stall;
pub mod state;
pub mod telemetry;
pub mod traced;

pub use app::{App, StartError};
