//! Tokens (JWT HS256), the authentication layer that turns a Bearer token
//! into an [`Identity`], and the [`AuthUser`] extractor.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use tidesync_protocol::time::now_millis;
use tidesync_protocol::UserId;
use tidesync_store::{AuthState, Store, User};

use crate::error::ApiError;

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
    /// Absent for an access token; `"stream"` for a stream ticket. Neither
    /// is accepted where the other is expected.
    #[serde(default, skip_serializing_if = "TokenKind::is_access")]
    typ: TokenKind,
}

/// What a token may be used for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenKind {
    /// A Bearer token for every endpoint.
    #[default]
    Access,
    /// A single-use ticket to open the event stream (`?ticket=`).
    Stream,
}

impl TokenKind {
    fn is_access(&self) -> bool {
        *self == TokenKind::Access
    }
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
        self.sign(user, generation, self.lifetime, TokenKind::Access)
    }

    /// A single-use ticket for `GET /api/sync/stream?ticket=…`, for browsers'
    /// EventSource, which cannot send an Authorization header: short-lived,
    /// and useless as an access token.
    pub fn issue_ticket(&self, user: UserId, generation: i64) -> Result<String, ApiError> {
        self.sign(user, generation, TICKET_LIFETIME, TokenKind::Stream)
    }

    fn sign(
        &self,
        user: UserId,
        generation: i64,
        lifetime: Duration,
        typ: TokenKind,
    ) -> Result<String, ApiError> {
        let iat = time::OffsetDateTime::now_utc().unix_timestamp();
        let claims = Claims {
            sub: user.to_string(),
            iat,
            exp: iat.saturating_add(lifetime.as_secs() as i64),
            generation,
            jti: uuid::Uuid::new_v4().simple().to_string(),
            typ,
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| ApiError::Internal(format!("jwt encode: {e}")))
    }

    /// What a valid token says; `None` for anything else. Revocation is
    /// checked by [`AuthUser`], against the store.
    pub fn verify(&self, token: &str) -> Option<TokenInfo> {
        self.decode(token, TokenKind::Access)
    }

    /// A valid, unexpired stream ticket (single use is checked by the caller).
    pub fn verify_ticket(&self, ticket: &str) -> Option<TokenInfo> {
        self.decode(ticket, TokenKind::Stream)
    }

    fn decode(&self, token: &str, typ: TokenKind) -> Option<TokenInfo> {
        let c = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .ok()?
            .claims;
        if c.typ != typ {
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

/// Checks tokens: signature and expiry, then (through the cache) the user's
/// existence, token generation and revocations.
pub struct Authenticator {
    pub tokens: Tokens,
    pub cache: AuthCache,
    pub store: Arc<dyn Store>,
}

impl Authenticator {
    pub async fn authenticate(
        &self,
        headers: &axum::http::HeaderMap,
    ) -> Result<AuthUser, ApiError> {
        let info = self
            .tokens
            .verify(bearer_token(headers)?)
            .ok_or(ApiError::Unauthorized("invalid or expired token"))?;
        let auth = self
            .cache
            .get(self.store.as_ref(), info.user)
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
}

/// Who a request is, as the authentication layer found out: put in the
/// request's extensions for the rate limiter and the handlers.
#[derive(Clone)]
pub enum Identity {
    /// No Authorization header.
    Anonymous,
    User(AuthUser),
    /// A header whose token failed the check, and why.
    Rejected(ApiError),
}

/// The authentication layer: runs the full token check once per request,
/// ahead of the rate limiter (which keys by user only for a token that
/// passed it, so a revoked token cannot drain its user's budget).
pub async fn identify(
    axum::extract::State(auth): axum::extract::State<Arc<Authenticator>>,
    mut req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let identity = if req.headers().contains_key(AUTHORIZATION) {
        match auth.authenticate(req.headers()).await {
            Ok(user) => Identity::User(user),
            Err(e) => Identity::Rejected(e),
        }
    } else {
        Identity::Anonymous
    };
    req.extensions_mut().insert(identity);
    next.run(req).await
}

impl<S: Send + Sync> FromRequestParts<S> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        match parts.extensions.get::<Identity>() {
            Some(Identity::User(u)) => Ok(u.clone()),
            Some(Identity::Rejected(e)) => Err(e.clone()),
            Some(Identity::Anonymous) => {
                Err(ApiError::Unauthorized("missing Authorization header"))
            }
            None => Err(ApiError::Internal(
                "the authentication layer is missing on this route".into(),
            )),
        }
    }
}
