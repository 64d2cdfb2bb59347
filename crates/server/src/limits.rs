//! Rate limits: token buckets keyed by user, client IP or email, in memory
//! (per instance: N instances allow up to N times the limit).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use std::sync::Arc;

use crate::auth::Identity;
use crate::error::ApiError;

/// Beyond this many keys, buckets that are full again are forgotten.
const MAX_KEYS: usize = 100_000;

pub struct RateLimiter {
    per_minute: f64,
    buckets: Mutex<HashMap<String, Bucket>>,
}

struct Bucket {
    tokens: f64,
    last: Instant,
}

impl RateLimiter {
    pub fn new(per_minute: u32) -> Self {
        RateLimiter {
            per_minute: per_minute.max(1) as f64,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one request from `key`'s bucket; `Err` carries how long until
    /// the next one is allowed.
    pub fn check(&self, key: &str) -> Result<(), Duration> {
        let rate = self.per_minute / 60.0;
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() >= MAX_KEYS {
            let cap = self.per_minute;
            buckets.retain(|_, b| b.tokens + now.duration_since(b.last).as_secs_f64() * rate < cap);
        }
        let b = buckets.entry(key.to_owned()).or_insert(Bucket {
            tokens: self.per_minute,
            last: now,
        });
        b.tokens =
            (b.tokens + now.duration_since(b.last).as_secs_f64() * rate).min(self.per_minute);
        b.last = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - b.tokens) / rate))
        }
    }
}

/// The client's address: the socket peer, or, behind a trusted proxy, the
/// last address in `X-Forwarded-For` (the one our proxy appended; earlier
/// entries are whatever the client claimed).
pub fn client_ip(req: &Request, trust_proxy: bool) -> Option<IpAddr> {
    if trust_proxy {
        // Only the last entry is the proxy's: if it is not an address (say
        // `ip:port`), use no entry at all rather than one the client wrote.
        let last = req
            .headers()
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .next_back()
            .map(str::trim);
        if let Some(last) = last {
            return last
                .parse::<IpAddr>()
                .ok()
                .or_else(|| last.parse::<SocketAddr>().ok().map(|a| a.ip()));
        }
    }
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
}

/// The limits of one server, shared by its layers and handlers.
pub struct Limits {
    /// Per user (authenticated) or per client IP.
    pub general: RateLimiter,
    /// Login and register, per client IP and per email.
    pub auth: RateLimiter,
    /// `/health`, per client IP.
    pub health: RateLimiter,
    pub trust_proxy: bool,
}

impl Limits {
    fn ip(&self, req: &Request) -> String {
        client_ip(req, self.trust_proxy)
            .map(|ip| ip.to_string())
            .unwrap_or_else(|| "unknown".into())
    }

    /// Brute force is slowed per email as well as per client IP.
    pub fn check_email(&self, email: &str) -> Result<(), ApiError> {
        self.auth.check(&format!("email:{email}")).map_err(|wait| {
            crate::telemetry::rate_limited("auth");
            ApiError::RateLimited(wait)
        })
    }
}

/// The general limit: per user for a request whose token passed the check
/// (the authentication layer runs first), per client IP for the rest.
pub async fn rate_limit(State(limits): State<Arc<Limits>>, req: Request, next: Next) -> Response {
    let key = match req.extensions().get::<Identity>() {
        Some(Identity::User(a)) => format!("user:{}", a.user.id),
        _ => format!("ip:{}", limits.ip(&req)),
    };
    if let Err(wait) = limits.general.check(&key) {
        crate::telemetry::rate_limited("general");
        return ApiError::RateLimited(wait).into_response();
    }
    next.run(req).await
}

/// The stricter limit of login and register, per client IP (a route layer
/// on those two routes; the per-email limit is checked in their handlers).
pub async fn auth_rate_limit(
    State(limits): State<Arc<Limits>>,
    req: Request,
    next: Next,
) -> Response {
    if let Err(wait) = limits.auth.check(&format!("ip:{}", limits.ip(&req))) {
        crate::telemetry::rate_limited("auth");
        return ApiError::RateLimited(wait).into_response();
    }
    next.run(req).await
}

/// `/health`'s own limit, per client IP: generous (probes come often),
/// but a flood gets `429` before it costs anything.
pub async fn health_rate_limit(
    State(limits): State<Arc<Limits>>,
    req: Request,
    next: Next,
) -> Response {
    if let Err(wait) = limits.health.check(&format!("ip:{}", limits.ip(&req))) {
        crate::telemetry::rate_limited("health");
        return ApiError::RateLimited(wait).into_response();
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_allows_the_limit_then_refuses() {
        let l = RateLimiter::new(3);
        assert!(l.check("a").is_ok());
        assert!(l.check("a").is_ok());
        assert!(l.check("a").is_ok());
        let wait = l.check("a").unwrap_err();
        assert!(
            wait > Duration::from_secs(10) && wait <= Duration::from_secs(20),
            "{wait:?}"
        );
        assert!(l.check("b").is_ok(), "keys are independent");
    }
}
