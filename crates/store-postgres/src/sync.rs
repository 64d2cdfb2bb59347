//! Drives the engine on a PostgreSQL transaction: load what it asks for,
//! execute its plan.

use sqlx::postgres::PgConnection;
use tidesync_engine::page::{self, needs_first_since, FirstSince};
use tidesync_engine::{Loaded, Need, Plan, Push, PushInput, SyncOutput, View};
use tidesync_protocol::UserId;
use tidesync_store::{PullInput, StoreError};

use crate::sql;

pub async fn view(c: &mut PgConnection, user: UserId) -> Result<View, StoreError> {
    sql::view(c, user).await?.ok_or(StoreError::UserGone)
}

/// Plans and applies a push inside the caller's transaction; returns the
/// plan's answer. The caller commits.
pub async fn push(
    c: &mut PgConnection,
    user: UserId,
    input: PushInput,
) -> Result<SyncOutput, StoreError> {
    let mut push = Push::new(user, input);
    while let Some(need) = push.need() {
        let loaded = match need {
            Need::View => Loaded::View(view(&mut *c, user).await?),
            Need::Locate { ids, scopes } => {
                Loaded::Located(sql::locate(&mut *c, &ids, &scopes).await?)
            }
            Need::Batch {
                lock,
                operation_ids,
                ids,
                scopes,
                first_since,
            } => Loaded::Batch {
                locked: sql::lock(&mut *c, user, &lock).await?,
                acks: sql::load_acks(&mut *c, user, &operation_ids).await?,
                records: sql::load_records(&mut *c, &ids, &scopes).await?,
                first_since: match first_since {
                    Some(ms) => sql::first_since(&mut *c, &scopes, ms).await?,
                    None => FirstSince::new(),
                },
            },
            Need::Records { ids, scopes } => {
                Loaded::Records(sql::load_records(&mut *c, &ids, &scopes).await?)
            }
            Need::Children {
                scope,
                spaces,
                categories,
                loaded_spaces,
            } => Loaded::Children(
                sql::children(&mut *c, scope, &spaces, &categories, &loaded_spaces).await?,
            ),
        };
        push.feed(loaded)?;
    }
    let plan: Plan = push.finish()?;
    sql::insert_logs(&mut *c, user, &plan.logs).await?;
    sql::save_records(&mut *c, &plan.upserts).await?;
    let heads: Vec<_> = plan.heads.iter().map(|(s, v)| (*s, *v)).collect();
    sql::set_heads(&mut *c, &heads).await?;
    let page = sql::page(&mut *c, plan.page.clone()).await?;
    // READ COMMITTED: a collection may have committed since the view was
    // read (in scopes this push did not lock).
    let scopes: Vec<_> = plan.page.ranges.iter().map(|r| r.scope).collect();
    if page::stale(
        &plan.page,
        &crate::history::collected(&mut *c, &scopes).await?,
    ) {
        return Err(StoreError::ResyncRequired);
    }
    Ok(plan.respond(page))
}

/// A pull: the committed counters first, then rows up to them, in the
/// caller's REPEATABLE READ transaction (one snapshot, so a collection
/// cannot remove tombstones between the check and the page).
pub async fn pull(
    c: &mut PgConnection,
    user: UserId,
    input: PullInput,
) -> Result<SyncOutput, StoreError> {
    let view = view(&mut *c, user).await?;
    let first = match needs_first_since(&input.cursor) {
        Some(ms) => {
            let scopes: Vec<_> = view.readable().iter().map(|s| s.id).collect();
            sql::first_since(&mut *c, &scopes, ms).await?
        }
        None => FirstSince::new(),
    };
    let plan = page::plan(&input.cursor, &view, &first, input.limit, input.max_bytes)?;
    Ok(SyncOutput::pulled(
        sql::page(&mut *c, plan.page).await?,
        plan.removed_spaces,
    ))
}
