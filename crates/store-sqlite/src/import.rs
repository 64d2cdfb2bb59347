//! `Store::import_user` on SQLite: one writer job (one savepoint of the
//! writer's transaction), so a user is imported whole or not at all.

use rusqlite::{params, Connection};
use tidesync_engine::import;
use tidesync_protocol::UserId;
use tidesync_store::{ImportOutcome, ImportedAccount, ImportedUser, NewUser, StoreError};

use crate::error::driver;
use crate::{accounts, sql, write};

pub fn import_user(c: &Connection, u: ImportedUser) -> Result<ImportOutcome, StoreError> {
    let account = if accounts::user_by_id(c, u.id)?.is_some() {
        ImportedAccount::AlreadyPresent
    } else {
        let created = accounts::create_user(c, &NewUser::imported(&u))?;
        if !created {
            return Ok(ImportOutcome::new(ImportedAccount::EmailTaken));
        }
        ImportedAccount::Created
    };
    let mut out = ImportOutcome::new(account);
    // The writer's transaction is every scope's lock: the head read here
    // cannot move before this job commits.
    let view = sql::view(c, u.id)?.ok_or(StoreError::UserGone)?;
    let scopes: Vec<_> = view.readable().iter().map(|s| s.id).collect();
    let ids: Vec<_> = u.records.iter().map(|r| r.id).collect();
    let present: std::collections::HashSet<_> = sql::locate(c, &ids, &scopes)?
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    let new = out.split_records(u.records, &present);
    let head = view.get(view.personal).map_or(0, |s| s.head);
    let (rows, new_head) = import::plan(view.personal, u.id, head, &new);
    write::save_records(c, &rows)?;
    write::set_heads(c, &[(view.personal, new_head)])?;

    let ops: Vec<String> = u.logs.iter().map(|l| l.operation_id.clone()).collect();
    let logged: std::collections::HashSet<String> = sql::load_acks(c, u.id, &ops)?
        .into_iter()
        .map(|(op, _)| op)
        .collect();
    let rows = out.split_logs(&u.logs, &logged);
    write::insert_logs(c, u.id, &rows)?;
    Ok(out)
}

/// See `Store::upgrade_password_hash`.
pub fn upgrade_password_hash(
    c: &Connection,
    user: UserId,
    old: &str,
    new: &str,
) -> Result<bool, StoreError> {
    let n = c
        .prepare_cached("UPDATE users SET password_hash = ? WHERE id = ? AND password_hash = ?")
        .map_err(driver)?
        .execute(params![new, user.to_string(), old])
        .map_err(driver)?;
    Ok(n == 1)
}
