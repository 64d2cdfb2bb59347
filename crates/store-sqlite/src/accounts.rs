//! The account statements of the SQLite backend.

use rusqlite::{params, Connection, OptionalExtension, Row};
use tidesync_protocol::time::Millis;
use tidesync_protocol::UserId;
use tidesync_store::{AuthState, Credentials, NewUser, StoreError, User};

use crate::error::driver;
use crate::sql::head;

fn user_id(s: &str) -> Result<UserId, StoreError> {
    s.parse()
        .map_err(|_| StoreError::Corrupt(format!("bad user id {s:?}")))
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
    Ok(n == 1)
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
    if head(c, user)?.is_none() {
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

/// Foreign keys cascade to records, sync_log and revoked_tokens.
pub fn delete_user(c: &Connection, user: UserId) -> Result<(), StoreError> {
    c.prepare_cached("DELETE FROM users WHERE id = ?")
        .map_err(driver)?
        .execute([user.to_string()])
        .map_err(driver)?;
    Ok(())
}
