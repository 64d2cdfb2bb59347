//! The demo app (`clients/demo`), served at `/` by the binary itself so that
//! `cargo run --release` and a browser are all a newcomer needs.
//!
//! The built files are embedded at compile time from `clients/demo/dist/`
//! (committed, and checked against a fresh build in CI). For work on the
//! demo, `TIDESYNC_DEMO_DIR` serves that folder from disk instead.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// (file name, content type, embedded bytes).
static FILES: &[(&str, &str, &[u8])] = &[
    (
        "index.html",
        "text/html; charset=utf-8",
        include_bytes!("../../../clients/demo/dist/index.html"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../../clients/demo/dist/app.js"),
    ),
    (
        "app.css",
        "text/css; charset=utf-8",
        include_bytes!("../../../clients/demo/dist/app.css"),
    ),
];

fn serve(name: &str) -> Response {
    let Some((_, ctype, embedded)) = FILES.iter().find(|(n, _, _)| *n == name) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let body = match std::env::var_os("TIDESYNC_DEMO_DIR") {
        Some(dir) => match std::fs::read(std::path::Path::new(&dir).join(name)) {
            Ok(b) => b,
            Err(_) => return StatusCode::NOT_FOUND.into_response(),
        },
        None => embedded.to_vec(),
    };
    let mut res = body.into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ctype));
    // Same-origin scripts and API calls only.
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data:; style-src 'self'; frame-ancestors 'none'",
        ),
    );
    res
}

pub async fn index() -> Response {
    serve("index.html")
}

pub async fn script() -> Response {
    serve("app.js")
}

pub async fn style() -> Response {
    serve("app.css")
}
