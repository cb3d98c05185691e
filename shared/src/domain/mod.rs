//! Plain types and rules, no I/O.

pub mod jwt_template;
pub mod session;
pub mod user;

pub use jwt_template::{JwtTemplate, SigningAlgorithm, SigningKey, RESERVED_CLAIMS};
pub use session::{Session, SessionAction, SessionStatus, TransitionError};
pub use user::{EmailAddress, NewUser, PhoneNumber, User};

use serde::{Deserialize, Serialize};

use crate::clock::Millis;

/// A browser or app install, identified by its client token.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Client {
    pub id: String,
    /// Anti-fixation value inside the client token; rotated on every sign-in.
    pub rotating_token: String,
    pub last_active_session_id: Option<String>,
    pub created_at: Millis,
    pub updated_at: Millis,
    /// When the client token (and its cookie) stops working.
    pub expires_at: Millis,
    /// Set while the client has never signed in: it is gone after this instant, which
    /// each use pushes forward. `None` once signed in (then only `expires_at` counts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anonymous_until: Option<Millis>,
    /// Optimistic-concurrency version: every write names the version it read.
    pub version: u64,
}

/// A client with every session ever created on it (removed ones included), oldest first.
#[derive(Clone, Debug)]
pub struct ClientState {
    pub client: Client,
    pub sessions: Vec<Session>,
}

impl Client {
    /// Whether a never-signed-in client has outlived its anonymous lifetime.
    pub fn anonymous_expired(&self, now: Millis) -> bool {
        self.anonymous_until.is_some_and(|t| now >= t)
    }

    /// When the store may forget the record.
    pub fn retain_until(&self) -> Millis {
        self.anonymous_until.unwrap_or(self.expires_at)
    }
}

impl ClientState {
    pub fn session(&self, id: &str) -> Option<&Session> {
        self.sessions.iter().find(|s| s.id == id)
    }

    /// The client's last active session as readers see it: only while that session is
    /// signed in. Ending, removing or revoking a session therefore needs no write to its
    /// client, and a touch that races an end cannot leave the client pointing at a
    /// signed-out session.
    pub fn last_active_session_id(&self, now: Millis) -> Option<&str> {
        let id = self.client.last_active_session_id.as_deref()?;
        self.session(id)
            .filter(|s| s.status_at(now).is_signed_in())
            .map(|s| s.id.as_str())
    }
}

/// A one-time sign-in ticket made by the Backend API. Only a hash of the ticket is kept.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SignInToken {
    pub id: String,
    pub user_id: String,
    /// SHA-256 of the ticket, hex; the ticket itself is shown once and never stored.
    pub ticket_hash: String,
    pub status: SignInTokenStatus,
    pub created_at: Millis,
    pub updated_at: Millis,
    pub expires_at: Millis,
    pub version: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SignInTokenStatus {
    Pending,
    Accepted,
    Revoked,
}

impl SignInToken {
    /// The status a reader sees: a pending ticket past its expiry reports `expired`.
    pub fn wire_status(&self, now: Millis) -> &'static str {
        match self.status {
            SignInTokenStatus::Pending if now >= self.expires_at => "expired",
            SignInTokenStatus::Pending => "pending",
            SignInTokenStatus::Accepted => "accepted",
            SignInTokenStatus::Revoked => "revoked",
        }
    }
}

/// Lifetimes that shape a session, from configuration.
#[derive(Clone, Copy, Debug)]
pub struct Lifetimes {
    pub session_max_ms: Millis,
    pub inactivity_ms: Millis,
    /// How stale the recorded activity may get before a request records it again.
    pub activity_interval_ms: Millis,
}
