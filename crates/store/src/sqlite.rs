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
use std::collections::HashMap;

use sqlx::{AssertSqlSafe, Row};
use tidesync_protocol::cursor::CursorStart;
use tidesync_protocol::entity::EntityType;
use tidesync_protocol::merge;
use tidesync_protocol::time::Millis;
use tidesync_protocol::UserId;
use uuid::Uuid;

use crate::sync::{self, LogEntry, PulledRecord, PushInput, StoredRecord, SyncOutput, SyncTx};
use crate::{sqlite_file, AuthState, Backend, Credentials, NewUser, Store, StoreError, User};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);
const READERS: u32 = 4;

pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
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
        Ok(SqliteStore { writer, reader })
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
    ) -> Result<(), StoreError> {
        let mut tx = self.writer.begin().await?;
        sqlx::query("DELETE FROM revoked_tokens WHERE user_id = ?1 AND expires_at <= ?2")
            .bind(user.to_string())
            .bind(now)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO revoked_tokens (jti, user_id, expires_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (jti) DO NOTHING",
        )
        .bind(jti)
        .bind(user.to_string())
        .bind(expires_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
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
        // IMMEDIATE takes the write lock up front, so the transaction never has
        // to upgrade from reader to writer (which can fail with SQLITE_BUSY).
        let tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        sync::push(Box::new(SqliteTx { tx }), user, input).await
    }

    async fn pull(
        &self,
        user: UserId,
        cursor: CursorStart,
        limit: usize,
    ) -> Result<SyncOutput, StoreError> {
        let tx = self.reader.begin().await?;
        sync::pull(Box::new(SqliteTx { tx }), user, cursor, limit).await
    }

    async fn close(&self) {
        self.reader.close().await;
        self.writer.close().await;
    }
}

/// One SQLite transaction: a write one (`BEGIN IMMEDIATE` on the writer) or a
/// read one (a snapshot on a reader).
struct SqliteTx {
    tx: sqlx::Transaction<'static, sqlx::Sqlite>,
}

/// Variables per statement, well under SQLite's limit.
const CHUNK: usize = 500;
/// Rows per multi-row INSERT (13 and 10 variables per row).
const RECORD_ROWS: usize = 200;
const LOG_ROWS: usize = 250;

/// `n` anonymous placeholders. Not `?NNN`: SQLite resolves each numbered
/// name by a linear scan and sqlx asks for every one, which makes binding a
/// multi-row statement quadratic (a third of push time, measured with perf).
fn placeholders(n: usize) -> String {
    vec!["?"; n].join(", ")
}

fn entity(kind: &str) -> Result<EntityType, StoreError> {
    EntityType::parse(kind).ok_or_else(|| StoreError::Corrupt(format!("record kind {kind:?}")))
}

fn uuid_col(row: &SqliteRow, col: &str) -> Result<Uuid, StoreError> {
    let s: &str = row.try_get(col)?;
    Uuid::parse_str(s).map_err(|_| StoreError::Corrupt(format!("bad uuid {s:?}")))
}

fn stored_from_row(row: &SqliteRow) -> Result<StoredRecord, StoreError> {
    let state = merge::decode_state(row.try_get("data")?, row.try_get("clocks")?)
        .map_err(StoreError::Corrupt)?;
    Ok(StoredRecord {
        id: uuid_col(row, "id")?,
        entity: entity(row.try_get("kind")?)?,
        version: row.try_get("version")?,
        state,
        server_time: row.try_get("server_time")?,
    })
}

const STORED_COLUMNS: &str = "id, kind, version, data, clocks, server_time";

#[async_trait]
impl SyncTx for SqliteTx {
    async fn lock_user(&mut self, user: UserId) -> Result<Option<i64>, StoreError> {
        // The lock is the IMMEDIATE transaction itself.
        self.user_version(user).await
    }

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

    async fn load_acks(
        &mut self,
        user: UserId,
        op_ids: &[&str],
    ) -> Result<HashMap<String, String>, StoreError> {
        let mut out = HashMap::new();
        for chunk in op_ids.chunks(CHUNK) {
            let sql = format!(
                "SELECT operation_id, ack FROM sync_log WHERE user_id = ? AND operation_id IN ({})",
                placeholders(chunk.len())
            );
            let mut q = sqlx::query(AssertSqlSafe(sql)).bind(user.to_string());
            for op in chunk {
                q = q.bind(*op);
            }
            for row in q.fetch_all(&mut *self.tx).await? {
                out.insert(row.try_get("operation_id")?, row.try_get("ack")?);
            }
        }
        Ok(out)
    }

