//! The one route table. The local server mounts all of it; each Lambda function serves
//! the rows with its name; a test holds it equal to `template.yaml`.

use http::{header, HeaderValue, Method};
use tracing::Instrument;

use crate::api::{bapi, fapi};
use crate::error::ApiError;
use crate::http::auth::{self, ClientAuth};
use crate::http::request::MAX_BODY_BYTES;
use crate::http::response::{self, Response};
use crate::http::{cors, PathParams, Request, RequestExt};
use crate::limits::HEADERS_MAX_BYTES;
use crate::state::AppState;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    CreateClient,
    GetClient,
    RemoveClientSessions,
    CreateDevBrowser,
    CreateSignIn,
    GetEnvironment,
    FrontendJwks,
    GetSession,
    TouchSession,
    EndSession,
    RemoveSession,
    CreateSessionToken,
    CreateSessionTokenFromTemplate,
    CreateUser,
    GetUser,
    UpdateUser,
    CreateSignInToken,
    ListSessions,
    GetBackendSession,
    RevokeSession,
    CreateBackendSessionToken,
    BackendJwks,
    CreateBackendTemplateToken,
    CreateJwtTemplate,
    ListJwtTemplates,
    GetJwtTemplate,
    UpdateJwtTemplate,
    DeleteJwtTemplate,
    GetInstanceKeys,
    RotateInstanceKeys,
}

impl Endpoint {
    /// Frontend API endpoints that act for the caller's client: a client token they
    /// cannot read (a dev-browser token on a production instance, a repeated
    /// `Authorization`) fails them. The public documents and `POST /v1/dev_browser` never
    /// look at one.
    pub fn acts_for_client(self) -> bool {
        self.is_frontend()
            && !matches!(
                self,
                Self::GetEnvironment | Self::FrontendJwks | Self::CreateDevBrowser
            )
    }

    /// Frontend API endpoints are called by browsers and apps; the rest by servers.
    pub fn is_frontend(self) -> bool {
        !matches!(
            self,
            Self::CreateUser
                | Self::GetUser
                | Self::UpdateUser
                | Self::CreateSignInToken
                | Self::ListSessions
                | Self::GetBackendSession
                | Self::RevokeSession
                | Self::CreateBackendSessionToken
                | Self::BackendJwks
                | Self::CreateBackendTemplateToken
                | Self::CreateJwtTemplate
                | Self::ListJwtTemplates
                | Self::GetJwtTemplate
                | Self::UpdateJwtTemplate
                | Self::DeleteJwtTemplate
                | Self::GetInstanceKeys
                | Self::RotateInstanceKeys
        )
    }
}

#[derive(Clone, Debug)]
pub struct Route {
    pub method: Method,
    /// `{name}` segments are path parameters.
    pub path: &'static str,
    pub endpoint: Endpoint,
    /// The Lambda function (binary) that serves this route.
    pub function: &'static str,
}

const fn route(
    method: Method,
    path: &'static str,
    endpoint: Endpoint,
    function: &'static str,
) -> Route {
    Route {
        method,
        path,
        endpoint,
        function,
    }
}

