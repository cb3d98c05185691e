//! `GET /v1/sessions`, `GET /v1/sessions/{id}`, `POST /v1/sessions/{id}/revoke`,
//! `POST /v1/sessions/{id}/tokens`.

use super::{authorize, list_answer};
use crate::app::minting::{mint, template_and_user, TokenKind};
use crate::app::sessions;
use crate::domain::{Session, SessionStatus};
use crate::error::ApiError;
use crate::http::response::{self, Response};
use crate::http::{Request, RequestExt};
use crate::state::AppState;
use crate::store::SessionFilter;
use crate::wire;

/// Lists sessions, filtered by `client_id`, `user_id` and `status`. With `paginated=true`
/// the answer is `{data, total_count}` (as @clerk/backend expects), else a bare array (as
/// Clerk's Python SDK expects).
pub async fn list(state: &AppState, req: Request) -> Result<Response, ApiError> {
    authorize(state, &req)?;
    let status = match req.query_param("status").filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => Some(SessionStatus::parse(&s).ok_or_else(|| {
            ApiError::param_invalid("status", "status must be one of active, pending, ended, removed, revoked, expired, abandoned.")
        })?),
    };
    let filter = SessionFilter {
        client_id: req.query_param("client_id").filter(|s| !s.is_empty()),
        user_id: req.query_param("user_id").filter(|s| !s.is_empty()),
    };
    let now = state.now();
    let matching: Vec<Session> = state
        .store
        .list_sessions(&filter)
        .await?
        .into_iter()
        .filter(|s| status.is_none_or(|st| s.status_at(now) == st))
        .collect();
    list_answer(&req, &matching, |s| wire::backend_session(s, now))
}

pub async fn get(state: &AppState, req: Request) -> Result<Response, ApiError> {
    authorize(state, &req)?;
    let session = sessions::find(state, req.path_param("session_id")).await?;
    response::ok(&wire::backend_session(&session, state.now()))
}

/// `POST /v1/sessions/{session_id}/revoke`
pub async fn revoke(state: &AppState, req: Request) -> Result<Response, ApiError> {
    authorize(state, &req)?;
    let session = sessions::revoke(state, req.path_param("session_id")).await?;
    response::ok(&wire::backend_session(&session, state.now()))
}

/// Mints a session token for a signed-in session (no `azp`: there is no browser origin).
pub async fn tokens(state: &AppState, req: Request) -> Result<Response, ApiError> {
    authorize(state, &req)?;
    let session = sessions::find(state, req.path_param("session_id")).await?;
    let jwt = mint(state, &session, None, &TokenKind::Session).await?;
    response::ok(&wire::token_response(&jwt))
}

#[derive(serde::Deserialize)]
struct TemplateTokenBody {
    expires_in_seconds: Option<u64>,
}

/// `POST /v1/sessions/{session_id}/tokens/{template_name}`, with optional
/// `expires_in_seconds` overriding the template's lifetime.
pub async fn template_token(state: &AppState, req: Request) -> Result<Response, ApiError> {
    authorize(state, &req)?;
    let body = crate::http::request::json_body::<TemplateTokenBody>(&req)?;
    if let Some(secs) = body.expires_in_seconds {
        if !(30..=315_360_000).contains(&secs) {
            return Err(ApiError::param_invalid(
                "expires_in_seconds",
                "expires_in_seconds must be from 30 to 315360000.",
            ));
        }
    }
    let session = sessions::find(state, req.path_param("session_id")).await?;
    let (template, user) =
        template_and_user(state, req.path_param("template_name"), &session.user_id).await?;
    let kind = TokenKind::Template {
        template: &template,
        user: &user,
        lifetime: body.expires_in_seconds,
    };
    let jwt = mint(state, &session, None, &kind).await?;
    response::ok(&wire::token_response(&jwt))
}
