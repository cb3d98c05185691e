//! Account lockout: after too many failed password or code attempts a user is locked for
//! a while (Clerk's `user_locked`), whatever the client; the Backend API shows it
//! (`locked`, `lockout_expires_in_seconds`) and clears it (`POST /v1/users/{id}/unlock`).

use serde::{Deserialize, Serialize};

use crate::clock::Millis;

/// Clerk's defaults: ten failures lock the account for an hour.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LockoutPolicy {
    pub max_failures: u32,
    pub duration_ms: Millis,
}

impl Default for LockoutPolicy {
    fn default() -> Self {
        Self {
            max_failures: 10,
            duration_ms: 60 * 60 * 1000,
        }
    }
}

/// A user's failed attempts since their last success or unlock, kept on the user.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lockout {
    pub failures: u32,
    /// Set when `failures` reached the policy's maximum.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locked_until: Option<Millis>,
}

impl Lockout {
    /// No failure counted, no lock: what a user without a record of it has.
    pub fn is_clear(&self) -> bool {
        *self == Self::default()
    }

    /// Locked at `now`: no attempt is even checked (a locked user's correct password is
    /// refused too, so guessing gains nothing).
    pub fn is_locked(&self, now: Millis) -> bool {
        self.locked_until.is_some_and(|until| now < until)
    }

    /// Seconds until the lock ends (rounded up), for `lockout_expires_in_seconds`.
    pub fn expires_in_seconds(&self, now: Millis) -> Option<i64> {
        let until = self.locked_until.filter(|until| now < *until)?;
        Some((until - now + 999) / 1000)
    }

    /// After a failed attempt at `now`: one more failure, locked once there are enough. A
    /// lock that has run out starts the count again.
    pub fn failed(&self, now: Millis, policy: LockoutPolicy) -> Self {
        let failures = match self.locked_until {
            Some(until) if now >= until => 1,
            _ => self.failures.saturating_add(1),
        };
        let locked_until = if failures >= policy.max_failures {
            Some(now + policy.duration_ms)
        } else {
            None
        };
        Self {
            failures,
            locked_until,
        }
    }

    /// After a successful sign-in, or an unlock: no failures.
    pub fn cleared() -> Self {
        Self::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tenth_failure_locks_for_an_hour_and_the_lock_runs_out() {
        let policy = LockoutPolicy::default();
        let mut lockout = Lockout::default();
        for n in 1..10 {
            lockout = lockout.failed(n, policy);
            assert!(!lockout.is_locked(n), "after {n} failures");
        }
        lockout = lockout.failed(10, policy);
        assert!(lockout.is_locked(10));
        assert_eq!(lockout.expires_in_seconds(10), Some(3600));
        assert_eq!(lockout.expires_in_seconds(10 + 3_599_500), Some(1));
        let after = 10 + policy.duration_ms;
        assert!(!lockout.is_locked(after));
        assert_eq!(lockout.expires_in_seconds(after), None);
        // A failure after the lock ran out counts from one again.
        assert_eq!(lockout.failed(after, policy).failures, 1);
        assert_eq!(Lockout::cleared(), Lockout::default());
    }
}
