//! The route table, one `Function` at a time: each Lambda function's binary serves its own
//! (chosen at compile time, so it links nothing else); the local server serves all of
//! them; a test holds them equal to `template.yaml`.

use http::{header, HeaderValue, Method};
use tracing::Instrument;

use crate::api::{bapi, fapi};
pub use crate::endpoint::{Access, Api, Endpoint};
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

impl Route {
    /// What the route needs of its caller before its handler runs.
    pub fn access(&self) -> Access {
        self.endpoint.access()
    }
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
    pub api: Api,
    pub routes: &'static [Route],
    pub start: Start,
}

/// Signs and verifies: the configured store, private keys unsealed as configured.
const SIGNS: Start = AppState::start_with_private_keys;

/// Declares each function's `static` and [`FUNCTIONS`] from the route table's rows, each
/// handler wrapped in a function of the one [`Handler`] type (named for its endpoint).
macro_rules! functions {
    ($(
        $(#[$doc:meta])*
        $function:ident $binary:literal $api:ident ($start:expr) {
            $(
                $endpoint:ident $method:ident $path:literal $access:ident
                |$state:pat_param, $req:pat_param, $auth:pat_param| $call:expr;
            )*
        }
    )*) => {
        #[allow(non_snake_case)]
        mod handlers {
            use super::*;
            $($(
                pub(super) fn $endpoint<'a>(
                    $state: &'a AppState,
                    $req: Request,
                    $auth: &'a ClientAuth,
                ) -> HandlerFuture<'a> {
                    Box::pin($call)
                }
            )*)*
        }

        $(
            $(#[$doc])*
            pub static $function: Function = Function {
                name: $binary,
                api: Api::$api,
                start: $start,
                routes: &[$(
                    Route {
                        method: Method::$method,
                        path: $path,
                        endpoint: Endpoint::$endpoint,
                        handler: handlers::$endpoint,
                    },
                )*],
            };
        )*

        /// Every function, in the table's order (template.yaml's). The local server serves
        /// all their routes.
        pub static FUNCTIONS: &[&Function] = &[$(&$function,)*];
    };
}

crate::route_table::route_table!(functions);

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
        if (r.method == Method::DELETE || r.method == Method::PATCH) && f.api == Api::Frontend {
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
    let access = route.access();
    if access == Access::SecretKey {
        bapi::authorize(state, &req)?;
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
            Err(e) if access == Access::Client => (Err(e), None),
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
