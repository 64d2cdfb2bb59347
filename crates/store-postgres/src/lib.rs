//! tidesync's PostgreSQL backend, for when one machine is not enough:
//! stateless instances share one database; pushes serialise per user on the
//! user's row lock, and commits reach every instance through LISTEN/NOTIFY.

mod accounts;
mod error;
mod gate;
mod history;
mod import;
mod invitations;
mod listen;
mod members;
mod pool;
mod push;
mod schema_store;
mod sql;
mod stmt;
mod sync;

use async_trait::async_trait;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::Acquire;
use tidesync_engine::history::{Collect, GcNeed};
use tidesync_engine::{Again, Push, PushInput, PushLimits, SyncOutput, View};
use tidesync_protocol::entity::Model;
use tidesync_protocol::time::{now_millis, Millis};
use tidesync_protocol::{InvitationId, RecordId, Role, ScopeId, UserId};
use tidesync_store::{
    Accepted, Announcement, AuthState, Backend, ChangeNote, Credentials, Declined, GcHorizon,
    GcReport, Health, Invitation, InvitationChanged, InviteLimits, Member, MemberOp,
    MembersChanged, NewUser, PullInput, ReceivedInvitation, Store, StoreError, User,
};
use tokio::sync::broadcast;

use crate::error::db;

pub use pool::PostgresOptions;

type Tx = sqlx::Transaction<'static, sqlx::Postgres>;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

pub struct PostgresStore {
    pool: PgPool,
    notes: broadcast::Sender<Announcement>,
    direct_url: String,
    named: bool,
    gates: gate::Gates,
    /// How much one transaction of a push may load (PUSH_STEP_BYTES).
    limits: PushLimits,
    /// The collections its records are of (their `kind`).
    model: Model,
}

/// The channel every instance LISTENs on. Payload: `scope:version:user:device`
/// for a change, `m:scope:user` for a membership change, `r:user` for a
/// revocation (logout, password change, account deletion).
pub(crate) const CHANNEL: &str = "tidesync_changes";

pub(crate) fn note_payload(n: &ChangeNote) -> String {
    if n.membership {
        format!("m:{}:{}", n.scope, n.user)
    } else {
        format!("{}:{}:{}:{}", n.scope, n.version, n.user, n.device)
    }
}

/// Queues notices that reach every listening instance when (and only if)
/// the caller's transaction commits: one statement for all of them.
async fn notify(c: &mut sqlx::PgConnection, notes: &[ChangeNote]) -> Result<(), StoreError> {
    if notes.is_empty() {
        return Ok(());
    }
    stmt::query("SELECT pg_notify($1, p) FROM UNNEST($2::text[]) AS p")
        .bind(CHANNEL)
        .bind(notes.iter().map(note_payload).collect::<Vec<_>>())
        .execute(c)
        .await
        .map_err(db)?;
    Ok(())
}

/// Queues the notice that a token of `user` was revoked: every instance
/// forgets its cached auth state and its open requests of the user recheck
/// their tokens, once (and only if) the caller's transaction commits.
async fn notify_revoked(c: &mut sqlx::PgConnection, user: UserId) -> Result<(), StoreError> {
    stmt::query("SELECT pg_notify($1, $2)")
        .bind(CHANNEL)
        .bind(format!("r:{user}"))
        .execute(c)
        .await
        .map_err(db)?;
    Ok(())
}

/// Membership pokes on these users' personal scopes: their streams reread
/// their scopes (and, for an invitation, their invitations).
fn membership_notes(users: &[(UserId, ScopeId)]) -> Vec<ChangeNote> {
    ChangeNote::memberships(users)
}

#[async_trait]
impl Store for PostgresStore {
    fn backend(&self) -> Backend {
        Backend::Postgres
    }

    /// On the direct connection: the migrator holds a session advisory
    /// lock (so that instances starting together migrate once), which a
    /// transaction pooler would take on one server connection and release
    /// on another.
    async fn migrate(&self) -> Result<(), StoreError> {
        // A pool of one, since the migrator takes a pool.
        let direct = PgPoolOptions::new()
            .max_connections(1)
            .connect(&self.direct_url)
            .await
            .map_err(db)?;
        let r = MIGRATOR
            .run(&direct)
            .await
            .map_err(|e| StoreError::Migrate(e.to_string()));
        direct.close().await;
        r
    }

