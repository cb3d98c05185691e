//! Sign-ins and sign-ups in progress, as the Frontend API shows them (`Client.SignIn`,
//! `Client.SignUp`): in an answer's `response`, and as the client's `sign_in`/`sign_up`.
//! Never a password, a digest or a code; an email address the caller did not type is
//! shown masked (`safe_identifier`).

use serde::Serialize;
use serde_json::value::RawValue;

use super::{Null, NULL};
use crate::clock::Millis;
use crate::domain::one_time_code::{CodeStatus, OneTimeCode};
use crate::domain::sign_in_attempt::{SignInAttempt, SignInStatus, Strategy};
use crate::domain::sign_up::{SignUpAttempt, SignUpRequirements, SignUpStatus};
use crate::domain::User;

/// What an instance offers at sign-in (from configuration), which the factors list shows.
#[derive(Clone, Copy, Debug)]
pub struct Offered {
    pub password: bool,
    /// Email codes, for sign-in and for a reset: on, and a way to deliver them.
    pub email_code: bool,
    pub username: bool,
}

/// The client's flows in progress, rendered (`null` when none).
#[derive(Default)]
pub struct ClientFlows {
    pub sign_in: Option<Box<RawValue>>,
    pub sign_up: Option<Box<RawValue>>,
}

pub fn strategy_name(s: Strategy) -> &'static str {
    match s {
        Strategy::Password => "password",
        Strategy::EmailCode => "email_code",
        Strategy::ResetPasswordEmailCode => "reset_password_email_code",
    }
}

#[derive(Serialize)]
struct Factor<'a> {
    strategy: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    safe_identifier: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    email_address_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    primary: Option<bool>,
}

/// A code verification (`Stubs.Verification.OTP`), or a password one. `strategy` is
/// `null` until a code was sent: `@clerk/ui` takes an `email_code` strategy for "a code is
/// on its way" and would not ask for one.
#[derive(Serialize)]
struct Verification {
    object: &'static str,
    status: &'static str,
    strategy: Option<&'static str>,
    attempts: Option<u32>,
    expire_at: Option<Millis>,
}

fn code_verification(strategy: &'static str, code: &OneTimeCode, now: Millis) -> Verification {
    let status = match code.status {
        CodeStatus::Verified => "verified",
        CodeStatus::Failed => "failed",
        CodeStatus::Unverified if now >= code.expires_at => "expired",
        CodeStatus::Unverified => "unverified",
    };
    Verification {
        object: "verification_otp",
        status,
        strategy: Some(strategy),
        attempts: Some(code.attempts),
        expire_at: Some(code.expires_at),
    }
}

#[derive(Serialize)]
struct UserData<'a> {
    first_name: Option<&'a str>,
    last_name: Option<&'a str>,
    image_url: Option<&'a str>,
    has_image: bool,
}

#[derive(Serialize)]
struct SignInJson<'a> {
    object: &'static str,
    id: &'a str,
    status: &'static str,
    supported_identifiers: Vec<&'static str>,
    supported_first_factors: Option<Vec<Factor<'a>>>,
    supported_second_factors: Null,
    first_factor_verification: Option<Verification>,
    second_factor_verification: Null,
    identifier: Option<&'a str>,
    user_data: Option<UserData<'a>>,
    created_session_id: Option<&'a str>,
    abandon_at: Millis,
}

/// `a***@example.com`: enough to recognise one's own address, not to learn another's.
fn masked(address: &str) -> String {
    match address.split_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}***@{domain}")
        }
        None => "***".to_string(),
    }
}

/// A sign-in attempt; `user` is the identified user (if any, as read with it).
pub fn sign_in(
    attempt: &SignInAttempt,
    user: Option<&User>,
    offered: Offered,
    now: Millis,
) -> Box<RawValue> {
    let status = match attempt.status {
        SignInStatus::NeedsIdentifier => "needs_identifier",
        SignInStatus::NeedsFirstFactor => "needs_first_factor",
        SignInStatus::NeedsNewPassword => "needs_new_password",
        SignInStatus::Complete => "complete",
    };
    let mut identifiers = vec!["email_address"];
    if offered.username {
        identifiers.push("username");
    }
    let factors = user.map(|u| factors(attempt, u, offered));
    let verification = match (&attempt.prepared, attempt.verified_by) {
        (Some(p), _) => Some(code_verification(strategy_name(p.strategy), &p.code, now)),
        (None, Some(Strategy::Password)) => Some(Verification {
            object: "verification_password",
            status: "verified",
            strategy: Some("password"),
            attempts: None,
            expire_at: None,
        }),
        _ => None,
    };
    super::rendered(&SignInJson {
        object: "sign_in_attempt",
        id: &attempt.id,
        status,
        supported_identifiers: identifiers,
        supported_first_factors: factors,
        supported_second_factors: NULL,
        first_factor_verification: verification,
        second_factor_verification: NULL,
        identifier: attempt.identifier.as_deref(),
        user_data: user.map(|u| UserData {
            first_name: u.first_name.as_deref(),
            last_name: u.last_name.as_deref(),
            image_url: u.image_url.as_deref(),
            has_image: u.image_url.is_some(),
        }),
        created_session_id: attempt.created_session_id.as_deref(),
        abandon_at: attempt.expires_at,
    })
}

