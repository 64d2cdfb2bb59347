//! HTTP tests against the real server on a random port. Every test runs on
//! SQLite, and on PostgreSQL when TIDESYNC_TEST_POSTGRES_URL is set, each
//! with a database of its own; without it the PostgreSQL variants are
//! reported as ignored (the harness is `tidesync_testkit::harness`, on
//! libtest-mimic, because libtest cannot ignore a test at run time).

mod account;
mod auth;
mod binary;
mod cascade;
mod casts;
mod commands;
mod crash;
mod cursor_race;
mod errors;
mod export;
mod export_bounds;
mod health;
mod heavy;
mod history;
mod hostile;
mod import;
mod invitations;
mod no_history;
mod openapi;
mod ops;
mod outage;
mod realtime;
mod revocation;
mod schema;
mod schema_notes;
mod sharing;
mod sharing_sim;
mod sync;
mod sync_deletes;
mod sync_errors;
mod sync_log;
mod sync_pulls;
mod sync_retries;
mod sync_sim;
mod writer;

fn main() {
    tidesync_testkit::harness::main(&[
        account::tests,
        auth::tests,
        binary::tests,
        cascade::tests,
        casts::tests,
        commands::tests,
        crash::tests,
        cursor_race::tests,
        errors::tests,
        export::tests,
        export_bounds::tests,
        health::tests,
        heavy::tests,
        history::tests,
        hostile::tests,
        import::tests,
        invitations::tests,
        no_history::tests,
        openapi::tests,
        ops::tests,
        outage::tests,
        realtime::tests,
        revocation::tests,
        schema_notes::tests,
        schema::tests,
        sharing::tests,
        sharing_sim::tests,
        sync::tests,
        sync_deletes::tests,
        sync_errors::tests,
        sync_log::tests,
        sync_pulls::tests,
        sync_retries::tests,
        sync_sim::tests,
        writer::tests,
    ]);
}
