//! Client tokens: the `__client` cookie value, the dev-browser token and the native
//! `Authorization` value are all the same HS256 JWT naming the client and its rotating
//! value. It is verified (algorithm pinned, signature, expiry) before any store read.

use std::borrow::Cow;

use aws_lc_rs::{aead, hmac};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};

use super::keys::KeyError;
use crate::clock::Millis;
use crate::domain::Client;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClientTokenClaims {
    /// The client id.
    pub id: String,
    /// Must equal the client's current rotating value; a sign-in rotates it.
    pub rotating_token: String,
    pub iat: i64,
    pub exp: i64,
}

impl ClientTokenClaims {
    /// Refuses a token whose `exp` (seconds) is not after `now` (milliseconds): the one
    /// expiry rule, for a token verified now and for one remembered.
    fn unexpired_at(self, now: Millis) -> Result<Self, ClientTokenError> {
        if self.exp * 1000 <= now {
            return Err(ClientTokenError::Expired);
        }
        Ok(self)
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ClientTokenError {
    #[error("the client token has expired")]
    Expired,
    #[error("the client token is not valid")]
    Invalid,
    /// Well formed, but names a secret this process does not know (yet).
    #[error("the client token names an unknown secret")]
    UnknownSecret,
}

/// Longer tokens are refused unread.
const MAX_TOKEN_BYTES: usize = 4096;
/// Client-token secrets are at least this long (HS256 wants the hash size).
pub const SECRET_BYTES: usize = 32;

/// One client-token HMAC secret of the keyring. A token names its secret in `kid`.
pub struct ClientSecret {
    kid: String,
    encoding: EncodingKey,
    /// The HMAC key, prepared once: every request verifies with it.
    verification: hmac::Key,
    /// An AES-256-GCM key derived from the secret, for sealing handshake nonces
    /// (`tokens::handshake`): a nonce is readable only by this service, for as long as
    /// the secret that sealed it is kept.
    sealing: aead::LessSafeKey,
}

impl std::fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientSecret")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl ClientSecret {
    pub fn generate() -> Vec<u8> {
        crate::ids::random_bytes::<SECRET_BYTES>().to_vec()
    }

    pub fn from_bytes(kid: &str, secret: &[u8]) -> Result<Self, KeyError> {
        if secret.len() < SECRET_BYTES {
            return Err(KeyError::Unreadable("client token secret is too short"));
        }
        let verification = hmac::Key::new(hmac::HMAC_SHA256, secret);
        // A key of its own, derived one way from the secret, so sealing never reuses the
        // client-token MAC key for another purpose.
        let derived = hmac::sign(&verification, b"clerk-session-service handshake nonce v1");
        let sealing = aead::UnboundKey::new(&aead::AES_256_GCM, derived.as_ref())
            .map(aead::LessSafeKey::new)
            .map_err(|_| KeyError::Unreadable("client token secret"))?;
        Ok(Self {
            kid: kid.to_string(),
            encoding: EncodingKey::from_secret(secret),
            verification,
            sealing,
        })
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn issue(&self, client: &Client, now: Millis) -> Result<String, ClientTokenError> {
        self.sign(&ClientTokenClaims {
            id: client.id.clone(),
            rotating_token: client.rotating_token.clone(),
            iat: now / 1000,
            exp: client.expires_at / 1000,
        })
    }

    /// The same client token, signed again with this secret (after a rotation).
    pub fn reissue(
        &self,
        claims: &ClientTokenClaims,
        now: Millis,
    ) -> Result<String, ClientTokenError> {
        self.sign(&ClientTokenClaims {
            iat: now / 1000,
            ..claims.clone()
        })
    }

    /// The AEAD key for handshake nonces (see `tokens::handshake`).
    pub(crate) fn sealing_key(&self) -> &aead::LessSafeKey {
        &self.sealing
    }

    fn sign(&self, claims: &ClientTokenClaims) -> Result<String, ClientTokenError> {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding).map_err(|_| ClientTokenError::Invalid)
    }
}

/// The part of a client token's header that verification reads.
#[derive(Deserialize)]
struct TokenHeader<'a> {
    #[serde(borrow)]
    alg: Cow<'a, str>,
    #[serde(borrow)]
    kid: Option<Cow<'a, str>>,
}

