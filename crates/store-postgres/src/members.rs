//! The members of shared spaces: the statements, and sharing a space (its
//! records move from the owner's personal scope into a scope of their own).
//! Who may do what is decided by `tidesync_engine::members`; adding a
//! member is accepting an invitation (`invitations.rs`).

use sqlx::postgres::PgConnection;
use tidesync_engine::members::{self, Access, Decision, Request};
use tidesync_protocol::entity::Model;
use tidesync_protocol::time::Millis;
use tidesync_protocol::uuid::Uuid;
use tidesync_protocol::{RecordId, Role, ScopeId, UserId};
use tidesync_store::{Member, MemberOp, MembersChanged, StoreError};

use crate::error::db;
use crate::sql::{role, roots_sql};
use crate::stmt;

pub(crate) fn not_found() -> StoreError {
    StoreError::NotFound("no such space".into())
}

/// The space as the user sees it: its scope (locked, when `lock`), whether
/// that scope is its own (shared), and the user's role. `None`: not
/// visible, or deleted.
pub(crate) async fn find_space(
    c: &mut PgConnection,
    model: Model,
    user: UserId,
    space: RecordId,
    lock: bool,
) -> Result<Option<(ScopeId, bool, Role)>, StoreError> {
    let sql = format!(
        "SELECT s.id, s.space_id IS NOT NULL, m.role FROM records r
         JOIN scopes s ON s.id = r.scope_id
         JOIN members m ON m.scope_id = r.scope_id AND m.user_id = $1
         WHERE r.id = $2 AND r.kind IN ({}) AND r.deleted_at IS NULL AND m.role <> 'removed'
         {}",
        roots_sql(model),
        if lock { "FOR UPDATE OF s" } else { "" }
    );
    let row: Option<(i64, bool, String)> = stmt::query_as(sqlx::AssertSqlSafe(sql))
        .bind(user.as_uuid())
        .bind(space.as_uuid())
        .fetch_optional(c)
        .await
        .map_err(db)?;
    row.map(|(s, shared, r)| Ok((ScopeId::new(s), shared, role(&r)?)))
        .transpose()
}

pub(crate) async fn personal(c: &mut PgConnection, user: UserId) -> Result<ScopeId, StoreError> {
    stmt::query_scalar(
        "SELECT m.scope_id FROM members m JOIN scopes s ON s.id = m.scope_id
         WHERE m.user_id = $1 AND m.role = 'owner' AND s.space_id IS NULL",
    )
    .bind(user.as_uuid())
    .fetch_optional(c)
    .await
    .map_err(db)?
    .map(ScopeId::new)
    .ok_or(StoreError::UserGone)
}

pub(crate) async fn list(c: &mut PgConnection, scope: ScopeId) -> Result<Vec<Member>, StoreError> {
    let rows: Vec<(Uuid, String, String, String, i64)> = stmt::query_as(
        "SELECT m.user_id, u.email, u.name, m.role, m.since FROM members m
         JOIN users u ON u.id = m.user_id
         WHERE m.scope_id = $1 AND m.role <> 'removed'
         ORDER BY CASE m.role WHEN 'owner' THEN 0 WHEN 'editor' THEN 1 ELSE 2 END, m.since, u.email",
    )
    .bind(scope.get())
    .fetch_all(c)
    .await
    .map_err(db)?;
    rows.into_iter()
        .map(|(u, email, name, r, since)| {
            Ok(Member {
                user: UserId::from_uuid(u),
                email,
                name,
                role: role(&r)?,
                since,
            })
        })
        .collect()
}

async fn me(c: &mut PgConnection, user: UserId) -> Result<Member, StoreError> {
    let row: Option<(String, String, i64)> =
        stmt::query_as("SELECT email, name, created_at FROM users WHERE id = $1")
            .bind(user.as_uuid())
            .fetch_optional(c)
            .await
            .map_err(db)?;
    let (email, name, since) = row.ok_or(StoreError::UserGone)?;
    Ok(Member {
        user,
        email,
        name,
        role: Role::Owner,
        since,
    })
}

pub async fn members(
    c: &mut PgConnection,
    model: Model,
    user: UserId,
    space: RecordId,
) -> Result<Vec<Member>, StoreError> {
    match find_space(&mut *c, model, user, space, false).await? {
        None => Err(not_found()),
        Some((scope, true, _)) => list(c, scope).await,
        // Unshared: its owner alone.
        Some((_, false, _)) => Ok(vec![me(c, user).await?]),
    }
}

pub(crate) async fn role_in(
    c: &mut PgConnection,
    scope: ScopeId,
    user: UserId,
) -> Result<Option<Role>, StoreError> {
    let r: Option<String> =
        stmt::query_scalar("SELECT role FROM members WHERE scope_id = $1 AND user_id = $2")
            .bind(scope.get())
            .bind(user.as_uuid())
            .fetch_optional(c)
            .await
            .map_err(db)?;
    r.map(|r| role(&r)).transpose()
}

