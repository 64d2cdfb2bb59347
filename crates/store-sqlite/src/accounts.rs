//! The account statements of the SQLite backend.

use rusqlite::{params, Connection, OptionalExtension, Row};
use tidesync_protocol::time::Millis;
use tidesync_protocol::UserId;
use tidesync_store::{AuthState, Credentials, NewUser, StoreError, User};

use crate::error::driver;
use crate::sql::user_id;

fn exists(c: &Connection, user: UserId) -> Result<bool, StoreError> {
    c.prepare_cached("SELECT 1 FROM users WHERE id = ?")
        .map_err(driver)?
        .query_row([user.to_string()], |_| Ok(()))
        .optional()
        .map(|r| r.is_some())
        .map_err(driver)
}

const USER_COLUMNS: &str = "id, email, name, created_at";

fn user_row(r: &Row<'_>) -> rusqlite::Result<(String, String, String, i64)> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
}

fn to_user(
    (id, email, name, created_at): (String, String, String, i64),
) -> Result<User, StoreError> {
    Ok(User {
        id: user_id(&id)?,
        email,
        name,
        created_at,
    })
}

/// The user and their personal scope; false when the email is taken.
pub fn create_user(c: &Connection, u: &NewUser) -> Result<bool, StoreError> {
    let n = c
        .prepare_cached(
            "INSERT INTO users (id, email, name, password_hash, created_at, updated_at)
             VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (email) DO NOTHING",
        )
        .map_err(driver)?
        .execute(params![
            u.id.to_string(),
            u.email,
            u.name,
            u.password_hash,
            u.created_at,
            u.created_at
        ])
        .map_err(driver)?;
    if n == 0 {
        return Ok(false);
    }
    let scope: i64 = c
        .prepare_cached(
            "INSERT INTO scopes (space_id, version, created_at) VALUES (NULL, 0, ?) RETURNING id",
        )
        .map_err(driver)?
        .query_row([u.created_at], |r| r.get(0))
        .map_err(driver)?;
    c.prepare_cached(
        "INSERT INTO members (scope_id, user_id, role, since) VALUES (?, ?, 'owner', ?)",
    )
    .map_err(driver)?
    .execute(params![scope, u.id.to_string(), u.created_at])
    .map_err(driver)?;
    Ok(true)
}

