//! The six session endpoints this service exists for, plus their shared rule:
//! a session is reachable only through the client it belongs to. Any other session id
//! (another client's, a removed one's lookalike, a malformed one) is 404 `resource_not_found`.

use serde_json::{json, Value};

use super::{client_users, envelope};
use crate::api::{landed, pause_before, MAX_ATTEMPTS};
use std::sync::Arc;

use crate::clock::Millis;
use crate::domain::{ClientState, Session, SessionAction, User};
use crate::error::ApiError;
use crate::http::auth::{self, ClientAuth};
use crate::http::request::{form, RequestExt};
use crate::http::response::{self, Response};
use crate::http::{cors, Request};
use crate::state::AppState;
use crate::store::{StoreError, Write};
use crate::tokens::session_token::SessionClaims;
use crate::tokens::template_token::{CompiledTemplate, MintError};
use crate::wire::{self, LastActiveTokens};

fn session_of<'a>(cs: &'a ClientState, id: &str) -> Result<&'a Session, ApiError> {
    cs.session(id)
        .ok_or_else(|| ApiError::session_not_found(id))
}

/// Organizations come later: until then only the personal account exists.
fn refuse_organization(value: Option<&str>) -> Result<(), ApiError> {
    match value {
        Some(org) if !org.is_empty() => Err(ApiError::organization_not_found()),
        _ => Ok(()),
    }
}

async fn answer(
    state: &AppState,
    req: &Request,
    auth: &ClientAuth,
    cs: &ClientState,
    id: &str,
    with_client: bool,
) -> Result<Response, ApiError> {
    let session = session_of(cs, id)?;
    let users = client_users(state, cs).await?;
    let now = state.now();
    // Without the client (a focus touch) only this session's token is shown: sign just it.
    let only = (!with_client).then_some(id);
    let tokens = last_active_tokens(state, cs, cors::origin(req)?, only);
    let jwt = tokens.get(id).map(String::as_str);
    let session_json = wire::session(session, users.get(&session.user_id), now, jwt);
    let client = if with_client {
        wire::client(cs, &users, now, &tokens)
    } else {
        Value::Null
    };
    Ok(envelope(state, auth, session_json, client, Some(cs)))
}

/// `GET /v1/client/sessions/{session_id}`
pub async fn get(state: &AppState, req: Request) -> Result<Response, ApiError> {
    let auth = auth::authenticate(state, &req).await?;
    let id = req.path_param("session_id");
    let cs = auth::require_client(state, &auth).await?;
    answer(state, &req, &auth, &cs, id, true).await
}

/// Records a session's activity at `now` and answers the session as it then is. Best
/// effort, by design: activity is bookkeeping, so losing the race to a request that
/// recorded it first counts as done, and a store fault is logged without failing the
/// request that carried the activity.
pub(crate) async fn record_activity(state: &AppState, session: &Session, now: Millis) -> Session {
    let next = session.with_activity(now, state.lifetimes());
    match state
        .store
        .commit(vec![Write::session_activity(&next)])
        .await
    {
        Ok(()) => next,
        // Later activity is recorded already, or the session was signed out meanwhile.
        Err(StoreError::Conflict) => session.clone(),
        Err(e) => {
            tracing::warn!(session = %session.id, error = %e, "session activity not recorded");
            session.clone()
        }
    }
}

