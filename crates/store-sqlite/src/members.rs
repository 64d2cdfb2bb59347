//! The members of shared spaces: the statements, and sharing a space (its
//! records move from the owner's personal scope into a scope of their own).
//! Who may do what is decided by `tidesync_engine::members`; adding a
//! member is accepting an invitation (`invitations.rs`).

use rusqlite::{params, Connection, OptionalExtension};
use tidesync_engine::members::{self, Access, Decision, Request};
use tidesync_protocol::entity::Model;
use tidesync_protocol::time::Millis;
use tidesync_protocol::{RecordId, Role, ScopeId, UserId};
use tidesync_store::{Member, MemberOp, MembersChanged, StoreError};

use crate::error::driver;
use crate::sql::{role, roots_sql, user_id};

/// The space as the user sees it: its scope, whether that scope is its own
/// (shared), and the user's role there. `None`: not visible, or deleted.
pub(crate) fn find_space(
    c: &Connection,
    model: Model,
    user: UserId,
    space: RecordId,
) -> Result<Option<(ScopeId, bool, Role)>, StoreError> {
    c.prepare_cached(&format!(
        "SELECT r.scope_id, s.space_id IS NOT NULL, m.role FROM records r
         JOIN scopes s ON s.id = r.scope_id
         JOIN members m ON m.scope_id = r.scope_id AND m.user_id = ?
         WHERE r.id = ? AND r.kind IN ({}) AND r.deleted_at IS NULL AND m.role != 'removed'",
        roots_sql(model)
    ))
    .map_err(driver)?
    .query_row(params![user.to_string(), space.to_string()], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, bool>(1)?,
            r.get::<_, String>(2)?,
        ))
    })
    .optional()
    .map_err(driver)?
    .map(|(s, shared, r)| Ok((ScopeId::new(s), shared, role(&r)?)))
    .transpose()
}

pub(crate) fn not_found() -> StoreError {
    StoreError::NotFound("no such space".into())
}

pub(crate) fn personal(c: &Connection, user: UserId) -> Result<ScopeId, StoreError> {
    c.prepare_cached(
        "SELECT m.scope_id FROM members m JOIN scopes s ON s.id = m.scope_id
         WHERE m.user_id = ? AND m.role = 'owner' AND s.space_id IS NULL",
    )
    .map_err(driver)?
    .query_row([user.to_string()], |r| r.get::<_, i64>(0))
    .optional()
    .map_err(driver)?
    .map(ScopeId::new)
    .ok_or(StoreError::UserGone)
}

pub(crate) fn list(c: &Connection, scope: ScopeId) -> Result<Vec<Member>, StoreError> {
    let mut st = c
        .prepare_cached(
            "SELECT m.user_id, u.email, u.name, m.role, m.since FROM members m
             JOIN users u ON u.id = m.user_id
             WHERE m.scope_id = ? AND m.role != 'removed'
             ORDER BY CASE m.role WHEN 'owner' THEN 0 WHEN 'editor' THEN 1 ELSE 2 END, m.since, u.email",
        )
        .map_err(driver)?;
    let mut rows = st.query([scope.get()]).map_err(driver)?;
    let mut out = Vec::new();
    while let Some(r) = rows.next().map_err(driver)? {
        out.push(Member {
            user: user_id(&r.get::<_, String>(0).map_err(driver)?)?,
            email: r.get(1).map_err(driver)?,
            name: r.get(2).map_err(driver)?,
            role: role(&r.get::<_, String>(3).map_err(driver)?)?,
            since: r.get(4).map_err(driver)?,
        });
    }
    Ok(out)
}

fn me(c: &Connection, user: UserId) -> Result<Member, StoreError> {
    c.prepare_cached("SELECT email, name, created_at FROM users WHERE id = ?")
        .map_err(driver)?
        .query_row([user.to_string()], |r| {
            Ok(Member {
                user,
                email: r.get(0)?,
                name: r.get(1)?,
                role: Role::Owner,
                since: r.get(2)?,
            })
        })
        .optional()
        .map_err(driver)?
        .ok_or(StoreError::UserGone)
}

pub fn members(
    c: &Connection,
    model: Model,
    user: UserId,
    space: RecordId,
) -> Result<Vec<Member>, StoreError> {
    match find_space(c, model, user, space)? {
        None => Err(not_found()),
        Some((scope, true, _)) => list(c, scope),
        // Unshared: its owner alone.
        Some((_, false, _)) => Ok(vec![me(c, user)?]),
    }
}

pub(crate) fn role_in(
    c: &Connection,
    scope: ScopeId,
    user: UserId,
) -> Result<Option<Role>, StoreError> {
    c.prepare_cached("SELECT role FROM members WHERE scope_id = ? AND user_id = ?")
        .map_err(driver)?
        .query_row(params![scope.get(), user.to_string()], |r| {
            r.get::<_, String>(0)
        })
        .optional()
        .map_err(driver)?
        .map(|r| role(&r))
        .transpose()
}

fn set_role(
    c: &Connection,
    scope: ScopeId,
    user: UserId,
    r: Role,
    now: Millis,
) -> Result<(), StoreError> {
    c.prepare_cached(
        "INSERT INTO members (scope_id, user_id, role, since) VALUES (?, ?, ?, ?)
         ON CONFLICT (scope_id, user_id) DO UPDATE SET role = excluded.role, since = excluded.since",
    )
    .map_err(driver)?
    .execute(params![scope.get(), user.to_string(), r.as_str(), now])
    .map_err(driver)?;
    Ok(())
}

