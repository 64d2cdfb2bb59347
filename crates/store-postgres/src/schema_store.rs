//! The schemas the deployment served (`served_schemas`), for the start-up
//! comparison of `Store::served_schema`. Apart from the records' SQL.

use sqlx::PgConnection;
use tidesync_protocol::time::Millis;
use tidesync_store::StoreError;

use crate::error::db;
use crate::stmt;

pub async fn served(c: &mut PgConnection) -> Result<Option<String>, StoreError> {
    stmt::query_scalar("SELECT document FROM served_schemas ORDER BY id DESC LIMIT 1")
        .fetch_optional(c)
        .await
        .map_err(db)
}

pub async fn record(c: &mut PgConnection, document: &str, at: Millis) -> Result<(), StoreError> {
    stmt::query("INSERT INTO served_schemas (document, served_at) VALUES ($1, $2)")
        .bind(document)
        .bind(at)
        .execute(c)
        .await
        .map_err(db)?;
    Ok(())
}
