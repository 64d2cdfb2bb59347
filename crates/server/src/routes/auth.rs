use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use tidesync_protocol::auth::{
    normalize_email, normalize_name, validate_password, AuthResponse, ChangePasswordRequest,
    DeleteAccountRequest, Deleted, LoggedOut, LoginRequest, MeResponse, RegisterRequest, UserView,
};
use tidesync_protocol::error::{Envelope, ErrorBody};
use tidesync_protocol::time::{now_millis, to_iso};
use tidesync_protocol::UserId;
use tidesync_store::{NewUser, User};

use super::{ok, ApiJson};
use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::password::{hash_password, is_legacy, verify_password};
use crate::state::AppState;

pub fn view(user: &User) -> UserView {
    UserView {
        id: user.id,
        email: user.email.clone(),
        name: user.name.clone(),
        created_at: to_iso(user.created_at),
    }
}

/// `{user, token}` with a fresh token of the given generation.
fn signed_in(
    state: &AppState,
    user: &User,
    generation: i64,
    status: StatusCode,
) -> Result<Response, ApiError> {
    let token = state.auth.tokens.issue(user.id, generation)?;
    Ok(ok(
        status,
        AuthResponse {
            user: view(user),
            token,
        },
    ))
}

#[utoipa::path(
    post,
    path = "/api/auth/register",
    tag = "auth",
    description = "Creates an account and signs it in. The email is trimmed and lower-cased; \
        the password is 8 characters to 1024 bytes; the name 1 to 100 characters after trimming, \
        without control characters.",
    request_body = RegisterRequest,
    responses(
        (status = 201, description = "Registered: the user and a token", body = Envelope<AuthResponse>),
        (status = 409, description = "`email_taken`", body = ErrorBody),
    )
)]
pub async fn register(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<RegisterRequest>,
) -> Result<Response, ApiError> {
    let email = normalize_email(&req.email)?;
    limit_email(&state, &email)?;
    validate_password(&req.password, "password")?;
    let name = normalize_name(&req.name)?;
    let password_hash = hash_password(req.password).await?;
    let user = state
        .store
        .create_user(NewUser {
            id: UserId::random(),
            email,
            name,
            password_hash,
            created_at: now_millis(),
        })
        .await?;
    signed_in(&state, &user, 0, StatusCode::CREATED)
}

#[utoipa::path(
    post,
    path = "/api/auth/login",
    tag = "auth",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Signed in: the user and a token", body = Envelope<AuthResponse>),
        (status = 401, description = "`invalid_credentials`: unknown email or wrong password", body = ErrorBody),
    )
)]
pub async fn login(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<LoginRequest>,
) -> Result<Response, ApiError> {
    // A malformed email cannot be registered, so it gets the same answer as an
    // unknown one, after the same amount of work.
    let email = normalize_email(&req.email).ok();
    if let Some(e) = &email {
        limit_email(&state, e)?;
    }
    if req.password.len() > tidesync_protocol::auth::PASSWORD_MAX_BYTES {
        return Err(ApiError::InvalidCredentials);
    }
    let creds = match &email {
        Some(e) => state.store.credentials_by_email(e).await?,
        None => None,
    };
    let (hash, user) = match creds {
        Some(c) => (c.password_hash, Some((c.user, c.token_generation))),
        None => (state.dummy_hash.as_ref().clone(), None),
    };
    let legacy = user.is_some() && is_legacy(&hash);
    let old_hash = legacy.then(|| hash.clone());
    let password = legacy.then(|| req.password.clone());
    let matches = verify_password(req.password, hash).await?;
    match user {
        Some((user, generation)) if matches => {
            if let (Some(old), Some(password)) = (old_hash, password) {
                upgrade_hash(&state, &user, &old, password).await;
            }
            signed_in(&state, &user, generation, StatusCode::OK)
        }
        _ => {
            crate::telemetry::sign_in_failed();
            Err(ApiError::InvalidCredentials)
        }
    }
}