    async fn health(&self) -> Health {
        // The simple protocol: one message, no statement to prepare.
        let database = sqlx::raw_sql("SELECT 1").execute(&self.pool).await.is_ok();
        // No worker of its own: it can take work when the database answers.
        Health {
            database,
            ready: true,
            details: Default::default(),
        }
    }

    async fn create_user(&self, u: NewUser) -> Result<User, StoreError> {
        self.scoped(async {
            let mut tx = self.begin().await?;
            let created = accounts::create_user(&mut tx, &u).await?;
            tx.commit().await.map_err(db)?;
            if !created {
                return Err(StoreError::EmailTaken);
            }
            Ok(User {
                id: u.id,
                email: u.email,
                name: u.name,
                created_at: u.created_at,
            })
        })
        .await
    }

    async fn user_by_id(&self, id: UserId) -> Result<Option<User>, StoreError> {
        self.scoped(async {
            let mut tx = self.begin().await?;
            let user = accounts::user_by_id(&mut tx, id).await?;
            tx.commit().await.map_err(db)?;
            Ok(user)
        })
        .await
    }

    async fn credentials_by_email(&self, email: &str) -> Result<Option<Credentials>, StoreError> {
        self.scoped(async {
            let mut tx = self.begin().await?;
            let c = accounts::credentials_by_email(&mut tx, email).await?;
            tx.commit().await.map_err(db)?;
            Ok(c)
        })
        .await
    }

    async fn auth_state(&self, id: UserId, now: Millis) -> Result<Option<AuthState>, StoreError> {
        self.scoped(async {
            let mut tx = self.begin().await?;
            let state = accounts::auth_state(&mut tx, id, now).await?;
            tx.commit().await.map_err(db)?;
            Ok(state)
        })
        .await
    }

    async fn revoke_token(
        &self,
        user: UserId,
        jti: &str,
        expires_at: Millis,
        now: Millis,
    ) -> Result<bool, StoreError> {
        self.scoped(async {
            let mut tx = self.begin().await?;
            let fresh = accounts::revoke_token(&mut tx, user, jti, expires_at, now).await?;
            if fresh {
                notify_revoked(&mut tx, user).await?;
            }
            tx.commit().await.map_err(db)?;
            Ok(fresh)
        })
        .await
    }

    async fn spend_ticket(
        &self,
        user: UserId,
        jti: &str,
        expires_at: Millis,
        now: Millis,
    ) -> Result<bool, StoreError> {
        self.scoped(async {
            let mut tx = self.begin().await?;
            let fresh = accounts::revoke_token(&mut tx, user, jti, expires_at, now).await?;
            tx.commit().await.map_err(db)?;
            Ok(fresh)
        })
        .await
    }

    async fn change_password(&self, user: UserId, password_hash: &str) -> Result<i64, StoreError> {
        self.scoped(async {
            let mut tx = self.begin().await?;
            let generation =
                accounts::change_password(&mut tx, user, password_hash, now_millis()).await?;
            notify_revoked(&mut tx, user).await?;
            tx.commit().await.map_err(db)?;
            Ok(generation)
        })
        .await
    }

    async fn upgrade_password_hash(
        &self,
        user: UserId,
        old: &str,
        new: &str,
    ) -> Result<bool, StoreError> {
        self.scoped(async {
            let mut tx = self.begin().await?;
            let done = import::upgrade_password_hash(&mut tx, user, old, new).await?;
            tx.commit().await.map_err(db)?;
            Ok(done)
        })
        .await
    }

    async fn import_user(
        &self,
        user: tidesync_store::ImportedUser,
    ) -> Result<tidesync_store::ImportOutcome, StoreError> {
        self.scoped(async {
            let mut tx = self.begin().await?;
            let (out, note) = import::import_user(&mut tx, user).await?;
            notify(&mut tx, note.as_slice()).await?;
            tx.commit().await.map_err(db)?;
            Ok(out)
        })
        .await
    }

    async fn delete_user(&self, user: UserId) -> Result<(), StoreError> {
        self.scoped(async {
            let mut tx = self.begin().await?;
            accounts::delete_user(&mut tx, user, now_millis()).await?;
            notify_revoked(&mut tx, user).await?;
            tx.commit().await.map_err(db)
        })
        .await
    }

