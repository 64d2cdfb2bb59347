//! Storage for tidesync: the [`Store`] trait every backend implements, the
//! types it speaks, and (feature `testsuite`) the one test suite every
//! backend must pass. The backends live in their own crates
//! (`tidesync-store-sqlite`, `tidesync-store-postgres`); the sync algorithm
//! they execute lives in `tidesync-engine`.

pub mod defaults;
mod error;
mod import;
mod invitations;
#[cfg(feature = "testsuite")]
pub mod testsuite;

use async_trait::async_trait;
use std::path::{Path, PathBuf};
use tidesync_protocol::entity::EntityType;
use tidesync_protocol::time::Millis;
use tidesync_protocol::{InvitationId, RecordId, Role, ScopeId, UserId};

pub use error::StoreError;
pub use import::{
    entity_index, ImportOutcome, ImportedAccount, ImportedLog, ImportedRecord, ImportedUser,
};
pub use invitations::{
    space_name, Accepted, Declined, Invitation, InvitationChanged, InviteLimits,
    ReceivedInvitation, INVITATION_TTL_MS, RATE_WINDOW_MS,
};
pub use tidesync_engine::{PulledRecord, PushInput, ScopeView, SyncOutput, View};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub id: UserId,
    pub email: String,
    pub name: String,
    pub created_at: Millis,
}

/// A user with the stored password hash, for login only.
#[derive(Clone)]
pub struct Credentials {
    pub user: User,
    pub password_hash: String,
    pub token_generation: i64,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .field("password_hash", &"<redacted>")
            .finish()
    }
}

/// What checking a token needs: the user, its token generation and the ids
/// of its revoked tokens that have not expired.
#[derive(Clone, Debug)]
pub struct AuthState {
    pub user: User,
    pub token_generation: i64,
    pub revoked: Vec<String>,
}

/// "Scope `scope` is now at `version`, by `device` of `user`": announced by
/// every backend once committed. A membership change is announced on the
/// affected user's personal scope with `membership` set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChangeNote {
    pub scope: ScopeId,
    pub version: i64,
    pub user: UserId,
    pub device: String,
    pub membership: bool,
}

impl ChangeNote {
    /// Membership notes on these users' personal scopes: their streams
    /// reread their scopes (and, for an invitation, their invitations),
    /// their long-polls answer.
    pub fn memberships(users: &[(UserId, ScopeId)]) -> Vec<ChangeNote> {
        users
            .iter()
            .map(|(user, personal)| ChangeNote {
                scope: *personal,
                version: 0,
                user: *user,
                device: String::new(),
                membership: true,
            })
            .collect()
    }
}

/// What every backend announces once it has committed (see
/// [`Store::change_notes`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Announcement {
    /// One commit, by any instance.
    Change(ChangeNote),
    /// Announcements may have been lost (the connection that receives them
    /// was replaced, e.g. after a partition): whoever waits for them should
    /// reread what it follows, and recheck tokens.
    Gap,
    /// A token of this user was revoked (logout, password change, account
    /// deletion), by any instance: its cached auth state is stale, and its
    /// open streams and long-polls must recheck their tokens.
    Revoked(UserId),
}

/// A member of a space, as the members endpoints show it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    pub user: UserId,
    pub email: String,
    pub name: String,
    pub role: Role,
    /// When the user got this role.
    pub since: Millis,
}

/// A change to a space's members. Adding one takes an invitation the
/// invitee accepts ([`Store::invite`], [`Store::accept_invitation`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MemberOp {
    /// Owner only: editor or viewer.
    SetRole { member: UserId, role: Role },
    /// The owner removes anyone but themself; any member removes themself.
    Remove { member: UserId },
    /// Owner only, to an active member; the old owner becomes an editor.
    Transfer { to: UserId },
}

/// What a membership change did: the members after it, and whose devices
/// must pull (their view of the space changed).
#[derive(Clone, Debug)]
pub struct MembersChanged {
    pub members: Vec<Member>,
    /// The affected users, with their personal scope (where they are poked).
    pub affected: Vec<(UserId, ScopeId)>,
}

