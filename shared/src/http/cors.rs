//! CORS for browser callers of the Frontend API. clerk-js sends only simple requests
//! (GET/POST, form bodies) with credentials, so the answer must name the exact Origin and
//! allow credentials, and expose the headers clerk-js reads.

use http::{header, HeaderValue, Method, StatusCode};

use super::request::{Request, RequestExt};
use super::response::Response;
use crate::error::ApiError;
use crate::state::AppState;

const EXPOSED: &str = "authorization, clerk-db-jwt, retry-after, x-country";

/// The request's Origin: `Ok(None)` when absent, an error when sent more than once.
pub fn origin(req: &Request) -> Result<Option<&str>, ApiError> {
    let mut values = req.headers().get_all(header::ORIGIN).iter();
    let first = values.next();
    if values.next().is_some() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "multiple_origin_header_values_forbidden",
            "Multiple Origin values",
            "The Origin header must be sent once.",
        ));
    }
    Ok(first
        .and_then(|v| v.to_str().ok())
        .filter(|o| !o.is_empty() && *o != "null"))
}

/// A browser request that changes state must come from an allowed origin.
pub fn check_origin(
    state: &AppState,
    req: &Request,
    method: &Method,
    native: bool,
) -> Result<(), ApiError> {
    if native || method == Method::GET || method == Method::HEAD {
        return Ok(());
    }
    let sent = origin(req)?;
    // `Origin: null` (sandboxed frames, some redirects) is an opaque origin: never allowed.
    if req.header_str("origin").is_some_and(|o| o.trim() == "null") {
        return Err(ApiError::origin_invalid());
    }
    match sent {
        Some(o) if !state.config.origin_allowed(o) => Err(ApiError::origin_invalid()),
        _ => Ok(()),
    }
}

/// Adds the CORS answer headers when the request's origin is allowed.
pub fn decorate(state: &AppState, origin: Option<&str>, resp: &mut Response) {
    let Some(o) = origin else { return };
    resp.headers_mut()
        .append(header::VARY, HeaderValue::from_static("Origin"));
    if !state.config.origin_allowed(o) {
        return;
    }
    if let Ok(v) = HeaderValue::from_str(o) {
        let h = resp.headers_mut();
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
        h.insert(
            header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        );
        h.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static(EXPOSED),
        );
    }
}

/// The answer to a preflight `OPTIONS` request.
pub fn preflight(state: &AppState, req: &Request) -> Response {
    let mut resp = http::Response::new(String::new());
    *resp.status_mut() = StatusCode::NO_CONTENT;
    decorate(state, req.header_str("origin"), &mut resp);
    if resp
        .headers()
        .contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN)
    {
        let h = resp.headers_mut();
        h.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, POST, DELETE, OPTIONS"),
        );
        h.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("authorization, content-type"),
        );
        h.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("600"),
        );
    }
    resp
}
