//! `POST /v1/client/sign_ins` with `strategy=ticket`: redeems a Backend API sign-in token.

use super::client_users_with;
use crate::app::clients::{self, new_client};
use crate::app::minting::last_active_tokens;
use crate::app::{landed, retrying};
use crate::domain::{ticket_hash, ClientState, Session, SignInTokenStatus};
use crate::error::ApiError;
use crate::http::auth::{self, ClientAuth};
use crate::http::request::form;
use crate::http::response::{self, Response};
use crate::http::{cors, Request};
use crate::state::AppState;
use crate::store::Write;
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
    if ticket.len() > 256 {
        return Err(ApiError::ticket_invalid(
            "This sign-in ticket is not valid.",
        ));
    }
    let hash = ticket_hash(ticket);

    let (auth, hash) = (&auth, &hash);
    retrying("The sign-in ticket", || async move {
        let now = state.now();
        let (existing, _) = clients::load_or_start_over(state, auth).await?;
        let token = state
            .store
            .get_sign_in_token(hash)
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

        let is_new = existing.is_none();
        let mut cs = existing.unwrap_or_else(|| ClientState {
            client: new_client(state),
            sessions: Vec::new(),
        });
        let session = Session::start(&cs.client.id, &user.id, now, state.lifetimes());
        cs.client = cs.client.signed_in(&session.id, now);
        if is_new {
            // Not stored yet: it is written as new.
            cs.client.version = 1;
        }

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
            return Ok(None);
        }
        cs.sessions.push(session.clone());
        let attempt_id = crate::ids::new_id("sia");
        let sign_in = wire::completed_sign_in(&attempt_id, &session.id, &user, session.abandon_at);
        let users = client_users_with(state, &cs, &user).await?;
        // Like `GET /v1/client`: the new session comes with a fresh token for clerk-js.
        let tokens = last_active_tokens(state, &cs, origin, None);
        let sessions = RenderedSessions::of(&cs, &users, now, &tokens);
        let client = wire::client(&cs, &sessions, now);
        let mut resp = response::ok(&Envelope {
            response: sign_in,
            client,
        })?;
        auth::set_client_uat(state, auth.transport, Some(&cs), &mut resp);
        auth::deliver_client_token(state, auth.transport, &cs.client, &mut resp)?;
        Ok(Some(resp))
    })
    .await
}
