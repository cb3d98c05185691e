//! Minting: session tokens and JWT-template tokens for a session, on either API, and the
//! fresh `last_active_token`s of Frontend API answers. A mint is a read and a signature;
//! activity is recorded only when due.

use std::sync::Arc;

use serde_json::json;
use serde_json::value::RawValue;

use crate::clock::Millis;
use crate::domain::{ClientState, Session, SessionAction, SessionActivity, User};
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::{StoreError, Write};
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
/// (see [`RecentTokens`]), so a burst of answers costs one signature, not one each.
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
            let fresh = Fresh::of(state, &keys, s, now)?;
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

/// What a session token signed now would say that can change while a signed one is
/// reused: the key, the factor age in minutes and the status claim; and its `exp`. A
/// reused token must agree on the first three and expire no later than a fresh one may.
struct Fresh {
    now: Millis,
    kid: String,
    fva: i64,
    pending: bool,
    exp: Millis,
    latest_exp: Option<Millis>,
    window: Millis,
}

impl Fresh {
    fn of(
        state: &AppState,
        keys: &crate::keyring::Keyring,
        session: &Session,
        now: Millis,
    ) -> Option<Self> {
        let lifetime = state.config.session_token_lifetime.as_secs();
        let exp_secs = now / 1000 + capped(keys, now, lifetime) as i64;
        Some(Self {
            now,
            kid: keys.signer(now).ok()?.kid().to_string(),
            fva: ((now - session.created_at) / 60_000).max(0),
            pending: session.status_at(now) == crate::domain::SessionStatus::Pending,
            exp: exp_secs * 1000,
            latest_exp: keys.latest_exp(now),
            window: lifetime as Millis * 1000 / REUSE_FRACTION,
        })
    }
}

/// A reused `last_active_token` is at most a tenth of its lifetime old: with the default
/// 60 s it has at least 54 s left, more than clerk-js's refresh margin.
const REUSE_FRACTION: Millis = 10;
/// At most this many sessions have a token kept; when full of young tokens, a sixteenth
/// make room.
const RECENT_TOKENS_CAPACITY: usize = 10_000;
/// Stale tokens are swept once the map reaches this size, and then again at twice what
/// the sweep left (amortised O(1) a token): the map stays near the tokens still young,
/// instead of filling with stale ones up to the capacity and emptying (a saw-tooth of
/// some 13 MB in the soak, figure 12).
const RECENT_TOKENS_SWEEP_FROM: usize = 1024;

struct Recent {
    origin: Option<String>,
    token: Arc<RawValue>,
    signed_at: Millis,
    exp: Millis,
    kid: String,
    fva: i64,
    pending: bool,
}

/// The `last_active_token`s this process signed recently, by session id. Only ever
/// served for a session the answer's client holds and that may mint at that moment (the
/// caller checks both), so reuse shows no one a token they could not have got fresh.
#[derive(Default)]
pub struct RecentTokens {
    by_session: std::sync::Mutex<std::collections::HashMap<String, Vec<Recent>>>,
    /// The map's size at which the next sweep runs (changed under the map's lock).
    sweep_at: std::sync::atomic::AtomicUsize,
}

impl RecentTokens {
    /// How many sessions have a token kept now.
    pub fn len(&self) -> usize {
        self.by_session.lock().map_or(0, |m| m.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn get(&self, session_id: &str, origin: Option<&str>, fresh: &Fresh) -> Option<Arc<RawValue>> {
        let map = self.by_session.lock().ok()?;
        let recent = map
            .get(session_id)?
            .iter()
            .find(|r| r.origin.as_deref() == origin)?;
        let young = (0..=fresh.window).contains(&(fresh.now - recent.signed_at));
        let same =
            recent.kid == fresh.kid && recent.fva == fresh.fva && recent.pending == fresh.pending;
        let within_cap = fresh.latest_exp.is_none_or(|latest| recent.exp <= latest);
        (young && same && within_cap).then(|| recent.token.clone())
    }

    fn put(&self, session_id: &str, origin: Option<&str>, fresh: &Fresh, token: &Arc<RawValue>) {
        let Ok(mut map) = self.by_session.lock() else {
            return;
        };
        let sweep_at = self
            .sweep_at
            .load(std::sync::atomic::Ordering::Relaxed)
            .clamp(RECENT_TOKENS_SWEEP_FROM, RECENT_TOKENS_CAPACITY);
        if map.len() >= sweep_at && !map.contains_key(session_id) {
            map.retain(|_, recents| {
                recents.retain(|r| fresh.now - r.signed_at <= fresh.window);
                !recents.is_empty()
            });
            // Still full of young tokens: a sixteenth make room (one pass), so the memory
            // stays level instead of emptying and refilling.
            let mut evict = if map.len() >= RECENT_TOKENS_CAPACITY {
                RECENT_TOKENS_CAPACITY / 16
            } else {
                0
            };
            map.retain(|_, _| {
                if evict == 0 {
                    return true;
                }
                evict -= 1;
                false
            });
            self.sweep_at
                .store(2 * map.len(), std::sync::atomic::Ordering::Relaxed);
        }
        let recent = Recent {
            origin: origin.map(str::to_string),
            token: token.clone(),
            signed_at: fresh.now,
            exp: fresh.exp,
            kid: fresh.kid.clone(),
            fva: fresh.fva,
            pending: fresh.pending,
        };
        let recents = map.entry(session_id.to_string()).or_default();
        recents.retain(|r| r.origin.as_deref() != origin);
        recents.push(recent);
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn fresh(now: Millis) -> Fresh {
        Fresh {
            now,
            kid: "ins_kid".into(),
            fva: -1,
            pending: false,
            exp: now + 60_000,
            latest_exp: None,
            window: 6_000,
        }
    }

    #[test]
    fn recent_tokens_make_room_a_sixteenth_at_a_time() {
        let recent = RecentTokens::default();
        let token: Arc<RawValue> = Arc::from(RawValue::from_string("\"t\"".into()).unwrap());
        let now = fresh(1_000);
        for i in 0..RECENT_TOKENS_CAPACITY {
            recent.put(&format!("sess_{i}"), None, &now, &token);
        }
        assert_eq!(recent.len(), RECENT_TOKENS_CAPACITY);
        // Full of young tokens: a sixteenth go, not all of them.
        recent.put("sess_new", None, &now, &token);
        assert_eq!(
            recent.len(),
            RECENT_TOKENS_CAPACITY - RECENT_TOKENS_CAPACITY / 16 + 1
        );
        assert!(recent.get("sess_new", None, &now).is_some());
        // Once they are stale, they all go first.
        let later = fresh(1_000 + now.window + 1);
        for i in 0..RECENT_TOKENS_CAPACITY / 16 {
            recent.put(&format!("sess_more_{i}"), None, &later, &token);
        }
        recent.put("sess_last", None, &later, &token);
        assert_eq!(recent.len(), RECENT_TOKENS_CAPACITY / 16 + 1);
    }

    #[test]
    fn stale_recent_tokens_are_swept_long_before_the_capacity() {
        let recent = RecentTokens::default();
        let token: Arc<RawValue> = Arc::from(RawValue::from_string("\"t\"".into()).unwrap());
        // A steady load: a new session every 100 ms, each token young for 6 s.
        for i in 0..30_000 {
            recent.put(&format!("sess_{i}"), None, &fresh(i * 100), &token);
            assert!(
                recent.len() <= RECENT_TOKENS_SWEEP_FROM,
                "{i}: {}",
                recent.len()
            );
        }
    }
}
