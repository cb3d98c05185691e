//! Key material as stored: plain, or sealed with AES-256-GCM under a KMS data key or the
//! embedded store's local key-encryption key; and the AES-256-GCM primitives both ways of
//! sealing share (`seal::Sealer` chooses the way, `local_kek` holds the local key).

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::tokens::KeyError;

/// Private material as stored (keyring keys, webhook endpoints' secrets).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "scheme", rename_all = "snake_case")]
pub enum Sealed {
    /// The material itself, base64 (local installs only).
    Plain { material: String },
    /// AES-256-GCM ciphertext (tag appended) under a data key that KMS encrypted.
    Kms {
        key_id: String,
        data_key: String,
        nonce: String,
        ciphertext: String,
    },
    /// AES-256-GCM ciphertext (tag appended) under the embedded store's local
    /// key-encryption key, named by `key_id` (a digest of the key, not the key).
    Local {
        key_id: String,
        nonce: String,
        ciphertext: String,
    },
}

impl std::fmt::Debug for Sealed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Sealed::Plain { .. } => "Sealed::Plain",
            Sealed::Kms { .. } => "Sealed::Kms",
            Sealed::Local { .. } => "Sealed::Local",
        })
    }
}

/// Opens AES-256-GCM `ciphertext` (tag appended) sealed under `key` with `nonce` and
/// `aad`, both stored base64: the one way sealed material opens, under a KMS data key or
/// the local key-encryption key.
pub(super) fn open_sealed(
    key: &LessSafeKey,
    aad: &[u8],
    nonce: &str,
    ciphertext: &str,
) -> Result<Vec<u8>, KeyError> {
    let unreadable = |_| KeyError::Unreadable("sealed key material is not base64");
    let nonce: [u8; NONCE_LEN] = STANDARD
        .decode(nonce)
        .map_err(unreadable)?
        .try_into()
        .map_err(|_| KeyError::Unreadable("sealed key nonce"))?;
    let mut in_out = STANDARD.decode(ciphertext).map_err(unreadable)?;
    let plain = key
        .open_in_place(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad),
            &mut in_out,
        )
        .map_err(|_| KeyError::Unreadable("sealed key material fails its check"))?;
    Ok(plain.to_vec())
}

pub(super) fn aead_key(bytes: &[u8]) -> Result<LessSafeKey, KeyError> {
    UnboundKey::new(&AES_256_GCM, bytes)
        .map(LessSafeKey::new)
        .map_err(|_| KeyError::Kms("data key is not AES-256".into()))
}
