//! A small HTTP/1.1 load generator (no external tool): a fixed number of keep-alive
//! connections, each sending its next request as soon as the previous answer is read, for
//! a fixed time. The requests are one [`Target`] sent again and again ([`run`]), or a queue
//! of distinct ones, each sent once ([`run_queue`]: a session to end, a ticket to sign in
//! with), which ends the phase early if it runs out. A request that fails, or answers other
//! than 200, counts as an error. Each answered request's latency is kept for percentiles.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// One request: method, path with query, headers, body.
#[derive(Clone, Debug)]
pub struct Target {
    pub method: http::Method,
    pub uri: String,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

impl Target {
    pub fn get(uri: impl Into<String>) -> Self {
        Self::new(http::Method::GET, uri)
    }

    pub fn post(uri: impl Into<String>) -> Self {
        Self::new(http::Method::POST, uri)
    }

    fn new(method: http::Method, uri: impl Into<String>) -> Self {
        Self {
            method,
            uri: uri.into(),
            headers: Vec::new(),
            body: Bytes::new(),
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// A form body (`application/x-www-form-urlencoded`).
    pub fn form(self, body: impl Into<String>) -> Self {
        self.body(
            "application/x-www-form-urlencoded",
            Bytes::from(body.into()),
        )
    }

    /// A JSON body.
    pub fn json(self, body: &serde_json::Value) -> Self {
        self.body("application/json", Bytes::from(body.to_string()))
    }

    fn body(mut self, content_type: &str, body: Bytes) -> Self {
        self.headers
            .push(("content-type".into(), content_type.into()));
        self.body = body;
        self
    }

    fn build(&self, addr: SocketAddr) -> hyper::Request<Full<Bytes>> {
        let mut b = hyper::Request::builder()
            .method(self.method.clone())
            .uri(&self.uri)
            .header("host", addr.to_string());
        for (k, v) in &self.headers {
            b = b.header(k, v);
        }
        b.body(Full::new(self.body.clone()))
            .expect("a well-formed request")
    }
}

#[derive(Clone, Debug, Default)]
pub struct Load {
    pub ok: u64,
    pub errors: u64,
    pub elapsed: Duration,
    /// A queue ran out before the time was up (the phase was shorter).
    pub ran_out: bool,
    /// From sending each request to reading its whole answer, errors included.
    pub latencies: Vec<Duration>,
}

impl Load {
    pub fn per_second(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    pub fn add(&mut self, other: Load) {
        self.ok += other.ok;
        self.errors += other.errors;
        self.elapsed += other.elapsed;
        self.ran_out |= other.ran_out;
        self.latencies.extend(other.latencies);
    }

    /// p50 and p99 of the latencies.
    pub fn latency(&self) -> crate::stats::Summary {
        crate::stats::Summary::of(&self.latencies)
    }
}

/// Where the connections take their requests from.
enum Source {
    Repeat(Target),
    Queue(Vec<Target>, AtomicUsize),
    /// Round and round the targets, for as long as the phase lasts.
    Cycle(Vec<Target>, AtomicUsize),
}

impl Source {
    fn next(&self) -> Option<&Target> {
        match self {
            Self::Repeat(target) => Some(target),
            Self::Queue(targets, next) => targets.get(next.fetch_add(1, Ordering::Relaxed)),
            Self::Cycle(targets, next) => {
                let i = next.fetch_add(1, Ordering::Relaxed);
                targets.get(i % targets.len().max(1))
            }
        }
    }
}

async fn connect(addr: SocketAddr) -> Result<SendRequest<Full<Bytes>>, String> {
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let _ = stream.set_nodelay(true);
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    tokio::spawn(conn);
    Ok(sender)
}

/// Sends `target` and reads its whole answer, counting it (and its latency) in `load`.
/// False when the connection failed and cannot be used again.
async fn send_timed(
    sender: &mut SendRequest<Full<Bytes>>,
    addr: SocketAddr,
    target: &Target,
    load: &mut Load,
) -> bool {
    let request = target.build(addr);
    let sent = Instant::now();
    match sender.send_request(request).await {
        Ok(resp) => {
            let status = resp.status();
            let body = resp.into_body().collect().await;
            load.latencies.push(sent.elapsed());
            if status == http::StatusCode::OK && body.is_ok() {
                load.ok += 1;
            } else {
                load.errors += 1;
            }
            true
        }
        Err(_) => {
            load.errors += 1;
            false
        }
    }
}

/// One connection's share of a phase.
async fn connection(addr: SocketAddr, source: Arc<Source>, until: Instant) -> Result<Load, String> {
    let mut sender = connect(addr).await?;
    let mut load = Load::default();
    while Instant::now() < until {
        let Some(target) = source.next() else {
            break;
        };
        if !send_timed(&mut sender, addr, target, &mut load).await {
            break;
        }
    }
    Ok(load)
}

async fn drive(addr: SocketAddr, source: Source, connections: usize, duration: Duration) -> Load {
    let source = Arc::new(source);
    let started = Instant::now();
    let until = started + duration;
    let tasks: Vec<_> = (0..connections)
        .map(|_| tokio::spawn(connection(addr, Arc::clone(&source), until)))
        .collect();
    let mut load = Load::default();
    for task in tasks {
        match task.await {
            Ok(Ok(share)) => load.add(share),
            _ => load.errors += 1,
        }
    }
    load.elapsed = started.elapsed();
    if let Source::Queue(targets, next) = &*source {
        load.ran_out = next.load(Ordering::Relaxed) >= targets.len();
    }
    load
}

/// `connections` keep-alive connections sending `target` for `duration`.
pub async fn run(
    addr: SocketAddr,
    target: &Target,
    connections: usize,
    duration: Duration,
) -> Load {
    drive(addr, Source::Repeat(target.clone()), connections, duration).await
}

/// `connections` keep-alive connections sending `targets` in turn, round and round, for
/// `duration` (requests that may be repeated, spread over many records).
pub async fn run_cycle(
    addr: SocketAddr,
    targets: Vec<Target>,
    connections: usize,
    duration: Duration,
) -> Load {
    drive(
        addr,
        Source::Cycle(targets, AtomicUsize::new(0)),
        connections,
        duration,
    )
    .await
}

/// `connections` keep-alive connections sending `target` at `per_second` in all (each its
/// share, on a fixed schedule; a late answer delays only its own connection's next send),
/// for `duration`: a load of a given size rather than as much as the server takes.
pub async fn run_paced(
    addr: SocketAddr,
    target: &Target,
    connections: usize,
    per_second: f64,
    duration: Duration,
) -> Load {
    let interval = Duration::from_secs_f64(connections as f64 / per_second.max(1.0));
    let started = Instant::now();
    let until = started + duration;
    let tasks: Vec<_> = (0..connections)
        .map(|i| {
            let target = target.clone();
            // Spread the connections' schedules over one interval.
            let first = started + interval.mul_f64(i as f64 / connections as f64);
            tokio::spawn(async move {
                let mut sender = connect(addr).await?;
                let mut load = Load::default();
                let mut next = first;
                while next < until {
                    tokio::time::sleep_until(next.into()).await;
                    if !send_timed(&mut sender, addr, &target, &mut load).await {
                        break;
                    }
                    next += interval;
                }
                Ok::<_, String>(load)
            })
        })
        .collect();
    let mut load = Load::default();
    for task in tasks {
        match task.await {
            Ok(Ok(share)) => load.add(share),
            _ => load.errors += 1,
        }
    }
    load.elapsed = started.elapsed();
    load
}

/// `connections` keep-alive connections sending each of `targets` once, in order, for
/// `duration` or until none is left.
pub async fn run_queue(
    addr: SocketAddr,
    targets: Vec<Target>,
    connections: usize,
    duration: Duration,
) -> Load {
    drive(
        addr,
        Source::Queue(targets, AtomicUsize::new(0)),
        connections,
        duration,
    )
    .await
}

/// One answer: status, headers, body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: String,
}

async fn send(
    sender: &mut SendRequest<Full<Bytes>>,
    addr: SocketAddr,
    target: &Target,
) -> Result<Answer, String> {
    let resp = sender
        .send_request(target.build(addr))
        .await
        .map_err(|e| format!("{} {}: {e}", target.method, target.uri))?;
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    Ok(Answer {
        status,
        headers,
        body: String::from_utf8_lossy(&body).to_string(),
    })
}

/// One request on a fresh connection. For setting up a run.
pub async fn call(addr: SocketAddr, target: &Target) -> Result<Answer, String> {
    send(&mut connect(addr).await?, addr, target).await
}

/// Each of `targets` once, over `connections` keep-alive connections; the answers in the
/// order of `targets`. For setting up a run: many requests, untimed.
pub async fn call_each(
    addr: SocketAddr,
    targets: Vec<Target>,
    connections: usize,
) -> Result<Vec<Answer>, String> {
    let targets = Arc::new(targets);
    let next = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..connections.clamp(1, targets.len().max(1)))
        .map(|_| {
            let (targets, next) = (Arc::clone(&targets), Arc::clone(&next));
            tokio::spawn(async move {
                let mut sender = connect(addr).await?;
                let mut answers = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(target) = targets.get(i) else {
                        return Ok::<_, String>(answers);
                    };
                    answers.push((i, send(&mut sender, addr, target).await?));
                }
            })
        })
        .collect();
    let mut all = Vec::with_capacity(targets.len());
    for task in tasks {
        all.extend(task.await.map_err(|e| e.to_string())??);
    }
    all.sort_by_key(|(i, _)| *i);
    Ok(all.into_iter().map(|(_, answer)| answer).collect())
}
