//! The account statements of the PostgreSQL backend.

use sqlx::postgres::{PgConnection, PgRow};
use sqlx::Row;
use tidesync_protocol::time::Millis;
use tidesync_protocol::UserId;
use tidesync_store::{AuthState, Credentials, NewUser, StoreError, User};

use crate::error::db;
use crate::stmt;

fn user_from(row: &PgRow) -> Result<User, StoreError> {
    Ok(User {
        id: UserId::from_uuid(row.try_get("id").map_err(db)?),
        email: row.try_get("email").map_err(db)?,
        name: row.try_get("name").map_err(db)?,
        created_at: row.try_get("created_at").map_err(db)?,
    })
}

/// The user and their personal scope; false when the email is taken.
pub async fn create_user(c: &mut PgConnection, u: &NewUser) -> Result<bool, StoreError> {
    // One statement: the user, then the scope and the membership only if
    // the user was inserted.
    let r = stmt::query(
        "WITH u AS (
             INSERT INTO users (id, email, name, password_hash, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT (email) DO NOTHING RETURNING id
         ), s AS (
             INSERT INTO scopes (space_id, version, created_at)
             SELECT NULL, 0, $5 FROM u RETURNING id
         )
         INSERT INTO members (scope_id, user_id, role, since)
         SELECT s.id, $1, 'owner', $5 FROM s",
    )
    .bind(u.id.as_uuid())
    .bind(&u.email)
    .bind(&u.name)
    .bind(&u.password_hash)
    .bind(u.created_at)
    .execute(c)
    .await
    .map_err(db)?;
    Ok(r.rows_affected() == 1)
}

pub async fn user_by_id(c: &mut PgConnection, id: UserId) -> Result<Option<User>, StoreError> {
    stmt::query("SELECT id, email, name, created_at FROM users WHERE id = $1")
        .bind(id.as_uuid())
        .fetch_optional(c)
        .await
        .map_err(db)?
        .as_ref()
        .map(user_from)
        .transpose()
}

pub async fn credentials_by_email(
    c: &mut PgConnection,
    email: &str,
) -> Result<Option<Credentials>, StoreError> {
    let row = stmt::query(
        "SELECT id, email, name, created_at, password_hash, token_generation FROM users WHERE email = $1",
    )
    .bind(email)
    .fetch_optional(c)
    .await
    .map_err(db)?;
    row.map(|r| {
        Ok(Credentials {
            user: user_from(&r)?,
            password_hash: r.try_get("password_hash").map_err(db)?,
            token_generation: r.try_get("token_generation").map_err(db)?,
        })
    })
    .transpose()
}

pub async fn auth_state(
    c: &mut PgConnection,
    id: UserId,
    now: Millis,
) -> Result<Option<AuthState>, StoreError> {
    // One round trip: the user and its live revocations.
    let Some(row) = stmt::query(
        "SELECT id, email, name, created_at, token_generation,
                ARRAY(SELECT jti FROM revoked_tokens WHERE user_id = $1 AND expires_at > $2) AS revoked
         FROM users WHERE id = $1",
    )
    .bind(id.as_uuid())
    .bind(now)
    .fetch_optional(c)
    .await
    .map_err(db)?
    else {
        return Ok(None);
    };
    Ok(Some(AuthState {
        user: user_from(&row)?,
        token_generation: row.try_get("token_generation").map_err(db)?,
        revoked: row.try_get("revoked").map_err(db)?,
    }))
}

pub async fn revoke_token(
    c: &mut PgConnection,
    user: UserId,
    jti: &str,
    expires_at: Millis,
    now: Millis,
) -> Result<bool, StoreError> {
    let exists: Option<i32> = stmt::query_scalar("SELECT 1 FROM users WHERE id = $1")
        .bind(user.as_uuid())
        .fetch_optional(&mut *c)
        .await
        .map_err(db)?;
    if exists.is_none() {
        return Err(StoreError::UserGone);
    }
    stmt::query("DELETE FROM revoked_tokens WHERE user_id = $1 AND expires_at <= $2")
        .bind(user.as_uuid())
        .bind(now)
        .execute(&mut *c)
        .await
        .map_err(db)?;
    let r = stmt::query(
        "INSERT INTO revoked_tokens (jti, user_id, expires_at) VALUES ($1, $2, $3)
         ON CONFLICT (jti) DO NOTHING",
    )
    .bind(jti)
    .bind(user.as_uuid())
    .bind(expires_at)
    .execute(&mut *c)
    .await
    .map_err(db)?;
    Ok(r.rows_affected() == 1)
}

pub async fn change_password(
    c: &mut PgConnection,
    user: UserId,
    hash: &str,
    now: Millis,
) -> Result<i64, StoreError> {
    stmt::query_scalar(
        "UPDATE users SET password_hash = $2, token_generation = token_generation + 1, updated_at = $3
         WHERE id = $1 RETURNING token_generation",
    )
    .bind(user.as_uuid())
    .bind(hash)
    .bind(now)
    .fetch_optional(c)
    .await
    .map_err(db)?
    .ok_or(StoreError::UserGone)
}

/// Deletes the user for good: the personal scope with its records; each
/// shared space it owns passes to its longest-standing editor (else viewer),
/// or goes with it when it has no other member. Foreign keys cascade to
/// memberships, sync_log and revoked_tokens.
pub async fn delete_user(
    c: &mut PgConnection,
    user: UserId,
    now: Millis,
) -> Result<(), StoreError> {
    let owned: Vec<(i64, bool)> = stmt::query_as(
        "SELECT s.id, s.space_id IS NOT NULL FROM members m JOIN scopes s ON s.id = m.scope_id
         WHERE m.user_id = $1 AND m.role = 'owner' FOR UPDATE OF s",
    )
    .bind(user.as_uuid())
    .fetch_all(&mut *c)
    .await
    .map_err(db)?;
    for (scope, shared) in owned {
        let heir: Option<tidesync_protocol::uuid::Uuid> = if shared {
            stmt::query_scalar(
                "SELECT user_id FROM members WHERE scope_id = $1 AND user_id <> $2
                   AND role IN ('editor', 'viewer')
                 ORDER BY role = 'editor' DESC, since LIMIT 1",
            )
            .bind(scope)
            .bind(user.as_uuid())
            .fetch_optional(&mut *c)
            .await
            .map_err(db)?
        } else {
            None
        };
        match heir {
            Some(heir) => {
                stmt::query("UPDATE members SET role = 'owner', since = $3 WHERE scope_id = $1 AND user_id = $2")
                    .bind(scope)
                    .bind(heir)
                    .bind(now)
                    .execute(&mut *c)
                    .await
                    .map_err(db)?;
            }
            None => {
                stmt::query("DELETE FROM scopes WHERE id = $1")
                    .bind(scope)
                    .execute(&mut *c)
                    .await
                    .map_err(db)?;
            }
        }
    }
    stmt::query("DELETE FROM users WHERE id = $1")
        .bind(user.as_uuid())
        .execute(&mut *c)
        .await
        .map_err(db)?;
    Ok(())
}
