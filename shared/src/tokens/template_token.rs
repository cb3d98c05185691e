//! Tokens from JWT templates: the template's rendered claims plus the default claims,
//! signed with the instance key or the template's own key.

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

use super::keys::{KeyError, SigningKey};
use crate::claims::{dig, Claims, Context, TemplateError};
use crate::clock::Millis;
use crate::domain::{JwtTemplate, Session, SigningAlgorithm, User, RESERVED_CLAIMS};
use crate::limits::{json_len, RENDERED_CLAIMS_MAX_BYTES};

/// A template ready to mint: claims parsed and key loaded, once per template version.
pub struct CompiledTemplate {
    pub version: u64,
    claims: Claims,
    pub lifetime: u64,
    allowed_clock_skew: u64,
    signer: Signer,
}

enum Signer {
    Instance,
    Custom(Box<(Header, EncodingKey)>),
}

/// Why a template token was not minted.
#[derive(Debug, thiserror::Error)]
pub enum MintError {
    /// The rendered claims would pass [`RENDERED_CLAIMS_MAX_BYTES`]: the caller's data and
    /// template, not the service, are at fault.
    #[error("the rendered claims are larger than {RENDERED_CLAIMS_MAX_BYTES} bytes")]
    TooLarge,
    #[error(transparent)]
    Key(#[from] KeyError),
}

/// Why a template cannot be saved. Messages never contain the key.
#[derive(Debug, thiserror::Error)]
pub enum TemplateInvalid {
    #[error(transparent)]
    Claims(#[from] TemplateError),
    #[error("{0}")]
    Key(&'static str),
}

fn algorithm(a: SigningAlgorithm) -> Algorithm {
    match a {
        SigningAlgorithm::HS256 => Algorithm::HS256,
        SigningAlgorithm::HS384 => Algorithm::HS384,
        SigningAlgorithm::HS512 => Algorithm::HS512,
        SigningAlgorithm::RS256 => Algorithm::RS256,
        SigningAlgorithm::RS384 => Algorithm::RS384,
        SigningAlgorithm::RS512 => Algorithm::RS512,
        SigningAlgorithm::ES256 => Algorithm::ES256,
        SigningAlgorithm::ES384 => Algorithm::ES384,
    }
}

fn encoding_key(alg: SigningAlgorithm, key: &str) -> Result<EncodingKey, TemplateInvalid> {
    let encoding = if alg.is_hmac() {
        if key.len() < 32 {
            return Err(TemplateInvalid::Key(
                "an HMAC signing_key must be at least 32 characters",
            ));
        }
        EncodingKey::from_secret(key.as_bytes())
    } else if alg.as_str().starts_with("RS") {
        EncodingKey::from_rsa_pem(key.as_bytes()).map_err(|_| {
            TemplateInvalid::Key("signing_key must be a PEM-encoded RSA private key")
        })?
    } else {
        EncodingKey::from_ec_pem(key.as_bytes()).map_err(|_| {
            TemplateInvalid::Key("signing_key must be a PEM-encoded (PKCS#8) EC private key")
        })?
    };
    // Parsing PEM does not prove the key signs: try it once, here, not at mint time.
    jsonwebtoken::encode(&Header::new(algorithm(alg)), &json!({}), &encoding).map_err(|_| {
        TemplateInvalid::Key(
            "signing_key cannot sign with this signing_algorithm (wrong key type or curve)",
        )
    })?;
    Ok(encoding)
}

impl CompiledTemplate {
    pub fn compile(t: &JwtTemplate) -> Result<Self, TemplateInvalid> {
        let claims = Claims::parse(&t.claims)?;
        let signer = if t.custom_signing_key {
            let key = t.signing_key.as_ref().ok_or(TemplateInvalid::Key(
                "a custom signing key needs signing_key",
            ))?;
            let mut header = Header::new(algorithm(t.signing_algorithm));
            header.typ = Some("JWT".into());
            let key = encoding_key(t.signing_algorithm, key.expose())?;
            Signer::Custom(Box::new((header, key)))
        } else {
            Signer::Instance
        };
        Ok(Self {
            version: t.version,
            claims,
            lifetime: t.lifetime,
            allowed_clock_skew: t.allowed_clock_skew,
            signer,
        })
    }

    /// Whether its tokens are signed with the keyring's key (not a key of its own).
    pub fn signed_by_instance(&self) -> bool {
        matches!(self.signer, Signer::Instance)
    }

    /// Renders and signs. `lifetime` overrides the template's (Backend API `expires_in_seconds`).
    #[allow(clippy::too_many_arguments)]
    pub fn mint(
        &self,
        keys: &SigningKey,
        user: &User,
        session: &Session,
        issuer: &str,
        origin: Option<&str>,
        now: Millis,
        lifetime: Option<u64>,
    ) -> Result<String, MintError> {
        let mut claims = self
            .claims
            .render_within(
                &TemplateContext { user, session },
                RENDERED_CLAIMS_MAX_BYTES,
            )
            .map_err(|_| MintError::TooLarge)?;
        // Templates saved before a claim was reserved must not set it either.
        for reserved in RESERVED_CLAIMS {
            claims.remove(reserved);
        }
        let iat = now / 1000;
        // The default claims always win; templates cannot save them anyway.
        if let Some(origin) = origin {
            claims.insert("azp".into(), json!(origin));
        }
        claims.insert(
            "exp".into(),
            json!(iat + lifetime.unwrap_or(self.lifetime) as i64),
        );
        claims.insert("iat".into(), json!(iat));
        claims.insert("iss".into(), json!(issuer));
        claims.insert("jti".into(), json!(crate::ids::new_id("jti")));
        claims.insert("nbf".into(), json!(iat - self.allowed_clock_skew as i64));
        claims.insert("sub".into(), json!(user.id));
        if json_len(&claims) > RENDERED_CLAIMS_MAX_BYTES {
            return Err(MintError::TooLarge);
        }
        Ok(match &self.signer {
            Signer::Instance => keys.sign_rs256_template(&claims)?,
            Signer::Custom(custom) => {
                let (header, key) = custom.as_ref();
                jsonwebtoken::encode(header, &claims, key).map_err(|_| KeyError::Sign)?
            }
        })
    }
}

/// What template shortcodes can name.
struct TemplateContext<'a> {
    user: &'a User,
    session: &'a Session,
}

impl TemplateContext<'_> {
    fn user_field(&self, field: &str) -> Option<Value> {
        let u = self.user;
        let secs = |ms: Millis| json!(ms / 1000);
        Some(match field {
            "id" => json!(u.id),
            "first_name" => json!(u.first_name),
            "last_name" => json!(u.last_name),
            "full_name" => {
                let parts: Vec<&str> = [&u.first_name, &u.last_name]
                    .into_iter()
                    .flatten()
                    .map(String::as_str)
                    .collect();
                if parts.is_empty() {
                    Value::Null
                } else {
                    json!(parts.join(" "))
                }
            }
            "username" => json!(u.username),
            "external_id" => json!(u.external_id),
            "primary_email_address" => json!(u.primary_email().map(|e| &e.email_address)),
            "primary_phone_number" => json!(u.primary_phone().map(|p| &p.phone_number)),
            "email_verified" => json!(u.primary_email().is_some_and(|e| e.verified)),
            "phone_number_verified" => json!(u.primary_phone().is_some_and(|p| p.verified)),
            "two_factor_enabled" => json!(false),
            "image_url" => json!(u.image_url.clone().unwrap_or_default()),
            "created_at" => secs(u.created_at),
            "updated_at" => secs(u.updated_at),
            "public_metadata" => Value::Object(u.public_metadata.clone()),
            "unsafe_metadata" => Value::Object(u.unsafe_metadata.clone()),
            _ => return None,
        })
    }
}

impl Context for TemplateContext<'_> {
    fn lookup(&self, path: &[String]) -> Option<Value> {
        let (object, rest) = path.split_first()?;
        let (field, deeper) = rest.split_first()?;
        // Metadata is dug into in place: only what the path names is copied, so a template
        // of many `{{user.public_metadata.x}}` never copies the whole 8 KB each time.
        let metadata = match (object.as_str(), field.as_str()) {
            ("user", "public_metadata") => Some(&self.user.public_metadata),
            ("user", "unsafe_metadata") => Some(&self.user.unsafe_metadata),
            _ => None,
        };
        if let Some(map) = metadata {
            return match deeper.split_first() {
                None => Some(Value::Object(map.clone())),
                Some((key, deeper)) => dig(map.get(key)?, deeper),
            };
        }
        let value = match object.as_str() {
            "user" => self.user_field(field)?,
            "session" if field == "actor" => self.session.actor.clone().unwrap_or(Value::Null),
            // Organizations do not exist yet: `org.*` and `org_membership.*` are null.
            _ => return None,
        };
        dig(&value, deeper)
    }
}
