//! A sign-in by identifier (Clerk's `SignIn`), as an explicit state machine: each step
//! takes the attempt as stored and returns the attempt to store, so a step that loses a
//! race is decided again on what won.
//!
//! ```text
//! needs_identifier ──identify──▶ needs_first_factor ──password / email_code──▶ complete
//!                                        │
//!                                        └─reset_password_email_code──▶ needs_new_password ──new password──▶ complete
//! ```
//!
//! Every failed password or code attempt counts against the user's [`Lockout`]; a locked
//! user's attempts are refused before any credential is checked.

use serde::{Deserialize, Serialize};

use crate::clock::Millis;
use crate::domain::lockout::{Lockout, LockoutPolicy};
use crate::domain::one_time_code::{CodeRefused, CodeStatus, OneTimeCode};
use crate::domain::password::{PasswordDigest, Verified};

/// How long a sign-in may be carried on before it is abandoned.
pub const SIGN_IN_LIFETIME_MS: Millis = 60 * 60 * 1000;
/// Codes one sign-in may send (the first, and four more on "resend").
pub const MAX_CODES_PER_SIGN_IN: u32 = 5;

/// Clerk's sign-in statuses, as the wire shows them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SignInStatus {
    NeedsIdentifier,
    NeedsFirstFactor,
    NeedsNewPassword,
    Complete,
}

/// First-factor strategies (Clerk's names).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    Password,
    EmailCode,
    ResetPasswordEmailCode,
}

/// A code sent for this sign-in: its strategy, the address it went to, and the code as
/// kept (hashed).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreparedCode {
    pub strategy: Strategy,
    pub email_address_id: String,
    pub code: OneTimeCode,
}

/// A sign-in, bound to the client that started it: no other client may read or carry it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignInAttempt {
    pub id: String,
    pub client_id: String,
    pub status: SignInStatus,
    pub identifier: Option<String>,
    pub user_id: Option<String>,
    pub prepared: Option<PreparedCode>,
    /// The first factor that verified (Clerk's `first_factor_verification`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified_by: Option<Strategy>,
    /// Codes prepared for this sign-in: at most [`MAX_CODES_PER_SIGN_IN`], so that one
    /// sign-in cannot be made to send mail without end.
    #[serde(default)]
    pub codes_sent: u32,
    pub created_session_id: Option<String>,
    pub created_at: Millis,
    pub updated_at: Millis,
    pub expires_at: Millis,
    pub version: u64,
}

/// What the identified user's credentials are, read with the attempt.
#[derive(Clone, Copy, Debug)]
pub struct Credentials<'a> {
    pub digest: Option<&'a PasswordDigest>,
    pub lockout: Lockout,
    pub banned: bool,
}

/// Why a step was refused (each is one of Clerk's error codes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignInRefused {
    /// `form_identifier_not_found`
    #[error("no user has this identifier")]
    IdentifierNotFound,
    /// `form_password_incorrect`
    #[error("the password is incorrect")]
    PasswordIncorrect,
    /// `form_code_incorrect`, `verification_expired`, `verification_failed`
    #[error(transparent)]
    Code(#[from] CodeRefused),
    /// `user_locked`
    #[error("the account is locked for {0} more seconds")]
    Locked(i64),
    /// `user_banned` (Clerk answers banned users' sign-ins so)
    #[error("the user is banned")]
    Banned,
    /// `strategy_for_user_invalid`: the user has no password, or the strategy was not
    /// prepared (no code was sent for it).
    #[error("the strategy is not available for this sign-in")]
    StrategyNotAvailable,
    /// `sign_in_expired` / a step out of order: the sign-in cannot take it now.
    #[error("the sign-in cannot take this step in its status")]
    WrongStatus,
    /// `too_many_requests`: this sign-in sent its last code.
    #[error("this sign-in has sent as many codes as it may")]
    TooManyCodes,
}

/// The result of a credential step: the attempt and the user's lockout to store (both
/// change whether it verified or not), and what it found.
#[derive(Clone, Debug)]
pub struct Stepped<T> {
    pub attempt: SignInAttempt,
    pub lockout: Lockout,
    pub outcome: Result<T, SignInRefused>,
}

