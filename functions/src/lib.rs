//! The Lambda side of the service: every binary in `src/bin` is one function that builds
//! its state once, at start-up, then serves its own routes (`shared::routes`).

pub mod webhooks;

use std::sync::Arc;

use bytes::Bytes;
use lambda_http::request::RequestContext;
use lambda_http::{service_fn, Body, RequestExt};
use shared::http::{ClientAddr, RequestId};
use shared::routes::{self, Function};
use shared::state::AppState;

/// Runs the Lambda function `function` until the runtime stops it.
pub async fn run(function: &'static Function) -> Result<(), lambda_http::Error> {
    shared::telemetry::init();
    let metrics = install_metrics(function.name)?;
    let config = shared::config::Config::from_env()?;
    let state = Arc::new((function.start)(config).await?);
    tracing::info!(function = function.name, "ready");
    lambda_http::run(service_fn(move |event: lambda_http::Request| {
        let state = Arc::clone(&state);
        async move {
            let request_id = request_id(&event);
            let trace_id = event
                .lambda_context_ref()
                .and_then(|c| c.xray_trace_id.clone());
            let resp = handle_as(&state, function, event, request_id.clone()).await;
            flush_metrics(metrics, &request_id, trace_id);
            Ok::<_, std::convert::Infallible>(resp)
        }
    }))
    .await
}

/// Installs the recorder of this function's metrics: CloudWatch Embedded Metric Format
/// documents, in the namespace `METRICS_NAMESPACE` names (template.yaml: the stack's
/// name), each with the dimension `function`. CloudWatch turns the log lines into metrics,
/// so recording costs no API call.
pub fn install_metrics(
    function: &'static str,
) -> Result<&'static metrics_cloudwatch_embedded::Collector, lambda_http::Error> {
    let namespace = std::env::var("METRICS_NAMESPACE")
        .ok()
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| DEFAULT_METRICS_NAMESPACE.to_string());
    let collector = metrics_cloudwatch_embedded::Builder::new()
        .cloudwatch_namespace(namespace)
        .with_dimension("function", function)
        .init()?;
    shared::metrics::describe();
    Ok(collector)
}

/// The namespace when `METRICS_NAMESPACE` is not set (a function run outside the stack).
pub const DEFAULT_METRICS_NAMESPACE: &str = "ClerkSessionService";

/// Writes what the invocation recorded to standard output, one EMF document per label
/// set, tied to the request's log lines by `request_id` (and to its X-Ray trace, when
/// tracing is on). Lambda runs one invocation at a time per process, so the lines are
/// this invocation's.
pub fn flush_metrics(
    collector: &metrics_cloudwatch_embedded::Collector,
    request_id: &str,
    trace_id: Option<String>,
) {
    collector.set_property("request_id", request_id.to_string());
    match trace_id {
        Some(trace_id) => collector.set_property("trace_id", trace_id),
        None => collector.remove_property("trace_id"),
    };
    if let Err(err) = collector.flush(std::io::stdout().lock()) {
        tracing::warn!(error = %err, "metrics not written");
    }
}

/// API Gateway's request id ties an answer's `clerk_trace_id` to the access log; the
/// Lambda request id is the fallback.
fn request_id(event: &lambda_http::Request) -> String {
    match event.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx.request_id.clone(),
        Some(RequestContext::ApiGatewayV1(ctx)) => ctx.request_id.clone(),
        _ => None,
    }
    .or_else(|| event.lambda_context_ref().map(|c| c.request_id.clone()))
    .unwrap_or_default()
}

/// The caller's address as API Gateway saw it (`sourceIp`; CloudFront's, behind it).
fn client_addr(event: &lambda_http::Request) -> Option<ClientAddr> {
    let ip = match event.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx.http.source_ip.as_deref(),
        Some(RequestContext::ApiGatewayV1(ctx)) => ctx.identity.source_ip.as_deref(),
        _ => None,
    }?;
    ip.parse().ok().map(ClientAddr)
}

/// Turns an API Gateway event (already parsed by lambda_http) into the shared handler's
/// plain request, and its answer back into a Lambda response.
pub async fn handle(
    state: &AppState,
    function: &Function,
    event: lambda_http::Request,
) -> http::Response<Body> {
    let request_id = request_id(&event);
    handle_as(state, function, event, request_id).await
}

/// [`handle`], for a request whose id the caller has read already.
async fn handle_as(
    state: &AppState,
    function: &Function,
    event: lambda_http::Request,
    request_id: String,
) -> http::Response<Body> {
    let client_addr = client_addr(&event);
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
    if let Some(addr) = client_addr {
        req.extensions_mut().insert(addr);
    }
    routes::dispatch(state, req, function.routes)
        .await
        .map(Body::Text)
}
