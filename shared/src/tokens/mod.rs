//! Signing keys, session tokens and client tokens.

pub mod client_token;
pub mod handshake;
pub mod keys;
pub mod session_token;
pub mod template_token;

pub use client_token::{ClientSecret, ClientTokenClaims, ClientTokenError};
pub use keys::{KeyError, SigningKey};
