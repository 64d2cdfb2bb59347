//! The shared store suite on a fresh SQLite file per test, plus what only
//! this backend has: the supervised writer.

use std::sync::Arc;
use std::time::Duration;

use tidesync_store::{Store, StoreError};
use tidesync_store_sqlite::{SqliteOptions, SqliteStore};

async fn open_with(options: SqliteOptions) -> (Arc<SqliteStore>, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}/t.db", dir.path().display());
    let store = SqliteStore::open(&url, options).expect("open");
    store.migrate().await.expect("migrate");
    (Arc::new(store), dir)
}

async fn open() -> Option<(Arc<dyn Store>, tempfile::TempDir)> {
    let (store, dir) = open_with(SqliteOptions::default()).await;
    Some((store as Arc<dyn Store>, dir))
}

tidesync_store::backend_suite!(open());

/// The same suite with cascades in steps of two records and pushes in
/// steps of a few records, so that every cascade and every push of more
/// than one change it makes runs through the steps (`CASCADE_STEP`,
/// `PUSH_STEP_BYTES`).
mod stepped {
    async fn open() -> Option<(std::sync::Arc<dyn tidesync_store::Store>, tempfile::TempDir)> {
        let options = tidesync_store_sqlite::SqliteOptions {
            cascade_step: 2,
            push_step_bytes: 64,
            ..Default::default()
        };
        let (store, dir) = super::open_with(options).await;
        Some((store as std::sync::Arc<dyn tidesync_store::Store>, dir))
    }

    tidesync_store::backend_suite!(open());
}

#[tokio::test]
async fn a_panicking_job_fails_alone_and_the_writer_goes_on() {
    let (store, _dir) = open_with(SqliteOptions::default()).await;
    let boom = store
        .write(|c| -> Result<(), StoreError> {
            // Written first, so the rollback of the job is visible too.
            c.execute_batch("CREATE TABLE half_done (x INTEGER)")
                .unwrap();
            panic!("injected");
        })
        .await;
    assert!(matches!(boom, Err(StoreError::Internal(_))), "{boom:?}");
    let exists = store
        .write(|c| {
            Ok(c.query_row(
                "SELECT COUNT(*) FROM sqlite_master WHERE name = 'half_done'",
                [],
                |r| r.get::<_, i64>(0),
            )
            .unwrap())
        })
        .await
        .unwrap();
    assert_eq!(exists, 0, "the panicking job was rolled back");
    let h = store.health().await;
    assert!(h.ok(), "{h:?}");
    let w = store.writer_health();
    assert_eq!((w.panics, w.restarts), (1, 0));
    let user = tidesync_store::testsuite::new_user(&*store, "after@example.com").await;
    assert!(store.user_by_id(user).await.unwrap().is_some());
}

/// Holds the writer in a job until the returned sender is dropped or sent.
async fn hold_writer(store: &Arc<SqliteStore>) -> std::sync::mpsc::Sender<()> {
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let (started_tx, started) = tokio::sync::oneshot::channel::<()>();
    let s = store.clone();
    tokio::spawn(async move {
        let _ = s
            .write(move |_| {
                let _ = started_tx.send(());
                let _ = rx.recv_timeout(Duration::from_secs(20));
                Ok(())
            })
            .await;
    });
    started.await.expect("the holding job started");
    tx
}