/// Moves a space (with its categories and their items, and its items) from
/// its owner's personal scope into a new scope, numbered 1..n there in their
/// old order. The owner's devices receive them again through the new scope.
fn share(
    c: &Connection,
    owner: UserId,
    from: ScopeId,
    space: RecordId,
    now: Millis,
) -> Result<ScopeId, StoreError> {
    let scope: i64 = c
        .prepare_cached(
            "INSERT INTO scopes (space_id, version, created_at, founder) VALUES (?, 0, ?, ?)
             RETURNING id",
        )
        .map_err(driver)?
        .query_row(params![space.to_string(), now, owner.to_string()], |r| {
            r.get(0)
        })
        .map_err(driver)?;
    let s = space.to_string();
    let ids: Vec<String> = {
        let mut st = c
            .prepare_cached(
                // The root and every record whose x-parent chain leads to
                // it: those naming it (`root_id`), and down the `parent_id`
                // chains (a space's categories' items, a note's check items).
                "WITH RECURSIVE under(id) AS (
                     SELECT ?2
                     UNION
                     SELECT id FROM records WHERE scope_id = ?1 AND root_id = ?2
                     UNION
                     SELECT r.id FROM under JOIN records r
                       ON r.scope_id = ?1 AND r.parent_id = under.id
                 )
                 SELECT id FROM records WHERE scope_id = ?1 AND id IN (SELECT id FROM under)
                 ORDER BY version",
            )
            .map_err(driver)?;
        let rows = st
            .query_map(params![from.get(), s], |r| r.get(0))
            .map_err(driver)?;
        rows.collect::<rusqlite::Result<_>>().map_err(driver)?
    };
    let mut st = c
        .prepare_cached(
            "UPDATE records SET scope_id = ?, version = ? WHERE scope_id = ? AND id = ?",
        )
        .map_err(driver)?;
    for (n, id) in ids.iter().enumerate() {
        st.execute(params![scope, n as i64 + 1, from.get(), id])
            .map_err(driver)?;
    }
    c.prepare_cached("UPDATE scopes SET version = ? WHERE id = ?")
        .map_err(driver)?
        .execute(params![ids.len() as i64, scope])
        .map_err(driver)?;
    let scope = ScopeId::new(scope);
    set_role(c, scope, owner, Role::Owner, now)?;
    Ok(scope)
}

pub fn change(
    c: &Connection,
    model: Model,
    user: UserId,
    space: RecordId,
    op: MemberOp,
    now: Millis,
) -> Result<MembersChanged, StoreError> {
    let (scope, shared, actor) = find_space(c, model, user, space)?.ok_or_else(not_found)?;
    let (target, request) = match &op {
        MemberOp::SetRole { member, role } => (*member, Request::SetRole(*role)),
        MemberOp::Remove { member } => (*member, Request::Remove),
        MemberOp::Transfer { to } => (*to, Request::Transfer),
    };
    let target_role = if target == user {
        Some(actor)
    } else if shared {
        role_in(c, scope, target)?
    } else {
        None
    };
    let d = members::decide(
        request,
        &Access {
            shared,
            actor,
            target: target_role,
            target_is_actor: target == user,
        },
    )?;
    apply(c, user, target, space, scope, d, false, now)
}

/// Carries out a decision of the rules, `user` acting on `target`: shares
/// the space first if asked, sets the roles, and says whose view changed.
/// A target `joining` (an acceptance) must not hold records with the
/// space's ids.
#[allow(clippy::too_many_arguments)]
pub(crate) fn apply(
    c: &Connection,
    user: UserId,
    target: UserId,
    space: RecordId,
    scope: ScopeId,
    d: Decision,
    joining: bool,
    now: Millis,
) -> Result<MembersChanged, StoreError> {
    let mut affected = vec![target];
    let scope = if d.share_first {
        affected.push(user);
        share(c, user, scope, space, now)?
    } else {
        scope
    };
    if joining {
        // Ids are the client's: the same id in the newcomer's own data and
        // in the space would make one of them unreachable for them.
        let clash: Option<i64> = c
            .prepare_cached(
                "SELECT 1 FROM records mine WHERE mine.scope_id = ? AND mine.id IN
                     (SELECT id FROM records WHERE scope_id = ?) LIMIT 1",
            )
            .map_err(driver)?
            .query_row(params![personal(c, target)?.get(), scope.get()], |r| {
                r.get(0)
            })
            .optional()
            .map_err(driver)?;
        if clash.is_some() {
            return Err(StoreError::Conflict(
                "this user has records with the same ids as this space's".into(),
            ));
        }
    }
    if let Some(r) = d.actor {
        set_role(c, scope, user, r, now)?;
    }
    if let Some(r) = d.target {
        set_role(c, scope, target, r, now)?;
    }
    let mut out = Vec::new();
    affected.sort();
    affected.dedup();
    for u in affected {
        out.push((u, personal(c, u)?));
    }
    Ok(MembersChanged {
        members: list(c, scope)?,
        affected: out,
    })
}