pub const ROUTES: &[Route] = &[
    route(
        Method::POST,
        "/v1/client",
        Endpoint::CreateClient,
        "fapi-client",
    ),
    route(
        Method::GET,
        "/v1/client",
        Endpoint::GetClient,
        "fapi-client",
    ),
    route(
        Method::DELETE,
        "/v1/client/sessions",
        Endpoint::RemoveClientSessions,
        "fapi-client",
    ),
    route(
        Method::POST,
        "/v1/dev_browser",
        Endpoint::CreateDevBrowser,
        "fapi-dev-browser",
    ),
    route(
        Method::POST,
        "/v1/client/sign_ins",
        Endpoint::CreateSignIn,
        "fapi-sign-ins",
    ),
    route(
        Method::GET,
        "/v1/environment",
        Endpoint::GetEnvironment,
        "fapi-environment",
    ),
    route(
        Method::GET,
        "/.well-known/jwks.json",
        Endpoint::FrontendJwks,
        "fapi-jwks",
    ),
    route(
        Method::GET,
        "/v1/client/sessions/{session_id}",
        Endpoint::GetSession,
        "fapi-session-get",
    ),
    route(
        Method::POST,
        "/v1/client/sessions/{session_id}/touch",
        Endpoint::TouchSession,
        "fapi-session-touch",
    ),
    route(
        Method::POST,
        "/v1/client/sessions/{session_id}/end",
        Endpoint::EndSession,
        "fapi-session-end",
    ),
    route(
        Method::POST,
        "/v1/client/sessions/{session_id}/remove",
        Endpoint::RemoveSession,
        "fapi-session-remove",
    ),
    route(
        Method::POST,
        "/v1/client/sessions/{session_id}/tokens",
        Endpoint::CreateSessionToken,
        "fapi-session-tokens",
    ),
    route(
        Method::POST,
        "/v1/client/sessions/{session_id}/tokens/{template_name}",
        Endpoint::CreateSessionTokenFromTemplate,
        "fapi-session-template-tokens",
    ),
    route(Method::POST, "/v1/users", Endpoint::CreateUser, "bapi"),
    route(
        Method::GET,
        "/v1/users/{user_id}",
        Endpoint::GetUser,
        "bapi",
    ),
    route(
        Method::PATCH,
        "/v1/users/{user_id}",
        Endpoint::UpdateUser,
        "bapi",
    ),
    route(
        Method::POST,
        "/v1/sign_in_tokens",
        Endpoint::CreateSignInToken,
        "bapi",
    ),
    route(Method::GET, "/v1/sessions", Endpoint::ListSessions, "bapi"),
    route(
        Method::GET,
        "/v1/sessions/{session_id}",
        Endpoint::GetBackendSession,
        "bapi",
    ),
    route(
        Method::POST,
        "/v1/sessions/{session_id}/revoke",
        Endpoint::RevokeSession,
        "bapi",
    ),
    route(
        Method::POST,
        "/v1/sessions/{session_id}/tokens",
        Endpoint::CreateBackendSessionToken,
        "bapi",
    ),
    route(
        Method::POST,
        "/v1/sessions/{session_id}/tokens/{template_name}",
        Endpoint::CreateBackendTemplateToken,
        "bapi",
    ),
    route(
        Method::POST,
        "/v1/jwt_templates",
        Endpoint::CreateJwtTemplate,
        "bapi",
    ),
    route(
        Method::GET,
        "/v1/jwt_templates",
        Endpoint::ListJwtTemplates,
        "bapi",
    ),
    route(
        Method::GET,
        "/v1/jwt_templates/{template_id}",
        Endpoint::GetJwtTemplate,
        "bapi",
    ),
    route(
        Method::PATCH,
        "/v1/jwt_templates/{template_id}",
        Endpoint::UpdateJwtTemplate,
        "bapi",
    ),
    route(
        Method::DELETE,
        "/v1/jwt_templates/{template_id}",
        Endpoint::DeleteJwtTemplate,
        "bapi",
    ),
    route(Method::GET, "/v1/jwks", Endpoint::BackendJwks, "bapi"),
    // Extensions (not Clerk's API): the keyring's lifecycle, and rotating it.
    route(
        Method::GET,
        "/v1/instance/keys",
        Endpoint::GetInstanceKeys,
        "bapi",
    ),
    route(
        Method::POST,
        "/v1/instance/keys/rotate",
        Endpoint::RotateInstanceKeys,
        "bapi",
    ),
];

/// Every function name in the table, once each.
pub fn functions() -> Vec<&'static str> {
    let mut names: Vec<&'static str> = ROUTES.iter().map(|r| r.function).collect();
    names.sort_unstable();
    names.dedup();
    names
}

/// The (method, path, function) triples API Gateway must route. clerk-js tunnels DELETE
/// through POST with `_method=DELETE`, so a DELETE route also needs its POST twin.
pub fn gateway_routes() -> Vec<(String, &'static str, &'static str)> {
    let mut out = Vec::new();
    for r in ROUTES {
        out.push((r.method.to_string(), r.path, r.function));
        // Only browsers tunnel; servers send real DELETEs.
        if r.method == Method::DELETE && r.endpoint.is_frontend() {
            out.push((Method::POST.to_string(), r.path, r.function));
        }
    }
    out.sort();
    out
}

