//! Drives the engine on a PostgreSQL transaction: load what it asks for,
//! execute its plan.

use sqlx::postgres::PgConnection;
use tidesync_engine::page::{needs_first_since, plan_pull};
use tidesync_engine::{Loaded, Need, Plan, Push, PushInput, SyncOutput};
use tidesync_protocol::UserId;
use tidesync_store::{PullInput, StoreError};

use crate::sql;

/// Plans and applies a push inside the caller's transaction; returns the
/// plan's answer. The caller commits.
pub async fn push(
    c: &mut PgConnection,
    user: UserId,
    input: PushInput,
) -> Result<SyncOutput, StoreError> {
    let head = sql::lock_user(&mut *c, user)
        .await?
        .ok_or(StoreError::UserGone)?;
    let mut push = Push::new(input, head);
    while let Some(need) = push.need() {
        let loaded = match need {
            Need::Batch {
                operation_ids,
                ids,
                first_since,
            } => Loaded::Batch {
                acks: sql::load_acks(&mut *c, user, &operation_ids).await?,
                records: sql::load_records(&mut *c, user, &ids).await?,
                first_since: match first_since {
                    Some(ms) => sql::first_version_since(&mut *c, user, ms).await?,
                    None => None,
                },
            },
            Need::Children {
                spaces,
                categories,
                loaded_spaces,
            } => Loaded::Children(
                sql::children(&mut *c, user, &spaces, &categories, &loaded_spaces).await?,
            ),
        };
        push.feed(loaded)?;
    }
    let plan: Plan = push.finish()?;
    sql::insert_logs(&mut *c, user, &plan.logs).await?;
    sql::save_records(&mut *c, user, &plan.upserts).await?;
    if plan.wrote {
        sql::set_head(&mut *c, user, plan.head).await?;
    }
    let page = sql::page(&mut *c, user, plan.page).await?;
    Ok(plan.respond(page))
}

/// A pull: the committed counter first, then rows up to it. Under READ
/// COMMITTED the two statements see different snapshots, which is still
/// exact: a row renumbered in between moves above the counter read and
/// comes with the next pull (docs/ARCHITECTURE.md).
pub async fn pull(
    c: &mut PgConnection,
    user: UserId,
    input: PullInput,
) -> Result<SyncOutput, StoreError> {
    let head = sql::head(&mut *c, user)
        .await?
        .ok_or(StoreError::UserGone)?;
    let first = match needs_first_since(input.cursor) {
        Some(ms) => sql::first_version_since(&mut *c, user, ms).await?,
        None => None,
    };
    let q = plan_pull(input.cursor, head, first, input.limit, input.max_bytes)?;
    Ok(SyncOutput::pulled(sql::page(&mut *c, user, q).await?, head))
}
