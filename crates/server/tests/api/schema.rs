//! The schema a server runs (`--schema FILE` / `SCHEMA`): checked at start,
//! served by `GET /api/schema` and in the OpenAPI document, and compared at
//! each start with the one the deployment served before: additive changes
//! start, breaking ones are refused unless allowed.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};
use tidesync::config::ServeArgs;
use tidesync::schema::SchemaChangeError;
use tidesync::{App, StartError};
use tidesync_protocol::schema::{Schema, BUILTIN_JSON, NOTES_JSON};
use tidesync_testkit::*;

use crate::binary::BIN;

backend_tests! {
    backend: [
        a_schema_file_is_served_and_described,
        additive_changes_start_and_breaking_ones_are_refused_unless_allowed,
    ],
    plain_async: [a_broken_schema_file_stops_the_start_with_every_problem],
}

/// `doc` written to `dir/name`.
fn write(dir: &Path, name: &str, doc: &Value) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, doc.to_string()).unwrap();
    path
}

fn args_with(tdb: &TestDb, schema: Option<PathBuf>) -> ServeArgs {
    let mut args = test_args(tdb);
    args.schema = schema;
    args
}

async fn get_json(app: &TestApp, path: &str) -> Value {
    let res = app.http.get(app.url(path)).send().await.unwrap();
    assert_eq!(res.status(), 200, "{path}");
    res.json().await.unwrap()
}

/// Started with the notes schema, the server serves it at `/api/schema`,
/// and its OpenAPI document describes notebooks, notes and check items
/// (and no bucket list).
async fn a_schema_file_is_served_and_described(db: Db) {
    let tdb = TestDb::new(db).await;
    let dir = tempfile::tempdir().unwrap();
    // As text: a `Value` would sort the properties, whose order counts.
    let file = dir.path().join("notes.json");
    std::fs::write(&file, NOTES_JSON).unwrap();
    let app = spawn_with(args_with(&tdb, Some(file))).await;

    // As text: the order of the properties counts.
    let res = app.http.get(app.url("/api/schema")).send().await.unwrap();
    let served = Schema::parse(&res.text().await.unwrap()).expect("a valid schema");
    assert_eq!(served, Schema::parse(NOTES_JSON).unwrap());

    let doc = get_json(&app, "/api/openapi.json").await;
    let schemas = &doc["components"]["schemas"];
    let updates = &schemas["ServerUpdates"]["properties"];
    for (plural, record) in [
        ("notebooks", "NotebookRecord"),
        ("notes", "NoteRecord"),
        ("checkItems", "CheckItemRecord"),
    ] {
        assert_eq!(
            updates[plural]["items"]["$ref"],
            format!("#/components/schemas/{record}"),
            "{plural}"
        );
        assert_eq!(
            schemas["InitialPage"]["properties"][plural]["items"]["$ref"],
            format!("#/components/schemas/{record}")
        );
        assert!(schemas[record]["properties"]["id"].is_object());
    }
    assert!(updates.get("items").is_none(), "{updates}");
    assert!(schemas["InitialPage"]["properties"].get("spaces").is_none());
    assert_eq!(
        schemas["InitialPage"]["properties"]["hasMore"]["type"],
        "boolean"
    );
    assert_eq!(
        schemas["NoteRecord"]["properties"]["body"]["maxLength"],
        20000
    );
    // The sync answer names the component.
    assert_eq!(
        schemas["SyncResponse"]["properties"]["serverUpdates"]["$ref"],
        "#/components/schemas/ServerUpdates"
    );
    app.stop().await;
}