/// Matches `path` against a pattern, collecting `{name}` segments. Parameters are ids:
/// non-empty, at most 128 bytes, no characters outside `[A-Za-z0-9_.-]`.
fn match_path(pattern: &'static str, path: &str) -> Option<PathParams> {
    // Bytes, not chars: every request is matched against the whole table, and '/' is ASCII.
    let mut params = Vec::new();
    let mut pattern_segments = pattern.as_bytes().split(|b| *b == b'/');
    let mut path_segments = path.as_bytes().split(|b| *b == b'/');
    loop {
        match (pattern_segments.next(), path_segments.next()) {
            (None, None) => return Some(PathParams(params)),
            (Some(p), Some(s)) => {
                if let Some(name) = p.strip_prefix(b"{").and_then(|p| p.strip_suffix(b"}")) {
                    let valid = !s.is_empty()
                        && s.len() <= 128
                        && s.iter()
                            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
                    if !valid {
                        return None;
                    }
                    // Both are ASCII (checked above; `name` is from the table).
                    let name = std::str::from_utf8(name).ok()?;
                    let value = std::str::from_utf8(s).ok()?;
                    params.push((name, value.to_string()));
                } else if p != s {
                    return None;
                }
            }
            _ => return None,
        }
    }
}

/// The method a request means: clerk-js sends PATCH and DELETE as POST with `_method`.
fn effective_method(req: &Request) -> Method {
    if req.method() == Method::POST {
        if let Some(m) = req.query_param("_method") {
            match m.to_ascii_uppercase().as_str() {
                "DELETE" => return Method::DELETE,
                "PATCH" => return Method::PATCH,
                _ => {}
            }
        }
    }
    req.method().clone()
}

/// Routes a request to its handler, among the routes of `function` (all when `None`),
/// and turns every error into a ClerkErrors answer.
pub async fn dispatch(state: &AppState, req: Request, function: Option<&str>) -> Response {
    let method = effective_method(&req);
    let path = req.uri().path().to_string();
    let request_id = req.request_id().to_string();
    let span =
        tracing::info_span!("request", request_id = %request_id, method = %method, path = %path);
    async move {
        if !state.origin_verified(&req) {
            let resp = response::error(&ApiError::origin_unverified(), &request_id);
            tracing::info!(status = resp.status().as_u16(), "answered");
            return resp;
        }
        let routes = || {
            ROUTES
                .iter()
                .filter(|r| function.is_none_or(|f| r.function == f))
        };
        let found = routes()
            .filter(|r| r.method == method)
            .find_map(|r| Some((r, match_path(r.path, &path)?)));
        // Only a request that matched no route pays for the methods its path allows.
        let allowed: Vec<Method> = match found {
            Some(_) => Vec::new(),
            None => routes()
                .filter(|r| match_path(r.path, &path).is_some())
                .map(|r| r.method.clone())
                .collect(),
        };
        let path_matched = found.is_some() || !allowed.is_empty();
        let result = match found {
            _ if method == Method::OPTIONS && path_matched => Ok(cors::preflight(state, &req)),
            Some((route, params)) => {
                handle(state, route.endpoint, req, params, method.clone()).await
            }
            None if path_matched => {
                let allow = allowed
                    .iter()
                    .map(Method::as_str)
                    .collect::<Vec<_>>()
                    .join(", ");
                let mut resp = response::error(&ApiError::method_not_allowed(), &request_id);
                if let Ok(v) = HeaderValue::from_str(&allow) {
                    resp.headers_mut().insert(header::ALLOW, v);
                }
                Ok(resp)
            }
            None => Err(ApiError::route_not_found()),
        };
        let resp = result.unwrap_or_else(|err| response::error(&err, &request_id));
        let status = resp.status();
        if status.is_server_error() {
            tracing::error!(status = status.as_u16(), "answered");
        } else {
            tracing::info!(status = status.as_u16(), "answered");
        }
        resp
    }
    .instrument(span)
    .await
}

