//! Drives the engine on a connection: load what it asks for, execute its
//! plan. Pushes run on the writer inside its transaction; pulls on a reader
//! inside a read transaction (one snapshot).

use rusqlite::Connection;
use tidesync_engine::page::FirstSince;
use tidesync_engine::{Again, Loaded, Need, Pull, PullLoaded, PullNeed, Push, SyncOutput, View};
use tidesync_protocol::entity::Model;
use tidesync_protocol::{ScopeId, UserId};
use tidesync_store::{PullInput, StoreError};

use crate::{cascade, sql, write};

pub fn view(c: &Connection, user: UserId) -> Result<View, StoreError> {
    sql::view(c, user)?.ok_or(StoreError::UserGone)
}

/// What one transaction of a push ends with.
pub enum Pushed {
    Done(SyncOutput),
    /// It committed a step (part of a large cascade, or the changes that
    /// filled its budget): resume the push in a new job, so that the jobs
    /// queued meanwhile go first.
    Again(Again),
}

/// One transaction of a push (a new one, or one resumed after a step), and
/// the scopes it wrote with their new counters.
pub fn push(
    c: &Connection,
    model: Model,
    user: UserId,
    mut push: Push,
) -> Result<(Pushed, Vec<(ScopeId, i64)>), StoreError> {
    while let Some(need) = push.need() {
        let loaded = match need {
            Need::View => Loaded::View(view(c, user)?),
            Need::Locate { ids, scopes } => Loaded::Located(sql::locate(c, &ids, &scopes)?),
            Need::Batch {
                lock,
                operation_ids,
                ids,
                scopes,
                first_since,
                max_bytes,
            } => {
                let locked = sql::lock(c, user, &lock)?;
                let acks = sql::load_acks(c, user, &operation_ids)?;
                let (records, looked_up) = sql::load_records(c, model, &ids, &scopes, max_bytes)?;
                Loaded::Batch {
                    locked,
                    acks,
                    records,
                    first_since: match first_since {
                        Some(ms) => sql::first_since(c, &scopes, ms)?,
                        None => FirstSince::new(),
                    },
                    looked_up,
                }
            }
            Need::Records {
                ids,
                scopes,
                max_bytes,
            } => {
                let (records, looked_up) = sql::load_records(c, model, &ids, &scopes, max_bytes)?;
                Loaded::Records { records, looked_up }
            }
            Need::Children {
                scope,
                roots,
                parents,
                loaded_roots,
            } => Loaded::Children(cascade::children(
                c,
                model,
                scope,
                (&roots, &parents),
                &loaded_roots,
            )?),
            Need::Descendants {
                scope,
                root,
                kinds,
                inner,
                limit,
            } => Loaded::Descendants(cascade::descendants(
                c,
                model,
                scope,
                root,
                (&kinds, &inner),
                limit,
            )?),
        };
        push.feed(loaded)?;
    }
    let mut plan = push.finish()?;
    write::insert_logs(c, user, &plan.logs)?;
    write::save_records(c, &plan.upserts)?;
    let heads: Vec<_> = plan.heads.iter().map(|(s, v)| (*s, *v)).collect();
    write::set_heads(c, &heads)?;
    if let Some(again) = plan.again.take() {
        return Ok((Pushed::Again(again), heads));
    }
    let page = sql::page(c, model, plan.page.clone())?;
    Ok((Pushed::Done(plan.respond(page)), heads))
}

/// A pull inside the caller's read transaction (one snapshot), as the
/// engine's [`Pull`] asks.
pub fn pull(
    c: &Connection,
    model: Model,
    user: UserId,
    input: PullInput,
) -> Result<SyncOutput, StoreError> {
    let mut pull = Pull::new(input);
    while let Some(need) = pull.need() {
        pull.feed(match need {
            PullNeed::View => PullLoaded::View(view(c, user)?),
            PullNeed::FirstSince { scopes, since } => {
                PullLoaded::FirstSince(sql::first_since(c, &scopes, since)?)
            }
            PullNeed::Page(q) => PullLoaded::Page(sql::page(c, model, q)?),
        })?;
    }
    Ok(pull.finish()?)
}