async fn set_role(
    c: &mut PgConnection,
    scope: ScopeId,
    user: UserId,
    r: Role,
    now: Millis,
) -> Result<(), StoreError> {
    stmt::query(
        "INSERT INTO members (scope_id, user_id, role, since) VALUES ($1, $2, $3, $4)
         ON CONFLICT (scope_id, user_id) DO UPDATE SET role = excluded.role, since = excluded.since",
    )
    .bind(scope.get())
    .bind(user.as_uuid())
    .bind(r.as_str())
    .bind(now)
    .execute(c)
    .await
    .map_err(db)?;
    Ok(())
}

/// Moves a space (with its categories and their items, and its items) from
/// its owner's personal scope into a new scope, numbered 1..n there in their
/// old order. The owner's devices receive them again through the new scope.
/// The caller holds the personal scope's lock.
async fn share(
    c: &mut PgConnection,
    owner: UserId,
    from: ScopeId,
    space: RecordId,
    now: Millis,
) -> Result<ScopeId, StoreError> {
    let scope: i64 = stmt::query_scalar(
        "INSERT INTO scopes (space_id, version, created_at, founder) VALUES ($1, 0, $2, $3)
         RETURNING id",
    )
    .bind(space.as_uuid())
    .bind(now)
    .bind(owner.as_uuid())
    .fetch_one(&mut *c)
    .await
    .map_err(db)?;
    let moved: i64 = stmt::query_scalar(
        // The root and every record whose x-parent chain leads to it: those
        // naming it (`root_id`), and down the `parent_id` chains (a space's
        // categories' items, a note's check items).
        "WITH RECURSIVE under(id) AS (
             SELECT $2::uuid
             UNION
             SELECT id FROM records WHERE scope_id = $1 AND root_id = $2
             UNION
             SELECT r.id FROM under JOIN records r
               ON r.scope_id = $1 AND r.parent_id = under.id
         ), moving AS (
             SELECT id, row_number() OVER (ORDER BY version) AS v FROM records
             WHERE scope_id = $1 AND id IN (SELECT id FROM under)
         ), done AS (
             UPDATE records r SET scope_id = $3, version = moving.v
             FROM moving WHERE r.scope_id = $1 AND r.id = moving.id RETURNING 1
         )
         SELECT count(*) FROM done",
    )
    .bind(from.get())
    .bind(space.as_uuid())
    .bind(scope)
    .fetch_one(&mut *c)
    .await
    .map_err(db)?;
    stmt::query("UPDATE scopes SET version = $2 WHERE id = $1")
        .bind(scope)
        .bind(moved)
        .execute(&mut *c)
        .await
        .map_err(db)?;
    let scope = ScopeId::new(scope);
    set_role(c, scope, owner, Role::Owner, now).await?;
    Ok(scope)
}

/// A change to a space's members, inside the caller's transaction. The
/// space's scope is locked first, so membership changes and pushes into the
/// space take turns.
pub async fn change(
    c: &mut PgConnection,
    model: Model,
    user: UserId,
    space: RecordId,
    op: MemberOp,
    now: Millis,
) -> Result<MembersChanged, StoreError> {
    let (scope, shared, actor) = find_space(&mut *c, model, user, space, true)
        .await?
        .ok_or_else(not_found)?;
    let (target, request) = match &op {
        MemberOp::SetRole { member, role } => (*member, Request::SetRole(*role)),
        MemberOp::Remove { member } => (*member, Request::Remove),
        MemberOp::Transfer { to } => (*to, Request::Transfer),
    };
    let target_role = if target == user {
        Some(actor)
    } else if shared {
        role_in(&mut *c, scope, target).await?
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
    apply(c, user, target, space, scope, d, false, now).await
}

/// Carries out a decision of the rules, `user` acting on `target`: shares
/// the space first if asked, sets the roles, and says whose view changed.
/// A target `joining` (an acceptance) must not hold records with the
/// space's ids. The caller holds the lock of the space's scope.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn apply(
    c: &mut PgConnection,
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
        share(&mut *c, user, scope, space, now).await?
    } else {
        scope
    };
    if joining {
        // Ids are the client's: the same id in the newcomer's own data and
        // in the space would make one of them unreachable for them.
        let mine = personal(&mut *c, target).await?;
        let clash: Option<i32> = stmt::query_scalar(
            "SELECT 1 FROM records mine WHERE mine.scope_id = $1 AND mine.id IN
                 (SELECT id FROM records WHERE scope_id = $2) LIMIT 1",
        )
        .bind(mine.get())
        .bind(scope.get())
        .fetch_optional(&mut *c)
        .await
        .map_err(db)?;
        if clash.is_some() {
            return Err(StoreError::Conflict(
                "this user has records with the same ids as this space's".into(),
            ));
        }
    }
    if let Some(r) = d.actor {
        set_role(&mut *c, scope, user, r, now).await?;
    }
    if let Some(r) = d.target {
        set_role(&mut *c, scope, target, r, now).await?;
    }
    affected.sort();
    affected.dedup();
    let mut out = Vec::new();
    for u in affected {
        out.push((u, personal(&mut *c, u).await?));
    }
    Ok(MembersChanged {
        members: list(c, scope).await?,
        affected: out,
    })
}
