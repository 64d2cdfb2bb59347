//! `GET /api/openapi.json`: the OpenAPI 3.1 document of the API, generated
//! from the handlers' `#[utoipa::path]` annotations and the protocol types'
//! `ToSchema` derives. The router registers the API through utoipa-axum's
//! `OpenApiRouter`, so a route and its operation come from one annotation.

use std::sync::Arc;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use serde_json::{Map, Value};
use tidesync_protocol::error::{ErrorBody, ErrorCode};
use tidesync_protocol::schema::openapi::array_of;
use tidesync_protocol::schema::{openapi_components, Schema};
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
use utoipa::{Modify, OpenApi};

use crate::error::status_of;

/// The name of the security scheme authenticated operations require.
pub const BEARER: &str = "bearer";

/// The parts of the document that are not operations; the router merges
/// the operations in, then applies [`Shared`].
#[derive(OpenApi)]
#[openapi(
    info(
        title = "tidesync",
        description = "Offline-first sync backend. Every answer but `/health`, this document, \
            the schema (`/api/schema`) and the event stream is an envelope: `{\"success\": true, \"data\": …}` or \
            `{\"success\": false, \"error\": {\"code\", \"message\"}}`. Request bodies must \
            have a JSON media type: `application/json` or any `application/*+json` (e.g. \
            `application/vnd.foo+json`), parameters such as `; charset=utf-8` allowed, case \
            insensitive; anything else is 415 `unsupported_media_type`. See \
            docs/SYNC_PROTOCOL.md."
    ),
    components(schemas(ErrorBody, ErrorCode))
)]
pub struct ApiDoc;

/// The routes that serve a document as is (no envelope, no body, no
/// token): only a server error can fail them.
pub const DOCUMENTS: &[&str] = &["/api/openapi.json", "/api/schema"];

/// The document as served, serialized once at start-up.
#[derive(Clone)]
pub struct Document(pub Arc<str>);

#[utoipa::path(
    get,
    path = "/api/openapi.json",
    tag = "meta",
    description = "This document (OpenAPI 3.1), as is: no envelope.",
    responses((status = 200, description = "The OpenAPI document", content_type = "application/json", body = Object))
)]
pub async fn openapi_json(Extension(doc): Extension<Document>) -> Response {
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        doc.0.to_string(),
    )
        .into_response()
}

/// The keys of an initial-sync page beside the collections' arrays.
const PAGE_KEYS: &[&str] = &["syncTimestamp", "hasMore", "removedSpaces"];

/// The document as served: the collections' records and `serverUpdates`
/// from the schema the server runs (`protocol::schema::openapi_components`),
/// in place of the annotations' untyped objects; an initial-sync page's
/// arrays the same.
pub fn with_schema(
    doc: &utoipa::openapi::OpenApi,
    schema: &Schema,
) -> Result<String, serde_json::Error> {
    let mut doc = serde_json::to_value(doc)?;
    let schemas = &mut doc["components"]["schemas"];
    for (name, component) in openapi_components(schema) {
        schemas[name] = component;
    }
    if let Some(Value::Object(page)) = schemas.get_mut("InitialPage") {
        let mut properties = Map::new();
        let mut required: Vec<Value> = Vec::new();
        for (name, c) in &schema.collections {
            properties.insert(c.plural.clone(), array_of(name));
            required.push(Value::String(c.plural.clone()));
        }
        if let Some(Value::Object(old)) = page.get("properties") {
            for (k, v) in old.iter().filter(|(k, _)| PAGE_KEYS.contains(&k.as_str())) {
                properties.insert(k.clone(), v.clone());
            }
        }
        if let Some(Value::Array(old)) = page.get("required") {
            required.extend(
                old.iter()
                    .filter(|k| k.as_str().is_some_and(|k| PAGE_KEYS.contains(&k)))
                    .cloned(),
            );
        }
        page.insert("properties".into(), Value::Object(properties));
        page.insert("required".into(), Value::Array(required));
    }
    serde_json::to_string(&doc)
}

/// The codes answered with `status`, from the one status table.
fn codes_of(status: StatusCode) -> Vec<&'static str> {
    ErrorCode::ALL
        .iter()
        .filter(|c| status_of(**c) == status)
        .map(|c| c.as_str())
        .collect()
}

fn error_response(status: StatusCode) -> utoipa::openapi::Response {
    let codes = codes_of(status)
        .iter()
        .map(|c| format!("`{c}`"))
        .collect::<Vec<_>>()
        .join(", ");
    ResponseBuilder::new()
        .description(format!(
            "{}: the error envelope, with code {codes}",
            status.canonical_reason().unwrap_or("error")
        ))
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorBody")))
                .build(),
        )
        .build()
}

/// Adds the bearer scheme, and to each operation the error responses that
/// any request of its kind can get (the router's layers: rate limit, body
/// limit, timeout, the database), next to those its annotation lists.
pub struct Shared;

impl Modify for Shared {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi
            .components
            .get_or_insert_with(utoipa::openapi::Components::new);
        components.add_security_scheme(
            BEARER,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "`Authorization: Bearer <token>`, the token of register, login or \
                         password change (JWT, HS256). Logout, a password change and account \
                         deletion revoke every earlier token.",
                    ))
                    .build(),
            ),
        );
        for (path, item) in openapi.paths.paths.iter_mut() {
            let api = path.starts_with("/api/") && !DOCUMENTS.contains(&path.as_str());
            for op in [
                item.get.as_mut(),
                item.post.as_mut(),
                item.patch.as_mut(),
                item.delete.as_mut(),
                item.put.as_mut(),
            ]
            .into_iter()
            .flatten()
            {
                add_errors(op, api);
            }
        }
    }
}

fn add_errors(op: &mut Operation, api: bool) {
    let secured = op.security.as_ref().is_some_and(|s| !s.is_empty());
    let mut statuses = vec![StatusCode::INTERNAL_SERVER_ERROR];
    if api {
        statuses.extend([
            StatusCode::BAD_REQUEST,
            StatusCode::PAYLOAD_TOO_LARGE,
            StatusCode::TOO_MANY_REQUESTS,
            StatusCode::SERVICE_UNAVAILABLE,
        ]);
        if op.request_body.is_some() {
            statuses.push(StatusCode::UNSUPPORTED_MEDIA_TYPE);
        }
        if secured {
            statuses.push(StatusCode::UNAUTHORIZED);
        }
    }
    for status in statuses {
        op.responses
            .responses
            .entry(status.as_u16().to_string())
            .or_insert_with(|| error_response(status).into());
    }
}
