//! The keyring: the RSA keys that sign session and template tokens, and the HMAC secrets
//! that sign client tokens. Every key moves through the same states, computed from the
//! clock and the times stored with it, so no write is needed to step through them:
//!
//! | state    | from          | published | signs | verifies |
//! |----------|---------------|-----------|-------|----------|
//! | next     | `created_at`  | yes       | no    | yes      |
//! | current  | `signs_from`  | yes       | yes   | yes      |
//! | retiring | `retires_at`  | yes       | no    | yes      |
//! | gone     | `remove_at`   | no        | no    | no       |
//!
//! A rotation adds a *next* key that starts signing one JWKS cache window later, and
//! schedules the current key's retirement at that moment and its removal once every token
//! it can have signed has expired. docs/keys.md has the runbook.

pub mod local_kek;
pub mod reseal;
pub mod seal;
pub mod sealed;
pub mod service;

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::clock::Millis;
use crate::tokens::client_token::{
    ClientSecret, ClientTokenClaims, ClientTokenError, VerifiedTokens,
};
use crate::tokens::keys::RsaPublicJwk;
use crate::tokens::{KeyError, SigningKey};
pub use seal::Sealer;
pub use sealed::Sealed;

/// How far Clerk's verifiers let a token's `exp` and `nbf` slip (@clerk/backend's default
/// `clockSkewInMs`): a key stays published this much longer than its last token's `exp`.
pub const VERIFIER_CLOCK_SKEW_MS: Millis = 5_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyState {
    Next,
    Current,
    Retiring,
}

/// One key as stored: its lifecycle times, its public half (signing keys) and its sealed
/// private material.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredKey {
    pub kid: String,
    pub created_at: Millis,
    /// When it becomes current and starts signing.
    pub signs_from: Millis,
    /// When it stops signing (the next key's `signs_from`); `None` while none is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retires_at: Option<Millis>,
    /// When it is unpublished and stops verifying.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remove_at: Option<Millis>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public: Option<RsaPublicJwk>,
    pub sealed: Sealed,
}

impl std::fmt::Debug for StoredKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredKey")
            .field("kid", &self.kid)
            .field("signs_from", &self.signs_from)
            .field("retires_at", &self.retires_at)
            .field("remove_at", &self.remove_at)
            .finish_non_exhaustive()
    }
}

impl StoredKey {
    /// The key's state at `now`; `None` once it is gone.
    pub fn state(&self, now: Millis) -> Option<KeyState> {
        state_at(self.signs_from, self.retires_at, self.remove_at, now)
    }
}

/// A key's state at `now` from its times; `None` once it is gone.
fn state_at(
    signs_from: Millis,
    retires_at: Option<Millis>,
    remove_at: Option<Millis>,
    now: Millis,
) -> Option<KeyState> {
    if remove_at.is_some_and(|at| now >= at) {
        None
    } else if now < signs_from {
        Some(KeyState::Next)
    } else if retires_at.is_some_and(|at| now >= at) {
        Some(KeyState::Retiring)
    } else {
        Some(KeyState::Current)
    }
}

/// The whole keyring as stored, written all at once under a version check.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyringRecord {
    pub version: u64,
    pub signing_keys: Vec<StoredKey>,
    pub client_token_secrets: Vec<StoredKey>,
}

/// The public half of the keyring, stored apart so that the JWKS function can read it
/// without any access to private material.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicKeysRecord {
    pub version: u64,
    pub keys: Vec<PublishedKey>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishedKey {
    pub kid: String,
    #[serde(flatten)]
    pub public: RsaPublicJwk,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remove_at: Option<Millis>,
}

/// Which keys a rotation replaces.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyKinds {
    #[default]
    All,
    SessionSigning,
    ClientToken,
}

