//! Starting and watching a server process.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{anyhow, Context, Result};

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
}

/// A running server process, killed when dropped.
pub struct Server {
    pub base: String,
    url: String,
    child: Child,
    _dir: Option<tempdir::Dir>,
    pg_db: Option<(String, String)>,
}

pub mod tempdir {
    /// A temporary directory removed on drop (std only).
    pub struct Dir(pub std::path::PathBuf);
    impl Dir {
        pub fn new(tag: &str) -> std::io::Result<Dir> {
            let p = std::env::temp_dir().join(format!(
                "tidesync-bench-{tag}-{}",
                uuid::Uuid::new_v4().simple()
            ));
            std::fs::create_dir_all(&p)?;
            Ok(Dir(p))
        }
    }
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// `postgres://user@host:port/name?q` with another database name.
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map(|(b, q)| (b, Some(q)))
        .unwrap_or((url, None));
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let host = match base[scheme_end..].find('/') {
        Some(i) => &base[..scheme_end + i],
        None => base,
    };
    match query {
        Some(q) => format!("{host}/{name}?{q}"),
        None => format!("{host}/{name}"),
    }
}

pub fn psql(admin: &str, sql: &str) -> Result<()> {
    let st = Command::new("psql")
        .args([admin, "-qAtc", sql])
        .status()
        .context("psql")?;
    anyhow::ensure!(st.success(), "psql failed: {sql}");
    Ok(())
}

impl Server {
    /// Starts tidesync on a fresh database (or on `keep`, a previous run's
    /// database, to restart on the same data).
    pub fn start(bin: &std::path::Path, target: &Target, keep: Option<Reuse>) -> Result<Server> {
        let (url, dir, pg_db) = match (target, keep) {
            (_, Some(mut r)) => (std::mem::take(&mut r.url), r.dir.take(), r.pg_db.take()),
            (Target::Sqlite, None) => {
                let dir = tempdir::Dir::new("db")?;
                (
                    format!("sqlite://{}/tidesync.db", dir.0.display()),
                    Some(dir),
                    None,
                )
            }
            (Target::Postgres(admin), None) => {
                let name = format!("tidesync_bench_{}", uuid::Uuid::new_v4().simple());
                psql(admin, &format!("CREATE DATABASE {name}"))?;
                (
                    with_database(admin, &name),
                    None,
                    Some((admin.clone(), name)),
                )
            }
        };
        let (child, base) = spawn(bin, &url)?;
        Ok(Server {
            base,
            url,
            child,
            _dir: dir,
            pg_db,
        })
    }

    /// Another instance on the same database (scale-out); it owns nothing.
    pub fn another(&self, bin: &std::path::Path) -> Result<Server> {
        let (child, base) = spawn(bin, &self.url)?;
        Ok(Server {
            base,
            url: self.url.clone(),
            child,
            _dir: None,
            pg_db: None,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Stops the process, keeping its database for a restart.
    pub fn stop_keep(mut self) -> Reuse {
        // A positive pid: this process alone.
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
        Reuse {
            url: std::mem::take(&mut self.url),
            dir: self._dir.take(),
            pg_db: self.pg_db.take(),
        }
    }
}

/// Starts a tidesync process on `url`; returns it and its base URL.
fn spawn(bin: &std::path::Path, url: &str) -> Result<(Child, String)> {
    let mut child = Command::new(bin)
        .env("DATABASE_URL", url)
        .env("PORT", "0")
        .env("HOST", "127.0.0.1")
        .env("JWT_SECRET", "bench-secret-bench-secret-bench-secret")
        .env("LOG_FORMAT", "json")
        // Startup lines only: a log line per request would measure the terminal.
        .env("RUST_LOG", "warn,tidesync=info,tidesync::app=warn")
        .env("RATE_LIMIT_PER_MINUTE", "1000000000")
        .env("AUTH_RATE_LIMIT_PER_MINUTE", "1000000000")
        // Room for the idle-streams scenario (the fd limit is 20,000 here).
        .env("MAX_CONNECTIONS", "15000")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))?;
    let stdout = child.stdout.take().expect("piped");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let addr = loop {
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .map_err(|_| anyhow!("server did not start"))?;
        if line.contains("tidesync listening") {
            let v: serde_json::Value = serde_json::from_str(&line)?;
            break v["fields"]["address"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
        }
    };
    Ok((child, format!("http://{addr}")))
}

/// A stopped server's database, to start again on.
pub struct Reuse {
    url: String,
    dir: Option<tempdir::Dir>,
    pg_db: Option<(String, String)>,
}

impl Drop for Reuse {
    fn drop(&mut self) {
        if let Some((admin, name)) = self.pg_db.take() {
            let _ = psql(
                &admin,
                &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
            );
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some((admin, name)) = self.pg_db.take() {
            let _ = psql(
                &admin,
                &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
            );
        }
    }
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
