//! Signing keys, session tokens and client tokens, and the session tokens signed lately.

pub mod client_token;
pub mod handshake;
pub mod keys;
pub mod recent;
pub mod session_token;
pub mod template_token;

pub use client_token::{ClientSecret, ClientTokenClaims, ClientTokenError};
pub use keys::{KeyError, SigningKey};
