//! `GET /v1/client/handshake`: the browser arrives on a top-level navigation from a
//! server-rendered app and leaves with a 307 back to it (`app::handshake`).

use http::{header, HeaderValue, StatusCode};

use crate::app::handshake::{self, Format, Handshake};
use crate::error::ApiError;
use crate::http::auth::ClientAuth;
use crate::http::response::Response;
use crate::http::{Request, RequestExt};
use crate::state::AppState;

pub async fn get(state: &AppState, req: Request, auth: &ClientAuth) -> Result<Response, ApiError> {
    let ask = parse(state, &req)?;
    let seen = || crate::http::activity::of_request(state, &req);
    let back = handshake::run(state, auth, &ask, Some(&seen)).await?;
    let mut resp = http::Response::new(String::new());
    *resp.status_mut() = StatusCode::TEMPORARY_REDIRECT;
    let location = HeaderValue::from_str(back.as_str()).map_err(|_| ApiError::internal())?;
    resp.headers_mut().insert(header::LOCATION, location);
    // The payload is for this browser once: never from a cache.
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

fn parse(state: &AppState, req: &Request) -> Result<Handshake, ApiError> {
    let redirect = req
        .query_param("redirect_url")
        .filter(|u| !u.is_empty())
        .ok_or_else(|| ApiError::param_missing("redirect_url"))?;
    let redirect = handshake::redirect_target(state, &redirect)?;
    let format = match req.query_param("format").as_deref() {
        // The nonce form unless the token form is asked for: it puts nothing readable in
        // the URL (@clerk/backend asks for it by name anyway).
        None | Some("nonce") => Format::Nonce,
        Some("token") => Format::Token,
        Some(_) => {
            return Err(ApiError::param_invalid(
                "format",
                "format must be token or nonce.",
            ))
        }
    };
    // An organization that cannot be made active leaves the session's as it is (Clerk's
    // rule): with no organizations here, every value, empty (the personal account) or
    // not, is that case.
    Ok(Handshake {
        redirect,
        format,
        suffixed: req.query_param("suffixed_cookies").as_deref() == Some("true"),
    })
}
