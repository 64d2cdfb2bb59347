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
use tidesync_protocol::UserId;

use crate::{sqlite_file, Backend, Credentials, NewUser, Store, StoreError, User};

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
            std::fs::create_dir_all(dir)
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
            "SELECT id, email, name, created_at, password_hash FROM users WHERE email = ?1",
        )
        .bind(email)
        .fetch_optional(&self.reader)
        .await?;
        match row {
            None => Ok(None),
            Some(row) => Ok(Some(Credentials {
                user: user_from_row(&row)?,
                password_hash: row.try_get("password_hash")?,
            })),
        }
    }

    async fn close(&self) {
        self.reader.close().await;
        self.writer.close().await;
    }
}
