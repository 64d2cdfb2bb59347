//! Invitations to shared spaces: the statements. The rules are
//! `tidesync_engine::members::invitations`; the addition at acceptance is
//! `members::apply`, exactly what adding a member did before invitations.
//!
//! Locks, always in this order: the inviter's invitation turn (an advisory
//! lock, so the rate limit counts every instance's invitations exactly),
//! the space's scope (`find_space`), the invitation's row.

use sqlx::postgres::PgConnection;
use tidesync_engine::members::invitations::{
    self as rules, Counted, Invite, InviteFacts, Received,
};
use tidesync_engine::members::Access;
use tidesync_protocol::entity::Model;
use tidesync_protocol::invitations::InvitationStatus;
use tidesync_protocol::time::Millis;
use tidesync_protocol::uuid::Uuid;
use tidesync_protocol::{InvitationId, RecordId, Role, ScopeId, UserId};
use tidesync_store::{
    space_name, Accepted, Declined, Invitation, InvitationChanged, InviteLimits,
    ReceivedInvitation, StoreError, RATE_WINDOW_MS,
};

use crate::error::db;
use crate::members::{apply, find_space, not_found, personal, role_in};
use crate::sql::{role, roots_sql};
use crate::stmt;

/// The class of the advisory locks that serialise one user's invitations.
const INVITE_LOCK: i32 = 0x1a7e;

fn status(s: &str) -> Result<InvitationStatus, StoreError> {
    InvitationStatus::parse(s)
        .ok_or_else(|| StoreError::Corrupt(format!("invitation status {s:?}")))
}

fn no_such_invitation() -> StoreError {
    StoreError::NotFound("no such invitation".into())
}

type SentRow = (Uuid, Uuid, String, String, String, i64, i64);

const SENT: &str =
    "SELECT id, space_id, email, role, status, created_at, expires_at FROM invitations";

fn to_invitation(
    (id, space, email, r, s, created_at, expires_at): SentRow,
) -> Result<Invitation, StoreError> {
    Ok(Invitation {
        id: InvitationId::from_uuid(id),
        space: RecordId::from_uuid(space),
        email,
        role: role(&r)?,
        status: status(&s)?,
        created_at,
        expires_at,
    })
}

async fn by_id(c: &mut PgConnection, id: Uuid) -> Result<Invitation, StoreError> {
    let row: SentRow = stmt::query_as(sqlx::AssertSqlSafe(format!("{SENT} WHERE id = $1")))
        .bind(id)
        .fetch_one(c)
        .await
        .map_err(db)?;
    to_invitation(row)
}

async fn account(c: &mut PgConnection, email: &str) -> Result<Option<UserId>, StoreError> {
    let id: Option<Uuid> = stmt::query_scalar("SELECT id FROM users WHERE email = $1")
        .bind(email)
        .fetch_optional(c)
        .await
        .map_err(db)?;
    Ok(id.map(UserId::from_uuid))
}

async fn blocked(c: &mut PgConnection, user: UserId, space: RecordId) -> Result<bool, StoreError> {
    let hit: Option<i32> =
        stmt::query_scalar("SELECT 1 FROM invitation_blocks WHERE user_id = $1 AND space_id = $2")
            .bind(user.as_uuid())
            .bind(space.as_uuid())
            .fetch_optional(c)
            .await
            .map_err(db)?;
    Ok(hit.is_some())
}

/// Whom to poke about an invitation: the account with its email, unless
/// it blocked the space.
async fn to_poke(
    c: &mut PgConnection,
    email: &str,
    space: RecordId,
) -> Result<Vec<(UserId, ScopeId)>, StoreError> {
    match account(&mut *c, email).await? {
        Some(u) if !blocked(&mut *c, u, space).await? => Ok(vec![(u, personal(c, u).await?)]),
        _ => Ok(vec![]),
    }
}

fn counted((count, first): (i64, Option<i64>), leaves_after: Millis) -> Counted {
    Counted {
        count: count as u32,
        first_leaves_at: first.map(|t| t + leaves_after),
    }
}

