//! A Lambda Runtime API emulator (`next`, `response`, `error`) that feeds one event many
//! times to one function process, as a warm Lambda sandbox does, and records what the
//! benchmarks need: the time from process spawn to the first answer, each invocation's
//! time from event handed out to answer received, the answers' status codes, and the
//! process's resident memory (VmRSS, VmHWM from /proc) after the first invocation and
//! after the last.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, Semaphore};

/// What one process did under the emulator.
#[derive(Debug, Default)]
pub struct Run {
    /// Spawn to the first answer (the cold start).
    pub cold_start: Duration,
    /// Spawn to the first `next` poll: the process's own start-up, before any event.
    pub startup: Duration,
    /// Event handed out to answer received, per invocation (the first one included).
    pub latencies: Vec<Duration>,
    /// Answers by `statusCode` (0: not an API Gateway answer); `error` posts count as 0.
    pub statuses: BTreeMap<u16, usize>,
    /// VmRSS after the first invocation, in kB.
    pub rss_first_kb: u64,
    /// VmRSS after the last invocation, in kB.
    pub rss_last_kb: u64,
    /// VmHWM (peak resident memory) at the end, in kB.
    pub peak_kb: u64,
}

struct Shared {
    event: Bytes,
    /// One permit per event the emulator may hand out.
    permits: Semaphore,
    handed_out: Mutex<Vec<Instant>>,
    first_poll: Mutex<Option<Instant>>,
    answers: mpsc::UnboundedSender<(usize, Instant, Result<String, String>)>,
}

fn reply(status: u16, body: impl Into<Bytes>) -> hyper::Response<Full<Bytes>> {
    let mut r = hyper::Response::new(Full::new(body.into()));
    *r.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::OK);
    r
}

async fn runtime_api(
    shared: Arc<Shared>,
    req: hyper::Request<Incoming>,
) -> hyper::Response<Full<Bytes>> {
    let path = req.uri().path().to_string();
    if path == "/2018-06-01/runtime/invocation/next" {
        shared
            .first_poll
            .lock()
            .expect("lock")
            .get_or_insert_with(Instant::now);
        let Ok(permit) = shared.permits.acquire().await else {
            return reply(500, "");
        };
        permit.forget();
        let deadline = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() + 30_000)
            .unwrap_or(0);
        let mut r = reply(200, shared.event.clone());
        let index = {
            let mut handed = shared.handed_out.lock().expect("lock");
            handed.push(Instant::now());
            handed.len() - 1
        };
        let h = r.headers_mut();
        let header = |v: String| v.parse().expect("header value");
        h.insert(
            "lambda-runtime-aws-request-id",
            header(format!("bench-{index}")),
        );
        h.insert("lambda-runtime-deadline-ms", header(deadline.to_string()));
        h.insert(
            "lambda-runtime-invoked-function-arn",
            header("arn:aws:lambda:eu-west-1:123456789012:function:bench".into()),
        );
        h.insert(
            "lambda-runtime-trace-id",
            header("Root=1-00000000-000000000000000000000000".into()),
        );
        return r;
    }
    let Some(rest) = path.strip_prefix("/2018-06-01/runtime/invocation/bench-") else {
        return reply(404, "");
    };
    let (index, kind) = rest.split_once('/').unwrap_or((rest, ""));
    let index: usize = index.parse().unwrap_or(usize::MAX);
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let at = Instant::now();
    let text = String::from_utf8_lossy(&body).to_string();
    let result = if kind == "response" {
        Ok(text)
    } else {
        Err(text)
    };
    let _ = shared.answers.send((index, at, result));
    reply(202, "{}")
}

/// Resident memory of `pid` (VmRSS, VmHWM) in kB.
pub fn memory_kb(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn status_of(answer: &Result<String, String>) -> u16 {
    match answer {
        Ok(raw) => serde_json::from_str::<serde_json::Value>(raw)
            .ok()
            .and_then(|v| v["statusCode"].as_u64())
            .unwrap_or(0) as u16,
        Err(_) => 0,
    }
}

/// Starts `binary` against the emulator and feeds it `event` `invocations` times.
pub async fn run(
    binary: &Path,
    function: &str,
    event: &str,
    invocations: usize,
    env: &[(String, String)],
) -> Result<Run, String> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| format!("bind: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let (tx, mut answers) = mpsc::unbounded_channel();
    let shared = Arc::new(Shared {
        event: Bytes::from(event.to_string()),
        permits: Semaphore::new(1),
        handed_out: Mutex::new(Vec::with_capacity(invocations)),
        first_poll: Mutex::new(None),
        answers: tx,
    });
    let server_shared = Arc::clone(&shared);
    let server = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let _ = stream.set_nodelay(true);
            let shared = Arc::clone(&server_shared);
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let shared = Arc::clone(&shared);
                    async move { Ok::<_, Infallible>(runtime_api(shared, req).await) }
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });

    let spawned_at = Instant::now();
    let mut child = tokio::process::Command::new(binary)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env("AWS_LAMBDA_RUNTIME_API", addr.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", function)
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "bench")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "bench")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("spawn {}: {e}", binary.display()))?;
    let pid = child.id().unwrap_or(0);

    let mut out = Run::default();
    let result = async {
        for i in 0..invocations {
            // A guard against a hang, not a timing assertion.
            let next = tokio::time::timeout(Duration::from_secs(60), answers.recv()).await;
            let (index, at, answer) = match next {
                Ok(Some(answer)) => answer,
                _ => return Err(format!("{function}: no answer to invocation {i}")),
            };
            let handed = shared.handed_out.lock().expect("lock").get(index).copied();
            let handed = handed.ok_or_else(|| format!("{function}: unknown request id"))?;
            if i == 0 {
                out.cold_start = at - spawned_at;
                let polled = *shared.first_poll.lock().expect("lock");
                out.startup = polled.map_or(Duration::ZERO, |t| t - spawned_at);
                // Let the process finish its answer and go back to waiting on `next`.
                tokio::time::sleep(Duration::from_millis(5)).await;
                out.rss_first_kb = memory_kb(pid).0;
                // The rest may go now: the first reading was taken while the process idled.
                shared.permits.add_permits(invocations - 1);
            }
            out.latencies.push(at - handed);
            *out.statuses.entry(status_of(&answer)).or_default() += 1;
        }
        // The process is waiting on `next` again, with nothing to hand out.
        tokio::time::sleep(Duration::from_millis(5)).await;
        let (rss, peak) = memory_kb(pid);
        out.rss_last_kb = rss;
        out.peak_kb = peak;
        Ok(())
    }
    .await;
    let _ = child.kill().await;
    server.abort();
    result.map(|()| out)
}
