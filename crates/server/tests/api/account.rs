//! Account safety, rate limits and response headers.

use serde_json::{json, Value};
use tidesync_client::protocol::Role;
use tidesync_client::{Client, ErrorCode};

use tidesync_testkit::*;

async fn login(app: &TestApp, email: &str, password: &str) -> Res {
    app.post(
        "/api/auth/login",
        None,
        json!({"email": email, "password": password}),
    )
    .await
}

fn token_of(res: &Res) -> String {
    assert_eq!(res.status, 200, "{}", res.body);
    res.body["data"]["token"].as_str().unwrap().to_owned()
}

/// A second session of `email` (password [`PASSWORD`]), as a client.
async fn second_session(app: &TestApp, email: &str) -> Client {
    let auth = app.api.login(email, PASSWORD).await.expect("login");
    app.client(&auth.token)
}

async fn logout_revokes_only_that_token(db: Db) {
    let tdb = TestDb::new(db).await;
    let app = spawn_app(&tdb).await;
    let first = app.user("out@example.com").await;
    let second = second_session(&app, "out@example.com").await;
    first.logout().await.expect("logout");
    expect_api_error(first.me().await, 401, ErrorCode::Unauthorized);
    expect_api_error(
        first.pull("d", None, None).await,
        401,
        ErrorCode::Unauthorized,
    );
    assert_eq!(second.me().await.unwrap().email, "out@example.com");
    app.stop().await;
}

async fn password_change_revokes_every_other_token(db: Db) {
    let tdb = TestDb::new(db).await;
    let app = spawn_app(&tdb).await;
    let old = app.user("pw@example.com").await;
    let other = second_session(&app, "pw@example.com").await;
    expect_api_error(
        old.change_password("wrong horse", "battery staple").await,
        401,
        ErrorCode::InvalidCredentials,
    );
    expect_api_error(
        old.change_password(PASSWORD, "short").await,
        400,
        ErrorCode::ValidationFailed,
    );
    assert!(other.me().await.is_ok(), "failed attempts change nothing");

    let changed = old
        .change_password(PASSWORD, "battery staple")
        .await
        .expect("password change");
    assert_eq!(changed.user.email, "pw@example.com");
    for c in [&old, &other] {
        expect_api_error(c.me().await, 401, ErrorCode::Unauthorized);
    }
    assert!(app.client(&changed.token).me().await.is_ok());
    expect_api_error(
        app.api.login("pw@example.com", PASSWORD).await,
        401,
        ErrorCode::InvalidCredentials,
    );
    app.api
        .login("pw@example.com", "battery staple")
        .await
        .expect("the new password logs in");
    app.stop().await;
}

/// Row counts of every table that holds user data.
async fn table_counts(tdb: &TestDb, db: Db) -> Vec<(String, i64)> {
    use sqlx::Connection;
    let tables = [
        "users",
        "scopes",
        "members",
        "records",
        "sync_log",
        "revoked_tokens",
        "invitations",
        "invitation_blocks",
    ];
    let mut out = vec![];
    for t in tables {
        let sql = format!("SELECT COUNT(*) FROM {t}");
        let n: i64 = match db {
            Db::Sqlite => {
                let file = tidesync_store::sqlite_file(&tdb.url).unwrap();
                let c = rusqlite::Connection::open(file).unwrap();
                c.query_row(&sql, [], |r| r.get(0)).unwrap()
            }
            Db::Postgres => {
                let mut c = sqlx::PgConnection::connect(&tdb.url).await.unwrap();
                sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                    .fetch_one(&mut c)
                    .await
                    .unwrap()
            }
        };
        out.push((t.to_owned(), n));
    }
    out
}

