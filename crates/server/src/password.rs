//! Passwords: Argon2id for everything tidesync hashes, on the blocking pool
//! and bounded in concurrency. Users imported from the original server
//! (`tidesync import mongo`) arrive with bcrypt hashes: those are verified
//! with bcrypt, only ever verified (never produced), and replaced by an
//! Argon2id hash at the first successful sign-in.

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

/// Whether a stored hash is the original server's bcrypt (`$2a$`, `$2b$`,
/// `$2y$`), to be replaced by Argon2id once the password is known.
pub fn is_legacy(hash: &str) -> bool {
    tidesync_import::map::is_bcrypt(hash)
}

/// True when `password` matches the stored `hash`: an Argon2 PHC string,
/// or an imported bcrypt hash.
pub async fn verify_password(password: String, hash: String) -> Result<bool, ApiError> {
    let _slot = HASHING
        .acquire()
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    tokio::task::spawn_blocking(move || {
        if is_legacy(&hash) {
            // bcrypt reads at most 72 bytes, as the original's bcryptjs did.
            return bcrypt::verify(password.as_bytes(), &hash)
                .map_err(|e| ApiError::Internal(format!("stored bcrypt hash unreadable: {e}")));
        }
        let parsed = PasswordHash::new(&hash)
            .map_err(|e| ApiError::Internal(format!("stored hash unreadable: {e}")))?;
        Ok(argon2()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok())
    })
    .await
    .map_err(|e| ApiError::Internal(format!("verify task: {e}")))?
}
