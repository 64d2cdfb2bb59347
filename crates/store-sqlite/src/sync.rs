//! Drives the engine on a connection: load what it asks for, execute its
//! plan. Pushes run on the writer inside its transaction; pulls on a reader
//! inside a read transaction (one snapshot).

use rusqlite::Connection;
use tidesync_engine::page::{needs_first_since, plan_pull};
use tidesync_engine::{Loaded, Need, Push, PushInput, SyncOutput};
use tidesync_protocol::UserId;
use tidesync_store::{PullInput, StoreError};

use crate::sql;

pub fn push(c: &Connection, user: UserId, input: PushInput) -> Result<SyncOutput, StoreError> {
    let head = sql::head(c, user)?.ok_or(StoreError::UserGone)?;
    let mut push = Push::new(input, head);
    while let Some(need) = push.need() {
        let loaded = match need {
            Need::Batch {
                operation_ids,
                ids,
                first_since,
            } => Loaded::Batch {
                acks: sql::load_acks(c, user, &operation_ids)?,
                records: sql::load_records(c, user, &ids)?,
                first_since: match first_since {
                    Some(ms) => sql::first_version_since(c, user, ms)?,
                    None => None,
                },
            },
            Need::Children {
                spaces,
                categories,
                loaded_spaces,
            } => Loaded::Children(sql::children(
                c,
                user,
                &spaces,
                &categories,
                &loaded_spaces,
            )?),
        };
        push.feed(loaded)?;
    }
    let plan = push.finish()?;
    sql::insert_logs(c, user, &plan.logs)?;
    sql::save_records(c, user, &plan.upserts)?;
    if plan.wrote {
        sql::set_head(c, user, plan.head)?;
    }
    let page = sql::page(c, user, plan.page)?;
    Ok(plan.respond(page))
}

/// A pull inside the caller's read transaction: the counter first, then
/// rows up to it (see the engine's docs for why that is exact).
pub fn pull(c: &Connection, user: UserId, input: PullInput) -> Result<SyncOutput, StoreError> {
    let head = sql::head(c, user)?.ok_or(StoreError::UserGone)?;
    let first = match needs_first_since(input.cursor) {
        Some(ms) => sql::first_version_since(c, user, ms)?,
        None => None,
    };
    let q = plan_pull(input.cursor, head, first, input.limit, input.max_bytes)?;
    Ok(SyncOutput::pulled(sql::page(c, user, q)?, head))
}
