use bytes::Bytes;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// What every handler takes: a plain `http` request with the whole body.
pub type Request = http::Request<Bytes>;

/// The largest request body accepted, in bytes.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Path parameters matched by the route table, stored in the request's extensions.
#[derive(Clone, Debug, Default)]
pub struct PathParams(pub Vec<(&'static str, String)>);

/// The transport's request id (Lambda's, or one the local server makes), for logs and
/// `clerk_trace_id`.
#[derive(Clone, Debug)]
pub struct RequestId(pub String);

/// The address the request came from, as the transport saw it: API Gateway's
/// `sourceIp`, or the local server's peer. Headers a caller writes (`X-Forwarded-For`)
/// never set it.
#[derive(Clone, Copy, Debug)]
pub struct ClientAddr(pub std::net::IpAddr);

pub trait RequestExt {
    fn path_param(&self, name: &str) -> &str;
    fn query_param(&self, name: &str) -> Option<String>;
    fn header_str(&self, name: &str) -> Option<&str>;
    fn cookie(&self, name: &str) -> Option<&str>;
    /// Every value of the cookie, in the order they arrived.
    fn cookies(&self, name: &str) -> Vec<&str>;
    fn request_id(&self) -> &str;
}

impl RequestExt for Request {
    fn path_param(&self, name: &str) -> &str {
        self.extensions()
            .get::<PathParams>()
            .and_then(|p| p.0.iter().find(|(n, _)| *n == name))
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    }

    fn query_param(&self, name: &str) -> Option<String> {
        // Read in place: several parameters are looked up per request, and this allocates
        // only the value found.
        form_urlencoded::parse(self.uri().query()?.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }

    fn header_str(&self, name: &str) -> Option<&str> {
        self.headers().get(name).and_then(|v| v.to_str().ok())
    }

    fn cookie(&self, name: &str) -> Option<&str> {
        self.cookies(name).into_iter().next()
    }

    fn cookies(&self, name: &str) -> Vec<&str> {
        self.headers()
            .get_all(http::header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .filter(|(k, _)| *k == name)
            .map(|(_, v)| v.trim_matches('"'))
            .collect()
    }

    fn request_id(&self) -> &str {
        self.extensions()
            .get::<RequestId>()
            .map(|r| r.0.as_str())
            .unwrap_or("")
    }
}

/// A parsed `application/x-www-form-urlencoded` body.
#[derive(Debug, Default)]
pub struct Form(Vec<(String, String)>);

impl Form {
    /// The field's value; `None` when absent. Empty values are kept (clerk-js sends null as "").
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The field's value when present and non-empty.
    pub fn non_empty(&self, name: &str) -> Option<&str> {
        self.get(name).filter(|v| !v.is_empty())
    }
}

fn content_type(req: &Request) -> Option<String> {
    req.header_str("content-type").map(|v| {
        v.split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase()
    })
}

/// Parses a Frontend API form body. An empty body is an empty form.
/// `limit` and `offset`, the way Clerk's list endpoints take them: `limit` from 1 to
/// `max_limit` (else `default_limit`), `offset` from 0 (an int64 there). Anything else is
/// 422 naming the parameter.
pub fn limit_offset(
    req: &Request,
    default_limit: usize,
    max_limit: usize,
) -> Result<(usize, usize), ApiError> {
    let number = |name: &str, default: usize, min: usize, max: usize| -> Result<usize, ApiError> {
        match req.query_param(name) {
            None => Ok(default),
            Some(raw) => raw
                .parse::<usize>()
                .ok()
                .filter(|v| (min..=max).contains(v))
                .ok_or_else(|| {
                    ApiError::param_invalid(
                        name,
                        format!("{name} must be a whole number from {min} to {max}."),
                    )
                }),
        }
    };
    Ok((
        number("limit", default_limit, 1, max_limit)?,
        number("offset", 0, 0, i64::MAX as usize)?,
    ))
}

pub fn form(req: &Request) -> Result<Form, ApiError> {
    if req.body().is_empty() {
        return Ok(Form::default());
    }
    match content_type(req).as_deref() {
        Some("application/x-www-form-urlencoded") => {}
        _ => {
            return Err(ApiError::unsupported_content_type(
                "application/x-www-form-urlencoded",
            ))
        }
    }
    serde_urlencoded::from_bytes::<Vec<(String, String)>>(req.body())
        .map(Form)
        .map_err(|_| ApiError::malformed("The request body is not valid form data."))
}

/// Parses a Backend API JSON body into `T`; an empty body is `{}`. Errors name the field.
pub fn json_body<T: DeserializeOwned>(req: &Request) -> Result<T, ApiError> {
    let bytes: &[u8] = if req.body().is_empty() {
        b"{}"
    } else {
        req.body()
    };
    if !req.body().is_empty() && content_type(req).as_deref() != Some("application/json") {
        return Err(ApiError::unsupported_content_type("application/json"));
    }
    let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|_| {
        ApiError::new(
            http::StatusCode::BAD_REQUEST,
            "request_body_invalid",
            "Request body invalid",
            "The request body is not valid JSON.",
        )
    })?;
    if !value.is_object() {
        return Err(ApiError::new(
            http::StatusCode::UNPROCESSABLE_ENTITY,
            "request_body_invalid",
            "Request body invalid",
            "The request body must be a JSON object.",
        ));
    }
    serde_path_to_error::deserialize::<_, T>(value).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner().to_string();
        let param = if path == "." {
            // "missing field `x`" names the field only in the message.
            inner.split('`').nth(1).unwrap_or("body").to_string()
        } else {
            path
        };
        if inner.starts_with("missing field") {
            return ApiError::param_missing(&param);
        }
        let long = inner
            .split(" at line")
            .next()
            .unwrap_or("invalid value")
            .to_string();
        ApiError::new(
            http::StatusCode::UNPROCESSABLE_ENTITY,
            "form_param_format_invalid",
            format!("{param} is invalid"),
            format!("{param}: {long}"),
        )
        .with_param(&param)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(ct: Option<&str>, body: &'static str) -> Request {
        let mut b = http::Request::builder()
            .method("POST")
            .uri("/x?a=1&_method=DELETE&a=2");
        if let Some(ct) = ct {
            b = b.header("content-type", ct);
        }
        b.header("cookie", "a=b; __client=tok; other=1")
            .body(Bytes::from_static(body.as_bytes()))
            .unwrap()
    }

    #[test]
    fn form_cookie_and_query() {
        let r = req(
            Some("application/x-www-form-urlencoded; charset=utf-8"),
            "intent=focus&active_organization_id=",
        );
        let f = form(&r).unwrap();
        assert_eq!(f.get("intent"), Some("focus"));
        assert_eq!(f.get("active_organization_id"), Some(""));
        assert_eq!(f.non_empty("active_organization_id"), None);
        assert_eq!(r.cookie("__client"), Some("tok"));
        assert_eq!(r.query_param("a").as_deref(), Some("1"));
        assert!(form(&req(None, "")).is_ok());
        assert_eq!(form(&req(Some("text/plain"), "x")).unwrap_err().status, 415);
    }

    #[derive(serde::Deserialize, Debug)]
    #[allow(dead_code)]
    struct Body {
        user_id: String,
        expires_in_seconds: Option<u64>,
    }

    #[test]
    fn json_errors_name_the_param() {
        let missing = json_body::<Body>(&req(Some("application/json"), "{}")).unwrap_err();
        assert_eq!(missing.meta["param_name"], "user_id");
        assert_eq!(missing.code, "form_param_missing");
        let wrong = json_body::<Body>(&req(
            Some("application/json"),
            r#"{"user_id":"u","expires_in_seconds":"x"}"#,
        ))
        .unwrap_err();
        assert_eq!(wrong.meta["param_name"], "expires_in_seconds");
        assert_eq!(wrong.status, 422);
        let bad = json_body::<Body>(&req(Some("application/json"), "{")).unwrap_err();
        assert_eq!(bad.status, 400);
        let ct = json_body::<Body>(&req(Some("text/plain"), "{}")).unwrap_err();
        assert_eq!(ct.status, 415);
    }
}
