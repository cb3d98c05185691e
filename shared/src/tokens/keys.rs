//! One RSA signing key of the keyring, parsed once per process and kept while it is
//! published.

use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der};
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{KeyPair, RsaKeyPair, RSA_PKCS1_SHA256};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use serde::Serialize;
use serde_json::{json, Value};

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("could not generate a key")]
    Generate,
    #[error("stored keys are unreadable: {0}")]
    Unreadable(&'static str),
    #[error("could not sign a token")]
    Sign,
    #[error("no signing key is current")]
    NoCurrentKey,
    #[error("key encryption failed: {0}")]
    Kms(String),
    /// The embedded store's local key-encryption key is missing, unreadable, exposed, or
    /// not the one the material was sealed with.
    #[error("local key-encryption key: {0}")]
    LocalKey(String),
}

/// The `cat` header of session tokens (Clerk's value; @clerk/backend checks it).
pub const SESSION_TOKEN_CATEGORY: &str = "cl_B7d4PD111AAA";
/// The `cat` header of template tokens signed with the instance key (Clerk's value).
pub const TEMPLATE_TOKEN_CATEGORY: &str = "cl_B7d4PD222AAA";

/// An RSA key pair that signs session and template tokens (RS256, 2048-bit, e = 65537,
/// as Clerk's verifiers require).
pub struct SigningKey {
    kid: String,
    rsa: RsaKeyPair,
    /// base64url of the fixed session-token header, computed once.
    header_b64: String,
    /// The same for template tokens: its `cat` tells them from session tokens.
    template_header_b64: String,
    jwk: Value,
    public_key_pem: String,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

/// The public half of an RSA key as JWK members (base64url, no leading zeros).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct RsaPublicJwk {
    pub n: String,
    pub e: String,
}

impl RsaPublicJwk {
    /// The JWK as both JWKS documents serve it.
    pub fn to_jwk(&self, kid: &str) -> Value {
        json!({"use": "sig", "kty": "RSA", "kid": kid, "alg": "RS256", "n": self.n, "e": self.e})
    }
}

impl SigningKey {
    /// A fresh key: its PKCS#8 DER (private; to be sealed) and its public half.
    pub fn generate() -> Result<(Vec<u8>, RsaPublicJwk), KeyError> {
        let pair = RsaKeyPair::generate(KeySize::Rsa2048).map_err(|_| KeyError::Generate)?;
        let der: Pkcs8V1Der = pair.as_der().map_err(|_| KeyError::Generate)?;
        Ok((der.as_ref().to_vec(), public_jwk(&pair)))
    }

    pub fn from_pkcs8(kid: &str, der: &[u8]) -> Result<Self, KeyError> {
        let rsa = RsaKeyPair::from_pkcs8(der).map_err(|_| KeyError::Unreadable("RSA key"))?;
        let jwk = public_jwk(&rsa).to_jwk(kid);
        let spki = AsDer::<aws_lc_rs::encoding::PublicKeyX509Der>::as_der(rsa.public_key())
            .map_err(|_| KeyError::Unreadable("public key"))?;
        let header =
            json!({"alg": "RS256", "cat": SESSION_TOKEN_CATEGORY, "kid": kid, "typ": "JWT"});
        let template_header = json!({
            "alg": "RS256", "cat": TEMPLATE_TOKEN_CATEGORY, "kid": kid, "typ": "JWT"
        });
        Ok(Self {
            kid: kid.to_string(),
            header_b64: URL_SAFE_NO_PAD.encode(header.to_string()),
            template_header_b64: URL_SAFE_NO_PAD.encode(template_header.to_string()),
            jwk,
            public_key_pem: pem("PUBLIC KEY", spki.as_ref()),
            rsa,
        })
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public half, as stored in the keyring.
    pub fn public(&self) -> RsaPublicJwk {
        public_jwk(&self.rsa)
    }

    /// The public key as a JWK.
    pub fn jwk(&self) -> &Value {
        &self.jwk
    }

    /// The public key as PEM (what Clerk calls the "JWT public key").
    pub fn public_key_pem(&self) -> &str {
        &self.public_key_pem
    }

    /// Signs `claims` as a session token: RS256 with the cached key pair. jsonwebtoken
    /// would re-parse the private key on every call, which costs more than the signature.
    pub fn sign_rs256<T: Serialize>(&self, claims: &T) -> Result<String, KeyError> {
        self.sign_with_header(&self.header_b64, claims)
    }

    /// Like [`SigningKey::sign_rs256`], with the template-token header (`cat`).
    pub fn sign_rs256_template<T: Serialize>(&self, claims: &T) -> Result<String, KeyError> {
        self.sign_with_header(&self.template_header_b64, claims)
    }

    /// The claims of a token this key signed (RS256, this `kid`, the signature checked),
    /// whatever its expiry: for the Backend API's session refresh, which is handed an
    /// expired session token on purpose.
    pub fn verified_claims_any_time(&self, jwt: &str) -> Option<Value> {
        use aws_lc_rs::signature::{UnparsedPublicKey, RSA_PKCS1_2048_8192_SHA256};
        let (signed, signature) = jwt.rsplit_once('.')?;
        let (header, claims) = signed.split_once('.')?;
        let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).ok()?).ok()?;
        if header["alg"] != "RS256" || header["kid"] != self.kid.as_str() {
            return None;
        }
        let signature = URL_SAFE_NO_PAD.decode(signature).ok()?;
        UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, self.rsa.public_key().as_ref())
            .verify(signed.as_bytes(), &signature)
            .ok()?;
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(claims).ok()?).ok()
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