/// The first factors the identified user may use: the password if they have one, and a
/// code to each email address (the primary first), to sign in or to reset the password.
fn factors<'a>(attempt: &SignInAttempt, user: &'a User, offered: Offered) -> Vec<Factor<'a>> {
    let typed = attempt.identifier.as_deref().unwrap_or_default();
    let mut out = Vec::new();
    if offered.password && user.password.is_some() {
        out.push(Factor {
            strategy: "password",
            safe_identifier: None,
            email_address_id: None,
            primary: None,
        });
    }
    if !offered.email_code {
        return out;
    }
    let mut emails: Vec<_> = user.email_addresses.iter().collect();
    emails.sort_by_key(|e| Some(&e.id) != user.primary_email_address_id.as_ref());
    for strategy in ["email_code", "reset_password_email_code"] {
        for e in &emails {
            let shown = if e.email_address.eq_ignore_ascii_case(typed.trim()) {
                e.email_address.clone()
            } else {
                masked(&e.email_address)
            };
            out.push(Factor {
                strategy,
                safe_identifier: Some(shown),
                email_address_id: Some(&e.id),
                primary: Some(Some(&e.id) == user.primary_email_address_id.as_ref()),
            });
        }
    }
    out
}

#[derive(Serialize)]
struct EmailVerification {
    #[serde(flatten)]
    verification: Verification,
    next_action: &'static str,
    supported_strategies: [&'static str; 1],
}

#[derive(Serialize)]
struct SignUpVerifications {
    email_address: Option<EmailVerification>,
    phone_number: Null,
    web3_wallet: Null,
    external_account: Null,
}

#[derive(Serialize)]
struct SignUpJson<'a> {
    object: &'static str,
    id: &'a str,
    status: &'static str,
    required_fields: Vec<&'static str>,
    optional_fields: Vec<&'static str>,
    missing_fields: Vec<&'static str>,
    unverified_fields: Vec<&'static str>,
    verifications: SignUpVerifications,
    username: Option<&'a str>,
    email_address: Option<&'a str>,
    phone_number: Null,
    web3_wallet: Null,
    password_enabled: bool,
    first_name: Option<&'a str>,
    last_name: Option<&'a str>,
    unsafe_metadata: serde_json::Map<String, serde_json::Value>,
    public_metadata: serde_json::Map<String, serde_json::Value>,
    custom_action: bool,
    external_id: Null,
    created_session_id: Option<&'a str>,
    created_user_id: Option<&'a str>,
    abandon_at: Millis,
    legal_accepted_at: Null,
}

/// A sign-up attempt, against the instance's requirements.
pub fn sign_up(attempt: &SignUpAttempt, req: &SignUpRequirements, now: Millis) -> Box<RawValue> {
    let verify_email = req.verify_email;
    let mut required = vec!["email_address"];
    let mut optional = Vec::new();
    for (field, on) in [
        ("password", req.password),
        ("first_name", req.names),
        ("last_name", req.names),
        ("username", req.username),
    ] {
        if on {
            required.push(field);
        } else if field != "password" && field != "username" {
            optional.push(field);
        }
    }
    let email = attempt.email_code.as_ref().map(|code| {
        let verification = code_verification("email_code", code, now);
        let next_action = match verification.status {
            "verified" => "",
            _ => "needs_attempt",
        };
        EmailVerification {
            verification,
            next_action,
            supported_strategies: ["email_code"],
        }
    });
    let email = email.or_else(|| {
        (verify_email && attempt.email_address.is_some()).then_some(EmailVerification {
            verification: Verification {
                object: "verification_otp",
                status: "unverified",
                strategy: None,
                attempts: None,
                expire_at: None,
            },
            next_action: "needs_prepare",
            supported_strategies: ["email_code"],
        })
    });
    super::rendered(&SignUpJson {
        object: "sign_up_attempt",
        id: &attempt.id,
        status: match attempt.status {
            SignUpStatus::MissingRequirements => "missing_requirements",
            SignUpStatus::Complete => "complete",
        },
        required_fields: required,
        optional_fields: optional,
        missing_fields: attempt.missing_fields(req),
        unverified_fields: attempt.unverified_fields(req),
        verifications: SignUpVerifications {
            email_address: email,
            phone_number: NULL,
            web3_wallet: NULL,
            external_account: NULL,
        },
        username: attempt.username.as_deref(),
        email_address: attempt.email_address.as_deref(),
        phone_number: NULL,
        web3_wallet: NULL,
        password_enabled: attempt.password_digest.is_some(),
        first_name: attempt.first_name.as_deref(),
        last_name: attempt.last_name.as_deref(),
        unsafe_metadata: Default::default(),
        public_metadata: Default::default(),
        custom_action: false,
        external_id: NULL,
        created_session_id: attempt.created_session_id.as_deref(),
        created_user_id: attempt.created_user_id.as_deref(),
        abandon_at: attempt.expires_at,
        legal_accepted_at: NULL,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn another_address_is_masked() {
        assert_eq!(masked("ada@example.com"), "a***@example.com");
        assert_eq!(masked("nonsense"), "***");
    }
}
