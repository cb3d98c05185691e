//! Session actions: a touch, and the transitions that sign a session out (end and remove
//! from its client, revoke from the Backend API). Each is at most one write per record
//! touched, conditioned on what was read; the rules themselves are `domain::session`'s.

use super::clients;
use super::minting::{record_activity, Seen};
use super::{event_user, events, landed, retrying, session_event};
use crate::domain::{ClientState, Session, SessionAction};
use crate::error::ApiError;
use crate::http::auth::ClientAuth;
use crate::state::AppState;
use crate::store::{StoreError, Write};
use crate::webhooks::RequestOrigin;

/// One of the client's sessions. Any other id (another client's, a malformed one) is 404
/// `resource_not_found`: a session is reachable only through its own client.
pub fn of_client<'a>(cs: &'a ClientState, id: &str) -> Result<&'a Session, ApiError> {
    cs.session(id)
        .ok_or_else(|| ApiError::session_not_found(id))
}

/// Touch: the session becomes the client's last active one and its activity is recorded
/// (when due). Neither write names a version, so racing touches, mints and ends do not
/// conflict: each touch answers 200, or the transition's own 4xx. Answers the client as
/// it then is.
pub async fn touch(
    state: &AppState,
    auth: &ClientAuth,
    id: &str,
    seen: Seen<'_>,
) -> Result<ClientState, ApiError> {
    let mut cs = clients::require(state, auth).await?;
    let now = state.now();
    let session = of_client(&cs, id)?;
    session
        .check(SessionAction::Touch, now)
        .map_err(|e| ApiError::from_transition(e, id))?;
    if session.activity_due(now, state.lifetimes()) {
        let recorded = record_activity(state, session, now, seen).await;
        if let Some(slot) = cs.sessions.iter_mut().find(|s| s.id == id) {
            *slot = recorded;
        }
    }
    if cs.client.last_active_session_id.as_deref() != Some(id) {
        let pointer = Write::LastActiveSession {
            client_id: cs.client.id.clone(),
            session_id: id.to_string(),
            at: now,
        };
        match state.store.commit(vec![pointer]).await {
            Ok(()) => {
                cs.client.last_active_session_id = Some(id.to_string());
                cs.client.updated_at = now;
            }
            // The client is gone (signed out elsewhere and expired): no client.
            Err(StoreError::Conflict) => return Err(ApiError::signed_out()),
            Err(e) => return Err(e.into()),
        }
    }
    Ok(cs)
}

/// Ends or removes one of the caller's sessions: one write of its status, conditioned on
/// the status it was read with. A lost race means the status moved meanwhile; the re-read
/// then answers what this request would have answered had it come second (for example 400
/// for ending an ended session). The client needs no write: it shows a last active session
/// only while that session is signed in. Answers the client as it then is.
pub async fn sign_out(
    state: &AppState,
    auth: &ClientAuth,
    id: &str,
    action: SessionAction,
    origin: &RequestOrigin,
) -> Result<ClientState, ApiError> {
    let label = action.verb();
    let cs = retrying(label, "The session", || async move {
        let mut cs = clients::require(state, auth).await?;
        let now = state.now();
        let session = of_client(&cs, id)?;
        let to = session
            .check(action, now)
            .map_err(|e| ApiError::from_transition(e, id))?;
        let next = session.with_status(to, now);
        let writes = status_writes(state, session, &next, action, origin, now).await?;
        if !landed(state.store.commit(writes).await)? {
            return Ok(None);
        }
        if let Some(slot) = cs.sessions.iter_mut().find(|s| s.id == id) {
            *slot = next;
        }
        Ok(Some(cs))
    })
    .await?;
    crate::metrics::session_transitions(label, 1);
    Ok(cs)
}

/// The write that moves `read` to `next`'s status by `action`, and its webhook event.
async fn status_writes(
    state: &AppState,
    read: &Session,
    next: &Session,
    action: SessionAction,
    origin: &RequestOrigin,
    now: crate::clock::Millis,
) -> Result<Vec<Write>, ApiError> {
    let mut writes = vec![Write::session_status(read, next.status, now)];
    let kind = session_event(action);
    let events = events(state, origin, now, kind).await?;
    let user = event_user(state, &events, &read.user_id).await?;
    if let (Some(events), Some(kind)) = (&events, kind) {
        writes.push(Write::Event(events.session(kind, next, user.as_ref())));
    }
    Ok(writes)
}

