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

use crate::{secs, Args, Figure};

pub async fn run(args: &Args) -> Result<Vec<Figure>> {
    let dir = tempfile::Builder::new()
        .prefix("tidesync-bench-raw-")
        .tempdir()?;
    let url = format!("sqlite://{}/raw.db", dir.path().display());
    // The real schema, through the real migrations.
    let store = tidesync_store_sqlite::SqliteStore::open(&url, Default::default())?;
    store.migrate().await?;
    let user = UserId::random();
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
    // Prepared outside the timed loop: the rows, as tidesync would write them.
    let rows: Vec<(String, String, String, String, String)> = (0..args.ops)
        .map(|n| {
            let id = uuid::Uuid::new_v4().to_string();
            let op = format!("raw-{n}");
            let v = Version { ts: 1_735_689_600_000, device: "bench-a".into(), op: op.clone() };
            let fields: std::collections::BTreeMap<String, serde_json::Value> = serde_json::from_value(serde_json::json!({
                "title": format!("Watch movie {n}"), "type": "movie", "movieId": format!("{}", 27000 + n),
                "notes": "with friends", "isCompleted": false, "order": n})).expect("fields");
            let state = RecordState {
                clocks: fields.keys().map(|f| (f.clone(), v.clone())).collect(),
                fields,
                created: v,
                deleted: None,
            };
            let data = serde_json::to_string(&state.fields).expect("json");
            let ack = format!(r#"{{"operationId":"{op}","id":"{id}","success":true}}"#);
            (id, op, data, encode_clocks(&state), ack)
        })
        .collect();
    let user_id = user.to_string();
    let t = Instant::now();
    let mut version = 0i64;
    // One transaction per batch, one multi-row statement per table: the
    // cheapest way through this driver to store what a push stores.
    for batch in rows.chunks(args.batch) {
        let mut tx = sqlx::Connection::begin(&mut conn).await?;
        let marks =
            |cols: usize| vec![format!("({})", vec!["?"; cols].join(", ")); batch.len()].join(", ");
        let sql = format!(
            "INSERT INTO records (user_id, id, kind, version, space_id, category_id, data, clocks,
                                  created_at, updated_at, deleted_at, device_id, server_time) VALUES {}",
            marks(13)
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (id, _, data, clocks, _) in batch {
            version += 1;
            q = q
                .bind(user_id.clone())
                .bind(id.clone())
                .bind("item")
                .bind(version)
                .bind(None::<String>)
                .bind(None::<String>)
                .bind(data.clone())
                .bind(clocks.clone())
                .bind(1_735_689_600_000i64)
                .bind(1_735_689_600_000i64)
                .bind(None::<i64>)
                .bind("bench-a")
                .bind(1_735_689_600_000i64);
        }
        q.execute(&mut *tx).await?;
        let sql = format!(
            "INSERT INTO sync_log (user_id, operation_id, device_id, entity_type, entity_id, operation,
                                   changes, ack, client_time, server_time) VALUES {}",
            marks(10)
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (id, op, data, _, ack) in batch {
            q = q
                .bind(user_id.clone())
                .bind(op.clone())
                .bind("bench-a")
                .bind("item")
                .bind(id.clone())
                .bind("create")
                .bind(data.clone())
                .bind(ack.clone())
                .bind(1_735_689_600_000i64)
                .bind(1_735_689_600_000i64);
        }
        q.execute(&mut *tx).await?;
        sqlx::query("UPDATE users SET sync_version = ? WHERE id = ?")
            .bind(version)
            .bind(user_id.clone())
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
