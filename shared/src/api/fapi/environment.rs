//! `GET /v1/environment`: the document rendered at start-up (`crate::environment`).

use crate::error::ApiError;
use crate::http::response::{self, Response};
use crate::state::AppState;

pub async fn get(state: &AppState) -> Result<Response, ApiError> {
    Ok(response::ok_raw(state.environment_json.clone()))
}
