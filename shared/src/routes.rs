//! The route table, one `Function` at a time: each Lambda function's binary serves its own
//! (chosen at compile time, so it links nothing else); the local server serves all of
//! them; a test holds them equal to `template.yaml`.

use http::{header, HeaderValue, Method};
use tracing::Instrument;

use crate::api::{bapi, fapi};
pub use crate::endpoint::Endpoint;
use crate::error::ApiError;
use crate::http::auth::{self, ClientAuth};
use crate::http::request::MAX_BODY_BYTES;
use crate::http::response::{self, ErrorCode, Response};
use crate::http::{cors, PathParams, Request, RequestExt};
use crate::limits::HEADERS_MAX_BYTES;
use crate::state::{AppState, BoxFuture, Start};

/// What a handler returns: boxed, so that every route's handler has one type.
pub type HandlerFuture<'a> = BoxFuture<'a, Result<Response, ApiError>>;

/// An endpoint's code, called with the client the request authenticated as (anonymous on
/// the Backend API and on the public documents).
pub type Handler = for<'a> fn(&'a AppState, Request, &'a ClientAuth) -> HandlerFuture<'a>;

#[derive(Clone)]
pub struct Route {
    pub method: Method,
    /// `{name}` segments are path parameters.
    pub path: &'static str,
    pub endpoint: Endpoint,
    pub handler: Handler,
}

impl std::fmt::Debug for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} ({:?})", self.method, self.path, self.endpoint)
    }
}

/// One Lambda function: its routes, and how it builds its state at start-up. A function's
/// binary names only its own `Function`, so the linker keeps only the handlers, the store
/// and the key code that function uses (docs/deploy.md, "What each function links").
pub struct Function {
    /// The binary's name, and its `CodeUri`/`Handler` in template.yaml.
    pub name: &'static str,
    pub routes: &'static [Route],
    pub start: Start,
}

const fn route(method: Method, path: &'static str, endpoint: Endpoint, handler: Handler) -> Route {
    Route {
        method,
        path,
        endpoint,
        handler,
    }
}

/// Wraps each handler in a function of the one `Handler` type.
macro_rules! handlers {
    ($($name:ident($state:ident, $req:pat_param, $auth:pat_param) => $call:expr;)*) => {
        $(
            fn $name<'a>($state: &'a AppState, $req: Request, $auth: &'a ClientAuth) -> HandlerFuture<'a> {
                Box::pin($call)
            }
        )*
    };
}

handlers! {
    create_client(s, _, auth) => fapi::client::post(s, auth);
    get_client(s, req, auth) => fapi::client::get(s, req, auth);
    remove_client_sessions(s, req, auth) => fapi::client::remove_sessions(s, req, auth);
    handshake(s, req, auth) => fapi::handshake::get(s, req, auth);
    list_my_sessions(s, req, auth) => fapi::me::all(s, req, auth);
    list_my_active_sessions(s, req, auth) => fapi::me::active(s, req, auth);
    revoke_my_session(s, req, auth) => fapi::me::revoke(s, req, auth);
    create_dev_browser(s, _, _) => fapi::client::dev_browser(s);
    create_sign_in(s, req, auth) => fapi::sign_ins::create(s, req, auth);
    get_environment(s, _, _) => fapi::environment::get(s);
    update_environment(s, _, _) => fapi::environment::update(s);
    frontend_jwks(s, _, _) => fapi::jwks(s);
    get_session(s, req, auth) => fapi::sessions::get(s, req, auth);
    touch_session(s, req, auth) => fapi::sessions::touch(s, req, auth);
    end_session(s, req, auth) => fapi::sessions::end(s, req, auth);
    remove_session(s, req, auth) => fapi::sessions::remove(s, req, auth);
    create_session_token(s, req, auth) => fapi::sessions::tokens(s, req, auth);
    create_session_token_from_template(s, req, auth) => fapi::sessions::template_token(s, req, auth);
    create_user(s, req, _) => bapi::users::create(s, req);
    get_user(s, req, _) => bapi::users::get(s, req);
    update_user(s, req, _) => bapi::users::update(s, req);
    delete_user(s, req, _) => bapi::users::delete(s, req);
    ban_user(s, req, _) => bapi::users::ban(s, req);
    unban_user(s, req, _) => bapi::users::unban(s, req);
    create_sign_in_token(s, req, _) => bapi::sign_in_tokens::create(s, req);
    get_handshake_payload(s, req, _) => bapi::clients::handshake_payload(s, req);
    list_sessions(s, req, _) => bapi::sessions::list(s, req);
    get_backend_session(s, req, _) => bapi::sessions::get(s, req);
    revoke_session(s, req, _) => bapi::sessions::revoke(s, req);
    refresh_session(s, req, _) => bapi::sessions::refresh(s, req);
    create_backend_session_token(s, req, _) => bapi::sessions::tokens(s, req);
    backend_jwks(s, req, _) => bapi::jwks(s, req);
    create_backend_template_token(s, req, _) => bapi::sessions::template_token(s, req);
    create_jwt_template(s, req, _) => bapi::jwt_templates::create(s, req);
    list_jwt_templates(s, req, _) => bapi::jwt_templates::list(s, req);
    get_jwt_template(s, req, _) => bapi::jwt_templates::get(s, req);
    update_jwt_template(s, req, _) => bapi::jwt_templates::update(s, req);
    delete_jwt_template(s, req, _) => bapi::jwt_templates::delete(s, req);
    get_instance_keys(s, req, _) => bapi::keys::get(s, req);
    rotate_instance_keys(s, req, _) => bapi::keys::rotate(s, req);
    list_webhook_endpoints(s, req, _) => bapi::webhooks::list(s, req);
    create_webhook_endpoint(s, req, _) => bapi::webhooks::create(s, req);
    delete_webhook_endpoint(s, req, _) => bapi::webhooks::delete(s, req);
    rotate_webhook_secret(s, req, _) => bapi::webhooks::rotate_secret(s, req);
}

