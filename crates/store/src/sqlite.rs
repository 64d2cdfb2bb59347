//! The embedded backend. One writer connection (SQLite allows one writer at a
//! time anyway; queueing in the pool is cheaper than SQLITE_BUSY retries) and
//! a few reader connections, which WAL lets run beside the writer.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::Row;
use tidesync_protocol::cursor::CursorStart;
use tidesync_protocol::entity::EntityType;
use tidesync_protocol::time::Millis;
use tidesync_protocol::UserId;
use uuid::Uuid;

use crate::sqlite_writer::Writer;
use crate::sync::{self, PulledRecord, PushInput, SyncOutput, SyncRead};
use crate::{sqlite_file, AuthState, Backend, Credentials, NewUser, Store, StoreError, User};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);
const READERS: u32 = 4;

pub struct SqliteStore {
    /// Account writes and migrations (rare).
    writer: SqlitePool,
    reader: SqlitePool,
    /// Pushes: the hot write path, on a thread of its own.
    pushes: Writer,
}

impl SqliteStore {
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let file = sqlite_file(url).ok_or_else(|| {
            StoreError::Config(
                "a SQLite DATABASE_URL must name a file, e.g. sqlite://data/tidesync.db".into(),
            )
        })?;
        if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
            create_private_dir(dir)
                .map_err(|e| StoreError::Config(format!("cannot create {}: {e}", dir.display())))?;
        }
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| StoreError::Config(format!("invalid SQLite URL: {e}")))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: a commit is on disk before we acknowledge it, so an acked
            // operation survives power loss, not only a process crash.
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true);
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options.clone())
            .await?;
        let reader = SqlitePoolOptions::new()
            .max_connections(READERS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await?;
        let pushes = Writer::open(&file, BUSY_TIMEOUT)?;
        Ok(SqliteStore {
            writer,
            reader,
            pushes,
        })
    }
}

