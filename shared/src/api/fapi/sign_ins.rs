//! `POST /v1/client/sign_ins` with `strategy=ticket`: redeems a Backend API sign-in token.

use serde_json::json;

use super::sessions::last_active_tokens;
use super::{client::new_client, client_users_with};
use crate::api::{landed, pause_before, MAX_ATTEMPTS};
use crate::domain::{ClientState, Session, SignInTokenStatus};
use crate::error::ApiError;
use crate::http::auth;
use crate::http::request::form;
use crate::http::response::{self, Response};
use crate::http::{cors, Request};
use crate::state::AppState;
use crate::store::Write;
use crate::wire;

/// Tickets are stored only as this hash.
pub fn ticket_hash(ticket: &str) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, ticket.as_bytes());
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

pub async fn create(state: &AppState, req: Request) -> Result<Response, ApiError> {
    let auth = auth::authenticate(state, &req).await?;
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
    if ticket.len() > 256 {
        return Err(ApiError::ticket_invalid(
            "This sign-in ticket is not valid.",
        ));
    }
    let hash = ticket_hash(ticket);

    for attempt in 0..MAX_ATTEMPTS {
        pause_before(attempt).await;
        let now = state.now();
        let (existing, _) = auth::load_client_or_start_over(state, &auth).await?;
        let token = state
            .store
            .get_sign_in_token(&hash)
            .await?
            .ok_or_else(|| ApiError::ticket_invalid("This sign-in ticket is not valid."))?;
        match token.status {
            SignInTokenStatus::Pending if now >= token.expires_at => {
                return Err(ApiError::ticket_expired())
            }
            SignInTokenStatus::Pending => {}
            SignInTokenStatus::Accepted | SignInTokenStatus::Revoked => {
                return Err(ApiError::ticket_invalid(
                    "This sign-in ticket has already been used.",
                ))
            }
        }
        let mut user = state.store.get_user(&token.user_id).await?.ok_or_else(|| {
            ApiError::ticket_invalid("The user of this sign-in ticket no longer exists.")
        })?;

        // The client signs in with a fresh rotating value, so a token planted before the
        // sign-in stops working.
        let mut cs = match existing {
            Some(mut cs) => {
                cs.client.version += 1;
                cs
            }
            None => ClientState {
                client: new_client(state),
                sessions: Vec::new(),
            },
        };
        let session = Session::start(&cs.client.id, &user.id, now, state.lifetimes());
        let client = &mut cs.client;
        client.rotating_token = crate::ids::new_secret();
        // Signed in: the client keeps the full client-token lifetime from now on.
        client.anonymous_until = None;
        client.last_active_session_id = Some(session.id.clone());
        client.updated_at = now;

        let mut accepted = token.clone();
        accepted.status = SignInTokenStatus::Accepted;
        accepted.updated_at = now;
        accepted.version += 1;
        user.last_sign_in_at = Some(now);
        user.updated_at = now;
        user.version += 1;

        let writes = vec![
            Write::sign_in_token(accepted),
            Write::NewSession(session.clone()),
            Write::client(cs.client.clone()),
            Write::user(user.clone()),
        ];
        if !landed(state.store.commit(writes).await)? {
            continue;
        }
        cs.sessions.push(session.clone());
        let sign_in = wire::completed_sign_in(
            &crate::ids::new_id("sia"),
            &session.id,
            &user,
            session.abandon_at,
        );
        let users = client_users_with(state, &cs, &user).await?;
        // Like `GET /v1/client`: the new session comes with a fresh token for clerk-js.
        let tokens = last_active_tokens(state, &cs, origin, None);
        let client_body = wire::client(&cs, &users, now, &tokens);
        let mut resp = response::ok(&json!({ "response": sign_in, "client": client_body }));
        auth::set_client_uat(state, auth.transport, Some(&cs), &mut resp);
        auth::deliver_client_token(state, auth.transport, &cs.client, &mut resp)?;
        return Ok(resp);
    }
    Err(ApiError::conflict("The sign-in ticket"))
}
