//! A webhook receiver on a free local port, for the webhook tests: it records every
//! attempt (by `svix-id`) and every delivery it accepts, and refuses (503) the first
//! `fail_first` attempts of each event.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};

/// One accepted delivery: its headers (lower-case names) and body.
#[derive(Clone, Debug)]
pub struct Delivery {
    pub headers: HashMap<String, String>,
    pub body: String,
}

#[derive(Default)]
pub struct Seen {
    /// The `svix-id` of every attempt, in arrival order.
    pub attempts: Vec<String>,
    pub accepted: Vec<Delivery>,
}

pub struct Receiver {
    pub url: String,
    pub seen: Arc<Mutex<Seen>>,
}

impl Receiver {
    /// Starts it on the current tokio runtime.
    pub async fn start(fail_first: usize) -> Self {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a receiver");
        let url = format!("http://{}/hooks", listener.local_addr().expect("address"));
        let shared = Arc::clone(&seen);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let seen = Arc::clone(&shared);
                let service = hyper::service::service_fn(
                    move |req: hyper::Request<hyper::body::Incoming>| {
                        let seen = Arc::clone(&seen);
                        async move {
                            let status = answer(&seen, req, fail_first).await;
                            Ok::<_, Infallible>(
                                hyper::Response::builder()
                                    .status(status)
                                    .body(Full::new(Bytes::new()))
                                    .expect("response"),
                            )
                        }
                    },
                );
                tokio::spawn(async move {
                    let io = hyper_util::rt::TokioIo::new(stream);
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(io, service)
                        .await;
                });
            }
        });
        Self { url, seen }
    }

    /// The deliveries accepted so far.
    pub fn accepted(&self) -> Vec<Delivery> {
        self.seen.lock().expect("receiver").accepted.clone()
    }

    /// The `svix-id`s of every attempt so far.
    pub fn attempts(&self) -> Vec<String> {
        self.seen.lock().expect("receiver").attempts.clone()
    }
}

async fn answer(
    seen: &Mutex<Seen>,
    req: hyper::Request<hyper::body::Incoming>,
    fail_first: usize,
) -> u16 {
    let headers: HashMap<String, String> = req
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    let body = match req.into_body().collect().await {
        Ok(b) => String::from_utf8_lossy(&b.to_bytes()).to_string(),
        Err(_) => return 400,
    };
    let id = headers.get("svix-id").cloned().unwrap_or_default();
    let mut seen = seen.lock().expect("receiver");
    seen.attempts.push(id.clone());
    let tries = seen.attempts.iter().filter(|a| **a == id).count();
    if tries > fail_first {
        seen.accepted.push(Delivery { headers, body });
        200
    } else {
        503
    }
}

/// A receiver that accepts connections and never answers (a hung server): it holds every
/// connection open, reading nothing, until dropped.
pub struct SilentReceiver {
    pub url: String,
    connections: Arc<Mutex<Vec<tokio::net::TcpStream>>>,
    task: tokio::task::JoinHandle<()>,
}

impl SilentReceiver {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a receiver");
        let url = format!("http://{}/hooks", listener.local_addr().expect("address"));
        let connections = Arc::new(Mutex::new(Vec::new()));
        let held = Arc::clone(&connections);
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                held.lock().expect("receiver").push(stream);
            }
        });
        Self {
            url,
            connections,
            task,
        }
    }

    /// The connections it holds.
    pub fn connections(&self) -> usize {
        self.connections.lock().expect("receiver").len()
    }
}

impl Drop for SilentReceiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}
