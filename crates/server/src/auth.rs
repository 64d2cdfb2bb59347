//! Passwords (Argon2id) and tokens (JWT HS256), and the extractor that turns a
//! Bearer token into the authenticated user.

use std::time::Duration;

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::Argon2;
use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use tidesync_protocol::UserId;
use tidesync_store::User;

use crate::error::ApiError;
use crate::state::AppState;

/// Argon2id v19 with m=19 MiB, t=2, p=1: the OWASP password-storage
/// recommendation, and this crate's defaults.
fn argon2() -> Argon2<'static> {
    Argon2::default()
}

/// Hashes on the blocking pool: Argon2 takes tens of milliseconds of CPU and
/// would stall every other request on an executor thread.
pub async fn hash_password(password: String) -> Result<String, ApiError> {
    tokio::task::spawn_blocking(move || {
        argon2()
            .hash_password(password.as_bytes())
            .map(|h| h.to_string())
            .map_err(|e| ApiError::Internal(format!("argon2 hash: {e}")))
    })
    .await
    .map_err(|e| ApiError::Internal(format!("hash task: {e}")))?
}

/// True when `password` matches the PHC string `hash`.
pub async fn verify_password(password: String, hash: String) -> Result<bool, ApiError> {
    tokio::task::spawn_blocking(move || {
        let parsed = PasswordHash::new(&hash)
            .map_err(|e| ApiError::Internal(format!("stored hash unreadable: {e}")))?;
        Ok(argon2()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok())
    })
    .await
    .map_err(|e| ApiError::Internal(format!("verify task: {e}")))?
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    iat: i64,
    exp: i64,
}

/// Signs and checks tokens. Only HS256 is accepted, so `alg: none` and
/// algorithm-confusion tokens fail verification.
pub struct Tokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    lifetime: Duration,
}

impl Tokens {
    pub fn new(secret: &[u8], lifetime: Duration) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 5;
        validation.set_required_spec_claims(&["exp", "sub", "iat"]);
        Tokens {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            lifetime,
        }
    }

    pub fn issue(&self, user: UserId) -> Result<String, ApiError> {
        let iat = time::OffsetDateTime::now_utc().unix_timestamp();
        let claims = Claims {
            sub: user.to_string(),
            iat,
            exp: iat.saturating_add(self.lifetime.as_secs() as i64),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| ApiError::Internal(format!("jwt encode: {e}")))
    }

    /// The user id in a valid token; `None` for anything else.
    pub fn verify(&self, token: &str) -> Option<UserId> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation).ok()?;
        data.claims.sub.parse().ok()
    }
}

/// The user a request's Bearer token names. Rejects a missing, malformed,
/// expired or wrongly signed token, and a token whose user no longer exists.
pub struct AuthUser(pub User);

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let header = parts
            .headers
            .get(AUTHORIZATION)
            .ok_or(ApiError::Unauthorized("missing Authorization header"))?;
        let token = header
            .to_str()
            .ok()
            .and_then(|h| {
                let (scheme, token) = h.split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
            })
            .filter(|t| !t.is_empty())
            .ok_or(ApiError::Unauthorized(
                "Authorization header must be `Bearer <token>`",
            ))?;
        let user_id = state
            .tokens
            .verify(token)
            .ok_or(ApiError::Unauthorized("invalid or expired token"))?;
        let user = state
            .store
            .user_by_id(user_id)
            .await?
            .ok_or(ApiError::Unauthorized("invalid or expired token"))?;
        Ok(AuthUser(user))
    }
}
