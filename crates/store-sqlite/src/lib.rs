//! tidesync's embedded backend: one SQLite file, read through a few reader
//! connections and written by one supervised writer thread (see
//! [`writer`]), all through rusqlite.
//!
//! Why rusqlite alone: through sqlx every statement is a round trip to a
//! worker thread, and a push runs about nine of them on SQLite's single
//! writer; direct calls made the write path 2–5× faster (issue 5), and
//! reads through the same driver let every statement exist once (`sql.rs`,
//! `write.rs`).

mod accounts;
pub mod backup;
mod cascade;
mod error;
mod history;
mod import;
mod invitations;
mod members;
mod migrate;
pub mod raw;
mod readers;
mod schema_store;
mod sql;
mod sync;
mod write;
pub mod writer;

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{Connection, OpenFlags};
use tidesync_engine::history::{Collect, GcNeed};
use tidesync_engine::View;
use tidesync_engine::{Push, PushInput, PushLimits, StepSize, SyncOutput};
use tidesync_protocol::entity::Model;
use tidesync_protocol::time::{now_millis, Millis};
use tidesync_protocol::{InvitationId, RecordId, Role, UserId};
use tidesync_store::{
    create_private_dir, defaults, sqlite_file, Accepted, Announcement, AuthState, Backend,
    ChangeNote, Credentials, Declined, GcHorizon, GcReport, Health, Invitation, InvitationChanged,
    InviteLimits, Member, MemberOp, MembersChanged, NewUser, PullInput, ReceivedInvitation, Store,
    StoreError, User, GC_BATCH,
};
use tokio::sync::broadcast;

use crate::error::driver;
use crate::readers::Readers;
use crate::writer::{Writer, WriterConfig, WriterHealth};

/// How the store is set up; [`SqliteOptions::default`] is what `tidesync`
/// runs with unless configured.
#[derive(Clone, Debug)]
pub struct SqliteOptions {
    pub readers: usize,
    /// Most jobs waiting for the writer; beyond, `Busy` (503) at once.
    pub writer_queue_depth: usize,
    /// Most bytes of requests waiting for the writer; beyond, `Busy`.
    pub writer_queue_bytes: usize,
    /// How long a statement waits for a lock held by another process.
    pub busy_timeout: Duration,
    /// How long a read waits for a free reader.
    pub acquire_timeout: Duration,
    /// Most records one transaction of a cascade deletes: a larger delete
    /// commits its children in steps, with other jobs in between.
    pub cascade_step: usize,
    /// Most bytes (as stored) of records one transaction of a cascade
    /// deletes: large records cost the writer by their size.
    pub cascade_step_bytes: usize,
    /// Most bytes (as stored) of records one transaction of a push loads,
    /// and so rewrites: a push that needs more commits in steps, with other
    /// jobs in between.
    pub push_step_bytes: usize,
    /// The collections records are of (the built-in bucket list unless the
    /// server runs a declared schema).
    pub model: Model,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions {
            readers: 4,
            writer_queue_depth: defaults::WRITER_QUEUE_DEPTH,
            writer_queue_bytes: defaults::WRITER_QUEUE_BYTES,
            busy_timeout: Duration::from_secs(5),
            acquire_timeout: Duration::from_secs(5),
            cascade_step: DEFAULT_CASCADE_STEP,
            cascade_step_bytes: DEFAULT_CASCADE_STEP_BYTES,
            push_step_bytes: DEFAULT_PUSH_STEP_BYTES,
            model: Model::builtin(),
        }
    }
}

/// See [`tidesync_store::defaults`], where each is written.
pub const DEFAULT_CASCADE_STEP: usize = defaults::CASCADE_STEP;
pub const DEFAULT_CASCADE_STEP_BYTES: usize = defaults::CASCADE_STEP_BYTES;
pub const DEFAULT_PUSH_STEP_BYTES: usize = defaults::PUSH_STEP_BYTES;

/// Announcements buffered for a slow listener before it is told it lagged
/// (then it rereads what it follows).
const NOTES_BUFFER: usize = 1024;

