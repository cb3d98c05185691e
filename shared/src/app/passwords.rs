//! Setting and checking a user's password through the Backend API. Hashing and verifying
//! take tens of milliseconds of CPU (argon2id, docs/sign-in.md), so they run on the
//! blocking pool, off the threads that serve requests.

use crate::domain::password::{PasswordDigest, PasswordRules, Verified};
use crate::domain::User;
use crate::error::ApiError;
use crate::state::AppState;

/// A password as the Backend API gives it, its form already checked.
pub enum NewPassword {
    /// A plaintext password: checked against the instance's rules (unless
    /// `skip_checks`: a migration of passwords that met another system's rules; the
    /// maximum length still holds, as it bounds the work), then hashed.
    Plain { password: String, skip_checks: bool },
    /// A digest made elsewhere (`password_digest` + `password_hasher`), kept as it came.
    Imported(PasswordDigest),
}

impl std::fmt::Debug for NewPassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Plain { skip_checks, .. } => write!(f, "Plain {{ skip_checks: {skip_checks} }}"),
            Self::Imported(d) => write!(f, "Imported({d:?})"),
        }
    }
}

/// The digest to keep for `new`: `user_inputs` (the user's email addresses, names,
/// username) count against a plaintext password's strength.
pub async fn digest_of(
    new: NewPassword,
    user_inputs: Vec<String>,
) -> Result<PasswordDigest, ApiError> {
    let (password, skip_checks) = match new {
        NewPassword::Imported(digest) => return Ok(digest),
        NewPassword::Plain {
            password,
            skip_checks,
        } => (password, skip_checks),
    };
    let rules = PasswordRules::default();
    let checked = if skip_checks {
        PasswordRules {
            min_length: 0,
            min_strength: 0,
            reject_common: false,
            ..rules
        }
    } else {
        rules
    };
    blocking(move || {
        let inputs: Vec<&str> = user_inputs.iter().map(String::as_str).collect();
        checked
            .check(&password, &inputs)
            .map_err(ApiError::password_rejected)?;
        PasswordDigest::new(&password).map_err(|_| ApiError::internal())
    })
    .await
}

/// What a user's attributes give a strength estimate to count against a password.
pub fn user_inputs(user: &User) -> Vec<String> {
    let mut inputs: Vec<String> = user
        .email_addresses
        .iter()
        .map(|e| e.email_address.clone())
        .collect();
    inputs.extend(
        [&user.first_name, &user.last_name, &user.username]
            .into_iter()
            .flatten()
            .cloned(),
    );
    inputs
}

/// `POST /v1/users/{user_id}/verify_password`: whether `password` is the user's. A user
/// without a password is 400 `password_not_set`; a wrong password 422
/// `form_password_incorrect`. Nothing is written: the Backend API is the caller's own
/// server, which decides what a failure means (sign-in failures count toward the lockout).
pub async fn verify(state: &AppState, user_id: &str, password: String) -> Result<(), ApiError> {
    let user = state
        .store
        .get_user(user_id)
        .await?
        .ok_or_else(|| ApiError::not_found("User"))?;
    let digest = user.password.ok_or_else(ApiError::password_not_set)?;
    // A password longer than any this service sets or accepts is no match, and costs
    // nothing to refuse.
    let max = PasswordRules::default().max_length;
    if password.chars().take(max + 1).count() > max {
        return Err(ApiError::password_incorrect());
    }
    match blocking(move || Ok(digest.verify(&password))).await? {
        Verified::Match { .. } => Ok(()),
        Verified::Mismatch => Err(ApiError::password_incorrect()),
    }
}

/// Runs CPU-heavy `work` on the blocking pool.
pub(crate) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|_| ApiError::internal())?
}
