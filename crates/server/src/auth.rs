//! Tokens (JWT HS256), the authentication layer that turns a Bearer token
//! into an [`Identity`], and the [`AuthUser`] extractor.

mod cache;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use tidesync_protocol::UserId;
use tidesync_store::{AuthState, Store, User};

pub use cache::AuthCache;

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
    /// A stream ticket's parent: the id and expiry of the access token that
    /// minted it. The ticket, and the stream it opens, live only as long
    /// as that token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pjti: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pexp: Option<i64>,
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
        self.sign(user, generation, self.lifetime, None)
    }

    /// A single-use ticket for `GET /api/sync/stream?ticket=…`, for browsers'
    /// EventSource, which cannot send an Authorization header: short-lived,
    /// useless as an access token, and bound to the token that minted it.
    pub fn issue_ticket(&self, parent: &TokenInfo) -> Result<String, ApiError> {
        self.sign(
            parent.user,
            parent.generation,
            TICKET_LIFETIME,
            Some(parent),
        )
    }

    fn sign(
        &self,
        user: UserId,
        generation: i64,
        lifetime: Duration,
        parent: Option<&TokenInfo>,
    ) -> Result<String, ApiError> {
        let iat = time::OffsetDateTime::now_utc().unix_timestamp();
        let claims = Claims {
            sub: user.to_string(),
            iat,
            exp: iat.saturating_add(lifetime.as_secs() as i64),
            generation,
            jti: uuid::Uuid::new_v4().simple().to_string(),
            typ: if parent.is_some() {
                TokenKind::Stream
            } else {
                TokenKind::Access
            },
            pjti: parent.map(|p| p.jti.clone()),
            pexp: parent.map(|p| p.exp),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| ApiError::Internal(format!("jwt encode: {e}")))
    }

    /// What a valid token says; `None` for anything else. Revocation is
    /// checked by [`AuthUser`], against the store.
    pub fn verify(&self, token: &str) -> Option<TokenInfo> {
        let c = self.decode(token, TokenKind::Access)?;
        Some(TokenInfo {
            user: c.sub.parse().ok()?,
            generation: c.generation,
            jti: c.jti,
            exp: c.exp,
        })
    }

    /// A valid, unexpired stream ticket (single use, and whether its parent
    /// still holds, are checked by the caller). A ticket without a parent
    /// (minted by an older version) is refused: the client asks for another.
    pub fn verify_ticket(&self, ticket: &str) -> Option<Ticket> {
        let c = self.decode(ticket, TokenKind::Stream)?;
        let user = c.sub.parse().ok()?;
        Some(Ticket {
            parent: TokenInfo {
                user,
                generation: c.generation,
                jti: c.pjti?,
                exp: c.pexp?,
            },
            id: c.jti,
            exp: c.exp,
        })
    }

    fn decode(&self, token: &str, typ: TokenKind) -> Option<Claims> {
        let c = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .ok()?
            .claims;
        (c.typ == typ).then_some(c)
    }
}

/// What a valid stream ticket says.
#[derive(Clone, Debug)]
pub struct Ticket {
    /// The access token that minted it.
    pub parent: TokenInfo,
    /// The ticket's own id, spent when it is used.
    pub id: String,
    /// The ticket's expiry, Unix seconds.
    pub exp: i64,
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
        let auth = self.check(&info, None).await?;
        Ok(AuthUser {
            user: auth.user.clone(),
            token: info,
        })
    }

    /// A token of `user` was revoked through this instance: forgets its
    /// cached state at once, so that the user's next request here reads
    /// afresh. Open streams and long-polls, here and on other instances,
    /// hear of it from the store's announcement (session.rs).
    pub fn revoked(&self, user: UserId) {
        self.cache.invalidate(user);
    }

    /// Whether a verified token still holds: its user exists, its generation
    /// is current and it is not revoked. With `since`, against a state read
    /// at or after that moment (not an older cached one). `Unauthorized`
    /// when it does not hold; another error when the database cannot say.
    pub async fn check(
        &self,
        token: &TokenInfo,
        since: Option<Instant>,
    ) -> Result<Arc<AuthState>, ApiError> {
        let store = self.store.as_ref();
        let state = match since {
            None => self.cache.get(store, token.user).await?,
            Some(at) => self.cache.get_since(store, token.user, at).await?,
        }
        .ok_or(ApiError::Unauthorized("invalid or expired token"))?;
        if token.generation != state.token_generation || state.revoked.contains(&token.jti) {
            return Err(ApiError::Unauthorized("token revoked; log in again"));
        }
        Ok(state)
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
