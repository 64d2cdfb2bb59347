//! What tidesync's HTTP tests and its bench share, so that neither keeps a
//! copy of its own:
//!
//! * [`Rng`]: the one seeded PRNG;
//! * [`Proc`]: the one launcher of the `tidesync` binary;
//! * [`TestDb`]: fresh databases (SQLite in a temporary folder; PostgreSQL
//!   created and dropped through an admin URL);
//! * [`pull_everything`]: paging to the end, bounded;
//! * builders ([`change`], [`at`], [`new_id`], …);
//! * [`share`]: an invitation sent and accepted;
//! * with `in-process`: [`TestApp`], the server in this process;
//! * with `harness`: the test binary's harness ([`harness::main`] and the
//!   [`backend_tests!`] registry macro).

mod builders;
mod db;
pub mod mongo;
mod proc;
mod pull;
mod rng;
mod share;

#[cfg(feature = "in-process")]
mod app;
#[cfg(feature = "harness")]
pub mod harness;

pub use builders::*;
pub use db::{postgres_url, with_database, Db, TestDb, PG_ENV};
pub use proc::Proc;
pub use pull::{pull_everything, Everything, MAX_PAGES};
pub use rng::Rng;
pub use share::share;

#[cfg(feature = "in-process")]
pub use app::*;
