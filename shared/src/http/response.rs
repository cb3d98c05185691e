use http::{header, HeaderValue, StatusCode};
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

pub fn ok(body: &Value) -> Response {
    json(StatusCode::OK, body)
}

/// A pre-serialized JSON body (for documents built once at start-up).
pub fn ok_raw(body: String) -> Response {
    json_text(StatusCode::OK, body)
}

pub fn error(err: &ApiError, trace_id: &str) -> Response {
    let mut resp = json(err.status, &err.body(trace_id));
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
