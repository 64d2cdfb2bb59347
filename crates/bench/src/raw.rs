//! The storage limit: the rows a push writes, inserted straight into SQLite
//! with the same schema, the same settings (WAL, synchronous=FULL) and the
//! same statements per operation (record upsert + sync_log row), in
//! transactions of one batch each, with no server in between.

use std::str::FromStr;
use std::time::Instant;

use anyhow::Result;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sqlx::ConnectOptions;
use tidesync_protocol::merge::{encode_clocks, RecordState, Version};
use tidesync_protocol::UserId;
use tidesync_store::{NewUser, Store};

use crate::server::tempdir;
use crate::{secs, Args, Figure};

pub async fn run(args: &Args) -> Result<Vec<Figure>> {
    let dir = tempdir::Dir::new("raw")?;
    let url = format!("sqlite://{}/raw.db", dir.0.display());
    // The real schema, through the real migrations.
    let store = tidesync_store::SqliteStore::connect(&url).await?;
    store.migrate().await?;
    let user = UserId(uuid::Uuid::new_v4());
    store
        .create_user(NewUser {
            id: user,
            email: "raw@example.com".into(),
            name: "Raw".into(),
            password_hash: "x".into(),
            created_at: 0,
        })
        .await?;
    store.close().await;

    let mut conn = SqliteConnectOptions::from_str(&url)?
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .connect()
        .await?;
    let t = Instant::now();
    let mut version = 0i64;
    for b in 0..args.ops.div_ceil(args.batch) {
        let mut tx = sqlx::Connection::begin(&mut conn).await?;
        for k in 0..args.batch.min(args.ops - b * args.batch) {
            let n = b * args.batch + k;
            version += 1;
            let id = uuid::Uuid::new_v4().to_string();
            let op = format!("raw-{n}");
            let v = Version {
                ts: 1_735_689_600_000,
                device: "bench-a".into(),
                op: op.clone(),
            };
            let fields: std::collections::BTreeMap<String, serde_json::Value> =
                serde_json::from_value(serde_json::json!({
                "title": format!("Watch movie {n}"), "type": "movie", "movieId": format!("{}", 27000 + n),
                "notes": "with friends", "isCompleted": false, "order": n}))?;
            let state = RecordState {
                clocks: fields.keys().map(|f| (f.clone(), v.clone())).collect(),
                fields,
                created: v.clone(),
                deleted: None,
            };
            sqlx::query(
                "INSERT INTO records (user_id, id, kind, version, space_id, category_id, data, clocks,
                                      created_at, updated_at, deleted_at, device_id, server_time)
                 VALUES (?1, ?2, 'item', ?3, NULL, NULL, ?4, ?5, ?6, ?6, NULL, 'bench-a', ?6)
                 ON CONFLICT (user_id, id) DO UPDATE SET version = excluded.version, data = excluded.data",
            )
            .bind(user.to_string())
            .bind(&id)
            .bind(version)
            .bind(serde_json::to_string(&state.fields)?)
            .bind(encode_clocks(&state))
            .bind(1_735_689_600_000i64)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO sync_log (user_id, operation_id, device_id, entity_type, entity_id, operation,
                                       changes, ack, client_time, server_time)
                 VALUES (?1, ?2, 'bench-a', 'item', ?3, 'create', ?4, ?5, ?6, ?6)",
            )
            .bind(user.to_string())
            .bind(&op)
            .bind(&id)
            .bind(serde_json::to_string(&state.fields)?)
            .bind(format!(r#"{{"operationId":"{op}","id":"{id}","success":true}}"#))
            .bind(1_735_689_600_000i64)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query("UPDATE users SET sync_version = ?2 WHERE id = ?1")
            .bind(user.to_string())
            .bind(version)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
    }
    let took = t.elapsed();
    let rate = args.ops as f64 / secs(took);
    eprintln!("  raw insert: {rate:.0} rows/s");
    Ok(vec![Figure {
        scenario: "raw sqlite insert".into(),
        target: "sqlite (no server)".into(),
        value: rate,
        unit: "ops/s",
        detail: format!(
            "{} ops (record + sync_log row), transactions of {}, WAL + synchronous=FULL, sqlx",
            args.ops, args.batch
        ),
    }])
}
