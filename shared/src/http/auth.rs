//! Client authentication, in Clerk's order of precedence: native (`_is_native=1` with an
//! `Authorization` header), dev browser (`__clerk_db_jwt` / `__dev_session` query
//! parameter), then the `__client` cookie. The token is verified before any store read,
//! and this module reads nothing from the store: what a verified token leads to is
//! `app::clients`. Handing tokens and `__client_uat` back is here too.

use std::sync::OnceLock;

use http::header::AUTHORIZATION;

use super::request::{Request, RequestExt};
use super::response::{self, Response};
use crate::clock::Millis;
use crate::domain::{Client, ClientState};
use crate::error::ApiError;
use crate::state::AppState;
use crate::tokens::{ClientTokenClaims, ClientTokenError};

/// How the caller carries its client token, and so how a new one is handed back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// Mobile and extension SDKs: the token travels in `Authorization`.
    Native,
    /// Development browsers: the token travels in the `__clerk_db_jwt` query parameter.
    DevBrowser,
    /// Production browsers: the `__client` cookie.
    Browser,
}

/// What the caller's client token says, verified once per request (by the route layer,
/// before the handler runs; the same verdict settles the answer afterwards).
#[derive(Debug)]
pub struct ClientAuth {
    pub transport: Transport,
    /// The presented tokens that verified, in the order presented (at most
    /// [`MAX_VERIFIED_TOKENS`]). Usually one; a browser may carry more `__client` cookies
    /// (a parent domain's, or ones tossed in by a sibling site), and the first whose
    /// client is current is the caller's (`app::clients`).
    pub verified: Vec<VerifiedToken>,
    /// Why the caller's tokens failed verification, when none verified (another
    /// instance's, a removed secret, expired, tampered). Endpoints that create clients
    /// start over; the others answer 401.
    pub rejected: Option<ClientTokenError>,
    /// Which of `verified` led to the caller's client, once the store was read.
    chosen: OnceLock<usize>,
}

/// One presented client token that verified.
#[derive(Debug)]
pub struct VerifiedToken {
    pub claims: ClientTokenClaims,
    /// Verified with a secret that no longer signs: the answer re-signs it.
    pub stale: bool,
}

impl ClientAuth {
    /// A caller whose token is not looked at (endpoints that act for no client).
    pub fn anonymous() -> Self {
        Self {
            transport: Transport::Browser,
            verified: Vec::new(),
            rejected: None,
            chosen: OnceLock::new(),
        }
    }

    /// Records that `verified[index]` led to the caller's client.
    pub fn choose(&self, index: usize) {
        let _ = self.chosen.set(index);
    }

    /// The token the caller is taken to hold: the one that led to its client, else the
    /// first that verified.
    pub fn token(&self) -> Option<&VerifiedToken> {
        self.verified.get(self.chosen.get().copied().unwrap_or(0))
    }
}

/// The client tokens a request carries, before any verification.
#[derive(Debug)]
pub struct Presented {
    pub transport: Transport,
    /// Candidates in order: one for native apps and dev browsers; every `__client` cookie
    /// for browsers (a parent domain's and the site's may both arrive).
    pub tokens: Vec<String>,
}

/// Whether the caller says it is a native app (`_is_native=1`).
pub fn is_native(req: &Request) -> bool {
    // Asked several times per request: read in place, without allocating the value.
    req.uri().query().is_some_and(|query| {
        form_urlencoded::parse(query.as_bytes())
            .find(|(k, _)| k == "_is_native")
            .is_some_and(|(_, v)| matches!(&*v, "1" | "true"))
    })
}

/// Finds the caller's client tokens. No verification, no store access.
pub fn presented(state: &AppState, req: &Request) -> Result<Presented, ApiError> {
    let dev_token = || {
        ["__clerk_db_jwt", "__dev_session"]
            .into_iter()
            .find_map(|name| req.query_param(name).filter(|t| !t.is_empty()))
    };
    Ok(if is_native(req) {
        let mut values = req.headers().get_all(AUTHORIZATION).iter();
        let first = values.next();
        if values.next().is_some() {
            return Err(ApiError::header_repeated("Authorization"));
        }
        let raw = first.and_then(|v| v.to_str().ok()).unwrap_or("").trim();
        let raw = match raw.get(..7) {
            Some(prefix) if prefix.eq_ignore_ascii_case("bearer ") => raw[7..].trim(),
            _ => raw,
        };
        Presented {
            transport: Transport::Native,
            tokens: Some(raw.to_string())
                .filter(|t| !t.is_empty())
                .into_iter()
                .collect(),
        }
    } else if let Some(token) = dev_token() {
        // Production never takes a client token from a URL, where it would leak.
        if !state.config.dev_browser_enabled() {
            return Err(ApiError::dev_browser_unauthenticated());
        }
        Presented {
            transport: Transport::DevBrowser,
            tokens: vec![token],
        }
    } else {
        Presented {
            transport: Transport::Browser,
            tokens: req
                .cookies("__client")
                .into_iter()
                .filter(|c| !c.is_empty())
                .take(MAX_CLIENT_COOKIES)
                .map(str::to_string)
                .collect(),
        }
    })
}

/// More `__client` cookies than this are not looked at: each costs a verification (an
/// HMAC). Well beyond what a browser sends (the site's and a parent domain's), and the
/// request-header limit bounds them anyway.
const MAX_CLIENT_COOKIES: usize = 16;

/// Tokens that verified beyond this many are not kept: each may cost a store read to find
/// the current one. Those that fail verification do not count, so junk cookies tossed in
/// first cannot push the caller's own token out.
pub const MAX_VERIFIED_TOKENS: usize = 4;

