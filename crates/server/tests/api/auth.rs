use std::time::{Duration, Instant};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

use tidesync_testkit::*;

fn register_body(email: &str, password: &str, name: &str) -> Value {
    json!({"email": email, "password": password, "name": name})
}

async fn register_returns_user_and_token(db: Db) {
    let tdb = TestDb::new(db).await;
    let app = spawn_app(&tdb).await;
    let res = app
        .post(
            "/api/auth/register",
            None,
            register_body("  Alice@Example.COM ", "correct horse", " Alice "),
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.body);
    assert_eq!(res.body["success"], json!(true));
    let user = &res.body["data"]["user"];
    assert_eq!(user["email"], json!("alice@example.com"));
    assert_eq!(user["name"], json!("Alice"));
    assert!(uuid::Uuid::parse_str(user["id"].as_str().unwrap()).is_ok());
    assert!(user["createdAt"].as_str().unwrap().ends_with('Z'));
    assert!(user.get("password").is_none() && user.get("passwordHash").is_none());
    let token = res.body["data"]["token"].as_str().unwrap();

    let me = app.get("/api/auth/me", Some(token)).await;
    assert_eq!(me.status, 200);
    assert_eq!(&me.body["data"]["user"], user);
    app.stop().await;
}

async fn duplicate_email_is_409(db: Db) {
    let tdb = TestDb::new(db).await;
    let app = spawn_app(&tdb).await;
    app.register("bob@example.com").await;
    let res = app
        .post(
            "/api/auth/register",
            None,
            register_body(" BOB@example.com", "another pass", "Bob 2"),
        )
        .await;
    res.assert_error(409, "email_taken");
    app.stop().await;
}

async fn register_validates_every_field(db: Db) {
    let tdb = TestDb::new(db).await;
    let app = spawn_app(&tdb).await;
    let long_pw = "p".repeat(1025);
    let long_name = "n".repeat(101);
    let cases: Vec<(Value, &str)> = vec![
        (register_body("not-an-email", "password1", "N"), "email"),
        (register_body("", "password1", "N"), "email"),
        (register_body("a@b.com", "short", "N"), "password"),
        (register_body("a@b.com", &long_pw, "N"), "password"),
        (register_body("a@b.com", "password1", "   "), "name"),
        (register_body("a@b.com", "password1", &long_name), "name"),
        (json!({"email": "a@b.com", "password": "password1"}), "name"),
        (json!({"email": "a@b.com", "name": "N"}), "password"),
        (
            json!({"email": 42, "password": "password1", "name": "N"}),
            "email",
        ),
        (
            json!({"email": "a@b.com", "password": ["x"], "name": "N"}),
            "password",
        ),
        (json!(["a@b.com"]), ""),
        (json!(null), ""),
    ];
    for (body, field) in cases {
        let res = app.post("/api/auth/register", None, body.clone()).await;
        res.assert_error(400, "validation_failed");
        let msg = res.body["error"]["message"].as_str().unwrap();
        assert!(
            msg.contains(field),
            "{body}: message {msg:?} should name {field:?}"
        );
    }
    // Nothing was stored: the address used above is still free.
    app.register("a@b.com").await;
    app.stop().await;
}

async fn login_succeeds_and_fails_the_same_way(db: Db) {
    let tdb = TestDb::new(db).await;
    let app = spawn_app(&tdb).await;
    app.register("carol@example.com").await;

    let ok = app
        .post(
            "/api/auth/login",
            None,
            json!({"email": " Carol@Example.com", "password": "correct horse"}),
        )
        .await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(ok.body["data"]["user"]["email"], json!("carol@example.com"));
    let token = ok.body["data"]["token"].as_str().unwrap();
    assert_eq!(app.get("/api/auth/me", Some(token)).await.status, 200);

    let wrong_pw = app
        .post(
            "/api/auth/login",
            None,
            json!({"email": "carol@example.com", "password": "wrong horse"}),
        )
        .await;
    wrong_pw.assert_error(401, "invalid_credentials");
    let unknown = app
        .post(
            "/api/auth/login",
            None,
            json!({"email": "nobody@example.com", "password": "wrong horse"}),
        )
        .await;
    unknown.assert_error(401, "invalid_credentials");
    // Same answer, so the response does not reveal whether the email exists.
    assert_eq!(wrong_pw.body, unknown.body);
    app.stop().await;
}

/// Not a speed check: it proves the unknown-email path does the Argon2 work.
/// Without the dummy hash it answers ~100x faster than a wrong password,
/// which tells an attacker which emails are registered.
async fn unknown_email_takes_as_long_as_wrong_password(db: Db) {
    let tdb = TestDb::new(db).await;
    let app = spawn_app(&tdb).await;
    app.register("dave@example.com").await;
    let time = |email: &'static str| {
        let app = &app;
        async move {
            let mut total = Duration::ZERO;
            for _ in 0..5 {
                let t = Instant::now();
                let res = app
                    .post(
                        "/api/auth/login",
                        None,
                        json!({"email": email, "password": "wrong horse"}),
                    )
                    .await;
                total += t.elapsed();
                assert_eq!(res.status, 401);
            }
            total
        }
    };
    let known = time("dave@example.com").await;
    let unknown = time("nobody@example.com").await;
    let ratio = unknown.as_secs_f64() / known.as_secs_f64();
    assert!(
        ratio > 0.3,
        "unknown email answered in {unknown:?} vs {known:?} for a wrong password"
    );
    app.stop().await;
}