    async fn load_records(
        &mut self,
        user: UserId,
        ids: &[Uuid],
    ) -> Result<Vec<StoredRecord>, StoreError> {
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(CHUNK) {
            let sql = format!(
                "SELECT {STORED_COLUMNS} FROM records WHERE user_id = ? AND id IN ({})",
                placeholders(chunk.len())
            );
            let mut q = sqlx::query(AssertSqlSafe(sql)).bind(user.to_string());
            for id in chunk {
                q = q.bind(id.hyphenated().to_string());
            }
            for row in q.fetch_all(&mut *self.tx).await? {
                out.push(stored_from_row(&row)?);
            }
        }
        Ok(out)
    }

    async fn live_children(
        &mut self,
        user: UserId,
        parent: Uuid,
    ) -> Result<Vec<StoredRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, kind, version, data, clocks, server_time FROM records
             WHERE user_id = ?1 AND (space_id = ?2 OR category_id = ?2) AND deleted_at IS NULL",
        )
        .bind(user.to_string())
        .bind(parent.hyphenated().to_string())
        .fetch_all(&mut *self.tx)
        .await?;
        rows.iter().map(stored_from_row).collect()
    }

    async fn save_records(
        &mut self,
        user: UserId,
        recs: &[&StoredRecord],
    ) -> Result<(), StoreError> {
        const COLS: usize = 13;
        for chunk in recs.chunks(RECORD_ROWS) {
            let rows = (0..chunk.len())
                .map(|_| format!("({})", placeholders(COLS)))
                .collect::<Vec<_>>()
                .join(", ");
            let sql = format!(
                "INSERT INTO records (user_id, id, kind, version, space_id, category_id, data, clocks,
                                      created_at, updated_at, deleted_at, device_id, server_time)
                 VALUES {rows}
                 ON CONFLICT (user_id, id) DO UPDATE SET
                    kind = excluded.kind, version = excluded.version, space_id = excluded.space_id,
                    category_id = excluded.category_id, data = excluded.data, clocks = excluded.clocks,
                    created_at = excluded.created_at, updated_at = excluded.updated_at,
                    deleted_at = excluded.deleted_at, device_id = excluded.device_id,
                    server_time = excluded.server_time"
            );
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for rec in chunk {
                let last = rec.state.last();
                q = q
                    .bind(user.to_string())
                    .bind(rec.id.hyphenated().to_string())
                    .bind(rec.entity.as_str())
                    .bind(rec.version)
                    .bind(rec.space_id().map(|u| u.hyphenated().to_string()))
                    .bind(rec.category_id().map(|u| u.hyphenated().to_string()))
                    .bind(rec.data_json())
                    .bind(merge::encode_clocks(&rec.state))
                    .bind(rec.state.created_at())
                    .bind(last.ts)
                    .bind(rec.state.deleted_at())
                    .bind(last.device.clone())
                    .bind(rec.server_time);
            }
            q.execute(&mut *self.tx).await?;
        }
        Ok(())
    }

    async fn insert_logs(
        &mut self,
        user: UserId,
        entries: &[LogEntry<'_>],
    ) -> Result<(), StoreError> {
        const COLS: usize = 10;
        for chunk in entries.chunks(LOG_ROWS) {
            let rows = (0..chunk.len())
                .map(|_| format!("({})", placeholders(COLS)))
                .collect::<Vec<_>>()
                .join(", ");
            let sql = format!(
                "INSERT INTO sync_log (user_id, operation_id, device_id, entity_type, entity_id,
                                       operation, changes, ack, client_time, server_time)
                 VALUES {rows}"
            );
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for e in chunk {
                q = q
                    .bind(user.to_string())
                    .bind(e.operation_id.to_owned())
                    .bind(e.device_id.to_owned())
                    .bind(e.entity_type)
                    .bind(e.entity_id.clone())
                    .bind(e.operation)
                    .bind(e.changes.clone())
                    .bind(e.ack.clone())
                    .bind(e.client_time)
                    .bind(e.server_time);
            }
            q.execute(&mut *self.tx).await?;
        }
        Ok(())
    }

    async fn set_user_version(&mut self, user: UserId, version: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE users SET sync_version = ?2 WHERE id = ?1")
            .bind(user.to_string())
            .bind(version)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
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

    async fn commit(self: Box<Self>) -> Result<(), StoreError> {
        self.tx.commit().await?;
        Ok(())
    }
}
