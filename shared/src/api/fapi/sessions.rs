//! The six session endpoints this service exists for, plus their shared rule:
//! a session is reachable only through the client it belongs to. Any other session id
//! (another client's, a removed one's lookalike, a malformed one) is 404 `resource_not_found`.

use serde_json::{json, Value};

use super::{client_users, envelope};
use crate::api::{landed, pause_before, MAX_ATTEMPTS};
use std::sync::Arc;

use crate::domain::{ClientState, Session, SessionAction, User};
use crate::error::ApiError;
use crate::http::auth::{self, ClientAuth};
use crate::http::request::{form, RequestExt};
use crate::http::response::{self, Response};
use crate::http::{cors, Request};
use crate::state::AppState;
use crate::store::Write;
use crate::tokens::session_token::SessionClaims;
use crate::tokens::template_token::{CompiledTemplate, MintError};
use crate::wire;

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
    auth: &ClientAuth,
    cs: &ClientState,
    id: &str,
    with_client: bool,
) -> Result<Response, ApiError> {
    let session = session_of(cs, id)?;
    let users = client_users(state, cs).await?;
    let now = state.now();
    let session_json = wire::session(session, users.get(&session.user_id), now);
    let client = if with_client {
        wire::client(cs, &users, now)
    } else {
        Value::Null
    };
    Ok(envelope(state, auth, session_json, client, Some(cs)))
}

/// `GET /v1/client/sessions/{session_id}`
pub async fn get(state: &AppState, req: Request) -> Result<Response, ApiError> {
    let auth = auth::authenticate(state, &req)?;
    let id = req.path_param("session_id");
    let cs = auth::require_client(state, &auth).await?;
    answer(state, &auth, &cs, id, true).await
}

/// Applies `action` to one of the client's sessions and updates the client in the same
/// commit: touch makes it the last active session; end and remove clear that when it was.
async fn change(
    state: &AppState,
    auth: &ClientAuth,
    id: &str,
    action: SessionAction,
) -> Result<ClientState, ApiError> {
    for attempt in 0..MAX_ATTEMPTS {
        pause_before(attempt).await;
        let mut cs = auth::require_client(state, auth).await?;
        let now = state.now();
        let next = session_of(&cs, id)?
            .apply(action, now, state.lifetimes())
            .map_err(|e| ApiError::from_transition(e, id))?;
        let client = &mut cs.client;
        if action == SessionAction::Touch {
            client.last_active_session_id = Some(id.to_string());
        } else if client.last_active_session_id.as_deref() == Some(id) {
            client.last_active_session_id = None;
        }
        client.updated_at = now;
        client.version += 1;
        let writes = vec![Write::session(next.clone()), Write::client(client.clone())];
        if landed(state.store.commit(writes).await)? {
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
    let auth = auth::authenticate(state, &req)?;
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
    let cs = change(state, &auth, id, SessionAction::Touch).await?;
    answer(state, &auth, &cs, id, intent != Some("focus")).await
}

/// `POST /v1/client/sessions/{session_id}/end`: signs the session out; it stays on the client.
pub async fn end(state: &AppState, req: Request) -> Result<Response, ApiError> {
    let auth = auth::authenticate(state, &req)?;
    form(&req)?;
    let id = req.path_param("session_id");
    let cs = change(state, &auth, id, SessionAction::End).await?;
    answer(state, &auth, &cs, id, true).await
}

/// `POST /v1/client/sessions/{session_id}/remove`: signs the session out and takes it off the client.
pub async fn remove(state: &AppState, req: Request) -> Result<Response, ApiError> {
    let auth = auth::authenticate(state, &req)?;
    form(&req)?;
    let id = req.path_param("session_id");
    let cs = change(state, &auth, id, SessionAction::Remove).await?;
    answer(state, &auth, &cs, id, true).await
}

/// What a mint signs.
pub(crate) enum TokenKind<'a> {
    /// A session token, recorded as the session's `last_active_token`.
    Session,
    /// A JWT template's token for the session's user; `lifetime` overrides the template's.
    Template {
        template: &'a CompiledTemplate,
        user: &'a User,
        lifetime: Option<u64>,
    },
}

/// Mints a token for a signed-in session, in one write conditioned on the session being
/// unchanged: once a revoke or end has answered, no token can be minted. `Ok(None)` means
/// the session changed meanwhile; read it again and retry.
pub(crate) async fn mint(
    state: &AppState,
    session: &Session,
    origin: Option<&str>,
    kind: &TokenKind<'_>,
) -> Result<Option<String>, ApiError> {
    let now = state.now();
    // Check first: a session that may not mint must not cost a signature.
    session
        .status_at(now)
        .after(SessionAction::MintToken)
        .map_err(|e| ApiError::from_transition(e, &session.id))?;
    let issuer = &state.config.frontend_api_url;
    let signed = match kind {
        TokenKind::Session => {
            let lifetime = state.config.session_token_lifetime.as_secs() as i64;
            state
                .keys
                .sign_rs256(&SessionClaims::new(session, issuer, origin, now, lifetime))
                .map_err(MintError::from)
        }
        TokenKind::Template {
            template,
            user,
            lifetime,
        } => template.mint(&state.keys, user, session, issuer, origin, now, *lifetime),
    };
    let jwt = signed.map_err(ApiError::from)?;
    let recorded = matches!(kind, TokenKind::Session).then(|| jwt.clone());
    let next = session
        .minted(recorded, now)
        .map_err(|e| ApiError::from_transition(e, &session.id))?;
    Ok(landed(state.store.commit(vec![Write::session(next)]).await)?.then_some(jwt))
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
    let auth = auth::authenticate(state, &req)?;
    let form = form(&req)?;
    refuse_organization(form.get("organization_id"))?;
    let origin = cors::origin(&req)?;
    let id = req.path_param("session_id");
    for attempt in 0..MAX_ATTEMPTS {
        pause_before(attempt).await;
        let cs = auth::require_client(state, &auth).await?;
        if let Some(jwt) = mint(state, session_of(&cs, id)?, origin, &TokenKind::Session).await? {
            return Ok(response::ok(&wire::token_response(&jwt)));
        }
    }
    Err(ApiError::conflict("The session"))
}

/// `POST /v1/client/sessions/{session_id}/tokens/{template_name}`: a token from a JWT
/// template (404 `resource_not_found` when there is no template of that name).
pub async fn template_token(state: &AppState, req: Request) -> Result<Response, ApiError> {
    let auth = auth::authenticate(state, &req)?;
    form(&req)?;
    let origin = cors::origin(&req)?;
    let id = req.path_param("session_id");
    let mut cs = auth::require_client(state, &auth).await?;
    let user_id = session_of(&cs, id)?.user_id.clone();
    let (template, user) =
        template_and_user(state, req.path_param("template_name"), &user_id).await?;
    let kind = TokenKind::Template {
        template: &template,
        user: &user,
        lifetime: None,
    };
    for attempt in 0..MAX_ATTEMPTS {
        if attempt > 0 {
            pause_before(attempt).await;
            cs = auth::require_client(state, &auth).await?;
        }
        if let Some(jwt) = mint(state, session_of(&cs, id)?, origin, &kind).await? {
            return Ok(response::ok(&wire::token_response(&jwt)));
        }
    }
    Err(ApiError::conflict("The session"))
}