impl KeyKinds {
    fn signing(self) -> bool {
        matches!(self, KeyKinds::All | KeyKinds::SessionSigning)
    }
    fn client(self) -> bool {
        matches!(self, KeyKinds::All | KeyKinds::ClientToken)
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rotation {
    #[serde(default)]
    pub keys: KeyKinds,
    /// Switch at once and drop every other key of the kind (a leaked key).
    #[serde(default)]
    pub emergency: bool,
}

/// The durations a rotation schedules with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RotationTimes {
    /// How long a new key is published before it signs (the verifiers' JWKS cache).
    pub window_ms: Millis,
    /// How long a signing key stays published after it stops signing.
    pub signing_retire_ms: Millis,
    /// How long a client-token secret keeps verifying after it stops signing.
    pub client_retire_ms: Millis,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RotationError {
    #[error("a rotation is already under way: a next key has not started signing yet")]
    Pending,
}

impl KeyringRecord {
    /// The first keyring: one key of each kind, current at once (nothing verifies yet).
    pub fn initial(signing: StoredKey, client_secret: StoredKey) -> Self {
        Self {
            version: 1,
            signing_keys: vec![signing],
            client_token_secrets: vec![client_secret],
        }
    }

    /// Whether a key of `kinds` is still waiting to sign.
    pub fn pending(&self, kinds: KeyKinds, now: Millis) -> bool {
        let waiting =
            |keys: &[StoredKey]| keys.iter().any(|k| k.state(now) == Some(KeyState::Next));
        (kinds.signing() && waiting(&self.signing_keys))
            || (kinds.client() && waiting(&self.client_token_secrets))
    }

    /// The keyring after `rotation` at `now`, with the new keys given (their times are set
    /// here). Gone keys are dropped.
    pub fn rotated(
        &self,
        rotation: Rotation,
        now: Millis,
        times: RotationTimes,
        new_signing: Option<StoredKey>,
        new_secret: Option<StoredKey>,
    ) -> Result<Self, RotationError> {
        if !rotation.emergency && self.pending(rotation.keys, now) {
            return Err(RotationError::Pending);
        }
        let step = |keys: &[StoredKey], new: Option<StoredKey>, retire_ms: Millis| {
            let live = keys.iter().filter(|k| k.state(now).is_some()).cloned();
            let Some(mut new) = new else {
                return live.collect();
            };
            new.created_at = now;
            if rotation.emergency {
                new.signs_from = now;
                return vec![new];
            }
            let starts = now + times.window_ms;
            new.signs_from = starts;
            let mut out: Vec<StoredKey> = live
                .map(|mut k| {
                    if k.state(now) == Some(KeyState::Current) {
                        k.retires_at = Some(starts);
                        k.remove_at = Some(starts + retire_ms);
                    }
                    k
                })
                .collect();
            out.push(new);
            out
        };
        Ok(Self {
            version: self.version + 1,
            signing_keys: step(
                &self.signing_keys,
                new_signing.filter(|_| rotation.keys.signing()),
                times.signing_retire_ms,
            ),
            client_token_secrets: step(
                &self.client_token_secrets,
                new_secret.filter(|_| rotation.keys.client()),
                times.client_retire_ms,
            ),
        })
    }

    /// What the JWKS function may read.
    pub fn public_view(&self) -> PublicKeysRecord {
        PublicKeysRecord {
            version: self.version,
            keys: self
                .signing_keys
                .iter()
                .filter_map(|k| {
                    Some(PublishedKey {
                        kid: k.kid.clone(),
                        public: k.public.clone()?,
                        remove_at: k.remove_at,
                    })
                })
                .collect(),
        }
    }

    /// The lifecycle of every key, without key material: what the Backend API shows.
    pub fn describe(&self, now: Millis) -> Value {
        let keys = |keys: &[StoredKey]| {
            keys.iter()
                .filter_map(|k| {
                    Some(json!({
                        "kid": k.kid,
                        "state": k.state(now)?,
                        "created_at": k.created_at,
                        "signs_from": k.signs_from,
                        "retires_at": k.retires_at,
                        "remove_at": k.remove_at,
                    }))
                })
                .collect::<Vec<_>>()
        };
        json!({
            "object": "instance_keys",
            "version": self.version,
            "session_signing_keys": keys(&self.signing_keys),
            "client_token_secrets": keys(&self.client_token_secrets),
        })
    }
}

/// A new signing key, sealed; its times are set by the rotation.
pub async fn new_signing_key(sealer: &Sealer, now: Millis) -> Result<StoredKey, KeyError> {
    let (der, public) = SigningKey::generate()?;
    stored_signing_key(sealer, crate::ids::new_id("ins"), &der, public, now).await
}

/// A new client-token secret, sealed.
pub async fn new_client_secret(sealer: &Sealer, now: Millis) -> Result<StoredKey, KeyError> {
    stored_client_secret(
        sealer,
        crate::ids::new_id("cts"),
        &ClientSecret::generate(),
        now,
    )
    .await
}

/// The signing key `kid` with its PKCS#8 DER `der` and public half, sealed, current from
/// `now` (a new key, or the fixtures' fixed one: `crate::fixtures`).
pub async fn stored_signing_key(
    sealer: &Sealer,
    kid: String,
    der: &[u8],
    public: RsaPublicJwk,
    now: Millis,
) -> Result<StoredKey, KeyError> {
    let sealed = sealer.seal(&kid, der).await?;
    Ok(current_from(now, kid, sealed, Some(public)))
}

/// The client-token secret `kid` of the bytes `secret`, sealed, current from `now`.
pub async fn stored_client_secret(
    sealer: &Sealer,
    kid: String,
    secret: &[u8],
    now: Millis,
) -> Result<StoredKey, KeyError> {
    let sealed = sealer.seal(&kid, secret).await?;
    Ok(current_from(now, kid, sealed, None))
}

/// A key made at `now` and current from then on (a rotation sets other times).
fn current_from(
    now: Millis,
    kid: String,
    sealed: Sealed,
    public: Option<RsaPublicJwk>,
) -> StoredKey {
    StoredKey {
        kid,
        created_at: now,
        signs_from: now,
        retires_at: None,
        remove_at: None,
        public,
        sealed,
    }
}

/// A loaded key and its lifecycle times.
struct Live<K> {
    key: Arc<K>,
    signs_from: Millis,
    retires_at: Option<Millis>,
    remove_at: Option<Millis>,
}

/// What both kinds of loaded key have: the `kid` they are found by.
trait Kid {
    fn kid(&self) -> &str;
}

impl Kid for SigningKey {
    fn kid(&self) -> &str {
        SigningKey::kid(self)
    }
}

impl Kid for ClientSecret {
    fn kid(&self) -> &str {
        ClientSecret::kid(self)
    }
}

impl<K: Kid> Live<K> {
    fn state(&self, now: Millis) -> Option<KeyState> {
        state_at(self.signs_from, self.retires_at, self.remove_at, now)
    }

    /// Every stored key that is not gone at `now`: the one `previous` holds when it has
    /// it, else parsed from the material `opened` for its kid.
    fn load_all(
        stored: &[&StoredKey],
        previous: &[Live<K>],
        opened: &std::collections::HashMap<String, Vec<u8>>,
        parse: impl Fn(&str, &[u8]) -> Result<K, KeyError>,
    ) -> Result<Vec<Self>, KeyError> {
        stored
            .iter()
            .map(|stored| {
                let key = match previous.iter().find(|l| l.key.kid() == stored.kid) {
                    Some(live) => Arc::clone(&live.key),
                    None => {
                        let material =
                            opened.get(&stored.kid).ok_or(KeyError::Unreadable("key"))?;
                        Arc::new(parse(&stored.kid, material)?)
                    }
                };
                Ok(Live::from_stored(stored, key))
            })
            .collect()
    }

    fn from_stored(stored: &StoredKey, key: Arc<K>) -> Self {
        Self {
            key,
            signs_from: stored.signs_from,
            retires_at: stored.retires_at,
            remove_at: stored.remove_at,
        }
    }
}

/// The keyring as a process uses it: keys parsed once, kept across reloads by kid.
pub struct Keyring {
    version: u64,
    published: Vec<PublishedKey>,
    signing: Vec<Live<SigningKey>>,
    secrets: Vec<Live<ClientSecret>>,
    /// Client tokens verified with these secrets (a reload starts afresh).
    verified: VerifiedTokens,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring")
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

/// The live key of a list that signs at `now`: the latest to have become current.
fn current<K: Kid>(keys: &[Live<K>], now: Millis) -> Option<&K> {
    current_live(keys, now).map(|k| k.key.as_ref())
}

fn current_live<K: Kid>(keys: &[Live<K>], now: Millis) -> Option<&Live<K>> {
    keys.iter()
        .filter(|k| k.state(now) == Some(KeyState::Current))
        .max_by_key(|k| k.signs_from)
}

impl Keyring {
    /// No keys: for functions that never sign, verify or publish.
    pub fn empty() -> Self {
        Self {
            version: 0,
            published: Vec::new(),
            signing: Vec::new(),
            secrets: Vec::new(),
            verified: VerifiedTokens::default(),
        }
    }

    pub fn version(&self) -> u64 {
        self.version
    }

    /// Public keys only: what the JWKS function serves.
    pub fn public(record: &PublicKeysRecord) -> Self {
        Self {
            version: record.version,
            published: record.keys.clone(),
            ..Self::empty()
        }
    }

    /// Opens every key that is not gone at `now`, reusing those `previous` already holds.
    /// The others are opened concurrently: on AWS each is one KMS `Decrypt`.
    pub async fn load(
        record: &KeyringRecord,
        sealer: &Sealer,
        previous: &Keyring,
        now: Millis,
    ) -> Result<Self, KeyError> {
        let live_signing: Vec<&StoredKey> = record
            .signing_keys
            .iter()
            .filter(|k| k.state(now).is_some())
            .collect();
        let live_secrets: Vec<&StoredKey> = record
            .client_token_secrets
            .iter()
            .filter(|k| k.state(now).is_some())
            .collect();
        let known = |kid: &str| {
            previous.signing.iter().any(|l| l.key.kid() == kid)
                || previous.secrets.iter().any(|l| l.key.kid() == kid)
        };
        let mut opening = tokio::task::JoinSet::new();
        for stored in live_signing.iter().chain(&live_secrets) {
            if !known(&stored.kid) {
                let (sealer, kid, sealed) =
                    (sealer.clone(), stored.kid.clone(), stored.sealed.clone());
                opening.spawn(async move {
                    let material = sealer.open(&kid, &sealed).await;
                    (kid, material)
                });
            }
        }
        let mut opened = std::collections::HashMap::new();
        while let Some(done) = opening.join_next().await {
            let (kid, material) = done.map_err(|_| KeyError::Unreadable("key opening failed"))?;
            opened.insert(kid, material?);
        }

        let signing = Live::load_all(
            &live_signing,
            &previous.signing,
            &opened,
            SigningKey::from_pkcs8,
        )?;
        let secrets = Live::load_all(
            &live_secrets,
            &previous.secrets,
            &opened,
            ClientSecret::from_bytes,
        )?;
        Ok(Self {
            version: record.version,
            published: record.public_view().keys,
            signing,
            secrets,
            verified: VerifiedTokens::default(),
        })
    }

    /// A loaded signing key by kid (for its public PEM).
    pub fn signing_key(&self, kid: &str) -> Option<&SigningKey> {
        self.signing
            .iter()
            .find(|l| l.key.kid() == kid)
            .map(|l| l.key.as_ref())
    }

    /// The key that signs session and template tokens at `now`.
    pub fn signer(&self, now: Millis) -> Result<&SigningKey, KeyError> {
        current(&self.signing, now).ok_or(KeyError::NoCurrentKey)
    }

    /// The latest `exp` a token signed at `now` may carry: once a rotation has scheduled
    /// the current key's removal, no token it signs may outlive its publication (with the
    /// verifiers' clock skew). `None` while no removal is scheduled.
    pub fn latest_exp(&self, now: Millis) -> Option<Millis> {
        current_live(&self.signing, now)
            .and_then(|k| k.remove_at)
            .map(|at| at - VERIFIER_CLOCK_SKEW_MS)
    }

    /// Every published key (next, current and retiring) as a JWKS document.
    pub fn jwks(&self, now: Millis) -> Value {
        let keys: Vec<Value> = self
            .published
            .iter()
            .filter(|k| k.remove_at.is_none_or(|at| now < at))
            .map(|k| k.public.to_jwk(&k.kid))
            .collect();
        json!({ "keys": keys })
    }

    /// The secret that signs client tokens at `now`.
    pub fn client_secret(&self, now: Millis) -> Result<&ClientSecret, KeyError> {
        current(&self.secrets, now).ok_or(KeyError::NoCurrentKey)
    }

    /// The client-token secret named `kid`, while it is kept (current or retiring).
    pub fn client_secret_named(&self, kid: &str, now: Millis) -> Option<&ClientSecret> {
        self.secrets
            .iter()
            .find(|l| l.key.kid() == kid && l.state(now).is_some())
            .map(|l| l.key.as_ref())
    }

    /// Verifies a client token against every secret that is not gone. Answers the claims
    /// and whether the token should be re-signed with the current secret.
    /// How many client tokens this keyring remembers as verified, and their bytes.
    pub fn verified_tokens(&self) -> (usize, usize) {
        self.verified.size()
    }

    pub fn verify_client_token(
        &self,
        token: &str,
        now: Millis,
    ) -> Result<(ClientTokenClaims, bool), ClientTokenError> {
        let (claims, kid) = self
            .verified
            .verify(token, now, |kid| self.client_secret_named(kid, now))?;
        let stale = current(&self.secrets, now).is_none_or(|c| c.kid() != kid);
        Ok((claims, stale))
    }
}

#[cfg(test)]
mod tests;
