//! `GET /v1/clients/handshake_payload`: opens a handshake nonce (`format=nonce`) for the
//! app's server, which sets the cookie directives inside on its answer.

use serde_json::json;

use super::authorize;
use crate::error::ApiError;
use crate::http::response::{self, Response};
use crate::http::{Request, RequestExt};
use crate::state::AppState;
use crate::tokens::handshake;

pub async fn handshake_payload(state: &AppState, req: Request) -> Result<Response, ApiError> {
    authorize(state, &req)?;
    let nonce = req
        .query_param("nonce")
        .filter(|n| !n.is_empty())
        .ok_or_else(|| ApiError::param_missing("nonce"))?;
    // Tampered, expired, another instance's: all the same answer.
    let directives = handshake::open_nonce(&state.keys(), &nonce, state.now())
        .ok_or_else(|| ApiError::not_found("Handshake payload"))?;
    response::ok(&json!({ "directives": directives }))
}
