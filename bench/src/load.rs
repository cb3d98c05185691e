//! A small HTTP/1.1 load generator (no external tool): a fixed number of keep-alive
//! connections, each sending its next request as soon as the previous answer is read, for
//! a fixed time. A request that fails, or answers other than 200, counts as an error.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// One request, sent again and again: method, path with query, headers.
#[derive(Clone, Debug)]
pub struct Target {
    pub method: http::Method,
    pub uri: String,
    pub headers: Vec<(String, String)>,
}

impl Target {
    pub fn get(uri: impl Into<String>) -> Self {
        Self {
            method: http::Method::GET,
            uri: uri.into(),
            headers: Vec::new(),
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    fn build(&self, addr: SocketAddr) -> hyper::Request<Empty<Bytes>> {
        let mut b = hyper::Request::builder()
            .method(self.method.clone())
            .uri(&self.uri)
            .header("host", addr.to_string());
        for (k, v) in &self.headers {
            b = b.header(k, v);
        }
        b.body(Empty::new()).expect("a well-formed request")
    }
}

#[derive(Clone, Copy, Debug, Default)]
pub struct Load {
    pub ok: u64,
    pub errors: u64,
    pub elapsed: Duration,
}

impl Load {
    pub fn per_second(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    pub fn add(&mut self, other: Load) {
        self.ok += other.ok;
        self.errors += other.errors;
        self.elapsed += other.elapsed;
    }
}

async fn connection(
    addr: SocketAddr,
    target: Arc<Target>,
    until: Instant,
) -> Result<(u64, u64), String> {
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let _ = stream.set_nodelay(true);
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    tokio::spawn(conn);
    let (mut ok, mut errors) = (0u64, 0u64);
    while Instant::now() < until {
        match sender.send_request(target.build(addr)).await {
            Ok(resp) => {
                let status = resp.status();
                let body = resp.into_body().collect().await;
                if status == http::StatusCode::OK && body.is_ok() {
                    ok += 1;
                } else {
                    errors += 1;
                }
            }
            Err(_) => {
                errors += 1;
                break;
            }
        }
    }
    Ok((ok, errors))
}

/// `connections` keep-alive connections sending `target` for `duration`.
pub async fn run(
    addr: SocketAddr,
    target: &Target,
    connections: usize,
    duration: Duration,
) -> Load {
    let target = Arc::new(target.clone());
    let started = Instant::now();
    let until = started + duration;
    let tasks: Vec<_> = (0..connections)
        .map(|_| tokio::spawn(connection(addr, Arc::clone(&target), until)))
        .collect();
    let mut load = Load::default();
    for task in tasks {
        match task.await {
            Ok(Ok((ok, errors))) => {
                load.ok += ok;
                load.errors += errors;
            }
            _ => load.errors += 1,
        }
    }
    load.elapsed = started.elapsed();
    load
}

/// One request on a fresh connection: (status, headers, body). For setting up a run.
pub async fn call(
    addr: SocketAddr,
    method: &str,
    uri: &str,
    headers: &[(&str, &str)],
    content_type: Option<&str>,
    body: String,
) -> Result<(u16, http::HeaderMap, String), String> {
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    tokio::spawn(conn);
    let mut b = hyper::Request::builder()
        .method(method)
        .uri(uri)
        .header("host", addr.to_string());
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    if let Some(ct) = content_type {
        b = b.header("content-type", ct);
    }
    let req = b
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| e.to_string())?;
    let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    Ok((status, headers, String::from_utf8_lossy(&body).to_string()))
}
