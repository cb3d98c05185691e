//! Client tokens: the `__client` cookie value, the dev-browser token and the native
//! `Authorization` value are all the same HS256 JWT naming the client and its rotating
//! value. It is verified (algorithm pinned, signature, expiry) before any store read.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use super::keys::InstanceKeys;
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

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ClientTokenError {
    #[error("the client token has expired")]
    Expired,
    #[error("the client token is not valid")]
    Invalid,
}

/// Encoding and decoding keys for client tokens, derived once from the instance keys.
pub struct ClientTokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl ClientTokenKeys {
    pub fn new(keys: &InstanceKeys) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.validate_aud = false;
        validation.set_required_spec_claims(&["exp"]);
        Self {
            encoding: EncodingKey::from_secret(&keys.client_token_secret),
            decoding: DecodingKey::from_secret(&keys.client_token_secret),
            validation,
        }
    }

    pub fn issue(&self, client: &Client, now: Millis) -> Result<String, ClientTokenError> {
        let claims = ClientTokenClaims {
            id: client.id.clone(),
            rotating_token: client.rotating_token.clone(),
            iat: now / 1000,
            exp: client.expires_at / 1000,
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|_| ClientTokenError::Invalid)
    }

    /// Checks the token against `now` (not the system clock, so tests can move time).
    pub fn verify(&self, token: &str, now: Millis) -> Result<ClientTokenClaims, ClientTokenError> {
        if token.len() > 4096 {
            return Err(ClientTokenError::Invalid);
        }
        let mut validation = self.validation.clone();
        // jsonwebtoken checks `exp` against the system clock; check it against ours too.
        validation.validate_exp = false;
        let data = jsonwebtoken::decode::<ClientTokenClaims>(token, &self.decoding, &validation)
            .map_err(|_| ClientTokenError::Invalid)?;
        if data.claims.exp * 1000 <= now {
            return Err(ClientTokenError::Expired);
        }
        Ok(data.claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;

    fn setup() -> (ClientTokenKeys, Client) {
        let keys = InstanceKeys::from_record(&InstanceKeys::generate_record(0).unwrap()).unwrap();
        let client = Client {
            id: "client_abc".into(),
            rotating_token: "rot".into(),
            last_active_session_id: None,
            created_at: 0,
            updated_at: 0,
            expires_at: 3_600_000,
            anonymous_until: None,
            version: 1,
        };
        (ClientTokenKeys::new(&keys), client)
    }

    #[test]
    fn round_trip_and_expiry() {
        let (keys, client) = setup();
        let token = keys.issue(&client, 1_000).unwrap();
        let claims = keys.verify(&token, 2_000).unwrap();
        assert_eq!(claims.id, "client_abc");
        assert_eq!(claims.rotating_token, "rot");
        assert_eq!(
            keys.verify(&token, 3_600_000),
            Err(ClientTokenError::Expired)
        );
    }

    #[test]
    fn forged_tampered_none_and_foreign_tokens_are_refused() {
        let (keys, client) = setup();
        let token = keys.issue(&client, 1_000).unwrap();
        let parts: Vec<&str> = token.split('.').collect();

        // Tampered payload, original signature.
        let payload = URL_SAFE_NO_PAD
            .encode(br#"{"id":"client_other","rotating_token":"rot","iat":1,"exp":4000000000}"#);
        let tampered = format!("{}.{}.{}", parts[0], payload, parts[2]);
        assert_eq!(
            keys.verify(&tampered, 2_000),
            Err(ClientTokenError::Invalid)
        );

        // alg: none.
        let none_header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
        assert_eq!(
            keys.verify(&format!("{none_header}.{payload}."), 2_000),
            Err(ClientTokenError::Invalid)
        );

        // Signed by another instance.
        let (other, _) = setup();
        let foreign = other.issue(&client, 1_000).unwrap();
        assert_eq!(keys.verify(&foreign, 2_000), Err(ClientTokenError::Invalid));

        // Garbage.
        for bad in ["", "abc", "a.b.c", "....", &"x".repeat(5000)] {
            assert_eq!(keys.verify(bad, 2_000), Err(ClientTokenError::Invalid));
        }
    }
}
