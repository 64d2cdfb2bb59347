//! The routes and the layers around them.
//!
//! ```text
//! log_request ─ security_headers ─ compression ─ CORS
//!   ├─ API, bounded by REQUEST_TIMEOUT: timeout ─ identify ─ rate_limit ─ catch panic ─ body limit ─ handler
//!   │    (login and register also pass auth_rate_limit; unknown paths land here too)
//!   ├─ the event stream: the same without the timeout (long-lived by design)
//!   └─ /health and the demo app: timeout ─ catch panic ─ handler (/health has its own
//!      generous per-IP limit, HEALTH_RATE_LIMIT_PER_MINUTE; the demo's files none)
//! ```

use std::time::{Duration, Instant};

use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::http::{header, HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::compression::CompressionLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tracing::Instrument;
use utoipa::OpenApi;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouterExt};
use utoipa_axum::routes;

use crate::auth::identify;
use crate::config::ServeArgs;
use crate::error::ApiError;
use crate::limits::{auth_rate_limit, health_rate_limit, rate_limit};
use crate::routes::{self, auth, health, invitations, openapi, spaces, stream, sync};
use crate::state::AppState;
use crate::telemetry::UNMATCHED;

pub static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// A configuration the routes cannot be built with. The router's own, so
/// that it needs nothing of `app` (which builds it).
#[derive(Debug, thiserror::Error)]
pub enum RouterError {
    #[error("CORS_ORIGIN: bad origin {0:?}")]
    BadOrigin(String),
    #[error("OpenAPI document: {0}")]
    Document(#[from] serde_json::Error),
}

fn catch_panic() -> CatchPanicLayer<fn(Box<dyn std::any::Any + Send>) -> Response> {
    CatchPanicLayer::custom(|_| ApiError::Internal("handler panicked".into()).into_response())
}

/// The layers every API route has, innermost first.
fn api(router: Router<AppState>, state: &AppState, args: &ServeArgs) -> Router<AppState> {
    router
        .layer(DefaultBodyLimit::max(args.max_body_bytes))
        .layer(catch_panic())
        .layer(middleware::from_fn_with_state(
            state.limits.clone(),
            rate_limit,
        ))
        // Outside the limiter: it keys by the user this finds.
        .layer(middleware::from_fn_with_state(state.auth.clone(), identify))
}

fn timed(router: Router<AppState>, args: &ServeArgs) -> Router<AppState> {
    router.layer(middleware::from_fn_with_state(
        args.request_timeout,
        request_timeout,
    ))
}

/// Every operation of the router as `(METHOD, path)`, the OpenAPI path
/// syntax. The API test checks this list against the served document and
/// against the running server, so adding a route means adding it here.
/// The demo app (`/` and its files, [`crate::demo::files`]) is not API and is left out.
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/health"),
    ("GET", "/api/openapi.json"),
    ("GET", "/api/schema"),
    ("POST", "/api/auth/register"),
    ("POST", "/api/auth/login"),
    ("GET", "/api/auth/me"),
    ("DELETE", "/api/auth/me"),
    ("GET", "/api/auth/me/export"),
    ("POST", "/api/auth/logout"),
    ("POST", "/api/auth/password"),
    ("POST", "/api/sync"),
    ("GET", "/api/sync/initial"),
    ("POST", "/api/sync/stream-ticket"),
    ("GET", "/api/sync/stream"),
    ("GET", "/api/spaces/{space_id}/members"),
    ("POST", "/api/spaces/{space_id}/members"),
    ("PATCH", "/api/spaces/{space_id}/members/{user_id}"),
    ("DELETE", "/api/spaces/{space_id}/members/{user_id}"),
    ("POST", "/api/spaces/{space_id}/owner"),
    ("GET", "/api/spaces/{space_id}/invitations"),
    (
        "DELETE",
        "/api/spaces/{space_id}/invitations/{invitation_id}",
    ),
    ("GET", "/api/invitations"),
    ("POST", "/api/invitations/{invitation_id}/accept"),
    ("POST", "/api/invitations/{invitation_id}/decline"),
];

