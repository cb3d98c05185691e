//! The application layer: operations both APIs share, between the handlers in `api/`
//! and the domain and store. Retrying a read-decide-write on a lost race, reading the
//! users behind sessions, minting and rotating the keyring live here.

pub mod clients;
pub mod handshake;
pub mod keys;
pub mod minting;
pub mod passwords;
pub mod sessions;
pub mod sign_in;
pub mod sign_ins;
pub mod sign_ups;
pub mod users;

use std::collections::HashMap;
use std::sync::Arc;

use crate::clock::Millis;
use crate::domain::{SessionAction, User};
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::StoreError;
use crate::webhooks::{EventContext, EventType, RequestOrigin};

/// How many times an operation reads and applies its rule before giving up on a record
/// that keeps changing under it.
const MAX_ATTEMPTS: usize = 8;

/// Runs a read-decide-write `step` until its writes land. The step answers `Some` when
/// they did (or nothing needed writing), `None` when another request won the race: it then
/// runs again on a fresh read, so the loser answers what it would have answered had it
/// come second; each rerun counts as a retry of `operation`. After [`MAX_ATTEMPTS`] lost
/// races: 409, naming `what`.
///
/// The step is `|| async move { … }` over references, so its future is `Send` (an async
/// closure's is not provably so, and Lambda's runtime needs it).
pub(crate) async fn retrying<T, F>(
    operation: &'static str,
    what: &str,
    mut step: impl FnMut() -> F,
) -> Result<T, ApiError>
where
    F: std::future::Future<Output = Result<Option<T>, ApiError>>,
{
    for attempt in 0..MAX_ATTEMPTS {
        if attempt > 0 {
            crate::metrics::retry(operation);
        }
        pause_before(attempt).await;
        if let Some(done) = step().await? {
            return Ok(done);
        }
    }
    Err(ApiError::conflict(what))
}

/// Before attempt `attempt` (from 0): nothing the first time, then a short random pause
/// that grows with each lost race, so racing requests stop colliding.
async fn pause_before(attempt: usize) {
    if attempt == 0 {
        return;
    }
    let cap_ms = 2u64 << attempt.min(5);
    let jitter = u64::from(crate::ids::random_bytes::<1>()[0]) % cap_ms;
    tokio::time::sleep(std::time::Duration::from_millis(1 + jitter)).await;
}

/// Session status writes per commit: a client's or a user's sessions are not bounded,
/// while a DynamoDB transaction holds at most 100 items (each session may carry its
/// webhook event too).
const SESSIONS_PER_COMMIT: usize = 25;

/// Commits the writes of many sessions (each one's status write and its event), at most
/// [`SESSIONS_PER_COMMIT`] sessions per commit. `Ok(false)` when a commit lost a race:
/// those before it landed, and the caller reads again, where the sessions already moved
/// no longer qualify, so it converges and no session moves (or sends its event) twice.
pub(crate) async fn commit_per_session(
    state: &AppState,
    writes: Vec<Vec<crate::store::Write>>,
) -> Result<bool, ApiError> {
    let mut writes = writes.into_iter().peekable();
    while writes.peek().is_some() {
        let chunk: Vec<_> = writes
            .by_ref()
            .take(SESSIONS_PER_COMMIT)
            .flatten()
            .collect();
        if !landed(state.store.commit(chunk).await)? {
            return Ok(false);
        }
    }
    Ok(true)
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

/// What the webhook events of a change made at `now` for the request `origin` share, when
/// an event of `kind` is to be recorded with it; `None` when not (no event is recorded):
/// - webhooks are off;
/// - `kind` is `None` (the change sends no event);
/// - on a store that delivers its own events (the embedded stores' outbox), no endpoint
///   wants `kind` as the change is made. Svix, too, sends a message only to the endpoints
///   that exist when it is sent; so a change with no one to tell costs no user read, no
///   rendering and no write. On DynamoDB every event is recorded: the stream's function
///   picks its endpoints, and a read here would cost every change a round trip.
pub(crate) async fn events<'a>(
    state: &'a AppState,
    origin: &'a RequestOrigin,
    now: Millis,
    kind: Option<EventType>,
) -> Result<Option<EventContext<'a>>, ApiError> {
    let Some(kind) = kind.filter(|_| state.config.webhooks.enabled) else {
        return Ok(None);
    };
    if state.store.outbox().is_some()
        && !(state.store.list_webhook_endpoints().await?)
            .iter()
            .any(|e| e.wants(kind))
    {
        return Ok(None);
    }
    Ok(Some(EventContext {
        instance_id: &state.config.instance_id,
        origin,
        now,
    }))
}

/// The event a session's move out of the signed-in states sends.
pub(crate) fn session_event(action: SessionAction) -> Option<EventType> {
    match action {
        SessionAction::End => Some(EventType::SessionEnded),
        SessionAction::Remove => Some(EventType::SessionRemoved),
        SessionAction::Revoke => Some(EventType::SessionRevoked),
        SessionAction::Touch | SessionAction::MintToken => None,
    }
}

/// The user a session event shows: read only when there will be an event.
pub(crate) async fn event_user(
    state: &AppState,
    events: &Option<EventContext<'_>>,
    user_id: &str,
) -> Result<Option<User>, ApiError> {
    Ok(match events {
        Some(_) => state.store.get_user(user_id).await?,
        None => None,
    })
}

/// The users behind some sessions, by id, in one store call.
pub(crate) async fn users_by_id(
    state: &AppState,
    user_ids: impl Iterator<Item = &String>,
) -> Result<HashMap<String, Arc<User>>, ApiError> {
    let mut ids: Vec<String> = user_ids.cloned().collect();
    ids.sort();
    ids.dedup();
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let users = state.store.get_users(&ids).await?;
    Ok(users.into_iter().map(|u| (u.id.clone(), u)).collect())
}
