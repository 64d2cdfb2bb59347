use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use tidesync_protocol::auth::{
    normalize_email, normalize_name, validate_password, AuthResponse, LoginRequest,
    RegisterRequest, UserView,
};
use tidesync_protocol::time::{now_millis, to_iso};
use tidesync_protocol::UserId;
use tidesync_store::{NewUser, User};

use super::{ok, ApiJson};
use crate::auth::{hash_password, verify_password, AuthUser};
use crate::error::ApiError;
use crate::state::AppState;

pub fn view(user: &User) -> UserView {
    UserView {
        id: user.id,
        email: user.email.clone(),
        name: user.name.clone(),
        created_at: to_iso(user.created_at),
    }
}

pub async fn register(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<RegisterRequest>,
) -> Result<Response, ApiError> {
    let email = normalize_email(&req.email)?;
    validate_password(&req.password, "password")?;
    let name = normalize_name(&req.name)?;
    let password_hash = hash_password(req.password).await?;
    let user = state
        .store
        .create_user(NewUser {
            id: UserId(uuid::Uuid::new_v4()),
            email,
            name,
            password_hash,
            created_at: now_millis(),
        })
        .await?;
    let token = state.tokens.issue(user.id)?;
    Ok(ok(
        StatusCode::CREATED,
        AuthResponse {
            user: view(&user),
            token,
        },
    ))
}

pub async fn login(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<LoginRequest>,
) -> Result<Response, ApiError> {
    // A malformed email cannot be registered, so it gets the same answer as an
    // unknown one, after the same amount of work.
    let email = normalize_email(&req.email).ok();
    if req.password.len() > tidesync_protocol::auth::PASSWORD_MAX_BYTES {
        return Err(ApiError::InvalidCredentials);
    }
    let creds = match &email {
        Some(e) => state.store.credentials_by_email(e).await?,
        None => None,
    };
    let (hash, user) = match creds {
        Some(c) => (c.password_hash, Some(c.user)),
        None => (state.dummy_hash.as_ref().clone(), None),
    };
    let matches = verify_password(req.password, hash).await?;
    match user {
        Some(user) if matches => {
            let token = state.tokens.issue(user.id)?;
            Ok(ok(
                StatusCode::OK,
                AuthResponse {
                    user: view(&user),
                    token,
                },
            ))
        }
        _ => Err(ApiError::InvalidCredentials),
    }
}

pub async fn me(AuthUser(user): AuthUser) -> Response {
    ok(StatusCode::OK, serde_json::json!({ "user": view(&user) }))
}
