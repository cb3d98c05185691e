//! `/v1/client`, `/v1/dev_browser` and `DELETE /v1/client/sessions`.

use serde_json::json;

use super::{client_json, envelope};
use crate::app::clients::{self, create};
use crate::app::{commit_per_session, retrying};
use crate::domain::{SessionAction, SessionStatus};
use crate::error::ApiError;
use crate::http::auth::{self, ClientAuth};
use crate::http::response::{self, Response};
use crate::http::{cors, Request};
use crate::state::AppState;
use crate::store::Write;
use crate::webhooks::EventType;
use crate::wire;

/// `POST /v1/client`: a new client; its token goes back as a cookie or `Authorization`.
pub async fn post(state: &AppState, auth: &ClientAuth) -> Result<Response, ApiError> {
    let cs = create(state).await?;
    let body = client_json(state, &cs, None).await?;
    let mut resp = envelope(state, auth, &body, &wire::NULL, Some(&cs))?;
    auth::deliver_client_token(state, auth.transport, &cs.client, &mut resp)?;
    Ok(resp)
}

/// `GET /v1/client`: the caller's client, or `response: null` when it has none. A caller
/// whose token was rejected (another instance's, a removed secret, expired) or superseded
/// gets a new client and token instead, so a bad HttpOnly cookie never locks it out.
pub async fn get(state: &AppState, req: Request, auth: &ClientAuth) -> Result<Response, ApiError> {
    let origin = cors::origin(&req)?;
    let (cs, start_over) = clients::load_or_start_over(state, auth).await?;
    if start_over {
        let cs = create(state).await?;
        let body = client_json(state, &cs, origin).await?;
        let mut resp = envelope(state, auth, &body, &wire::NULL, Some(&cs))?;
        auth::deliver_client_token(state, auth.transport, &cs.client, &mut resp)?;
        return Ok(resp);
    }
    let body = match &cs {
        Some(cs) => Some(client_json(state, cs, origin).await?),
        None => None,
    };
    envelope(state, auth, &body, &wire::NULL, cs.as_ref())
}

/// `POST /v1/dev_browser`: a client for a development browser; its token is the answer's
/// `id` and is then sent as the `__clerk_db_jwt` query parameter.
pub async fn dev_browser(state: &AppState) -> Result<Response, ApiError> {
    if !state.config.dev_browser_enabled() {
        return Err(ApiError::dev_browser_disabled());
    }
    let cs = create(state).await?;
    let token = auth::issue_client_token(state, &cs.client)?;
    response::ok(&json!({ "object": "dev_browser", "id": token }))
}

/// `DELETE /v1/client/sessions` (clerk-js's sign-out): removes every session of the client,
/// each conditioned on the status it was read with, with its event, in commits of a few
/// dozen sessions (a client's sessions are not bounded; a DynamoDB transaction is).
pub async fn remove_sessions(
    state: &AppState,
    req: Request,
    auth: &ClientAuth,
) -> Result<Response, ApiError> {
    let origin = &crate::http::activity::origin(state, &req);
    let (auth, req) = (&auth, &req);
    let (resp, removed) = retrying("remove_client_sessions", "The client", || async move {
        let mut cs = clients::require(state, auth).await?;
        let now = state.now();
        let kind = Some(EventType::SessionRemoved);
        let events = crate::app::events(state, origin, now, kind).await?;
        let users = match events {
            Some(_) => {
                crate::app::users_by_id(state, cs.sessions.iter().map(|s| &s.user_id)).await?
            }
            None => Default::default(),
        };
        let mut writes = Vec::new();
        for session in cs
            .sessions
            .iter_mut()
            .filter(|s| s.status != SessionStatus::Removed)
        {
            let to = session
                .check(SessionAction::Remove, now)
                .map_err(|e| ApiError::from_transition(e, &session.id))?;
            let mut its = vec![Write::session_status(session, to, now)];
            *session = session.with_status(to, now);
            if let Some(events) = &events {
                let user = users.get(&session.user_id).map(|u| &**u);
                let event = events.session(EventType::SessionRemoved, session, user);
                its.push(Write::Event(event));
            }
            writes.push(its);
        }
        let removed = writes.len() as u64;
        if !commit_per_session(state, writes).await? {
            return Ok(None);
        }
        let body = client_json(state, &cs, cors::origin(req)?).await?;
        Ok(Some((
            envelope(state, auth, &body, &body, Some(&cs))?,
            removed,
        )))
    })
    .await?;
    crate::metrics::session_transitions(SessionAction::Remove.verb(), removed);
    Ok(resp)
}
