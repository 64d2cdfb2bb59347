//! The PostgreSQL backend, for when one machine is not enough.

use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgPool, PgPoolOptions, PgRow};
use sqlx::Row;
use tidesync_protocol::UserId;
use uuid::Uuid;

use crate::{Backend, Credentials, NewUser, Store, StoreError, User};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);
const MAX_CONNECTIONS: u32 = 16;

pub struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect(url)
            .await?;
        Ok(PostgresStore { pool })
    }
}

fn user_from_row(row: &PgRow) -> Result<User, StoreError> {
    Ok(User {
        id: UserId(row.try_get::<Uuid, _>("id")?),
        email: row.try_get("email")?,
        name: row.try_get("name")?,
        created_at: row.try_get("created_at")?,
    })
}

#[async_trait]
impl Store for PostgresStore {
    fn backend(&self) -> Backend {
        Backend::Postgres
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        MIGRATOR.run(&self.pool).await?;
        Ok(())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn create_user(&self, u: NewUser) -> Result<User, StoreError> {
        let res = sqlx::query(
            "INSERT INTO users (id, email, name, password_hash, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT (email) DO NOTHING",
        )
        .bind(u.id.as_uuid())
        .bind(&u.email)
        .bind(&u.name)
        .bind(&u.password_hash)
        .bind(u.created_at)
        .execute(&self.pool)
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
        let row = sqlx::query("SELECT id, email, name, created_at FROM users WHERE id = $1")
            .bind(id.as_uuid())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(user_from_row).transpose()
    }

    async fn credentials_by_email(&self, email: &str) -> Result<Option<Credentials>, StoreError> {
        let row = sqlx::query(
            "SELECT id, email, name, created_at, password_hash FROM users WHERE email = $1",
        )
        .bind(email)
        .fetch_optional(&self.pool)
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
        self.pool.close().await;
    }
}
