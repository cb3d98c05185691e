//! Minting: session tokens and JWT-template tokens for a session, on either API, and the
//! fresh `last_active_token`s of Frontend API answers. A mint is a read and a signature;
//! activity is recorded only when due.

use std::sync::Arc;

use serde_json::json;

use crate::clock::Millis;
use crate::domain::{ClientState, Session, SessionAction, SessionActivity, User};
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::{StoreError, Write};
use crate::tokens::recent::{Fresh, REUSE_FRACTION};
use crate::tokens::session_token::SessionClaims;
use crate::tokens::template_token::{CompiledTemplate, MintError};
use crate::wire::{self, LastActiveTokens};

/// Where a device's request was made (`http::activity::of_request`), worked out only when
/// activity is recorded; `None` for the Backend API, whose calls are the app's servers,
/// not the user's device.
pub type Seen<'a> = Option<&'a (dyn Fn() -> SessionActivity + Sync)>;

/// Records a session's activity at `now`, with where it was seen, and answers the session
/// as it then is. Best effort, by design: activity is bookkeeping, so losing the race to a
/// request that recorded it first counts as done, and a store fault is logged without
/// failing the request that carried the activity.
pub async fn record_activity(
    state: &AppState,
    session: &Session,
    now: Millis,
    seen: Seen<'_>,
) -> Session {
    let seen = seen.map(|of| of());
    let next = session.with_activity(now, state.lifetimes(), seen.as_ref());
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
    seen: Seen<'_>,
    kind: &TokenKind<'_>,
) -> Result<String, ApiError> {
    let now = state.now();
    // Check first: a session that may not mint must not cost a signature.
    session
        .check(SessionAction::MintToken, now)
        .map_err(|e| ApiError::from_transition(e, &session.id))?;
    let jwt = sign(state, session, origin, kind, now).map_err(ApiError::from)?;
    crate::metrics::token_minted(match kind {
        TokenKind::Session => "session",
        TokenKind::Template { .. } => "template",
    });
    if session.activity_due(now, state.lifetimes()) {
        record_activity(state, session, now, seen).await;
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
    // `azp` names an origin the instance allows, or none: a native caller sends any
    // Origin it likes, and a verifier checking `authorizedParties` must not be handed
    // one it would trust.
    let origin = origin.filter(|o| state.config.origin_allowed(o));
    let keys = state.keys();
    let signer = keys.signer(now)?;
    // A key whose removal a rotation has scheduled signs nothing that would outlive it:
    // tokens minted in the window (a template made or lengthened then, a Backend API
    // `expires_in_seconds`) end when the key does.
    let cap = |secs: u64| capped(&keys, now, secs);
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

/// `secs`, or less when a rotation has scheduled the current key's removal sooner.
fn capped(keys: &crate::keyring::Keyring, now: Millis, secs: u64) -> u64 {
    match keys.latest_exp(now) {
        Some(latest) => secs.min(((latest - now) / 1000).max(0) as u64),
        None => secs,
    }
}

/// Session tokens for some of the client's signed-in sessions, served as their
/// `last_active_token` in Frontend API answers. clerk-js primes its token cache from it,
/// and in a browser sets the `__session` cookie from the active session's after every
/// client update (and removes the cookie when the active session has none). So `wanted`
/// names the sessions an answer needs one for: the client's last active session (the one
/// clerk-js makes active), and the session the answer is about; other sessions answer
/// `null`, and clerk-js asks `…/tokens` when it switches to one. An answer thus costs at
/// most two signatures however many sessions the client holds. Never stored, so no answer
/// costs a write; a signed-out session never has one. A token this process signed for the
/// same session and origin within the last tenth of the token lifetime is served again
/// (see [`RecentTokens`](crate::tokens::recent::RecentTokens)), so a burst of answers
/// costs one signature, not one each.
pub fn last_active_tokens(
    state: &AppState,
    cs: &ClientState,
    origin: Option<&str>,
    wanted: &[Option<&str>],
) -> LastActiveTokens {
    // A page of another origin cannot read this answer anyway; it gets no token.
    if origin.is_some_and(|o| !state.config.origin_allowed(o)) {
        return LastActiveTokens::new();
    }
    let now = state.now();
    let keys = state.keys();
    cs.sessions
        .iter()
        .filter(|s| wanted.contains(&Some(s.id.as_str())))
        .filter(|s| s.check(SessionAction::MintToken, now).is_ok())
        .filter_map(|s| {
            let fresh = fresh(state, &keys, s, now)?;
            if let Some(jwt) = state.recent_tokens.get(&s.id, origin, &fresh) {
                return Some((s.id.clone(), jwt));
            }
            match sign(state, s, origin, &TokenKind::Session, now) {
                Ok(jwt) => {
                    crate::metrics::token_minted("last_active_token");
                    let token = wire::rendered_token(&jwt);
                    state.recent_tokens.put(&s.id, origin, &fresh, &token);
                    Some((s.id.clone(), token))
                }
                Err(e) => {
                    tracing::error!(session = %s.id, error = %e, "last active token not signed");
                    None
                }
            }
        })
        .collect()
}

/// What a session token signed for `session` now would say, to compare a kept one with.
fn fresh(
    state: &AppState,
    keys: &crate::keyring::Keyring,
    session: &Session,
    now: Millis,
) -> Option<Fresh> {
    let lifetime = state.config.session_token_lifetime.as_secs();
    let exp_secs = now / 1000 + capped(keys, now, lifetime) as i64;
    Some(Fresh {
        now,
        kid: keys.signer(now).ok()?.kid().to_string(),
        fva: ((now - session.created_at) / 60_000).max(0),
        pending: session.status_at(now) == crate::domain::SessionStatus::Pending,
        exp: exp_secs * 1000,
        latest_exp: keys.latest_exp(now),
        window: lifetime as Millis * 1000 / REUSE_FRACTION,
    })
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