async fn handle(
    state: &AppState,
    endpoint: Endpoint,
    mut req: Request,
    params: PathParams,
    method: Method,
) -> Result<Response, ApiError> {
    if req.body().len() > MAX_BODY_BYTES {
        return Err(ApiError::body_too_large(MAX_BODY_BYTES));
    }
    let header_bytes: usize = req
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    if header_bytes > HEADERS_MAX_BYTES {
        return Err(ApiError::headers_too_large(HEADERS_MAX_BYTES));
    }
    req.extensions_mut().insert(params);
    state.refresh_keys(false).await;
    if !endpoint.is_frontend() {
        return call(state, endpoint, req, &ClientAuth::anonymous()).await;
    }
    let origin = req.header_str("origin").map(str::to_string);
    let request_id = req.request_id().to_string();
    let (result, auth) = match cors::check_origin(state, &req, &method, auth::is_native(&req)) {
        Err(e) => (Err(e), None),
        // The client token is verified once, here: the handler acts on the verdict and
        // the answer is settled with it.
        Ok(()) => match auth::authenticate(state, &req).await {
            Ok(auth) => (call(state, endpoint, req, &auth).await, Some(auth)),
            Err(e) if endpoint.acts_for_client() => (Err(e), None),
            // A token these endpoints never look at cannot fail them.
            Err(_) => {
                let anonymous = ClientAuth::anonymous();
                (call(state, endpoint, req, &anonymous).await, None)
            }
        },
    };
    let mut resp = result.unwrap_or_else(|err| response::error(&err, &request_id));
    if let Some(auth) = &auth {
        auth::settle_client_token(state, auth, &mut resp);
    }
    cors::decorate(state, origin.as_deref(), &mut resp);
    Ok(resp)
}

async fn call(
    state: &AppState,
    endpoint: Endpoint,
    req: Request,
    auth: &ClientAuth,
) -> Result<Response, ApiError> {
    match endpoint {
        Endpoint::CreateClient => fapi::client::post(state, auth).await,
        Endpoint::GetClient => fapi::client::get(state, req, auth).await,
        Endpoint::RemoveClientSessions => fapi::client::remove_sessions(state, req, auth).await,
        Endpoint::CreateDevBrowser => fapi::client::dev_browser(state).await,
        Endpoint::CreateSignIn => fapi::sign_ins::create(state, req, auth).await,
        Endpoint::GetEnvironment => fapi::environment::get(state).await,
        Endpoint::FrontendJwks => fapi::jwks(state).await,
        Endpoint::GetSession => fapi::sessions::get(state, req, auth).await,
        Endpoint::TouchSession => fapi::sessions::touch(state, req, auth).await,
        Endpoint::EndSession => fapi::sessions::end(state, req, auth).await,
        Endpoint::RemoveSession => fapi::sessions::remove(state, req, auth).await,
        Endpoint::CreateSessionToken => fapi::sessions::tokens(state, req, auth).await,
        Endpoint::CreateSessionTokenFromTemplate => {
            fapi::sessions::template_token(state, req, auth).await
        }
        Endpoint::CreateUser => bapi::users::create(state, req).await,
        Endpoint::GetUser => bapi::users::get(state, req).await,
        Endpoint::UpdateUser => bapi::users::update(state, req).await,
        Endpoint::CreateSignInToken => bapi::sign_in_tokens::create(state, req).await,
        Endpoint::ListSessions => bapi::sessions::list(state, req).await,
        Endpoint::GetBackendSession => bapi::sessions::get(state, req).await,
        Endpoint::RevokeSession => bapi::sessions::revoke(state, req).await,
        Endpoint::CreateBackendSessionToken => bapi::sessions::tokens(state, req).await,
        Endpoint::BackendJwks => bapi::jwks(state, req).await,
        Endpoint::CreateBackendTemplateToken => bapi::sessions::template_token(state, req).await,
        Endpoint::CreateJwtTemplate => bapi::jwt_templates::create(state, req).await,
        Endpoint::ListJwtTemplates => bapi::jwt_templates::list(state, req).await,
        Endpoint::GetJwtTemplate => bapi::jwt_templates::get(state, req).await,
        Endpoint::UpdateJwtTemplate => bapi::jwt_templates::update(state, req).await,
        Endpoint::DeleteJwtTemplate => bapi::jwt_templates::delete(state, req).await,
        Endpoint::GetInstanceKeys => bapi::keys::get(state, req).await,
        Endpoint::RotateInstanceKeys => bapi::keys::rotate(state, req).await,
    }
}
