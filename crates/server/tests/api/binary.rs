//! The real `tidesync` binary, as a user runs it.

use std::process::Command;

use serde_json::{json, Value};
use tidesync_client::Client;
use tidesync_testkit::*;

pub const BIN: &str = env!("CARGO_BIN_EXE_tidesync");

backend_tests! {
    backend: [migrate_subcommand_prepares_the_database],
    plain: [help_explains_every_option, bad_configuration_is_refused_clearly],
    plain_async: [runs_with_no_configuration_and_reads_dotenv, flags_override_environment],
}

/// `tidesync` serving `tdb` from `dir`, with the test secret; its base URL.
pub fn serve(tdb: &TestDb, dir: &std::path::Path) -> (Proc, String) {
    Proc::serve(&mut Proc::command(
        std::path::Path::new(BIN),
        dir,
        &tdb.url,
        TEST_SECRET,
    ))
}

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

fn bad_configuration_is_refused_clearly() {
    let out = Command::new(BIN)
        .args(["--jwt-expire", "7w"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("jwt-expire"));
}

/// No configuration at all: a `data/` folder appears in the working directory
/// with the database and a 0600 secret; a `.env` file there is honoured.
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

    let anon = Client::new(&format!("http://{addr}")).unwrap();
    let password = "a-password-that-must-not-be-logged";
    let auth = anon
        .register("log@example.com", password, "Log")
        .await
        .unwrap();
    let token = auth.token;
    let me = anon.with_token(&token).me().await.unwrap();
    assert_eq!(me.email, "log@example.com");
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