/// Signs and verifies: the configured store, private keys unsealed as configured.
const SIGNS: Start = AppState::start_with_private_keys;

pub static FAPI_CLIENT: Function = Function {
    name: "fapi-client",
    start: SIGNS,
    routes: &[
        route(
            Method::POST,
            "/v1/client",
            Endpoint::CreateClient,
            create_client,
        ),
        route(Method::GET, "/v1/client", Endpoint::GetClient, get_client),
        route(
            Method::DELETE,
            "/v1/client/sessions",
            Endpoint::RemoveClientSessions,
            remove_client_sessions,
        ),
        route(
            Method::GET,
            "/v1/client/handshake",
            Endpoint::Handshake,
            handshake,
        ),
        route(
            Method::GET,
            "/v1/me/sessions",
            Endpoint::ListMySessions,
            list_my_sessions,
        ),
        route(
            Method::GET,
            "/v1/me/sessions/active",
            Endpoint::ListMyActiveSessions,
            list_my_active_sessions,
        ),
        route(
            Method::POST,
            "/v1/me/sessions/{session_id}/revoke",
            Endpoint::RevokeMySession,
            revoke_my_session,
        ),
    ],
};

pub static FAPI_DEV_BROWSER: Function = Function {
    name: "fapi-dev-browser",
    start: SIGNS,
    routes: &[route(
        Method::POST,
        "/v1/dev_browser",
        Endpoint::CreateDevBrowser,
        create_dev_browser,
    )],
};

pub static FAPI_SIGN_INS: Function = Function {
    name: "fapi-sign-ins",
    start: SIGNS,
    routes: &[route(
        Method::POST,
        "/v1/client/sign_ins",
        Endpoint::CreateSignIn,
        create_sign_in,
    )],
};

/// Built from configuration alone: no store, no keys.
pub static FAPI_ENVIRONMENT: Function = Function {
    name: "fapi-environment",
    start: AppState::start_without_store,
    routes: &[
        route(
            Method::GET,
            "/v1/environment",
            Endpoint::GetEnvironment,
            get_environment,
        ),
        route(
            Method::PATCH,
            "/v1/environment",
            Endpoint::UpdateEnvironment,
            update_environment,
        ),
    ],
};

/// Publishes public keys only: never opens private material.
pub static FAPI_JWKS: Function = Function {
    name: "fapi-jwks",
    start: AppState::start_with_public_keys,
    routes: &[route(
        Method::GET,
        "/.well-known/jwks.json",
        Endpoint::FrontendJwks,
        frontend_jwks,
    )],
};

pub static FAPI_SESSION_GET: Function = Function {
    name: "fapi-session-get",
    start: SIGNS,
    routes: &[route(
        Method::GET,
        "/v1/client/sessions/{session_id}",
        Endpoint::GetSession,
        get_session,
    )],
};

pub static FAPI_SESSION_TOUCH: Function = Function {
    name: "fapi-session-touch",
    start: SIGNS,
    routes: &[route(
        Method::POST,
        "/v1/client/sessions/{session_id}/touch",
        Endpoint::TouchSession,
        touch_session,
    )],
};

pub static FAPI_SESSION_END: Function = Function {
    name: "fapi-session-end",
    start: SIGNS,
    routes: &[route(
        Method::POST,
        "/v1/client/sessions/{session_id}/end",
        Endpoint::EndSession,
        end_session,
    )],
};

pub static FAPI_SESSION_REMOVE: Function = Function {
    name: "fapi-session-remove",
    start: SIGNS,
    routes: &[route(
        Method::POST,
        "/v1/client/sessions/{session_id}/remove",
        Endpoint::RemoveSession,
        remove_session,
    )],
};

