//! The local server: every route of `shared::routes` on one port, on the embedded store,
//! and the OpenAPI document that describes them.
//!
//! API Gateway protects the Lambda functions; here the server protects itself: a request
//! head must arrive in time (which also closes idle kept-alive connections), a body must
//! arrive in time, connections are capped, and shutdown lets in-flight requests finish.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Body as _;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};
use shared::config::LocalServerConfig;
use shared::error::ApiError;
use shared::http::request::MAX_BODY_BYTES;
use shared::http::{ClientAddr, RequestId};
use shared::routes;
use shared::state::AppState;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

/// The read buffer, which bounds a request head: past it hyper answers 431 itself. Heads
/// from `shared::limits::HEADERS_MAX_BYTES` up to here get the service's own 431.
const MAX_HEAD_BYTES: usize = 64 * 1024;

/// Where the Prometheus text of [`install_metrics`] is served, to Backend API callers only.
pub const METRICS_PATH: &str = "/metrics";

/// How often recorded histogram samples are folded into their buckets.
const METRICS_UPKEEP: std::time::Duration = std::time::Duration::from_secs(5);

/// Installs the process's metrics recorder (Prometheus text, rendered on request: no
/// listener of its own) and answers its handle for [`serve`]. Call it inside the runtime,
/// before the state is built, so the state's metrics are registered with it. `None`
/// when a recorder is installed already.
pub fn install_metrics() -> Option<PrometheusHandle> {
    let recorder = prometheus_recorder()?;
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder).ok()?;
    shared::metrics::describe();
    let upkeep = handle.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(METRICS_UPKEEP);
        loop {
            every.tick().await;
            upkeep.run_upkeep();
        }
    });
    Some(handle)
}

/// The recorder the local server installs: Prometheus text, with the store latency as a
/// histogram of [`shared::metrics::STORE_CALL_BUCKETS`].
pub fn prometheus_recorder() -> Option<PrometheusRecorder> {
    let buckets = PrometheusBuilder::new().set_buckets_for_metric(
        Matcher::Full(shared::metrics::STORE_CALL_DURATION.to_string()),
        shared::metrics::STORE_CALL_BUCKETS,
    );
    Some(buckets.ok()?.build_recorder())
}

/// Accepts connections until `shutdown` resolves, then stops accepting, lets in-flight
/// requests finish (up to `settings.shutdown_grace`) and flushes the store. With `metrics`
/// (from [`install_metrics`]), `GET /metrics` serves them.
pub async fn serve(
    listener: TcpListener,
    state: Arc<AppState>,
    settings: LocalServerConfig,
    metrics: Option<PrometheusHandle>,
    shutdown: impl std::future::Future<Output = ()>,
) -> std::io::Result<()> {
    tokio::pin!(shutdown);
    // Webhook deliveries from the embedded store's outbox, beside the requests.
    let webhooks = tokio::spawn(shared::webhooks::outbox::run(Arc::clone(&state)));
    let permits = Arc::new(Semaphore::new(settings.max_connections));
    let graceful = GracefulShutdown::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(settings.header_read_timeout)
        .max_buf_size(MAX_HEAD_BYTES);
    loop {
        let (stream, peer) = tokio::select! {
            // Accepting first: a connection made before the stop signal is served, not
            // dropped with the listener.
            biased;
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                // Out of file descriptors and the like: the listener itself is fine; wait a
                // moment for connections to close rather than spin.
                Err(err) => {
                    tracing::warn!(error = %err, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
            tokio::spawn(refuse(stream));
            continue;
        };
        let state = Arc::clone(&state);
        let metrics = metrics.clone();
        let body_timeout = settings.body_read_timeout;
        let service = hyper::service::service_fn(move |req| {
            let state = Arc::clone(&state);
            let metrics = metrics.clone();
            async move {
                let resp = handle(&state, metrics.as_ref(), req, peer, body_timeout).await;
                Ok::<_, Infallible>(resp)
            }
        });
        let connection = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(err) = connection.await {
                tracing::debug!(error = %err, "connection closed");
            }
            drop(permit);
        });
    }
    drop(listener);
    tracing::info!(connections = graceful.count(), "shutting down");
    // A delivery cut short is leased, not lost: the next start attempts it again.
    webhooks.abort();
    if tokio::time::timeout(settings.shutdown_grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("in-flight requests did not finish in time");
    }
    state.store.flush().await.map_err(std::io::Error::other)
}

