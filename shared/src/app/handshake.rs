//! The handshake (`GET /v1/client/handshake`, docs/api.md "Handshake"): a server-rendered
//! app whose `__session` cookie has expired sends the browser here; the answer sends it
//! back with the cookies the app's server should set: a fresh session token for the
//! client's last active session, `__client_uat` and a `__refresh` grant, or cleared ones
//! when the client is signed out. With the grant, the app's server can later refresh the
//! session token itself through the Backend API ([`refresh`]), without the round trip.

use url::Url;

use super::clients;
use super::minting::{self, Seen, TokenKind};
use crate::error::ApiError;
use crate::http::auth::ClientAuth;
use crate::state::AppState;
use crate::store::{StoreError, Write};
use crate::tokens::handshake::{self as payload, RefreshGrant};

/// How the payload travels back (the `format` parameter).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// A `__clerk_handshake` JWT holding the directives, signed by the instance key and
    /// readable by anyone who sees the URL: it carries no refresh grant.
    Token,
    /// A `__clerk_handshake_nonce` the app's server exchanges for the directives through
    /// the Backend API (`GET /v1/clients/handshake_payload`), once. The default: nothing
    /// readable travels in the URL.
    Nonce,
}

/// A handshake as asked for, already checked: where to send the browser back, and how.
#[derive(Debug)]
pub struct Handshake {
    /// On an allowed origin (see [`redirect_target`]).
    pub redirect: Url,
    pub format: Format,
    /// Whether the app's SDK reads suffixed cookie names (`suffixed_cookies=true`).
    pub suffixed: bool,
}

/// Parses `redirect_url`: an absolute http(s) URL on an origin the instance allows (the
/// same rule as CORS), so the handshake never redirects anywhere else.
pub fn redirect_target(state: &AppState, raw: &str) -> Result<Url, ApiError> {
    let refuse = || {
        ApiError::param_invalid(
            "redirect_url",
            "redirect_url must be an absolute URL on an allowed origin (ALLOWED_ORIGINS).",
        )
    };
    let url = Url::parse(raw).map_err(|_| refuse())?;
    let allowed = matches!(url.scheme(), "http" | "https")
        && url.username().is_empty()
        && url.password().is_none()
        && state
            .config
            .origin_allowed(&url.origin().ascii_serialization());
    if allowed {
        Ok(url)
    } else {
        Err(refuse())
    }
}

/// Runs the handshake: answers the URL to send the browser back to, carrying the payload.
pub async fn run(
    state: &AppState,
    auth: &ClientAuth,
    ask: &Handshake,
    seen: Seen<'_>,
) -> Result<Url, ApiError> {
    let origin = ask.redirect.origin().ascii_serialization();
    // A token that does not verify, or was replaced, means no client here: signed out.
    let (cs, _) = clients::load_or_start_over(state, auth).await?;
    let now = state.now();
    let keys = state.keys();
    let mut signed_in = None;
    if let Some(cs) = &cs {
        if let Some(session) = cs.last_active_session_id(now).and_then(|id| cs.session(id)) {
            match minting::mint(state, session, Some(&origin), seen, &TokenKind::Session).await {
                Ok(jwt) => {
                    let grant = payload::seal_refresh(
                        keys.client_secret(now)?,
                        &RefreshGrant {
                            client_id: cs.client.id.clone(),
                            rotating_token: cs.client.rotating_token.clone(),
                            session_id: session.id.clone(),
                            exp: cs.client.expires_at / 1000,
                        },
                    )?;
                    signed_in = Some((jwt, cs.client.updated_at / 1000, grant));
                }
                // Signed out between the read and the mint.
                Err(e) if e.status == http::StatusCode::UNAUTHORIZED => {}
                Err(e) => return Err(e),
            }
        }
    }
    let cookies = AppCookies::for_target(state, &ask.redirect, ask.suffixed);
    let directives = match &signed_in {
        Some((jwt, uat, grant)) => {
            let mut d = cookies.signed_in(jwt, *uat);
            // Only the nonce form, opened once by the app's server, carries the grant.
            if ask.format == Format::Nonce {
                d.push(cookies.refresh(grant));
            }
            d
        }
        None => {
            let mut d = cookies.signed_out();
            d.push(cookies.refresh_cleared());
            d
        }
    };
    let (name, value) = match ask.format {
        Format::Token => (
            "__clerk_handshake",
            payload::sign_token(keys.signer(now)?, &directives, now)?,
        ),
        Format::Nonce => (
            "__clerk_handshake_nonce",
            payload::seal_nonce(keys.client_secret(now)?, &directives, now)?,
        ),
    };
    let mut back = ask.redirect.clone();
    // One payload, ours: drop any the URL already carries (a previous round's).
    let kept: Vec<(String, String)> = back
        .query_pairs()
        .filter(|(k, _)| !k.starts_with("__clerk_handshake"))
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    back.query_pairs_mut()
        .clear()
        .extend_pairs(kept)
        .append_pair(name, &value);
    Ok(back)
}

