//! Client authentication, in Clerk's order of precedence: native (`_is_native=1` with an
//! `Authorization` header), dev browser (`__clerk_db_jwt` / `__dev_session` query
//! parameter), then the `__client` cookie. The token is verified before any store read.

use http::header::AUTHORIZATION;

use super::request::{Request, RequestExt};
use super::response::{self, Response};
use crate::clock::Millis;
use crate::domain::{Client, ClientState};
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::Write;
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

#[derive(Debug)]
pub struct ClientAuth {
    pub transport: Transport,
    /// The verified token's claims; `None` when the caller sent no token.
    pub claims: Option<ClientTokenClaims>,
}

/// Whether the caller says it is a native app (`_is_native=1`).
pub fn is_native(req: &Request) -> bool {
    matches!(req.query_param("_is_native").as_deref(), Some("1" | "true"))
}

/// Finds and verifies the caller's client token. No store access.
pub fn authenticate(state: &AppState, req: &Request) -> Result<ClientAuth, ApiError> {
    let dev_token = || {
        ["__clerk_db_jwt", "__dev_session"]
            .into_iter()
            .find_map(|name| req.query_param(name).filter(|t| !t.is_empty()))
    };
    let (transport, token): (Transport, Option<String>) = if is_native(req) {
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
        (
            Transport::Native,
            Some(raw.to_string()).filter(|t| !t.is_empty()),
        )
    } else if let Some(token) = dev_token() {
        // Production never takes a client token from a URL, where it would leak.
        if !state.config.dev_browser_enabled() {
            return Err(ApiError::dev_browser_unauthenticated());
        }
        (Transport::DevBrowser, Some(token))
    } else {
        let cookie = req
            .cookie("__client")
            .filter(|c| !c.is_empty())
            .map(str::to_string);
        (Transport::Browser, cookie)
    };
    let claims = match token {
        None => None,
        Some(token) => Some(
            state
                .client_tokens
                .verify(&token, state.now())
                .map_err(|e| {
                    ApiError::authentication_invalid(match e {
                        ClientTokenError::Expired => "the client token has expired",
                        ClientTokenError::Invalid => "the client token is not valid",
                    })
                })?,
        ),
    };
    Ok(ClientAuth { transport, claims })
}

/// The caller's client with its sessions; `None` when it sent no token or the client is gone.
/// A token whose rotating value is no longer the client's (superseded by a sign-in) is refused.
pub async fn load_client(
    state: &AppState,
    auth: &ClientAuth,
) -> Result<Option<ClientState>, ApiError> {
    let Some(claims) = &auth.claims else {
        return Ok(None);
    };
    let Some(mut found) = state.store.get_client(&claims.id).await? else {
        return Ok(None);
    };
    let now = state.now();
    // A never-signed-in client past its anonymous lifetime is gone, as if deleted.
    if found.client.anonymous_expired(now) {
        return Ok(None);
    }
    let current = found.client.rotating_token.as_bytes();
    if aws_lc_rs::constant_time::verify_slices_are_equal(current, claims.rotating_token.as_bytes())
        .is_err()
    {
        return Err(ApiError::authentication_invalid(
            "the client token was replaced by a newer one",
        ));
    }
    slide_anonymous_lifetime(state, &mut found, now).await;
    Ok(Some(found))
}

/// Each use of a never-signed-in client pushes its end forward. To spare a write per
/// request, only once half of the anonymous lifetime has gone by. Best effort: a lost race
/// means another request has just written the client.
async fn slide_anonymous_lifetime(state: &AppState, cs: &mut ClientState, now: Millis) {
    let Some(until) = cs.client.anonymous_until else {
        return;
    };
    let lifetime = state.config.anonymous_client_lifetime.as_millis() as Millis;
    if until - now > lifetime / 2 {
        return;
    }
    let mut next = cs.client.clone();
    next.anonymous_until = Some(now + lifetime);
    next.updated_at = now;
    next.version += 1;
    match state.store.commit(vec![Write::client(next.clone())]).await {
        Ok(()) => cs.client = next,
        Err(err) => tracing::debug!(error = %err, "anonymous client lifetime not extended"),
    }
}

/// Like [`load_client`], for endpoints that need a client: none is 401 `signed_out`.
pub async fn require_client(state: &AppState, auth: &ClientAuth) -> Result<ClientState, ApiError> {
    load_client(state, auth)
        .await?
        .ok_or_else(ApiError::signed_out)
}

/// Hands a new client token back the way the caller sends it.
pub fn deliver_client_token(
    state: &AppState,
    transport: Transport,
    client: &Client,
    resp: &mut Response,
) -> Result<(), ApiError> {
    let token = state
        .client_tokens
        .issue(client, state.now())
        .map_err(|_| ApiError::internal())?;
    match transport {
        Transport::Native => response::set_header(resp, "authorization", &token),
        Transport::DevBrowser => response::set_header(resp, "clerk-db-jwt", &token),
        Transport::Browser => {
            let max_age = ((client.expires_at - state.now()) / 1000).max(0);
            let secure = if state.config.secure_cookies() {
                "; Secure"
            } else {
                ""
            };
            response::set_cookie(
                resp,
                format!(
                    "__client={token}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Lax{secure}"
                ),
            );
        }
    }
    Ok(())
}

/// Keeps Clerk's `__client_uat` cookie current for browsers: the client's `updated_at` in
/// seconds while a session is signed in, else `0`. Clerk's backend SDKs read it.
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
    let secure = if state.config.secure_cookies() {
        "; Secure"
    } else {
        ""
    };
    let max_age = state.config.client_token_lifetime.as_secs();
    response::set_cookie(
        resp,
        format!("__client_uat={value}; Path=/; Max-Age={max_age}; SameSite=Lax{secure}"),
    );
}
