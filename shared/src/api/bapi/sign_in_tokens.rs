//! `POST /v1/sign_in_tokens`: a one-time ticket that signs a user in through the
//! Frontend API (`POST /v1/client/sign_ins`, `strategy=ticket`).

use serde::Deserialize;

use crate::domain::ticket_hash;
use crate::domain::{SignInToken, SignInTokenStatus};
use crate::error::ApiError;
use crate::http::request::json_body;
use crate::http::response::{self, Response};
use crate::http::Request;
use crate::state::AppState;
use crate::store::Write;
use crate::wire;

/// Clerk's default: a ticket is valid for 30 days.
pub(crate) const DEFAULT_EXPIRES_IN_SECONDS: u64 = 30 * 24 * 3600;

#[derive(Deserialize)]
struct CreateSignInToken {
    user_id: String,
    expires_in_seconds: Option<u64>,
}

pub async fn create(state: &AppState, req: Request) -> Result<Response, ApiError> {
    let body = json_body::<CreateSignInToken>(&req)?;
    let expires_in = body
        .expires_in_seconds
        .unwrap_or(DEFAULT_EXPIRES_IN_SECONDS);
    if !(1..=315_360_000).contains(&expires_in) {
        return Err(ApiError::param_invalid(
            "expires_in_seconds",
            "expires_in_seconds must be from 1 to 315360000.",
        ));
    }
    let user = state
        .store
        .get_user(&body.user_id)
        .await?
        .ok_or_else(|| ApiError::not_found("User").with_param("user_id"))?;
    let now = state.now();
    let ticket = crate::ids::new_secret();
    let token = SignInToken {
        id: crate::ids::new_id("sit"),
        user_id: user.id,
        ticket_hash: ticket_hash(&ticket),
        status: SignInTokenStatus::Pending,
        created_at: now,
        updated_at: now,
        expires_at: now + expires_in as i64 * 1000,
        version: 1,
        redeemed: None,
    };
    state
        .store
        .commit(vec![Write::sign_in_token(token.clone())])
        .await?;
    response::ok(&wire::sign_in_token(&token, Some(&ticket), None, now))
}
