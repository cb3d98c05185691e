//! Minting: session tokens and JWT-template tokens for a session, on either API, and the
//! fresh `last_active_token`s of Frontend API answers. A mint is a read and a signature;
//! activity is recorded only when due.

use std::sync::Arc;

use serde_json::json;

use crate::clock::Millis;
use crate::domain::{ClientState, Session, SessionAction, User};
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::{StoreError, Write};
use crate::tokens::session_token::SessionClaims;
use crate::tokens::template_token::{CompiledTemplate, MintError};
use crate::wire::LastActiveTokens;

/// Records a session's activity at `now` and answers the session as it then is. Best
/// effort, by design: activity is bookkeeping, so losing the race to a request that
/// recorded it first counts as done, and a store fault is logged without failing the
/// request that carried the activity.
pub async fn record_activity(state: &AppState, session: &Session, now: Millis) -> Session {
    let next = session.with_activity(now, state.lifetimes());
    match state
        .store
        .commit(vec![Write::session_activity(&next)])
        .await
    {
        Ok(()) => next,
        // Later activity is recorded already, or the session was signed out meanwhile.
        Err(StoreError::Conflict) => session.clone(),
        Err(e) => {
            tracing::warn!(session = %session.id, error = %e, "session activity not recorded");
            session.clone()
        }
    }
}

/// What a mint signs.
pub enum TokenKind<'a> {
    Session,
    /// A JWT template's token for the session's user; `lifetime` overrides the template's.
    Template {
        template: &'a CompiledTemplate,
        user: &'a User,
        lifetime: Option<u64>,
    },
}

/// Signs a token for `session` as read (strongly consistently) at the start of the
/// request: a read and a signature, no write, so concurrent mints never conflict. A mint
/// that starts after an end, remove or revoke has answered reads the new status and is
/// refused; one already past its read may still finish (docs/sessions.md, "Minting").
/// Activity is recorded when due, at most once per activity interval.
pub async fn mint(
    state: &AppState,
    session: &Session,
    origin: Option<&str>,
    kind: &TokenKind<'_>,
) -> Result<String, ApiError> {
    let now = state.now();
    // Check first: a session that may not mint must not cost a signature.
    session
        .check(SessionAction::MintToken, now)
        .map_err(|e| ApiError::from_transition(e, &session.id))?;
    let jwt = sign(state, session, origin, kind, now).map_err(ApiError::from)?;
    if session.activity_due(now, state.lifetimes()) {
        record_activity(state, session, now).await;
    }
    Ok(jwt)
}

fn sign(
    state: &AppState,
    session: &Session,
    origin: Option<&str>,
    kind: &TokenKind<'_>,
    now: Millis,
) -> Result<String, MintError> {
    let issuer = &state.config.frontend_api_url;
    let keys = state.keys();
    let signer = keys.signer(now)?;
    // A key whose removal a rotation has scheduled signs nothing that would outlive it:
    // tokens minted in the window (a template made or lengthened then, a Backend API
    // `expires_in_seconds`) end when the key does.
    let cap = |secs: u64| match keys.latest_exp(now) {
        Some(latest) => secs.min(((latest - now) / 1000).max(0) as u64),
        None => secs,
    };
    match kind {
        TokenKind::Session => {
            let lifetime = cap(state.config.session_token_lifetime.as_secs()) as i64;
            signer
                .sign_rs256(&SessionClaims::new(session, issuer, origin, now, lifetime))
                .map_err(MintError::from)
        }
        TokenKind::Template {
            template,
            user,
            lifetime,
        } => {
            let lifetime = lifetime.unwrap_or(template.lifetime);
            // A template's own key is not the keyring's: nothing to cap.
            let lifetime = if template.signed_by_instance() {
                cap(lifetime)
            } else {
                lifetime
            };
            template.mint(signer, user, session, issuer, origin, now, Some(lifetime))
        }
    }
}

/// Fresh session tokens for the client's signed-in sessions, served as their
/// `last_active_token` in every Frontend API answer. clerk-js primes its token cache from
/// it, and in a browser sets the `__session` cookie from it after every client update
/// (and removes the cookie when the active session has none). Minted at answer time and
/// never stored: a signed-out session never has one, and no mint costs a write.
pub fn last_active_tokens(
    state: &AppState,
    cs: &ClientState,
    origin: Option<&str>,
    only: Option<&str>,
) -> LastActiveTokens {
    // A page of another origin cannot read this answer anyway; it gets no token.
    if origin.is_some_and(|o| !state.config.origin_allowed(o)) {
        return LastActiveTokens::new();
    }
    let now = state.now();
    cs.sessions
        .iter()
        .filter(|s| only.is_none_or(|id| s.id == id))
        .filter(|s| s.check(SessionAction::MintToken, now).is_ok())
        .filter_map(|s| match sign(state, s, origin, &TokenKind::Session, now) {
            Ok(jwt) => Some((s.id.clone(), jwt)),
            Err(e) => {
                tracing::error!(session = %s.id, error = %e, "last active token not signed");
                None
            }
        })
        .collect()
}

/// The template named `name`, compiled, and the session's user, read together.
pub async fn template_and_user(
    state: &AppState,
    name: &str,
    user_id: &str,
) -> Result<(Arc<CompiledTemplate>, User), ApiError> {
    let (template, user) = tokio::try_join!(
        state.store.get_jwt_template(name),
        state.store.get_user(user_id)
    )?;
    let template = template.ok_or_else(|| {
        ApiError::not_found("JWT template").with_meta("template_name", json!(name))
    })?;
    let compiled = state.compiled_template(&template).map_err(|e| {
        tracing::error!(template = %template.id, error = %e, "stored JWT template does not compile");
        ApiError::internal()
    })?;
    Ok((compiled, user.ok_or_else(ApiError::signed_out)?))
}
