//! The Lambda side of the service: every binary in `src/bin` is one function that builds
//! its state once, at start-up, then serves the routes that carry its name.

use std::sync::Arc;

use bytes::Bytes;
use lambda_http::request::RequestContext;
use lambda_http::{service_fn, Body, RequestExt};
use shared::http::RequestId;
use shared::routes;
use shared::state::{AppState, KeyAccess};

/// What each function may do with the keyring (template.yaml grants the matching IAM).
pub fn key_access(function: &str) -> KeyAccess {
    match function {
        "fapi-environment" => KeyAccess::None,
        "fapi-jwks" => KeyAccess::Public,
        _ => KeyAccess::Private,
    }
}

/// Runs the Lambda function `function` until the runtime stops it.
pub async fn run(function: &'static str) -> Result<(), lambda_http::Error> {
    shared::telemetry::init();
    let config = shared::config::Config::from_env()?;
    // Only the Backend API holds the secret key; it cannot serve without it.
    if function == "bapi" && config.secret_key.is_none() {
        return Err(shared::config::ConfigError::Missing("BACKEND_API_SECRET_KEY").into());
    }
    let state =
        Arc::new(AppState::from_config_with_access(config, false, key_access(function)).await?);
    tracing::info!(function, "ready");
    lambda_http::run(service_fn(move |event: lambda_http::Request| {
        let state = Arc::clone(&state);
        async move { Ok::<_, std::convert::Infallible>(handle(&state, function, event).await) }
    }))
    .await
}

/// Turns an API Gateway event (already parsed by lambda_http) into the shared handler's
/// plain request, and its answer back into a Lambda response.
pub async fn handle(
    state: &AppState,
    function: &str,
    event: lambda_http::Request,
) -> http::Response<Body> {
    // API Gateway's request id ties an answer's `clerk_trace_id` to the access log; the
    // Lambda request id is the fallback.
    let request_id = match event.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx.request_id.clone(),
        Some(RequestContext::ApiGatewayV1(ctx)) => ctx.request_id.clone(),
        _ => None,
    }
    .or_else(|| event.lambda_context_ref().map(|c| c.request_id.clone()))
    .unwrap_or_default();
    // raw_http_path has no REST stage prefix (`/Prod`), unlike uri().path().
    let path_and_query = match event.uri().query() {
        Some(q) => format!("{}?{q}", event.raw_http_path()),
        None => event.raw_http_path().to_string(),
    };
    let (mut parts, body) = event.into_parts();
    parts.uri = path_and_query
        .parse()
        .unwrap_or_else(|_| http::Uri::from_static("/"));
    let body = match body {
        Body::Empty => Bytes::new(),
        Body::Text(text) => Bytes::from(text),
        Body::Binary(bytes) => Bytes::from(bytes),
        _ => Bytes::new(),
    };
    let mut req = http::Request::from_parts(parts, body);
    req.extensions_mut().insert(RequestId(request_id));
    routes::dispatch(state, req, Some(function))
        .await
        .map(Body::Text)
}
