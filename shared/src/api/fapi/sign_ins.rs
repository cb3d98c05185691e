//! `POST /v1/client/sign_ins` with `strategy=ticket`: redeems a Backend API sign-in token
//! (`app::sign_in`) and answers the completed sign-in with the client.

use super::client_users_with;
use crate::app::minting::last_active_tokens;
use crate::app::sign_in::{redeem_ticket, SignedIn};
use crate::error::ApiError;
use crate::http::auth::{self, ClientAuth};
use crate::http::request::form;
use crate::http::response::{self, Response};
use crate::http::{activity, cors, Request};
use crate::state::AppState;
use crate::wire::{self, Envelope, RenderedSessions};

pub async fn create(
    state: &AppState,
    req: Request,
    auth: &ClientAuth,
) -> Result<Response, ApiError> {
    let origin = cors::origin(&req)?;
    let form = form(&req)?;
    match form.non_empty("strategy") {
        None => return Err(ApiError::param_missing("strategy")),
        Some("ticket") => {}
        Some(_) => {
            return Err(ApiError::param_invalid(
                "strategy",
                "This service signs in only with strategy=ticket.",
            ))
        }
    }
    let ticket = form
        .non_empty("ticket")
        .ok_or_else(|| ApiError::param_missing("ticket"))?;
    let SignedIn {
        client: cs,
        session,
        user,
    } = redeem_ticket(
        state,
        auth,
        ticket,
        &activity::of_request(state, &req),
        &activity::origin(state, &req),
    )
    .await?;

    let now = state.now();
    let attempt_id = crate::ids::new_id("sia");
    let sign_in = wire::completed_sign_in(&attempt_id, &session.id, &user, session.abandon_at);
    let users = client_users_with(state, &cs, &user).await?;
    // Like `GET /v1/client`: the new session comes with a fresh token for clerk-js.
    let tokens = last_active_tokens(state, &cs, origin, &[Some(session.id.as_str())]);
    let sessions = RenderedSessions::of(&cs, &users, &state.rendered, now, &tokens);
    let client = wire::client(&cs, &sessions, now);
    let mut resp = response::ok(&Envelope {
        response: sign_in,
        client,
    })?;
    auth::set_client_uat(state, auth.transport, Some(&cs), &mut resp);
    auth::deliver_client_token(state, auth.transport, &cs.client, &mut resp)?;
    Ok(resp)
}
