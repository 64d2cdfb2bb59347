//! Account wire types and their validation.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::ids::UserId;

/// Limits from the contract: OWASP's minimum of 8 characters; 1 KiB caps the
/// work an attacker can make Argon2 do per request.
pub const PASSWORD_MIN_CHARS: usize = 8;
pub const PASSWORD_MAX_BYTES: usize = 1024;
pub const NAME_MAX_CHARS: usize = 100;
pub const EMAIL_MAX_BYTES: usize = 254;

#[derive(Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RegisterRequest {
    /// Trimmed and lower-cased before it is stored; unique.
    #[schema(format = Email, max_length = 254)]
    pub email: String,
    /// At least 8 characters, at most 1024 bytes.
    #[schema(min_length = 8, max_length = 1024)]
    pub password: String,
    /// 1 to 100 characters after trimming.
    #[schema(min_length = 1, max_length = 100, pattern = r"\S")]
    pub name: String,
}

#[derive(Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
}

#[derive(Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChangePasswordRequest {
    pub current_password: String,
    /// At least 8 characters, at most 1024 bytes.
    #[schema(min_length = 8, max_length = 1024)]
    pub new_password: String,
}

#[derive(Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeleteAccountRequest {
    pub password: String,
}

// Passwords must never reach a log through a derived Debug.
impl std::fmt::Debug for RegisterRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegisterRequest")
            .field("email", &self.email)
            .field("password", &"<redacted>")
            .field("name", &self.name)
            .finish()
    }
}

impl std::fmt::Debug for LoginRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginRequest")
            .field("email", &self.email)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// A user as the API shows it (never the password hash).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserView {
    pub id: UserId,
    pub email: String,
    pub name: String,
    /// ISO-8601, UTC, milliseconds (`2025-01-01T00:00:00.000Z`).
    pub created_at: String,
}

/// `data` of register, login and password change.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AuthResponse {
    pub user: UserView,
    pub token: String,
}

/// `data` of `GET /api/auth/me`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MeResponse {
    pub user: UserView,
}

/// `data` of `POST /api/auth/logout`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LoggedOut {
    pub logged_out: bool,
}

/// `data` of `DELETE /api/auth/me`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Deleted {
    pub deleted: bool,
}

/// A field that failed validation, with a message naming the problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    pub field: &'static str,
    pub message: String,
}

fn field_err(field: &'static str, message: impl Into<String>) -> FieldError {
    FieldError {
        field,
        message: message.into(),
    }
}

/// Trims and lower-cases an email and checks its shape. Deliberately not a full
/// RFC 5322 parser: the shape check rejects typos, the mailbox is the real test.
pub fn normalize_email(raw: &str) -> Result<String, FieldError> {
    let email = raw.trim().to_lowercase();
    if email.is_empty() {
        return Err(field_err("email", "is required"));
    }
    if email.len() > EMAIL_MAX_BYTES {
        return Err(field_err(
            "email",
            format!("must be at most {EMAIL_MAX_BYTES} bytes"),
        ));
    }
    let bad = || field_err("email", "is not a valid email address");
    if email.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad());
    }
    let (local, domain) = email.split_once('@').ok_or_else(bad)?;
    if local.is_empty() || local.len() > 64 || domain.contains('@') {
        return Err(bad());
    }
    let labels: Vec<&str> = domain.split('.').collect();
    if labels.len() < 2
        || labels
            .iter()
            .any(|l| l.is_empty() || l.starts_with('-') || l.ends_with('-'))
    {
        return Err(bad());
    }
    Ok(email)
}

pub fn validate_password(password: &str, field: &'static str) -> Result<(), FieldError> {
    if password.len() > PASSWORD_MAX_BYTES {
        return Err(field_err(
            field,
            format!("must be at most {PASSWORD_MAX_BYTES} bytes"),
        ));
    }
    if password.chars().count() < PASSWORD_MIN_CHARS {
        return Err(field_err(
            field,
            format!("must be at least {PASSWORD_MIN_CHARS} characters"),
        ));
    }
    Ok(())
}

/// Trims a display name and checks its length (1 to 100 characters).
pub fn normalize_name(raw: &str) -> Result<String, FieldError> {
    let name = raw.trim();
    let n = name.chars().count();
    if n == 0 {
        return Err(field_err("name", "is required"));
    }
    if n > NAME_MAX_CHARS {
        return Err(field_err(
            "name",
            format!("must be at most {NAME_MAX_CHARS} characters"),
        ));
    }
    if name.chars().any(|c| c.is_control()) {
        return Err(field_err("name", "must not contain control characters"));
    }
    Ok(name.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_is_trimmed_and_lowercased() {
        assert_eq!(
            normalize_email("  Alice@Example.COM ").unwrap(),
            "alice@example.com"
        );
    }

    #[test]
    fn bad_emails_are_rejected() {
        for e in [
            "",
            "   ",
            "alice",
            "alice@",
            "@example.com",
            "a@b",
            "a@@b.com",
            "a b@c.com",
            "a@b..com",
            "a@-b.com",
        ] {
            assert!(normalize_email(e).is_err(), "{e:?} should be rejected");
        }
        let long = format!("{}@example.com", "a".repeat(250));
        assert!(normalize_email(&long).is_err());
    }

    #[test]
    fn password_bounds() {
        assert!(validate_password("1234567", "password").is_err());
        assert!(validate_password("12345678", "password").is_ok());
        // Eight characters, more than eight bytes.
        assert!(validate_password("éééééééé", "password").is_ok());
        assert!(validate_password(&"x".repeat(1024), "password").is_ok());
        assert!(validate_password(&"x".repeat(1025), "password").is_err());
    }

    #[test]
    fn name_bounds() {
        assert_eq!(normalize_name("  Ann ").unwrap(), "Ann");
        assert!(normalize_name("   ").is_err());
        assert!(normalize_name(&"n".repeat(100)).is_ok());
        assert!(normalize_name(&"n".repeat(101)).is_err());
    }
}
