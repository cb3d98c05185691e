//! A fault-injecting HTTP proxy in front of the test command's DynamoDB (moto): the service
//! talks to it as to DynamoDB, and it forwards each call, or fails it the ways DynamoDB and
//! the network do: throttling (`ThrottlingException`), a 500, a connection dropped before
//! the call reached DynamoDB, an answer lost after DynamoDB applied the call, an answer
//! later than the SDK's attempt time-out. Faults are drawn from a seeded generator; one
//! call (the same operation and body) is failed at most twice in a row, so the SDK's third
//! attempt gets through and every request can be answered, unless `outage` is set, which
//! throttles every call.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::{TokioExecutor, TokioIo};

/// The mix of faults, as fractions of calls.
#[derive(Clone, Copy, Debug, Default)]
pub struct Faults {
    /// Answers lost after the call was applied (writes and reads alike).
    pub lost_answer: f64,
    /// Throttling, 500s, dropped connections and late answers, in equal parts.
    pub other: f64,
}

/// What the proxy did, by kind.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Injected {
    pub forwarded: u64,
    pub throttled: u64,
    pub server_errors: u64,
    pub dropped: u64,
    pub lost_answers: u64,
    pub late_answers: u64,
}

struct Shared {
    upstream: String,
    client: Client<HttpConnector, Full<Bytes>>,
    faults: Mutex<Faults>,
    outage: AtomicBool,
    /// Faults so far per call (operation and body), so none is failed three times.
    failed: Mutex<HashMap<u64, u32>>,
    injected: Mutex<Injected>,
    rng: AtomicU64,
}

pub struct FaultProxy {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

/// How long a late answer waits: past the SDK's 2 s attempt time-out.
const LATE: Duration = Duration::from_millis(2_100);

impl FaultProxy {
    /// A proxy to `upstream` (`http://host:port`) on a free loopback port, forwarding
    /// everything until faults are set.
    pub async fn start(upstream: &str, seed: u64) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the proxy");
        let addr = listener.local_addr().expect("proxy address");
        let shared = Arc::new(Shared {
            upstream: upstream.trim_end_matches('/').to_string(),
            client: Client::builder(TokioExecutor::new()).build_http(),
            faults: Mutex::new(Faults::default()),
            outage: AtomicBool::new(false),
            failed: Mutex::new(HashMap::new()),
            injected: Mutex::new(Injected::default()),
            rng: AtomicU64::new(seed | 1),
        });
        let serving = Arc::clone(&shared);
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let shared = Arc::clone(&serving);
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let shared = Arc::clone(&shared);
                        async move { shared.handle(req).await }
                    });
                    // An Err from the service drops the connection without an answer.
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self { addr, shared, task }
    }

    /// `http://<addr>`, to give the service as its DynamoDB endpoint.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn set_faults(&self, faults: Faults) {
        *lock(&self.shared.faults) = faults;
    }

    /// Every call throttled while on.
    pub fn set_outage(&self, on: bool) {
        self.shared.outage.store(on, Ordering::SeqCst);
    }

    pub fn injected(&self) -> Injected {
        lock(&self.shared.injected).clone()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[derive(Clone, Copy)]
enum Fault {
    Throttle,
    ServerError,
    Drop,
    LostAnswer,
    Late,
}

impl Shared {
    /// xorshift64*: reproducible from the seed, cheap, shared by every connection.
    fn random(&self) -> f64 {
        let mut x = self.rng.load(Ordering::Relaxed);
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng.store(x, Ordering::Relaxed);
        (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }

    fn draw(&self, call: u64) -> Option<Fault> {
        if self.outage.load(Ordering::SeqCst) {
            return Some(Fault::Throttle);
        }
        let faults = *lock(&self.faults);
        let r = self.random();
        let fault = if r < faults.lost_answer {
            Fault::LostAnswer
        } else if r < faults.lost_answer + faults.other {
            match ((r - faults.lost_answer) / faults.other * 4.0) as u32 {
                0 => Fault::Throttle,
                1 => Fault::ServerError,
                2 => Fault::Drop,
                _ => Fault::Late,
            }
        } else {
            return None;
        };
        let mut failed = lock(&self.failed);
        let count = failed.entry(call).or_default();
        if *count >= 2 {
            return None;
        }
        *count += 1;
        Some(fault)
    }

    fn count(&self, f: impl FnOnce(&mut Injected)) {
        f(&mut lock(&self.injected));
    }

    async fn handle(
        self: Arc<Self>,
        req: http::Request<Incoming>,
    ) -> Result<http::Response<Full<Bytes>>, std::io::Error> {
        let (parts, body) = req.into_parts();
        let body = body
            .collect()
            .await
            .map_err(std::io::Error::other)?
            .to_bytes();
        let target = parts
            .headers
            .get("x-amz-target")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let call = {
            use std::hash::{Hash, Hasher};
            let mut h = std::collections::hash_map::DefaultHasher::new();
            target.hash(&mut h);
            body.hash(&mut h);
            h.finish()
        };
        let fault = self.draw(call);
        match fault {
            Some(Fault::Throttle) => {
                self.count(|i| i.throttled += 1);
                return Ok(error(
                    400,
                    "com.amazonaws.dynamodb.v20120810#ThrottlingException",
                    "Rate of requests exceeds the allowed throughput.",
                ));
            }
            Some(Fault::ServerError) => {
                self.count(|i| i.server_errors += 1);
                return Ok(error(
                    500,
                    "com.amazonaws.dynamodb.v20120810#InternalServerError",
                    "Internal server error",
                ));
            }
            Some(Fault::Drop) => {
                self.count(|i| i.dropped += 1);
                return Err(std::io::Error::other("dropped before forwarding"));
            }
            _ => {}
        }
        let answer = self.forward(parts, body).await?;
        match fault {
            Some(Fault::LostAnswer) => {
                self.count(|i| i.lost_answers += 1);
                Err(std::io::Error::other(
                    "answer lost after the call was applied",
                ))
            }
            Some(Fault::Late) => {
                self.count(|i| i.late_answers += 1);
                tokio::time::sleep(LATE).await;
                Ok(answer)
            }
            _ => {
                self.count(|i| i.forwarded += 1);
                Ok(answer)
            }
        }
    }

    async fn forward(
        &self,
        parts: http::request::Parts,
        body: Bytes,
    ) -> Result<http::Response<Full<Bytes>>, std::io::Error> {
        let uri = format!(
            "{}{}",
            self.upstream,
            parts.uri.path_and_query().map_or("/", |p| p.as_str())
        );
        let mut out = http::Request::builder().method(parts.method).uri(uri);
        for (name, value) in &parts.headers {
            if name != http::header::HOST {
                out = out.header(name, value);
            }
        }
        let out = out.body(Full::new(body)).map_err(std::io::Error::other)?;
        let resp = self
            .client
            .request(out)
            .await
            .map_err(std::io::Error::other)?;
        let (parts, body) = resp.into_parts();
        let body = body
            .collect()
            .await
            .map_err(std::io::Error::other)?
            .to_bytes();
        Ok(http::Response::from_parts(parts, Full::new(body)))
    }
}

fn error(status: u16, kind: &str, message: &str) -> http::Response<Full<Bytes>> {
    let body = serde_json::json!({"__type": kind, "message": message}).to_string();
    http::Response::builder()
        .status(status)
        .header("content-type", "application/x-amz-json-1.0")
        .body(Full::new(Bytes::from(body)))
        .unwrap_or_default()
}