/// Touch: the session becomes the client's last active one and its activity is recorded
/// (when due). Neither write names a version, so racing touches, mints and ends do not
/// conflict: each touch answers 200, or the transition's own 4xx.
async fn touch_session(
    state: &AppState,
    auth: &ClientAuth,
    id: &str,
) -> Result<ClientState, ApiError> {
    let mut cs = auth::require_client(state, auth).await?;
    let now = state.now();
    let session = session_of(&cs, id)?;
    session
        .check(SessionAction::Touch, now)
        .map_err(|e| ApiError::from_transition(e, id))?;
    if session.activity_due(now, state.lifetimes()) {
        let recorded = record_activity(state, session, now).await;
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

/// Ends or removes one of the client's sessions: one write of its status, conditioned on
/// the status it was read with. A lost race means the status moved meanwhile; the re-read
/// then answers what this request would have answered had it come second (for example 400
/// for ending an ended session). The client needs no write: it shows a last active session
/// only while that session is signed in.
async fn sign_out_one(
    state: &AppState,
    auth: &ClientAuth,
    id: &str,
    action: SessionAction,
) -> Result<ClientState, ApiError> {
    for attempt in 0..MAX_ATTEMPTS {
        pause_before(attempt).await;
        let mut cs = auth::require_client(state, auth).await?;
        let now = state.now();
        let session = session_of(&cs, id)?;
        let to = session
            .check(action, now)
            .map_err(|e| ApiError::from_transition(e, id))?;
        let next = session.with_status(to, now);
        if landed(
            state
                .store
                .commit(vec![Write::session_status(session, to, now)])
                .await,
        )? {
            if let Some(slot) = cs.sessions.iter_mut().find(|s| s.id == id) {
                *slot = next;
            }
            return Ok(cs);
        }
    }
    Err(ApiError::conflict("The session"))
}

/// `POST /v1/client/sessions/{session_id}/touch` (fields `active_organization_id`, `intent`).
/// `intent=focus` answers `client: null`, as Clerk does for focus-only touches.
pub async fn touch(state: &AppState, req: Request) -> Result<Response, ApiError> {
    let auth = auth::authenticate(state, &req).await?;
    let form = form(&req)?;
    refuse_organization(form.get("active_organization_id"))?;
    let intent = form.non_empty("intent");
    if let Some(i) = intent {
        if !matches!(i, "focus" | "select_session" | "select_org") {
            return Err(ApiError::param_invalid(
                "intent",
                "intent must be one of focus, select_session, select_org.",
            ));
        }
    }
    let id = req.path_param("session_id");
    let cs = touch_session(state, &auth, id).await?;
    answer(state, &req, &auth, &cs, id, intent != Some("focus")).await
}

/// `POST /v1/client/sessions/{session_id}/end`: signs the session out; it stays on the client.
pub async fn end(state: &AppState, req: Request) -> Result<Response, ApiError> {
    let auth = auth::authenticate(state, &req).await?;
    form(&req)?;
    let id = req.path_param("session_id");
    let cs = sign_out_one(state, &auth, id, SessionAction::End).await?;
    answer(state, &req, &auth, &cs, id, true).await
}

/// `POST /v1/client/sessions/{session_id}/remove`: signs the session out and takes it off the client.
pub async fn remove(state: &AppState, req: Request) -> Result<Response, ApiError> {
    let auth = auth::authenticate(state, &req).await?;
    form(&req)?;
    let id = req.path_param("session_id");
    let cs = sign_out_one(state, &auth, id, SessionAction::Remove).await?;
    answer(state, &req, &auth, &cs, id, true).await
}

/// What a mint signs.
pub(crate) enum TokenKind<'a> {
    Session,
    /// A JWT template's token for the session's user; `lifetime` overrides the template's.
    Template {
        template: &'a CompiledTemplate,
        user: &'a User,
        lifetime: Option<u64>,
    },
}

/// Signs a token for `session` as read (strongly consistently) at the start of the
/// request: a read and a signature, no write, so concurrent mints never conflict. A mint
/// that starts after an end, remove or revoke has answered reads the new status and is
/// refused; one already past its read may still finish (docs/sessions.md, "Minting").
/// Activity is recorded when due, at most once per activity interval.
pub(crate) async fn mint(
    state: &AppState,
    session: &Session,
    origin: Option<&str>,
    kind: &TokenKind<'_>,
) -> Result<String, ApiError> {
    let now = state.now();
    // Check first: a session that may not mint must not cost a signature.
    session
        .check(SessionAction::MintToken, now)
        .map_err(|e| ApiError::from_transition(e, &session.id))?;
    let jwt = sign(state, session, origin, kind, now).map_err(ApiError::from)?;
    if session.activity_due(now, state.lifetimes()) {
        record_activity(state, session, now).await;
    }
    Ok(jwt)
}

fn sign(
    state: &AppState,
    session: &Session,
    origin: Option<&str>,
    kind: &TokenKind<'_>,
    now: Millis,
) -> Result<String, MintError> {
    let issuer = &state.config.frontend_api_url;
    let keys = state.keys();
    let signer = keys.signer(now)?;
    // A key whose removal a rotation has scheduled signs nothing that would outlive it:
    // tokens minted in the window (a template made or lengthened then, a Backend API
    // `expires_in_seconds`) end when the key does.
    let cap = |secs: u64| match keys.latest_exp(now) {
        Some(latest) => secs.min(((latest - now) / 1000).max(0) as u64),
        None => secs,
    };
    match kind {
        TokenKind::Session => {
            let lifetime = cap(state.config.session_token_lifetime.as_secs()) as i64;
            signer
                .sign_rs256(&SessionClaims::new(session, issuer, origin, now, lifetime))
                .map_err(MintError::from)
        }
        TokenKind::Template {
            template,
            user,
            lifetime,
        } => {
            let lifetime = lifetime.unwrap_or(template.lifetime);
            // A template's own key is not the keyring's: nothing to cap.
            let lifetime = if template.signed_by_instance() {
                cap(lifetime)
            } else {
                lifetime
            };
            template.mint(signer, user, session, issuer, origin, now, Some(lifetime))
        }
    }
}

/// Fresh session tokens for the client's signed-in sessions, served as their
/// `last_active_token` in every Frontend API answer. clerk-js primes its token cache from
/// it, and in a browser sets the `__session` cookie from it after every client update
/// (and removes the cookie when the active session has none). Minted at answer time and
/// never stored: a signed-out session never has one, and no mint costs a write.
pub(crate) fn last_active_tokens(
    state: &AppState,
    cs: &ClientState,
    origin: Option<&str>,
    only: Option<&str>,
) -> LastActiveTokens {
    // A page of another origin cannot read this answer anyway; it gets no token.
    if origin.is_some_and(|o| !state.config.origin_allowed(o)) {
        return LastActiveTokens::new();
    }
    let now = state.now();
    cs.sessions
        .iter()
        .filter(|s| only.is_none_or(|id| s.id == id))
        .filter(|s| s.check(SessionAction::MintToken, now).is_ok())
        .filter_map(|s| match sign(state, s, origin, &TokenKind::Session, now) {
            Ok(jwt) => Some((s.id.clone(), jwt)),
            Err(e) => {
                tracing::error!(session = %s.id, error = %e, "last active token not signed");
                None
            }
        })
        .collect()
}

/// The template named `name`, compiled, and the session's user, read together.
pub(crate) async fn template_and_user(
    state: &AppState,
    name: &str,
    user_id: &str,
) -> Result<(Arc<CompiledTemplate>, User), ApiError> {
    let (template, user) = tokio::try_join!(
        state.store.get_jwt_template(name),
        state.store.get_user(user_id)
    )?;
    let template = template.ok_or_else(|| {
        ApiError::not_found("JWT template").with_meta("template_name", json!(name))
    })?;
    let compiled = state.compiled_template(&template).map_err(|e| {
        tracing::error!(template = %template.id, error = %e, "stored JWT template does not compile");
        ApiError::internal()
    })?;
    Ok((compiled, user.ok_or_else(ApiError::signed_out)?))
}

/// `POST /v1/client/sessions/{session_id}/tokens` (field `organization_id`).
pub async fn tokens(state: &AppState, req: Request) -> Result<Response, ApiError> {
    let auth = auth::authenticate(state, &req).await?;
    let form = form(&req)?;
    refuse_organization(form.get("organization_id"))?;
    let origin = cors::origin(&req)?;
    let id = req.path_param("session_id");
    let cs = auth::require_client(state, &auth).await?;
    let jwt = mint(state, session_of(&cs, id)?, origin, &TokenKind::Session).await?;
    Ok(response::ok(&wire::token_response(&jwt)))
}

/// `POST /v1/client/sessions/{session_id}/tokens/{template_name}`: a token from a JWT
/// template (404 `resource_not_found` when there is no template of that name).
pub async fn template_token(state: &AppState, req: Request) -> Result<Response, ApiError> {
    let auth = auth::authenticate(state, &req).await?;
    form(&req)?;
    let origin = cors::origin(&req)?;
    let id = req.path_param("session_id");
    let cs = auth::require_client(state, &auth).await?;
    let session = session_of(&cs, id)?;
    let (template, user) =
        template_and_user(state, req.path_param("template_name"), &session.user_id).await?;
    let kind = TokenKind::Template {
        template: &template,
        user: &user,
        lifetime: None,
    };
    let jwt = mint(state, session, origin, &kind).await?;
    Ok(response::ok(&wire::token_response(&jwt)))
}
