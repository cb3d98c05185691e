//! The local server: every route of `shared::routes` on one port, on the embedded store,
//! and the OpenAPI document that describes them.
//!
//! API Gateway protects the Lambda functions; here the server protects itself: a request
//! head must arrive in time (which also closes idle kept-alive connections), a body must
//! arrive in time, connections are capped, and shutdown lets in-flight requests finish.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use shared::config::LocalServerConfig;
use shared::error::ApiError;
use shared::http::request::MAX_BODY_BYTES;
use shared::http::RequestId;
use shared::routes;
use shared::state::AppState;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

/// The read buffer, which bounds a request head: past it hyper answers 431 itself. Heads
/// from `shared::limits::HEADERS_MAX_BYTES` up to here get the service's own 431.
const MAX_HEAD_BYTES: usize = 64 * 1024;

/// Accepts connections until `shutdown` resolves, then stops accepting, lets in-flight
/// requests finish (up to `settings.shutdown_grace`) and flushes the store.
pub async fn serve(
    listener: TcpListener,
    state: Arc<AppState>,
    settings: LocalServerConfig,
    shutdown: impl std::future::Future<Output = ()>,
) -> std::io::Result<()> {
    tokio::pin!(shutdown);
    let permits = Arc::new(Semaphore::new(settings.max_connections));
    let graceful = GracefulShutdown::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(settings.header_read_timeout)
        .max_buf_size(MAX_HEAD_BYTES);
    loop {
        let (stream, _) = tokio::select! {
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
        let body_timeout = settings.body_read_timeout;
        let service = hyper::service::service_fn(move |req| {
            let state = Arc::clone(&state);
            async move { Ok::<_, Infallible>(handle(&state, req, body_timeout).await) }
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
    req: hyper::Request<Incoming>,
    body_timeout: std::time::Duration,
) -> hyper::Response<Full<Bytes>> {
    if req.uri().path() == OPENAPI_PATH && req.method() == http::Method::GET {
        let mut resp =
            hyper::Response::new(Full::new(Bytes::from_static(OPENAPI_DOCUMENT.as_bytes())));
        resp.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/yaml"),
        );
        return resp;
    }
    let request_id = shared::ids::new_id("req");
    let (parts, body) = req.into_parts();
    let collected =
        tokio::time::timeout(body_timeout, Limited::new(body, MAX_BODY_BYTES).collect()).await;
    let resp = match collected {
        Ok(Ok(collected)) => {
            let mut req = http::Request::from_parts(parts, collected.to_bytes());
            req.extensions_mut().insert(RequestId(request_id));
            routes::dispatch(state, req, routes::every_route()).await
        }
        Ok(Err(_)) => {
            shared::http::response::error(&ApiError::body_too_large(MAX_BODY_BYTES), &request_id)
        }
        Err(_) => {
            let mut resp = shared::http::response::error(&ApiError::request_timeout(), &request_id);
            // The rest of the body may still come: the connection cannot be reused.
            resp.headers_mut().insert(
                http::header::CONNECTION,
                http::HeaderValue::from_static("close"),
            );
            resp
        }
    };
    resp.map(|body| Full::new(Bytes::from(body)))
}
