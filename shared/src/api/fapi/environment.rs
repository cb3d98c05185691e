//! `GET /v1/environment`: the document rendered at start-up (`crate::environment`), and
//! `PATCH /v1/environment`.

use crate::error::ApiError;
use crate::http::response::{self, Response};
use crate::state::AppState;

pub async fn get(state: &AppState) -> Result<Response, ApiError> {
    Ok(response::ok_raw(state.environment_json.clone()))
}

/// `PATCH /v1/environment`, which clerk-js sends on every load against a development
/// instance (as POST with `_method=PATCH`). Clerk records the caller's origin as the
/// instance's home origin; here the origins a browser may use are configuration
/// (`ALLOWED_ORIGINS`), so there is nothing to record and the answer is the document.
pub async fn update(state: &AppState) -> Result<Response, ApiError> {
    get(state).await
}
