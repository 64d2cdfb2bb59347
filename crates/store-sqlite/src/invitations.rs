//! Invitations to shared spaces: the statements. The rules are
//! `tidesync_engine::members::invitations`; the addition at acceptance is
//! `members::apply`, exactly what adding a member did before invitations.

use rusqlite::{params, Connection, OptionalExtension};
use tidesync_engine::members::invitations::{
    self as rules, Counted, Invite, InviteFacts, Received,
};
use tidesync_engine::members::Access;
use tidesync_protocol::entity::Model;
use tidesync_protocol::invitations::InvitationStatus;
use tidesync_protocol::time::Millis;
use tidesync_protocol::{InvitationId, RecordId, Role, ScopeId, UserId};
use tidesync_store::{
    space_name, Accepted, Declined, Invitation, InvitationChanged, InviteLimits,
    ReceivedInvitation, StoreError, RATE_WINDOW_MS,
};

use crate::error::driver;
use crate::members::{apply, find_space, not_found, personal, role_in};
use crate::sql::{record_id, role, roots_sql, user_id};

fn corrupt(what: &str, v: &str) -> StoreError {
    StoreError::Corrupt(format!("bad {what} {v:?}"))
}

fn invitation_id(s: &str) -> Result<InvitationId, StoreError> {
    s.parse().map_err(|_| corrupt("invitation id", s))
}

fn status(s: &str) -> Result<InvitationStatus, StoreError> {
    InvitationStatus::parse(s).ok_or_else(|| corrupt("invitation status", s))
}

fn no_such_invitation() -> StoreError {
    StoreError::NotFound("no such invitation".into())
}

type SentRow = (String, String, String, String, String, i64, i64);

const SENT: &str =
    "SELECT id, space_id, email, role, status, created_at, expires_at FROM invitations";

fn sent_row(r: &rusqlite::Row) -> rusqlite::Result<SentRow> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
    ))
}

fn to_invitation(
    (id, space, email, r, s, created_at, expires_at): SentRow,
) -> Result<Invitation, StoreError> {
    Ok(Invitation {
        id: invitation_id(&id)?,
        space: record_id(&space)?,
        email,
        role: role(&r)?,
        status: status(&s)?,
        created_at,
        expires_at,
    })
}

fn by_id(c: &Connection, id: &str) -> Result<Invitation, StoreError> {
    let row = c
        .prepare_cached(&format!("{SENT} WHERE id = ?"))
        .map_err(driver)?
        .query_row([id], sent_row)
        .map_err(driver)?;
    to_invitation(row)
}

fn account(c: &Connection, email: &str) -> Result<Option<UserId>, StoreError> {
    c.prepare_cached("SELECT id FROM users WHERE email = ?")
        .map_err(driver)?
        .query_row([email], |r| r.get::<_, String>(0))
        .optional()
        .map_err(driver)?
        .map(|id| user_id(&id))
        .transpose()
}

fn email_of(c: &Connection, user: UserId) -> Result<String, StoreError> {
    c.prepare_cached("SELECT email FROM users WHERE id = ?")
        .map_err(driver)?
        .query_row([user.to_string()], |r| r.get(0))
        .optional()
        .map_err(driver)?
        .ok_or(StoreError::UserGone)
}

fn blocked(c: &Connection, user: UserId, space: RecordId) -> Result<bool, StoreError> {
    c.prepare_cached("SELECT 1 FROM invitation_blocks WHERE user_id = ? AND space_id = ?")
        .map_err(driver)?
        .query_row(params![user.to_string(), space.to_string()], |_| Ok(()))
        .optional()
        .map(|r| r.is_some())
        .map_err(driver)
}

/// Whom to poke about an invitation: the account with its email, unless
/// it blocked the space.
fn to_poke(
    c: &Connection,
    email: &str,
    space: RecordId,
) -> Result<Vec<(UserId, ScopeId)>, StoreError> {
    match account(c, email)? {
        Some(u) if !blocked(c, u, space)? => Ok(vec![(u, personal(c, u)?)]),
        _ => Ok(vec![]),
    }
}

fn counted(
    c: &Connection,
    sql: &str,
    args: impl rusqlite::Params,
    leaves_after: Millis,
) -> Result<Counted, StoreError> {
    let (count, first): (i64, Option<i64>) = c
        .prepare_cached(sql)
        .map_err(driver)?
        .query_row(args, |r| Ok((r.get(0)?, r.get(1)?)))
        .map_err(driver)?;
    Ok(Counted {
        count: count as u32,
        first_leaves_at: first.map(|t| t + leaves_after),
    })
}