pub struct NewUser {
    pub id: UserId,
    pub email: String,
    pub name: String,
    pub password_hash: String,
    pub created_at: Millis,
}

impl NewUser {
    /// The account of a user being imported, with its hash as it came.
    pub fn imported(u: &tidesync_engine::import::ImportedUser) -> NewUser {
        NewUser {
            id: u.id,
            email: u.email.clone(),
            name: u.name.clone(),
            password_hash: u.password_hash.clone(),
            created_at: u.created_at,
        }
    }
}

pub use tidesync_engine::PullInput;

/// One page of the data export (see [`Store::export`]): the user's records
/// of one kind, in (scope, id) order after `after`.
#[derive(Clone, Copy, Debug)]
pub struct ExportQuery {
    pub kind: EntityType,
    /// Include tombstones.
    pub tombstones: bool,
    pub after: Option<(ScopeId, RecordId)>,
    /// Most records in the page.
    pub limit: usize,
    /// Most bytes of record text ([`PulledRecord::size`]); the first record
    /// is always taken, however large, so that every page makes progress.
    pub max_bytes: usize,
}

impl ExportQuery {
    /// Whether a record of `size` bytes still fits a page that holds
    /// `taken` records of `bytes` bytes.
    pub fn fits(&self, taken: usize, bytes: usize, size: usize) -> bool {
        taken == 0 || (taken < self.limit && bytes.saturating_add(size) <= self.max_bytes)
    }
}

/// A page of the data export.
#[derive(Clone, Debug, Default)]
pub struct ExportPage {
    pub records: Vec<(ScopeId, PulledRecord)>,
    /// More records follow: ask again after the last one.
    pub more: bool,
}

/// How far [`Store::forget_cursors`] moves each scope's counter: more
/// versions than one scope could issue between a backup and its restore.
pub const RESTORE_GAP: i64 = 1 << 40;

// History collection's types belong to its machine in the engine.
pub use tidesync_engine::history::{GcHorizon, GcReport, GC_BATCH};

/// How the database and the backend's own workers are doing, for `/health`.
#[derive(Clone, Debug, Default)]
pub struct Health {
    /// A query answered.
    pub database: bool,
    /// The backend's workers can take work now (SQLite: its writer is
    /// alive, its queue not full, no job stuck); true where it has none.
    pub ready: bool,
    /// What the backend tells about its workers, shown as it is beside
    /// `database` in `/health` (SQLite: `writer`, its queue and restarts);
    /// empty where it has none.
    pub details: serde_json::Map<String, serde_json::Value>,
}

impl Health {
    /// Whether the backend can take work now.
    pub fn ok(&self) -> bool {
        self.database && self.ready
    }
}