#[allow(clippy::too_many_arguments)]
pub async fn invite(
    c: &mut PgConnection,
    model: Model,
    user: UserId,
    space: RecordId,
    email: &str,
    wanted: Role,
    limits: InviteLimits,
    now: Millis,
) -> Result<InvitationChanged, StoreError> {
    stmt::query("SELECT pg_advisory_xact_lock($1, hashtext($2))")
        .bind(INVITE_LOCK)
        .bind(user.to_string())
        .execute(&mut *c)
        .await
        .map_err(db)?;
    let (scope, shared, actor) = find_space(&mut *c, model, user, space, true)
        .await?
        .ok_or_else(not_found)?;
    let invitee = account(&mut *c, email).await?;
    let invitee_role = match invitee {
        Some(u) if shared && u != user => role_in(&mut *c, scope, u).await?,
        _ => None,
    };
    let pending: Option<(Uuid, i64)> = stmt::query_as(
        "SELECT id, expires_at FROM invitations
         WHERE inviter_id = $1 AND space_id = $2 AND email = $3 AND status = 'pending'",
    )
    .bind(user.as_uuid())
    .bind(space.as_uuid())
    .bind(email)
    .fetch_optional(&mut *c)
    .await
    .map_err(db)?;
    let (sent, in_space): ((i64, Option<i64>), (i64, Option<i64>)) = {
        let r: (i64, Option<i64>, i64, Option<i64>) = stmt::query_as(
            "SELECT count(*) FILTER (WHERE created_at > $4),
                    min(created_at) FILTER (WHERE created_at > $4),
                    count(*) FILTER (WHERE space_id = $2 AND status = 'pending' AND expires_at > $3 AND email <> $5),
                    min(expires_at) FILTER (WHERE space_id = $2 AND status = 'pending' AND expires_at > $3 AND email <> $5)
             FROM invitations WHERE inviter_id = $1 AND (created_at > $4 OR (space_id = $2 AND status = 'pending'))",
        )
        .bind(user.as_uuid())
        .bind(space.as_uuid())
        .bind(now)
        .bind(now - RATE_WINDOW_MS)
        .bind(email)
        .fetch_one(&mut *c)
        .await
        .map_err(db)?;
        ((r.0, r.1), (r.2, r.3))
    };
    let facts = InviteFacts {
        actor,
        to_self: invitee == Some(user),
        invitee: invitee_role,
        pending: pending.map(|p| p.1),
        sent: counted(sent, RATE_WINDOW_MS),
        pending_in_space: counted(in_space, 0),
        now,
    };
    let id = match (rules::invite(wanted, &facts, limits)?, pending) {
        (Invite::Refresh { expires_at, renew }, Some((id, _))) => {
            stmt::query(
                "UPDATE invitations SET role = $2, expires_at = $3,
                     created_at = CASE WHEN $4 THEN $5 ELSE created_at END WHERE id = $1",
            )
            .bind(id)
            .bind(wanted.as_str())
            .bind(expires_at)
            .bind(renew)
            .bind(now)
            .execute(&mut *c)
            .await
            .map_err(db)?;
            id
        }
        (Invite::Create { expires_at }, _) | (Invite::Refresh { expires_at, .. }, None) => {
            let id = InvitationId::random().as_uuid();
            stmt::query(
                "INSERT INTO invitations (id, space_id, inviter_id, email, role, status, created_at, expires_at)
                 VALUES ($1, $2, $3, $4, $5, 'pending', $6, $7)",
            )
            .bind(id)
            .bind(space.as_uuid())
            .bind(user.as_uuid())
            .bind(email)
            .bind(wanted.as_str())
            .bind(now)
            .bind(expires_at)
            .execute(&mut *c)
            .await
            .map_err(db)?;
            id
        }
    };
    Ok(InvitationChanged {
        invitation: by_id(&mut *c, id).await?,
        notify: to_poke(c, email, space).await?,
    })
}