#[allow(clippy::too_many_arguments)]
pub fn invite(
    c: &Connection,
    model: Model,
    user: UserId,
    space: RecordId,
    email: &str,
    wanted: Role,
    limits: InviteLimits,
    now: Millis,
) -> Result<InvitationChanged, StoreError> {
    let (scope, shared, actor) = find_space(c, model, user, space)?.ok_or_else(not_found)?;
    let (me, s) = (user.to_string(), space.to_string());
    let invitee = account(c, email)?;
    let invitee_role = match invitee {
        Some(u) if shared && u != user => role_in(c, scope, u)?,
        _ => None,
    };
    let pending: Option<(String, i64)> = c
        .prepare_cached(
            "SELECT id, expires_at FROM invitations
             WHERE inviter_id = ? AND space_id = ? AND email = ? AND status = 'pending'",
        )
        .map_err(driver)?
        .query_row(params![me, s, email], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()
        .map_err(driver)?;
    let sent = counted(
        c,
        "SELECT count(*), min(created_at) FROM invitations WHERE inviter_id = ? AND created_at > ?",
        params![me, now - RATE_WINDOW_MS],
        RATE_WINDOW_MS,
    )?;
    let pending_in_space = counted(
        c,
        "SELECT count(*), min(expires_at) FROM invitations WHERE inviter_id = ? AND space_id = ?
             AND status = 'pending' AND expires_at > ? AND email <> ?",
        params![me, s, now, email],
        0,
    )?;
    let facts = InviteFacts {
        actor,
        to_self: invitee == Some(user),
        invitee: invitee_role,
        pending: pending.as_ref().map(|p| p.1),
        sent,
        pending_in_space,
        now,
    };
    let id = match (rules::invite(wanted, &facts, limits)?, pending) {
        (Invite::Refresh { expires_at, renew }, Some((id, _))) => {
            c.prepare_cached(
                "UPDATE invitations SET role = ?, expires_at = ?,
                     created_at = CASE WHEN ? THEN ? ELSE created_at END WHERE id = ?",
            )
            .map_err(driver)?
            .execute(params![wanted.as_str(), expires_at, renew, now, id])
            .map_err(driver)?;
            id
        }
        (Invite::Create { expires_at }, _) | (Invite::Refresh { expires_at, .. }, None) => {
            let id = InvitationId::random().to_string();
            c.prepare_cached(
                "INSERT INTO invitations (id, space_id, inviter_id, email, role, status, created_at, expires_at)
                 VALUES (?, ?, ?, ?, ?, 'pending', ?, ?)",
            )
            .map_err(driver)?
            .execute(params![id, s, me, email, wanted.as_str(), now, expires_at])
            .map_err(driver)?;
            id
        }
    };
    Ok(InvitationChanged {
        invitation: by_id(c, &id)?,
        notify: to_poke(c, email, space)?,
    })
}

pub fn received(
    c: &Connection,
    model: Model,
    user: UserId,
    now: Millis,
) -> Result<Vec<ReceivedInvitation>, StoreError> {
    // The inviter must still own the space (live, in a scope they own).
    let mut st = c
        .prepare_cached(&format!(
            "SELECT i.id, i.space_id, i.role, i.created_at, i.expires_at, u.name, u.email, r.data
             FROM users me
             JOIN invitations i ON i.email = me.email AND i.status = 'pending' AND i.expires_at > ?2
             JOIN users u ON u.id = i.inviter_id
             JOIN members m ON m.user_id = i.inviter_id AND m.role = 'owner'
             JOIN records r ON r.scope_id = m.scope_id AND r.id = i.space_id
                 AND r.kind IN ({}) AND r.deleted_at IS NULL
             WHERE me.id = ?1 AND NOT EXISTS (SELECT 1 FROM invitation_blocks b
                 WHERE b.user_id = me.id AND b.space_id = i.space_id)
             ORDER BY i.created_at, i.id",
            roots_sql(model)
        ))
        .map_err(driver)?;
    let mut rows = st.query(params![user.to_string(), now]).map_err(driver)?;
    let mut out = Vec::new();
    while let Some(r) = rows.next().map_err(driver)? {
        let get = |i| r.get::<_, String>(i).map_err(driver);
        out.push(ReceivedInvitation {
            id: invitation_id(&get(0)?)?,
            space: record_id(&get(1)?)?,
            role: role(&get(2)?)?,
            created_at: r.get(3).map_err(driver)?,
            expires_at: r.get(4).map_err(driver)?,
            inviter_name: get(5)?,
            inviter_email: get(6)?,
            space_name: space_name(&get(7)?),
        });
    }
    Ok(out)
}

/// An invitation as the user answering it may see it; `None`, with the
/// same 404 whatever the reason, when they may not.
struct Answering {
    space: RecordId,
    inviter: UserId,
    role: Role,
    received: Received,
}

fn answering(
    c: &Connection,
    user: UserId,
    id: InvitationId,
) -> Result<Option<Answering>, StoreError> {
    let row: Option<(String, String, String, String, String, i64)> = c
        .prepare_cached(
            "SELECT space_id, inviter_id, email, role, status, expires_at FROM invitations WHERE id = ?",
        )
        .map_err(driver)?
        .query_row([id.to_string()], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?))
        })
        .optional()
        .map_err(driver)?;
    let Some((space, inviter, email, r, s, expires_at)) = row else {
        return Ok(None);
    };
    let space = record_id(&space)?;
    Ok(Some(Answering {
        space,
        inviter: user_id(&inviter)?,
        role: role(&r)?,
        received: Received {
            status: status(&s)?,
            expires_at,
            to_caller: email == email_of(c, user)?,
            blocked: blocked(c, user, space)?,
        },
    }))
}

