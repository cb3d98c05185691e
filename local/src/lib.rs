//! The local server: every route of `shared::routes` on one port, on the embedded store,
//! and the OpenAPI document that describes them.

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

/// The API's OpenAPI 3 document (docs/openapi.yaml), served at [`OPENAPI_PATH`].
pub const OPENAPI_DOCUMENT: &str = include_str!("../../docs/openapi.yaml");
pub const OPENAPI_PATH: &str = "/openapi.yaml";

async fn handle(state: &AppState, req: hyper::Request<Incoming>) -> hyper::Response<Full<Bytes>> {
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
