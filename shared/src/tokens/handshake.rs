//! The two forms of a handshake payload (`GET /v1/client/handshake`, docs/api.md): the
//! cookie directives an app's server sets, either signed as a `__clerk_handshake` JWT
//! (`format=token`) or sealed into a `__clerk_handshake_nonce` that only the Backend API
//! opens again (`format=nonce`, what @clerk/backend asks for).
//!
//! The nonce is the payload itself, encrypted (AES-256-GCM with a key derived from the
//! current client-token secret) rather than a key into stored state: a handshake then costs
//! no write, and a nonce read from a URL, a log or a `Referer` gives nothing without the
//! Backend API secret key, the only way to have it opened. It opens once: the Backend API
//! records it spent ([`nonce_use_key`], `app::handshake::open_payload`), since the app's
//! SDK leaves it in the page's URL, where a second opening would hand the same cookies to
//! whoever replays that URL within the minute ([`NONCE_LIFETIME_SECS`]).
//!
//! The token form carries no refresh grant: a signed JWT is readable by anyone who sees
//! the URL, so only the nonce form, opened once by the app's server, hands one out.

use aws_lc_rs::aead::{self, Aad, NONCE_LEN};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::keys::{KeyError, SigningKey};
use super::ClientSecret;
use crate::clock::Millis;
use crate::keyring::Keyring;

/// How long a nonce can be opened: it is redeemed by the app's server on the redirect
/// that carries it, within seconds.
pub const NONCE_LIFETIME_SECS: i64 = 60;

/// A sealed value longer than this is not looked at.
const MAX_SEALED_BYTES: usize = 16 * 1024;

/// The claims of a `__clerk_handshake` JWT.
#[derive(Serialize)]
struct HandshakeClaims<'a> {
    handshake: &'a [String],
    iat: i64,
    exp: i64,
}

/// Signs the directives as a handshake JWT with the instance's signing key (RS256, the
/// session-token header, which @clerk/backend's handshake verification accepts).
pub fn sign_token(
    key: &SigningKey,
    directives: &[String],
    now: Millis,
) -> Result<String, KeyError> {
    key.sign_rs256(&HandshakeClaims {
        handshake: directives,
        iat: now / 1000,
        exp: now / 1000 + NONCE_LIFETIME_SECS,
    })
}

#[derive(Serialize, Deserialize)]
struct Nonce<T> {
    directives: T,
    /// Expiry, in seconds.
    exp: i64,
}

/// Seals the directives into a nonce that opens for [`NONCE_LIFETIME_SECS`].
pub fn seal_nonce(
    secret: &ClientSecret,
    directives: &[String],
    now: Millis,
) -> Result<String, KeyError> {
    seal_nonce_until(secret, directives, now / 1000 + NONCE_LIFETIME_SECS)
}

/// A nonce that opens until `exp` (seconds): the fixtures' is fixed and far off.
pub(crate) fn seal_nonce_until(
    secret: &ClientSecret,
    directives: &[String],
    exp: i64,
) -> Result<String, KeyError> {
    seal(secret, Purpose::Nonce, &Nonce { directives, exp })
}

/// A nonce's content, once opened.
#[derive(Debug, PartialEq)]
pub struct OpenedNonce {
    pub directives: Vec<String>,
    /// When it stops opening.
    pub expires_at: Millis,
}

/// Opens a nonce sealed by [`seal_nonce`] with a secret the keyring still keeps. `None`
/// for anything else: malformed, tampered, another instance's, a secret since removed,
/// or expired. Whether it was opened before is the store's to say ([`nonce_use_key`]).
pub fn open_nonce(keys: &Keyring, nonce: &str, now: Millis) -> Option<OpenedNonce> {
    let sealed: Nonce<Vec<String>> = open(keys, Purpose::Nonce, nonce, now)?;
    (now / 1000 < sealed.exp).then_some(OpenedNonce {
        directives: sealed.directives,
        expires_at: sealed.exp * 1000,
    })
}

