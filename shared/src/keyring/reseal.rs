//! The sealed secrets the embedded store holds at rest (the keyring's keys, webhook
//! endpoints' secrets), checked against this process's sealer when it starts, and those
//! stored plain (by versions before the local key-encryption key) sealed with it, so that
//! no plain material remains in the database.

use super::service::KeyringError;
use super::{Sealed, Sealer};
use crate::store::{Expect, Store, StoreError, Write};
use crate::tokens::KeyError;

/// How often a re-seal that lost a race to another process is tried again on fresh data.
const ATTEMPTS: usize = 5;

/// Whether anything in `store` is sealed with a local key-encryption key (then a missing
/// key is an error, not a first start).
pub async fn holds_local(store: &dyn Store) -> Result<bool, StoreError> {
    let local = |s: &Sealed| matches!(s, Sealed::Local { .. });
    let keyring = store.keyring().await?;
    let in_keyring = keyring.iter().any(|k| {
        k.signing_keys
            .iter()
            .chain(&k.client_token_secrets)
            .any(|key| local(&key.sealed))
    });
    let in_endpoints = store
        .list_webhook_endpoints()
        .await?
        .iter()
        .any(|e| local(&e.secret) || e.previous_secret.as_ref().is_some_and(local));
    Ok(in_keyring || in_endpoints)
}

/// Checks that everything sealed in `store` opens with `sealer` (a wrong key stops the
/// start with a clear error), and seals what is stored plain with it, each record in a
/// write conditioned on the version read. Answers how many secrets were re-sealed.
pub async fn seal_plain_material(
    store: &dyn Store,
    sealer: &Sealer,
) -> Result<usize, KeyringError> {
    for _ in 1..ATTEMPTS {
        match seal_once(store, sealer).await {
            Err(KeyringError::Store(StoreError::Conflict)) => continue,
            done => return done,
        }
    }
    seal_once(store, sealer).await
}

async fn seal_once(store: &dyn Store, sealer: &Sealer) -> Result<usize, KeyringError> {
    let mut sealed = 0;
    if let Some(mut keyring) = store.keyring().await? {
        let mut changed = 0;
        for key in keyring
            .signing_keys
            .iter_mut()
            .chain(keyring.client_token_secrets.iter_mut())
        {
            changed += usize::from(seal_if_plain(sealer, &key.kid, &mut key.sealed).await?);
        }
        if changed > 0 {
            let expect = Expect::Version(keyring.version);
            keyring.version += 1;
            store.put_keyring(keyring, expect).await?;
            sealed += changed;
        }
    }
    for mut endpoint in store.list_webhook_endpoints().await? {
        let id = endpoint.id.clone();
        let mut changed = usize::from(seal_if_plain(sealer, &id, &mut endpoint.secret).await?);
        if let Some(previous) = endpoint.previous_secret.as_mut() {
            changed += usize::from(seal_if_plain(sealer, &id, previous).await?);
        }
        if changed > 0 {
            endpoint.version += 1;
            store
                .commit(vec![Write::webhook_endpoint(endpoint)])
                .await?;
            sealed += changed;
        }
    }
    if sealed > 0 {
        tracing::info!(secrets = sealed, "sealed the key material stored plain");
    }
    Ok(sealed)
}

/// Seals `sealed` with `sealer` if it is plain; answers whether it did.
async fn seal_if_plain(sealer: &Sealer, kid: &str, sealed: &mut Sealed) -> Result<bool, KeyError> {
    sealer.check_opens(sealed)?;
    if !matches!(sealed, Sealed::Plain { .. }) {
        return Ok(false);
    }
    let material = sealer.open(kid, sealed).await?;
    *sealed = sealer.seal(kid, &material).await?;
    Ok(true)
}
