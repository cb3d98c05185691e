//! The Backend API subset, for the app's servers: JSON bodies, and
//! `Authorization: Bearer <secret key>` on every call.

pub mod clients;
pub mod jwt_templates;
pub mod keys;
pub mod sessions;
pub mod sign_in_tokens;
pub mod users;
pub mod webhooks;

use serde::Serialize;

use crate::error::ApiError;
use crate::http::response::{self, Response};
use crate::http::{Request, RequestExt};
use crate::state::AppState;

/// Checks the secret key: the route layer calls it for every `SecretKey` route before
/// its handler runs, so no handler reads anything for a caller without it.
pub fn authorize(state: &AppState, req: &Request) -> Result<(), ApiError> {
    let mut values = req.headers().get_all(http::header::AUTHORIZATION).iter();
    let first = values.next();
    if values.next().is_some() {
        return Err(ApiError::header_repeated("Authorization"));
    }
    let presented = first
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .unwrap_or("");
    if state.secret_key_matches(presented) {
        Ok(())
    } else {
        Err(ApiError::secret_key_invalid())
    }
}

/// `GET /v1/jwks`: the same keys as the Frontend API's JWKS, where @clerk/backend's
/// `verifyToken` looks for them.
pub async fn jwks(state: &AppState) -> Result<Response, ApiError> {
    let mut resp = response::ok(&state.keys().jwks(state.now()))?;
    let max_age = state.config.jwks_cache_window.as_secs();
    response::set_header(
        &mut resp,
        "cache-control",
        &format!("private, max-age={max_age}"),
    );
    Ok(resp)
}

/// A page of `all`, answered in the style the caller asked for: `paginated=true` →
/// `{data, total_count}` (as @clerk/backend expects), else a bare array (as Clerk's Python
/// SDK expects).
pub(crate) fn list_answer<'a, T, R: Serialize>(
    req: &Request,
    all: &'a [T],
    render: impl Fn(&'a T) -> R,
) -> Result<Response, ApiError> {
    #[derive(Serialize)]
    struct Page<R> {
        data: Vec<R>,
        total_count: usize,
    }
    let (limit, offset) = page(req)?;
    let data: Vec<R> = all.iter().skip(offset).take(limit).map(render).collect();
    if req.query_param("paginated").as_deref() == Some("true") {
        response::ok(&Page {
            data,
            total_count: all.len(),
        })
    } else {
        response::ok(&data)
    }
}

/// `limit` (10 by default, at most 500) and `offset`, as Clerk's Backend API lists take them.
fn page(req: &Request) -> Result<(usize, usize), ApiError> {
    crate::http::request::limit_offset(req, 10, 500)
}
