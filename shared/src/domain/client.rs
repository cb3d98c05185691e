//! Clients: a browser or app install, and the sessions created on it.

use serde::{Deserialize, Serialize};

use super::sign_in_attempt::SignInAttempt;
use super::sign_up::SignUpAttempt;
use super::Session;
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
    /// The sign-in in progress on this client (Clerk's `client.sign_in`): one at a time, a
    /// new one replaces it, and it is gone once complete. Kept on the client so that no
    /// other client can read or carry it, and so that each step is one conditional write.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sign_in: Option<Box<SignInAttempt>>,
    /// The sign-up in progress (Clerk's `client.sign_up`), likewise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sign_up: Option<Box<SignUpAttempt>>,
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

    /// The client after signing in to `session_id` at `now` (the next version): a fresh
    /// rotating value, so a token planted before the sign-in stops working; the full
    /// client-token lifetime from now on; the new session as its last active one.
    pub fn signed_in(&self, session_id: &str, now: Millis) -> Self {
        Self {
            rotating_token: crate::ids::new_secret(),
            anonymous_until: None,
            last_active_session_id: Some(session_id.to_string()),
            updated_at: now,
            version: self.version + 1,
            ..self.clone()
        }
    }

    /// The client with `sign_in` as its sign-in in progress (the next version; a client
    /// not stored yet is at version 0 and is written as new).
    pub fn with_sign_in(&self, sign_in: Option<SignInAttempt>, now: Millis) -> Self {
        Self {
            sign_in: sign_in.map(Box::new),
            updated_at: now,
            version: self.version + 1,
            ..self.clone()
        }
    }

    /// The client with `sign_up` as its sign-up in progress (the next version).
    pub fn with_sign_up(&self, sign_up: Option<SignUpAttempt>, now: Millis) -> Self {
        Self {
            sign_up: sign_up.map(Box::new),
            updated_at: now,
            version: self.version + 1,
            ..self.clone()
        }
    }

    /// A never-signed-in client used at `now`: it lives until `until` (the next version).
    pub fn kept_anonymous_until(&self, until: Millis, now: Millis) -> Self {
        Self {
            anonymous_until: Some(until),
            updated_at: now,
            version: self.version + 1,
            ..self.clone()
        }
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

/// Clerk's single- and multi-session modes. A sign-in of a user already signed in on the
/// client is refused in both (`identifier_already_signed_in`, naming that session).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionsPerClient {
    /// One signed-in session per client: a sign-in beside it is refused (`session_exists`).
    Single,
    /// Several users at once (clerk-js's account switcher), at most `max` signed in.
    Multi { max: usize },
}

impl SessionsPerClient {
    /// The default cap of multi-session mode: more accounts than anyone switches between,
    /// few enough that a client's answer stays small.
    pub const DEFAULT_MAX: usize = 10;
    /// The largest cap that may be set: an answer shows every session of its client.
    pub const LARGEST_MAX: usize = 100;

    pub fn single(self) -> bool {
        self == SessionsPerClient::Single
    }
}

/// Why a sign-in may not add a session to a client.
#[derive(Debug, PartialEq, Eq)]
pub enum SignInRefused<'a> {
    /// The user has this session signed in on the client already: Clerk answers
    /// `identifier_already_signed_in`, and clerk-js makes that session active.
    AlreadySignedIn(&'a str),
    /// Single-session mode, and another user is signed in (`session_exists`).
    SessionExists,
    /// Multi-session mode, and the cap is reached.
    TooManySessions(usize),
}

impl ClientState {
    /// Whether `user_id` may sign in on this client at `now`: never twice, and within
    /// the mode's limit. Only signed-in sessions count; ended ones are history.
    pub fn may_sign_in(
        &self,
        user_id: &str,
        now: Millis,
        mode: SessionsPerClient,
    ) -> Result<(), SignInRefused<'_>> {
        let mut signed_in = self
            .sessions
            .iter()
            .filter(|s| s.status_at(now).is_signed_in());
        if let Some(mine) = signed_in.clone().find(|s| s.user_id == user_id) {
            return Err(SignInRefused::AlreadySignedIn(&mine.id));
        }
        match mode {
            SessionsPerClient::Single if signed_in.next().is_some() => {
                Err(SignInRefused::SessionExists)
            }
            SessionsPerClient::Multi { max } if signed_in.count() >= max => {
                Err(SignInRefused::TooManySessions(max))
            }
            _ => Ok(()),
        }
    }
}
