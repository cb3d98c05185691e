//! The local server: every route of `shared::routes` on one port, on the embedded store.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use shared::error::ApiError;
use shared::http::request::MAX_BODY_BYTES;
use shared::http::RequestId;
use shared::routes;
use shared::state::AppState;
use tokio::net::TcpListener;

/// Accepts connections until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    state: Arc<AppState>,
    shutdown: impl std::future::Future<Output = ()>,
) -> std::io::Result<()> {
    tokio::pin!(shutdown);
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => accepted?,
            () = &mut shutdown => return Ok(()),
        };
        let state = Arc::clone(&state);
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let state = Arc::clone(&state);
                async move { Ok::<_, Infallible>(handle(&state, req).await) }
            });
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            if let Err(err) = builder
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(error = %err, "connection closed");
            }
        });
    }
}

async fn handle(state: &AppState, req: hyper::Request<Incoming>) -> hyper::Response<Full<Bytes>> {
    let request_id = shared::ids::new_id("req");
    let (parts, body) = req.into_parts();
    let resp = match Limited::new(body, MAX_BODY_BYTES).collect().await {
        Ok(collected) => {
            let mut req = http::Request::from_parts(parts, collected.to_bytes());
            req.extensions_mut().insert(RequestId(request_id));
            routes::dispatch(state, req, None).await
        }
        Err(_) => {
            shared::http::response::error(&ApiError::body_too_large(MAX_BODY_BYTES), &request_id)
        }
    };
    resp.map(|body| Full::new(Bytes::from(body)))
}