/// Checks a token against the secret it names (found by `secret`) and against `now` (not
/// the system clock, so tests can move time). Answers the claims and the secret's `kid`.
///
/// Tokens are made by [`ClientSecret::issue`] (jsonwebtoken) and checked here directly:
/// every Frontend API request verifies one, and this is one HMAC with a key prepared once
/// plus two small JSON reads, where a general JWT decoder parses header and claims twice
/// and prepares the key each time. What is checked is the same: HS256 pinned (`none` and
/// every other algorithm refused), the signature over `header.claims` compared in
/// constant time (`hmac::verify`), then the claims (`exp` required) against `now`.
pub fn verify<'a>(
    token: &str,
    now: Millis,
    secret: impl Fn(&str) -> Option<&'a ClientSecret>,
) -> Result<(ClientTokenClaims, &'a str), ClientTokenError> {
    use ClientTokenError::Invalid;
    if token.len() > MAX_TOKEN_BYTES {
        return Err(Invalid);
    }
    let (signed, signature) = token.rsplit_once('.').ok_or(Invalid)?;
    let (header, claims) = signed.split_once('.').ok_or(Invalid)?;
    let header = URL_SAFE_NO_PAD.decode(header).map_err(|_| Invalid)?;
    let header: TokenHeader = serde_json::from_slice(&header).map_err(|_| Invalid)?;
    if header.alg != "HS256" {
        return Err(Invalid);
    }
    let kid = header.kid.ok_or(Invalid)?;
    let secret = secret(&kid).ok_or(ClientTokenError::UnknownSecret)?;
    let signature = URL_SAFE_NO_PAD.decode(signature).map_err(|_| Invalid)?;
    hmac::verify(&secret.verification, signed.as_bytes(), &signature).map_err(|_| Invalid)?;
    let claims = URL_SAFE_NO_PAD.decode(claims).map_err(|_| Invalid)?;
    let claims: ClientTokenClaims = serde_json::from_slice(&claims).map_err(|_| Invalid)?;
    Ok((claims.unexpired_at(now)?, &secret.kid))
}

/// Client tokens this keyring has verified, so that a token presented again (a client
/// presents the same token on every request until it is re-signed) costs one keyed hash
/// and a constant-time comparison, not base64, two JSON reads and an HMAC.
///
/// Only tokens that passed [`verify`] get in, with what it found (the claims and the
/// secret's kid). Every use still checks, against `now`, the expiry and that the secret is
/// still kept, so a hit answers exactly what [`verify`] would. The map is keyed by a
/// SipHash of the token under a random per-process key (an attacker can't aim at an entry),
/// and the stored token is compared in constant time, so a lookup reveals nothing of the
/// tokens held. It belongs to one keyring: a reload starts a new one. Bounded: when full,
/// it starts empty (no bookkeeping on the read path).
pub struct VerifiedTokens {
    hasher: std::hash::RandomState,
    entries: std::sync::RwLock<std::collections::HashMap<u64, Verified>>,
}

struct Verified {
    token: Box<[u8]>,
    claims: ClientTokenClaims,
    kid: Box<str>,
}

/// At most this many tokens are remembered (~4 MB).
const MAX_VERIFIED_TOKENS: usize = 8192;

impl Default for VerifiedTokens {
    fn default() -> Self {
        Self {
            hasher: std::hash::RandomState::new(),
            entries: std::sync::RwLock::new(std::collections::HashMap::new()),
        }
    }
}

impl VerifiedTokens {
    /// How many tokens are remembered now, and their bytes.
    pub fn size(&self) -> (usize, usize) {
        self.entries.read().map_or((0, 0), |e| {
            (e.len(), e.values().map(|v| v.token.len()).sum())
        })
    }

