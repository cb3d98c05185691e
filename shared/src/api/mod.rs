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

/// How many times a handler re-reads and re-applies its rule after losing a write race.
pub(crate) const MAX_ATTEMPTS: usize = 5;

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
