//! The instance's keys, parsed once per process and kept for its lifetime.

use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der};
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{KeyPair, RsaKeyPair, RSA_PKCS1_SHA256};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use serde::Serialize;
use serde_json::{json, Value};

use crate::clock::Millis;
use crate::store::InstanceKeysRecord;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("could not generate a key")]
    Generate,
    #[error("stored instance keys are unreadable: {0}")]
    Unreadable(&'static str),
    #[error("could not sign a token")]
    Sign,
}

/// The `cat` header of template tokens signed with the instance key (Clerk's value).
pub const TEMPLATE_TOKEN_CATEGORY: &str = "cl_B7d4PD222AAA";

/// The RSA key pair that signs session tokens (RS256, 2048-bit, e = 65537, as Clerk's
/// verifiers require) and the HMAC secret that signs client tokens.
pub struct InstanceKeys {
    kid: String,
    rsa: RsaKeyPair,
    /// base64url of the fixed session-token header, computed once.
    header_b64: String,
    /// The same for template tokens: its `cat` tells them from session tokens.
    template_header_b64: String,
    jwk: Value,
    public_key_pem: String,
    pub(crate) client_token_secret: Vec<u8>,
}

impl std::fmt::Debug for InstanceKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InstanceKeys")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl InstanceKeys {
    /// Fresh keys for an instance that has none.
    pub fn generate_record(now: Millis) -> Result<InstanceKeysRecord, KeyError> {
        let pair = RsaKeyPair::generate(KeySize::Rsa2048).map_err(|_| KeyError::Generate)?;
        let der: Pkcs8V1Der = pair.as_der().map_err(|_| KeyError::Generate)?;
        Ok(InstanceKeysRecord {
            kid: crate::ids::new_id("ins"),
            rsa_pkcs8_b64: STANDARD.encode(der.as_ref()),
            client_token_secret_b64: STANDARD.encode(crate::ids::random_bytes::<32>()),
            created_at: now,
        })
    }

    pub fn from_record(record: &InstanceKeysRecord) -> Result<Self, KeyError> {
        let der = STANDARD
            .decode(&record.rsa_pkcs8_b64)
            .map_err(|_| KeyError::Unreadable("RSA key is not base64"))?;
        let rsa = RsaKeyPair::from_pkcs8(&der).map_err(|_| KeyError::Unreadable("RSA key"))?;
        let client_token_secret = STANDARD
            .decode(&record.client_token_secret_b64)
            .map_err(|_| KeyError::Unreadable("client token secret is not base64"))?;
        if client_token_secret.len() < 32 {
            return Err(KeyError::Unreadable("client token secret is too short"));
        }
        let public = rsa.public_key();
        let jwk = json!({
            "use": "sig",
            "kty": "RSA",
            "kid": record.kid,
            "alg": "RS256",
            "n": URL_SAFE_NO_PAD.encode(public.modulus().big_endian_without_leading_zero()),
            "e": URL_SAFE_NO_PAD.encode(public.exponent().big_endian_without_leading_zero()),
        });
        let spki = AsDer::<aws_lc_rs::encoding::PublicKeyX509Der>::as_der(public)
            .map_err(|_| KeyError::Unreadable("public key"))?;
        let header = json!({"alg": "RS256", "kid": record.kid, "typ": "JWT"});
        let template_header = json!({
            "alg": "RS256", "cat": TEMPLATE_TOKEN_CATEGORY, "kid": record.kid, "typ": "JWT"
        });
        Ok(Self {
            kid: record.kid.clone(),
            header_b64: URL_SAFE_NO_PAD.encode(header.to_string()),
            template_header_b64: URL_SAFE_NO_PAD.encode(template_header.to_string()),
            jwk,
            public_key_pem: pem("PUBLIC KEY", spki.as_ref()),
            rsa,
            client_token_secret,
        })
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public keys as a JWKS document.
    pub fn jwks(&self) -> Value {
        json!({ "keys": [self.jwk] })
    }

    /// The public key as PEM (what Clerk calls the "JWT public key").
    pub fn public_key_pem(&self) -> &str {
        &self.public_key_pem
    }

    /// Signs `claims` as an RS256 JWT with the cached key pair. jsonwebtoken would re-parse
    /// the private key on every call, which costs more than the signature itself.
    pub fn sign_rs256<T: Serialize>(&self, claims: &T) -> Result<String, KeyError> {
        self.sign_with_header(&self.header_b64, claims)
    }

    /// Like [`InstanceKeys::sign_rs256`], with the template-token header (`cat`).
    pub fn sign_rs256_template<T: Serialize>(&self, claims: &T) -> Result<String, KeyError> {
        self.sign_with_header(&self.template_header_b64, claims)
    }

    fn sign_with_header<T: Serialize>(
        &self,
        header_b64: &str,
        claims: &T,
    ) -> Result<String, KeyError> {
        let payload = serde_json::to_vec(claims).map_err(|_| KeyError::Sign)?;
        let mut jwt = String::with_capacity(header_b64.len() + payload.len() * 4 / 3 + 350);
        jwt.push_str(header_b64);
        jwt.push('.');
        URL_SAFE_NO_PAD.encode_string(&payload, &mut jwt);
        let mut signature = vec![0u8; self.rsa.public_modulus_len()];
        self.rsa
            .sign(
                &RSA_PKCS1_SHA256,
                &aws_lc_rs::rand::SystemRandom::new(),
                jwt.as_bytes(),
                &mut signature,
            )
            .map_err(|_| KeyError::Sign)?;
        jwt.push('.');
        URL_SAFE_NO_PAD.encode_string(&signature, &mut jwt);
        Ok(jwt)
    }
}

fn pem(label: &str, der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_sign_verifiably() {
        let record = InstanceKeys::generate_record(0).unwrap();
        let keys = InstanceKeys::from_record(&record).unwrap();
        let jwks = keys.jwks();
        assert_eq!(jwks["keys"][0]["e"], "AQAB");
        assert_eq!(jwks["keys"][0]["kid"], record.kid);
        // 2048-bit modulus: 256 bytes, 342 base64url characters.
        assert_eq!(jwks["keys"][0]["n"].as_str().unwrap().len(), 342);
        assert!(!format!("{keys:?}").contains(&record.rsa_pkcs8_b64));

        let jwt = keys
            .sign_rs256(&json!({"sub": "user_1", "exp": 4_000_000_000u64}))
            .unwrap();
        let decoding =
            jsonwebtoken::DecodingKey::from_rsa_pem(keys.public_key_pem().as_bytes()).unwrap();
        let data = jsonwebtoken::decode::<Value>(
            &jwt,
            &decoding,
            &jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256),
        )
        .unwrap();
        assert_eq!(data.claims["sub"], "user_1");
        assert_eq!(data.header.kid.as_deref(), Some(record.kid.as_str()));
        assert_eq!(data.header.typ.as_deref(), Some("JWT"));
    }
}
