//! Fresh databases: a SQLite file in a temporary folder, or a PostgreSQL
//! database created (and dropped afterwards) through an admin URL.

/// The variable that turns the PostgreSQL tests on.
pub const PG_ENV: &str = "TIDESYNC_TEST_POSTGRES_URL";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Db {
    Sqlite,
    Postgres,
}

/// The admin URL of the PostgreSQL tests, if they are on.
pub fn postgres_url() -> Option<String> {
    std::env::var(PG_ENV).ok().filter(|v| !v.is_empty())
}

/// A database that exists for one test (or one bench scenario) and is
/// removed when this is dropped.
pub struct TestDb {
    pub url: String,
    dir: Option<tempfile::TempDir>,
    pg: Option<(String, String)>,
}

impl TestDb {
    /// A fresh database on `db`; PostgreSQL through [`PG_ENV`].
    pub async fn new(db: Db) -> TestDb {
        match db {
            Db::Sqlite => TestDb::sqlite(),
            Db::Postgres => {
                let admin = postgres_url().unwrap_or_else(|| {
                    panic!("a PostgreSQL test needs {PG_ENV} (e.g. postgres://postgres@127.0.0.1:5432/test)")
                });
                TestDb::postgres(&admin, "tidesync_test")
                    .await
                    .unwrap_or_else(|e| panic!("{PG_ENV} is set but {e}"))
            }
        }
    }

    pub fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("tempdir");
        TestDb {
            url: format!("sqlite://{}/tidesync.db", dir.path().display()),
            dir: Some(dir),
            pg: None,
        }
    }

    /// A new database `<prefix>_<random>` on the server of `admin`.
    pub async fn postgres(admin: &str, prefix: &str) -> Result<TestDb, String> {
        let name = format!("{prefix}_{}", uuid::Uuid::new_v4().simple());
        admin_sql(admin, &format!("CREATE DATABASE {name}")).await?;
        Ok(TestDb {
            url: with_database(admin, &name),
            dir: None,
            pg: Some((admin.to_owned(), name)),
        })
    }

    /// The folder of the SQLite file (where the server keeps a generated
    /// secret too); `None` on PostgreSQL.
    pub fn dir(&self) -> Option<&std::path::Path> {
        self.dir.as_ref().map(|d| d.path())
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some((admin, name)) = self.pg.take() else {
            return;
        };
        // Drop may run inside a runtime (where blocking on one is refused):
        // use a thread with a runtime of its own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            let _ = rt.block_on(admin_sql(
                &admin,
                &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
            ));
        })
        .join();
    }
}

async fn admin_sql(admin: &str, sql: &str) -> Result<(), String> {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(admin)
        .await
        .map_err(|e| format!("PostgreSQL is unreachable at {admin}: {e}"))?;
    sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
        .execute(&mut conn)
        .await
        .map_err(|e| format!("{sql}: {e}"))?;
    let _ = conn.close().await;
    Ok(())
}

/// The same server URL with another database name.
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let host_part = match base[scheme_end..].find('/') {
        Some(i) => &base[..scheme_end + i],
        None => base,
    };
    match query {
        Some(q) => format!("{host_part}/{name}?{q}"),
        None => format!("{host_part}/{name}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn another_database_on_the_same_server() {
        assert_eq!(
            with_database("postgres://u@h:5432/test", "x"),
            "postgres://u@h:5432/x"
        );
        assert_eq!(
            with_database("postgres://u@h/test?sslmode=disable", "x"),
            "postgres://u@h/x?sslmode=disable"
        );
        assert_eq!(with_database("postgres://u@h", "x"), "postgres://u@h/x");
    }
}
