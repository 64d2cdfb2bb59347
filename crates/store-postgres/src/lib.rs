//! tidesync's PostgreSQL backend, for when one machine is not enough:
//! stateless instances share one database; pushes serialise per user on the
//! user's row lock, and commits reach every instance through LISTEN/NOTIFY.

mod accounts;
mod error;
mod sql;
mod sync;

use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::Acquire;
use tidesync_engine::{PushInput, SyncOutput};
use tidesync_protocol::time::{now_millis, Millis};
use tidesync_protocol::UserId;
use tidesync_store::{
    AuthState, Backend, ChangeNote, Credentials, Health, NewUser, PullInput, Store, StoreError,
    User,
};
use tokio::sync::broadcast;

use crate::error::db;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

#[derive(Clone, Debug)]
pub struct PostgresOptions {
    pub max_connections: u32,
    /// How long a request waits for a free connection (then 503).
    pub acquire_timeout: Duration,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        PostgresOptions {
            max_connections: 16,
            acquire_timeout: Duration::from_secs(5),
        }
    }
}

pub struct PostgresStore {
    pool: PgPool,
    notes: broadcast::Sender<ChangeNote>,
}

/// The channel every instance LISTENs on. Payload: `user:version:device`.
const CHANNEL: &str = "tidesync_changes";

fn parse_note(payload: &str) -> Option<ChangeNote> {
    let mut parts = payload.splitn(3, ':');
    Some(ChangeNote {
        user: parts.next()?.parse().ok()?,
        version: parts.next()?.parse().ok()?,
        device: parts.next()?.to_owned(),
    })
}

/// Forwards this database's change notifications to the instance, until the
/// pool closes. `PgListener` reconnects by itself after a connection loss;
/// notices sent meanwhile are lost, which costs latency, not data: the next
/// pull still finds every change.
async fn listen(pool: PgPool, notes: broadcast::Sender<ChangeNote>) {
    while !pool.is_closed() {
        let mut listener = match sqlx::postgres::PgListener::connect_with(&pool).await {
            Ok(l) => l,
            Err(_) => {
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if listener.listen(CHANNEL).await.is_err() {
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
        loop {
            match listener.recv().await {
                Ok(n) => {
                    if let Some(note) = parse_note(n.payload()) {
                        let _ = notes.send(note);
                    }
                }
                Err(_) if pool.is_closed() => return,
                Err(e) => {
                    tracing::warn!(error = %e, "change notifications interrupted");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    break;
                }
            }
        }
    }
}

impl PostgresStore {
    pub async fn connect(url: &str, options: PostgresOptions) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections)
            .acquire_timeout(options.acquire_timeout)
            .connect(url)
            .await
            .map_err(db)?;
        let (notes, _) = broadcast::channel(1024);
        tokio::spawn(listen(pool.clone(), notes.clone()));
        Ok(PostgresStore { pool, notes })
    }

    async fn conn(&self) -> Result<sqlx::pool::PoolConnection<sqlx::Postgres>, StoreError> {
        self.pool.acquire().await.map_err(db)
    }
}

#[async_trait]
impl Store for PostgresStore {
    fn backend(&self) -> Backend {
        Backend::Postgres
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        MIGRATOR
            .run(&self.pool)
            .await
            .map_err(|e| StoreError::Migrate(e.to_string()))
    }

    async fn health(&self) -> Health {
        let database = sqlx::query("SELECT 1").execute(&self.pool).await.is_ok();
        Health {
            database,
            writer: None,
        }
    }

    async fn create_user(&self, u: NewUser) -> Result<User, StoreError> {
        if !accounts::create_user(&mut *self.conn().await?, &u).await? {
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
        accounts::user_by_id(&mut *self.conn().await?, id).await
    }

    async fn credentials_by_email(&self, email: &str) -> Result<Option<Credentials>, StoreError> {
        accounts::credentials_by_email(&mut *self.conn().await?, email).await
    }

    async fn auth_state(&self, id: UserId, now: Millis) -> Result<Option<AuthState>, StoreError> {
        accounts::auth_state(&mut *self.conn().await?, id, now).await
    }

    async fn revoke_token(
        &self,
        user: UserId,
        jti: &str,
        expires_at: Millis,
        now: Millis,
    ) -> Result<bool, StoreError> {
        let mut conn = self.conn().await?;
        let mut tx = conn.begin().await.map_err(db)?;
        let fresh = accounts::revoke_token(&mut tx, user, jti, expires_at, now).await?;
        tx.commit().await.map_err(db)?;
        Ok(fresh)
    }

    async fn change_password(&self, user: UserId, password_hash: &str) -> Result<i64, StoreError> {
        accounts::change_password(&mut *self.conn().await?, user, password_hash, now_millis()).await
    }

    async fn delete_user(&self, user: UserId) -> Result<(), StoreError> {
        accounts::delete_user(&mut *self.conn().await?, user).await
    }

    async fn push(
        &self,
        user: UserId,
        input: PushInput,
        _cost: usize,
    ) -> Result<SyncOutput, StoreError> {
        let device = input.device_id.clone();
        let mut conn = self.conn().await?;
        let mut tx = conn.begin().await.map_err(db)?;
        let out = sync::push(&mut tx, user, input).await?;
        if out.wrote {
            // Delivered to every listening instance when (and only if) this commits.
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(CHANNEL)
                .bind(format!("{user}:{}:{device}", out.head))
                .execute(&mut *tx)
                .await
                .map_err(db)?;
        }
        tx.commit().await.map_err(db)?;
        Ok(out)
    }

    async fn pull(&self, user: UserId, input: PullInput) -> Result<SyncOutput, StoreError> {
        let mut conn = self.conn().await?;
        let mut tx = conn.begin().await.map_err(db)?;
        let out = sync::pull(&mut tx, user, input).await?;
        tx.commit().await.map_err(db)?;
        Ok(out)
    }

    async fn head(&self, user: UserId) -> Result<i64, StoreError> {
        sql::head(&mut *self.conn().await?, user)
            .await?
            .ok_or(StoreError::UserGone)
    }

    fn change_notes(&self) -> Option<broadcast::Receiver<ChangeNote>> {
        Some(self.notes.subscribe())
    }

    async fn close(&self) {
        self.pool.close().await;
    }
}
