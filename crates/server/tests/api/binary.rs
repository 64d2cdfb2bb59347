//! The real `tidesync` binary, as a user runs it.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::*;

pub const BIN: &str = env!("CARGO_BIN_EXE_tidesync");

#[test]
fn help_explains_every_option() {
    let out = Command::new(BIN).arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for word in [
        "serve",
        "migrate",
        "PORT",
        "HOST",
        "DATABASE_URL",
        "JWT_SECRET",
        "JWT_EXPIRE",
        "CORS_ORIGIN",
        "LOG_FORMAT",
        "MAX_BODY_BYTES",
        "SHUTDOWN_TIMEOUT",
    ] {
        assert!(
            help.contains(word),
            "--help does not mention {word}:\n{help}"
        );
    }
    let out = Command::new(BIN)
        .args(["migrate", "--help"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("DATABASE_URL"));
    let out = Command::new(BIN)
        .args(["serve", "--help"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("JWT_EXPIRE"));
}

#[test]
fn bad_configuration_is_refused_clearly() {
    let out = Command::new(BIN)
        .args(["--jwt-expire", "7w"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("jwt-expire"));
}

/// A started binary whose log lines (JSON) arrive on a channel.
pub struct Proc {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Proc {
    pub fn start(cmd: &mut Command) -> Proc {
        let mut child = cmd
            .env_remove("RUST_LOG")
            .env("LOG_FORMAT", "json")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, rx) = mpsc::channel();
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    let _ = tx.send(line);
                }
            });
        }
        Proc {
            child,
            lines: rx,
            seen: vec![],
        }
    }

    /// Waits for the log line containing `needle`.
    pub fn wait_for(&mut self, needle: &str) -> String {
        loop {
            let line = self
                .lines
                .recv_timeout(Duration::from_secs(60))
                .unwrap_or_else(|_| panic!("no {needle:?} in output: {:#?}", self.seen));
            self.seen.push(line.clone());
            if line.contains(needle) {
                return line;
            }
        }
    }

    /// The address from the "tidesync listening" line.
    pub fn address(&mut self) -> String {
        let line = self.wait_for("tidesync listening");
        let v: Value = serde_json::from_str(&line).unwrap();
        v["fields"]["address"]
            .as_str()
            .unwrap()
            .replace("0.0.0.0", "127.0.0.1")
    }

    /// SIGKILL: no shutdown, no flush, as in a crash.
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn terminate(mut self) -> (bool, Vec<String>) {
        unsafe_kill(self.child.id(), "TERM");
        let status = self.child.wait().unwrap();
        self.seen.extend(self.lines.try_iter());
        // Readers may still be draining the pipes.
        while let Ok(l) = self.lines.recv_timeout(Duration::from_millis(500)) {
            self.seen.push(l);
        }
        (status.success(), self.seen)
    }
}

fn unsafe_kill(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .args([&format!("-{sig}"), &pid.to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
}

/// No configuration at all: a `data/` folder appears in the working directory
/// with the database and a 0600 secret; a `.env` file there is honoured.
#[tokio::test]
async fn runs_with_no_configuration_and_reads_dotenv() {
    let dir = tempfile::tempdir().unwrap();
    // PORT=0 through .env: proves .env is read (the default would be 5000).
    std::fs::write(dir.path().join(".env"), "PORT=0\nHOST=127.0.0.1\n").unwrap();
    let mut proc = Proc::start(
        Command::new(BIN)
            .current_dir(dir.path())
            .env_remove("PORT")
            .env_remove("HOST")
            .env_remove("DATABASE_URL")
            .env_remove("JWT_SECRET"),
    );
    let addr = proc.address();
    assert!(addr.starts_with("127.0.0.1:"), "{addr}");
    assert!(dir.path().join("data/tidesync.db").exists());
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(dir.path().join("data/jwt_secret"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let dir_mode = std::fs::metadata(dir.path().join("data"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(dir_mode & 0o777, 0o700, "the data folder is private");

    let client = reqwest::Client::new();
    let base = format!("http://{addr}");
    let password = "a-password-that-must-not-be-logged";
    let res = client
        .post(format!("{base}/api/auth/register"))
        .json(&json!({"email":"log@example.com","password":password,"name":"Log"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let body: Value = res.json().await.unwrap();
    let token = body["data"]["token"].as_str().unwrap().to_owned();
    let res = client
        .get(format!("{base}/api/auth/me"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    proc.wait_for("/api/auth/me");

    let (clean_exit, lines) = proc.terminate();
    assert!(clean_exit, "exit after SIGTERM: {lines:#?}");
    let all = lines.join("\n");
    assert!(all.contains("generated a random secret"), "{all}");
    assert!(all.contains("database closed"), "{all}");
    // One line per request with method, route, status, latency and id.
    let req_line: Value = serde_json::from_str(
        lines
            .iter()
            .find(|l| l.contains("/api/auth/register"))
            .unwrap(),
    )
    .unwrap();
    let f = &req_line["fields"];
    assert_eq!(f["method"], json!("POST"));
    assert_eq!(f["status"], json!(201));
    assert!(f["latency_ms"].is_number() && f["request_id"].is_string());
    // Never a password, token, hash or secret.
    let secret = std::fs::read_to_string(dir.path().join("data/jwt_secret")).unwrap();
    for leaked in [password, token.as_str(), "$argon2", secret.trim()] {
        assert!(!all.contains(leaked), "log leaks {leaked:?}");
    }
}

/// Flags beat environment variables.
#[tokio::test]
async fn flags_override_environment() {
    let dir = tempfile::tempdir().unwrap();
    let mut proc = Proc::start(
        Command::new(BIN)
            .current_dir(dir.path())
            .env("HOST", "0.0.0.0")
            .env("PORT", "1")
            .args(["--host", "127.0.0.1", "--port", "0"]),
    );
    let addr = proc.address();
    assert!(addr.starts_with("127.0.0.1:"), "{addr}");
    let res = reqwest::get(format!("http://{addr}/health")).await.unwrap();
    assert_eq!(res.status(), 200);
    proc.terminate();
}

async fn migrate_subcommand_prepares_the_database(db: Db) {
    let tdb = TestDb::new(db).await;
    let out = Command::new(BIN)
        .args(["migrate", "--database-url", &tdb.url])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Idempotent.
    let out = Command::new(BIN)
        .args(["migrate", "--database-url", &tdb.url])
        .output()
        .unwrap();
    assert!(out.status.success());
    let app = spawn_app(&tdb).await;
    app.register("migrated@example.com").await;
    app.stop().await;
}

backend_tests!(migrate_subcommand_prepares_the_database);
