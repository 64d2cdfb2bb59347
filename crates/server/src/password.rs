//! Passwords: Argon2id for everything tidesync hashes, on the blocking pool
//! and bounded in concurrency.

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::Argon2;

use crate::error::ApiError;

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