/// Opens a handshake nonce for the app's server (`GET /v1/clients/handshake_payload`),
/// once: the nonce is recorded spent in the same step, so a replay of the URL that carried
/// it (history, logs, analytics) gets nothing. Tampered, expired, another instance's or
/// spent: all answer 404. A store call retried after a lost answer recognises its own
/// record (`Write::UseOnce`), so the app's server still gets its payload.
pub async fn open_payload(state: &AppState, nonce: &str) -> Result<Vec<String>, ApiError> {
    let now = state.now();
    let not_found = || ApiError::not_found("Handshake payload");
    let opened = payload::open_nonce(&state.keys(), nonce, now).ok_or_else(not_found)?;
    let spend = Write::use_once(payload::nonce_use_key(nonce), now, opened.expires_at);
    match state.store.commit(vec![spend]).await {
        Ok(()) => Ok(opened.directives),
        Err(StoreError::Conflict) => Err(not_found()),
        Err(e) => Err(e.into()),
    }
}

/// What `POST /v1/sessions/{session_id}/refresh` is given (Backend API, from the app's
/// server, which read the expired `__session` and the `__refresh` cookie).
pub struct Refresh<'a> {
    pub session_id: &'a str,
    pub expired_token: &'a str,
    pub refresh_token: &'a str,
    pub request_origin: &'a str,
    /// `format=cookie`: answer cookie directives instead of the token alone.
    pub cookies: bool,
    pub suffixed: bool,
}

/// A refreshed session token, as asked for.
pub enum Refreshed {
    Token(String),
    Cookies(Vec<String>),
}

/// Mints a new session token from an expired one and its refresh grant. Every check that
/// fails answers 401 `authentication_invalid`, which sends Clerk's SDKs back to the
/// handshake: the token must be this instance's and name the session; the grant must be
/// this instance's, for that session, and its client's rotating value still current (a
/// sign-in on the client ends it); the session must still be signed in; the origin must be
/// allowed (it becomes the token's `azp`).
pub async fn refresh(state: &AppState, ask: &Refresh<'_>) -> Result<Refreshed, ApiError> {
    let invalid = |why: &str| ApiError::authentication_invalid(why);
    let target = redirect_target(state, ask.request_origin)
        .map_err(|_| invalid("request_origin is not an allowed origin"))?;
    let origin = target.origin().ascii_serialization();
    let now = state.now();
    let grant = {
        let keys = state.keys();
        let claims = expired_token_claims(&keys, ask.expired_token)
            .ok_or_else(|| invalid("expired_token is not a session token of this instance"))?;
        if claims["sid"] != ask.session_id
            || claims["iss"] != state.config.frontend_api_url.as_str()
        {
            return Err(invalid("expired_token is not a token of this session"));
        }
        payload::open_refresh(&keys, ask.refresh_token, now)
            .filter(|g| g.session_id == ask.session_id)
            .ok_or_else(|| invalid("refresh_token is not valid for this session"))?
    };
    let cs = state
        .store
        .get_client(&grant.client_id)
        .await?
        .ok_or_else(|| invalid("the client is gone"))?;
    if aws_lc_rs::constant_time::verify_slices_are_equal(
        cs.client.rotating_token.as_bytes(),
        grant.rotating_token.as_bytes(),
    )
    .is_err()
    {
        return Err(invalid("refresh_token was replaced by a sign-in"));
    }
    let session = cs
        .session(ask.session_id)
        .ok_or_else(|| invalid("the session is not the client's"))?;
    // The app's server calls, not the device: no place to record.
    let jwt = match minting::mint(state, session, Some(&origin), None, &TokenKind::Session).await {
        Ok(jwt) => jwt,
        Err(e) if e.status.is_client_error() => {
            return Err(invalid("the session is not signed in"))
        }
        Err(e) => return Err(e),
    };
    Ok(if ask.cookies {
        let cookies = AppCookies::for_target(state, &target, ask.suffixed);
        Refreshed::Cookies(cookies.signed_in(&jwt, cs.client.updated_at / 1000))
    } else {
        Refreshed::Token(jwt)
    })
}