fn respond(
    c: &Connection,
    id: InvitationId,
    to: InvitationStatus,
    now: Millis,
) -> Result<(), StoreError> {
    c.prepare_cached("UPDATE invitations SET status = ?, responded_at = ? WHERE id = ?")
        .map_err(driver)?
        .execute(params![to.as_str(), now, id.to_string()])
        .map_err(driver)?;
    Ok(())
}

pub fn accept(
    c: &Connection,
    model: Model,
    user: UserId,
    id: InvitationId,
    now: Millis,
) -> Result<Accepted, StoreError> {
    let found = answering(c, user, id)?;
    rules::answerable(found.as_ref().map(|a| &a.received), now)?;
    let a = found.ok_or_else(no_such_invitation)?;
    let space = match find_space(c, model, a.inviter, a.space)? {
        Some((scope, shared, actor)) => {
            let target = if shared {
                role_in(c, scope, user)?
            } else {
                None
            };
            Some((
                scope,
                Access {
                    shared,
                    actor,
                    target,
                    target_is_actor: user == a.inviter,
                },
            ))
        }
        None => None,
    };
    let d = rules::accept(Some(&a.received), space.as_ref().map(|s| &s.1), a.role, now)?;
    let (scope, _) = space.ok_or_else(no_such_invitation)?;
    let changed = apply(c, a.inviter, user, a.space, scope, d, true, now)?;
    respond(c, id, InvitationStatus::Accepted, now)?;
    Ok(Accepted {
        space: a.space,
        role: a.role,
        changed,
    })
}

pub fn decline(
    c: &Connection,
    user: UserId,
    id: InvitationId,
    block: bool,
    now: Millis,
) -> Result<Declined, StoreError> {
    let found = answering(c, user, id)?;
    rules::answerable(found.as_ref().map(|a| &a.received), now)?;
    let a = found.ok_or_else(no_such_invitation)?;
    respond(c, id, InvitationStatus::Declined, now)?;
    if block {
        c.prepare_cached(
            "INSERT INTO invitation_blocks (user_id, space_id, created_at) VALUES (?, ?, ?)
             ON CONFLICT DO NOTHING",
        )
        .map_err(driver)?
        .execute(params![user.to_string(), a.space.to_string(), now])
        .map_err(driver)?;
    }
    Ok(Declined {
        id,
        space: a.space,
        blocked: block,
    })
}

pub fn sent(
    c: &Connection,
    model: Model,
    user: UserId,
    space: RecordId,
    now: Millis,
) -> Result<Vec<Invitation>, StoreError> {
    let (_, _, actor) = find_space(c, model, user, space)?.ok_or_else(not_found)?;
    rules::list_sent(actor)?;
    let mut st = c
        .prepare_cached(&format!(
            "{SENT} WHERE inviter_id = ? AND space_id = ? AND status = 'pending' AND expires_at > ?
             ORDER BY created_at, id"
        ))
        .map_err(driver)?;
    let rows = st
        .query_map(params![user.to_string(), space.to_string(), now], sent_row)
        .map_err(driver)?;
    rows.map(|r| to_invitation(r.map_err(driver)?)).collect()
}

pub fn revoke(
    c: &Connection,
    model: Model,
    user: UserId,
    space: RecordId,
    id: InvitationId,
    now: Millis,
) -> Result<InvitationChanged, StoreError> {
    let (_, _, actor) = find_space(c, model, user, space)?.ok_or_else(not_found)?;
    let found: Option<(String, i64, String)> = c
        .prepare_cached(
            "SELECT status, expires_at, email FROM invitations
             WHERE id = ? AND inviter_id = ? AND space_id = ?",
        )
        .map_err(driver)?
        .query_row(
            params![id.to_string(), user.to_string(), space.to_string()],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()
        .map_err(driver)?;
    let state = match &found {
        Some((s, expires_at, _)) => Some((status(s)?, *expires_at)),
        None => None,
    };
    rules::revoke(actor, state, now)?;
    let (_, _, email) = found.ok_or_else(no_such_invitation)?;
    respond(c, id, InvitationStatus::Revoked, now)?;
    Ok(InvitationChanged {
        invitation: by_id(c, &id.to_string())?,
        notify: to_poke(c, &email, space)?,
    })
}