async fn deleting_the_account_removes_every_row(db: Db) {
    let tdb = TestDb::new(db).await;
    let app = spawn_app(&tdb).await;
    let gone = app.user("gone@example.com").await;
    let token = gone.token().unwrap().to_owned();
    second_session(&app, "gone@example.com")
        .await
        .logout()
        .await
        .expect("logout");
    let s = new_id();
    app.sync(
        &token,
        "A",
        Value::Null,
        vec![
            change(
                "d1",
                &s,
                "space",
                "create",
                json!({"name": "x"}),
                &at(0),
                "A",
            ),
            change(
                "d2",
                &new_id(),
                "item",
                "create",
                json!({"title": "y", "spaceId": s}),
                &at(1),
                "A",
            ),
        ],
    )
    .await;
    // Another user's data must survive.
    let other = app.register("stays@example.com").await;
    let theirs = new_id();
    app.sync(
        &other,
        "B",
        Value::Null,
        vec![change(
            "o1",
            &theirs,
            "space",
            "create",
            json!({"name": "z"}),
            &at(0),
            "B",
        )],
    )
    .await;
    // An invitation Gone sends, and one to Gone, declined with a block.
    gone.invite(s.parse().unwrap(), "stays@example.com", Role::Viewer)
        .await
        .expect("invite");
    let to_gone = app
        .client(&other)
        .invite(theirs.parse().unwrap(), "gone@example.com", Role::Viewer)
        .await
        .expect("invite Gone");
    gone.decline_invitation(to_gone.id, true)
        .await
        .expect("decline and block");
    let before = table_counts(&tdb, db).await;
    assert!(before.iter().all(|(_, n)| *n > 0), "{before:?}");

    expect_api_error(
        gone.delete_account("nope nope").await,
        401,
        ErrorCode::InvalidCredentials,
    );
    gone.delete_account(PASSWORD).await.expect("delete account");
    expect_api_error(gone.me().await, 401, ErrorCode::Unauthorized);
    expect_api_error(
        app.api.login("gone@example.com", PASSWORD).await,
        401,
        ErrorCode::InvalidCredentials,
    );

    let after = table_counts(&tdb, db).await;
    assert_eq!(
        after,
        vec![
            ("users".into(), 1),
            ("scopes".into(), 1),
            ("members".into(), 1),
            ("records".into(), 1),
            ("sync_log".into(), 1),
            ("revoked_tokens".into(), 0),
            // Keyed by email, the one to Gone stays: harmless, and a new
            // account with that email could not see it (it was declined).
            ("invitations".into(), 1),
            ("invitation_blocks".into(), 0)
        ],
        "only the other user's rows remain (its personal scope and membership included)"
    );
    app.stop().await;
}

async fn rate_limits_answer_429_with_retry_after(db: Db) {
    let tdb = TestDb::new(db).await;
    let mut args = test_args(&tdb);
    args.rate_limit_per_minute = 5;
    args.auth_rate_limit_per_minute = 3;
    let app = spawn_with(args).await;

    // Login brute force: the 4th attempt within the minute is refused.
    for _ in 0..3 {
        login(&app, "victim@example.com", "guess guess")
            .await
            .assert_error(401, "invalid_credentials");
    }
    let res = login(&app, "victim@example.com", "guess guess").await;
    res.assert_error(429, "rate_limited");
    let retry: u64 = res.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "{retry}");

    // Per client IP on public routes (unmatched routes count too).
    let mut statuses = vec![];
    for _ in 0..3 {
        statuses.push(app.get("/nope", None).await.status.as_u16());
    }
    assert_eq!(statuses.last(), Some(&429), "{statuses:?}");
    // /health has a limit of its own (HEALTH_RATE_LIMIT_PER_MINUTE).
    for _ in 0..10 {
        assert_eq!(app.get("/health", None).await.status, 200);
    }
    app.stop().await;
}

async fn authenticated_limit_is_per_user(db: Db) {
    let tdb = TestDb::new(db).await;
    let mut args = test_args(&tdb);
    args.rate_limit_per_minute = 4;
    let app = spawn_with(args).await;
    let a = app.register("ua@example.com").await;
    let b = app.register("ub@example.com").await;
    for _ in 0..4 {
        assert_eq!(app.get("/api/auth/me", Some(&a)).await.status, 200);
    }
    let res = app.get("/api/auth/me", Some(&a)).await;
    res.assert_error(429, "rate_limited");
    assert!(res.headers.contains_key("retry-after"));
    // Same IP, other user: its own budget.
    assert_eq!(app.get("/api/auth/me", Some(&b)).await.status, 200);
    app.stop().await;
}

