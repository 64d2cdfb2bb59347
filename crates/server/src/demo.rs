//! The demo app (`clients/demo`), served at `/` by the binary itself so that
//! `cargo run --release` and a browser are all a newcomer needs.
//!
//! The built files are embedded at compile time from `clients/demo/dist/`
//! (committed, and checked against a fresh build in CI); `build.rs` lists
//! them, so the hashed names follow the build. `index.html` is served at `/`,
//! every other file at `/<name>`. For work on the demo, `TIDESYNC_DEMO_DIR`
//! serves that folder from disk instead (its files as found at start-up,
//! read again on every request).
//!
//! The demo is an installable offline app: `sw.js` (a service worker, scope
//! `/`) precaches the shell, so caching here follows the names: a file named
//! `<stem>.<HASH>.<ext>` never changes and is cached for a year
//! (`immutable`); anything else (`index.html`, `sw.js`, the manifest, the
//! icons) is `no-cache`, i.e. revalidated before each use.

use std::sync::OnceLock;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// (file name, embedded bytes), written by `build.rs`.
static EMBEDDED: &[(&str, &[u8])] = include!(concat!(env!("OUT_DIR"), "/demo_files.rs"));

/// Same-origin scripts, workers, manifest and API calls only.
const CSP: &str = "default-src 'self'; script-src 'self'; worker-src 'self'; manifest-src 'self'; \
                   img-src 'self' data:; style-src 'self'; frame-ancestors 'none'";
const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// One served file: its route and its file name.
#[derive(Clone, Copy, Debug)]
pub struct DemoFile {
    pub route: &'static str,
    pub name: &'static str,
}

/// The demo's files, each with its route (`/` for `index.html`). From
/// `TIDESYNC_DEMO_DIR` when it is set (read once), else the embedded build.
pub fn files() -> &'static [DemoFile] {
    static FILES: OnceLock<Vec<DemoFile>> = OnceLock::new();
    FILES.get_or_init(|| {
        let names: Vec<&'static str> = match std::env::var_os("TIDESYNC_DEMO_DIR") {
            Some(dir) => std::fs::read_dir(dir)
                .map(|d| {
                    d.filter_map(Result::ok)
                        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
                        .filter_map(|e| e.file_name().into_string().ok())
                        .map(|n| &*Box::leak(n.into_boxed_str()))
                        .collect()
                })
                .unwrap_or_default(),
            None => EMBEDDED.iter().map(|(n, _)| *n).collect(),
        };
        let mut files: Vec<DemoFile> = names
            .into_iter()
            .filter(|n| safe_name(n))
            .map(|name| DemoFile {
                route: if name == "index.html" {
                    "/"
                } else {
                    Box::leak(format!("/{name}").into_boxed_str())
                },
                name,
            })
            .collect();
        files.sort_by_key(|f| f.route);
        files
    })
}

/// The routes of [`files`] (for the metrics' route label).
pub fn routes() -> impl Iterator<Item = &'static str> {
    files().iter().map(|f| f.route)
}

/// A plain file name: no path, no hidden file.
fn safe_name(n: &str) -> bool {
    !n.is_empty()
        && !n.starts_with('.')
        && n.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
}

fn content_type(name: &str) -> &'static str {
    match name.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("webmanifest") => "application/manifest+json",
        Some("json") => "application/json",
        Some("png") => "image/png",
        Some("svg") => "image/svg+xml",
        Some("ico") => "image/x-icon",
        Some("txt") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// `<stem>.<HASH>.<ext>`, the hash as esbuild writes it (8 characters, A–Z and 0–9).
fn is_hashed(name: &str) -> bool {
    let parts: Vec<&str> = name.split('.').collect();
    parts.len() == 3
        && parts[1].len() == 8
        && parts[1]
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

/// Serves one of the demo's files by name.
pub fn serve(name: &'static str) -> Response {
    let body = match std::env::var_os("TIDESYNC_DEMO_DIR") {
        Some(dir) => match std::fs::read(std::path::Path::new(&dir).join(name)) {
            Ok(b) => b,
            Err(_) => return StatusCode::NOT_FOUND.into_response(),
        },
        None => match EMBEDDED.iter().find(|(n, _)| *n == name) {
            Some((_, bytes)) => bytes.to_vec(),
            None => return StatusCode::NOT_FOUND.into_response(),
        },
    };
    let mut res = body.into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(name)),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(if is_hashed(name) {
            IMMUTABLE
        } else {
            "no-cache"
        }),
    );
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(is_hashed("app.OG7MWSFW.js"));
        assert!(!is_hashed("sw.js"));
        assert!(!is_hashed("icon-192.png"));
        assert!(!is_hashed("manifest.webmanifest"));
        assert!(safe_name("app.OG7MWSFW.css"));
        assert!(!safe_name(".hidden"));
        assert!(!safe_name("a/b"));
        assert_eq!(
            content_type("manifest.webmanifest"),
            "application/manifest+json"
        );
    }

    #[test]
    fn the_embedded_build_has_the_shell() {
        let names: Vec<&str> = EMBEDDED.iter().map(|(n, _)| *n).collect();
        for want in ["index.html", "sw.js", "manifest.webmanifest"] {
            assert!(names.contains(&want), "{want} in {names:?}");
        }
        assert!(names
            .iter()
            .any(|n| n.starts_with("app.") && n.ends_with(".js") && is_hashed(n)));
    }
}
