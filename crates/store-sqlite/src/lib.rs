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
use tidesync_engine::View;
use tidesync_engine::{Push, PushInput, PushLimits, StepSize, SyncOutput};
use tidesync_protocol::time::{now_millis, Millis};
use tidesync_protocol::{InvitationId, RecordId, Role, UserId};
use tidesync_store::{
    create_private_dir, defaults, sqlite_file, Accepted, AuthState, Backend, Credentials, Declined,
    GcHorizon, GcReport, Health, Invitation, InvitationChanged, InviteLimits, Member, MemberOp,
    MembersChanged, NewUser, PullInput, ReceivedInvitation, Store, StoreError, User, GC_BATCH,
};

use crate::error::driver;
use crate::readers::Readers;
use crate::writer::{Writer, WriterConfig};

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
        }
    }
}

/// See [`tidesync_store::defaults`], where each is written.
pub const DEFAULT_CASCADE_STEP: usize = defaults::CASCADE_STEP;
pub const DEFAULT_CASCADE_STEP_BYTES: usize = defaults::CASCADE_STEP_BYTES;
pub const DEFAULT_PUSH_STEP_BYTES: usize = defaults::PUSH_STEP_BYTES;

pub struct SqliteStore {
    file: PathBuf,
    writer: Writer,
    readers: Readers,
    limits: PushLimits,
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
        let writer = Writer::start(
            &file,
            WriterConfig {
                queue_depth: options.writer_queue_depth,
                queue_bytes: options.writer_queue_bytes,
                busy_timeout: options.busy_timeout,
            },
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
            held: std::sync::Mutex::new(Some(held)),
        })
    }

    pub fn file(&self) -> &Path {
        &self.file
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
        Health {
            database,
            writer: Some(self.writer.health()),
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
            .run_for(user, 0, move |c| {
                accounts::revoke_token(c, user, &jti, expires_at, now)
            })
            .await
    }

    async fn change_password(&self, user: UserId, password_hash: &str) -> Result<i64, StoreError> {
        let hash = password_hash.to_owned();
        self.writer
            .run_for(user, 0, move |c| {
                accounts::change_password(c, user, &hash, now_millis())
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
            .run_for(user, 0, move |c| {
                accounts::delete_user(c, user, now_millis())
            })
            .await
    }

    async fn push(
        &self,
        user: UserId,
        input: PushInput,
        cost: usize,
    ) -> Result<SyncOutput, StoreError> {
        // Each step (of a large cascade, or a push's changes up to its
        // budget) is a job of its own: the jobs queued meanwhile (other
        // users' pushes) commit between them. A caller who leaves ends the
        // loop; the steps done stay (each is a valid state, and a retry
        // finds their operations done).
        let mut push = Push::new(user, input, self.limits);
        loop {
            match self
                .writer
                .run_for(user, cost, move |c| sync::push(c, user, push))
                .await?
            {
                sync::Pushed::Done(out) => return Ok(out),
                sync::Pushed::Again(again) => push = Push::resume(user, again),
            }
        }
    }

    async fn pull(&self, user: UserId, input: PullInput) -> Result<SyncOutput, StoreError> {
        self.read(move |c| sync::pull(c, user, input)).await
    }

    async fn view(&self, user: UserId) -> Result<View, StoreError> {
        self.read(move |c| sync::view(c, user)).await
    }

    async fn members(&self, user: UserId, space: RecordId) -> Result<Vec<Member>, StoreError> {
        self.read(move |c| members::members(c, user, space)).await
    }

    async fn change_members(
        &self,
        user: UserId,
        space: RecordId,
        op: MemberOp,
    ) -> Result<MembersChanged, StoreError> {
        self.writer
            .run_for(user, 0, move |c| {
                members::change(c, user, space, op, now_millis())
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
        self.writer
            .run(0, move |c| {
                invitations::invite(c, user, space, &email, role, limits, now)
            })
            .await
    }

    async fn invitations(
        &self,
        user: UserId,
        now: Millis,
    ) -> Result<Vec<ReceivedInvitation>, StoreError> {
        self.read(move |c| invitations::received(c, user, now))
            .await
    }

    async fn accept_invitation(
        &self,
        user: UserId,
        id: InvitationId,
        now: Millis,
    ) -> Result<Accepted, StoreError> {
        self.writer
            .run(0, move |c| invitations::accept(c, user, id, now))
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
        self.read(move |c| invitations::sent(c, user, space, now))
            .await
    }

    async fn revoke_invitation(
        &self,
        user: UserId,
        space: RecordId,
        id: InvitationId,
        now: Millis,
    ) -> Result<InvitationChanged, StoreError> {
        self.writer
            .run(0, move |c| invitations::revoke(c, user, space, id, now))
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
        let mut report = GcReport::default();
        // One writer job per batch: pushes queued meanwhile run in between.
        loop {
            let (t, l) = self
                .writer
                .run(0, move |c| {
                    history::collect_batch(c, h.tombstones_before, h.log_before, GC_BATCH)
                })
                .await?;
            report.tombstones += t;
            report.log_rows += l;
            if t < GC_BATCH as u64 && l < GC_BATCH as u64 {
                break;
            }
        }
        report.revoked_tokens = self
            .writer
            .run(0, move |c| history::forget_expired_tokens(c, h.now))
            .await?;
        Ok(report)
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

    async fn close(&self) {
        self.writer.close().await;
        self.readers.close();
        self.held.lock().unwrap_or_else(|e| e.into_inner()).take();
    }
}
