//! How statements are sent: named (prepared once per connection and cached,
//! the default) or unnamed (parsed again at each execution).
//!
//! Behind PgBouncer in transaction mode (before 1.21, or without
//! `max_prepared_statements`) a client connection is served by whichever
//! server connection is free at each transaction, so a named statement
//! prepared on one is missing, or another client's, on the next. Unnamed
//! statements live only until the next one on the same server connection,
//! and every statement of this backend runs inside a transaction (which
//! PgBouncer keeps on one server connection), so they are safe there.
//!
//! The mode belongs to the store; it is set around each store call as a
//! task-local, so the statements in `sql.rs`, `accounts.rs` and
//! `members.rs` need no extra argument.

use sqlx::postgres::{PgArguments, Postgres};
use sqlx::query::{Query, QueryAs, QueryScalar};
use sqlx::{FromRow, SqlSafeStr};

tokio::task_local! {
    static NAMED: bool;
}

/// Runs `f` with statements named (`true`) or unnamed.
pub async fn scope<F: std::future::Future>(named: bool, f: F) -> F::Output {
    NAMED.scope(named, f).await
}

/// Named unless a store call said otherwise.
fn named() -> bool {
    NAMED.try_with(|n| *n).unwrap_or(true)
}

pub fn query<'q>(sql: impl SqlSafeStr) -> Query<'q, Postgres, PgArguments> {
    sqlx::query(sql).persistent(named())
}

pub fn query_as<'q, O>(sql: impl SqlSafeStr) -> QueryAs<'q, Postgres, O, PgArguments>
where
    O: for<'r> FromRow<'r, sqlx::postgres::PgRow>,
{
    sqlx::query_as(sql).persistent(named())
}

pub fn query_scalar<'q, O>(sql: impl SqlSafeStr) -> QueryScalar<'q, Postgres, O, PgArguments>
where
    (O,): for<'r> FromRow<'r, sqlx::postgres::PgRow>,
{
    sqlx::query_scalar(sql).persistent(named())
}
