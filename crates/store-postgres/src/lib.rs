//! tidesync's PostgreSQL backend, for when one machine is not enough:
//! stateless instances share one database; pushes serialise per user on the
//! user's row lock, and commits reach every instance through LISTEN/NOTIFY.

mod accounts;
mod error;
mod members;
mod sql;
mod sync;

use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::Acquire;
use tidesync_engine::{PushInput, SyncOutput, View};
use tidesync_protocol::time::{now_millis, Millis};
use tidesync_protocol::{RecordId, ScopeId, UserId};
use tidesync_store::{
    AuthState, Backend, ChangeNote, Credentials, GcHorizon, GcReport, Health, Member, MemberOp,
    MembersChanged, NewUser, PullInput, Store, StoreError, User, GC_BATCH,
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

/// The channel every instance LISTENs on. Payload: `scope:version:user:device`
/// for a change, `m:scope:user` for a membership change.
const CHANNEL: &str = "tidesync_changes";

fn note_payload(n: &ChangeNote) -> String {
    if n.membership {
        format!("m:{}:{}", n.scope, n.user)
    } else {
        format!("{}:{}:{}:{}", n.scope, n.version, n.user, n.device)
    }
}

fn parse_note(payload: &str) -> Option<ChangeNote> {
    if let Some(rest) = payload.strip_prefix("m:") {
        let (scope, user) = rest.split_once(':')?;
        return Some(ChangeNote {
            scope: ScopeId::new(scope.parse().ok()?),
            version: 0,
            user: user.parse().ok()?,
            device: String::new(),
            membership: true,
        });
    }
    let mut parts = payload.splitn(4, ':');
    Some(ChangeNote {
        scope: ScopeId::new(parts.next()?.parse().ok()?),
        version: parts.next()?.parse().ok()?,
        user: parts.next()?.parse().ok()?,
        device: parts.next()?.to_owned(),
        membership: false,
    })
}

/// Queues notices that reach every listening instance when (and only if)
/// the caller's transaction commits: one statement for all of them.
async fn notify(c: &mut sqlx::PgConnection, notes: &[ChangeNote]) -> Result<(), StoreError> {
    if notes.is_empty() {
        return Ok(());
    }
    sqlx::query("SELECT pg_notify($1, p) FROM UNNEST($2::text[]) AS p")
        .bind(CHANNEL)
        .bind(notes.iter().map(note_payload).collect::<Vec<_>>())
        .execute(c)
        .await
        .map_err(db)?;
    Ok(())
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
        let waited = std::time::Instant::now();
        let conn = self.pool.acquire().await.map_err(db);
        metrics::histogram!("tidesync_db_acquire_seconds", "pool" => "postgres")
            .record(waited.elapsed().as_secs_f64());
        let size = self.pool.size() as f64;
        metrics::gauge!("tidesync_db_pool_in_use", "pool" => "postgres")
            .set(size - self.pool.num_idle() as f64);
        metrics::gauge!("tidesync_db_pool_size", "pool" => "postgres").set(size);
        conn
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
        let mut conn = self.conn().await?;
        let mut tx = conn.begin().await.map_err(db)?;
        accounts::delete_user(&mut tx, user, now_millis()).await?;
        tx.commit().await.map_err(db)
    }

    async fn push(
        &self,
        user: UserId,
        input: PushInput,
        _cost: usize,
    ) -> Result<SyncOutput, StoreError> {
        let device = input.device_id.clone();
        let mut conn = self.conn().await?;
        // A space shared while this push located its records: run again.
        for attempt in 0.. {
            let mut tx = conn.begin().await.map_err(db)?;
            let out = match sync::push(&mut tx, user, input.clone()).await {
                Err(StoreError::Retry) if attempt < 3 => continue,
                other => other?,
            };
            let notes: Vec<ChangeNote> = out
                .wrote
                .iter()
                .map(|(scope, version)| ChangeNote {
                    scope: *scope,
                    version: *version,
                    user,
                    device: device.clone(),
                    membership: false,
                })
                .collect();
            notify(&mut tx, &notes).await?;
            tx.commit().await.map_err(db)?;
            return Ok(out);
        }
        unreachable!("the loop returns")
    }

    async fn pull(&self, user: UserId, input: PullInput) -> Result<SyncOutput, StoreError> {
        let mut conn = self.conn().await?;
        let mut tx = sqlx::Connection::begin_with(
            &mut *conn,
            "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
        )
        .await
        .map_err(db)?;
        let out = sync::pull(&mut tx, user, input).await?;
        tx.commit().await.map_err(db)?;
        Ok(out)
    }

    async fn view(&self, user: UserId) -> Result<View, StoreError> {
        sync::view(&mut *self.conn().await?, user).await
    }

    async fn members(&self, user: UserId, space: RecordId) -> Result<Vec<Member>, StoreError> {
        members::members(&mut *self.conn().await?, user, space).await
    }

    async fn change_members(
        &self,
        user: UserId,
        space: RecordId,
        op: MemberOp,
    ) -> Result<MembersChanged, StoreError> {
        let mut conn = self.conn().await?;
        let mut tx = conn.begin().await.map_err(db)?;
        let changed = members::change(&mut tx, user, space, op, now_millis()).await?;
        let notes: Vec<ChangeNote> = changed
            .affected
            .iter()
            .map(|(u, personal)| ChangeNote {
                scope: *personal,
                version: 0,
                user: *u,
                device: String::new(),
                membership: true,
            })
            .collect();
        notify(&mut tx, &notes).await?;
        tx.commit().await.map_err(db)?;
        Ok(changed)
    }

    async fn export(
        &self,
        user: UserId,
        kind: tidesync_protocol::entity::EntityType,
        tombstones: bool,
        after: Option<(ScopeId, RecordId)>,
        limit: usize,
    ) -> Result<Vec<(ScopeId, tidesync_engine::PulledRecord)>, StoreError> {
        let mut conn = self.conn().await?;
        let view = sync::view(&mut conn, user).await?;
        let scopes: Vec<_> = view.readable().iter().map(|s| s.id).collect();
        sql::export(&mut conn, &scopes, kind, tombstones, after, limit).await
    }

    async fn collect_garbage(&self, h: GcHorizon) -> Result<GcReport, StoreError> {
        let mut report = GcReport::default();
        let mut conn = self.conn().await?;
        loop {
            let mut tx = conn.begin().await.map_err(db)?;
            let (t, l) =
                sql::collect_batch(&mut tx, h.tombstones_before, h.log_before, GC_BATCH).await?;
            tx.commit().await.map_err(db)?;
            report.tombstones += t;
            report.log_rows += l;
            if t < GC_BATCH as u64 && l < GC_BATCH as u64 {
                break;
            }
        }
        report.revoked_tokens = sql::forget_expired_tokens(&mut conn, h.now).await?;
        Ok(report)
    }

    async fn forget_cursors(&self) -> Result<u64, StoreError> {
        sql::forget_cursors(&mut *self.conn().await?).await
    }

    fn change_notes(&self) -> Option<broadcast::Receiver<ChangeNote>> {
        Some(self.notes.subscribe())
    }

    async fn close(&self) {
        self.pool.close().await;
    }
}