impl<T> Stepped<T> {
    /// The same step, its success mapped.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Stepped<U> {
        Stepped {
            attempt: self.attempt,
            lockout: self.lockout,
            outcome: self.outcome.map(f),
        }
    }
}

impl SignInAttempt {
    /// A new sign-in of `client_id`, waiting for an identifier.
    pub fn start(id: String, client_id: &str, now: Millis) -> Self {
        Self {
            id,
            client_id: client_id.to_string(),
            status: SignInStatus::NeedsIdentifier,
            identifier: None,
            user_id: None,
            prepared: None,
            verified_by: None,
            codes_sent: 0,
            created_session_id: None,
            created_at: now,
            updated_at: now,
            expires_at: now + SIGN_IN_LIFETIME_MS,
            version: 0,
        }
    }

    fn next(&self, now: Millis) -> Self {
        Self {
            updated_at: now,
            version: self.version + 1,
            ..self.clone()
        }
    }

    fn open(&self, status: SignInStatus, now: Millis) -> Result<(), SignInRefused> {
        if now >= self.expires_at || self.status != status {
            return Err(SignInRefused::WrongStatus);
        }
        Ok(())
    }

    /// Names the user: `user_id` is whom `identifier` belongs to, if anyone.
    pub fn identify(
        &self,
        identifier: &str,
        user_id: Option<&str>,
        now: Millis,
    ) -> Result<Self, SignInRefused> {
        self.open(SignInStatus::NeedsIdentifier, now)?;
        let user_id = user_id.ok_or(SignInRefused::IdentifierNotFound)?;
        let mut next = self.next(now);
        next.identifier = Some(identifier.to_string());
        next.user_id = Some(user_id.to_string());
        next.status = SignInStatus::NeedsFirstFactor;
        Ok(next)
    }

    /// Prepares an email code for `strategy` sent to `email_address_id`: the attempt to
    /// store, and the code to send. A new code replaces any earlier one.
    pub fn prepare_code(
        &self,
        strategy: Strategy,
        email_address_id: &str,
        now: Millis,
    ) -> Result<(Self, String), SignInRefused> {
        self.open(SignInStatus::NeedsFirstFactor, now)?;
        if strategy == Strategy::Password {
            return Err(SignInRefused::StrategyNotAvailable);
        }
        if self.codes_sent >= MAX_CODES_PER_SIGN_IN {
            return Err(SignInRefused::TooManyCodes);
        }
        let (code, digits) = OneTimeCode::new(now);
        let mut next = self.next(now);
        next.codes_sent += 1;
        next.prepared = Some(PreparedCode {
            strategy,
            email_address_id: email_address_id.to_string(),
            code,
        });
        Ok((next, digits))
    }

    /// Refuses a step for a locked or banned user before any credential is looked at.
    fn admit(&self, creds: &Credentials<'_>, now: Millis) -> Result<(), SignInRefused> {
        self.open(SignInStatus::NeedsFirstFactor, now)?;
        if creds.banned {
            return Err(SignInRefused::Banned);
        }
        if let Some(seconds) = creds.lockout.expires_in_seconds(now) {
            return Err(SignInRefused::Locked(seconds));
        }
        Ok(())
    }

    /// Tries the password: `Ok(rehash)` signs in (`rehash`: the caller replaces the
    /// digest by an argon2id one of this password), the status then `complete` once the
    /// caller adds the session ([`SignInAttempt::completed`]).
    pub fn attempt_password(
        &self,
        password: &str,
        creds: Credentials<'_>,
        policy: LockoutPolicy,
        now: Millis,
    ) -> Stepped<bool> {
        if let Err(refused) = self.admit(&creds, now) {
            return self.unchanged(creds, refused);
        }
        let Some(digest) = creds.digest else {
            return self.unchanged(creds, SignInRefused::StrategyNotAvailable);
        };
        match digest.verify(password) {
            Verified::Match { rehash } => Stepped {
                attempt: Self {
                    verified_by: Some(Strategy::Password),
                    ..self.next(now)
                },
                lockout: Lockout::cleared(),
                outcome: Ok(rehash),
            },
            Verified::Mismatch => self.failed(creds, policy, now, SignInRefused::PasswordIncorrect),
        }
    }