/// What a push holds in memory while it waits for the writer, in bytes:
/// its changes about as they were sent (their data as JSON text). The
/// writer's queue is bounded by the sum of these.
fn queue_cost(input: &PushInput) -> usize {
    use tidesync_protocol::sync::ChangeInput;
    fn json(v: &serde_json::Value) -> usize {
        use serde_json::Value;
        match v {
            Value::Null | Value::Bool(_) => 5,
            Value::Number(_) => 16,
            Value::String(s) => s.len() + 2,
            Value::Array(a) => a.iter().map(|v| json(v) + 1).sum::<usize>() + 2,
            Value::Object(o) => o.iter().map(|(k, v)| k.len() + 4 + json(v)).sum::<usize>() + 2,
        }
    }
    // The fields every change has besides its data (ids, kind, operation,
    // timestamp), as JSON.
    const ENVELOPE: usize = 160;
    input
        .changes
        .iter()
        .map(|c| match c {
            ChangeInput::Valid(c) => {
                let data: usize = c
                    .data
                    .fields
                    .iter()
                    .map(|(k, v)| k.len() + 4 + json(v))
                    .sum();
                ENVELOPE + c.operation_id.len() + c.device_id.len() + data
            }
            ChangeInput::Invalid { .. } => ENVELOPE,
        })
        .sum()
}

/// The change notes of one push transaction: its scopes' new counters.
fn push_notes(
    user: UserId,
    device: &str,
    heads: Vec<(tidesync_protocol::ScopeId, i64)>,
) -> Vec<Announcement> {
    heads
        .into_iter()
        .map(|(scope, version)| {
            Announcement::Change(ChangeNote {
                scope,
                version,
                user,
                device: device.to_owned(),
                membership: false,
            })
        })
        .collect()
}

/// Membership announcements for these users.
fn membership_notes(users: &[(UserId, tidesync_protocol::ScopeId)]) -> Vec<Announcement> {
    ChangeNote::memberships(users)
        .into_iter()
        .map(Announcement::Change)
        .collect()
}

pub struct SqliteStore {
    file: PathBuf,
    writer: Writer,
    readers: Readers,
    /// How far one transaction of a push goes (cascade and load steps).
    limits: PushLimits,
    /// What the writer announces after its commits ([`Store::change_notes`]).
    notes: broadcast::Sender<Announcement>,
    /// The collections its records are of (their `kind`).
    model: Model,
    /// A shared lock on `<db>.lock` while open, so that `tidesync restore`
    /// cannot replace the file under a running server.
    held: std::sync::Mutex<Option<std::fs::File>>,
}

/// Opens a connection with the settings every one of ours uses: WAL (readers
/// beside the writer), `synchronous=FULL` (a commit is on disk before it is
/// acknowledged: an acked operation survives power loss), foreign keys on.
pub(crate) fn open_connection(
    file: &Path,
    busy_timeout: Duration,
) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(
        file,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| StoreError::Config(format!("cannot open {}: {e}", file.display())))?;
    conn.busy_timeout(busy_timeout).map_err(driver)?;
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;",
    )
    .map_err(driver)?;
    conn.set_prepared_statement_cache_capacity(128);
    Ok(conn)
}

