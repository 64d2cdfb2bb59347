//! HTTP tests against the real server on a random port. Every test runs on
//! SQLite, and on PostgreSQL when TIDESYNC_TEST_POSTGRES_URL is set, each
//! with a database of its own. One test binary, so the skip notice prints once.

#[macro_use]
mod helpers;

mod account;
mod auth;
mod binary;
mod crash;
mod errors;
mod health;
mod hostile;
mod outage;
mod realtime;
mod sync;
mod sync_sim;