/// Creates a missing folder readable by its owner only: it will hold password
/// hashes and every user's data. An existing folder is left as it is.
pub fn create_private_dir(dir: &std::path::Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

fn parse_uuid(s: &str) -> Result<UserId, StoreError> {
    s.parse()
        .map_err(|_| StoreError::Corrupt(format!("bad uuid {s:?}")))
}

fn user_from_row(row: &SqliteRow) -> Result<User, StoreError> {
    Ok(User {
        id: parse_uuid(row.try_get::<&str, _>("id")?)?,
        email: row.try_get("email")?,
        name: row.try_get("name")?,
        created_at: row.try_get("created_at")?,
    })
}

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> Backend {
        Backend::Sqlite
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        MIGRATOR.run(&self.writer).await?;
        Ok(())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.reader).await?;
        Ok(())
    }

    async fn create_user(&self, u: NewUser) -> Result<User, StoreError> {
        let res = sqlx::query(
            "INSERT INTO users (id, email, name, password_hash, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?5) ON CONFLICT (email) DO NOTHING",
        )
        .bind(u.id.to_string())
        .bind(&u.email)
        .bind(&u.name)
        .bind(&u.password_hash)
        .bind(u.created_at)
        .execute(&self.writer)
        .await?;
        if res.rows_affected() == 0 {
            return Err(StoreError::EmailTaken);
        }
        Ok(User {
            id: u.id,
            email: u.email,
            name: u.name,
            created_at: u.created_at,
        })
    }

    async fn user_by_id(&self, id: UserId) -> Result<Option<User>, StoreError> {
        let row = sqlx::query("SELECT id, email, name, created_at FROM users WHERE id = ?1")
            .bind(id.to_string())
            .fetch_optional(&self.reader)
            .await?;
        row.as_ref().map(user_from_row).transpose()
    }

    async fn credentials_by_email(&self, email: &str) -> Result<Option<Credentials>, StoreError> {
        let row = sqlx::query(
            "SELECT id, email, name, created_at, password_hash, token_generation FROM users WHERE email = ?1",
        )
        .bind(email)
        .fetch_optional(&self.reader)
        .await?;
        match row {
            None => Ok(None),
            Some(row) => Ok(Some(Credentials {
                user: user_from_row(&row)?,
                password_hash: row.try_get("password_hash")?,
                token_generation: row.try_get("token_generation")?,
            })),
        }
    }

    async fn auth_state(&self, id: UserId, now: Millis) -> Result<Option<AuthState>, StoreError> {
        let user = id;
        let Some(row) = sqlx::query(
            "SELECT id, email, name, created_at, token_generation FROM users WHERE id = ?1",
        )
        .bind(user.to_string())
        .fetch_optional(&self.reader)
        .await?
        else {
            return Ok(None);
        };
        let revoked: Vec<String> = sqlx::query_scalar(
            "SELECT jti FROM revoked_tokens WHERE user_id = ?1 AND expires_at > ?2",
        )
        .bind(user.to_string())
        .bind(now)
        .fetch_all(&self.reader)
        .await?;
        Ok(Some(AuthState {
            user: user_from_row(&row)?,
            token_generation: row.try_get("token_generation")?,
            revoked,
        }))
    }

    async fn revoke_token(
        &self,
        user: UserId,
        jti: &str,
        expires_at: Millis,
        now: Millis,
    ) -> Result<bool, StoreError> {
        let mut tx = self.writer.begin().await?;
        sqlx::query("DELETE FROM revoked_tokens WHERE user_id = ?1 AND expires_at <= ?2")
            .bind(user.to_string())
            .bind(now)
            .execute(&mut *tx)
            .await?;
        let inserted = sqlx::query(
            "INSERT INTO revoked_tokens (jti, user_id, expires_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (jti) DO NOTHING",
        )
        .bind(jti)
        .bind(user.to_string())
        .bind(expires_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(inserted.rows_affected() == 1)
    }

    async fn change_password(&self, user: UserId, password_hash: &str) -> Result<i64, StoreError> {
        let generation: Option<i64> = sqlx::query_scalar(
            "UPDATE users SET password_hash = ?2, token_generation = token_generation + 1,
                              updated_at = ?3
             WHERE id = ?1 RETURNING token_generation",
        )
        .bind(user.to_string())
        .bind(password_hash)
        .bind(tidesync_protocol::time::now_millis())
        .fetch_optional(&self.writer)
        .await?;
        generation.ok_or(StoreError::UserGone)
    }

    async fn delete_user(&self, user: UserId) -> Result<(), StoreError> {
        // Foreign keys cascade to records, sync_log and revoked_tokens.
        sqlx::query("DELETE FROM users WHERE id = ?1")
            .bind(user.to_string())
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn push(&self, user: UserId, input: PushInput) -> Result<SyncOutput, StoreError> {
        self.pushes.push(user, input).await
    }

    async fn pull(
        &self,
        user: UserId,
        cursor: CursorStart,
        limit: usize,
    ) -> Result<SyncOutput, StoreError> {
        let tx = self.reader.begin().await?;
        let mut tx = SqliteTx { tx };
        let out = sync::pull(&mut tx, user, cursor, limit).await?;
        tx.tx.commit().await?;
        Ok(out)
    }

    async fn close(&self) {
        self.pushes.close().await;
        self.reader.close().await;
        self.writer.close().await;
    }
}

/// A read transaction (a snapshot on a reader) for pulls; pushes run on the
/// writer thread (`sqlite_writer.rs`).
struct SqliteTx {
    tx: sqlx::Transaction<'static, sqlx::Sqlite>,
}

fn entity(kind: &str) -> Result<EntityType, StoreError> {
    EntityType::parse(kind).ok_or_else(|| StoreError::Corrupt(format!("record kind {kind:?}")))
}

fn uuid_col(row: &SqliteRow, col: &str) -> Result<Uuid, StoreError> {
    let s: &str = row.try_get(col)?;
    Uuid::parse_str(s).map_err(|_| StoreError::Corrupt(format!("bad uuid {s:?}")))
}

#[async_trait]
impl SyncRead for SqliteTx {
    async fn user_version(&mut self, user: UserId) -> Result<Option<i64>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT sync_version FROM users WHERE id = ?1")
                .bind(user.to_string())
                .fetch_optional(&mut *self.tx)
                .await?,
        )
    }

    async fn first_version_since(
        &mut self,
        user: UserId,
        since: Millis,
    ) -> Result<Option<i64>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT MIN(version) FROM records WHERE user_id = ?1 AND server_time >= ?2",
        )
        .bind(user.to_string())
        .bind(since)
        .fetch_one(&mut *self.tx)
        .await?)
    }

    async fn changes(
        &mut self,
        user: UserId,
        after: i64,
        upto: i64,
        limit: usize,
        live_only: bool,
    ) -> Result<Vec<PulledRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, kind, version, data, created_at, updated_at, deleted_at, device_id
             FROM records
             WHERE user_id = ?1 AND version > ?2 AND version <= ?3 AND (?4 = 0 OR deleted_at IS NULL)
             ORDER BY version LIMIT ?5",
        )
        .bind(user.to_string())
        .bind(after)
        .bind(upto)
        .bind(live_only as i64)
        .bind(limit as i64)
        .fetch_all(&mut *self.tx)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(PulledRecord {
                    id: uuid_col(row, "id")?,
                    entity: entity(row.try_get("kind")?)?,
                    version: row.try_get("version")?,
                    data: row.try_get("data")?,
                    created_at: row.try_get("created_at")?,
                    updated_at: row.try_get("updated_at")?,
                    deleted_at: row.try_get("deleted_at")?,
                    device_id: row.try_get("device_id")?,
                })
            })
            .collect()
    }
}