/// Any session, by id, for the Backend API (which may see every session).
pub async fn find(state: &AppState, id: &str) -> Result<Session, ApiError> {
    state
        .store
        .get_session(id)
        .await?
        .ok_or_else(|| ApiError::session_not_found(id))
}

/// Revokes a signed-in session (Backend API): one write of its status, conditioned on the
/// status it was read with (a lost race re-reads and answers as if it had come second).
/// Its client then shows no last active session, since that is shown only while signed
/// in. Answers the session as it then is.
pub async fn revoke(
    state: &AppState,
    id: &str,
    origin: &RequestOrigin,
) -> Result<Session, ApiError> {
    revoke_if(state, id, origin, |_| true).await
}

/// [`revoke`], of a session `reachable` says the caller may see; any other is 404, exactly
/// like an unknown id.
async fn revoke_if(
    state: &AppState,
    id: &str,
    origin: &RequestOrigin,
    reachable: impl Fn(&Session) -> bool,
) -> Result<Session, ApiError> {
    let label = SessionAction::Revoke.verb();
    let reachable = &reachable;
    let session = retrying(label, "The session", || async move {
        let session = find(state, id).await?;
        if !reachable(&session) {
            return Err(ApiError::session_not_found(id));
        }
        let now = state.now();
        let to = session
            .check(SessionAction::Revoke, now)
            .map_err(|e| ApiError::from_transition(e, id))?;
        let next = session.with_status(to, now);
        let writes =
            status_writes(state, &session, &next, SessionAction::Revoke, origin, now).await?;
        if !landed(state.store.commit(writes).await)? {
            return Ok(None);
        }
        Ok(Some(next))
    })
    .await?;
    crate::metrics::session_transitions(label, 1);
    Ok(session)
}

/// The session a `/v1/me` request acts as: the caller's session named by
/// `_clerk_session_id` (clerk-js sends it) when it is one of its client's signed-in
/// sessions, else the client's last active session. Its user is "me". None is 401
/// `signed_out`, as for any request of a client that is not signed in.
pub async fn requesting(
    state: &AppState,
    auth: &ClientAuth,
    named: Option<&str>,
) -> Result<(ClientState, Session), ApiError> {
    let cs = clients::require(state, auth).await?;
    let now = state.now();
    let signed_in = |id: &str| {
        cs.session(id)
            .filter(|s| s.status_at(now).is_signed_in())
            .cloned()
    };
    let session = named
        .and_then(signed_in)
        .or_else(|| cs.last_active_session_id(now).and_then(signed_in))
        .ok_or_else(ApiError::signed_out)?;
    Ok((cs, session))
}

/// How many of a user's sessions `/v1/me` reads at most, the newest: its lists show no
/// more (a user piles up sessions on every device it signs in on, ended ones included).
pub const MY_SESSIONS_READ: usize = 500;

/// The newest [`MY_SESSIONS_READ`] sessions of `user_id`, on every client, newest first.
pub async fn of_user(state: &AppState, user_id: &str) -> Result<Vec<Session>, ApiError> {
    let filter = crate::store::SessionFilter {
        client_id: None,
        user_id: Some(user_id.to_string()),
        newest: Some(MY_SESSIONS_READ),
    };
    Ok(state.store.list_sessions(&filter).await?)
}

/// A user revokes one of its own sessions, from any of its devices (`POST
/// /v1/me/sessions/{id}/revoke`): the session must be the requesting user's, on any
/// client; another user's is 404, exactly like an unknown id. Then as [`revoke`].
pub async fn revoke_own(
    state: &AppState,
    me: &Session,
    id: &str,
    origin: &RequestOrigin,
) -> Result<Session, ApiError> {
    revoke_if(state, id, origin, |s| s.user_id == me.user_id).await
}
