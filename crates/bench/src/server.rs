//! A tidesync server process on a fresh database, through the test kit's
//! launcher and databases (the bench keeps no copy of its own).

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result};
use tidesync_testkit::{Proc, TestDb};

#[derive(Clone, Debug)]
pub enum Target {
    Sqlite,
    /// Admin URL; each run creates and drops a database of its own.
    Postgres(String),
}

impl Target {
    pub fn name(&self) -> &'static str {
        match self {
            Target::Sqlite => "tidesync/sqlite",
            Target::Postgres(_) => "tidesync/postgres",
        }
    }

    /// A fresh database on this target, dropped with the value.
    pub async fn fresh_db(&self) -> Result<TestDb> {
        Ok(match self {
            Target::Sqlite => TestDb::sqlite(),
            Target::Postgres(admin) => TestDb::postgres(admin, "tidesync_bench")
                .await
                .map_err(anyhow::Error::msg)?,
        })
    }
}

const SECRET: &str = "bench-secret-bench-secret-bench-secret";

/// A running server process (killed when dropped) and the database it owns.
pub struct Server {
    pub base: String,
    proc: Proc,
    db: Option<TestDb>,
    dir: tempfile::TempDir,
}

impl Server {
    /// Starts tidesync on a fresh database.
    pub async fn start(bin: &Path, target: &Target) -> Result<Server> {
        let db = target.fresh_db().await?;
        Server::on(bin, db)
    }

    /// Starts tidesync on `db` (e.g. a stopped server's, to restart on the
    /// same data).
    pub fn on(bin: &Path, db: TestDb) -> Result<Server> {
        Server::on_with(bin, db, &[])
    }

    /// The same with settings of the scenario's own (environment variables).
    pub fn on_with(bin: &Path, db: TestDb, env: &[(&str, String)]) -> Result<Server> {
        let dir = tempfile::Builder::new()
            .prefix("tidesync-bench-")
            .tempdir()
            .context("temporary folder")?;
        let (proc, base) = spawn(bin, dir.path(), &db.url, env);
        Ok(Server {
            base,
            proc,
            db: Some(db),
            dir,
        })
    }

    /// Another instance on the same database (scale-out); it owns nothing,
    /// and must be dropped before this one.
    pub fn another(&self, bin: &Path) -> Result<Server> {
        let url = &self.db.as_ref().expect("database").url;
        let dir = tempfile::Builder::new()
            .prefix("tidesync-bench-")
            .tempdir()?;
        let (proc, base) = spawn(bin, dir.path(), url, &[]);
        Ok(Server {
            base,
            proc,
            db: None,
            dir,
        })
    }

    pub fn pid(&self) -> u32 {
        self.proc.pid()
    }

    /// Stops the process (SIGTERM), keeping its database for a restart.
    pub fn stop_keep(mut self) -> TestDb {
        let db = self.db.take().expect("database");
        let _ = self.proc.terminate();
        drop(self.dir);
        db
    }
}

/// `tidesync` on `url`, as the bench runs it; its process and base URL.
fn spawn(bin: &Path, dir: &Path, url: &str, env: &[(&str, String)]) -> (Proc, String) {
    let mut cmd: Command = Proc::command(bin, dir, url, SECRET);
    cmd.envs(env.iter().map(|(k, v)| (k, v)));
    // Startup lines only: a log line per request would measure the terminal.
    cmd.env("RUST_LOG", "warn,tidesync=info,tidesync::app=warn")
        // Room for the idle-streams scenario (the fd limit is 20,000 here).
        .env("MAX_CONNECTIONS", "15000")
        // The sharing scenario's owner invites a hundred members at once.
        .env("INVITATIONS_PER_HOUR", "100000")
        .env("PENDING_INVITATIONS_PER_SPACE", "100000");
    let mut proc = Proc::start_echoing(&mut cmd);
    let addr = proc.address();
    (proc, format!("http://{addr}"))
}

/// (current, peak) resident memory of a process in MiB, from /proc.
pub fn rss_mib(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .map(|kb| kb / 1024.0)
            .unwrap_or(f64::NAN)
    };
    (field("VmRSS:"), field("VmHWM:"))
}