/// Answers a connection over the cap with a ClerkErrors 503 and closes it.
async fn refuse(mut stream: TcpStream) {
    let err = ApiError::too_many_connections();
    let request_id = shared::ids::new_id("req");
    let body = err.body(&request_id).to_string();
    let head = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes()).await;
    let _ = stream.write_all(body.as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// The API's OpenAPI 3 document (docs/openapi.yaml), served at [`OPENAPI_PATH`].
pub const OPENAPI_DOCUMENT: &str = include_str!("../../docs/openapi.yaml");
pub const OPENAPI_PATH: &str = "/openapi.yaml";

async fn handle(
    state: &AppState,
    metrics: Option<&PrometheusHandle>,
    req: hyper::Request<Incoming>,
    peer: std::net::SocketAddr,
    body_timeout: std::time::Duration,
) -> hyper::Response<Full<Bytes>> {
    // These two answer without reading a body: one that was sent stays unread on the
    // connection, which therefore cannot carry another request.
    let unread_body = !req.body().is_end_stream();
    if let Some(metrics) = metrics.filter(|_| req.uri().path() == METRICS_PATH) {
        let resp = serve_metrics(state, metrics, req);
        return if unread_body { closing(resp) } else { resp };
    }
    if req.uri().path() == OPENAPI_PATH && req.method() == http::Method::GET {
        let mut resp =
            hyper::Response::new(Full::new(Bytes::from_static(OPENAPI_DOCUMENT.as_bytes())));
        resp.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/yaml"),
        );
        return if unread_body { closing(resp) } else { resp };
    }
    let request_id = shared::ids::new_id("req");
    let (parts, body) = req.into_parts();
    let collected = tokio::time::timeout(body_timeout, read_body(body)).await;
    let resp = match collected {
        Ok(Ok(collected)) => {
            let mut req = http::Request::from_parts(parts, collected);
            req.extensions_mut().insert(RequestId(request_id));
            req.extensions_mut().insert(ClientAddr(peer.ip()));
            routes::dispatch(state, req, routes::every_route()).await
        }
        // Both answer before the body was read to its end: the rest of it may still come,
        // so the connection cannot carry another request. `Connection: close` tells a
        // keep-alive client to send its next request on a new connection (hyper would
        // close this one anyway, but without saying so).
        Ok(Err(_)) => {
            let err = ApiError::body_too_large(MAX_BODY_BYTES);
            state
                .metrics
                .response(None, err.status.as_u16(), Some(err.code));
            closing(shared::http::response::error(&err, &request_id))
        }
        Err(_) => {
            let err = ApiError::request_timeout();
            state
                .metrics
                .response(None, err.status.as_u16(), Some(err.code));
            closing(shared::http::response::error(&err, &request_id))
        }
    };
    resp.map(|body| Full::new(Bytes::from(body)))
}

/// What is read and dropped of a body past [`MAX_BODY_BYTES`] before the 413 is sent.
const DRAIN_BYTES: usize = 8 * 1024 * 1024;

/// A body over [`MAX_BODY_BYTES`].
struct TooLarge;

/// Reads a body of at most [`MAX_BODY_BYTES`]. A longer one is read on and dropped, up to
/// [`DRAIN_BYTES`] more, before it is refused: a client still sending when the server
/// answers and closes gets its connection reset (the kernel resets a socket closed with
/// unread data), and may never read the 413. Past that much, the 413 goes at once.
async fn read_body(mut body: Incoming) -> Result<Bytes, TooLarge> {
    let mut kept = Vec::new();
    let mut dropped = 0usize;
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else {
            return Err(TooLarge);
        };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        if dropped == 0 && kept.len() + data.len() <= MAX_BODY_BYTES {
            kept.extend_from_slice(&data);
        } else {
            dropped += data.len();
            if dropped > DRAIN_BYTES {
                break;
            }
        }
    }
    if dropped > 0 {
        Err(TooLarge)
    } else {
        Ok(Bytes::from(kept))
    }
}

/// The answer with `Connection: close`: hyper closes the connection after it.
fn closing<B>(mut resp: http::Response<B>) -> http::Response<B> {
    resp.headers_mut().insert(
        http::header::CONNECTION,
        http::HeaderValue::from_static("close"),
    );
    resp
}

/// `GET /metrics`: the Prometheus text, for a caller holding the Backend API secret key
/// (`Authorization: Bearer sk_...`, checked as the Backend API checks it). Metrics show
/// traffic and error rates, which are not for the public: docs/operations.md.
fn serve_metrics(
    state: &AppState,
    metrics: &PrometheusHandle,
    req: hyper::Request<Incoming>,
) -> hyper::Response<Full<Bytes>> {
    let request_id = shared::ids::new_id("req");
    let (parts, _) = req.into_parts();
    let req = http::Request::from_parts(parts, Bytes::new());
    let answer = if req.method() != http::Method::GET {
        Err(ApiError::method_not_allowed())
    } else {
        shared::api::bapi::authorize(state, &req)
    };
    let resp = match answer {
        Ok(()) => {
            shared::metrics::record_caches(&state.cache_sizes());
            let mut resp = http::Response::new(metrics.render());
            resp.headers_mut().insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            resp.headers_mut().insert(
                http::header::CACHE_CONTROL,
                http::HeaderValue::from_static("no-store"),
            );
            resp
        }
        Err(err) => shared::http::response::error(&err, &request_id),
    };
    resp.map(|body| Full::new(Bytes::from(body)))
}
