//! `Store::import_user` on PostgreSQL: one transaction per user, under the
//! row lock of the user's personal scope (the lock a push of theirs takes),
//! so an import and the user's pushes never interleave.

use std::collections::HashSet;

use sqlx::postgres::PgConnection;
use tidesync_engine::import;
use tidesync_protocol::entity::Model;
use tidesync_protocol::UserId;
use tidesync_store::{
    ChangeNote, ImportOutcome, ImportedAccount, ImportedUser, NewUser, StoreError,
};

use crate::error::db;
use crate::{accounts, push, sql, stmt};

/// Runs inside the caller's transaction; the caller commits. The change
/// note to send with the commit, when records were written.
pub async fn import_user(
    c: &mut PgConnection,
    u: ImportedUser,
) -> Result<(ImportOutcome, Option<ChangeNote>), StoreError> {
    let account = if accounts::user_by_id(&mut *c, u.id).await?.is_some() {
        ImportedAccount::AlreadyPresent
    } else {
        let created = accounts::create_user(&mut *c, &NewUser::imported(&u)).await?;
        if !created {
            return Ok((ImportOutcome::new(ImportedAccount::EmailTaken), None));
        }
        ImportedAccount::Created
    };
    let mut out = ImportOutcome::new(account);
    let view = sql::view(&mut *c, u.id)
        .await?
        .ok_or(StoreError::UserGone)?;
    // The personal scope's lock, then (under it) its counter and the acks
    // already stored for the imported operations.
    push::lock(&mut *c, &[view.personal]).await?;
    let ops: Vec<String> = u.logs.iter().map(|l| l.operation_id.clone()).collect();
    let under_lock = push::batch(
        &mut *c,
        Model::builtin(),
        u.id,
        &[view.personal],
        &ops,
        (&[], None),
        &[],
    )
    .await?;
    let head = under_lock
        .locked
        .first()
        .map(|(_, v, _)| *v)
        .ok_or(StoreError::UserGone)?;
    let scopes: Vec<_> = view.readable().iter().map(|s| s.id).collect();
    let ids: Vec<_> = u.records.iter().map(|r| r.id).collect();
    let present: HashSet<_> = sql::locate(&mut *c, &ids, &scopes)
        .await?
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    let new = out.split_records(u.records, &present);
    let (rows, new_head) = import::plan(view.personal, u.id, head, &new);

    let logged: HashSet<String> = under_lock.acks.into_iter().map(|(op, _)| op).collect();
    let rows_l = out.split_logs(&u.logs, &logged);
    // The caller sends the change note with its own notify.
    push::write(
        &mut *c,
        u.id,
        &rows_l,
        &rows,
        &[(view.personal, new_head)],
        crate::CHANNEL,
        &[],
    )
    .await?;
    let note = (!rows.is_empty()).then(|| ChangeNote {
        scope: view.personal,
        version: new_head,
        user: u.id,
        device: import::IMPORT_OP.to_owned(),
        membership: false,
    });
    Ok((out, note))
}

/// See `Store::upgrade_password_hash`.
pub async fn upgrade_password_hash(
    c: &mut PgConnection,
    user: UserId,
    old: &str,
    new: &str,
) -> Result<bool, StoreError> {
    let r = stmt::query("UPDATE users SET password_hash = $3 WHERE id = $1 AND password_hash = $2")
        .bind(user.as_uuid())
        .bind(old)
        .bind(new)
        .execute(c)
        .await
        .map_err(db)?;
    Ok(r.rows_affected() == 1)
}
