//! Drives the engine on a PostgreSQL transaction: load what it asks for,
//! execute its plan.

use sqlx::postgres::PgConnection;
use tidesync_engine::page::{self, FirstSince};
use tidesync_engine::{
    Again, Loaded, Need, Plan, Pull, PullLoaded, PullNeed, Push, SyncOutput, View,
};
use tidesync_protocol::entity::Model;
use tidesync_protocol::{ScopeId, UserId};
use tidesync_store::{ChangeNote, PullInput, StoreError};

use crate::{push, sql};

pub async fn view(c: &mut PgConnection, user: UserId) -> Result<View, StoreError> {
    sql::view(c, user).await?.ok_or(StoreError::UserGone)
}

/// What one transaction of a push ends with.
pub enum Pushed {
    Done(SyncOutput),
    /// It committed a step (the changes that filled its load budget):
    /// resume the push in a new transaction.
    Again(Again),
}

/// Plans and applies one transaction of a push inside the caller's
/// transaction, with its change notices queued. The caller commits.
///
/// Round trips for a user without shared spaces: the view (with the
/// personal lock), the batch's reads, the writes, the page (push.rs).
/// Cascades are atomic here: a large one holds only its own scopes' locks,
/// so other users' pushes do not wait for it (they do on SQLite's single
/// writer, which is why that backend steps them), and reads its records
/// without their content.
pub async fn push(
    c: &mut PgConnection,
    model: Model,
    user: UserId,
    mut push: Push,
) -> Result<Pushed, StoreError> {
    let device = push.device_id().to_owned();
    // The personal scope's lock, when the view statement took it.
    let mut held: Option<ScopeId> = None;
    // Scopes locked, with their `collected` read under the lock.
    let mut locked_collected: Vec<(ScopeId, i64)> = Vec::new();
    while let Some(need) = push.need() {
        let loaded = match need {
            Need::View => {
                let (view, locked) = push::view_locking(&mut *c, user)
                    .await?
                    .ok_or(StoreError::UserGone)?;
                held = locked.then_some(view.personal);
                Loaded::View(view)
            }
            Need::Locate { ids, scopes } => {
                Loaded::Located(sql::locate(&mut *c, &ids, &scopes).await?)
            }
            Need::Batch {
                lock,
                operation_ids,
                ids,
                scopes,
                first_since,
                max_bytes,
            } => {
                // Held already: the personal scope, the smallest id of the
                // user's, so locking the rest now keeps ascending order.
                if held.map(|p| lock != [p]).unwrap_or(true) {
                    push::lock(&mut *c, &lock).await?;
                }
                let rows = push::batch(
                    &mut *c,
                    model,
                    user,
                    &lock,
                    &operation_ids,
                    (&ids, max_bytes),
                    &scopes,
                )
                .await?;
                locked_collected = rows.collected;
                Loaded::Batch {
                    locked: rows.locked,
                    acks: rows.acks,
                    records: rows.records,
                    first_since: match first_since {
                        Some(ms) => sql::first_since(&mut *c, &scopes, ms).await?,
                        None => FirstSince::new(),
                    },
                    looked_up: rows.looked_up,
                }
            }
            Need::Records {
                ids,
                scopes,
                max_bytes,
            } => {
                let (records, looked_up) =
                    sql::load_records(&mut *c, model, &ids, &scopes, max_bytes).await?;
                Loaded::Records { records, looked_up }
            }
            Need::Children {
                scope,
                roots,
                parents,
                loaded_roots,
            } => Loaded::Children(
                sql::children(&mut *c, model, scope, (&roots, &parents), &loaded_roots).await?,
            ),
            Need::Descendants { .. } => {
                return Err(StoreError::Internal(
                    "cascade steps are not used on PostgreSQL".into(),
                ))
            }
        };
        push.feed(loaded)?;
    }
    let mut plan: Plan = push.finish()?;
    let heads: Vec<_> = plan.heads.iter().map(|(s, v)| (*s, *v)).collect();
    let notes: Vec<String> = heads
        .iter()
        .map(|(scope, version)| {
            crate::note_payload(&ChangeNote {
                scope: *scope,
                version: *version,
                user,
                device: device.clone(),
                membership: false,
            })
        })
        .collect();
    push::write(
        &mut *c,
        user,
        &plan.logs,
        &plan.upserts,
        &heads,
        crate::CHANNEL,
        &notes,
    )
    .await?;
    if let Some(again) = plan.again.take() {
        return Ok(Pushed::Again(again));
    }
    let page = sql::page(&mut *c, model, plan.page.clone()).await?;
    // READ COMMITTED: a collection may have committed since the view was
    // read. Locked scopes had `collected` read under the lock; the others
    // are read again now, after the page.
    let unlocked: Vec<_> = plan
        .page
        .ranges
        .iter()
        .map(|r| r.scope)
        .filter(|s| !locked_collected.iter().any(|(l, _)| l == s))
        .collect();
    let mut collected = locked_collected;
    if !unlocked.is_empty() {
        collected.extend(crate::history::collected(&mut *c, &unlocked).await?);
    }
    if page::stale(&plan.page, &collected) {
        return Err(StoreError::ResyncRequired);
    }
    Ok(Pushed::Done(plan.respond(page)))
}

/// A pull: the committed counters first, then rows up to them, in the
/// caller's REPEATABLE READ transaction (one snapshot, so a collection
/// cannot remove tombstones between the check and the page).
pub async fn pull(
    c: &mut PgConnection,
    model: Model,
    user: UserId,
    input: PullInput,
) -> Result<SyncOutput, StoreError> {
    let mut pull = Pull::new(input);
    while let Some(need) = pull.need() {
        pull.feed(match need {
            PullNeed::View => PullLoaded::View(view(&mut *c, user).await?),
            PullNeed::FirstSince { scopes, since } => {
                PullLoaded::FirstSince(sql::first_since(&mut *c, &scopes, since).await?)
            }
            PullNeed::Page(q) => PullLoaded::Page(sql::page(&mut *c, model, q).await?),
        })?;
    }
    Ok(pull.finish()?)
}