/// The claims of a session token signed by one of this instance's keys, expired or not.
fn expired_token_claims(keys: &crate::keyring::Keyring, jwt: &str) -> Option<serde_json::Value> {
    use base64::Engine;
    let header = jwt.split('.').next()?;
    let header: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(header)
            .ok()?,
    )
    .ok()?;
    keys.signing_key(header["kid"].as_str()?)?
        .verified_claims_any_time(jwt)
}

/// The cookies an app's server sets on its own origin, as clerk-js sets them there:
/// `__session` host-only, `__client_uat` on the registrable domain, both readable by
/// scripts (clerk-js rewrites them), `Secure` on an https app.
struct AppCookies {
    attributes: String,
    domain: Option<String>,
    suffix: Option<String>,
    /// `__refresh_<suffix>`: @clerk/backend reads only the suffixed name.
    refresh_name: String,
    max_age: u64,
}

impl AppCookies {
    fn for_target(state: &AppState, target: &Url, suffixed: bool) -> Self {
        let secure = if target.scheme() == "https" {
            "; Secure"
        } else {
            ""
        };
        Self {
            attributes: format!("; Path=/; SameSite=Lax{secure}"),
            domain: target
                .host_str()
                .and_then(crate::config::registrable_domain),
            suffix: suffixed.then(|| state.config.cookie_suffix().to_string()),
            refresh_name: format!("__refresh_{}", state.config.cookie_suffix()),
            max_age: state.config.client_token_lifetime.as_secs(),
        }
    }

    /// The cookie under its plain name, and under its suffixed name when the app's SDK
    /// reads those (Clerk's handshake sets both).
    fn both(&self, name: &str, rest: &str) -> Vec<String> {
        let mut out = vec![format!("{name}={rest}")];
        if let Some(suffix) = &self.suffix {
            out.push(format!("{name}_{suffix}={rest}"));
        }
        out
    }

    fn client_uat(&self, value: i64) -> Vec<String> {
        let domain = self
            .domain
            .as_ref()
            .map(|d| format!("; Domain={d}"))
            .unwrap_or_default();
        self.both(
            "__client_uat",
            &format!(
                "{value}{}{domain}; Max-Age={}",
                self.attributes, self.max_age
            ),
        )
    }

    fn signed_in(&self, jwt: &str, client_uat: i64) -> Vec<String> {
        let mut out = self.both(
            "__session",
            &format!("{jwt}{}; Max-Age={}", self.attributes, self.max_age),
        );
        out.extend(self.client_uat(client_uat));
        out
    }

    /// The refresh grant: only the app's server reads it (HttpOnly), and only sends it to
    /// the Backend API.
    fn refresh(&self, grant: &str) -> String {
        format!(
            "{}={grant}{}; Max-Age={}; HttpOnly",
            self.refresh_name, self.attributes, self.max_age
        )
    }

    fn refresh_cleared(&self) -> String {
        format!(
            "{}={}; Max-Age=0; HttpOnly",
            self.refresh_name, self.attributes
        )
    }

    fn signed_out(&self) -> Vec<String> {
        let mut out = self.both("__session", &format!("{}; Max-Age=0", self.attributes));
        out.extend(self.client_uat(0));
        out
    }
}
