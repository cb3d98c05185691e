//! Session tokens: the short-lived RS256 JWTs that apps verify (Clerk's v2 claims).

use serde::Serialize;

use crate::clock::Millis;
use crate::domain::{Session, SessionStatus};

/// Clerk's session-token claims, version 2.
#[derive(Debug, Serialize)]
pub struct SessionClaims<'a> {
    /// The request's Origin; left out when the request had none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub azp: Option<&'a str>,
    pub exp: i64,
    pub iat: i64,
    pub iss: &'a str,
    pub nbf: i64,
    pub sid: &'a str,
    pub sub: &'a str,
    pub v: u8,
    /// Minutes since the first and second factor were verified; -1 = never.
    pub fva: [i64; 2],
    pub sts: &'a str,
    pub jti: String,
}

/// Clerk backdates `nbf` by its default allowed clock skew.
pub const NOT_BEFORE_SKEW_SECS: i64 = 5;

impl<'a> SessionClaims<'a> {
    pub fn new(
        session: &'a Session,
        issuer: &'a str,
        origin: Option<&'a str>,
        now: Millis,
        lifetime_secs: i64,
    ) -> Self {
        let iat = now / 1000;
        let status = session.status_at(now);
        Self {
            azp: origin,
            exp: iat + lifetime_secs,
            iat,
            iss: issuer,
            nbf: iat - NOT_BEFORE_SKEW_SECS,
            sid: &session.id,
            sub: &session.user_id,
            v: 2,
            // Sign-in (a ticket) verifies the first factor when the session starts.
            fva: [((now - session.created_at) / 60_000).max(0), -1],
            sts: if status == SessionStatus::Pending {
                "pending"
            } else {
                "active"
            },
            jti: crate::ids::new_id("jti"),
        }
    }
}