    async fn push(&self, user: UserId, input: PushInput) -> Result<SyncOutput, StoreError> {
        self.scoped(async {
            // The user's turn in this instance first, then a connection.
            let _turn = self.gates.enter(user).await;
            let mut conn = self.conn().await?;
            // Where each transaction starts: the request, or where the last
            // one's step left off (a push beyond its load budget commits in
            // several; each is a valid state, and a retry finds their
            // operations done).
            let mut again: Option<Again> = None;
            loop {
                // A space shared while this push located its records: run
                // this transaction again.
                let mut attempt = 0;
                let pushed = loop {
                    let push = match &again {
                        None => Push::new(user, input.clone(), self.limits),
                        Some(a) => Push::resume(user, a.clone()),
                    };
                    let mut tx = conn.begin().await.map_err(db)?;
                    // Its change notices are queued with its writes (sync.rs).
                    match sync::push(&mut tx, self.model, user, push).await {
                        Err(StoreError::Retry) if attempt < 3 => attempt += 1,
                        other => {
                            let pushed = other?;
                            tx.commit().await.map_err(db)?;
                            break pushed;
                        }
                    }
                };
                match pushed {
                    sync::Pushed::Done(out) => return Ok(out),
                    sync::Pushed::Again(a) => again = Some(a),
                }
            }
        })
        .await
    }

    async fn pull(&self, user: UserId, input: PullInput) -> Result<SyncOutput, StoreError> {
        self.scoped(async {
            let mut conn = self.conn().await?;
            let mut tx = sqlx::Connection::begin_with(
                &mut *conn,
                "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
            )
            .await
            .map_err(db)?;
            let out = sync::pull(&mut tx, self.model, user, input).await?;
            tx.commit().await.map_err(db)?;
            Ok(out)
        })
        .await
    }

    async fn view(&self, user: UserId) -> Result<View, StoreError> {
        self.scoped(async {
            let mut tx = self.begin().await?;
            let view = sync::view(&mut tx, user).await?;
            tx.commit().await.map_err(db)?;
            Ok(view)
        })
        .await
    }

    async fn members(&self, user: UserId, space: RecordId) -> Result<Vec<Member>, StoreError> {
        self.scoped(async {
            let mut tx = self.begin().await?;
            let m = members::members(&mut tx, self.model, user, space).await?;
            tx.commit().await.map_err(db)?;
            Ok(m)
        })
        .await
    }

    async fn change_members(
        &self,
        user: UserId,
        space: RecordId,
        op: MemberOp,
    ) -> Result<MembersChanged, StoreError> {
        self.scoped(async {
            let mut tx = self.begin().await?;
            let changed =
                members::change(&mut tx, self.model, user, space, op, now_millis()).await?;
            notify(&mut tx, &membership_notes(&changed.affected)).await?;
            tx.commit().await.map_err(db)?;
            Ok(changed)
        })
        .await
    }

    async fn invite(
        &self,
        user: UserId,
        space: RecordId,
        email: &str,
        role: Role,
        limits: InviteLimits,
        now: Millis,
    ) -> Result<InvitationChanged, StoreError> {
        self.scoped(async {
            let mut tx = self.begin().await?;
            let out =
                invitations::invite(&mut tx, self.model, user, space, email, role, limits, now)
                    .await?;
            notify(&mut tx, &membership_notes(&out.notify)).await?;
            tx.commit().await.map_err(db)?;
            Ok(out)
        })
        .await
    }

    async fn invitations(
        &self,
        user: UserId,
        now: Millis,
    ) -> Result<Vec<ReceivedInvitation>, StoreError> {
        self.scoped(async {
            let mut tx = self.begin().await?;
            let out = invitations::received(&mut tx, self.model, user, now).await?;
            tx.commit().await.map_err(db)?;
            Ok(out)
        })
        .await
    }

    async fn accept_invitation(
        &self,
        user: UserId,
        id: InvitationId,
        now: Millis,
    ) -> Result<Accepted, StoreError> {
        self.scoped(async {
            let mut tx = self.begin().await?;
            let out = invitations::accept(&mut tx, self.model, user, id, now).await?;
            notify(&mut tx, &membership_notes(&out.changed.affected)).await?;
            tx.commit().await.map_err(db)?;
            Ok(out)
        })
        .await
    }