pub static FAPI_SESSION_TOKENS: Function = Function {
    name: "fapi-session-tokens",
    start: SIGNS,
    routes: &[route(
        Method::POST,
        "/v1/client/sessions/{session_id}/tokens",
        Endpoint::CreateSessionToken,
        create_session_token,
    )],
};

pub static FAPI_SESSION_TEMPLATE_TOKENS: Function = Function {
    name: "fapi-session-template-tokens",
    start: SIGNS,
    routes: &[route(
        Method::POST,
        "/v1/client/sessions/{session_id}/tokens/{template_name}",
        Endpoint::CreateSessionTokenFromTemplate,
        create_session_token_from_template,
    )],
};

pub static BAPI: Function = Function {
    name: "bapi",
    start: AppState::start_backend_api,
    routes: &[
        route(Method::POST, "/v1/users", Endpoint::CreateUser, create_user),
        route(
            Method::GET,
            "/v1/users/{user_id}",
            Endpoint::GetUser,
            get_user,
        ),
        route(
            Method::PATCH,
            "/v1/users/{user_id}",
            Endpoint::UpdateUser,
            update_user,
        ),
        route(
            Method::DELETE,
            "/v1/users/{user_id}",
            Endpoint::DeleteUser,
            delete_user,
        ),
        route(
            Method::POST,
            "/v1/users/{user_id}/ban",
            Endpoint::BanUser,
            ban_user,
        ),
        route(
            Method::POST,
            "/v1/users/{user_id}/unban",
            Endpoint::UnbanUser,
            unban_user,
        ),
        route(
            Method::POST,
            "/v1/sign_in_tokens",
            Endpoint::CreateSignInToken,
            create_sign_in_token,
        ),
        route(
            Method::GET,
            "/v1/clients/handshake_payload",
            Endpoint::GetHandshakePayload,
            get_handshake_payload,
        ),
        route(
            Method::GET,
            "/v1/sessions",
            Endpoint::ListSessions,
            list_sessions,
        ),
        route(
            Method::GET,
            "/v1/sessions/{session_id}",
            Endpoint::GetBackendSession,
            get_backend_session,
        ),
        route(
            Method::POST,
            "/v1/sessions/{session_id}/revoke",
            Endpoint::RevokeSession,
            revoke_session,
        ),
        route(
            Method::POST,
            "/v1/sessions/{session_id}/refresh",
            Endpoint::RefreshSession,
            refresh_session,
        ),
        route(
            Method::POST,
            "/v1/sessions/{session_id}/tokens",
            Endpoint::CreateBackendSessionToken,
            create_backend_session_token,
        ),
        route(
            Method::POST,
            "/v1/sessions/{session_id}/tokens/{template_name}",
            Endpoint::CreateBackendTemplateToken,
            create_backend_template_token,
        ),
        route(
            Method::POST,
            "/v1/jwt_templates",
            Endpoint::CreateJwtTemplate,
            create_jwt_template,
        ),
        route(
            Method::GET,
            "/v1/jwt_templates",
            Endpoint::ListJwtTemplates,
            list_jwt_templates,
        ),
        route(
            Method::GET,
            "/v1/jwt_templates/{template_id}",
            Endpoint::GetJwtTemplate,
            get_jwt_template,
        ),
        route(
            Method::PATCH,
            "/v1/jwt_templates/{template_id}",
            Endpoint::UpdateJwtTemplate,
            update_jwt_template,
        ),
        route(
            Method::DELETE,
            "/v1/jwt_templates/{template_id}",
            Endpoint::DeleteJwtTemplate,
            delete_jwt_template,
        ),
        route(Method::GET, "/v1/jwks", Endpoint::BackendJwks, backend_jwks),
        // Extensions (not Clerk's API): the keyring's lifecycle, and rotating it.
        route(
            Method::GET,
            "/v1/instance/keys",
            Endpoint::GetInstanceKeys,
            get_instance_keys,
        ),
        route(
            Method::POST,
            "/v1/instance/keys/rotate",
            Endpoint::RotateInstanceKeys,
            rotate_instance_keys,
        ),
        // Extensions: webhook endpoints (Clerk manages them in its Dashboard).
        route(
            Method::GET,
            "/v1/webhooks/endpoints",
            Endpoint::ListWebhookEndpoints,
            list_webhook_endpoints,
        ),
        route(
            Method::POST,
            "/v1/webhooks/endpoints",
            Endpoint::CreateWebhookEndpoint,
            create_webhook_endpoint,
        ),
        route(
            Method::DELETE,
            "/v1/webhooks/endpoints/{endpoint_id}",
            Endpoint::DeleteWebhookEndpoint,
            delete_webhook_endpoint,
        ),
        route(
            Method::POST,
            "/v1/webhooks/endpoints/{endpoint_id}/rotate_secret",
            Endpoint::RotateWebhookSecret,
            rotate_webhook_secret,
        ),
    ],
};

