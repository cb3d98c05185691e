//! `/v1/me/sessions`: the signed-in user's sessions on every device, with where each was
//! last used, and revoking one of them from another device (clerk-js's
//! `user.getSessions()` and `session.revoke()`, the "Active devices" panel).

use super::client_users;
use crate::app::sessions;
use crate::domain::Session;
use crate::error::ApiError;
use crate::http::auth::ClientAuth;
use crate::http::request::{form, limit_offset, RequestExt};
use crate::http::response::{self, Response};
use crate::http::Request;
use crate::state::AppState;
use crate::wire;

async fn me(
    state: &AppState,
    req: &Request,
    auth: &ClientAuth,
) -> Result<(crate::domain::ClientState, Session), ApiError> {
    let named = req.query_param("_clerk_session_id");
    sessions::requesting(state, auth, named.as_deref().filter(|s| !s.is_empty())).await
}

/// The user's sessions as a bare array (what clerk-js maps over), newest first, each with
/// its latest activity; `signed_in` keeps only those signed in now (`/active`). Paged by
/// `limit` (100 by default, at most 500) and `offset`, as Clerk's lists are; clerk-js asks
/// without them. Only the newest `sessions::MY_SESSIONS_READ` are read.
async fn list(
    state: &AppState,
    req: &Request,
    auth: &ClientAuth,
    signed_in: bool,
) -> Result<Response, ApiError> {
    let (limit, offset) = limit_offset(req, 100, 500)?;
    let (cs, me) = me(state, req, auth).await?;
    let now = state.now();
    let all = sessions::of_user(state, &me.user_id).await?;
    let users = client_users(state, &cs).await?;
    let user = users.get(&me.user_id).map(|u| state.rendered.user(u));
    let shown: Vec<_> = all
        .iter()
        .filter(|s| !signed_in || s.status_at(now).is_signed_in())
        .skip(offset)
        .take(limit)
        .map(|s| wire::active_session(s, user.as_deref(), now))
        .collect();
    response::ok(&shown)
}

/// `GET /v1/me/sessions`: every session of the user, whatever its status.
pub async fn all(state: &AppState, req: Request, auth: &ClientAuth) -> Result<Response, ApiError> {
    list(state, &req, auth, false).await
}

/// `GET /v1/me/sessions/active`: the user's signed-in sessions.
pub async fn active(
    state: &AppState,
    req: Request,
    auth: &ClientAuth,
) -> Result<Response, ApiError> {
    list(state, &req, auth, true).await
}

/// `POST /v1/me/sessions/{session_id}/revoke`: the session, revoked, and the caller's
/// client (`{"response", "client"}`).
pub async fn revoke(
    state: &AppState,
    req: Request,
    auth: &ClientAuth,
) -> Result<Response, ApiError> {
    form(&req)?;
    let (mut cs, me) = me(state, &req, auth).await?;
    let revoked = sessions::revoke_own(
        state,
        &me,
        req.path_param("session_id"),
        &crate::http::activity::origin(state, &req),
    )
    .await?;
    // The revoked session may be one of this client's own: show it as it now is.
    if let Some(slot) = cs.sessions.iter_mut().find(|s| s.id == revoked.id) {
        *slot = revoked.clone();
    }
    super::sessions::answer_with(state, &req, auth, &cs, &revoked, true).await
}