/// The storage operations the server needs. Each method that writes runs in
/// exactly one transaction.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    fn backend(&self) -> Backend;

    /// Applies the embedded migrations that are not applied yet.
    async fn migrate(&self) -> Result<(), StoreError>;

    /// A cheap round trip to the database, and the state of any worker.
    async fn health(&self) -> Health;

    /// Fails with [`StoreError::EmailTaken`] when the email is registered.
    async fn create_user(&self, user: NewUser) -> Result<User, StoreError>;

    async fn user_by_id(&self, id: UserId) -> Result<Option<User>, StoreError>;

    async fn credentials_by_email(&self, email: &str) -> Result<Option<Credentials>, StoreError>;

    async fn auth_state(&self, id: UserId, now: Millis) -> Result<Option<AuthState>, StoreError>;

    /// Records a token as revoked until `expires_at`; forgets expired ones.
    /// False when it was revoked already; [`StoreError::UserGone`] when the
    /// user no longer exists. Announces [`Announcement::Revoked`] with the
    /// commit, as [`Store::change_password`] and [`Store::delete_user`] do.
    async fn revoke_token(
        &self,
        user: UserId,
        jti: &str,
        expires_at: Millis,
        now: Millis,
    ) -> Result<bool, StoreError>;

    /// Spends a single-use stream ticket: recorded like a revoked token until
    /// `expires_at`, but announced to no one (no open request depends on a
    /// ticket's own id). False when it was spent already.
    async fn spend_ticket(
        &self,
        user: UserId,
        jti: &str,
        expires_at: Millis,
        now: Millis,
    ) -> Result<bool, StoreError>;

    /// Sets a new password hash and bumps the token generation, which
    /// invalidates every token issued before. Returns the new generation.
    async fn change_password(&self, user: UserId, password_hash: &str) -> Result<i64, StoreError>;

    /// Replaces a password hash of another system (bcrypt, from an import)
    /// by a tidesync one after a successful sign-in, if it is still `old`.
    /// Unlike [`Store::change_password`] it keeps the token generation: the
    /// password is the same, so no token is revoked. False when the stored
    /// hash is no longer `old` (changed meanwhile) or the user is gone.
    async fn upgrade_password_hash(
        &self,
        user: UserId,
        old: &str,
        new: &str,
    ) -> Result<bool, StoreError>;

    /// Imports one user of another system with their records and applied
    /// operations, in one transaction (see [`ImportedUser`]): creates the
    /// account if its id is absent, inserts the records and log rows that
    /// do not exist yet (versions from the personal scope's counter, in
    /// order of last change), leaves everything else alone.
    async fn import_user(&self, user: ImportedUser) -> Result<ImportOutcome, StoreError>;

    /// Deletes the user and everything it owns, for good.
    async fn delete_user(&self, user: UserId) -> Result<(), StoreError>;

    /// Applies a batch of changes and pulls, in one transaction (or, where
    /// the backend's options cut large pushes in steps, in several: each a
    /// valid state). How it is queued and stepped is the backend's own
    /// policy, set when it is opened.
    async fn push(&self, user: UserId, input: PushInput) -> Result<SyncOutput, StoreError>;

    /// Returns what changed after the cursor: one page.
    async fn pull(&self, user: UserId, input: PullInput) -> Result<SyncOutput, StoreError>;

    /// The user's memberships with each scope's committed counter.
    /// [`StoreError::UserGone`] when the user no longer exists.
    async fn view(&self, user: UserId) -> Result<View, StoreError>;

    /// The members of a space the user can see ([`StoreError::NotFound`]
    /// otherwise; an unshared space has its owner only).
    async fn members(&self, user: UserId, space: RecordId) -> Result<Vec<Member>, StoreError>;

    /// Changes a space's members as `user`, in one transaction. Rules (who
    /// may do what) are the engine's (`tidesync_engine::members`).
    async fn change_members(
        &self,
        user: UserId,
        space: RecordId,
        op: MemberOp,
    ) -> Result<MembersChanged, StoreError>;

    /// The owner invites `email` (normalized) to a space as editor or
    /// viewer, in one transaction: a new pending invitation, or the one
    /// pending for that email refreshed (same id, new role and expiry).
    /// Shares nothing. Rules and limits: `tidesync_engine::members::invitations`;
    /// beyond the limits, [`StoreError::RateLimited`].
    async fn invite(
        &self,
        user: UserId,
        space: RecordId,
        email: &str,
        role: Role,
        limits: InviteLimits,
        now: Millis,
    ) -> Result<InvitationChanged, StoreError>;

    /// The user's pending, unexpired invitations (to their account's
    /// email) whose inviter still owns a live space, except those to spaces
    /// the user blocked; oldest first.
    async fn invitations(
        &self,
        user: UserId,
        now: Millis,
    ) -> Result<Vec<ReceivedInvitation>, StoreError>;

    /// Accepts one of [`Store::invitations`], in one transaction: adds the
    /// user to the space as a member was added before invitations (the
    /// first member shares it). Anything else: [`StoreError::NotFound`].
    async fn accept_invitation(
        &self,
        user: UserId,
        id: InvitationId,
        now: Millis,
    ) -> Result<Accepted, StoreError>;

    /// Declines one of [`Store::invitations`]; with `block`, later
    /// invitations to that space are stored but never shown to the user.
    async fn decline_invitation(
        &self,
        user: UserId,
        id: InvitationId,
        block: bool,
        now: Millis,
    ) -> Result<Declined, StoreError>;

    /// The owner's pending, unexpired invitations to a space, oldest first.
    async fn space_invitations(
        &self,
        user: UserId,
        space: RecordId,
        now: Millis,
    ) -> Result<Vec<Invitation>, StoreError>;

    /// The owner withdraws a pending invitation to a space.
    async fn revoke_invitation(
        &self,
        user: UserId,
        space: RecordId,
        id: InvitationId,
        now: Millis,
    ) -> Result<InvitationChanged, StoreError>;

    /// A page of the user's records of one kind, in every scope they read,
    /// in (scope, id) order after `q.after`, tombstones included if asked:
    /// the data export, read page by page so it streams in bounded memory.
    /// A page stops at `q.limit` records or `q.max_bytes` of record text,
    /// whichever comes first, and the backend reads no further (SQLite
    /// stops stepping; PostgreSQL cuts the page in the query). Each page is
    /// a short read of its own: no transaction stays open between pages.
    async fn export(&self, user: UserId, q: ExportQuery) -> Result<ExportPage, StoreError>;

    /// Removes history older than the horizon, in batches of [`GC_BATCH`]
    /// rows per transaction so that other requests interleave.
    async fn collect_garbage(&self, horizon: GcHorizon) -> Result<GcReport, StoreError>;

    /// After a restore: makes every device's cursor stale, so each device
    /// resyncs once (409 `resync_required`) instead of trusting positions
    /// the restored database never reached, and moves every scope's
    /// counter [`RESTORE_GAP`] ahead, past any version the lost history
    /// could have issued. Returns the number of scopes.
    async fn forget_cursors(&self) -> Result<u64, StoreError>;

    /// The schema document this deployment served last (the newest
    /// [`Store::record_served_schema`]), `None` before the first.
    async fn served_schema(&self) -> Result<Option<String>, StoreError>;

    /// Remembers `document` as the schema served from `at` on; earlier
    /// ones are kept, as the deployment's history of schemas.
    async fn record_served_schema(&self, document: &str, at: Millis) -> Result<(), StoreError>;

    /// What is committed, announced by the backend itself once durable:
    /// every push that wrote, every membership change, every revocation
    /// (not a spent ticket). SQLite announces from its writer after each
    /// COMMIT (it is the only process writing); PostgreSQL relays what
    /// *any* instance sharing the database committed (LISTEN/NOTIFY), and
    /// [`Announcement::Gap`] when notices may have been lost.
    fn change_notes(&self) -> tokio::sync::broadcast::Receiver<Announcement>;

    /// Waits for in-flight work and closes every connection.
    async fn close(&self);
}