/// Every function, in template.yaml's order. The local server serves all their routes.
pub static FUNCTIONS: &[&Function] = &[
    &FAPI_CLIENT,
    &FAPI_DEV_BROWSER,
    &FAPI_SIGN_INS,
    &FAPI_ENVIRONMENT,
    &FAPI_JWKS,
    &FAPI_SESSION_GET,
    &FAPI_SESSION_TOUCH,
    &FAPI_SESSION_END,
    &FAPI_SESSION_REMOVE,
    &FAPI_SESSION_TOKENS,
    &FAPI_SESSION_TEMPLATE_TOKENS,
    &BAPI,
];

/// Every route, with the function that serves it.
pub fn routes() -> impl Iterator<Item = (&'static Function, &'static Route)> + Clone {
    FUNCTIONS
        .iter()
        .flat_map(|f| f.routes.iter().map(move |r| (*f, r)))
}

/// The function named `name`.
pub fn function(name: &str) -> Option<&'static Function> {
    FUNCTIONS.iter().copied().find(|f| f.name == name)
}

/// Every route of every function: what the local server serves.
pub fn every_route() -> impl Iterator<Item = &'static Route> + Clone {
    FUNCTIONS.iter().flat_map(|f| f.routes.iter())
}

/// Every function name in the table, sorted.
pub fn functions() -> Vec<&'static str> {
    let mut names: Vec<&'static str> = FUNCTIONS.iter().map(|f| f.name).collect();
    names.sort_unstable();
    names
}

/// The (method, path, function) triples API Gateway must route. clerk-js tunnels DELETE
/// and PATCH through POST with `_method=…`, so such a route also needs its POST twin.
pub fn gateway_routes() -> Vec<(String, &'static str, &'static str)> {
    let mut out = Vec::new();
    for (f, r) in routes() {
        out.push((r.method.to_string(), r.path, f.name));
        // Only browsers tunnel; servers send real DELETEs.
        if (r.method == Method::DELETE || r.method == Method::PATCH) && r.endpoint.is_frontend() {
            out.push((Method::POST.to_string(), r.path, f.name));
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

/// Routes a request to its handler among `routes` (one function's, or [`routes()`] for
/// the local server), and turns every error into a ClerkErrors answer.
pub async fn dispatch<'r, I>(state: &AppState, req: Request, routes: I) -> Response
where
    I: IntoIterator<Item = &'r Route> + Clone,
{
    let method = effective_method(&req);
    let path = req.uri().path().to_string();
    let request_id = req.request_id().to_string();
    let span =
        tracing::info_span!("request", request_id = %request_id, method = %method, path = %path);
    async move {
        if !state.origin_verified(&req) {
            let err = ApiError::origin_unverified();
            let resp = response::error(&err, &request_id);
            state
                .metrics
                .response(None, resp.status().as_u16(), Some(err.code));
            tracing::info!(status = resp.status().as_u16(), "answered");
            return resp;
        }
        let routes = || routes.clone().into_iter();
        let found = routes()
            .filter(|r| r.method == method)
            .find_map(|r| Some((r, match_path(r.path, &path)?)));
        let endpoint = found.as_ref().map(|(r, _)| r.endpoint);
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
            Some((route, params)) => handle(state, route, req, params, method.clone()).await,
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
        let code = resp.extensions().get::<ErrorCode>().map(|c| c.0);
        state.metrics.response(endpoint, status.as_u16(), code);
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
    route: &Route,
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
    let endpoint = route.endpoint;
    if !endpoint.is_frontend() {
        return call(state, route, req, &ClientAuth::anonymous()).await;
    }
    let origin = req.header_str("origin").map(str::to_string);
    let request_id = req.request_id().to_string();
    let (result, auth) = match cors::check_origin(state, &req, &method, auth::is_native(&req)) {
        Err(e) => (Err(e), None),
        // The client token is verified once, here: the handler acts on the verdict and
        // the answer is settled with it.
        Ok(()) => match auth::authenticate(state, &req).await {
            Ok(auth) => (call(state, route, req, &auth).await, Some(auth)),
            Err(e) if endpoint.acts_for_client() => (Err(e), None),
            // A token these endpoints never look at cannot fail them.
            Err(_) => {
                let anonymous = ClientAuth::anonymous();
                (call(state, route, req, &anonymous).await, None)
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
    route: &Route,
    req: Request,
    auth: &ClientAuth,
) -> Result<Response, ApiError> {
    (route.handler)(state, req, auth).await
}
