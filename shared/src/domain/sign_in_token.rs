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
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SignInTokenStatus {
    Pending,
    Accepted,
    Revoked,
}

impl SignInToken {
    /// The ticket as redeemed at `now`: accepted, never to sign anyone in again.
    pub fn accepted(&self, now: Millis) -> Self {
        Self {
            status: SignInTokenStatus::Accepted,
            updated_at: now,
            version: self.version + 1,
            ..self.clone()
        }
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
