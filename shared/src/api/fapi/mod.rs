//! The Frontend API: what Clerk's browser and mobile SDKs call.

pub mod client;
pub mod environment;
pub mod handshake;
pub mod me;
pub mod sessions;
pub mod sign_ins;
pub mod sign_ups;

use std::collections::HashMap;
use std::sync::Arc;

use serde::Serialize;
use serde_json::value::RawValue;

use crate::domain::{ClientState, User};
use crate::error::ApiError;
use crate::http::auth::{self, ClientAuth};
use crate::http::response::{self, Response};
use crate::state::AppState;
use crate::wire::{self, Envelope, RenderedSessions};

/// The users behind every session of the client, in one store read.
pub(crate) async fn client_users(
    state: &AppState,
    cs: &ClientState,
) -> Result<HashMap<String, Arc<User>>, ApiError> {
    crate::app::users_by_id(state, cs.sessions.iter().map(|s| &s.user_id)).await
}

/// Like [`client_users`] when one user is already in hand: no read when it is the only one.
pub(crate) async fn client_users_with(
    state: &AppState,
    cs: &ClientState,
    known: &User,
) -> Result<HashMap<String, Arc<User>>, ApiError> {
    let others = cs
        .sessions
        .iter()
        .map(|s| &s.user_id)
        .filter(|id| **id != known.id);
    let mut users = crate::app::users_by_id(state, others).await?;
    users.insert(known.id.clone(), Arc::new(known.clone()));
    Ok(users)
}

/// The client as the Frontend API shows it: non-removed sessions, each with its user, and
/// the last active one, when signed in, with a fresh `last_active_token` (its `azp` is
/// `origin`, when allowed). Rendered to JSON text, since some answers show it twice.
pub(crate) async fn client_json(
    state: &AppState,
    cs: &ClientState,
    origin: Option<&str>,
) -> Result<Box<RawValue>, ApiError> {
    let users = client_users(state, cs).await?;
    let last_active = cs.client.last_active_session_id.as_deref();
    let tokens = crate::app::minting::last_active_tokens(state, cs, origin, &[last_active]);
    let now = state.now();
    let sessions = RenderedSessions::of(cs, &users, &state.rendered, now, &tokens);
    let flows = client_flows(state, cs, None).await?;
    Ok(wire::rendered(&wire::client(cs, &sessions, &flows, now)))
}

/// Where a request comes from, for the session a sign-in or sign-up step may make.
pub(crate) fn seen(state: &AppState, req: &crate::http::Request) -> crate::app::sign_ins::Seen {
    crate::app::sign_ins::Seen {
        activity: crate::http::activity::of_request(state, req),
        origin: crate::http::activity::origin(state, req),
    }
}

/// A sign-in's or sign-up's answer after a step: `response` (the flow, rendered) and the
/// client, whose `user` is known (no read for it) and whose session `made` gets its fresh
/// token; the client's token goes back with them (a new client's first, a signed-in
/// client's rotated one).
pub(crate) async fn flow_answer(
    state: &AppState,
    req: &crate::http::Request,
    auth: &ClientAuth,
    response: &RawValue,
    cs: &ClientState,
    user: Option<&User>,
    made: Option<&str>,
) -> Result<Response, ApiError> {
    let now = state.now();
    let origin = crate::http::cors::origin(req)?;
    let users = match user {
        Some(user) => client_users_with(state, cs, user).await?,
        None => client_users(state, cs).await?,
    };
    let last_active = made.or(cs.client.last_active_session_id.as_deref());
    let tokens = crate::app::minting::last_active_tokens(state, cs, origin, &[last_active]);
    let sessions = RenderedSessions::of(cs, &users, &state.rendered, now, &tokens);
    let flows = client_flows(state, cs, user).await?;
    let client = wire::client(cs, &sessions, &flows, now);
    let mut resp = response::ok(&Envelope { response, client })?;
    auth::set_client_uat(state, auth.transport, Some(cs), &mut resp);
    auth::deliver_client_token(state, auth.transport, &cs.client, &mut resp)?;
    Ok(resp)
}

/// What the instance offers at sign-in now: as configured, and email codes only with a
/// way to deliver them.
pub(crate) fn offered(state: &AppState) -> wire::Offered {
    let auth = &state.config.auth;
    wire::Offered {
        password: auth.password,
        email_code: auth.email_code && state.mailer.can_deliver(),
        username: auth.username,
    }
}

/// The client's sign-in and sign-up in progress, rendered. A sign-in's user is read
/// (unless it is `known`): only while one is in progress, so other answers read nothing.
pub(crate) async fn client_flows(
    state: &AppState,
    cs: &ClientState,
    known: Option<&User>,
) -> Result<wire::ClientFlows, ApiError> {
    let now = state.now();
    let sign_in = match cs.client.sign_in.as_ref().filter(|a| now < a.expires_at) {
        Some(attempt) => {
            let user = match (&attempt.user_id, known) {
                (Some(id), Some(k)) if *id == k.id => Some(k.clone()),
                (Some(id), _) => state.store.get_user(id).await?,
                (None, _) => None,
            };
            Some(wire::sign_in_attempt(
                attempt,
                user.as_ref(),
                offered(state),
                now,
            ))
        }
        None => None,
    };
    let sign_up = cs
        .client
        .sign_up
        .as_ref()
        .filter(|a| now < a.expires_at)
        .map(|a| wire::sign_up_attempt(a, &state.config.auth.requirements, now));
    Ok(wire::ClientFlows { sign_in, sign_up })
}

/// Clerk's `{"response", "client"}` envelope, with `__client_uat` kept current.
pub(crate) fn envelope(
    state: &AppState,
    auth: &ClientAuth,
    response: &(impl Serialize + ?Sized),
    client: &(impl Serialize + ?Sized),
    client_state: Option<&ClientState>,
) -> Result<Response, ApiError> {
    let mut resp = response::ok(&Envelope { response, client })?;
    auth::set_client_uat(state, auth.transport, client_state, &mut resp);
    Ok(resp)
}

/// `GET /.well-known/jwks.json`: the public keys that verify session tokens: next,
/// current and retiring. Cacheable for the JWKS cache window, which is exactly how long a
/// new key is published before it signs.
pub async fn jwks(state: &AppState) -> Result<Response, ApiError> {
    let mut resp = response::ok(&state.keys().jwks(state.now()))?;
    let max_age = state.config.jwks_cache_window.as_secs();
    response::set_header(
        &mut resp,
        "cache-control",
        &format!("public, max-age={max_age}"),
    );
    Ok(resp)
}
