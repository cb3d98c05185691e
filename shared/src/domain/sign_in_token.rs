//! Sign-in tokens: the one-time tickets the Backend API makes and a sign-in redeems.

use serde::{Deserialize, Serialize};

use crate::clock::Millis;

/// Tickets are stored only as this hash (SHA-256, hex).
pub fn ticket_hash(ticket: &str) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, ticket.as_bytes());
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
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
    /// Where an accepted ticket signed its user in (tickets accepted by earlier versions
    /// have none): the caller's own retry of that sign-in is answered what it made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redeemed: Option<Redemption>,
}

/// The client and session a ticket's sign-in made.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Redemption {
    pub client_id: String,
    pub session_id: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SignInTokenStatus {
    Pending,
    Accepted,
    Revoked,
}

impl SignInToken {
    /// The ticket as redeemed at `now` by a sign-in that made `session_id` on `client_id`:
    /// accepted, never to sign anyone in again.
    pub fn accepted(&self, now: Millis, client_id: &str, session_id: &str) -> Self {
        Self {
            status: SignInTokenStatus::Accepted,
            updated_at: now,
            version: self.version + 1,
            redeemed: Some(Redemption {
                client_id: client_id.to_string(),
                session_id: session_id.to_string(),
            }),
            ..self.clone()
        }
    }

    /// The sign-in this ticket made, if `client_id` made it at most `window` ago: a caller
    /// retrying its own sign-in (its answer was lost) on that client.
    pub fn redeemed_by(&self, client_id: &str, now: Millis, window: Millis) -> Option<&Redemption> {
        self.redeemed.as_ref().filter(|r| {
            self.status == SignInTokenStatus::Accepted
                && r.client_id == client_id
                && now - self.updated_at <= window
        })
    }

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
