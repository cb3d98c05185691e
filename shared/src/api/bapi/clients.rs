//! `GET /v1/clients/handshake_payload`: opens a handshake nonce (`format=nonce`) for the
//! app's server, which sets the cookie directives inside on its answer; once
//! (`app::handshake::open_payload`).

use serde_json::json;

use crate::app::handshake;
use crate::error::ApiError;
use crate::http::response::{self, Response};
use crate::http::{Request, RequestExt};
use crate::state::AppState;

pub async fn handshake_payload(state: &AppState, req: Request) -> Result<Response, ApiError> {
    let nonce = req
        .query_param("nonce")
        .filter(|n| !n.is_empty())
        .ok_or_else(|| ApiError::param_missing("nonce"))?;
    let directives = handshake::open_payload(state, &nonce).await?;
    response::ok(&json!({ "directives": directives }))
}
