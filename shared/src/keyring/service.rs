//! The keyring against the store: loading it, and creating it on the first start.
//! Rotating it is an operation of the application layer (`app::keys`).

use std::future::Future;
use std::pin::Pin;

use super::{new_client_secret, new_signing_key, Keyring, KeyringRecord, Sealer};
use crate::clock::Clock;
use crate::store::{Expect, Store, StoreError};
use crate::tokens::KeyError;

/// What a process may do with the keyring. Least privilege: a function holds only the
/// access its routes need, and template.yaml grants it only the matching IAM actions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyAccess {
    /// Never signs, verifies or publishes (`GET /v1/environment`).
    None,
    /// Publishes public keys only (the JWKS function): never reads private material.
    Public,
    /// Signs and verifies: opens private material, and creates the keyring if missing.
    Private,
}

/// What reading, creating or re-sealing the stored keyring fails on: the store, or a key
/// (generating, sealing or opening one). A start-up error (`StartupError`) of the same
/// name.
#[derive(Debug, thiserror::Error)]
pub enum KeyringError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Keys(#[from] KeyError),
}

/// Where a process loads its keyring from: its store (as the state holds it, counted and
/// timed), the sealer that opens private material, and its clock.
#[derive(Clone, Copy)]
pub struct KeySource<'a> {
    pub store: &'a dyn Store,
    pub sealer: &'a Sealer,
    pub clock: &'a dyn Clock,
}

/// A loader's answer, boxed: one type for the loaders chosen through [`LoadKeys`].
pub type LoadFuture<'a> = Pin<Box<dyn Future<Output = Result<Keyring, KeyringError>> + Send + 'a>>;

/// How a process loads its keyring: one function per [`KeyAccess`], so that a process
/// that names only the public loader (the JWKS function) links no code that opens
/// private material (nor the KMS client it would need). Given the keyring in hand and
/// whether to create one when there is none.
pub type LoadKeys = for<'a> fn(KeySource<'a>, &'a Keyring, bool) -> LoadFuture<'a>;

/// The loader for `access`.
pub fn loader(access: KeyAccess) -> LoadKeys {
    match access {
        KeyAccess::None => load_none,
        KeyAccess::Public => load_public,
        KeyAccess::Private => load_private,
    }
}

/// No keys: the process never signs, verifies or publishes.
pub fn load_none<'a>(_: KeySource<'a>, _: &'a Keyring, _: bool) -> LoadFuture<'a> {
    Box::pin(async { Ok(Keyring::empty()) })
}

/// The public keys alone.
pub fn load_public<'a>(source: KeySource<'a>, _: &'a Keyring, _: bool) -> LoadFuture<'a> {
    Box::pin(async move {
        Ok(match source.store.public_keys().await? {
            Some(record) => Keyring::public(&record),
            None => Keyring::empty(),
        })
    })
}

/// The whole keyring, private material unsealed; or `previous` again when the stored one
/// has not changed. `create`: write a first keyring when there is none.
pub fn load_private<'a>(
    source: KeySource<'a>,
    previous: &'a Keyring,
    create: bool,
) -> LoadFuture<'a> {
    Box::pin(async move {
        let record = match source.store.keyring().await? {
            Some(record) => record,
            None if create => create_first(source).await?,
            None => return Err(StoreError::Fault("the keyring is missing".into()).into()),
        };
        let now = source.clock.now_ms();
        Ok(Keyring::load(&record, source.sealer, previous, now).await?)
    })
}

/// Writes a first keyring. When cold starts race, exactly one write lands: the others
/// lose on the store's absent-check and read the winner's.
async fn create_first(source: KeySource<'_>) -> Result<KeyringRecord, KeyringError> {
    let now = source.clock.now_ms();
    let fresh = KeyringRecord::initial(
        new_signing_key(source.sealer, now).await?,
        new_client_secret(source.sealer, now).await?,
    );
    match source
        .store
        .put_keyring(fresh.clone(), Expect::Absent)
        .await
    {
        Ok(()) => {
            tracing::info!("keyring created");
            Ok(fresh)
        }
        Err(StoreError::Conflict) => Ok(source
            .store
            .keyring()
            .await?
            .ok_or_else(|| StoreError::Fault("the keyring vanished".into()))?),
        Err(err) => Err(err.into()),
    }
}
