//! The shared store suite on PostgreSQL, a fresh database per test, when
//! TIDESYNC_TEST_POSTGRES_URL names a server where databases may be created.

use std::sync::Arc;

use sqlx::Connection;
use tidesync_store::Store;
use tidesync_store_postgres::{PostgresOptions, PostgresStore};

const PG_ENV: &str = "TIDESYNC_TEST_POSTGRES_URL";

/// Drops its database when the test ends.
struct Db {
    admin: String,
    name: String,
}

impl Drop for Db {
    fn drop(&mut self) {
        let (admin, name) = (self.admin.clone(), self.name.clone());
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                if let Ok(mut c) = sqlx::PgConnection::connect(&admin).await {
                    let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                    )))
                    .execute(&mut c)
                    .await;
                }
            });
        })
        .join();
    }
}

fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let host_end = base.find("://").map_or(0, |i| i + 3);
    let host = base[host_end..]
        .find('/')
        .map_or(base, |i| &base[..host_end + i]);
    match query {
        Some(q) => format!("{host}/{name}?{q}"),
        None => format!("{host}/{name}"),
    }
}

async fn open() -> Option<(Arc<dyn Store>, Db)> {
    open_with(PostgresOptions::default()).await
}

async fn open_with(options: PostgresOptions) -> Option<(Arc<dyn Store>, Db)> {
    let admin = std::env::var(PG_ENV).ok().filter(|v| !v.is_empty())?;
    let name = format!(
        "tidesync_store_{}",
        tidesync_protocol::uuid::Uuid::new_v4().simple()
    );
    let mut c = sqlx::PgConnection::connect(&admin)
        .await
        .expect("admin connection");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut c)
        .await
        .expect("create database");
    let guard = Db {
        admin: admin.clone(),
        name: name.clone(),
    };
    let store = PostgresStore::connect(&with_database(&admin, &name), options)
        .await
        .expect("connect");
    store.migrate().await.expect("migrate");
    Some((Arc::new(store) as Arc<dyn Store>, guard))
}

tidesync_store::backend_suite!(open());

/// The same suite with pushes in steps of a few records
/// (`PUSH_STEP_BYTES`): every push of more than one change it makes
/// commits in several transactions.
mod stepped {
    async fn open() -> Option<(std::sync::Arc<dyn tidesync_store::Store>, super::Db)> {
        let options = tidesync_store_postgres::PostgresOptions {
            push_step_bytes: 64,
            ..Default::default()
        };
        super::open_with(options).await
    }

    tidesync_store::backend_suite!(open());
}
