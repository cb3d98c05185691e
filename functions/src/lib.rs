//! The Lambda side of the service: every binary in `src/bin` is one function that builds
//! its state once, at start-up, then serves its own routes (`shared::routes`).

use std::sync::Arc;

use bytes::Bytes;
use lambda_http::request::RequestContext;
use lambda_http::{service_fn, Body, RequestExt};
use shared::http::RequestId;
use shared::routes::{self, Function};
use shared::state::AppState;

/// Runs the Lambda function `function` until the runtime stops it.
pub async fn run(function: &'static Function) -> Result<(), lambda_http::Error> {
    shared::telemetry::init();
    let config = shared::config::Config::from_env()?;
    let state = Arc::new((function.start)(config).await?);
    tracing::info!(function = function.name, "ready");
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
    function: &Function,
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
    routes::dispatch(state, req, function.routes)
        .await
        .map(Body::Text)
}