    /// Tries a code of `strategy`: `Ok(status)` is what the sign-in needs next
    /// (`Complete` for `email_code`, once the caller adds the session; `NeedsNewPassword`
    /// for a reset code).
    pub fn attempt_code(
        &self,
        strategy: Strategy,
        code: &str,
        creds: Credentials<'_>,
        policy: LockoutPolicy,
        now: Millis,
    ) -> Stepped<SignInStatus> {
        if let Err(refused) = self.admit(&creds, now) {
            return self.unchanged(creds, refused);
        }
        let Some(prepared) = self.prepared.as_ref().filter(|p| p.strategy == strategy) else {
            return self.unchanged(creds, SignInRefused::StrategyNotAvailable);
        };
        let (kept, verified) = prepared.code.attempt(code, now);
        let mut next = self.next(now);
        next.prepared = Some(PreparedCode {
            code: kept,
            ..prepared.clone()
        });
        let lockout = match verified {
            Ok(()) => Lockout::cleared(),
            // A wrong guess counts against the user; an expired or spent code is no guess.
            Err(refused)
                if prepared.code.status == CodeStatus::Unverified
                    && refused != CodeRefused::Expired =>
            {
                creds.lockout.failed(now, policy)
            }
            Err(_) => creds.lockout,
        };
        if verified.is_ok() {
            next.verified_by = Some(strategy);
        }
        let outcome = match verified {
            Ok(()) if strategy == Strategy::ResetPasswordEmailCode => {
                next.status = SignInStatus::NeedsNewPassword;
                Ok(SignInStatus::NeedsNewPassword)
            }
            Ok(()) => Ok(SignInStatus::Complete),
            Err(refused) => Err(refused.into()),
        };
        Stepped {
            attempt: next,
            lockout,
            outcome,
        }
    }

    /// After a reset code: the sign-in may now set the new password (the caller checks it
    /// against the rules and hashes it) and completes once the caller adds the session.
    pub fn set_new_password(&self, now: Millis) -> Result<Self, SignInRefused> {
        self.open(SignInStatus::NeedsNewPassword, now)?;
        Ok(self.next(now))
    }

    /// Complete, with the session the caller made in the same commit.
    pub fn completed(&self, session_id: &str, now: Millis) -> Self {
        let mut next = self.next(now);
        next.status = SignInStatus::Complete;
        next.created_session_id = Some(session_id.to_string());
        next
    }

    fn unchanged<T>(&self, creds: Credentials<'_>, refused: SignInRefused) -> Stepped<T> {
        Stepped {
            attempt: self.clone(),
            lockout: creds.lockout,
            outcome: Err(refused),
        }
    }

