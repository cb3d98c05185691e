//! The six session endpoints this service exists for, plus their shared rule:
//! a session is reachable only through the client it belongs to. Any other session id
//! (another client's, a removed one's lookalike, a malformed one) is 404 `resource_not_found`.

use super::{client_flows, client_users, envelope};
use crate::app::minting::{last_active_tokens, mint, template_and_user, TokenKind};
use crate::app::{clients, sessions};
use crate::domain::{ClientState, Session, SessionAction};
use crate::error::ApiError;
use crate::http::auth::ClientAuth;
use crate::http::request::{form, RequestExt};
use crate::http::response::{self, Response};
use crate::http::{activity, cors, Request};
use crate::state::AppState;
use crate::wire::{self, RenderedSessions};

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
    answer_with(
        state,
        req,
        auth,
        cs,
        sessions::of_client(cs, id)?,
        with_client,
    )
    .await
}

/// [`answer`] for a session in hand, which need not be one of the client's (a session of
/// another device, revoked through `/v1/me`): then it is shown beside the client, not in it.
pub(super) async fn answer_with(
    state: &AppState,
    req: &Request,
    auth: &ClientAuth,
    cs: &ClientState,
    session: &Session,
    with_client: bool,
) -> Result<Response, ApiError> {
    let id = session.id.as_str();
    let users = client_users(state, cs).await?;
    let now = state.now();
    // Without the client (a focus touch) only this session's token is shown: sign just it;
    // with it, the client's last active session's too.
    let last_active = with_client
        .then_some(cs.client.last_active_session_id.as_deref())
        .flatten();
    let tokens = last_active_tokens(state, cs, cors::origin(req)?, &[Some(id), last_active]);
    if !with_client {
        let shown = state
            .rendered
            .session_of(session, &users, tokens.get(id), now);
        return envelope(state, auth, shown.text(), &wire::NULL, Some(cs));
    }
    // The session is shown twice (as the answer and in the client): rendered once.
    let sessions = RenderedSessions::of(cs, &users, &state.rendered, now, &tokens);
    let flows = client_flows(state, cs, None).await?;
    let client = wire::client(cs, &sessions, &flows, now);
    match sessions.get(id) {
        Some(shown) => envelope(state, auth, shown, &client, Some(cs)),
        // A removed session is not among the client's.
        None => {
            let shown = state.rendered.session_of(session, &users, None, now);
            envelope(state, auth, shown.text(), &client, Some(cs))
        }
    }
}

/// `GET /v1/client/sessions/{session_id}`
pub async fn get(state: &AppState, req: Request, auth: &ClientAuth) -> Result<Response, ApiError> {
    let id = req.path_param("session_id");
    let cs = clients::require(state, auth).await?;
    answer(state, &req, auth, &cs, id, true).await
}

/// `POST /v1/client/sessions/{session_id}/touch` (fields `active_organization_id`, `intent`).
/// `intent=focus` answers `client: null`, as Clerk does for focus-only touches.
pub async fn touch(
    state: &AppState,
    req: Request,
    auth: &ClientAuth,
) -> Result<Response, ApiError> {
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
    let seen = || activity::of_request(state, &req);
    let cs = sessions::touch(state, auth, id, Some(&seen)).await?;
    answer(state, &req, auth, &cs, id, intent != Some("focus")).await
}

/// `POST /v1/client/sessions/{session_id}/end`: signs the session out; it stays on the client.
pub async fn end(state: &AppState, req: Request, auth: &ClientAuth) -> Result<Response, ApiError> {
    form(&req)?;
    let id = req.path_param("session_id");
    let origin = activity::origin(state, &req);
    let cs = sessions::sign_out(state, auth, id, SessionAction::End, &origin).await?;
    answer(state, &req, auth, &cs, id, true).await
}

/// `POST /v1/client/sessions/{session_id}/remove`: signs the session out and takes it off the client.
pub async fn remove(
    state: &AppState,
    req: Request,
    auth: &ClientAuth,
) -> Result<Response, ApiError> {
    form(&req)?;
    let id = req.path_param("session_id");
    let origin = activity::origin(state, &req);
    let cs = sessions::sign_out(state, auth, id, SessionAction::Remove, &origin).await?;
    answer(state, &req, auth, &cs, id, true).await
}

/// `POST /v1/client/sessions/{session_id}/tokens` (field `organization_id`).
pub async fn tokens(
    state: &AppState,
    req: Request,
    auth: &ClientAuth,
) -> Result<Response, ApiError> {
    let form = form(&req)?;
    refuse_organization(form.get("organization_id"))?;
    let origin = cors::origin(&req)?;
    let id = req.path_param("session_id");
    let cs = clients::require(state, auth).await?;
    let seen = || activity::of_request(state, &req);
    let jwt = mint(
        state,
        sessions::of_client(&cs, id)?,
        origin,
        Some(&seen),
        &TokenKind::Session,
    )
    .await?;
    response::ok(&wire::token_response(&jwt))
}

/// `POST /v1/client/sessions/{session_id}/tokens/{template_name}`: a token from a JWT
/// template (404 `resource_not_found` when there is no template of that name).
pub async fn template_token(
    state: &AppState,
    req: Request,
    auth: &ClientAuth,
) -> Result<Response, ApiError> {
    form(&req)?;
    let origin = cors::origin(&req)?;
    let id = req.path_param("session_id");
    let cs = clients::require(state, auth).await?;
    let session = sessions::of_client(&cs, id)?;
    let (template, user) =
        template_and_user(state, req.path_param("template_name"), &session.user_id).await?;
    let kind = TokenKind::Template {
        template: &template,
        user: &user,
        lifetime: None,
    };
    let seen = || activity::of_request(state, &req);
    let jwt = mint(state, session, origin, Some(&seen), &kind).await?;
    response::ok(&wire::token_response(&jwt))
}
