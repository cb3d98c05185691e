//! Plain types and rules, no I/O: one module per entity.

pub mod client;
pub mod identifier;
pub mod jwt_template;
pub mod lockout;
pub mod one_time_code;
pub mod password;
pub mod session;
pub mod sign_in_attempt;
pub mod sign_in_token;
pub mod sign_up;
pub mod user;

pub use client::{Client, ClientState, SessionsPerClient, SignInRefused};
pub use identifier::Identifier;
pub use jwt_template::{JwtTemplate, SigningAlgorithm, SigningKey, RESERVED_CLAIMS};
pub use session::{Session, SessionAction, SessionActivity, SessionStatus, TransitionError};
pub use sign_in_token::{ticket_hash, Redemption, SignInToken, SignInTokenStatus};
pub use user::{EmailAddress, NewUser, PhoneNumber, User};

use crate::clock::Millis;

/// Lifetimes that shape a session, from configuration.
#[derive(Clone, Copy, Debug)]
pub struct Lifetimes {
    pub session_max_ms: Millis,
    pub inactivity_ms: Millis,
    /// How stale the recorded activity may get before a request records it again.
    pub activity_interval_ms: Millis,
}
