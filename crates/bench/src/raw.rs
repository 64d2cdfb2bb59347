//! The storage limit: the rows a push writes (record upsert, sync_log row
//! and the scope's counter), stored with the write path's own statements
//! through the same driver (rusqlite), schema and settings (WAL and
//! synchronous=FULL), one transaction per batch, with no server, engine or
//! writer thread in between.

use std::time::Instant;

use anyhow::Result;
use tidesync_client::{new_record_id, EntityType};
use tidesync_engine::{LogRow, RecordWrite};
use tidesync_protocol::merge::{encode_clocks, OpKind, RecordState, Version};
use tidesync_protocol::UserId;
use tidesync_store::{NewUser, Store};
use tidesync_store_sqlite::raw;

use crate::{secs, Args, Figure};

pub async fn run(args: &Args) -> Result<Vec<Figure>> {
    let dir = tempfile::Builder::new()
        .prefix("tidesync-bench-raw-")
        .tempdir()?;
    let file = dir.path().join("raw.db");
    let url = format!("sqlite://{}", file.display());
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

    let conn = raw::open(&file)?;
    let scope = raw::personal_scope(&conn, user)?;
    const T: i64 = 1_735_689_600_000;
    // Built outside the timed loop: the rows, as a push of creates writes them.
    let rows: Vec<(RecordWrite, LogRow)> = (0..args.ops)
        .map(|n| {
            let id = new_record_id();
            let op = format!("raw-{n}");
            let v = Version { ts: T, device: "bench-a".into(), op: op.clone() };
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
            let record = RecordWrite {
                scope,
                id,
                entity: EntityType::Item,
                version: n as i64 + 1,
                root_id: None,
                parent_id: None,
                data: data.clone(),
                clocks: encode_clocks(&state),
                created_at: T,
                updated_at: T,
                deleted_at: None,
                device_id: "bench-a".into(),
                server_time: T,
                created_by: user,
            };
            let log = LogRow {
                ack: format!(r#"{{"operationId":"{op}","id":"{id}","success":true}}"#),
                operation_id: op,
                device_id: "bench-a".into(),
                entity_type: Some(EntityType::Item),
                entity_id: Some(id.to_string()),
                operation: Some(OpKind::Create),
                changes: data,
                client_time: Some(T),
                server_time: T,
            };
            (record, log)
        })
        .collect();
    let batches: Vec<(Vec<RecordWrite>, Vec<LogRow>)> = rows
        .chunks(args.batch)
        .map(|b| b.iter().cloned().unzip())
        .collect();
    let t = Instant::now();
    for (records, logs) in &batches {
        let head = records.last().map(|r| r.version).unwrap_or(0);
        raw::commit(&conn, user, records, logs, (scope, head))?;
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
            "{} ops (record + sync_log row + counter), transactions of {}, WAL + synchronous=FULL, rusqlite with the write path's statements",
            args.ops, args.batch
        ),
    }])
}