/// An imported user's first sign-in: their bcrypt hash is replaced by an
/// Argon2id one of the same password (tokens stay valid: nothing changed
/// for the user). A failure only means the next sign-in tries again.
async fn upgrade_hash(state: &AppState, user: &User, old: &str, password: String) {
    let result = match hash_password(password).await {
        Ok(new) => state
            .store
            .upgrade_password_hash(user.id, old, &new)
            .await
            .map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    match result {
        Ok(true) => tracing::info!(user = %user.id, "imported password rehashed to Argon2id"),
        Ok(false) => {}
        Err(e) => {
            tracing::warn!(user = %user.id, error = %e, "could not rehash an imported password")
        }
    }
}

#[utoipa::path(
    get,
    path = "/api/auth/me",
    tag = "auth",
    security(("bearer" = [])),
    responses((status = 200, description = "The signed-in user", body = Envelope<MeResponse>))
)]
pub async fn me(AuthUser { user, .. }: AuthUser) -> Response {
    ok(StatusCode::OK, MeResponse { user: view(&user) })
}

fn limit_email(state: &AppState, email: &str) -> Result<(), ApiError> {
    state.limits.check_email(email)
}

/// Checks the user's current password (for operations that need it again).
async fn confirm_password(state: &AppState, user: &User, password: String) -> Result<(), ApiError> {
    limit_email(state, &user.email)?;
    let creds = state
        .store
        .credentials_by_email(&user.email)
        .await?
        .ok_or(ApiError::Unauthorized("invalid or expired token"))?;
    if password.len() > tidesync_protocol::auth::PASSWORD_MAX_BYTES
        || !verify_password(password, creds.password_hash).await?
    {
        return Err(ApiError::InvalidCredentials);
    }
    Ok(())
}

/// Revokes the token the request carries (and only it): its open
/// long-polls answer 401, its streams (and those its tickets opened) end.
#[utoipa::path(
    post,
    path = "/api/auth/logout",
    tag = "auth",
    security(("bearer" = [])),
    responses((status = 200, description = "`{loggedOut: true}`: the token is revoked, with the stream tickets it minted; its open long-polls answer 401 and its streams end, on every instance", body = Envelope<LoggedOut>))
)]
pub async fn logout(State(state): State<AppState>, auth: AuthUser) -> Result<Response, ApiError> {
    state
        .store
        .revoke_token(
            auth.user.id,
            &auth.token.jti,
            auth.token.exp.saturating_mul(1000),
            now_millis(),
        )
        .await?;
    state.auth.revoked(auth.user.id);
    Ok(ok(StatusCode::OK, LoggedOut { logged_out: true }))
}

/// Changes the password and revokes every other token; returns a new token.
#[utoipa::path(
    post,
    path = "/api/auth/password",
    tag = "auth",
    security(("bearer" = [])),
    request_body = ChangePasswordRequest,
    responses(
        (status = 200, description = "`{token, user}`: a new token; every earlier token is revoked, and their open long-polls and streams end", body = Envelope<AuthResponse>),
        (status = 401, description = "`invalid_credentials`: wrong current password; `unauthorized`: bad token", body = ErrorBody),
    )
)]
pub async fn change_password(
    State(state): State<AppState>,
    AuthUser { user, .. }: AuthUser,
    ApiJson(req): ApiJson<ChangePasswordRequest>,
) -> Result<Response, ApiError> {
    validate_password(&req.new_password, "newPassword")?;
    confirm_password(&state, &user, req.current_password).await?;
    let hash = hash_password(req.new_password).await?;
    let generation = state.store.change_password(user.id, &hash).await?;
    state.auth.revoked(user.id);
    signed_in(&state, &user, generation, StatusCode::OK)
}

/// Deletes the account and all its data for good (the one hard delete).
#[utoipa::path(
    delete,
    path = "/api/auth/me",
    tag = "auth",
    security(("bearer" = [])),
    request_body = DeleteAccountRequest,
    responses(
        (status = 200, description = "`{deleted: true}`: the account and all its data are gone", body = Envelope<Deleted>),
        (status = 401, description = "`invalid_credentials`: wrong password; `unauthorized`: bad token", body = ErrorBody),
    )
)]
pub async fn delete_account(
    State(state): State<AppState>,
    AuthUser { user, .. }: AuthUser,
    ApiJson(req): ApiJson<DeleteAccountRequest>,
) -> Result<Response, ApiError> {
    confirm_password(&state, &user, req.password).await?;
    state.store.delete_user(user.id).await?;
    state.auth.revoked(user.id);
    Ok(ok(StatusCode::OK, Deleted { deleted: true }))
}