    fn failed<T>(
        &self,
        creds: Credentials<'_>,
        policy: LockoutPolicy,
        now: Millis,
        refused: SignInRefused,
    ) -> Stepped<T> {
        Stepped {
            attempt: self.next(now),
            lockout: creds.lockout.failed(now, policy),
            outcome: Err(refused),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identified(now: Millis) -> SignInAttempt {
        SignInAttempt::start("sia_1".into(), "client_1", now)
            .identify("ada@example.com", Some("user_1"), now)
            .unwrap()
    }

    fn creds(digest: Option<&PasswordDigest>, lockout: Lockout) -> Credentials<'_> {
        Credentials {
            digest,
            lockout,
            banned: false,
        }
    }

    #[test]
    fn an_unknown_identifier_is_refused() {
        let start = SignInAttempt::start("sia_1".into(), "client_1", 0);
        assert_eq!(
            start.identify("nobody@example.com", None, 0),
            Err(SignInRefused::IdentifierNotFound)
        );
        // A step out of order.
        assert_eq!(start.set_new_password(0), Err(SignInRefused::WrongStatus));
    }

    #[test]
    fn the_right_password_signs_in_and_clears_the_failures() {
        let digest = PasswordDigest::new("plum-tractor-vinegar-42").unwrap();
        let attempt = identified(0);
        let policy = LockoutPolicy::default();
        let wrong =
            attempt.attempt_password("nope", creds(Some(&digest), Lockout::default()), policy, 1);
        assert_eq!(wrong.outcome, Err(SignInRefused::PasswordIncorrect));
        assert_eq!(wrong.lockout.failures, 1);
        let right = wrong.attempt.attempt_password(
            "plum-tractor-vinegar-42",
            creds(Some(&digest), wrong.lockout),
            policy,
            2,
        );
        assert_eq!(right.outcome, Ok(false));
        assert_eq!(right.lockout, Lockout::cleared());
        let done = right.attempt.completed("sess_1", 3);
        assert_eq!(done.status, SignInStatus::Complete);
        assert_eq!(done.created_session_id.as_deref(), Some("sess_1"));
    }

    #[test]
    fn ten_failures_lock_and_the_right_password_is_then_refused_too() {
        let digest = PasswordDigest::new("plum-tractor-vinegar-42").unwrap();
        let policy = LockoutPolicy::default();
        let mut attempt = identified(0);
        let mut lockout = Lockout::default();
        for _ in 0..policy.max_failures {
            let step = attempt.attempt_password("nope", creds(Some(&digest), lockout), policy, 1);
            assert_eq!(step.outcome, Err(SignInRefused::PasswordIncorrect));
            (attempt, lockout) = (step.attempt, step.lockout);
        }
        let eleventh = attempt.attempt_password(
            "plum-tractor-vinegar-42",
            creds(Some(&digest), lockout),
            policy,
            2,
        );
        assert_eq!(eleventh.outcome, Err(SignInRefused::Locked(3600)));
    }

    #[test]
    fn an_email_code_signs_in_once_and_a_reset_code_asks_for_a_new_password() {
        let policy = LockoutPolicy::default();
        let attempt = identified(0);
        // No code prepared yet.
        let early = attempt.attempt_code(
            Strategy::EmailCode,
            "123456",
            creds(None, Lockout::default()),
            policy,
            1,
        );
        assert_eq!(early.outcome, Err(SignInRefused::StrategyNotAvailable));

        let (prepared, code) = attempt
            .prepare_code(Strategy::EmailCode, "idn_1", 1)
            .unwrap();
        let step = prepared.attempt_code(
            Strategy::EmailCode,
            &code,
            creds(None, Lockout::default()),
            policy,
            2,
        );
        assert_eq!(step.outcome, Ok(SignInStatus::Complete));
        // The same code again: spent.
        let again = step.attempt.attempt_code(
            Strategy::EmailCode,
            &code,
            creds(None, Lockout::default()),
            policy,
            3,
        );
        assert_eq!(again.outcome, Err(SignInRefused::Code(CodeRefused::Failed)));
        assert_eq!(again.lockout.failures, 0, "a spent code is not a guess");

        let (prepared, code) = attempt
            .prepare_code(Strategy::ResetPasswordEmailCode, "idn_1", 1)
            .unwrap();
        let wrong = prepared.attempt_code(
            Strategy::ResetPasswordEmailCode,
            if code == "000000" { "000001" } else { "000000" },
            creds(None, Lockout::default()),
            policy,
            2,
        );
        assert_eq!(
            wrong.outcome,
            Err(SignInRefused::Code(CodeRefused::Incorrect { remaining: 4 }))
        );
        assert_eq!(wrong.lockout.failures, 1);
        let reset = wrong.attempt.attempt_code(
            Strategy::ResetPasswordEmailCode,
            &code,
            creds(None, wrong.lockout),
            policy,
            3,
        );
        assert_eq!(reset.outcome, Ok(SignInStatus::NeedsNewPassword));
        assert_eq!(reset.attempt.status, SignInStatus::NeedsNewPassword);
        assert!(reset.attempt.set_new_password(4).is_ok());
    }

    #[test]
    fn an_expired_sign_in_takes_no_step() {
        let attempt = identified(0);
        assert_eq!(
            attempt
                .prepare_code(Strategy::EmailCode, "idn_1", SIGN_IN_LIFETIME_MS)
                .map(|_| ()),
            Err(SignInRefused::WrongStatus)
        );
    }
}
