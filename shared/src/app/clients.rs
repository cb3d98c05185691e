//! Clients: creating one, and what a verified client token leads to in the store (its
//! client, nothing, or a client whose token has since been replaced). The token itself is
//! found and verified by `http::auth` before any of this runs.

use crate::clock::Millis;
use crate::domain::{Client, ClientState};
use crate::error::ApiError;
use crate::http::auth::ClientAuth;
use crate::state::AppState;
use crate::store::Write;
use crate::tokens::{ClientTokenClaims, ClientTokenError};

/// A new, empty client at version 1, not yet stored. It has never signed in, so it lives
/// only for the anonymous lifetime unless it is used (see [`load_or_start_over`]).
pub fn new_client(state: &AppState) -> Client {
    let now = state.now();
    Client {
        anonymous_until: Some(now + state.config.anonymous_client_lifetime.as_millis() as i64),
        sign_in: None,
        sign_up: None,
        id: crate::ids::new_id("client"),
        rotating_token: crate::ids::new_secret(),
        last_active_session_id: None,
        created_at: now,
        updated_at: now,
        expires_at: now + state.config.client_token_lifetime.as_millis() as i64,
        version: 1,
    }
}

/// Writes `client` (at its next version, conditioned on the one read; a new one at
/// version one) with `sessions` as read: the client as stored, or `None` when another
/// request changed it first (the caller reads again).
pub(crate) async fn store(
    state: &AppState,
    client: Client,
    sessions: Vec<crate::domain::Session>,
) -> Result<Option<ClientState>, ApiError> {
    let written = state
        .store
        .commit(vec![Write::client(client.clone())])
        .await;
    Ok(super::landed(written)?.then_some(ClientState { client, sessions }))
}

/// A new client with no sessions, not stored yet (version 0): the first write of it, at
/// version 1, is conditioned on its absence. For the requests that make a client when the
/// caller has none (sign-ins, sign-ups).
pub(crate) fn unstored(state: &AppState) -> ClientState {
    ClientState {
        client: Client {
            version: 0,
            ..new_client(state)
        },
        sessions: Vec::new(),
    }
}

/// A new client, stored.
pub async fn create(state: &AppState) -> Result<ClientState, ApiError> {
    let client = new_client(state);
    state
        .store
        .commit(vec![Write::client(client.clone())])
        .await?;
    Ok(ClientState {
        client,
        sessions: Vec::new(),
    })
}

fn rejection(e: &ClientTokenError) -> ApiError {
    ApiError::authentication_invalid(match e {
        ClientTokenError::Expired => "the client token has expired",
        _ => "the client token is not valid",
    })
}

/// What the caller's verified token leads to in the store.
enum Found {
    Client(ClientState),
    /// No token, or its client is gone.
    Nothing,
    /// The token's rotating value is no longer the client's (a sign-in replaced it).
    Superseded,
}

/// The first of the caller's verified tokens whose client is current. A browser may
/// present several `__client` cookies (a sibling site can toss one in on the parent
/// domain, even a superseded token of this instance): one that leads nowhere does not
/// hide the caller's own.
async fn find(state: &AppState, auth: &ClientAuth) -> Result<Found, ApiError> {
    let mut outcome = Found::Nothing;
    for (index, token) in auth.verified.iter().enumerate() {
        match find_one(state, &token.claims).await? {
            Found::Client(cs) => {
                auth.choose(index);
                return Ok(Found::Client(cs));
            }
            Found::Superseded => outcome = Found::Superseded,
            Found::Nothing => {}
        }
    }
    Ok(outcome)
}

async fn find_one(state: &AppState, claims: &ClientTokenClaims) -> Result<Found, ApiError> {
    let Some(mut found) = state.store.get_client(&claims.id).await? else {
        return Ok(Found::Nothing);
    };
    let now = state.now();
    // A never-signed-in client past its anonymous lifetime is gone, as if deleted.
    if found.client.anonymous_expired(now) {
        return Ok(Found::Nothing);
    }
    let current = found.client.rotating_token.as_bytes();
    if aws_lc_rs::constant_time::verify_slices_are_equal(current, claims.rotating_token.as_bytes())
        .is_err()
    {
        return Ok(Found::Superseded);
    }
    slide_anonymous_lifetime(state, &mut found, now).await;
    Ok(Found::Client(found))
}

/// For endpoints that create a client when the caller has none (`GET`/`POST /v1/client`,
/// sign-ins): the caller's client, or `None` with `start_over` set when its token was
/// rejected or superseded. Such a caller gets a new client and a new token, never a 401
/// it could not get out of (a browser cannot clear an HttpOnly cookie).
pub async fn load_or_start_over(
    state: &AppState,
    auth: &ClientAuth,
) -> Result<(Option<ClientState>, bool), ApiError> {
    if auth.rejected.is_some() {
        return Ok((None, true));
    }
    Ok(match find(state, auth).await? {
        Found::Client(cs) => (Some(cs), false),
        Found::Nothing => (None, false),
        Found::Superseded => (None, true),
    })
}

/// The caller's client, for endpoints that need one: none is 401 `signed_out`, a rejected
/// or superseded token 401 `authentication_invalid` (and the routing layer clears a bad
/// cookie: `http::auth::settle_client_token`).
pub async fn require(state: &AppState, auth: &ClientAuth) -> Result<ClientState, ApiError> {
    if let Some(e) = &auth.rejected {
        return Err(rejection(e));
    }
    match find(state, auth).await? {
        Found::Client(cs) => Ok(cs),
        Found::Nothing => Err(ApiError::signed_out()),
        Found::Superseded => Err(ApiError::authentication_invalid(
            "the client token was replaced by a newer one",
        )),
    }
}

/// Each use of a never-signed-in client pushes its end forward. To spare a write per
/// request, only once half of the anonymous lifetime has gone by. Best effort: a lost race
/// means another request has just written the client.
async fn slide_anonymous_lifetime(state: &AppState, cs: &mut ClientState, now: Millis) {
    let Some(until) = cs.client.anonymous_until else {
        return;
    };
    let lifetime = state.config.anonymous_client_lifetime.as_millis() as Millis;
    if until - now > lifetime / 2 {
        return;
    }
    let next = cs.client.kept_anonymous_until(now + lifetime, now);
    match state.store.commit(vec![Write::client(next.clone())]).await {
        Ok(()) => cs.client = next,
        Err(err) => tracing::debug!(error = %err, "anonymous client lifetime not extended"),
    }
}