    async fn decline_invitation(
        &self,
        user: UserId,
        id: InvitationId,
        block: bool,
        now: Millis,
    ) -> Result<Declined, StoreError> {
        self.scoped(async {
            let mut tx = self.begin().await?;
            let out = invitations::decline(&mut tx, user, id, block, now).await?;
            tx.commit().await.map_err(db)?;
            Ok(out)
        })
        .await
    }

    async fn space_invitations(
        &self,
        user: UserId,
        space: RecordId,
        now: Millis,
    ) -> Result<Vec<Invitation>, StoreError> {
        self.scoped(async {
            let mut tx = self.begin().await?;
            let out = invitations::sent(&mut tx, self.model, user, space, now).await?;
            tx.commit().await.map_err(db)?;
            Ok(out)
        })
        .await
    }

    async fn revoke_invitation(
        &self,
        user: UserId,
        space: RecordId,
        id: InvitationId,
        now: Millis,
    ) -> Result<InvitationChanged, StoreError> {
        self.scoped(async {
            let mut tx = self.begin().await?;
            let out = invitations::revoke(&mut tx, self.model, user, space, id, now).await?;
            notify(&mut tx, &membership_notes(&out.notify)).await?;
            tx.commit().await.map_err(db)?;
            Ok(out)
        })
        .await
    }

    async fn export(
        &self,
        user: UserId,
        q: tidesync_store::ExportQuery,
    ) -> Result<tidesync_store::ExportPage, StoreError> {
        // One short transaction per page, committed before the page goes
        // to the client: none stays open while the export waits for it.
        self.scoped(async {
            let mut tx = self.begin().await?;
            let view = sync::view(&mut tx, user).await?;
            let scopes: Vec<_> = view.readable().iter().map(|s| s.id).collect();
            let page = history::export(&mut tx, &scopes, q).await?;
            tx.commit().await.map_err(db)?;
            Ok(page)
        })
        .await
    }

    async fn collect_garbage(&self, h: GcHorizon) -> Result<GcReport, StoreError> {
        self.scoped(async {
            let mut gc = Collect::new(h);
            let mut conn = self.conn().await?;
            // One transaction per batch: pushes interleave between them.
            loop {
                match gc.need() {
                    GcNeed::OldTombstones { before, limit } => {
                        let mut tx = conn.begin().await.map_err(db)?;
                        let found = history::old_tombstones(&mut tx, before, limit).await?;
                        let n = found.len() as u64;
                        let logs = history::apply_gc(&mut tx, &gc.plan(found)).await?;
                        tx.commit().await.map_err(db)?;
                        gc.applied(n, logs);
                    }
                    GcNeed::ExpiredTokens { now } => {
                        let mut tx = conn.begin().await.map_err(db)?;
                        let n = history::forget_expired_tokens(&mut tx, now).await?;
                        tx.commit().await.map_err(db)?;
                        gc.tokens_forgotten(n);
                    }
                    GcNeed::Done(report) => return Ok(report),
                }
            }
        })
        .await
    }

    async fn forget_cursors(&self) -> Result<u64, StoreError> {
        self.scoped(async {
            let mut tx = self.begin().await?;
            let n = history::forget_cursors(&mut tx).await?;
            tx.commit().await.map_err(db)?;
            Ok(n)
        })
        .await
    }

    async fn served_schema(&self) -> Result<Option<String>, StoreError> {
        self.scoped(async {
            let mut tx = self.begin().await?;
            let doc = schema_store::served(&mut tx).await?;
            tx.commit().await.map_err(db)?;
            Ok(doc)
        })
        .await
    }

    async fn record_served_schema(&self, document: &str, at: Millis) -> Result<(), StoreError> {
        self.scoped(async {
            let mut tx = self.begin().await?;
            schema_store::record(&mut tx, document, at).await?;
            tx.commit().await.map_err(db)
        })
        .await
    }

    fn change_notes(&self) -> broadcast::Receiver<Announcement> {
        self.notes.subscribe()
    }

    async fn close(&self) {
        self.pool.close().await;
    }
}
