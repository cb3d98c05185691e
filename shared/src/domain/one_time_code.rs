//! One-time codes: the six digits an email carries to verify an address, sign in or
//! reset a password. A code is kept only as a salted hash, lives ten minutes, is spent by
//! its first correct attempt, and fails for good after a few wrong ones. It belongs to one
//! sign-in or sign-up, itself bound to one client, so no other client can attempt it.

use serde::{Deserialize, Serialize};

use crate::clock::Millis;
use crate::ids::random_bytes;

/// How long a code may be attempted.
pub const CODE_LIFETIME_MS: Millis = 10 * 60 * 1000;
/// Wrong attempts a code takes; the next fails it (`verification_failed`) and a new code
/// must be prepared.
pub const MAX_CODE_ATTEMPTS: u32 = 5;

/// A code's state (Clerk's verification statuses).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CodeStatus {
    Unverified,
    Verified,
    /// Too many wrong attempts.
    Failed,
}

/// A code sent, as kept: its salted hash, never the code.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OneTimeCode {
    /// SHA-256 of the salt followed by the code, hex.
    hash: String,
    salt: String,
    pub expires_at: Millis,
    pub attempts: u32,
    pub status: CodeStatus,
}

/// Why an attempt did not verify (each is one of Clerk's error codes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CodeRefused {
    /// `form_code_incorrect`; `remaining` attempts are left.
    #[error("the code is incorrect")]
    Incorrect { remaining: u32 },
    /// `verification_expired`
    #[error("the code has expired")]
    Expired,
    /// `verification_failed`: too many wrong attempts, or spent already.
    #[error("the code can no longer be used")]
    Failed,
}

impl OneTimeCode {
    /// A new code at `now`: what to keep, and the six digits to send (once).
    pub fn new(now: Millis) -> (Self, String) {
        // Uniform over 000000..999999: 2^32 is not a multiple of 10^6, so redraw the few
        // values past the last whole multiple.
        let code = loop {
            let n = u32::from_be_bytes(random_bytes::<4>());
            if n < u32::MAX - u32::MAX % 1_000_000 {
                break format!("{:06}", n % 1_000_000);
            }
        };
        let salt = hex(&random_bytes::<16>());
        let kept = Self {
            hash: hash(&salt, &code),
            salt,
            expires_at: now + CODE_LIFETIME_MS,
            attempts: 0,
            status: CodeStatus::Unverified,
        };
        (kept, code)
    }

    /// The given code, kept as any code is, from `now`: for the fixtures' fixed code only
    /// (`crate::fixtures`); every code a flow sends is drawn by [`OneTimeCode::new`].
    pub fn fixed(code: &str, now: Millis) -> Self {
        let salt = hex(&random_bytes::<16>());
        Self {
            hash: hash(&salt, code),
            salt,
            expires_at: now + CODE_LIFETIME_MS,
            attempts: 0,
            status: CodeStatus::Unverified,
        }
    }

    /// The code after an attempt at `now`, and whether it verified. The attempt is counted
    /// whatever it finds, so the caller stores the returned code either way.
    pub fn attempt(&self, code: &str, now: Millis) -> (Self, Result<(), CodeRefused>) {
        let mut next = self.clone();
        if self.status != CodeStatus::Unverified {
            return (next, Err(CodeRefused::Failed));
        }
        if now >= self.expires_at {
            return (next, Err(CodeRefused::Expired));
        }
        next.attempts += 1;
        let given = hash(&self.salt, code.trim());
        if aws_lc_rs::constant_time::verify_slices_are_equal(given.as_bytes(), self.hash.as_bytes())
            .is_ok()
        {
            next.status = CodeStatus::Verified;
            return (next, Ok(()));
        }
        if next.attempts >= MAX_CODE_ATTEMPTS {
            next.status = CodeStatus::Failed;
            return (next, Err(CodeRefused::Failed));
        }
        let remaining = MAX_CODE_ATTEMPTS - next.attempts;
        (next, Err(CodeRefused::Incorrect { remaining }))
    }
}

fn hash(salt: &str, code: &str) -> String {
    let mut context = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    context.update(salt.as_bytes());
    context.update(code.as_bytes());
    hex(context.finish().as_ref())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_code_is_six_digits_kept_hashed_and_spent_once() {
        let (kept, code) = OneTimeCode::new(1_000);
        assert_eq!(code.len(), 6);
        assert!(code.bytes().all(|b| b.is_ascii_digit()));
        let stored = serde_json::to_string(&kept).unwrap();
        assert!(!stored.contains(&code), "the code itself is never kept");
        let (kept, verified) = kept.attempt(&code, 2_000);
        assert_eq!(verified, Ok(()));
        assert_eq!(kept.status, CodeStatus::Verified);
        // Spent: the same code again fails.
        let (_, again) = kept.attempt(&code, 3_000);
        assert_eq!(again, Err(CodeRefused::Failed));
    }

    #[test]
    fn a_wrong_code_counts_and_the_fifth_fails_it_for_good() {
        let (mut kept, code) = OneTimeCode::new(0);
        let wrong = if code == "000000" { "000001" } else { "000000" };
        for remaining in (1..MAX_CODE_ATTEMPTS).rev() {
            let (next, result) = kept.attempt(wrong, 1);
            assert_eq!(result, Err(CodeRefused::Incorrect { remaining }));
            kept = next;
        }
        let (kept, result) = kept.attempt(wrong, 1);
        assert_eq!(result, Err(CodeRefused::Failed));
        // Even the right code is refused now.
        assert_eq!(kept.attempt(&code, 1).1, Err(CodeRefused::Failed));
    }

    #[test]
    fn a_code_expires_after_ten_minutes() {
        let (kept, code) = OneTimeCode::new(0);
        assert_eq!(kept.attempt(&code, CODE_LIFETIME_MS - 1).1, Ok(()));
        assert_eq!(
            kept.attempt(&code, CODE_LIFETIME_MS).1,
            Err(CodeRefused::Expired)
        );
    }
}
