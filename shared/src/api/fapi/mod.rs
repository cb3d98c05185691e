//! The Frontend API: what Clerk's browser and mobile SDKs call.

pub mod client;
pub mod environment;
pub mod handshake;
pub mod me;
pub mod sessions;
pub mod sign_ins;

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
    Ok(wire::rendered(&wire::client(cs, &sessions, now)))
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