impl SqliteStore {
    /// Opens (creating if missing) the database a `sqlite:` URL names.
    pub fn open(url: &str, options: SqliteOptions) -> Result<SqliteStore, StoreError> {
        let file = sqlite_file(url).ok_or_else(|| {
            StoreError::Config(
                "a SQLite DATABASE_URL must name a file, e.g. sqlite://data/tidesync.db".into(),
            )
        })?;
        if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
            create_private_dir(dir)
                .map_err(|e| StoreError::Config(format!("cannot create {}: {e}", dir.display())))?;
        }
        let held = backup::hold(&file)?;
        let (notes, _) = broadcast::channel(NOTES_BUFFER);
        let writer = Writer::start(
            &file,
            WriterConfig {
                queue_depth: options.writer_queue_depth,
                queue_bytes: options.writer_queue_bytes,
                busy_timeout: options.busy_timeout,
            },
            notes.clone(),
        )?;
        let readers = Readers::open(
            file.clone(),
            options.readers,
            options.busy_timeout,
            options.acquire_timeout,
        )?;
        Ok(SqliteStore {
            file,
            writer,
            readers,
            limits: PushLimits {
                cascade_step: Some(StepSize {
                    records: options.cascade_step.max(1),
                    bytes: options.cascade_step_bytes.max(1),
                }),
                run_bytes: Some(options.push_step_bytes.max(1)),
            },
            notes,
            model: options.model,
            held: std::sync::Mutex::new(Some(held)),
        })
    }

    pub fn file(&self) -> &Path {
        &self.file
    }

    /// The writer's state: what `/health` shows under `writer`.
    pub fn writer_health(&self) -> WriterHealth {
        self.writer.health()
    }

    /// Runs `work` on the write connection, inside the writer's transaction
    /// (a savepoint of the current group), answered after its COMMIT; an
    /// `Err` rolls back what it did. For maintenance tasks, and for tests
    /// that need to hold or break the writer.
    pub async fn write<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        self.writer.run(0, work).await
    }

    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        self.readers.read(f).await
    }
}

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> Backend {
        Backend::Sqlite
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        let applied = self.writer.run(0, migrate::run).await?;
        if !applied.is_empty() {
            tracing::info!(?applied, "SQLite migrations applied");
        }
        Ok(())
    }

    async fn health(&self) -> Health {
        let database = self
            .read(|c| c.query_row("SELECT 1", [], |_| Ok(())).map_err(driver))
            .await
            .is_ok();
        let writer = self.writer.health();
        let mut details = serde_json::Map::new();
        details.insert("writer".into(), writer.to_json());
        Health {
            database,
            ready: writer.can_take_work(),
            details,
        }
    }

    async fn create_user(&self, u: NewUser) -> Result<User, StoreError> {
        self.writer
            .run(0, move |c| {
                if !accounts::create_user(c, &u)? {
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
        self.read(move |c| accounts::user_by_id(c, id)).await
    }

    async fn credentials_by_email(&self, email: &str) -> Result<Option<Credentials>, StoreError> {
        let email = email.to_owned();
        self.read(move |c| accounts::credentials_by_email(c, &email))
            .await
    }

    async fn auth_state(&self, id: UserId, now: Millis) -> Result<Option<AuthState>, StoreError> {
        self.read(move |c| accounts::auth_state(c, id, now)).await
    }

    async fn revoke_token(
        &self,
        user: UserId,
        jti: &str,
        expires_at: Millis,
        now: Millis,
    ) -> Result<bool, StoreError> {
        let jti = jti.to_owned();
        self.writer
            .run_announcing(Some(user), 0, move |c| {
                let fresh = accounts::revoke_token(c, user, &jti, expires_at, now)?;
                let notes = if fresh {
                    vec![Announcement::Revoked(user)]
                } else {
                    Vec::new()
                };
                Ok((fresh, notes))
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
        let jti = jti.to_owned();
        self.writer
            .run_for(user, 0, move |c| {
                accounts::revoke_token(c, user, &jti, expires_at, now)
            })
            .await
    }

    async fn change_password(&self, user: UserId, password_hash: &str) -> Result<i64, StoreError> {
        let hash = password_hash.to_owned();
        self.writer
            .run_announcing(Some(user), 0, move |c| {
                let generation = accounts::change_password(c, user, &hash, now_millis())?;
                Ok((generation, vec![Announcement::Revoked(user)]))
            })
            .await
    }

    async fn upgrade_password_hash(
        &self,
        user: UserId,
        old: &str,
        new: &str,
    ) -> Result<bool, StoreError> {
        let (old, new) = (old.to_owned(), new.to_owned());
        self.writer
            .run(0, move |c| {
                import::upgrade_password_hash(c, user, &old, &new)
            })
            .await
    }

    async fn import_user(
        &self,
        user: tidesync_store::ImportedUser,
    ) -> Result<tidesync_store::ImportOutcome, StoreError> {
        self.writer
            .run(0, move |c| import::import_user(c, user))
            .await
    }

    async fn delete_user(&self, user: UserId) -> Result<(), StoreError> {
        // What goes with the account anyway first, a batch per job, so
        // that no job of this deletion holds the writer long.
        loop {
            let shed = self
                .writer
                .run_for(user, 0, move |c| {
                    accounts::shed_user_rows(c, user, GC_BATCH)
                })
                .await?;
            if shed < GC_BATCH {
                break;
            }
        }
        self.writer
            .run_announcing(Some(user), 0, move |c| {
                accounts::delete_user(c, user, now_millis())?;
                Ok(((), vec![Announcement::Revoked(user)]))
            })
            .await
    }

    async fn push(&self, user: UserId, input: PushInput) -> Result<SyncOutput, StoreError> {
        let cost = queue_cost(&input);
        let device: std::sync::Arc<str> = input.device_id.as_str().into();
        // Each step (of a large cascade, or a push's changes up to its
        // budget) is a job of its own: the jobs queued meanwhile (other
        // users' pushes) commit between them. A caller who leaves ends the
        // loop; the steps done stay (each is a valid state, and a retry
        // finds their operations done).
        // Each step announces what it committed, as it commits.
        let mut push = Push::new(user, input, self.limits);
        let model = self.model;
        loop {
            let device = device.clone();
            match self
                .writer
                .run_announcing(Some(user), cost, move |c| {
                    let (pushed, heads) = sync::push(c, model, user, push)?;
                    Ok((pushed, push_notes(user, &device, heads)))
                })
                .await?
            {
                sync::Pushed::Done(out) => return Ok(out),
                sync::Pushed::Again(again) => push = Push::resume(user, again),
            }
        }
    }

    async fn pull(&self, user: UserId, input: PullInput) -> Result<SyncOutput, StoreError> {
        let model = self.model;
        self.read(move |c| sync::pull(c, model, user, input)).await
    }

    async fn view(&self, user: UserId) -> Result<View, StoreError> {
        self.read(move |c| sync::view(c, user)).await
    }

    async fn members(&self, user: UserId, space: RecordId) -> Result<Vec<Member>, StoreError> {
        let model = self.model;
        self.read(move |c| members::members(c, model, user, space))
            .await
    }

    async fn change_members(
        &self,
        user: UserId,
        space: RecordId,
        op: MemberOp,
    ) -> Result<MembersChanged, StoreError> {
        let model = self.model;
        self.writer
            .run_announcing(Some(user), 0, move |c| {
                let changed = members::change(c, model, user, space, op, now_millis())?;
                let notes = membership_notes(&changed.affected);
                Ok((changed, notes))
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
        let email = email.to_owned();
        let model = self.model;
        self.writer
            .run_announcing(None, 0, move |c| {
                let out = invitations::invite(c, model, user, space, &email, role, limits, now)?;
                let notes = membership_notes(&out.notify);
                Ok((out, notes))
            })
            .await
    }

    async fn invitations(
        &self,
        user: UserId,
        now: Millis,
    ) -> Result<Vec<ReceivedInvitation>, StoreError> {
        let model = self.model;
        self.read(move |c| invitations::received(c, model, user, now))
            .await
    }

    async fn accept_invitation(
        &self,
        user: UserId,
        id: InvitationId,
        now: Millis,
    ) -> Result<Accepted, StoreError> {
        let model = self.model;
        self.writer
            .run_announcing(None, 0, move |c| {
                let out = invitations::accept(c, model, user, id, now)?;
                let notes = membership_notes(&out.changed.affected);
                Ok((out, notes))
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
        self.writer
            .run(0, move |c| invitations::decline(c, user, id, block, now))
            .await
    }

    async fn space_invitations(
        &self,
        user: UserId,
        space: RecordId,
        now: Millis,
    ) -> Result<Vec<Invitation>, StoreError> {
        let model = self.model;
        self.read(move |c| invitations::sent(c, model, user, space, now))
            .await
    }

    async fn revoke_invitation(
        &self,
        user: UserId,
        space: RecordId,
        id: InvitationId,
        now: Millis,
    ) -> Result<InvitationChanged, StoreError> {
        let model = self.model;
        self.writer
            .run_announcing(None, 0, move |c| {
                let out = invitations::revoke(c, model, user, space, id, now)?;
                let notes = membership_notes(&out.notify);
                Ok((out, notes))
            })
            .await
    }

    async fn export(
        &self,
        user: UserId,
        q: tidesync_store::ExportQuery,
    ) -> Result<tidesync_store::ExportPage, StoreError> {
        // On a reader, one read transaction per page: none stays open while
        // the export waits for its client (a long one would hold back WAL
        // checkpoints).
        self.read(move |c| {
            let view = sync::view(c, user)?;
            let scopes: Vec<_> = view.readable().iter().map(|s| s.id).collect();
            history::export(c, &scopes, q)
        })
        .await
    }

    async fn collect_garbage(&self, h: GcHorizon) -> Result<GcReport, StoreError> {
        let mut gc = Collect::new(h);
        // One writer job per batch: pushes queued meanwhile run in between.
        loop {
            match gc.need() {
                GcNeed::OldTombstones { before, limit } => {
                    let (t, l) = self
                        .writer
                        .run(0, move |c| {
                            let found = history::old_tombstones(c, before, limit)?;
                            let n = found.len() as u64;
                            Ok((n, history::apply_gc(c, &gc.plan(found))?))
                        })
                        .await?;
                    gc.applied(t, l);
                }
                GcNeed::ExpiredTokens { now } => {
                    let n = self
                        .writer
                        .run(0, move |c| history::forget_expired_tokens(c, now))
                        .await?;
                    gc.tokens_forgotten(n);
                }
                GcNeed::Done(report) => return Ok(report),
            }
        }
    }

    async fn forget_cursors(&self) -> Result<u64, StoreError> {
        self.writer.run(0, history::forget_cursors).await
    }

    async fn served_schema(&self) -> Result<Option<String>, StoreError> {
        self.read(schema_store::served).await
    }

    async fn record_served_schema(&self, document: &str, at: Millis) -> Result<(), StoreError> {
        let document = document.to_owned();
        self.writer
            .run(document.len(), move |c| {
                schema_store::record(c, &document, at)
            })
            .await
    }

    fn change_notes(&self) -> broadcast::Receiver<Announcement> {
        self.notes.subscribe()
    }

    async fn close(&self) {
        self.writer.close().await;
        self.readers.close();
        self.held.lock().unwrap_or_else(|e| e.into_inner()).take();
    }
}
