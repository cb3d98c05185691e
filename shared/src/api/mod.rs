//! One module per resource, one async fn per endpoint: `(state, request) -> response`.
//! A handler reads like its endpoint's description: authenticate, load, apply the rule,
//! save, answer.

pub mod bapi;
pub mod fapi;

use std::collections::HashMap;

use crate::domain::User;
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::StoreError;

/// How many times a handler reads and applies its rule before giving up on a record that
/// keeps changing under it.
pub(crate) const MAX_ATTEMPTS: usize = 8;

/// Before attempt `attempt` (from 0): nothing the first time, then a short random pause
/// that grows with each lost race, so racing requests stop colliding.
pub(crate) async fn pause_before(attempt: usize) {
    if attempt == 0 {
        return;
    }
    let cap_ms = 2u64 << attempt.min(5);
    let jitter = u64::from(crate::ids::random_bytes::<1>()[0]) % cap_ms;
    tokio::time::sleep(std::time::Duration::from_millis(1 + jitter)).await;
}

/// `Ok(true)` when the writes landed, `Ok(false)` when another request won the race and
/// the handler should re-read and decide again.
pub(crate) fn landed(result: Result<(), StoreError>) -> Result<bool, ApiError> {
    match result {
        Ok(()) => Ok(true),
        Err(StoreError::Conflict) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// The users behind some sessions, by id, in one store call.
pub(crate) async fn users_by_id(
    state: &AppState,
    user_ids: impl Iterator<Item = &String>,
) -> Result<HashMap<String, User>, ApiError> {
    let mut ids: Vec<String> = user_ids.cloned().collect();
    ids.sort();
    ids.dedup();
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let users = state.store.get_users(&ids).await?;
    Ok(users.into_iter().map(|u| (u.id.clone(), u)).collect())
}