fn public_jwk(pair: &RsaKeyPair) -> RsaPublicJwk {
    let public = pair.public_key();
    RsaPublicJwk {
        n: URL_SAFE_NO_PAD.encode(public.modulus().big_endian_without_leading_zero()),
        e: URL_SAFE_NO_PAD.encode(public.exponent().big_endian_without_leading_zero()),
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
        let (der, public) = SigningKey::generate().unwrap();
        let key = SigningKey::from_pkcs8("ins_1", &der).unwrap();
        assert_eq!(key.jwk(), &public.to_jwk("ins_1"));
        assert_eq!(key.jwk()["e"], "AQAB");
        // 2048-bit modulus: 256 bytes, 342 base64url characters.
        assert_eq!(key.jwk()["n"].as_str().unwrap().len(), 342);
        assert!(!format!("{key:?}").contains(&STANDARD.encode(&der)));

        let jwt = key
            .sign_rs256(&json!({"sub": "user_1", "exp": 4_000_000_000u64}))
            .unwrap();
        let decoding =
            jsonwebtoken::DecodingKey::from_rsa_pem(key.public_key_pem().as_bytes()).unwrap();
        let data = jsonwebtoken::decode::<Value>(
            &jwt,
            &decoding,
            &jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256),
        )
        .unwrap();
        assert_eq!(data.claims["sub"], "user_1");
        assert_eq!(data.header.kid.as_deref(), Some("ins_1"));
        assert_eq!(data.header.typ.as_deref(), Some("JWT"));
        let header: Value = serde_json::from_slice(
            &URL_SAFE_NO_PAD
                .decode(jwt.split('.').next().unwrap())
                .unwrap(),
        )
        .unwrap();
        assert_eq!(header["cat"], SESSION_TOKEN_CATEGORY);
    }

    #[test]
    fn a_key_reads_back_only_its_own_untampered_tokens_expired_or_not() {
        let key = SigningKey::from_pkcs8("ins_1", &SigningKey::generate().unwrap().0).unwrap();
        let other = SigningKey::from_pkcs8("ins_1", &SigningKey::generate().unwrap().0).unwrap();
        let expired = key.sign_rs256(&json!({"sid": "sess_1", "exp": 1})).unwrap();
        assert_eq!(
            key.verified_claims_any_time(&expired).unwrap()["sid"],
            "sess_1"
        );
        assert_eq!(
            other.verified_claims_any_time(&expired),
            None,
            "another key, same kid"
        );
        let (signed, _) = expired.rsplit_once('.').unwrap();
        let (header, _) = signed.split_once('.').unwrap();
        let forged_claims = URL_SAFE_NO_PAD.encode(br#"{"sid":"sess_2","exp":1}"#);
        let signature = expired.rsplit_once('.').unwrap().1;
        let forged = format!("{header}.{forged_claims}.{signature}");
        assert_eq!(
            key.verified_claims_any_time(&forged),
            None,
            "tampered claims"
        );
        let none = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(br#"{"alg":"none","kid":"ins_1"}"#),
            forged_claims
        );
        assert_eq!(key.verified_claims_any_time(&none), None, "alg none");
        assert_eq!(key.verified_claims_any_time("not.a.jwt"), None);
    }
}