#[tokio::test]
async fn a_full_queue_answers_busy_at_once() {
    let (store, _dir) = open_with(SqliteOptions {
        writer_queue_depth: 2,
        ..SqliteOptions::default()
    })
    .await;
    let release = hold_writer(&store).await;
    let queued: Vec<_> = (0..2)
        .map(|i| {
            let s = store.clone();
            tokio::spawn(async move { s.write(move |_| Ok(i)).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let h = store.health().await;
    assert!(!h.ok(), "a full queue cannot take work: {h:?}");
    let started = std::time::Instant::now();
    let third = store.write(|_| Ok(())).await;
    assert!(matches!(third, Err(StoreError::Busy { .. })), "{third:?}");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "refused without waiting"
    );
    release.send(()).unwrap();
    for q in queued {
        assert!(q.await.unwrap().is_ok());
    }
    assert!(store.health().await.ok());
}

#[tokio::test]
async fn the_byte_budget_bounds_what_waits() {
    let (store, _dir) = open_with(SqliteOptions {
        writer_queue_bytes: 1 << 20,
        ..SqliteOptions::default()
    })
    .await;
    let release = hold_writer(&store).await;
    let user = tidesync_protocol::UserId::random();
    // Pushes of spaces with 4,000-byte descriptions: each change costs the
    // queue about what it took on the wire.
    let spaces = |from: u128, n: u128| {
        let changes = (from..from + n)
            .map(|i| {
                let data = serde_json::json!({"name": "s", "description": "d".repeat(4_000)});
                tidesync_store::testsuite::change(&format!("op-{i}"), i, "space", "create", data)
            })
            .collect();
        tidesync_store::testsuite::input(tidesync_protocol::cursor::CursorStart::Scratch, changes)
    };
    let s = store.clone();
    let first = tokio::spawn(async move { s.push(user, spaces(0, 220)).await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        store.writer_health().queued_bytes > 880_000,
        "the first waits with its bytes: {:?}",
        store.writer_health()
    );
    let second = store.push(user, spaces(1_000, 50)).await;
    assert!(matches!(second, Err(StoreError::Busy { .. })), "{second:?}");
    let s = store.clone();
    let small = tokio::spawn(async move { s.push(user, spaces(2_000, 1)).await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    release.send(()).unwrap();
    // Both ran (and found no such user): a small push still fit the
    // budget, and their bytes are free again.
    assert!(matches!(first.await.unwrap(), Err(StoreError::UserGone)));
    let small = small.await.unwrap();
    assert!(matches!(small, Err(StoreError::UserGone)), "{small:?}");
    assert_eq!(store.writer_health().queued_bytes, 0);
}

#[tokio::test]
async fn a_job_whose_caller_left_is_not_run() {
    let (store, _dir) = open_with(SqliteOptions::default()).await;
    let release = hold_writer(&store).await;
    let s = store.clone();
    let abandoned = tokio::spawn(async move {
        s.write(|c| {
            c.execute_batch("CREATE TABLE should_not_exist (x INTEGER)")
                .unwrap();
            Ok(())
        })
        .await
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    abandoned.abort();
    let _ = abandoned.await;
    release.send(()).unwrap();
    let exists = store
        .write(|c| {
            Ok(c.query_row(
                "SELECT COUNT(*) FROM sqlite_master WHERE name = 'should_not_exist'",
                [],
                |r| r.get::<_, i64>(0),
            )
            .unwrap())
        })
        .await
        .unwrap();
    assert_eq!(exists, 0);
}

#[tokio::test]
async fn a_database_from_tidesync_0_1_is_upgraded_in_place() {
    // 0.1 recorded its migrations in sqlx's table: they must not run twice.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("old.db");
    {
        let c = rusqlite_open(&file);
        for (_, _, sql) in OLD {
            c.execute_batch(sql).unwrap();
        }
        c.execute_batch(
            "CREATE TABLE _sqlx_migrations (version BIGINT PRIMARY KEY, description TEXT NOT NULL,
               installed_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP, success BOOLEAN NOT NULL,
               checksum BLOB NOT NULL, execution_time BIGINT NOT NULL);
             INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
               VALUES (1, 'users', 1, x'00', 0), (2, 'sync', 1, x'00', 0), (3, 'account safety', 1, x'00', 0);
             INSERT INTO users (id, email, name, password_hash, created_at, updated_at, sync_version)
               VALUES ('6ba7b810-9dad-41d1-80b4-00c04fd430c8', 'old@example.com', 'Old', 'h', 0, 0, 1);
             INSERT INTO records (user_id, id, kind, version, space_id, category_id, data, clocks,
                                  created_at, updated_at, deleted_at, device_id, server_time)
               VALUES ('6ba7b810-9dad-41d1-80b4-00c04fd430c8', '550e8400-e29b-41d4-a716-446655440000',
                       'space', 1, NULL, NULL, '{\"name\":\"Home\"}',
                       '{\"v\":[[0,\"d\",\"o\"]],\"f\":{\"name\":0},\"c\":0}', 0, 0, NULL, 'd', 0);",
        )
        .unwrap();
    }
    let store = SqliteStore::open(
        &format!("sqlite://{}", file.display()),
        SqliteOptions::default(),
    )
    .unwrap();
    store.migrate().await.expect("upgrade");
    let c = store.credentials_by_email("old@example.com").await.unwrap();
    let user = c.expect("the old user is still there").user.id;
    // The cursors issued before the upgrade keep their meaning.
    let pull = |n: i64| tidesync_store::PullInput {
        cursor: tidesync_protocol::cursor::CursorStart::personal(n),
        limit: 10,
        max_bytes: 1 << 20,
    };
    let out = store.pull(user, pull(0)).await.unwrap();
    assert_eq!(out.records.len(), 1);
    assert_eq!(
        out.records[0].created_by, user,
        "its userId is its old owner"
    );
    assert_eq!(out.cursor.encode(), "v1.u.1");
    assert!(store.pull(user, pull(1)).await.unwrap().records.is_empty());
    assert!(matches!(
        store.pull(user, pull(2)).await,
        Err(StoreError::CursorAhead)
    ));
    store.close().await;
}

const OLD: &[(i64, &str, &str)] = &[
    (1, "users", include_str!("../migrations/0001_users.sql")),
    (2, "sync", include_str!("../migrations/0002_sync.sql")),
    (
        3,
        "account safety",
        include_str!("../migrations/0003_account_safety.sql"),
    ),
];

fn rusqlite_open(file: &std::path::Path) -> rusqlite::Connection {
    rusqlite::Connection::open(file).unwrap()
}

/// One user's backlog of pushes does not sit ahead of another user's
/// single push: the writer takes the users' jobs in turns.
#[tokio::test]
async fn another_users_push_goes_before_a_users_backlog() {
    use tidesync_protocol::cursor::CursorStart;
    use tidesync_store::testsuite::{change, input, new_user};
    let (store, _dir) = open_with(SqliteOptions::default()).await;
    let flooder = new_user(&*store, "flood@example.com").await;
    let other = new_user(&*store, "other@example.com").await;
    let release = hold_writer(&store).await;
    let order = Arc::new(std::sync::Mutex::new(Vec::new()));
    // Queued first: 20 pushes of the flooder, each of about 1 MiB of
    // changes (250 spaces with 4,000-byte descriptions), so that a group
    // holds four of them.
    let mut tasks = Vec::new();
    for k in 0..20u128 {
        let (s, order) = (store.clone(), order.clone());
        let changes = (0..250u128)
            .map(|i| {
                change(
                    &format!("f{k}-{i}"),
                    1000 + k * 1000 + i,
                    "space",
                    "create",
                    serde_json::json!({"name": "F", "description": "d".repeat(4_000)}),
                )
            })
            .collect();
        tasks.push(tokio::spawn(async move {
            s.push(flooder, input(CursorStart::Scratch, changes))
                .await
                .unwrap();
            order.lock().unwrap().push("flood");
        }));
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let (s, o) = (store.clone(), order.clone());
    let c = change("o", 1, "space", "create", serde_json::json!({"name": "O"}));
    let mine = tokio::spawn(async move {
        s.push(other, input(CursorStart::Scratch, vec![c]))
            .await
            .unwrap();
        o.lock().unwrap().push("other");
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    release.send(()).unwrap();
    mine.await.unwrap();
    for t in tasks {
        t.await.unwrap();
    }
    let order = order.lock().unwrap();
    let at = order.iter().position(|w| *w == "other").unwrap();
    assert!(
        at < 8,
        "the other user's push came after {at} of the backlog: {order:?}"
    );
}

/// Deleting an account of more records than one job deletes: every row
/// goes, in several jobs.
#[tokio::test]
async fn an_account_of_many_records_is_deleted_whole() {
    use tidesync_protocol::cursor::CursorStart;
    use tidesync_store::testsuite::{change, input, new_user};
    let (store, _dir) = open_with(SqliteOptions::default()).await;
    let user = new_user(&*store, "many@example.com").await;
    let keep = new_user(&*store, "keep@example.com").await;
    for b in 0..6u128 {
        let changes = (0..1000u128)
            .map(|k| {
                let n = 1 + b * 1000 + k;
                change(
                    &format!("c{n}"),
                    n,
                    "space",
                    "create",
                    serde_json::json!({"name": "S"}),
                )
            })
            .collect();
        let out = store
            .push(user, input(CursorStart::Scratch, changes))
            .await
            .unwrap();
        assert!(out.acks.iter().all(|a| a.success));
    }
    let c = change(
        "k",
        9_999_999,
        "space",
        "create",
        serde_json::json!({"name": "K"}),
    );
    store
        .push(keep, input(CursorStart::Scratch, vec![c]))
        .await
        .unwrap();
    store.delete_user(user).await.unwrap();
    let left = store
        .write(move |c| {
            let count = |sql: &str| -> i64 { c.query_row(sql, [], |r| r.get(0)).unwrap() };
            Ok((
                count("SELECT COUNT(*) FROM records"),
                count("SELECT COUNT(*) FROM sync_log"),
                count("SELECT COUNT(*) FROM users"),
            ))
        })
        .await
        .unwrap();
    assert_eq!(left, (1, 1, 1), "only the other user's rows are left");
}

/// Migration 8 (issue 21) rebuilds `records` without the `kind` CHECK and
/// renames `space_id`/`category_id` to `root_id`/`parent_id`: rows written
/// before it read back identically, their references in the new columns.
#[tokio::test]
async fn records_written_before_the_generic_table_read_back_identically() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("v7.db");
    let (user, space, cat, item) = (
        "6ba7b810-9dad-41d1-80b4-00c04fd430c8",
        "550e8400-e29b-41d4-a716-446655440000",
        "550e8400-e29b-41d4-a716-446655440001",
        "550e8400-e29b-41d4-a716-446655440002",
    );
    let datas = [
        r#"{"name":"Home"}"#,
        format!(r#"{{"name":"Movies","spaceId":"{space}"}}"#).leak() as &str,
        format!(r#"{{"categoryId":"{cat}","spaceId":"{space}","title":"Heat"}}"#).leak(),
    ];
    {
        let c = rusqlite_open(&file);
        c.execute_batch(
            "CREATE TABLE _tidesync_migrations (version INTEGER PRIMARY KEY NOT NULL,
               description TEXT NOT NULL, applied_at INTEGER NOT NULL) STRICT;",
        )
        .unwrap();
        for (version, sql) in [
            include_str!("../migrations/0001_users.sql"),
            include_str!("../migrations/0002_sync.sql"),
            include_str!("../migrations/0003_account_safety.sql"),
            include_str!("../migrations/0004_shared_spaces.sql"),
            include_str!("../migrations/0005_history.sql"),
            include_str!("../migrations/0006_invitations.sql"),
            include_str!("../migrations/0007_scope_founder.sql"),
        ]
        .iter()
        .enumerate()
        {
            c.execute_batch(sql).unwrap();
            c.execute(
                "INSERT INTO _tidesync_migrations VALUES (?, 'old', 0)",
                [version as i64 + 1],
            )
            .unwrap();
        }
        c.execute(
            "INSERT INTO users (id, email, name, password_hash, created_at, updated_at)
             VALUES (?, 'v7@example.com', 'V7', 'h', 0, 0)",
            [user],
        )
        .unwrap();
        c.execute_batch(&format!(
            "INSERT INTO scopes (id, space_id, version, created_at) VALUES (1, NULL, 3, 0);
             INSERT INTO members (scope_id, user_id, role, since) VALUES (1, '{user}', 'owner', 0);"
        ))
        .unwrap();
        let rows = [
            (
                space,
                "space",
                1,
                None,
                None,
                datas[0],
                r#"{"v":[[0,"d","o"]],"f":{"name":0},"c":0}"#,
            ),
            (
                cat,
                "category",
                2,
                Some(space),
                None,
                datas[1],
                r#"{"v":[[0,"d","o"]],"f":{"name":0,"spaceId":0},"c":0}"#,
            ),
            (
                item,
                "item",
                3,
                Some(space),
                Some(cat),
                datas[2],
                r#"{"v":[[0,"d","o"]],"f":{"categoryId":0,"spaceId":0,"title":0},"c":0}"#,
            ),
        ];
        for (id, kind, version, s, k, data, clocks) in rows {
            c.execute(
                "INSERT INTO records (scope_id, id, kind, version, space_id, category_id, data,
                                      clocks, created_at, updated_at, deleted_at, device_id,
                                      server_time, created_by)
                 VALUES (1, ?, ?, ?, ?, ?, ?, ?, 0, 0, NULL, 'd', 0, ?)",
                rusqlite::params![id, kind, version, s, k, data, clocks, user],
            )
            .unwrap();
        }
    }
    let store = SqliteStore::open(
        &format!("sqlite://{}", file.display()),
        SqliteOptions::default(),
    )
    .unwrap();
    store.migrate().await.expect("migration 8");
    let user_id = store
        .credentials_by_email("v7@example.com")
        .await
        .unwrap()
        .expect("the user is still there")
        .user
        .id;
    let out = store
        .pull(
            user_id,
            tidesync_store::PullInput {
                cursor: tidesync_protocol::cursor::CursorStart::personal(0),
                limit: 10,
                max_bytes: 1 << 20,
            },
        )
        .await
        .unwrap();
    let got: Vec<(String, &str, i64, &str)> = out
        .records
        .iter()
        .map(|r| {
            (
                r.id.to_string(),
                r.entity.as_str(),
                r.version,
                r.data.as_str(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (space.to_owned(), "space", 1, datas[0]),
            (cat.to_owned(), "category", 2, datas[1]),
            (item.to_owned(), "item", 3, datas[2]),
        ]
    );
    let columns: Vec<(String, Option<String>, Option<String>)> = store
        .write(|c| {
            let mut st = c
                .prepare("SELECT id, root_id, parent_id FROM records ORDER BY version")
                .unwrap();
            let rows = st
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .unwrap();
            Ok(rows.map(Result::unwrap).collect())
        })
        .await
        .unwrap();
    assert_eq!(
        columns,
        vec![
            (space.to_owned(), None, None),
            (cat.to_owned(), Some(space.to_owned()), None),
            (
                item.to_owned(),
                Some(space.to_owned()),
                Some(cat.to_owned())
            ),
        ]
    );
    store.close().await;
}