/// The key under which a nonce is recorded spent: a hash of the whole sealed value, which
/// is unique (a random IV) and is not kept itself.
pub fn nonce_use_key(nonce: &str) -> String {
    format!("handshake_nonce:{}", crate::domain::ticket_hash(nonce))
}

/// What a `__refresh` cookie holds: the client and session it may mint for, and the
/// client's rotating value when it was set, so a sign-in on the client (which rotates
/// it) ends it, as it ends the client's old tokens.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
pub struct RefreshGrant {
    pub client_id: String,
    pub rotating_token: String,
    pub session_id: String,
    /// Expiry, in seconds: the client token's.
    pub exp: i64,
}

/// Seals a refresh grant for the app's `__refresh` cookie (Backend API
/// `POST /v1/sessions/{id}/refresh` opens it).
pub fn seal_refresh(secret: &ClientSecret, grant: &RefreshGrant) -> Result<String, KeyError> {
    seal(secret, Purpose::Refresh, grant)
}

/// Opens a refresh grant; `None` for anything but an unexpired grant of this instance.
pub fn open_refresh(keys: &Keyring, token: &str, now: Millis) -> Option<RefreshGrant> {
    let grant: RefreshGrant = open(keys, Purpose::Refresh, token, now)?;
    (now / 1000 < grant.exp).then_some(grant)
}

/// What a sealed value is for; bound into it, so one kind never opens as the other.
#[derive(Clone, Copy)]
enum Purpose {
    Nonce,
    Refresh,
}

impl Purpose {
    fn label(self) -> &'static str {
        match self {
            Purpose::Nonce => "handshake-nonce",
            Purpose::Refresh => "refresh",
        }
    }
}

fn aad(kid: &str, purpose: Purpose) -> Vec<u8> {
    format!("{}:{kid}", purpose.label()).into_bytes()
}

/// `<secret kid>.<base64url(iv ‖ ciphertext ‖ tag)>`, AES-256-GCM with a random IV.
fn seal<T: Serialize>(
    secret: &ClientSecret,
    purpose: Purpose,
    value: &T,
) -> Result<String, KeyError> {
    let mut data = serde_json::to_vec(value).map_err(|_| KeyError::Sign)?;
    let iv = crate::ids::random_bytes::<NONCE_LEN>();
    secret
        .sealing_key()
        .seal_in_place_append_tag(
            aead::Nonce::assume_unique_for_key(iv),
            Aad::from(aad(secret.kid(), purpose)),
            &mut data,
        )
        .map_err(|_| KeyError::Sign)?;
    let mut out = Vec::with_capacity(NONCE_LEN + data.len());
    out.extend_from_slice(&iv);
    out.extend_from_slice(&data);
    Ok(format!("{}.{}", secret.kid(), URL_SAFE_NO_PAD.encode(out)))
}

