use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use tidesync_testkit::*;

async fn bad_requests_get_json_errors(db: Db) {
    let tdb = TestDb::new(db).await;
    let mut args = test_args(&tdb);
    args.max_body_bytes = 64 * 1024;
    let app = spawn_with(args).await;
    let register = app.url("/api/auth/register");

    let res = app
        .send(app.http.post(&register).body(r#"{"email":"a@b.com"}"#))
        .await;
    res.assert_error(415, "unsupported_media_type");
    let res = app
        .send(
            app.http
                .post(&register)
                .header("content-type", "text/plain")
                .body("{}"),
        )
        .await;
    res.assert_error(415, "unsupported_media_type");
    let res = app
        .send(
            app.http
                .post(&register)
                .header("content-type", "application/json")
                .body("{\"email\":"),
        )
        .await;
    res.assert_error(400, "malformed_json");
    let res = app
        .send(
            app.http
                .post(&register)
                .header("content-type", "application/json")
                .body(vec![0xff, 0xfe, b'{']),
        )
        .await;
    res.assert_error(400, "malformed_json");
    let res = app
        .send(
            app.http
                .post(&register)
                .header("content-type", "application/json")
                .body(""),
        )
        .await;
    res.assert_error(400, "malformed_json");

    let big = format!(
        r#"{{"email":"a@b.com","password":"{}","name":"x"}}"#,
        "x".repeat(70 * 1024)
    );
    let res = app
        .send(
            app.http
                .post(&register)
                .header("content-type", "application/json")
                .body(big),
        )
        .await;
    res.assert_error(413, "payload_too_large");

    let res = app.get("/api/nothing-here", None).await;
    res.assert_error(404, "not_found");
    let res = app.get("/api", None).await;
    res.assert_error(404, "not_found");
    let res = app.get("/no-such-file.js", None).await;
    res.assert_error(404, "not_found");
    let res = app.get("/api/auth/register", None).await;
    res.assert_error(405, "method_not_allowed");
    let res = app.post("/health", None, json!({})).await;
    res.assert_error(405, "method_not_allowed");
    app.stop().await;
}

async fn default_body_limit_is_5_mib(db: Db) {
    let tdb = TestDb::new(db).await;
    let app = spawn_app(&tdb).await;
    let body = format!(
        r#"{{"email":"a@b.com","password":"{}","name":"x"}}"#,
        "x".repeat(5 * 1024 * 1024)
    );
    let res = app
        .send(
            app.http
                .post(app.url("/api/auth/login"))
                .header("content-type", "application/json")
                .body(body),
        )
        .await;
    res.assert_error(413, "payload_too_large");
    app.stop().await;
}

async fn every_response_has_a_request_id(db: Db) {
    let tdb = TestDb::new(db).await;
    let app = spawn_app(&tdb).await;
    let res = app.get("/health", None).await;
    let id = res.headers["x-request-id"].to_str().unwrap();
    assert!(uuid::Uuid::parse_str(id).is_ok());
    let res = app.get("/nope", None).await;
    assert!(res.headers.contains_key("x-request-id"));
    // A sane id from a proxy is kept, so logs line up across hops.
    let res = app
        .send(
            app.http
                .get(app.url("/health"))
                .header("x-request-id", "edge-42"),
        )
        .await;
    assert_eq!(res.headers["x-request-id"], "edge-42");
    app.stop().await;
}

/// Sends a request whose body is missing its last byte, so the server is
/// mid-request; returns the open connection.
async fn half_sent_register(app: &TestApp) -> tokio::net::TcpStream {
    let body = r#"{"email":"slow@example.com","password":"password1","name":"Slow"}"#;
    let addr = app.base.trim_start_matches("http://");
    let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /api/auth/register HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    conn.write_all(&body.as_bytes()[..body.len() - 1])
        .await
        .unwrap();
    conn.flush().await.unwrap();
    // A full round trip on another connection: by the time it returns, the
    // server has accepted ours and is reading its body.
    assert_eq!(app.get("/health", None).await.status, 200);
    conn
}

async fn shutdown_finishes_in_flight_requests(db: Db) {
    let tdb = TestDb::new(db).await;
    let mut app = spawn_app(&tdb).await;
    let mut conn = half_sent_register(&app).await;
    app.signal_shutdown();
    conn.write_all(b"}").await.unwrap();
    let mut response = String::new();
    conn.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 201"), "{response}");
    let handle = app.take_handle();
    tokio::time::timeout(Duration::from_secs(30), handle)
        .await
        .expect("server stops after the last request")
        .unwrap()
        .unwrap();
    // Stopped: no longer accepting.
    assert!(app.http.get(app.url("/health")).send().await.is_err());
}

async fn shutdown_wait_is_bounded(db: Db) {
    let tdb = TestDb::new(db).await;
    let mut args = test_args(&tdb);
    args.shutdown_timeout = Duration::from_secs(1);
    let mut app = spawn_with(args).await;
    // A client that never finishes its request must not hold the server.
    let _stuck = half_sent_register(&app).await;
    app.signal_shutdown();
    let handle = app.take_handle();
    tokio::time::timeout(Duration::from_secs(20), handle)
        .await
        .expect("server gave up on the stuck request")
        .unwrap()
        .unwrap();
}

/// A body that never completes is cut at REQUEST_TIMEOUT with 503 `timeout`.
/// (It never reaches a handler: `writer.rs` has the timeout of a request
/// that does, and proves that one has no effect.)
async fn a_half_sent_body_times_out(db: Db) {
    let tdb = TestDb::new(db).await;
    let mut args = test_args(&tdb);
    args.request_timeout = Duration::from_secs(1);
    let app = spawn_with(args).await;
    // The body never completes: the request is cut at the timeout.
    let mut conn = half_sent_register(&app).await;
    let mut response = String::new();
    conn.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 503"), "{response}");
    assert!(response.contains("\"timeout\""), "{response}");
    assert!(
        response.to_lowercase().contains("retry-after"),
        "{response}"
    );
    app.stop().await;
}

/// A client that never finishes its headers (slowloris), or keeps an idle
/// connection open, is cut off after the header-read timeout.
async fn slow_headers_and_idle_connections_are_closed(db: Db) {
    let tdb = TestDb::new(db).await;
    let mut args = test_args(&tdb);
    args.header_read_timeout = Duration::from_secs(1);
    let app = spawn_with(args).await;
    let addr = app.base.trim_start_matches("http://").to_owned();

    let mut slow = tokio::net::TcpStream::connect(&addr).await.unwrap();
    slow.write_all(b"GET /health HTTP/1.1\r\nhost: x\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    // Without the timeout this read never ends; the guard only bounds the test.
    tokio::time::timeout(Duration::from_secs(20), slow.read_to_end(&mut buf))
        .await
        .expect("server closed the slow connection")
        .ok();

    let mut idle = tokio::net::TcpStream::connect(&addr).await.unwrap();
    idle.write_all(b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let mut first = [0u8; 12];
    idle.read_exact(&mut first).await.unwrap();
    assert_eq!(&first, b"HTTP/1.1 200");
    let mut rest = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), idle.read_to_end(&mut rest))
        .await
        .expect("server closed the idle keep-alive connection")
        .ok();
    assert_eq!(app.get("/health", None).await.status, 200);
    app.stop().await;
}

/// Beyond MAX_CONNECTIONS, a client waits until a connection closes.
async fn connections_are_capped(db: Db) {
    let tdb = TestDb::new(db).await;
    let mut args = test_args(&tdb);
    args.max_connections = 2;
    args.header_read_timeout = Duration::from_secs(60);
    let app = spawn_with(args).await;
    let addr = app.base.trim_start_matches("http://").to_owned();
    let hold1 = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let _hold2 = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let blocked = client
        .get(app.url("/health"))
        .timeout(Duration::from_millis(1500))
        .send()
        .await;
    assert!(
        blocked.is_err(),
        "a third connection was served: {blocked:?}"
    );
    drop(hold1);
    let res = client
        .get(app.url("/health"))
        .timeout(Duration::from_secs(20))
        .send()
        .await
        .expect("served once a slot is free");
    assert_eq!(res.status(), 200);
    app.stop().await;
}

backend_tests!(
    slow_headers_and_idle_connections_are_closed,
    connections_are_capped,
    a_half_sent_body_times_out,
    bad_requests_get_json_errors,
    default_body_limit_is_5_mib,
    every_response_has_a_request_id,
    shutdown_finishes_in_flight_requests,
    shutdown_wait_is_bounded,
);