fn token_with(secret: &[u8], alg: Algorithm, sub: &str, iat: i64, exp: i64) -> String {
    jsonwebtoken::encode(
        &Header::new(alg),
        &json!({"sub": sub, "iat": iat, "exp": exp, "gen": 0, "jti": "forged"}),
        &EncodingKey::from_secret(secret),
    )
    .unwrap()
}

fn b64url(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().fold(0u32, |acc, &b| (acc << 8) | b as u32) << (8 * (3 - chunk.len()));
        for i in 0..=chunk.len() {
            out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

async fn every_bad_token_is_401(db: Db) {
    let tdb = TestDb::new(db).await;
    let app = spawn_app(&tdb).await;
    let good = app.register("erin@example.com").await;
    let me = app.get("/api/auth/me", Some(&good)).await;
    let id = me.body["data"]["user"]["id"].as_str().unwrap().to_owned();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let secret = TEST_SECRET.as_bytes();

    let none_alg = format!(
        "{}.{}.",
        b64url(br#"{"alg":"none","typ":"JWT"}"#),
        b64url(format!(r#"{{"sub":"{id}","iat":{now},"exp":{}}}"#, now + 3600).as_bytes())
    );
    let cases: Vec<(&str, Option<String>)> = vec![
        ("missing", None),
        ("garbage", Some("not-a-jwt".into())),
        (
            "expired",
            Some(token_with(
                secret,
                Algorithm::HS256,
                &id,
                now - 7200,
                now - 3600,
            )),
        ),
        (
            "wrong signature",
            Some(token_with(
                b"another-secret-another-secret!!",
                Algorithm::HS256,
                &id,
                now,
                now + 3600,
            )),
        ),
        ("alg none", Some(none_alg)),
        (
            "HS512",
            Some(token_with(secret, Algorithm::HS512, &id, now, now + 3600)),
        ),
        (
            "unknown user",
            Some(token_with(
                secret,
                Algorithm::HS256,
                &uuid::Uuid::new_v4().to_string(),
                now,
                now + 3600,
            )),
        ),
        (
            "sub not a uuid",
            Some(token_with(
                secret,
                Algorithm::HS256,
                "admin",
                now,
                now + 3600,
            )),
        ),
        ("truncated", Some(good[..good.len() - 5].to_string())),
    ];
    for (what, token) in cases {
        let res = app.get("/api/auth/me", token.as_deref()).await;
        assert_eq!(res.status, 401, "{what}: {}", res.body);
        res.assert_error(401, "unauthorized");
    }
    // Wrong schemes in the header itself.
    for header in [
        "Token abc",
        "Bearer",
        "Bearer ",
        &good,
        &format!("Basic {good}"),
    ] {
        let res = app
            .send(
                app.http
                    .get(app.url("/api/auth/me"))
                    .header("authorization", header),
            )
            .await;
        res.assert_error(401, "unauthorized");
    }
    // The good token still works, with the scheme in any case.
    let res = app
        .send(
            app.http
                .get(app.url("/api/auth/me"))
                .header("authorization", format!("bearer {good}")),
        )
        .await;
    assert_eq!(res.status, 200);
    app.stop().await;
}

/// Users and tokens survive a restart, including the generated secret.
async fn restart_keeps_users_and_tokens(db: Db) {
    let tdb = TestDb::new(db).await;
    let mut args = test_args(&tdb);
    if db == Db::Sqlite {
        // Exercise the generated secret: it must be persisted beside the database.
        args.jwt_secret = None;
    }
    let app = spawn_with(args.clone()).await;
    let token = app.register("frank@example.com").await;
    app.stop().await;

    if let Some(dir) = tdb.dir() {
        let path = dir.join("jwt_secret");
        let meta = std::fs::metadata(&path).expect("generated secret file");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    }

    let app = spawn_with(args).await;
    let me = app.get("/api/auth/me", Some(&token)).await;
    assert_eq!(me.status, 200, "{}", me.body);
    assert_eq!(me.body["data"]["user"]["email"], json!("frank@example.com"));
    let login = app
        .post(
            "/api/auth/login",
            None,
            json!({"email":"frank@example.com","password":"correct horse"}),
        )
        .await;
    assert_eq!(login.status, 200);
    app.stop().await;
}

/// `JWT_EXPIRE` sets `exp - iat`.
async fn token_lifetime_follows_config(db: Db) {
    let tdb = TestDb::new(db).await;
    let mut args = test_args(&tdb);
    args.jwt_expire = Duration::from_secs(90 * 60);
    let app = spawn_with(args).await;
    let token = app.register("gina@example.com").await;
    let payload = token.split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(&b64url_decode(payload)).unwrap();
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        5400
    );
    assert!(claims["sub"].as_str().is_some());
    app.stop().await;
}

fn b64url_decode(s: &str) -> Vec<u8> {
    let val = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'-' => 62,
        _ => 63,
    };
    let mut out = Vec::new();
    let mut acc = 0u32;
    let mut bits = 0;
    for &c in s.as_bytes() {
        acc = (acc << 6) | val(c) as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

backend_tests!(
    register_returns_user_and_token,
    duplicate_email_is_409,
    register_validates_every_field,
    login_succeeds_and_fails_the_same_way,
    unknown_email_takes_as_long_as_wrong_password,
    every_bad_token_is_401,
    restart_keeps_users_and_tokens,
    token_lifetime_follows_config,
);
