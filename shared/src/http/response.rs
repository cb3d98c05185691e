use http::{header, HeaderValue, StatusCode};
use serde::Serialize;
use serde_json::Value;

use crate::error::ApiError;

/// What every handler answers: a plain `http` response with a JSON text body.
pub type Response = http::Response<String>;

pub fn json(status: StatusCode, body: &Value) -> Response {
    json_text(status, body.to_string())
}

fn json_text(status: StatusCode, body: String) -> Response {
    let mut resp = http::Response::new(body);
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// A 200 with `body` serialized straight into the response text. Our shapes always
/// serialize (string keys, finite numbers); should one ever fail, the request gets a 500
/// ClerkErrors body rather than a panic.
pub fn ok<T: Serialize + ?Sized>(body: &T) -> Result<Response, ApiError> {
    match serde_json::to_string(body) {
        Ok(text) => Ok(json_text(StatusCode::OK, text)),
        Err(e) => {
            tracing::error!(error = %e, "an answer did not serialize");
            Err(ApiError::internal())
        }
    }
}

/// A pre-serialized JSON body (for documents built once at start-up).
pub fn ok_raw(body: String) -> Response {
    json_text(StatusCode::OK, body)
}

/// The ClerkErrors code of an error answer, kept on the response for the metrics.
#[derive(Clone, Copy, Debug)]
pub struct ErrorCode(pub &'static str);

pub fn error(err: &ApiError, trace_id: &str) -> Response {
    let mut resp = json(err.status, &err.body(trace_id));
    resp.extensions_mut().insert(ErrorCode(err.code));
    if let Some(secs) = err.retry_after {
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    resp
}

/// Adds a `Set-Cookie` header. Values are ours (tokens, numbers): always valid header text.
pub fn set_cookie(resp: &mut Response, cookie: String) {
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
}

pub fn set_header(resp: &mut Response, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        resp.headers_mut().insert(name, v);
    }
}
