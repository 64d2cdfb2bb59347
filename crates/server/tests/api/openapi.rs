use std::collections::BTreeSet;

use serde_json::Value;
use tidesync::router::ROUTES;
use tidesync::routes::openapi::DOCUMENTS;
use tidesync_protocol::error::ErrorCode;

use tidesync_testkit::*;

const METHODS: &[&str] = &["get", "post", "put", "patch", "delete"];

/// Every `(METHOD, path)` operation of the document.
fn operations(doc: &Value) -> BTreeSet<(String, String)> {
    let mut ops = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for m in METHODS {
            if item.get(*m).is_some() {
                ops.insert((m.to_uppercase(), path.clone()));
            }
        }
    }
    ops
}

async fn the_document_covers_every_route(db: Db) {
    let tdb = TestDb::new(db).await;
    let app = spawn_app(&tdb).await;
    let res = app
        .http
        .get(app.url("/api/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let ctype = res.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(ctype.starts_with("application/json"), "{ctype}");
    let doc: Value = res.json().await.unwrap();

    // The raw document, not an envelope.
    assert!(doc.get("success").is_none());
    let version = doc["openapi"].as_str().expect("openapi version");
    assert!(version.starts_with("3.1."), "{version}");

    let listed: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    let documented = operations(&doc);
    let missing: Vec<_> = listed.difference(&documented).collect();
    assert!(
        missing.is_empty(),
        "routes missing from the document: {missing:?}"
    );
    let unlisted: Vec<_> = documented.difference(&listed).collect();
    assert!(
        unlisted.is_empty(),
        "documented but not in ROUTES: {unlisted:?}"
    );

    let scheme = &doc["components"]["securitySchemes"]["bearer"];
    assert_eq!(scheme["type"], "http");
    assert_eq!(scheme["scheme"], "bearer");
    assert_eq!(scheme["bearerFormat"], "JWT");

    // The error shape and every code the server sends.
    let schemas = &doc["components"]["schemas"];
    assert!(schemas["ErrorBody"]["properties"]["error"].is_object());
    let codes: BTreeSet<&str> = schemas["ErrorCode"]["enum"]
        .as_array()
        .expect("ErrorCode enum")
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    let all: BTreeSet<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
    assert_eq!(codes, all);

    for (method, path) in &documented {
        let op = &doc["paths"][path][method.to_lowercase()];
        let responses = op["responses"].as_object().expect("responses");
        let what = format!("{method} {path}");
        assert!(
            responses.keys().any(|s| s.starts_with('2')),
            "{what}: no 2xx response"
        );
        let secured = op["security"]
            .as_array()
            .is_some_and(|s| s.iter().any(|r| r.get("bearer").is_some()));
        let mut errors = vec!["500"];
        if path.starts_with("/api/") && !DOCUMENTS.contains(&path.as_str()) {
            errors.extend(["400", "413", "429", "503"]);
        }
        if secured {
            errors.push("401");
        }
        for status in errors {
            assert!(responses.contains_key(status), "{what}: no {status}");
        }
        for (status, r) in responses {
            if status.starts_with(['4', '5']) && path != "/health" {
                let schema = &r["content"]["application/json"]["schema"]["$ref"];
                assert_eq!(
                    schema, "#/components/schemas/ErrorBody",
                    "{what} {status}: not the error shape"
                );
            }
        }
    }
    // Operations that need a token say so.
    let me = &doc["paths"]["/api/auth/me"]["get"]["security"];
    assert!(me.as_array().is_some_and(|s| !s.is_empty()), "{me}");
    assert!(doc["paths"]["/api/auth/login"]["post"]["security"].is_null());
    assert!(doc["paths"]["/api/auth/register"]["post"]["responses"]["201"].is_object());

    // Each listed route is a route of the running router: neither the
    // fallback nor "method not allowed" answers it. Sent without a token
    // or body, so each stops at its first check (and nothing hangs).
    for (method, path) in ROUTES {
        let url = path
            .replace("{space_id}", "00000000-0000-4000-8000-000000000000")
            .replace("{user_id}", "00000000-0000-4000-8000-000000000001");
        let res = app
            .http
            .request(method.parse().unwrap(), app.url(&url))
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        let body: Value = res.json().await.unwrap_or(Value::Null);
        assert_ne!(status, 405, "{method} {path}: not routed");
        assert!(
            !(status == 404 && body["error"]["message"] == "no such route"),
            "{method} {path}: not routed"
        );
    }
    app.stop().await;
}

/// `GET /api/schema` serves the data model the server runs: the built-in
/// bucket list, the same document `tidesync schema print` prints, and one
/// `schema check` accepts.
async fn the_schema_is_served(db: Db) {
    let tdb = TestDb::new(db).await;
    let app = spawn_app(&tdb).await;
    let res = app.http.get(app.url("/api/schema")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let ctype = res.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(ctype.starts_with("application/json"), "{ctype}");
    let text = res.text().await.unwrap();
    let served = tidesync_protocol::schema::Schema::parse(&text).expect("a valid schema");
    assert_eq!(&served, tidesync_protocol::schema::Schema::builtin());
    let plurals: Vec<&str> = served
        .collections
        .values()
        .map(|c| c.plural.as_str())
        .collect();
    for p in ["spaces", "categories", "items"] {
        assert!(plurals.contains(&p), "{p} not in {plurals:?}");
    }
    app.stop().await;
}

backend_tests!(the_document_covers_every_route, the_schema_is_served);