/// Verifies one token against the keyring. A token naming a secret this process does not
/// know yet makes it re-read the keyring (at most once a second) and try again.
async fn verify(
    state: &AppState,
    token: &str,
) -> Result<(ClientTokenClaims, bool), ClientTokenError> {
    match state.keys().verify_client_token(token, state.now()) {
        Err(ClientTokenError::UnknownSecret) => {
            state.refresh_keys(true).await;
            state.keys().verify_client_token(token, state.now())
        }
        other => other,
    }
}

/// Finds and verifies the caller's client tokens. No store access, except a keyring re-read
/// (at most once a second) when a token names a secret this process does not know yet.
pub async fn authenticate(state: &AppState, req: &Request) -> Result<ClientAuth, ApiError> {
    let presented = presented(state, req)?;
    let mut verified = Vec::new();
    let mut failure = None;
    for token in &presented.tokens {
        match verify(state, token).await {
            Ok((claims, stale)) => verified.push(VerifiedToken { claims, stale }),
            Err(e) => {
                failure.get_or_insert(e);
            }
        }
        if verified.len() == MAX_VERIFIED_TOKENS {
            break;
        }
    }
    let rejected = if verified.is_empty() { failure } else { None };
    // clerk-js answers this code by asking for a new dev browser.
    if rejected.is_some() && presented.transport == Transport::DevBrowser {
        return Err(ApiError::dev_browser_unauthenticated());
    }
    Ok(ClientAuth {
        transport: presented.transport,
        verified,
        rejected,
        chosen: OnceLock::new(),
    })
}

/// After any Frontend API answer: the caller's token, when it verified with a secret that
/// no longer signs, is handed back re-signed with the current one; `__client` cookies of
/// which none verified are cleared (never when one did). Nothing happens when the answer
/// already carries a new token.
pub fn settle_client_token(state: &AppState, auth: &ClientAuth, resp: &mut Response) {
    if carries_client_token(resp) {
        return;
    }
    match (auth.token(), &auth.rejected) {
        (Some(VerifiedToken { claims, stale }), _)
            if *stale && !resp.status().is_server_error() =>
        {
            let keys = state.keys();
            let token = keys
                .client_secret(state.now())
                .map_err(|_| ClientTokenError::Invalid)
                .and_then(|secret| secret.reissue(claims, state.now()));
            match token {
                Ok(token) => deliver(state, auth.transport, &token, claims.exp * 1000, resp),
                Err(e) => tracing::warn!(error = %e, "client token not re-signed"),
            }
        }
        (None, Some(_)) if auth.transport == Transport::Browser => {
            response::set_cookie(
                resp,
                format!(
                    "__client=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax{}",
                    secure(state)
                ),
            );
        }
        _ => {}
    }
}

fn carries_client_token(resp: &Response) -> bool {
    resp.headers().contains_key(AUTHORIZATION)
        || resp.headers().contains_key("clerk-db-jwt")
        || resp
            .headers()
            .get_all(http::header::SET_COOKIE)
            .iter()
            .any(|v| v.as_bytes().starts_with(b"__client="))
}

fn secure(state: &AppState) -> &'static str {
    if state.config.secure_cookies() {
        "; Secure"
    } else {
        ""
    }
}

/// Hands a new client token back the way the caller sends it.
pub fn deliver_client_token(
    state: &AppState,
    transport: Transport,
    client: &Client,
    resp: &mut Response,
) -> Result<(), ApiError> {
    let token = issue_client_token(state, client)?;
    deliver(state, transport, &token, client.expires_at, resp);
    Ok(())
}

/// A client token for `client`, signed with the current secret.
pub fn issue_client_token(state: &AppState, client: &Client) -> Result<String, ApiError> {
    let now = state.now();
    state
        .keys()
        .client_secret(now)?
        .issue(client, now)
        .map_err(|_| ApiError::internal())
}

fn deliver(
    state: &AppState,
    transport: Transport,
    token: &str,
    expires_at: Millis,
    resp: &mut Response,
) {
    match transport {
        Transport::Native => response::set_header(resp, "authorization", token),
        Transport::DevBrowser => response::set_header(resp, "clerk-db-jwt", token),
        Transport::Browser => {
            let max_age = ((expires_at - state.now()) / 1000).max(0);
            response::set_cookie(
                resp,
                format!(
                    "__client={token}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Lax{}",
                    secure(state)
                ),
            );
        }
    }
}

/// Keeps Clerk's `__client_uat` cookie current for browsers: the client's `updated_at` in
/// seconds while a session is signed in, else `0`. Clerk's backend SDKs read it on the
/// app's own servers, so, as Clerk's production Frontend API does, it is set on the
/// registrable domain of the Frontend API's host (`Config::cookie_domain`), under its
/// plain name and its suffixed one (`__client_uat_<suffix>`).
pub fn set_client_uat(
    state: &AppState,
    transport: Transport,
    client: Option<&ClientState>,
    resp: &mut Response,
) {
    if transport != Transport::Browser {
        return;
    }
    let now = state.now();
    let value = client
        .filter(|c| c.sessions.iter().any(|s| s.status_at(now).is_signed_in()))
        .map_or(0, |c| c.client.updated_at / 1000);
    let secure = secure(state);
    let max_age = state.config.client_token_lifetime.as_secs();
    let domain = state
        .config
        .cookie_domain()
        .map(|d| format!("; Domain={d}"))
        .unwrap_or_default();
    let suffix = state.config.cookie_suffix();
    for name in ["__client_uat".to_string(), format!("__client_uat_{suffix}")] {
        response::set_cookie(
            resp,
            format!("{name}={value}; Path=/{domain}; Max-Age={max_age}; SameSite=Lax{secure}"),
        );
    }
}