pub fn router(state: AppState, args: &ServeArgs) -> Result<Router, RouterError> {
    let auth_limit = middleware::from_fn_with_state(state.limits.clone(), auth_rate_limit);
    // Routes are registered through `routes!`, which takes each path and
    // method from the handler's `#[utoipa::path]`: the document cannot
    // miss a route registered this way.
    let (bounded, bounded_doc) = OpenApiRouter::new()
        .routes(routes!(auth::register).layer(auth_limit.clone()))
        .routes(routes!(auth::login).layer(auth_limit))
        .routes(routes!(auth::me, auth::delete_account))
        .routes(routes!(routes::export::export))
        .routes(routes!(auth::logout))
        .routes(routes!(auth::change_password))
        .routes(routes!(sync::sync))
        .routes(routes!(sync::initial))
        .routes(routes!(stream::stream_ticket))
        .routes(routes!(spaces::list, spaces::add))
        .routes(routes!(spaces::set_role, spaces::remove))
        .routes(routes!(spaces::transfer))
        .routes(routes!(invitations::sent))
        .routes(routes!(invitations::revoke))
        .routes(routes!(invitations::list))
        .routes(routes!(invitations::accept))
        .routes(routes!(invitations::decline))
        .split_for_parts();
    // Unknown paths are rate limited like the API: scanners pay too.
    let bounded = bounded.fallback(routes::not_found);
    let (streams, streams_doc) = OpenApiRouter::new()
        .routes(routes!(stream::stream))
        .split_for_parts();
    // Probes of load balancers and orchestrators: a generous limit of its
    // own, per client IP, so a flood cannot make the server busy with them.
    let health_limit = middleware::from_fn_with_state(state.limits.clone(), health_rate_limit);
    let (public, public_doc) = OpenApiRouter::new()
        .routes(routes!(health::health).layer(health_limit))
        .routes(routes!(openapi::openapi_json))
        .routes(routes!(routes::schema::schema))
        .split_for_parts();
    let mut doc = openapi::ApiDoc::openapi();
    doc.merge(bounded_doc);
    doc.merge(streams_doc);
    doc.merge(public_doc);
    // The modifier runs again over the merged paths: the shared error
    // responses and the scheme must cover every operation.
    utoipa::Modify::modify(&openapi::Shared, &mut doc);
    let json = openapi::with_schema(&doc, state.model.schema())?;
    // The demo app: `/` (index.html) and each of its files at `/<name>`.
    let public = crate::demo::files()
        .iter()
        .fold(public, |r, f| {
            let name = f.name;
            r.route(
                f.route,
                get(move || async move { crate::demo::serve(name) }),
            )
        })
        .layer(Extension(openapi::Document(json.into())))
        .layer(catch_panic());
    let mut router = timed(api(bounded, &state, args), args)
        .merge(api(streams, &state, args))
        .merge(timed(public, args))
        .method_not_allowed_fallback(routes::method_not_allowed);
    if let Some(origins) = &args.cors_origin {
        router = router.layer(cors(origins)?);
    }
    Ok(router
        // gzip or zstd when the client asks (Accept-Encoding): a pull of
        // thousands of records shrinks several times on slow mobile links.
        .layer(CompressionLayer::new())
        .layer(middleware::from_fn(security_headers))
        .layer(middleware::from_fn(log_request))
        .with_state(state))
}

fn cors(origins: &str) -> Result<CorsLayer, RouterError> {
    let allow = if origins.trim() == "*" {
        AllowOrigin::any()
    } else {
        let list = origins
            .split(',')
            .map(str::trim)
            .filter(|o| !o.is_empty())
            .map(|o| HeaderValue::from_str(o).map_err(|_| RouterError::BadOrigin(o.to_owned())))
            .collect::<Result<Vec<_>, _>>()?;
        AllowOrigin::list(list)
    };
    Ok(CorsLayer::new()
        .allow_origin(allow)
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PATCH,
            Method::DELETE,
            Method::OPTIONS,
        ])
        // Listed explicitly: browsers do not accept `*` for Authorization.
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
        .expose_headers([REQUEST_ID.clone(), header::RETRY_AFTER])
        .max_age(Duration::from_secs(600)))
}

/// Bounds each request. Dropping the handler's future drops its open
/// transaction, which rolls back; a commit already under way may still
/// finish, which is why the answer says "retry" and not "nothing applied":
/// operation ids make the retry safe either way.
async fn request_timeout(
    axum::extract::State(limit): axum::extract::State<Duration>,
    req: Request,
    next: Next,
) -> Response {
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(res) => res,
        Err(_) => ApiError::Timeout.into_response(),
    }
}

/// Headers every response carries. Everything the API returns is private to
/// one user (or an error), so nothing may be cached by browsers or proxies:
/// `no-store`, unless the handler chose (only the demo app's files do).
async fn security_headers(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    res
}

/// One log line per request (method, route, status, latency, request id), and
/// the request id echoed as `x-request-id`. The route is the matched pattern,
/// never the raw URL, so nothing a client puts in a path reaches the log.
async fn log_request(req: Request, next: Next) -> Response {
    let start = Instant::now();
    let request_id = req
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 64
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let method = req.method().clone();
    // The matched pattern, never the raw path: nothing a client puts in a
    // path reaches the log or a metric label.
    let route = route_label(
        req.extensions()
            .get::<MatchedPath>()
            .map(MatchedPath::as_str),
    );
    let span = tracing::info_span!("request", id = %request_id);
    let mut res = next.run(req).instrument(span).await;
    let status = res.status();
    let elapsed = start.elapsed();
    crate::telemetry::request(route, &method, status.as_u16(), elapsed);
    let latency_ms = elapsed.as_secs_f64() * 1000.0;
    if status == StatusCode::INTERNAL_SERVER_ERROR {
        tracing::error!(%method, %route, status = status.as_u16(), latency_ms, request_id = %request_id, "request");
    } else {
        tracing::info!(%method, %route, status = status.as_u16(), latency_ms, request_id = %request_id, "request");
    }
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        res.headers_mut().insert(REQUEST_ID.clone(), v);
    }
    res
}

/// The route a request matched, if this router serves it (else
/// [`UNMATCHED`]): metric labels come from this closed set.
pub fn route_label(matched: Option<&str>) -> &'static str {
    matched
        .and_then(|m| {
            ROUTES
                .iter()
                .map(|(_, path)| *path)
                .chain(crate::demo::routes())
                .find(|p| *p == m)
        })
        .unwrap_or(UNMATCHED)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_labels_come_from_a_closed_set() {
        assert_eq!(route_label(Some("/api/sync")), "/api/sync");
        assert_eq!(
            route_label(Some("/api/spaces/{space_id}/members")),
            "/api/spaces/{space_id}/members"
        );
        assert_eq!(route_label(Some("/sw.js")), "/sw.js");
        assert_eq!(route_label(Some("/made/up")), "unmatched");
        assert_eq!(route_label(None), "unmatched");
    }
}
