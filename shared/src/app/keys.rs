//! Rotating the keyring (the Backend API's `POST /v1/instance/keys/rotate`, the
//! key-rotation function, `local-api rotate-keys`): docs/keys.md.

use crate::clock::Millis;
use crate::error::ApiError;
use crate::keyring::{
    new_client_secret, new_signing_key, KeyState, Keyring, KeyringRecord, Rotation, RotationError,
    RotationTimes, VERIFIER_CLOCK_SKEW_MS,
};
use crate::state::AppState;
use crate::store::{Expect, StoreError};

/// How long after it stops signing a key must stay: until every token it can have signed
/// has expired (and verifiers' clock skew), counting the slack of processes that learn of
/// the rotation one refresh late.
async fn rotation_times(state: &AppState) -> Result<RotationTimes, ApiError> {
    let ms = |d: std::time::Duration| d.as_millis() as Millis;
    let longest_template = state
        .store
        .list_jwt_templates()
        .await?
        .iter()
        .map(|t| t.lifetime)
        .max()
        .unwrap_or(0);
    let longest = ms(state.config.session_token_lifetime)
        .max(longest_template.min(i64::MAX as u64 / 2_000) as Millis * 1000);
    let slack = ms(state.config.keyring_refresh_interval());
    Ok(RotationTimes {
        window_ms: ms(state.config.jwks_cache_window),
        signing_retire_ms: longest + VERIFIER_CLOCK_SKEW_MS + slack,
        client_retire_ms: ms(state.config.client_token_lifetime) + slack,
    })
}

/// Rotates the keys `rotation` names and answers the stored keyring. This process uses
/// the new keyring at once; others within a refresh interval.
pub async fn rotate(state: &AppState, rotation: Rotation) -> Result<KeyringRecord, ApiError> {
    let result = try_rotate(state, rotation).await;
    crate::metrics::key_rotation(result.as_ref().map(|_| ()).map_err(|e| e.status.as_u16()));
    result
}

async fn try_rotate(state: &AppState, rotation: Rotation) -> Result<KeyringRecord, ApiError> {
    let record = state
        .store
        .keyring()
        .await?
        .ok_or_else(|| ApiError::from(StoreError::Fault("the keyring is missing".into())))?;
    let now = state.now();
    if !rotation.emergency && record.pending(rotation.keys, now) {
        let signs_from = record
            .signing_keys
            .iter()
            .chain(&record.client_token_secrets)
            .filter(|k| k.state(now) == Some(KeyState::Next))
            .map(|k| k.signs_from)
            .max()
            .unwrap_or(now);
        return Err(ApiError::key_rotation_pending(signs_from));
    }
    let times = rotation_times(state).await?;
    let next = record
        .rotated(
            rotation,
            now,
            times,
            Some(new_signing_key(&state.sealer, now).await?),
            Some(new_client_secret(&state.sealer, now).await?),
        )
        .map_err(|RotationError::Pending| ApiError::key_rotation_pending(now))?;
    match state
        .store
        .put_keyring(next.clone(), Expect::Version(record.version))
        .await
    {
        Ok(()) => {}
        Err(StoreError::Conflict) => return Err(ApiError::conflict("The keyring")),
        Err(err) => return Err(err.into()),
    }
    tracing::info!(
        version = next.version,
        emergency = rotation.emergency,
        keys = ?rotation.keys,
        "keys rotated"
    );
    let previous = state.keys();
    let loaded = Keyring::load(&next, &state.sealer, &previous, state.now()).await?;
    state.replace_keys(loaded);
    Ok(next)
}