    /// [`verify`], answered from memory when this token was verified before.
    pub fn verify<'a>(
        &self,
        token: &str,
        now: Millis,
        secret: impl Fn(&str) -> Option<&'a ClientSecret>,
    ) -> Result<(ClientTokenClaims, &'a str), ClientTokenError> {
        use std::hash::BuildHasher;
        if token.len() > MAX_TOKEN_BYTES {
            return Err(ClientTokenError::Invalid);
        }
        let key = self.hasher.hash_one(token.as_bytes());
        let remembered = {
            let entries = self.entries.read().unwrap_or_else(|p| p.into_inner());
            entries
                .get(&key)
                .filter(|v| {
                    aws_lc_rs::constant_time::verify_slices_are_equal(&v.token, token.as_bytes())
                        .is_ok()
                })
                .map(|v| (v.claims.clone(), secret(&v.kid)))
        };
        if let Some((claims, secret)) = remembered {
            let secret = secret.ok_or(ClientTokenError::UnknownSecret)?;
            return Ok((claims.unexpired_at(now)?, &secret.kid));
        }
        let (claims, kid) = verify(token, now, secret)?;
        let mut entries = self.entries.write().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= MAX_VERIFIED_TOKENS {
            // A sixteenth makes room, in the map's own order: memory stays level.
            let mut evict = MAX_VERIFIED_TOKENS / 16;
            entries.retain(|_, _| {
                if evict == 0 {
                    return true;
                }
                evict -= 1;
                false
            });
        }
        entries.insert(
            key,
            Verified {
                token: token.as_bytes().into(),
                claims: claims.clone(),
                kid: kid.into(),
            },
        );
        Ok((claims, kid))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup(kid: &str) -> (ClientSecret, Client) {
        let secret = ClientSecret::from_bytes(kid, &ClientSecret::generate()).unwrap();
        let client = Client {
            id: "client_abc".into(),
            rotating_token: "rot".into(),
            last_active_session_id: None,
            created_at: 0,
            updated_at: 0,
            expires_at: 3_600_000,
            anonymous_until: None,
            sign_in: None,
            sign_up: None,
            version: 1,
        };
        (secret, client)
    }

    fn only<'a>(secret: &'a ClientSecret) -> impl Fn(&str) -> Option<&'a ClientSecret> {
        move |kid| (kid == secret.kid()).then_some(secret)
    }

    #[test]
    fn round_trip_and_expiry() {
        let (secret, client) = setup("cts_1");
        let token = secret.issue(&client, 1_000).unwrap();
        let (claims, kid) = verify(&token, 2_000, only(&secret)).unwrap();
        assert_eq!(claims.id, "client_abc");
        assert_eq!(claims.rotating_token, "rot");
        assert_eq!(kid, "cts_1");
        assert_eq!(
            verify(&token, 3_600_000, only(&secret)),
            Err(ClientTokenError::Expired)
        );
        assert!(ClientSecret::from_bytes("short", &[0u8; 31]).is_err());
    }

    #[test]
    fn forged_tampered_none_and_foreign_tokens_are_refused() {
        let (secret, client) = setup("cts_1");
        let token = secret.issue(&client, 1_000).unwrap();
        let parts: Vec<&str> = token.split('.').collect();

        // Tampered payload, original signature.
        let payload = URL_SAFE_NO_PAD
            .encode(br#"{"id":"client_other","rotating_token":"rot","iat":1,"exp":4000000000}"#);
        let tampered = format!("{}.{}.{}", parts[0], payload, parts[2]);
        assert_eq!(
            verify(&tampered, 2_000, only(&secret)),
            Err(ClientTokenError::Invalid)
        );

        // alg: none.
        let none_header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT","kid":"cts_1"}"#);
        assert_eq!(
            verify(&format!("{none_header}.{payload}."), 2_000, only(&secret)),
            Err(ClientTokenError::Invalid)
        );

        // Signed by another instance with the same kid, and with a kid we do not know.
        let (other, _) = setup("cts_1");
        let foreign = other.issue(&client, 1_000).unwrap();
        assert_eq!(
            verify(&foreign, 2_000, only(&secret)),
            Err(ClientTokenError::Invalid)
        );
        let (unknown, _) = setup("cts_2");
        let foreign = unknown.issue(&client, 1_000).unwrap();
        assert_eq!(
            verify(&foreign, 2_000, only(&secret)),
            Err(ClientTokenError::UnknownSecret)
        );

        // The right secret under another algorithm, and a fourth segment.
        let bytes = ClientSecret::generate();
        let same = ClientSecret::from_bytes("cts_1", &bytes).unwrap();
        let mut header = Header::new(Algorithm::HS512);
        header.kid = Some("cts_1".into());
        let claims = verify(&token, 2_000, only(&secret)).unwrap().0;
        let hs512 =
            jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(&bytes)).unwrap();
        assert_eq!(
            verify(&hs512, 2_000, only(&same)),
            Err(ClientTokenError::Invalid)
        );
        assert_eq!(
            verify(&format!("{token}.x"), 2_000, only(&secret)),
            Err(ClientTokenError::Invalid)
        );

        // Garbage.
        for bad in ["", "abc", "a.b.c", "....", &"x".repeat(5000)] {
            assert_eq!(
                verify(bad, 2_000, only(&secret)),
                Err(ClientTokenError::Invalid)
            );
        }
    }

    #[test]
    fn a_remembered_token_answers_what_verify_would() {
        let (secret, client) = setup("cts_1");
        let memo = VerifiedTokens::default();
        let token = secret.issue(&client, 1_000).unwrap();
        let first = memo.verify(&token, 2_000, only(&secret)).unwrap();
        assert_eq!(first, verify(&token, 2_000, only(&secret)).unwrap());
        // Remembered: the same answer, with expiry still checked against `now`...
        assert_eq!(memo.verify(&token, 3_000, only(&secret)).unwrap(), first);
        assert_eq!(
            memo.verify(&token, 3_600_000, only(&secret)),
            Err(ClientTokenError::Expired)
        );
        // ...and the secret still looked up: once it is no longer kept, the token fails.
        assert_eq!(
            memo.verify(&token, 2_000, |_| None),
            Err(ClientTokenError::UnknownSecret)
        );
        // A token that differs from a remembered one is verified afresh, and refused.
        let mut tampered = token.clone().into_bytes();
        let last = tampered.len() - 2;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).unwrap();
        assert_eq!(
            memo.verify(&tampered, 2_000, only(&secret)),
            Err(ClientTokenError::Invalid)
        );
        // The largest input a caller can send: one byte over the limit is refused before
        // it is hashed or kept.
        let huge = "a".repeat(MAX_TOKEN_BYTES + 1);
        assert_eq!(
            memo.verify(&huge, 2_000, only(&secret)),
            Err(ClientTokenError::Invalid)
        );
        assert_eq!(memo.entries.read().unwrap().len(), 1);
        // Full: it starts empty and goes on answering.
        for i in 0..=MAX_VERIFIED_TOKENS {
            let other = Client {
                id: format!("client_{i}"),
                ..client.clone()
            };
            let t = secret.issue(&other, 1_000).unwrap();
            assert_eq!(
                memo.verify(&t, 2_000, only(&secret)).unwrap().0.id,
                other.id
            );
        }
        let kept = memo.entries.read().unwrap().len();
        assert!(kept <= MAX_VERIFIED_TOKENS);
        // Room is made a sixteenth at a time: the memory stays nearly full, not emptied.
        assert!(kept > MAX_VERIFIED_TOKENS / 16 * 14, "{kept} kept");
        assert_eq!(memo.verify(&token, 2_000, only(&secret)).unwrap(), first);
    }
}