/// Starting the built-in over a database that served the built-in: no
/// change. Then one more optional property and a looser limit start; a
/// removed property and a tighter limit are refused with each change's
/// path, and the database still holds the previous schema; with
/// `allow_breaking_schema_changes` the same file starts and is then the
/// deployment's schema.
async fn additive_changes_start_and_breaking_ones_are_refused_unless_allowed(db: Db) {
    let tdb = TestDb::new(db).await;
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_with(args_with(&tdb, None)).await;
    assert_eq!(
        app.store.served_schema().await.unwrap().as_deref(),
        Some(Schema::builtin().to_json_pretty().as_str())
    );
    app.stop().await;

    let mut additive: Value = serde_json::from_str(BUILTIN_JSON).unwrap();
    let item = &mut additive["collections"]["item"]["properties"];
    item["rating"] = json!({"type": "integer", "minimum": 1, "maximum": 5});
    item["title"]["maxLength"] = json!(1000);
    let file = write(dir.path(), "additive.json", &additive);
    let app = spawn_with(args_with(&tdb, Some(file))).await;
    let served = get_json(&app, "/api/schema").await;
    assert_eq!(
        served["collections"]["item"]["properties"]["rating"]["maximum"],
        5
    );
    assert_eq!(
        app.store.served_schema().await.unwrap(),
        Some(
            Schema::parse(&additive.to_string())
                .unwrap()
                .to_json_pretty()
        )
    );
    app.stop().await;

    let mut breaking = additive.clone();
    let item = &mut breaking["collections"]["item"]["properties"];
    item.as_object_mut().unwrap().remove("movieId");
    item["title"]["maxLength"] = json!(100);
    let file = write(dir.path(), "breaking.json", &breaking);
    let err = match App::build(&args_with(&tdb, Some(file.clone()))).await {
        Ok(_) => panic!("a breaking change started"),
        Err(e) => e,
    };
    let StartError::SchemaChange(SchemaChangeError::Breaking { changes }) = &err else {
        panic!("not a refused change: {err}");
    };
    // In the order of the file, whose properties `Value` sorted.
    let paths: Vec<&str> = changes.iter().map(|c| c.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "/collections/item/properties/movieId",
            "/collections/item/properties/title/maxLength",
        ]
    );
    let message = err.to_string();
    for p in &paths {
        assert!(message.contains(p), "{p} not in {message}");
    }
    assert!(
        message.contains("--allow-breaking-schema-changes"),
        "{message}"
    );

    let mut allowed = args_with(&tdb, Some(file));
    allowed.allow_breaking_schema_changes = true;
    let app = spawn_with(allowed).await;
    let served = get_json(&app, "/api/schema").await;
    assert!(served["collections"]["item"]["properties"]
        .get("movieId")
        .is_none());
    assert_eq!(
        app.store.served_schema().await.unwrap(),
        Some(
            Schema::parse(&breaking.to_string())
                .unwrap()
                .to_json_pretty()
        )
    );
    app.stop().await;

    // The breaking schema is now the deployment's: it starts unflagged.
    let file = write(dir.path(), "again.json", &breaking);
    let app = spawn_with(args_with(&tdb, Some(file))).await;
    app.stop().await;
}

/// The binary with a broken `SCHEMA`: one error line listing each problem
/// with its JSON path, a nonzero exit, and no database created. `schema
/// print` honours `--schema` and `SCHEMA`.
async fn a_broken_schema_file_stops_the_start_with_every_problem() {
    let dir = tempfile::tempdir().unwrap();
    let broken = json!({"collections": {
        "note": {
            "plural": "notes",
            "properties": {
                "notebookId": {"type": "string", "format": "uuid", "x-references": "notebook"},
                "rank": {"type": "number", "minimum": "zero"}
            }
        }
    }});
    write(dir.path(), "broken.json", &broken);
    let out = Command::new(BIN)
        .args(["serve", "--port", "0", "--host", "127.0.0.1"])
        .current_dir(dir.path())
        .env("SCHEMA", "broken.json")
        .env("DATABASE_URL", "sqlite://data/t.db")
        .env("JWT_SECRET", TEST_SECRET)
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let last = err.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("error: starting tidesync: the schema file broken.json has 2 problems"),
        "{err}"
    );
    for path in [
        "/collections/note/properties/notebookId/x-references",
        "/collections/note/properties/rank/minimum",
    ] {
        assert!(last.contains(path), "{path} not in {last}");
    }
    assert!(!dir.path().join("data").exists(), "the database was opened");

    std::fs::write(dir.path().join("notes.json"), NOTES_JSON).unwrap();
    for (args, env) in [
        (&["schema", "print", "--schema", "notes.json"][..], None),
        (&["schema", "print"][..], Some("notes.json")),
    ] {
        let mut cmd = Command::new(BIN);
        cmd.args(args).current_dir(dir.path()).env_remove("SCHEMA");
        if let Some(file) = env {
            cmd.env("SCHEMA", file);
        }
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "{args:?}");
        let printed = Schema::parse(&String::from_utf8_lossy(&out.stdout)).unwrap();
        assert_eq!(printed, Schema::parse(NOTES_JSON).unwrap(), "{args:?}");
    }
    let out = Command::new(BIN)
        .args(["schema", "print", "--schema", "broken.json"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
}
