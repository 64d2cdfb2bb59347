//! The schemas the deployment served (`served_schemas`), for the start-up
//! comparison of `Store::served_schema`. Apart from the records' SQL.

use rusqlite::{params, Connection, OptionalExtension};
use tidesync_protocol::time::Millis;
use tidesync_store::StoreError;

use crate::error::driver;

pub fn served(c: &Connection) -> Result<Option<String>, StoreError> {
    c.query_row(
        "SELECT document FROM served_schemas ORDER BY id DESC LIMIT 1",
        [],
        |r| r.get(0),
    )
    .optional()
    .map_err(driver)
}

pub fn record(c: &Connection, document: &str, at: Millis) -> Result<(), StoreError> {
    c.execute(
        "INSERT INTO served_schemas (document, served_at) VALUES (?, ?)",
        params![document, at],
    )
    .map_err(driver)?;
    Ok(())
}