/// A revoked (say stolen, then logged out) token must not spend its user's
/// budget: only a token that passes the full check is counted per user.
async fn a_revoked_token_cannot_drain_its_users_budget(db: Db) {
    let tdb = TestDb::new(db).await;
    let mut args = test_args(&tdb);
    // The user's budget: logout + 4 good requests = 5. Counting the two
    // revoked requests too would make 7 and refuse the last good ones.
    args.rate_limit_per_minute = 5;
    let app = spawn_with(args).await;
    let stolen = app.register("drain@example.com").await;
    let mine = token_of(&login(&app, "drain@example.com", "correct horse").await);
    assert_eq!(
        app.post("/api/auth/logout", Some(&stolen), json!({}))
            .await
            .status,
        200
    );
    // Refused as revoked; these count against the sender's IP, not the user.
    for _ in 0..2 {
        app.get("/api/auth/me", Some(&stolen))
            .await
            .assert_error(401, "unauthorized");
    }
    for _ in 0..4 {
        assert_eq!(app.get("/api/auth/me", Some(&mine)).await.status, 200);
    }
    app.stop().await;
}

/// Behind a proxy, only the proxy's own (last) X-Forwarded-For entry counts;
/// what the client put before it does not buy it a fresh budget.
async fn forwarded_for_uses_only_the_proxys_entry(db: Db) {
    let tdb = TestDb::new(db).await;
    let mut args = test_args(&tdb);
    args.rate_limit_per_minute = 2;
    args.trust_proxy = true;
    let app = spawn_with(args).await;
    let get = |xff: String| {
        let req = app
            .http
            .get(app.url("/nope"))
            .header("x-forwarded-for", xff);
        app.send(req)
    };
    for n in 0..2 {
        assert_eq!(get(format!("{n}.9.9.9, 10.0.0.7")).await.status, 404);
    }
    get("7.7.7.7, 10.0.0.7".into())
        .await
        .assert_error(429, "rate_limited");
    // Another client, as the proxy reports it: its own budget.
    assert_eq!(get("1.1.1.1, 10.0.0.8".into()).await.status, 404);
    // A last entry that is not an address: the socket peer, not the client's claim.
    for n in 0..2 {
        let _ = get(format!("{n}.8.8.8, unknown")).await;
    }
    get("5.5.5.5, unknown".into())
        .await
        .assert_error(429, "rate_limited");
    app.stop().await;
}

async fn security_headers_on_every_response(db: Db) {
    let tdb = TestDb::new(db).await;
    let app = spawn_app(&tdb).await;
    let token = app.register("hdr@example.com").await;
    for res in [
        app.get("/api/auth/me", Some(&token)).await,
        app.get("/nope", None).await,
        app.get("/health", None).await,
    ] {
        assert_eq!(res.headers["x-content-type-options"], "nosniff");
        assert_eq!(res.headers["referrer-policy"], "no-referrer");
        assert_eq!(res.headers["cache-control"], "no-store");
    }
    app.stop().await;
}

async fn cors_preflight_lists_headers_explicitly(db: Db) {
    let tdb = TestDb::new(db).await;
    let mut args = test_args(&tdb);
    args.cors_origin = Some("https://app.example.com, https://admin.example.com".into());
    let app = spawn_with(args).await;
    let pre = app
        .http
        .request(reqwest::Method::OPTIONS, app.url("/api/sync"))
        .header("origin", "https://app.example.com")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization, content-type",
        )
        .send()
        .await
        .unwrap();
    assert!(pre.status().is_success());
    let h = pre.headers();
    assert_eq!(h["access-control-allow-origin"], "https://app.example.com");
    let allowed = h["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_lowercase();
    assert!(
        allowed.contains("authorization") && allowed.contains("content-type"),
        "{allowed}"
    );
    assert!(!allowed.contains('*'));
    let simple = app
        .http
        .get(app.url("/health"))
        .header("origin", "https://app.example.com")
        .send()
        .await
        .unwrap();
    let exposed = simple.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap()
        .to_lowercase();
    assert!(
        exposed.contains("retry-after") && exposed.contains("x-request-id"),
        "{exposed}"
    );
    let evil = app
        .http
        .get(app.url("/health"))
        .header("origin", "https://evil.example.com")
        .send()
        .await
        .unwrap();
    assert!(evil.headers().get("access-control-allow-origin").is_none());
    app.stop().await;
}

backend_tests!(
    logout_revokes_only_that_token,
    password_change_revokes_every_other_token,
    deleting_the_account_removes_every_row,
    rate_limits_answer_429_with_retry_after,
    authenticated_limit_is_per_user,
    security_headers_on_every_response,
    cors_preflight_lists_headers_explicitly,
    a_revoked_token_cannot_drain_its_users_budget,
    forwarded_for_uses_only_the_proxys_entry,
);
