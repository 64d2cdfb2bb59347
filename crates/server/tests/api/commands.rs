//! The operators' commands where operators run them: `restore` on a fresh
//! machine, errors as one line that says what to do, and progress bars on
//! a terminal only (scripts see the output they always saw).

use std::path::Path;
use std::process::{Command, Output};

use serde_json::json;
use tidesync_client::{Client, EntityType, OpKind, SyncBody};
use tidesync_testkit::mongo::{generate, MongoFixture};
use tidesync_testkit::*;

use crate::binary::BIN;

backend_tests! {
    plain_async: [
        restore_works_on_a_fresh_machine_in_an_empty_directory,
        restore_errors_are_one_line_that_says_what_to_do,
        long_commands_show_progress_on_a_terminal_only,
        schema_check_reports_every_problem_with_its_path,
    ],
}

/// `tidesync ARGS` in `dir` with nothing configured but what `env` sets
/// (no DATABASE_URL: the default `sqlite://data/tidesync.db`).
fn run(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .current_dir(dir)
        .env_remove("DATABASE_URL")
        .env_remove("JWT_SECRET")
        .env_remove("RUST_LOG");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A server on `tdb` with one user and one item: the user's token and the
/// item's id. The server is stopped.
async fn with_one_item(tdb: &TestDb) -> (String, String, Proc) {
    let (proc, base) = crate::binary::serve(tdb, tdb.dir().unwrap());
    let api = Client::new(&base).unwrap();
    let token = api
        .register("fresh@example.com", PASSWORD, "Fresh")
        .await
        .unwrap()
        .token;
    let id = new_id();
    let r = api
        .with_token(&token)
        .sync(&SyncBody {
            device_id: "laptop".into(),
            changes: vec![typed_change(
                "op-1",
                &id,
                EntityType::Item,
                OpKind::Create,
                json!({"title": "kept"}),
                &at(0),
                "laptop",
            )],
            ..SyncBody::default()
        })
        .await
        .unwrap();
    assert!(r.acknowledged[0].success);
    (token, id, proc)
}

/// Disaster recovery: a new machine, an empty folder, the backup file and
/// the secret. `restore` creates `data/` (0700) and the server then serves
/// the restored data.
async fn restore_works_on_a_fresh_machine_in_an_empty_directory() {
    let tdb = TestDb::sqlite();
    let (token, id, proc) = with_one_item(&tdb).await;
    let file = tdb.dir().unwrap().join("backup.db");
    let out = run(
        tdb.dir().unwrap(),
        &["backup", file.to_str().unwrap()],
        &[("DATABASE_URL", &tdb.url)],
    );
    assert!(out.status.success(), "{}", text(&out.stdout));
    proc.terminate();

    let fresh = tempfile::tempdir().unwrap();
    let out = run(fresh.path(), &["restore", file.to_str().unwrap()], &[]);
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(out.stderr.is_empty(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("database restored; start the server"));
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(fresh.path().join("data"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o700, "the data folder is private");

    let mut server = Command::new(BIN);
    server
        .current_dir(fresh.path())
        .env_remove("DATABASE_URL")
        .env("JWT_SECRET", TEST_SECRET)
        .env("PORT", "0")
        .env("HOST", "127.0.0.1");
    let (proc, base) = Proc::serve(&mut server);
    let alice = Client::new(&base).unwrap().with_token(&token);
    let all = alice.initial_all(None, None).await.unwrap();
    let got = by_id(&all.updates);
    assert_eq!(
        got.get(&id).map(|r| r["title"].clone()),
        Some(json!("kept"))
    );
    let (ok, _) = proc.terminate();
    assert!(ok);
}

/// What an operator sees when a restore cannot run: one line on standard
/// error, naming the problem and what to do, and a nonzero exit.
async fn restore_errors_are_one_line_that_says_what_to_do() {
    let one_line = |out: &Output, needles: &[&str]| {
        assert!(!out.status.success());
        let err = text(&out.stderr);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.starts_with("error: "), "{err}");
        for n in needles {
            assert!(err.contains(n), "{n:?} not in {err}");
        }
        assert!(out.stdout.is_empty(), "{}", text(&out.stdout));
    };
    let fresh = tempfile::tempdir().unwrap();
    let out = run(fresh.path(), &["restore", "missing.db"], &[]);
    one_line(&out, &["missing.db does not exist", "tidesync backup"]);
    std::fs::write(fresh.path().join("notes.txt"), "not a database").unwrap();
    let out = run(fresh.path(), &["restore", "notes.txt"], &[]);
    one_line(&out, &["notes.txt is not a readable SQLite database"]);
    assert!(
        !fresh.path().join("data/tidesync.db").exists(),
        "nothing was restored"
    );

    let tdb = TestDb::sqlite();
    let (_, _, proc) = with_one_item(&tdb).await;
    let file = fresh.path().join("backup.db");
    let db_env = [("DATABASE_URL", tdb.url.as_str())];
    let out = run(fresh.path(), &["backup", file.to_str().unwrap()], &db_env);
    assert!(out.status.success());
    let out = run(fresh.path(), &["restore", file.to_str().unwrap()], &db_env);
    one_line(&out, &["is in use: stop the server first"]);
    let (ok, _) = proc.terminate();
    assert!(ok);
}

/// Under a pseudo-terminal (`script`), the long commands draw progress on
/// standard error; through pipes (scripts, cron, CI) they draw nothing:
/// standard error stays empty and standard output is what it was (one log
/// line, or the import summary).
async fn long_commands_show_progress_on_a_terminal_only() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let export = d.join("export");
    std::fs::create_dir(&export).unwrap();
    generate(
        &export,
        &MongoFixture {
            users: 3,
            records_per_user: 10,
            base: tidesync_protocol::time::now_millis(),
            seed: 7,
            anomalies: false,
        },
    )
    .unwrap();
    assert!(run(d, &["migrate"], &[]).status.success());
    // (arguments, what the bar says, the line or summary printed either way)
    let commands: [(&[&str], &str, &str); 4] = [
        (&["gc"], "collecting history", "history collected"),
        (&["backup", "b1.db"], "backing up [", "backup written"),
        (
            &["import", "mongo", "export"],
            "importing [",
            "import summary",
        ),
        (&["restore", "b1.db"], "restoring [", "database restored"),
    ];
    for (args, _, printed) in commands {
        let out = run(d, args, &[]);
        let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
        assert!(out.status.success(), "{args:?}: {stdout}{stderr}");
        assert!(stderr.is_empty(), "{args:?} wrote to stderr: {stderr:?}");
        assert!(stdout.contains(printed), "{args:?}: {stdout}");
        assert!(
            !stdout.contains('\r') && !stdout.contains('\u{1b}'),
            "{args:?} drew on a pipe: {stdout:?}"
        );
    }
    std::fs::remove_file(d.join("b1.db")).unwrap();
    for (args, bar, printed) in commands {
        let line = std::iter::once(BIN)
            .chain(args.iter().copied())
            .collect::<Vec<_>>()
            .join(" ");
        let out = Command::new("script")
            .args(["-qec", &line, "/dev/null"])
            .current_dir(d)
            .env_remove("DATABASE_URL")
            .env_remove("RUST_LOG")
            .output()
            .expect("script(1), from util-linux");
        let all = text(&out.stdout);
        assert!(out.status.success(), "{args:?}: {all}");
        assert!(all.contains(bar), "{args:?}: no progress in {all:?}");
        assert!(all.contains(printed), "{args:?}: {all:?}");
    }
}

/// `schema check` accepts the notes schema and the built-in as
/// `schema print` prints it; a broken file gets every problem on its own
/// line with its JSON path, then one error line and a nonzero exit.
async fn schema_check_reports_every_problem_with_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let notes = Path::new(env!("CARGO_MANIFEST_DIR")).join("../protocol/schema/notes.json");
    let out = run(
        dir.path(),
        &["schema", "check", notes.to_str().unwrap()],
        &[],
    );
    assert!(out.status.success(), "{}", text(&out.stdout));
    assert!(text(&out.stdout).contains("valid, 3 collections"));

    let printed = run(dir.path(), &["schema", "print"], &[]);
    assert!(printed.status.success());
    let builtin: serde_json::Value = serde_json::from_slice(&printed.stdout).unwrap();
    assert_eq!(
        builtin["collections"]["item"]["plural"],
        json!("items"),
        "{builtin}"
    );
    std::fs::write(dir.path().join("builtin.json"), &printed.stdout).unwrap();
    let out = run(dir.path(), &["schema", "check", "builtin.json"], &[]);
    assert!(out.status.success(), "{}", text(&out.stdout));

    let broken = json!({"collections": {
        "note": {
            "plural": "notes",
            "properties": {
                "notebookId": {"type": "string", "format": "uuid", "x-references": "notebook"},
                "rank": {"type": "number", "minimum": "zero"}
            }
        }
    }});
    std::fs::write(dir.path().join("broken.json"), broken.to_string()).unwrap();
    let out = run(dir.path(), &["schema", "check", "broken.json"], &[]);
    assert!(!out.status.success());
    let report = text(&out.stdout);
    for path in [
        "/collections/note/properties/notebookId/x-references",
        "/collections/note/properties/rank/minimum",
    ] {
        assert!(
            report.lines().any(|l| l.starts_with(path)),
            "{path} not in {report}"
        );
    }
    let err = text(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("error: broken.json: "), "{err}");
}
