use serde_json::json;

use tidesync_testkit::*;

async fn health_reports_ok(db: Db) {
    let tdb = TestDb::new(db).await;
    let app = spawn_app(&tdb).await;
    let res = app.get("/health", None).await;
    assert_eq!(res.status, 200);
    assert_eq!(res.body["status"], json!("ok"));
    assert_eq!(res.body["database"], json!("ok"));
    assert_eq!(res.body["version"], json!(env!("CARGO_PKG_VERSION")));
    app.stop().await;
}

async fn health_is_503_when_database_is_gone(db: Db) {
    let tdb = TestDb::new(db).await;
    let app = spawn_app(&tdb).await;
    // Close every connection of the server's pool: the database no longer answers.
    app.store.close().await;
    let res = app.get("/health", None).await;
    assert_eq!(res.status, 503);
    assert_eq!(res.body["status"], json!("unavailable"));
    assert_eq!(res.body["database"], json!("unavailable"));
    assert_eq!(res.body["version"], json!(env!("CARGO_PKG_VERSION")));
    // An authenticated request now fails with the outage error, not a 500.
    let res = app
        .post(
            "/api/auth/register",
            None,
            json!({"email":"x@example.com","password":"password1","name":"X"}),
        )
        .await;
    res.assert_error(503, "database_unavailable");
    assert_eq!(res.headers["retry-after"], "1");
}

async fn the_demo_app_is_served_at_the_root(db: Db) {
    let tdb = TestDb::new(db).await;
    let app = spawn_app(&tdb).await;
    let get = |path: String| {
        let req = app.http.get(app.url(&path));
        async move { req.send().await.unwrap() }
    };
    // The shell names its hashed assets: served immutable; the rest revalidated.
    let index = get("/".into()).await;
    assert_eq!(index.status(), 200);
    assert_eq!(index.headers()["cache-control"], "no-cache");
    let html = index.text().await.unwrap();
    let asset = |prefix: &str| {
        let start = html
            .find(prefix)
            .unwrap_or_else(|| panic!("{prefix} in {html}"))
            + prefix.len()
            - 5;
        let end = start + html[start..].find('"').unwrap();
        html[start..end].to_owned()
    };
    let (js, css) = (asset("src=\"/app."), asset("href=\"/app."));
    for (path, ctype, cache) in [
        ("/".to_owned(), "text/html", "no-cache"),
        (js, "text/javascript", "public, max-age=31536000, immutable"),
        (css, "text/css", "public, max-age=31536000, immutable"),
        ("/sw.js".to_owned(), "text/javascript", "no-cache"),
        (
            "/manifest.webmanifest".to_owned(),
            "application/manifest+json",
            "no-cache",
        ),
        ("/icon-192.png".to_owned(), "image/png", "no-cache"),
        ("/icon-512.png".to_owned(), "image/png", "no-cache"),
    ] {
        let res = get(path.clone()).await;
        assert_eq!(res.status(), 200, "{path}");
        let got = res.headers()["content-type"].to_str().unwrap().to_owned();
        assert!(got.starts_with(ctype), "{path}: {got}");
        assert_eq!(res.headers()["cache-control"], cache, "{path}");
        let csp = res.headers()["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("worker-src 'self'"), "{path}: {csp}");
        assert!(!res.bytes().await.unwrap().is_empty(), "{path}");
    }
    // The API is never cached.
    assert_eq!(
        get("/health".into()).await.headers()["cache-control"],
        "no-store"
    );
    assert_eq!(
        get("/app.js".into()).await.status(),
        404,
        "unhashed names are gone"
    );
    app.stop().await;
}

/// `/health` has a limit of its own per client IP, generous enough for
/// probes: over it, `429` with `Retry-After`; another client is not
/// affected, and the refilled budget serves a normal rate again.
async fn health_is_limited_per_client_ip(db: Db) {
    let tdb = TestDb::new(db).await;
    let mut args = test_args(&tdb);
    args.health_rate_limit_per_minute = 120;
    args.trust_proxy = true;
    let app = spawn_with(args).await;
    let probe = |ip: &'static str| {
        let req = app
            .http
            .get(app.url("/health"))
            .header("x-forwarded-for", ip);
        app.send(req)
    };
    for _ in 0..120 {
        assert_eq!(probe("10.0.0.1").await.status, 200);
    }
    let over = probe("10.0.0.1").await;
    over.assert_error(429, "rate_limited");
    let wait: u64 = over.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&wait), "{wait}");
    assert_eq!(probe("10.0.0.2").await.status, 200, "another client");
    tokio::time::sleep(std::time::Duration::from_secs(wait)).await;
    assert_eq!(probe("10.0.0.1").await.status, 200, "refilled");
    app.stop().await;
}

backend_tests!(
    health_is_limited_per_client_ip,
    health_reports_ok,
    health_is_503_when_database_is_gone,
    the_demo_app_is_served_at_the_root
);