pub fn user_by_id(c: &Connection, id: UserId) -> Result<Option<User>, StoreError> {
    c.prepare_cached(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = ?"))
        .map_err(driver)?
        .query_row([id.to_string()], user_row)
        .optional()
        .map_err(driver)?
        .map(to_user)
        .transpose()
}

pub fn credentials_by_email(
    c: &Connection,
    email: &str,
) -> Result<Option<Credentials>, StoreError> {
    let row = c
        .prepare_cached(&format!(
            "SELECT {USER_COLUMNS}, password_hash, token_generation FROM users WHERE email = ?"
        ))
        .map_err(driver)?
        .query_row([email], |r| Ok((user_row(r)?, r.get(4)?, r.get(5)?)))
        .optional()
        .map_err(driver)?;
    row.map(|(u, password_hash, token_generation)| {
        Ok(Credentials {
            user: to_user(u)?,
            password_hash,
            token_generation,
        })
    })
    .transpose()
}

pub fn auth_state(
    c: &Connection,
    id: UserId,
    now: Millis,
) -> Result<Option<AuthState>, StoreError> {
    let Some((u, token_generation)) = c
        .prepare_cached(&format!(
            "SELECT {USER_COLUMNS}, token_generation FROM users WHERE id = ?"
        ))
        .map_err(driver)?
        .query_row([id.to_string()], |r| {
            Ok((user_row(r)?, r.get::<_, i64>(4)?))
        })
        .optional()
        .map_err(driver)?
    else {
        return Ok(None);
    };
    let mut st = c
        .prepare_cached("SELECT jti FROM revoked_tokens WHERE user_id = ? AND expires_at > ?")
        .map_err(driver)?;
    let revoked = st
        .query_map(params![id.to_string(), now], |r| r.get(0))
        .map_err(driver)?
        .collect::<rusqlite::Result<Vec<String>>>()
        .map_err(driver)?;
    Ok(Some(AuthState {
        user: to_user(u)?,
        token_generation,
        revoked,
    }))
}

/// False when already revoked; `UserGone` when the user no longer exists
/// (a stream ticket of a deleted account: the foreign key would fail).
pub fn revoke_token(
    c: &Connection,
    user: UserId,
    jti: &str,
    expires_at: Millis,
    now: Millis,
) -> Result<bool, StoreError> {
    if !exists(c, user)? {
        return Err(StoreError::UserGone);
    }
    c.prepare_cached("DELETE FROM revoked_tokens WHERE user_id = ? AND expires_at <= ?")
        .map_err(driver)?
        .execute(params![user.to_string(), now])
        .map_err(driver)?;
    let n = c
        .prepare_cached(
            "INSERT INTO revoked_tokens (jti, user_id, expires_at) VALUES (?, ?, ?)
             ON CONFLICT (jti) DO NOTHING",
        )
        .map_err(driver)?
        .execute(params![jti, user.to_string(), expires_at])
        .map_err(driver)?;
    Ok(n == 1)
}

pub fn change_password(
    c: &Connection,
    user: UserId,
    hash: &str,
    now: Millis,
) -> Result<i64, StoreError> {
    c.prepare_cached(
        "UPDATE users SET password_hash = ?, token_generation = token_generation + 1, updated_at = ?
         WHERE id = ? RETURNING token_generation",
    )
    .map_err(driver)?
    .query_row(params![hash, now, user.to_string()], |r| r.get(0))
    .optional()
    .map_err(driver)?
    .ok_or(StoreError::UserGone)
}

/// Before [`delete_user`]: removes up to `batch` rows of what goes with the
/// account anyway, its personal scope's records, then its `sync_log`, so
/// that the last job (which deletes the rest, atomically) is short: one
/// job for 50,000 records held the writer for 451 ms. The account still
/// works meanwhile; a push of it in between adds what the last job removes.
/// Returns the rows removed: fewer than `batch` means nothing is left.
pub fn shed_user_rows(c: &Connection, user: UserId, batch: usize) -> Result<usize, StoreError> {
    let id = user.to_string();
    let n = c
        .prepare_cached(
            "DELETE FROM records WHERE rowid IN (
                 SELECT r.rowid FROM records r
                 JOIN members m ON m.scope_id = r.scope_id AND m.user_id = ? AND m.role = 'owner'
                 JOIN scopes s ON s.id = m.scope_id AND s.space_id IS NULL
                 LIMIT ?)",
        )
        .map_err(driver)?
        .execute(params![id, batch as i64])
        .map_err(driver)?;
    if n == batch {
        return Ok(n);
    }
    let logs = c
        .prepare_cached(
            "DELETE FROM sync_log WHERE rowid IN (
                 SELECT rowid FROM sync_log WHERE user_id = ? LIMIT ?)",
        )
        .map_err(driver)?
        .execute(params![id, (batch - n) as i64])
        .map_err(driver)?;
    Ok(n + logs)
}

/// Deletes the user for good: the personal scope with its records; each
/// shared space it owns passes to its longest-standing editor (else viewer),
/// or goes with it when it has no other member. Foreign keys cascade to
/// memberships, sync_log and revoked_tokens.
pub fn delete_user(c: &Connection, user: UserId, now: Millis) -> Result<(), StoreError> {
    let id = user.to_string();
    let owned: Vec<(i64, bool)> = {
        let mut st = c
            .prepare_cached(
                "SELECT s.id, s.space_id IS NOT NULL FROM members m JOIN scopes s ON s.id = m.scope_id
                 WHERE m.user_id = ? AND m.role = 'owner'",
            )
            .map_err(driver)?;
        let rows = st
            .query_map([&id], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(driver)?;
        rows.collect::<rusqlite::Result<_>>().map_err(driver)?
    };
    for (scope, shared) in owned {
        let heir: Option<String> = if shared {
            c.prepare_cached(
                "SELECT user_id FROM members WHERE scope_id = ? AND user_id != ?
                   AND role IN ('editor', 'viewer')
                 ORDER BY role = 'editor' DESC, since LIMIT 1",
            )
            .map_err(driver)?
            .query_row(params![scope, id], |r| r.get(0))
            .optional()
            .map_err(driver)?
        } else {
            None
        };
        match heir {
            Some(heir) => {
                c.prepare_cached(
                    "UPDATE members SET role = 'owner', since = ? WHERE scope_id = ? AND user_id = ?",
                )
                .map_err(driver)?
                .execute(params![now, scope, heir])
                .map_err(driver)?;
            }
            None => {
                c.prepare_cached("DELETE FROM scopes WHERE id = ?")
                    .map_err(driver)?
                    .execute([scope])
                    .map_err(driver)?;
            }
        }
    }
    c.prepare_cached("DELETE FROM users WHERE id = ?")
        .map_err(driver)?
        .execute([&id])
        .map_err(driver)?;
    Ok(())
}
