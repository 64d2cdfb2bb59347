//! The PostgreSQL backend, for when one machine is not enough.

use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgPool, PgPoolOptions, PgRow};
use std::collections::HashMap;

use sqlx::Row;
use tidesync_protocol::cursor::CursorStart;
use tidesync_protocol::entity::EntityType;
use tidesync_protocol::merge;
use tidesync_protocol::time::Millis;
use tidesync_protocol::UserId;
use uuid::Uuid;

use crate::sync::{
    self, LogEntry, PulledRecord, PushInput, StoredRecord, SyncOutput, SyncRead, SyncTx,
};
use crate::{AuthState, Backend, ChangeNote, Credentials, NewUser, Store, StoreError, User};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);
const MAX_CONNECTIONS: u32 = 16;

pub struct PostgresStore {
    pool: PgPool,
    notes: tokio::sync::broadcast::Sender<ChangeNote>,
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
async fn listen(pool: PgPool, notes: tokio::sync::broadcast::Sender<ChangeNote>) {
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
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect(url)
            .await?;
        let (notes, _) = tokio::sync::broadcast::channel(1024);
        tokio::spawn(listen(pool.clone(), notes.clone()));
        Ok(PostgresStore { pool, notes })
    }
}

fn user_from_row(row: &PgRow) -> Result<User, StoreError> {
    Ok(User {
        id: UserId::from_uuid(row.try_get::<Uuid, _>("id")?),
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
            "SELECT id, email, name, created_at, password_hash, token_generation FROM users WHERE email = $1",
        )
        .bind(email)
        .fetch_optional(&self.pool)
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
            "SELECT id, email, name, created_at, token_generation FROM users WHERE id = $1",
        )
        .bind(user.as_uuid())
        .fetch_optional(&self.pool)
        .await?
        else {
            return Ok(None);
        };
        let revoked: Vec<String> = sqlx::query_scalar(
            "SELECT jti FROM revoked_tokens WHERE user_id = $1 AND expires_at > $2",
        )
        .bind(user.as_uuid())
        .bind(now)
        .fetch_all(&self.pool)
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
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM revoked_tokens WHERE user_id = $1 AND expires_at <= $2")
            .bind(user.as_uuid())
            .bind(now)
            .execute(&mut *tx)
            .await?;
        let inserted = sqlx::query(
            "INSERT INTO revoked_tokens (jti, user_id, expires_at) VALUES ($1, $2, $3)
             ON CONFLICT (jti) DO NOTHING",
        )
        .bind(jti)
        .bind(user.as_uuid())
        .bind(expires_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(inserted.rows_affected() == 1)
    }

    async fn change_password(&self, user: UserId, password_hash: &str) -> Result<i64, StoreError> {
        let generation: Option<i64> = sqlx::query_scalar(
            "UPDATE users SET password_hash = $2, token_generation = token_generation + 1,
                              updated_at = $3
             WHERE id = $1 RETURNING token_generation",
        )
        .bind(user.as_uuid())
        .bind(password_hash)
        .bind(tidesync_protocol::time::now_millis())
        .fetch_optional(&self.pool)
        .await?;
        generation.ok_or(StoreError::UserGone)
    }

    async fn delete_user(&self, user: UserId) -> Result<(), StoreError> {
        // Foreign keys cascade to records, sync_log and revoked_tokens.
        sqlx::query("DELETE FROM users WHERE id = $1")
            .bind(user.as_uuid())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn push(&self, user: UserId, input: PushInput) -> Result<SyncOutput, StoreError> {
        let tx = self.pool.begin().await?;
        let mut tx = PgTx { tx };
        let device = input.device_id.clone();
        let out = sync::push(&mut tx, user, input).await?;
        if out.wrote {
            // Delivered to every listening instance when (and only if) this commits.
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(CHANNEL)
                .bind(format!("{user}:{}:{device}", out.head))
                .execute(&mut *tx.tx)
                .await?;
        }
        tx.tx.commit().await?;
        Ok(out)
    }

    fn change_notes(&self) -> Option<tokio::sync::broadcast::Receiver<ChangeNote>> {
        Some(self.notes.subscribe())
    }

    async fn pull(
        &self,
        user: UserId,
        cursor: CursorStart,
        limit: usize,
    ) -> Result<SyncOutput, StoreError> {
        let tx = self.pool.begin().await?;
        let mut tx = PgTx { tx };
        let out = sync::pull(&mut tx, user, cursor, limit).await?;
        tx.tx.commit().await?;
        Ok(out)
    }

    async fn close(&self) {
        self.pool.close().await;
    }
}

struct PgTx {
    tx: sqlx::Transaction<'static, sqlx::Postgres>,
}

fn entity(kind: &str) -> Result<EntityType, StoreError> {
    EntityType::parse(kind).ok_or_else(|| StoreError::Corrupt(format!("record kind {kind:?}")))
}

fn stored_from_row(row: &PgRow) -> Result<StoredRecord, StoreError> {
    let state = merge::decode_state(row.try_get("data")?, row.try_get("clocks")?)
        .map_err(StoreError::Corrupt)?;
    Ok(StoredRecord {
        id: row.try_get("id")?,
        entity: entity(row.try_get("kind")?)?,
        version: row.try_get("version")?,
        state,
        server_time: row.try_get("server_time")?,
    })
}

#[async_trait]
impl SyncRead for PgTx {
    async fn user_version(&mut self, user: UserId) -> Result<Option<i64>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT sync_version FROM users WHERE id = $1")
                .bind(user.as_uuid())
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
            "SELECT MIN(version) FROM records WHERE user_id = $1 AND server_time >= $2",
        )
        .bind(user.as_uuid())
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
             WHERE user_id = $1 AND version > $2 AND version <= $3 AND (NOT $4 OR deleted_at IS NULL)
             ORDER BY version LIMIT $5",
        )
        .bind(user.as_uuid())
        .bind(after)
        .bind(upto)
        .bind(live_only)
        .bind(limit as i64)
        .fetch_all(&mut *self.tx)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(PulledRecord {
                    id: row.try_get("id")?,
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

#[async_trait]
impl SyncTx for PgTx {
    async fn lock_user(&mut self, user: UserId) -> Result<Option<i64>, StoreError> {
        // The user's row lock serialises this user's writers (and only them),
        // so versions are handed out in commit order.
        Ok(
            sqlx::query_scalar("SELECT sync_version FROM users WHERE id = $1 FOR UPDATE")
                .bind(user.as_uuid())
                .fetch_optional(&mut *self.tx)
                .await?,
        )
    }

    async fn load_acks(
        &mut self,
        user: UserId,
        op_ids: &[&str],
    ) -> Result<HashMap<String, String>, StoreError> {
        if op_ids.is_empty() {
            return Ok(HashMap::new());
        }
        let rows = sqlx::query(
            "SELECT operation_id, ack FROM sync_log WHERE user_id = $1 AND operation_id = ANY($2)",
        )
        .bind(user.as_uuid())
        .bind(op_ids.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        .fetch_all(&mut *self.tx)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("operation_id")?, r.try_get("ack")?)))
            .collect()
    }

    async fn load_records(
        &mut self,
        user: UserId,
        ids: &[Uuid],
    ) -> Result<Vec<StoredRecord>, StoreError> {
        if ids.is_empty() {
            return Ok(vec![]);
        }
        let rows = sqlx::query(
            "SELECT id, kind, version, data, clocks, server_time FROM records
             WHERE user_id = $1 AND id = ANY($2)",
        )
        .bind(user.as_uuid())
        .bind(ids)
        .fetch_all(&mut *self.tx)
        .await?;
        rows.iter().map(stored_from_row).collect()
    }

    async fn live_children(
        &mut self,
        user: UserId,
        parent: Uuid,
    ) -> Result<Vec<StoredRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, kind, version, data, clocks, server_time FROM records
             WHERE user_id = $1 AND (space_id = $2 OR category_id = $2) AND deleted_at IS NULL",
        )
        .bind(user.as_uuid())
        .bind(parent)
        .fetch_all(&mut *self.tx)
        .await?;
        rows.iter().map(stored_from_row).collect()
    }

    async fn save_records(
        &mut self,
        user: UserId,
        recs: &[&StoredRecord],
    ) -> Result<(), StoreError> {
        if recs.is_empty() {
            return Ok(());
        }
        // One statement for the whole batch: columns as arrays, UNNEST to rows.
        let lasts: Vec<_> = recs.iter().map(|r| r.state.last()).collect();
        sqlx::query(
            "INSERT INTO records (user_id, id, kind, version, space_id, category_id, data, clocks,
                                  created_at, updated_at, deleted_at, device_id, server_time)
             SELECT $1, * FROM UNNEST($2::uuid[], $3::text[], $4::int8[], $5::uuid[], $6::uuid[],
                                      $7::text[], $8::text[], $9::int8[], $10::int8[], $11::int8[],
                                      $12::text[], $13::int8[])
             ON CONFLICT (user_id, id) DO UPDATE SET
                kind = excluded.kind, version = excluded.version, space_id = excluded.space_id,
                category_id = excluded.category_id, data = excluded.data, clocks = excluded.clocks,
                created_at = excluded.created_at, updated_at = excluded.updated_at,
                deleted_at = excluded.deleted_at, device_id = excluded.device_id,
                server_time = excluded.server_time",
        )
        .bind(user.as_uuid())
        .bind(recs.iter().map(|r| r.id).collect::<Vec<_>>())
        .bind(recs.iter().map(|r| r.entity.as_str()).collect::<Vec<_>>())
        .bind(recs.iter().map(|r| r.version).collect::<Vec<_>>())
        .bind(recs.iter().map(|r| r.space_id()).collect::<Vec<_>>())
        .bind(recs.iter().map(|r| r.category_id()).collect::<Vec<_>>())
        .bind(recs.iter().map(|r| r.data_json()).collect::<Vec<_>>())
        .bind(
            recs.iter()
                .map(|r| merge::encode_clocks(&r.state))
                .collect::<Vec<_>>(),
        )
        .bind(
            recs.iter()
                .map(|r| r.state.created_at())
                .collect::<Vec<_>>(),
        )
        .bind(lasts.iter().map(|l| l.ts).collect::<Vec<_>>())
        .bind(
            recs.iter()
                .map(|r| r.state.deleted_at())
                .collect::<Vec<_>>(),
        )
        .bind(lasts.iter().map(|l| l.device.as_str()).collect::<Vec<_>>())
        .bind(recs.iter().map(|r| r.server_time).collect::<Vec<_>>())
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    async fn insert_logs(
        &mut self,
        user: UserId,
        entries: &[LogEntry<'_>],
    ) -> Result<(), StoreError> {
        if entries.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO sync_log (user_id, operation_id, device_id, entity_type, entity_id,
                                   operation, changes, ack, client_time, server_time)
             SELECT $1, * FROM UNNEST($2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                                      $7::text[], $8::text[], $9::int8[], $10::int8[])",
        )
        .bind(user.as_uuid())
        .bind(entries.iter().map(|e| e.operation_id).collect::<Vec<_>>())
        .bind(entries.iter().map(|e| e.device_id).collect::<Vec<_>>())
        .bind(entries.iter().map(|e| e.entity_type).collect::<Vec<_>>())
        .bind(
            entries
                .iter()
                .map(|e| e.entity_id.as_deref())
                .collect::<Vec<_>>(),
        )
        .bind(entries.iter().map(|e| e.operation).collect::<Vec<_>>())
        .bind(
            entries
                .iter()
                .map(|e| e.changes.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(entries.iter().map(|e| e.ack.as_str()).collect::<Vec<_>>())
        .bind(entries.iter().map(|e| e.client_time).collect::<Vec<_>>())
        .bind(entries.iter().map(|e| e.server_time).collect::<Vec<_>>())
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    async fn set_user_version(&mut self, user: UserId, version: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE users SET sync_version = $2 WHERE id = $1")
            .bind(user.as_uuid())
            .bind(version)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }
}
