//! A sign-up (Clerk's `SignUp`) as a state machine: `missing_requirements` until every
//! required field is given and the email address verified, then `complete` once the
//! caller has created the user and the session in one commit.

use serde::{Deserialize, Serialize};

use crate::clock::Millis;
use crate::domain::one_time_code::{CodeRefused, CodeStatus, OneTimeCode};
use crate::domain::password::{HashingFailed, PasswordDigest, PasswordRejected, PasswordRules};

/// How long a sign-up may be carried on before it is abandoned.
pub const SIGN_UP_LIFETIME_MS: Millis = 24 * 60 * 60 * 1000;
/// Codes one sign-up may send (the first, and four more on "resend").
pub const MAX_CODES_PER_SIGN_UP: u32 = 5;

/// What an instance asks of a sign-up (from configuration; the environment document
/// shows the same).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SignUpRequirements {
    pub password: bool,
    pub names: bool,
    pub username: bool,
    /// The email address must be verified by a code before the sign-up completes.
    pub verify_email: bool,
    pub password_rules: PasswordRules,
}

impl Default for SignUpRequirements {
    fn default() -> Self {
        Self {
            password: true,
            names: false,
            username: false,
            verify_email: true,
            password_rules: PasswordRules::default(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SignUpStatus {
    MissingRequirements,
    Complete,
}

/// The fields a sign-up takes, as given (each `None`: not given in this request).
#[derive(Clone, Debug, Default)]
pub struct SignUpFields<'a> {
    pub email_address: Option<&'a str>,
    pub password: Option<&'a str>,
    pub first_name: Option<&'a str>,
    pub last_name: Option<&'a str>,
    pub username: Option<&'a str>,
}

/// Why a sign-up step was refused (each is one of Clerk's error codes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignUpRefused {
    #[error(transparent)]
    Password(#[from] PasswordRejected),
    #[error(transparent)]
    Hashing(#[from] HashingFailed),
    #[error(transparent)]
    Code(#[from] CodeRefused),
    /// `form_param_format_invalid` on `email_address`
    #[error("the email address is not valid")]
    EmailInvalid,
    /// A verification before an email address, or a step after completion or expiry.
    #[error("the sign-up cannot take this step now")]
    WrongStatus,
    /// `too_many_requests`: this sign-up sent its last code.
    #[error("this sign-up has sent as many codes as it may")]
    TooManyCodes,
}

/// A sign-up, bound to the client that started it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignUpAttempt {
    pub id: String,
    pub client_id: String,
    pub status: SignUpStatus,
    /// Lowercased, as it is looked up.
    pub email_address: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub username: Option<String>,
    pub password_digest: Option<PasswordDigest>,
    pub email_code: Option<OneTimeCode>,
    /// Codes sent for this sign-up: at most [`MAX_CODES_PER_SIGN_UP`].
    #[serde(default)]
    pub codes_sent: u32,
    pub created_user_id: Option<String>,
    pub created_session_id: Option<String>,
    pub created_at: Millis,
    pub updated_at: Millis,
    pub expires_at: Millis,
    pub version: u64,
}

impl SignUpAttempt {
    /// A new sign-up of `client_id` with the fields given.
    pub fn start(
        id: String,
        client_id: &str,
        fields: &SignUpFields<'_>,
        req: &SignUpRequirements,
        now: Millis,
    ) -> Result<Self, SignUpRefused> {
        let empty = Self {
            id,
            client_id: client_id.to_string(),
            status: SignUpStatus::MissingRequirements,
            email_address: None,
            first_name: None,
            last_name: None,
            username: None,
            password_digest: None,
            email_code: None,
            codes_sent: 0,
            created_user_id: None,
            created_session_id: None,
            created_at: now,
            updated_at: now,
            expires_at: now + SIGN_UP_LIFETIME_MS,
            version: 0,
        };
        empty.with(fields, req, now)
    }

    /// The sign-up with more fields given (`PATCH`). A changed email address must be
    /// verified again.
    pub fn with(
        &self,
        fields: &SignUpFields<'_>,
        req: &SignUpRequirements,
        now: Millis,
    ) -> Result<Self, SignUpRefused> {
        self.open(now)?;
        let mut next = self.next(now);
        if let Some(email) = fields.email_address {
            let email = email.trim().to_lowercase();
            if !plausible_email(&email) {
                return Err(SignUpRefused::EmailInvalid);
            }
            if next.email_address.as_deref() != Some(email.as_str()) {
                next.email_code = None;
            }
            next.email_address = Some(email);
        }
        next.first_name = fields.first_name.map(str::to_string).or(next.first_name);
        next.last_name = fields.last_name.map(str::to_string).or(next.last_name);
        next.username = fields.username.map(str::to_string).or(next.username);
        if let Some(password) = fields.password {
            let inputs: Vec<&str> = [&next.email_address, &next.first_name, &next.last_name]
                .into_iter()
                .filter_map(|f| f.as_deref())
                .collect();
            req.password_rules.check(password, &inputs)?;
            next.password_digest = Some(PasswordDigest::new(password)?);
        }
        Ok(next)
    }

    /// Clerk's `missing_fields`: required and not given.
    pub fn missing_fields(&self, req: &SignUpRequirements) -> Vec<&'static str> {
        let mut missing = Vec::new();
        if self.email_address.is_none() {
            missing.push("email_address");
        }
        if req.password && self.password_digest.is_none() {
            missing.push("password");
        }
        if req.names && self.first_name.is_none() {
            missing.push("first_name");
        }
        if req.names && self.last_name.is_none() {
            missing.push("last_name");
        }
        if req.username && self.username.is_none() {
            missing.push("username");
        }
        missing
    }

    /// Clerk's `unverified_fields`: the email address until its code was attempted right.
    pub fn unverified_fields(&self, req: &SignUpRequirements) -> Vec<&'static str> {
        if req.verify_email && self.email_address.is_some() && !self.email_verified() {
            vec!["email_address"]
        } else {
            Vec::new()
        }
    }

    pub fn email_verified(&self) -> bool {
        self.email_code
            .as_ref()
            .is_some_and(|c| c.status == CodeStatus::Verified)
    }

    /// Nothing missing and nothing unverified: the caller creates the user and the session
    /// in one commit, with [`SignUpAttempt::completed`].
    pub fn is_ready(&self, req: &SignUpRequirements) -> bool {
        self.status == SignUpStatus::MissingRequirements
            && self.missing_fields(req).is_empty()
            && self.unverified_fields(req).is_empty()
    }

    /// A code for the email address: the sign-up to store, and the code to send.
    pub fn prepare_email_verification(&self, now: Millis) -> Result<(Self, String), SignUpRefused> {
        self.open(now)?;
        if self.email_address.is_none() {
            return Err(SignUpRefused::WrongStatus);
        }
        if self.codes_sent >= MAX_CODES_PER_SIGN_UP {
            return Err(SignUpRefused::TooManyCodes);
        }
        let (code, digits) = OneTimeCode::new(now);
        let mut next = self.next(now);
        next.email_code = Some(code);
        next.codes_sent += 1;
        Ok((next, digits))
    }

    /// Tries the email code: the sign-up to store (the attempt counts either way).
    pub fn attempt_email_verification(
        &self,
        code: &str,
        now: Millis,
    ) -> (Self, Result<(), SignUpRefused>) {
        if let Err(refused) = self.open(now) {
            return (self.clone(), Err(refused));
        }
        let Some(kept) = &self.email_code else {
            return (self.clone(), Err(SignUpRefused::WrongStatus));
        };
        let (kept, verified) = kept.attempt(code, now);
        let mut next = self.next(now);
        next.email_code = Some(kept);
        (next, verified.map_err(SignUpRefused::from))
    }

    /// Complete: the user and session the caller made in the same commit.
    pub fn completed(&self, user_id: &str, session_id: &str, now: Millis) -> Self {
        let mut next = self.next(now);
        next.status = SignUpStatus::Complete;
        next.created_user_id = Some(user_id.to_string());
        next.created_session_id = Some(session_id.to_string());
        next
    }

    fn open(&self, now: Millis) -> Result<(), SignUpRefused> {
        if self.status != SignUpStatus::MissingRequirements || now >= self.expires_at {
            return Err(SignUpRefused::WrongStatus);
        }
        Ok(())
    }

    fn next(&self, now: Millis) -> Self {
        Self {
            updated_at: now,
            version: self.version + 1,
            ..self.clone()
        }
    }
}

/// One `@`, a non-empty local part, a dotted domain, no spaces, at most 320 bytes: what
/// can receive a code (whether it does is what the code checks).
fn plausible_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    email.len() <= 320
        && !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields<'a>(email: &'a str, password: &'a str) -> SignUpFields<'a> {
        SignUpFields {
            email_address: Some(email),
            password: Some(password),
            ..Default::default()
        }
    }

    #[test]
    fn a_sign_up_is_ready_once_its_email_address_is_verified() {
        let req = SignUpRequirements::default();
        let sign_up = SignUpAttempt::start(
            "sua_1".into(),
            "client_1",
            &fields("Ada@Example.com", "plum-tractor-vinegar-42"),
            &req,
            0,
        )
        .unwrap();
        assert_eq!(sign_up.email_address.as_deref(), Some("ada@example.com"));
        assert!(sign_up.missing_fields(&req).is_empty());
        assert_eq!(
            sign_up.unverified_fields(&SignUpRequirements::default()),
            ["email_address"]
        );
        assert!(!sign_up.is_ready(&req));

        let (sign_up, code) = sign_up.prepare_email_verification(1).unwrap();
        let wrong = if code == "000000" { "000001" } else { "000000" };
        let (sign_up, result) = sign_up.attempt_email_verification(wrong, 2);
        assert_eq!(
            result,
            Err(SignUpRefused::Code(CodeRefused::Incorrect { remaining: 4 }))
        );
        let (sign_up, result) = sign_up.attempt_email_verification(&code, 3);
        assert_eq!(result, Ok(()));
        assert!(sign_up.is_ready(&req));
        let done = sign_up.completed("user_1", "sess_1", 4);
        assert_eq!(done.status, SignUpStatus::Complete);
        assert_eq!(
            done.with(&SignUpFields::default(), &req, 5),
            Err(SignUpRefused::WrongStatus)
        );
    }

    #[test]
    fn missing_fields_and_refused_values() {
        let req = SignUpRequirements {
            names: true,
            ..Default::default()
        };
        let only_email = SignUpFields {
            email_address: Some("ada@example.com"),
            ..Default::default()
        };
        let sign_up =
            SignUpAttempt::start("sua_1".into(), "client_1", &only_email, &req, 0).unwrap();
        assert_eq!(
            sign_up.missing_fields(&req),
            ["password", "first_name", "last_name"]
        );
        assert_eq!(
            SignUpAttempt::start(
                "sua_2".into(),
                "c",
                &fields("ada@example.com", "password"),
                &req,
                0
            ),
            Err(SignUpRefused::Password(PasswordRejected::Common))
        );
        assert_eq!(
            SignUpAttempt::start(
                "sua_3".into(),
                "c",
                &fields("not-an-address", "plum-tractor-vinegar-42"),
                &req,
                0
            ),
            Err(SignUpRefused::EmailInvalid)
        );
        let huge = "a".repeat(10_000) + "@example.com";
        assert_eq!(
            SignUpAttempt::start(
                "sua_4".into(),
                "c",
                &fields(&huge, "plum-tractor-vinegar-42"),
                &req,
                0
            ),
            Err(SignUpRefused::EmailInvalid)
        );
        // A changed email address must be verified again.
        let (prepared, code) = sign_up.prepare_email_verification(1).unwrap();
        let (verified, _) = prepared.attempt_email_verification(&code, 2);
        assert!(verified.email_verified());
        let changed = verified
            .with(
                &SignUpFields {
                    email_address: Some("grace@example.com"),
                    ..Default::default()
                },
                &req,
                3,
            )
            .unwrap();
        assert_eq!(
            changed.unverified_fields(&SignUpRequirements::default()),
            ["email_address"]
        );
    }
}
