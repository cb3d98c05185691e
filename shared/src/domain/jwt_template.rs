//! JWT templates: named claims documents that mint tokens for other services.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::clock::Millis;

/// The algorithms a template with its own key may sign with. HMAC for services that share a
/// secret (Hasura, Supabase), RSA and ECDSA for those that take a public key. EdDSA and
/// RSA-PSS are left out: no common consumer of Clerk templates asks for them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SigningAlgorithm {
    HS256,
    HS384,
    HS512,
    RS256,
    RS384,
    RS512,
    ES256,
    ES384,
}

impl SigningAlgorithm {
    pub const ALL: [SigningAlgorithm; 8] = [
        Self::HS256,
        Self::HS384,
        Self::HS512,
        Self::RS256,
        Self::RS384,
        Self::RS512,
        Self::ES256,
        Self::ES384,
    ];

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == s)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::HS256 => "HS256",
            Self::HS384 => "HS384",
            Self::HS512 => "HS512",
            Self::RS256 => "RS256",
            Self::RS384 => "RS384",
            Self::RS512 => "RS512",
            Self::ES256 => "ES256",
            Self::ES384 => "ES384",
        }
    }

    pub fn is_hmac(self) -> bool {
        matches!(self, Self::HS256 | Self::HS384 | Self::HS512)
    }
}

/// A template's own signing key: write-only. It is stored, but never rendered on the wire,
/// and `Debug` does not print it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SigningKey(String);

impl SigningKey {
    pub fn new(key: String) -> Self {
        Self(key)
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKey([redacted])")
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JwtTemplate {
    pub id: String,
    /// Unique; what `/tokens/{template_name}` names.
    pub name: String,
    pub claims: Map<String, Value>,
    /// Seconds.
    pub lifetime: u64,
    /// Seconds; `nbf` = `iat` − this.
    pub allowed_clock_skew: u64,
    pub custom_signing_key: bool,
    /// RS256 with the instance key unless `custom_signing_key`.
    pub signing_algorithm: SigningAlgorithm,
    pub signing_key: Option<SigningKey>,
    pub created_at: Millis,
    pub updated_at: Millis,
    pub version: u64,
}

/// Claims a template may not set. The first seven are always added by the service; the
/// last four are what makes a session token (`sid`, `v`, `sts`, `fva`), so a template
/// token signed with the instance key can never pass for one.
pub const RESERVED_CLAIMS: [&str; 11] = [
    "azp", "exp", "iat", "iss", "jti", "nbf", "sub", "sid", "v", "sts", "fva",
];