fn open<T: DeserializeOwned>(
    keys: &Keyring,
    purpose: Purpose,
    sealed: &str,
    now: Millis,
) -> Option<T> {
    if sealed.len() > MAX_SEALED_BYTES {
        return None;
    }
    let (kid, body) = sealed.split_once('.')?;
    let secret = keys.client_secret_named(kid, now)?;
    let raw = URL_SAFE_NO_PAD.decode(body).ok()?;
    if raw.len() < NONCE_LEN {
        return None;
    }
    let (iv, rest) = raw.split_at(NONCE_LEN);
    let iv = aead::Nonce::try_assume_unique_for_key(iv).ok()?;
    let mut data = rest.to_vec();
    let plain = secret
        .sealing_key()
        .open_in_place(iv, Aad::from(aad(kid, purpose)), &mut data)
        .ok()?;
    serde_json::from_slice(plain).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keyring::{new_client_secret, new_signing_key, KeyringRecord, Sealer};

    async fn keyring() -> Keyring {
        let record = KeyringRecord::initial(
            new_signing_key(&Sealer::Plain, 0).await.unwrap(),
            new_client_secret(&Sealer::Plain, 0).await.unwrap(),
        );
        Keyring::load(&record, &Sealer::Plain, &Keyring::empty(), 0)
            .await
            .unwrap()
    }

    const NOW: Millis = 1_000_000;

    #[tokio::test]
    async fn a_nonce_opens_to_its_directives_until_it_expires() {
        let keys = keyring().await;
        let directives = vec![
            "__session=abc; Path=/".to_string(),
            "__client_uat=1; Path=/".to_string(),
        ];
        let secret = keys.client_secret(NOW).unwrap();
        let nonce = seal_nonce(secret, &directives, NOW).unwrap();
        assert!(nonce.starts_with(&format!("{}.", secret.kid())));
        assert!(!nonce.contains("__session"), "sealed, not encoded");
        let expiry = NOW + NONCE_LIFETIME_SECS * 1000;
        let opened = Some(OpenedNonce {
            directives,
            expires_at: expiry,
        });
        assert_eq!(open_nonce(&keys, &nonce, NOW), opened);
        assert_eq!(open_nonce(&keys, &nonce, expiry - 1000), opened);
        assert_eq!(open_nonce(&keys, &nonce, expiry), None);
    }

    #[tokio::test]
    async fn a_tampered_foreign_or_malformed_nonce_does_not_open() {
        let keys = keyring().await;
        let nonce =
            seal_nonce(keys.client_secret(NOW).unwrap(), &["x=1".to_string()], NOW).unwrap();
        // Another instance's keyring.
        assert_eq!(open_nonce(&keyring().await, &nonce, NOW), None);
        // One character of the sealed part changed.
        let mut tampered = nonce.clone().into_bytes();
        let last = tampered.len() - 1;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        assert_eq!(
            open_nonce(&keys, &String::from_utf8(tampered).unwrap(), NOW),
            None
        );
        let kid = keys.client_secret(NOW).unwrap().kid().to_string();
        for bad in [
            String::new(),
            ".".into(),
            format!("{kid}."),
            format!("{kid}.!!!"),
            "nodot".into(),
            format!("{kid}.AAAA"),
        ] {
            assert_eq!(open_nonce(&keys, &bad, NOW), None, "{bad}");
        }
    }

    #[tokio::test]
    async fn a_refresh_grant_opens_only_as_a_grant() {
        let keys = keyring().await;
        let secret = keys.client_secret(NOW).unwrap();
        let grant = RefreshGrant {
            client_id: "client_1".into(),
            rotating_token: "r".into(),
            session_id: "sess_1".into(),
            exp: NOW / 1000 + 10,
        };
        let sealed = seal_refresh(secret, &grant).unwrap();
        assert_eq!(open_refresh(&keys, &sealed, NOW), Some(grant));
        assert_eq!(open_refresh(&keys, &sealed, NOW + 10_000), None, "expired");
        // A nonce is not a grant, nor a grant a nonce.
        let nonce = seal_nonce(secret, &["x=1".to_string()], NOW).unwrap();
        assert_eq!(open_refresh(&keys, &nonce, NOW), None);
        assert_eq!(open_nonce(&keys, &sealed, NOW), None);
    }

    #[tokio::test]
    async fn the_token_form_is_signed_by_the_instance_key() {
        let keys = keyring().await;
        let key = keys.signer(NOW).unwrap();
        let jwt = sign_token(key, &["__client_uat=0; Path=/".to_string()], NOW).unwrap();
        let [header, claims, _] = jwt.split('.').collect::<Vec<_>>()[..] else {
            panic!("three parts")
        };
        let header: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap();
        assert_eq!(header["alg"], "RS256");
        assert_eq!(header["kid"], key.kid());
        let claims: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(claims).unwrap()).unwrap();
        assert_eq!(
            claims["handshake"],
            serde_json::json!(["__client_uat=0; Path=/"])
        );
    }
}
