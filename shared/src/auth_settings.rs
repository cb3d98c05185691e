//! What the instance offers for signing up and signing in, from configuration: the
//! environment document shows it (so Clerk's components render the right forms), and
//! the sign-in and sign-up flows enforce it. Everything is on by default.

use crate::domain::lockout::LockoutPolicy;
use crate::domain::password::PasswordRules;
use crate::domain::sign_up::SignUpRequirements;

/// A setting that cannot be used (`config` turns it into its `ConfigError::Invalid`).
#[derive(Debug, PartialEq, Eq)]
pub struct Invalid {
    pub name: &'static str,
    pub reason: String,
}

/// Who may sign up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignUpMode {
    /// Anyone, through `POST /v1/client/sign_ups`.
    Public,
    /// Nobody through the Frontend API: users are created through the Backend API.
    Restricted,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AuthSettings {
    /// Sign-in with a password (and a password asked at sign-up).
    pub password: bool,
    /// Sign-in with a code sent by email, and password reset by one.
    pub email_code: bool,
    /// Usernames: `off`, `on` (optional at sign-up, a sign-in identifier), `required`.
    pub username: bool,
    pub sign_up: SignUpMode,
    pub requirements: SignUpRequirements,
    pub lockout: LockoutPolicy,
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            password: true,
            email_code: true,
            username: false,
            sign_up: SignUpMode::Public,
            requirements: SignUpRequirements::default(),
            lockout: LockoutPolicy::default(),
        }
    }
}

fn flag(name: &'static str, value: Option<String>, default: bool) -> Result<bool, Invalid> {
    match value.as_deref().map(str::trim) {
        None | Some("") => Ok(default),
        Some("true" | "on" | "1") => Ok(true),
        Some("false" | "off" | "0") => Ok(false),
        Some(_) => Err(Invalid {
            name,
            reason: "expected true or false".into(),
        }),
    }
}

fn number<T: std::str::FromStr>(
    name: &'static str,
    value: Option<String>,
    default: T,
    valid: impl Fn(&T) -> bool,
    what: &str,
) -> Result<T, Invalid> {
    let Some(raw) = value.filter(|v| !v.trim().is_empty()) else {
        return Ok(default);
    };
    raw.trim()
        .parse::<T>()
        .ok()
        .filter(|v| valid(v))
        .ok_or_else(|| Invalid {
            name,
            reason: format!("expected {what}"),
        })
}

impl AuthSettings {
    pub fn from_lookup(get: &impl Fn(&str) -> Option<String>) -> Result<Self, Invalid> {
        let password = flag("SIGN_IN_PASSWORD", get("SIGN_IN_PASSWORD"), true)?;
        let email_code = flag("SIGN_IN_EMAIL_CODE", get("SIGN_IN_EMAIL_CODE"), true)?;
        let (username, username_required) = match get("USERNAMES").as_deref().map(str::trim) {
            None | Some("" | "off") => (false, false),
            Some("on") => (true, false),
            Some("required") => (true, true),
            Some(_) => {
                return Err(Invalid {
                    name: "USERNAMES",
                    reason: "expected off, on or required".into(),
                })
            }
        };
        let sign_up = match get("SIGN_UP_MODE").as_deref().map(str::trim) {
            None | Some("" | "public") => SignUpMode::Public,
            Some("restricted") => SignUpMode::Restricted,
            Some(_) => {
                return Err(Invalid {
                    name: "SIGN_UP_MODE",
                    reason: "expected public or restricted".into(),
                })
            }
        };
        let defaults = PasswordRules::default();
        let min_length = number(
            "PASSWORD_MIN_LENGTH",
            get("PASSWORD_MIN_LENGTH"),
            defaults.min_length,
            |n| (8..=defaults.max_length).contains(n),
            "8 to 72",
        )?;
        let min_strength = number(
            "PASSWORD_MIN_STRENGTH",
            get("PASSWORD_MIN_STRENGTH"),
            defaults.min_strength,
            |n| *n <= 4,
            "a zxcvbn score from 0 to 4",
        )?;
        let lockout = LockoutPolicy {
            max_failures: number(
                "LOCKOUT_MAX_ATTEMPTS",
                get("LOCKOUT_MAX_ATTEMPTS"),
                LockoutPolicy::default().max_failures,
                |n| (1..=1000).contains(n),
                "1 to 1000",
            )?,
            duration_ms: number(
                "LOCKOUT_DURATION_SECONDS",
                get("LOCKOUT_DURATION_SECONDS"),
                LockoutPolicy::default().duration_ms / 1000,
                |n| (1..=30 * 86_400).contains(n),
                "1 second to 30 days",
            )? * 1000,
        };
        Ok(Self {
            password,
            email_code,
            username,
            sign_up,
            requirements: SignUpRequirements {
                password,
                names: flag("SIGN_UP_REQUIRE_NAMES", get("SIGN_UP_REQUIRE_NAMES"), false)?,
                username: username_required,
                verify_email: flag("SIGN_UP_VERIFY_EMAIL", get("SIGN_UP_VERIFY_EMAIL"), true)?,
                password_rules: PasswordRules {
                    min_length,
                    min_strength,
                    ..defaults
                },
            },
            lockout,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn parse(pairs: &[(&str, &str)]) -> Result<AuthSettings, Invalid> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        AuthSettings::from_lookup(&|k| map.get(k).cloned())
    }

    #[test]
    fn everything_is_on_by_default_and_each_turns_off() {
        assert_eq!(parse(&[]).unwrap(), AuthSettings::default());
        let off = parse(&[
            ("SIGN_IN_PASSWORD", "false"),
            ("SIGN_IN_EMAIL_CODE", "off"),
            ("SIGN_UP_MODE", "restricted"),
            ("USERNAMES", "required"),
            ("LOCKOUT_MAX_ATTEMPTS", "5"),
            ("LOCKOUT_DURATION_SECONDS", "60"),
        ])
        .unwrap();
        assert!(!off.password && !off.email_code && !off.requirements.password);
        assert_eq!(off.sign_up, SignUpMode::Restricted);
        assert!(off.username && off.requirements.username);
        assert_eq!(off.lockout.max_failures, 5);
        assert_eq!(off.lockout.duration_ms, 60_000);
    }

    #[test]
    fn nonsense_is_refused() {
        for pair in [
            ("SIGN_IN_PASSWORD", "maybe"),
            ("USERNAMES", "sometimes"),
            ("PASSWORD_MIN_LENGTH", "4"),
            ("PASSWORD_MIN_STRENGTH", "5"),
            ("LOCKOUT_MAX_ATTEMPTS", "0"),
        ] {
            assert!(parse(&[pair]).is_err(), "{pair:?}");
        }
    }
}