/// The model's sharing roots (`shareable` collections) as an SQL list for
/// `kind IN (…)`, `'space'` for the built-in, `NULL` when there is none;
/// both backends quote alike. Collection names are identifiers (the schema
/// checks), so nothing needs escaping.
pub fn roots_sql(model: tidesync_protocol::entity::Model) -> String {
    let names: Vec<String> = model
        .collections()
        .iter()
        .filter(|e| e.is_shareable())
        .map(|e| format!("'{}'", e.as_str()))
        .collect();
    if names.is_empty() {
        "NULL".into()
    } else {
        names.join(", ")
    }
}

/// Where a `sqlite:` URL keeps its database file, if it names one.
pub fn sqlite_file(url: &str) -> Option<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or("");
    if path.is_empty() || path == ":memory:" {
        return None;
    }
    Some(PathBuf::from(path))
}

/// Creates a missing folder readable by its owner only: it will hold password
/// hashes, secrets and every user's data. An existing folder is left as it is.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_file_from_url() {
        assert_eq!(
            sqlite_file("sqlite://data/tidesync.db"),
            Some(PathBuf::from("data/tidesync.db"))
        );
        assert_eq!(
            sqlite_file("sqlite:///tmp/x.db?mode=rwc"),
            Some(PathBuf::from("/tmp/x.db"))
        );
        assert_eq!(sqlite_file("sqlite::memory:"), None);
        assert_eq!(sqlite_file("postgres://localhost/x"), None);
    }
}
