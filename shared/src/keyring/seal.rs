//! Private key material at rest. On AWS it is envelope-encrypted: each secret gets a fresh
//! AES-256 data key from KMS (`GenerateDataKey`), the secret is sealed locally with
//! AES-256-GCM, and only the KMS-encrypted data key is stored beside it. Reading it back
//! takes `kms:Decrypt` on that one KMS key, which only functions that sign or verify hold.
//! On the embedded store (SQLite) there is no KMS: the material is sealed with AES-256-GCM
//! under a local key-encryption key kept outside the database (`local_kek`). Plain
//! material (the in-memory store, databases of earlier versions) still opens; the
//! embedded store re-seals it when it starts.

use aws_lc_rs::aead::{Aad, Nonce, NONCE_LEN};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use super::local_kek::LocalKek;
use super::sealed::{aead_key, open_sealed, Sealed};
use crate::tokens::KeyError;

/// Binds a sealed secret to its kid and purpose: KMS refuses to decrypt a data key under
/// another context, and AES-GCM refuses a ciphertext moved to another kid.
const CONTEXT_PURPOSE: &str = "session-service-keyring";

/// How this process seals and opens key material.
#[derive(Clone)]
pub enum Sealer {
    Plain,
    Kms {
        client: aws_sdk_kms::Client,
        key_id: String,
    },
    /// The embedded store's local key-encryption key (`local_kek::resolve`).
    Local(LocalKek),
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Sealer::Plain => f.write_str("Sealer::Plain"),
            Sealer::Kms { key_id, .. } => write!(f, "Sealer::Kms({key_id})"),
            Sealer::Local(kek) => write!(f, "Sealer::Local({})", kek.key_id()),
        }
    }
}

fn kms_error(context: &str, err: impl std::fmt::Display) -> KeyError {
    KeyError::Kms(format!("{context}: {err}"))
}

impl Sealer {
    /// KMS when a key is configured (endpoint and credentials from the environment, as
    /// for DynamoDB), else plain.
    pub async fn from_config(kms_key_id: Option<&str>) -> Self {
        match kms_key_id {
            None => Sealer::Plain,
            Some(key_id) => {
                let config = aws_config::load_from_env().await;
                Sealer::Kms {
                    client: aws_sdk_kms::Client::new(&config),
                    key_id: key_id.to_string(),
                }
            }
        }
    }

    pub async fn seal(&self, kid: &str, material: &[u8]) -> Result<Sealed, KeyError> {
        let (client, key_id) = match self {
            Sealer::Plain => {
                return Ok(Sealed::Plain {
                    material: STANDARD.encode(material),
                })
            }
            Sealer::Local(kek) => return kek.seal(&local_aad(kid), material),
            Sealer::Kms { client, key_id } => (client, key_id),
        };
        let out = client
            .generate_data_key()
            .key_id(key_id)
            .key_spec(aws_sdk_kms::types::DataKeySpec::Aes256)
            .encryption_context("purpose", CONTEXT_PURPOSE)
            .encryption_context("kid", kid)
            .send()
            .await
            .map_err(|e| {
                kms_error(
                    "GenerateDataKey",
                    aws_sdk_kms::error::DisplayErrorContext(e),
                )
            })?;
        let plaintext_key = out
            .plaintext()
            .ok_or_else(|| kms_error("GenerateDataKey", "no plaintext key"))?;
        let encrypted_key = out
            .ciphertext_blob()
            .ok_or_else(|| kms_error("GenerateDataKey", "no encrypted key"))?;
        let key = aead_key(plaintext_key.as_ref())?;
        let nonce = crate::ids::random_bytes::<NONCE_LEN>();
        let mut in_out = material.to_vec();
        key.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(kid.as_bytes()),
            &mut in_out,
        )
        .map_err(|_| KeyError::Kms("sealing failed".into()))?;
        Ok(Sealed::Kms {
            key_id: out.key_id().unwrap_or(key_id).to_string(),
            data_key: STANDARD.encode(encrypted_key.as_ref()),
            nonce: STANDARD.encode(nonce),
            ciphertext: STANDARD.encode(in_out),
        })
    }

    pub async fn open(&self, kid: &str, sealed: &Sealed) -> Result<Vec<u8>, KeyError> {
        let unreadable = |_| KeyError::Unreadable("sealed key material is not base64");
        match (sealed, self) {
            (Sealed::Plain { material }, _) => STANDARD.decode(material).map_err(unreadable),
            (Sealed::Kms { .. }, Sealer::Plain | Sealer::Local(_)) => Err(KeyError::Unreadable(
                "key material is KMS-encrypted but KEY_ENCRYPTION_KMS_KEY_ID is not set",
            )),
            (Sealed::Local { .. }, Sealer::Plain | Sealer::Kms { .. }) => Err(KeyError::LocalKey(
                "key material is sealed with the embedded store's local key-encryption \
                     key, which this process does not use (KEY_ENCRYPTION_KMS_KEY_ID is set, \
                     or the store is not the embedded store's database)"
                    .into(),
            )),
            (
                Sealed::Local {
                    key_id,
                    nonce,
                    ciphertext,
                },
                Sealer::Local(kek),
            ) => kek.open(&local_aad(kid), key_id, nonce, ciphertext),
            (
                Sealed::Kms {
                    key_id,
                    data_key,
                    nonce,
                    ciphertext,
                },
                Sealer::Kms { client, .. },
            ) => {
                let data_key = STANDARD.decode(data_key).map_err(unreadable)?;
                let out = client
                    .decrypt()
                    .key_id(key_id)
                    .ciphertext_blob(aws_sdk_kms::primitives::Blob::new(data_key))
                    .encryption_context("purpose", CONTEXT_PURPOSE)
                    .encryption_context("kid", kid)
                    .send()
                    .await
                    .map_err(|e| {
                        kms_error("Decrypt", aws_sdk_kms::error::DisplayErrorContext(e))
                    })?;
                let plaintext_key = out
                    .plaintext()
                    .ok_or_else(|| kms_error("Decrypt", "no plaintext key"))?;
                let key = aead_key(plaintext_key.as_ref())?;
                open_sealed(&key, kid.as_bytes(), nonce, ciphertext)
            }
        }
    }
}

impl Sealer {
    /// Whether `sealed` opens with this sealer, as far as can be told without opening it:
    /// a start-up check, so that a wrong or missing key stops the process with a clear
    /// error instead of failing a webhook delivery later.
    pub fn check_opens(&self, sealed: &Sealed) -> Result<(), KeyError> {
        match (sealed, self) {
            (Sealed::Plain { .. }, _) | (Sealed::Kms { .. }, Sealer::Kms { .. }) => Ok(()),
            (Sealed::Local { key_id, .. }, Sealer::Local(kek)) => kek.check_key_id(key_id),
            (Sealed::Kms { .. }, _) => Err(KeyError::Unreadable(
                "key material is KMS-encrypted but KEY_ENCRYPTION_KMS_KEY_ID is not set",
            )),
            (Sealed::Local { .. }, _) => Err(KeyError::LocalKey(
                "key material is sealed with the embedded store's local key-encryption key, \
                 which this process does not use (KEY_ENCRYPTION_KMS_KEY_ID is set, or the \
                 store is not the embedded store's database)"
                    .into(),
            )),
        }
    }
}

/// The associated data of a locally sealed secret: its purpose and kid, so a ciphertext
/// moved to another key (or another use) fails its check, as the KMS variant's context.
fn local_aad(kid: &str) -> Vec<u8> {
    format!("{CONTEXT_PURPOSE}/{kid}").into_bytes()
}