type ReceivedRow = (Uuid, Uuid, String, i64, i64, String, String, String);

pub async fn received(
    c: &mut PgConnection,
    model: Model,
    user: UserId,
    now: Millis,
) -> Result<Vec<ReceivedInvitation>, StoreError> {
    // The inviter must still own the space (live, in a scope they own).
    let rows: Vec<ReceivedRow> = stmt::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT i.id, i.space_id, i.role, i.created_at, i.expires_at, u.name, u.email, r.data
         FROM users me
         JOIN invitations i ON i.email = me.email AND i.status = 'pending' AND i.expires_at > $2
         JOIN users u ON u.id = i.inviter_id
         JOIN members m ON m.user_id = i.inviter_id AND m.role = 'owner'
         JOIN records r ON r.scope_id = m.scope_id AND r.id = i.space_id
             AND r.kind IN ({}) AND r.deleted_at IS NULL
         WHERE me.id = $1 AND NOT EXISTS (SELECT 1 FROM invitation_blocks b
             WHERE b.user_id = me.id AND b.space_id = i.space_id)
         ORDER BY i.created_at, i.id",
        roots_sql(model)
    )))
    .bind(user.as_uuid())
    .bind(now)
    .fetch_all(c)
    .await
    .map_err(db)?;
    rows.into_iter()
        .map(
            |(id, space, r, created_at, expires_at, name, email, data)| {
                Ok(ReceivedInvitation {
                    id: InvitationId::from_uuid(id),
                    space: RecordId::from_uuid(space),
                    space_name: space_name(&data),
                    inviter_name: name,
                    inviter_email: email,
                    role: role(&r)?,
                    created_at,
                    expires_at,
                })
            },
        )
        .collect()
}

/// An invitation as the user answering it may see it (locked).
struct Answering {
    space: RecordId,
    role: Role,
    received: Received,
}

async fn answering(
    c: &mut PgConnection,
    user: UserId,
    id: InvitationId,
) -> Result<Option<Answering>, StoreError> {
    let row: Option<(Uuid, String, String, String, i64, String)> = stmt::query_as(
        "SELECT i.space_id, i.email, i.role, i.status, i.expires_at, me.email
         FROM invitations i, users me WHERE i.id = $1 AND me.id = $2 FOR UPDATE OF i",
    )
    .bind(id.as_uuid())
    .bind(user.as_uuid())
    .fetch_optional(&mut *c)
    .await
    .map_err(db)?;
    let Some((space, email, r, s, expires_at, mine)) = row else {
        return Ok(None);
    };
    let space = RecordId::from_uuid(space);
    Ok(Some(Answering {
        space,
        role: role(&r)?,
        received: Received {
            status: status(&s)?,
            expires_at,
            to_caller: email == mine,
            blocked: blocked(c, user, space).await?,
        },
    }))
}

async fn respond(
    c: &mut PgConnection,
    id: InvitationId,
    to: InvitationStatus,
    now: Millis,
) -> Result<(), StoreError> {
    stmt::query("UPDATE invitations SET status = $2, responded_at = $3 WHERE id = $1")
        .bind(id.as_uuid())
        .bind(to.as_str())
        .bind(now)
        .execute(c)
        .await
        .map_err(db)?;
    Ok(())
}

