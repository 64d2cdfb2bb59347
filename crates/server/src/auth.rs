//! Passwords (Argon2id) and tokens (JWT HS256), and the extractor that turns a
//! Bearer token into the authenticated user.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::Argon2;
use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use tidesync_protocol::time::now_millis;
use tidesync_protocol::UserId;
use tidesync_store::{AuthState, Store, User};

use crate::error::ApiError;
use crate::state::AppState;

/// Argon2id v19 with m=19 MiB, t=2, p=1: the OWASP password-storage
/// recommendation, and this crate's defaults.
fn argon2() -> Argon2<'static> {
    Argon2::default()
}

/// Hashes running at once. Each takes 19 MiB and a core for tens of
/// milliseconds: without a bound, a flood of logins from many addresses
/// could use gigabytes; beyond it, requests wait (within REQUEST_TIMEOUT).
static HASHING: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(4);

/// Hashes on the blocking pool: Argon2 takes tens of milliseconds of CPU and
/// would stall every other request on an executor thread.
pub async fn hash_password(password: String) -> Result<String, ApiError> {
    let _slot = HASHING
        .acquire()
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
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
    let _slot = HASHING
        .acquire()
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
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
    /// The user's token generation when issued; a password change bumps it.
    #[serde(rename = "gen")]
    generation: i64,
    /// Token id, so that logout can revoke this token alone.
    jti: String,
    /// `"stream"` for a stream ticket; absent for an access token. Neither
    /// is accepted where the other is expected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    typ: Option<String>,
}

/// Lifetime of a stream ticket: long enough to open the stream, no longer.
pub const TICKET_LIFETIME: Duration = Duration::from_secs(60);

/// What a valid token says.
#[derive(Clone, Debug)]
pub struct TokenInfo {
    pub user: UserId,
    pub generation: i64,
    pub jti: String,
    /// Expiry, Unix seconds.
    pub exp: i64,
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

    pub fn issue(&self, user: UserId, generation: i64) -> Result<String, ApiError> {
        self.sign(user, generation, self.lifetime, None)
    }

    /// A single-use ticket for `GET /api/sync/stream?ticket=…`, for browsers'
    /// EventSource, which cannot send an Authorization header: short-lived,
    /// and useless as an access token.
    pub fn issue_ticket(&self, user: UserId, generation: i64) -> Result<String, ApiError> {
        self.sign(user, generation, TICKET_LIFETIME, Some("stream"))
    }

    fn sign(
        &self,
        user: UserId,
        generation: i64,
        lifetime: Duration,
        typ: Option<&str>,
    ) -> Result<String, ApiError> {
        let iat = time::OffsetDateTime::now_utc().unix_timestamp();
        let claims = Claims {
            sub: user.to_string(),
            iat,
            exp: iat.saturating_add(lifetime.as_secs() as i64),
            generation,
            jti: uuid::Uuid::new_v4().simple().to_string(),
            typ: typ.map(str::to_owned),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| ApiError::Internal(format!("jwt encode: {e}")))
    }

    /// What a valid token says; `None` for anything else. Revocation is
    /// checked by [`AuthUser`], against the store.
    pub fn verify(&self, token: &str) -> Option<TokenInfo> {
        self.decode(token, None)
    }

    /// A valid, unexpired stream ticket (single use is checked by the caller).
    pub fn verify_ticket(&self, ticket: &str) -> Option<TokenInfo> {
        self.decode(ticket, Some("stream"))
    }

    fn decode(&self, token: &str, typ: Option<&str>) -> Option<TokenInfo> {
        let c = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .ok()?
            .claims;
        if c.typ.as_deref() != typ {
            return None;
        }
        Some(TokenInfo {
            user: c.sub.parse().ok()?,
            generation: c.generation,
            jti: c.jti,
            exp: c.exp,
        })
    }
}

/// Recently read auth states, so the hot path does not query the database
/// on every request. A logout, password change or deletion through this
/// instance takes effect at once; through another instance, within the TTL.
pub struct AuthCache {
    ttl: Duration,
    entries: std::sync::Mutex<HashMap<UserId, (Instant, Arc<AuthState>)>>,
}

const AUTH_CACHE_MAX: usize = 50_000;

impl AuthCache {
    pub fn new(ttl: Duration) -> Self {
        AuthCache {
            ttl,
            entries: std::sync::Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<UserId, (Instant, Arc<AuthState>)>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn invalidate(&self, user: UserId) {
        self.lock().remove(&user);
    }

    pub async fn get(
        &self,
        store: &dyn Store,
        user: UserId,
    ) -> Result<Option<Arc<AuthState>>, ApiError> {
        if let Some((at, state)) = self.lock().get(&user) {
            if at.elapsed() < self.ttl {
                return Ok(Some(state.clone()));
            }
        }
        let Some(state) = store.auth_state(user, now_millis()).await? else {
            self.invalidate(user);
            return Ok(None);
        };
        let state = Arc::new(state);
        let mut entries = self.lock();
        if entries.len() >= AUTH_CACHE_MAX {
            entries.clear();
        }
        entries.insert(user, (Instant::now(), state.clone()));
        Ok(Some(state))
    }
}

/// The token of an `Authorization: Bearer <token>` header (scheme in any case).
pub fn bearer_token(headers: &axum::http::HeaderMap) -> Result<&str, ApiError> {
    let header = headers
        .get(AUTHORIZATION)
        .ok_or(ApiError::Unauthorized("missing Authorization header"))?;
    header
        .to_str()
        .ok()
        .and_then(|h| {
            let (scheme, token) = h.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        })
        .filter(|t| !t.is_empty())
        .ok_or(ApiError::Unauthorized(
            "Authorization header must be `Bearer <token>`",
        ))
}

/// The user a request's Bearer token names. Rejects a missing, malformed,
/// expired or wrongly signed token, a revoked or old-generation token, and a
/// token whose user no longer exists.
#[derive(Clone)]
pub struct AuthUser {
    pub user: User,
    pub token: TokenInfo,
}

/// The full token check: signature and expiry, then (through the cache) the
/// user's existence, token generation and revocations.
pub async fn authenticate(
    state: &AppState,
    headers: &axum::http::HeaderMap,
) -> Result<AuthUser, ApiError> {
    let info = state
        .tokens
        .verify(bearer_token(headers)?)
        .ok_or(ApiError::Unauthorized("invalid or expired token"))?;
    let auth = state
        .auth_cache
        .get(state.store.as_ref(), info.user)
        .await?
        .ok_or(ApiError::Unauthorized("invalid or expired token"))?;
    if info.generation != auth.token_generation || auth.revoked.contains(&info.jti) {
        return Err(ApiError::Unauthorized("token revoked; log in again"));
    }
    Ok(AuthUser {
        user: auth.user.clone(),
        token: info,
    })
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        // The rate limiter has authenticated the request already, if it could.
        if let Some(auth) = parts.extensions.get::<AuthUser>() {
            return Ok(auth.clone());
        }
        authenticate(state, &parts.headers).await
    }
}
