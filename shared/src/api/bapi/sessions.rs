//! `GET /v1/sessions`, `GET /v1/sessions/{id}`, `POST /v1/sessions/{id}/revoke`,
//! `POST /v1/sessions/{id}/tokens`, `POST /v1/sessions/{id}/refresh`.

use super::list_answer;
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
    let status = match req.query_param("status").filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => Some(SessionStatus::parse(&s).ok_or_else(|| {
            ApiError::param_invalid("status", "status must be one of active, pending, ended, removed, revoked, expired, abandoned.")
        })?),
    };
    let filter = SessionFilter {
        client_id: req.query_param("client_id").filter(|s| !s.is_empty()),
        user_id: req.query_param("user_id").filter(|s| !s.is_empty()),
        newest: None,
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
    let session = sessions::find(state, req.path_param("session_id")).await?;
    response::ok(&wire::backend_session(&session, state.now()))
}

/// `POST /v1/sessions/{session_id}/revoke`
pub async fn revoke(state: &AppState, req: Request) -> Result<Response, ApiError> {
    let session = sessions::revoke(
        state,
        req.path_param("session_id"),
        &crate::http::activity::origin(state, &req),
    )
    .await?;
    response::ok(&wire::backend_session(&session, state.now()))
}

/// Mints a session token for a signed-in session (no `azp`: there is no browser origin).
pub async fn tokens(state: &AppState, req: Request) -> Result<Response, ApiError> {
    let session = sessions::find(state, req.path_param("session_id")).await?;
    let jwt = mint(state, &session, None, None, &TokenKind::Session).await?;
    response::ok(&wire::token_response(&jwt))
}

#[derive(serde::Deserialize)]
struct TemplateTokenBody {
    expires_in_seconds: Option<u64>,
}

/// `POST /v1/sessions/{session_id}/tokens/{template_name}`, with optional
/// `expires_in_seconds` overriding the template's lifetime.
pub async fn template_token(state: &AppState, req: Request) -> Result<Response, ApiError> {
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
    let jwt = mint(state, &session, None, None, &kind).await?;
    response::ok(&wire::token_response(&jwt))
}

/// The body @clerk/backend sends to refresh a session from the app's server. It also sends
/// `request_headers` and may send `request_originating_ip`; nothing here depends on them.
#[derive(serde::Deserialize)]
struct RefreshBody {
    expired_token: Option<String>,
    refresh_token: Option<String>,
    request_origin: Option<String>,
    format: Option<String>,
}

/// `POST /v1/sessions/{session_id}/refresh`: a new session token from an expired one and
/// the `__refresh` grant the handshake set (`app::handshake::refresh`). Missing fields are
/// 422; every failed check is 401, as Clerk's SDKs expect.
pub async fn refresh(state: &AppState, req: Request) -> Result<Response, ApiError> {
    use crate::app::handshake::{self, Refresh, Refreshed};
    let body = crate::http::request::json_body::<RefreshBody>(&req)?;
    let required = |value: &Option<String>, name: &str| {
        value
            .as_deref()
            .filter(|v| !v.is_empty())
            .map(str::to_string)
            .ok_or_else(|| ApiError::param_missing(name))
    };
    let expired_token = required(&body.expired_token, "expired_token")?;
    let refresh_token = required(&body.refresh_token, "refresh_token")?;
    let request_origin = required(&body.request_origin, "request_origin")?;
    let cookies = match body.format.as_deref() {
        None | Some("token") => false,
        Some("cookie") => true,
        Some(_) => {
            return Err(ApiError::param_invalid(
                "format",
                "format must be token or cookie.",
            ))
        }
    };
    let refreshed = handshake::refresh(
        state,
        &Refresh {
            session_id: req.path_param("session_id"),
            expired_token: &expired_token,
            refresh_token: &refresh_token,
            request_origin: &request_origin,
            cookies,
            suffixed: req.query_param("suffixed_cookies").as_deref() == Some("true"),
        },
    )
    .await?;
    match refreshed {
        Refreshed::Token(jwt) => response::ok(&wire::token_response(&jwt)),
        Refreshed::Cookies(cookies) => {
            response::ok(&serde_json::json!({ "object": "cookies", "cookies": cookies }))
        }
    }
}
