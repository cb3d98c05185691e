//! Session statuses and the one transition table both stores obey.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Lifetimes;
use crate::clock::Millis;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionStatus {
    Active,
    /// Reserved: signed in with open session tasks. Nothing creates it yet.
    Pending,
    Ended,
    Removed,
    Revoked,
    Expired,
    Abandoned,
}

impl SessionStatus {
    pub const ALL: [SessionStatus; 7] = [
        Self::Active,
        Self::Pending,
        Self::Ended,
        Self::Removed,
        Self::Revoked,
        Self::Expired,
        Self::Abandoned,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Pending => "pending",
            Self::Ended => "ended",
            Self::Removed => "removed",
            Self::Revoked => "revoked",
            Self::Expired => "expired",
            Self::Abandoned => "abandoned",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// Signed in, as clerk-js counts it.
    pub fn is_signed_in(self) -> bool {
        matches!(self, Self::Active | Self::Pending)
    }

    /// The transition table. `Ok(to)` is the status after `action`; `Err` is refused.
    pub fn after(self, action: SessionAction) -> Result<SessionStatus, TransitionError> {
        use SessionAction as A;
        use SessionStatus as S;
        match (self, action) {
            (S::Active | S::Pending, A::Touch | A::MintToken) => Ok(self),
            (S::Active | S::Pending, A::End) => Ok(S::Ended),
            (S::Active | S::Pending, A::Revoke) => Ok(S::Revoked),
            (S::Removed, A::Remove) => Err(TransitionError::NotAllowed { action, from: self }),
            (_, A::Remove) => Ok(S::Removed),
            (_, A::MintToken) => Err(TransitionError::SignedOut),
            (_, A::Touch | A::End | A::Revoke) => {
                Err(TransitionError::NotAllowed { action, from: self })
            }
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionAction {
    Touch,
    End,
    Remove,
    Revoke,
    MintToken,
}

impl SessionAction {
    pub const ALL: [SessionAction; 5] = [
        Self::Touch,
        Self::End,
        Self::Remove,
        Self::Revoke,
        Self::MintToken,
    ];

    pub fn verb(self) -> &'static str {
        match self {
            Self::Touch => "touch",
            Self::End => "end",
            Self::Remove => "remove",
            Self::Revoke => "revoke",
            Self::MintToken => "create a token for",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransitionError {
    /// The action does not apply to a session in this status (400 `invalid_action_for_session`).
    NotAllowed {
        action: SessionAction,
        from: SessionStatus,
    },
    /// Tokens are only minted for signed-in sessions (401 `signed_out`).
    SignedOut,
}

/// A session as stored. Its mutable parts (status, activity) are changed by field updates
/// with their own conditions ([`crate::store::Write::SessionStatus`],
/// [`crate::store::Write::SessionActivity`]), never by rewriting the whole record, so
/// racing requests on one session do not conflict with each other.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Session {
    pub id: String,
    pub client_id: String,
    pub user_id: String,
    /// The status as last written; read it through [`Session::status_at`].
    pub status: SessionStatus,
    /// The last recorded activity: exact to within the activity interval
    /// ([`Lifetimes::activity_interval_ms`]).
    pub last_active_at: Millis,
    pub expire_at: Millis,
    pub abandon_at: Millis,
    pub last_active_organization_id: Option<String>,
    /// Impersonation actor, when there is one.
    pub actor: Option<Value>,
    /// Where and on what the session was last used: recorded at sign-in and again with
    /// its activity (at most once per activity interval). Absent in sessions stored
    /// before activity was recorded.
    #[serde(default)]
    pub latest_activity: Option<SessionActivity>,
    pub created_at: Millis,
    pub updated_at: Millis,
}

/// A session's device and place as last seen (Clerk's `SessionActivity`): from the
/// request's User-Agent, and its address and place (`http::activity`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionActivity {
    pub id: String,
    pub browser_name: Option<String>,
    pub browser_version: Option<String>,
    pub device_type: Option<String>,
    pub is_mobile: bool,
    pub ip_address: Option<String>,
    pub city: Option<String>,
    pub country: Option<String>,
}

impl Session {
    pub fn start(client_id: &str, user_id: &str, now: Millis, lifetimes: Lifetimes) -> Self {
        Self {
            id: crate::ids::new_id("sess"),
            client_id: client_id.to_string(),
            user_id: user_id.to_string(),
            status: SessionStatus::Active,
            last_active_at: now,
            expire_at: now + lifetimes.session_max_ms,
            abandon_at: now + lifetimes.inactivity_ms,
            last_active_organization_id: None,
            actor: None,
            latest_activity: None,
            created_at: now,
            updated_at: now,
        }
    }

    /// The status every reader sees: a signed-in session past its maximum lifetime is
    /// `expired`, past its inactivity timeout `abandoned`, whether or not a store rewrote it.
    pub fn status_at(&self, now: Millis) -> SessionStatus {
        if !self.status.is_signed_in() {
            self.status
        } else if now >= self.expire_at {
            SessionStatus::Expired
        } else if now >= self.abandon_at {
            SessionStatus::Abandoned
        } else {
            self.status
        }
    }

    /// Whether `action` is allowed at `now`, and the status it leads to.
    pub fn check(
        &self,
        action: SessionAction,
        now: Millis,
    ) -> Result<SessionStatus, TransitionError> {
        self.status_at(now).after(action)
    }

    /// Whether activity at `now` should be recorded: the session is signed in and its
    /// recorded activity is at least one activity interval old. Recording less often is
    /// what keeps a token refresh free of writes.
    pub fn activity_due(&self, now: Millis, lifetimes: Lifetimes) -> bool {
        self.status_at(now).is_signed_in()
            && now - self.last_active_at >= lifetimes.activity_interval_ms
    }

    /// The session after activity recorded at `now`: the inactivity timeout slides.
    /// The session with activity recorded at `now`, and where it was seen when known.
    pub fn with_activity(
        &self,
        now: Millis,
        lifetimes: Lifetimes,
        seen: Option<&SessionActivity>,
    ) -> Session {
        let mut next = self.clone();
        next.last_active_at = now;
        next.abandon_at = now + lifetimes.inactivity_ms;
        next.updated_at = now;
        if let Some(seen) = seen {
            next.latest_activity = Some(seen.clone());
        }
        next
    }

    /// The session with its stored status moved to `to` at `now`.
    pub fn with_status(&self, to: SessionStatus, now: Millis) -> Session {
        let mut next = self.clone();
        next.status = to;
        next.updated_at = now;
        next
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use SessionAction as A;
    use SessionStatus as S;

    const LIFE: Lifetimes = Lifetimes {
        session_max_ms: 7_000,
        inactivity_ms: 3_000,
        activity_interval_ms: 500,
    };

    /// Every cell of the transition table, as documented in docs/sessions.md.
    #[test]
    fn transition_table_cell_by_cell() {
        let signed_out = Err(TransitionError::SignedOut);
        let no = |action, from| Err(TransitionError::NotAllowed { action, from });
        let table: [(S, [Result<S, TransitionError>; 5]); 7] = [
            //           touch              end                remove            revoke               mint
            (
                S::Active,
                [
                    Ok(S::Active),
                    Ok(S::Ended),
                    Ok(S::Removed),
                    Ok(S::Revoked),
                    Ok(S::Active),
                ],
            ),
            (
                S::Pending,
                [
                    Ok(S::Pending),
                    Ok(S::Ended),
                    Ok(S::Removed),
                    Ok(S::Revoked),
                    Ok(S::Pending),
                ],
            ),
            (
                S::Ended,
                [
                    no(A::Touch, S::Ended),
                    no(A::End, S::Ended),
                    Ok(S::Removed),
                    no(A::Revoke, S::Ended),
                    signed_out,
                ],
            ),
            (
                S::Removed,
                [
                    no(A::Touch, S::Removed),
                    no(A::End, S::Removed),
                    no(A::Remove, S::Removed),
                    no(A::Revoke, S::Removed),
                    signed_out,
                ],
            ),
            (
                S::Revoked,
                [
                    no(A::Touch, S::Revoked),
                    no(A::End, S::Revoked),
                    Ok(S::Removed),
                    no(A::Revoke, S::Revoked),
                    signed_out,
                ],
            ),
            (
                S::Expired,
                [
                    no(A::Touch, S::Expired),
                    no(A::End, S::Expired),
                    Ok(S::Removed),
                    no(A::Revoke, S::Expired),
                    signed_out,
                ],
            ),
            (
                S::Abandoned,
                [
                    no(A::Touch, S::Abandoned),
                    no(A::End, S::Abandoned),
                    Ok(S::Removed),
                    no(A::Revoke, S::Abandoned),
                    signed_out,
                ],
            ),
        ];
        for (from, row) in table {
            for (action, expected) in A::ALL.into_iter().zip(row) {
                assert_eq!(from.after(action), expected, "{from:?} --{action:?}-->");
            }
        }
    }

    #[test]
    fn expiry_and_abandonment_are_read_side() {
        let s = Session::start("client_a", "user_a", 0, LIFE);
        assert_eq!(s.status_at(2_999), S::Active);
        assert_eq!(s.status_at(3_000), S::Abandoned);
        let touched = s.with_activity(2_000, LIFE, None);
        assert_eq!(touched.abandon_at, 5_000);
        assert_eq!(touched.status_at(4_000), S::Active);
        assert_eq!(touched.status_at(7_000), S::Expired);
        // Ending wins over expiry for a stored terminal status.
        let ended = s.with_status(s.check(A::End, 1).unwrap(), 1);
        assert_eq!(ended.status_at(10_000), S::Ended);
        assert_eq!(
            s.check(A::Touch, 3_000),
            Err(TransitionError::NotAllowed {
                action: A::Touch,
                from: S::Abandoned
            })
        );
        assert_eq!(
            s.check(A::MintToken, 7_000),
            Err(TransitionError::SignedOut)
        );
        assert_eq!(s.check(A::Remove, 8_000), Ok(S::Removed));
    }

    #[test]
    fn activity_is_recorded_once_per_interval_while_signed_in() {
        let s = Session::start("client_a", "user_a", 0, LIFE);
        assert!(!s.activity_due(499, LIFE));
        assert!(s.activity_due(500, LIFE));
        assert!(!s.with_activity(500, LIFE, None).activity_due(999, LIFE));
        // Abandoned (3 000) or ended: nothing to record.
        assert!(!s.activity_due(3_000, LIFE));
        assert!(!s.with_status(S::Ended, 1).activity_due(600, LIFE));
    }
}