pub async fn accept(
    c: &mut PgConnection,
    model: Model,
    user: UserId,
    id: InvitationId,
    now: Millis,
) -> Result<Accepted, StoreError> {
    // Which space first, to take its scope's lock before the invitation's
    // (the order every invitation statement keeps); then the check, under
    // both locks.
    let target: Option<(Uuid, Uuid)> =
        stmt::query_as("SELECT space_id, inviter_id FROM invitations WHERE id = $1")
            .bind(id.as_uuid())
            .fetch_optional(&mut *c)
            .await
            .map_err(db)?;
    let (space, inviter) = target
        .map(|(s, i)| (RecordId::from_uuid(s), UserId::from_uuid(i)))
        .ok_or_else(no_such_invitation)?;
    let found = find_space(&mut *c, model, inviter, space, true).await?;
    let a = answering(&mut *c, user, id).await?;
    rules::answerable(a.as_ref().map(|a| &a.received), now)?;
    let a = a.ok_or_else(no_such_invitation)?;
    let space_access = match found {
        Some((scope, shared, actor)) => {
            let target = if shared {
                role_in(&mut *c, scope, user).await?
            } else {
                None
            };
            Some((
                scope,
                Access {
                    shared,
                    actor,
                    target,
                    target_is_actor: user == inviter,
                },
            ))
        }
        None => None,
    };
    let d = rules::accept(
        Some(&a.received),
        space_access.as_ref().map(|s| &s.1),
        a.role,
        now,
    )?;
    let (scope, _) = space_access.ok_or_else(no_such_invitation)?;
    let changed = apply(&mut *c, inviter, user, space, scope, d, true, now).await?;
    respond(c, id, InvitationStatus::Accepted, now).await?;
    Ok(Accepted {
        space,
        role: a.role,
        changed,
    })
}

pub async fn decline(
    c: &mut PgConnection,
    user: UserId,
    id: InvitationId,
    block: bool,
    now: Millis,
) -> Result<Declined, StoreError> {
    let a = answering(&mut *c, user, id).await?;
    rules::answerable(a.as_ref().map(|a| &a.received), now)?;
    let a = a.ok_or_else(no_such_invitation)?;
    respond(&mut *c, id, InvitationStatus::Declined, now).await?;
    if block {
        stmt::query(
            "INSERT INTO invitation_blocks (user_id, space_id, created_at) VALUES ($1, $2, $3)
             ON CONFLICT DO NOTHING",
        )
        .bind(user.as_uuid())
        .bind(a.space.as_uuid())
        .bind(now)
        .execute(c)
        .await
        .map_err(db)?;
    }
    Ok(Declined {
        id,
        space: a.space,
        blocked: block,
    })
}

pub async fn sent(
    c: &mut PgConnection,
    model: Model,
    user: UserId,
    space: RecordId,
    now: Millis,
) -> Result<Vec<Invitation>, StoreError> {
    let (_, _, actor) = find_space(&mut *c, model, user, space, false)
        .await?
        .ok_or_else(not_found)?;
    rules::list_sent(actor)?;
    let rows: Vec<SentRow> = stmt::query_as(sqlx::AssertSqlSafe(format!(
        "{SENT} WHERE inviter_id = $1 AND space_id = $2 AND status = 'pending' AND expires_at > $3
         ORDER BY created_at, id"
    )))
    .bind(user.as_uuid())
    .bind(space.as_uuid())
    .bind(now)
    .fetch_all(c)
    .await
    .map_err(db)?;
    rows.into_iter().map(to_invitation).collect()
}

pub async fn revoke(
    c: &mut PgConnection,
    model: Model,
    user: UserId,
    space: RecordId,
    id: InvitationId,
    now: Millis,
) -> Result<InvitationChanged, StoreError> {
    let (_, _, actor) = find_space(&mut *c, model, user, space, true)
        .await?
        .ok_or_else(not_found)?;
    let found: Option<(String, i64, String)> = stmt::query_as(
        "SELECT status, expires_at, email FROM invitations
         WHERE id = $1 AND inviter_id = $2 AND space_id = $3 FOR UPDATE",
    )
    .bind(id.as_uuid())
    .bind(user.as_uuid())
    .bind(space.as_uuid())
    .fetch_optional(&mut *c)
    .await
    .map_err(db)?;
    let state = match &found {
        Some((s, expires_at, _)) => Some((status(s)?, *expires_at)),
        None => None,
    };
    rules::revoke(actor, state, now)?;
    let (_, _, email) = found.ok_or_else(no_such_invitation)?;
    respond(&mut *c, id, InvitationStatus::Revoked, now).await?;
    Ok(InvitationChanged {
        invitation: by_id(&mut *c, id.as_uuid()).await?,
        notify: to_poke(c, &email, space).await?,
    })
}
