//! A Lambda Runtime API emulator (`next`, `response`, `error`, `init/error`). It starts one
//! function process and feeds it one event as many times as asked, one invocation at a
//! time, as a warm Lambda sandbox does; no Docker, no AWS.
//!
//! The tests play each fixture once ([`invoke`]); the benchmarks take a process's cold start
//! and steady state from a [`Run`]: spawn to the first answer, each invocation's time from
//! event handed out to answer received, the answers' status codes, and the resident memory
//! (VmRSS, VmHWM from /proc) after the first invocation and after the last.

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
use serde_json::Value;
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot, Semaphore};

/// How long the emulator waits for one answer: a guard against a hang, not a timing
/// assertion.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(60);

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
    /// The first invocation's answer: what the function posted to `response`, or (`Err`)
    /// to `error`.
    pub first_answer: Option<Result<String, String>>,
    /// VmRSS after the first invocation, in kB.
    pub rss_first_kb: u64,
    /// VmRSS after the last invocation, in kB.
    pub rss_last_kb: u64,
    /// VmHWM (peak resident memory) at the end, in kB.
    pub peak_kb: u64,
    /// What the process wrote to standard output (its log lines and metrics), when kept.
    pub stdout: String,
}

/// What the emulator hears of the process.
enum Heard {
    /// Invocation `index` answered at `at`: its response, or (`Err`) its error report.
    Answer(usize, Instant, Result<String, String>),
    /// The process reported a start-up error.
    InitError(String),
    /// The process exited.
    Exited(String),
}

struct Shared {
    event: Bytes,
    function_arn: String,
    /// One permit per event the emulator may hand out.
    permits: Semaphore,
    handed_out: Mutex<Vec<Instant>>,
    first_poll: Mutex<Option<Instant>>,
    heard: mpsc::UnboundedSender<Heard>,
    /// The `Lambda-Runtime-Trace-Id` of every invocation.
    trace_id: String,
}

/// The trace header Lambda hands a function whose tracing is `PassThrough` (not sampled).
pub const TRACE_NOT_SAMPLED: &str =
    "Root=1-00000000-000000000000000000000000;Parent=0000000000000000;Sampled=0";
/// The trace header of a sampled request (tracing `Active`).
pub const TRACE_SAMPLED: &str =
    "Root=1-00000000-000000000000000000000000;Parent=0000000000000000;Sampled=1";

const NEXT: &str = "/2018-06-01/runtime/invocation/next";
const INVOCATION: &str = "/2018-06-01/runtime/invocation/emulated-";
const INIT_ERROR: &str = "/2018-06-01/runtime/init/error";

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
    if path == NEXT {
        shared
            .first_poll
            .lock()
            .expect("lock")
            .get_or_insert_with(Instant::now);
        // Once the events run out, the poll waits until the process is stopped.
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
            header(format!("emulated-{index}")),
        );
        h.insert("lambda-runtime-deadline-ms", header(deadline.to_string()));
        h.insert(
            "lambda-runtime-invoked-function-arn",
            header(shared.function_arn.clone()),
        );
        h.insert("lambda-runtime-trace-id", header(shared.trace_id.clone()));
        return r;
    }
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let at = Instant::now();
    let text = String::from_utf8_lossy(&body).to_string();
    if path == INIT_ERROR {
        let _ = shared.heard.send(Heard::InitError(text));
        return reply(202, "{}");
    }
    let Some(rest) = path.strip_prefix(INVOCATION) else {
        return reply(404, "");
    };
    let (index, kind) = rest.split_once('/').unwrap_or((rest, ""));
    let index: usize = index.parse().unwrap_or(usize::MAX);
    let result = match kind {
        "response" => Ok(text),
        "error" => Err(text),
        _ => return reply(404, ""),
    };
    let _ = shared.heard.send(Heard::Answer(index, at, result));
    reply(202, "{}")
}

/// Resident memory of `pid` (VmRSS, VmHWM) in kB.
fn memory_kb(pid: u32) -> (u64, u64) {
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
        Ok(raw) => serde_json::from_str::<Value>(raw)
            .ok()
            .and_then(|v| v["statusCode"].as_u64())
            .unwrap_or(0) as u16,
        Err(_) => 0,
    }
}

/// Starts `binary` as the function `function` (with `env` on top of the Lambda variables)
/// and feeds it `event` `invocations` times. Its standard error is discarded: a measured
/// process should not wait on a reader.
pub async fn run(
    binary: &Path,
    function: &str,
    event: &str,
    invocations: usize,
    env: &[(String, String)],
) -> Result<Run, String> {
    emulate(
        binary,
        function,
        event,
        invocations,
        env,
        false,
        TRACE_NOT_SAMPLED,
    )
    .await
}

/// As [`run`], with `trace_id` as each invocation's trace header ([`TRACE_SAMPLED`]: as
/// Lambda hands it with tracing on).
pub async fn run_traced(
    binary: &Path,
    function: &str,
    event: &str,
    invocations: usize,
    env: &[(String, String)],
    trace_id: &str,
) -> Result<Run, String> {
    emulate(binary, function, event, invocations, env, false, trace_id).await
}

/// Runs `function` once on `event` and answers what it answered the runtime (for an API
/// Gateway event: `statusCode`, `headers`, `body`). An error report, a start-up failure or
/// no answer is an `Err`, with what the process wrote to standard error.
pub async fn invoke(
    binary: &Path,
    function: &str,
    event: &str,
    env: &[(String, String)],
) -> Result<Value, String> {
    invoke_with_output(binary, function, event, env)
        .await
        .map(|(answer, _)| answer)
}

/// As [`invoke`], also answering what the process wrote to standard output (its log lines,
/// and the metrics it flushed), up to its stop after the answer.
pub async fn invoke_with_output(
    binary: &Path,
    function: &str,
    event: &str,
    env: &[(String, String)],
) -> Result<(Value, String), String> {
    let run = emulate(binary, function, event, 1, env, true, TRACE_NOT_SAMPLED).await?;
    match run.first_answer {
        Some(Ok(raw)) => serde_json::from_str(&raw)
            .map(|answer| (answer, run.stdout))
            .map_err(|e| format!("not JSON: {e}: {raw}")),
        Some(Err(error)) => Err(format!("the function reported an error: {error}")),
        None => Err("no answer".into()),
    }
}

async fn emulate(
    binary: &Path,
    function: &str,
    event: &str,
    invocations: usize,
    env: &[(String, String)],
    keep_output: bool,
    trace_id: &str,
) -> Result<Run, String> {
    assert!(invocations > 0, "at least one invocation");
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| format!("bind: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let (heard_tx, mut heard) = mpsc::unbounded_channel();
    let shared = Arc::new(Shared {
        event: Bytes::from(event.to_string()),
        function_arn: format!("arn:aws:lambda:eu-west-1:123456789012:function:{function}"),
        permits: Semaphore::new(1),
        handed_out: Mutex::new(Vec::with_capacity(invocations)),
        first_poll: Mutex::new(None),
        heard: heard_tx.clone(),
        trace_id: trace_id.to_string(),
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
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "emulated")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "emulated")
        .stdin(Stdio::null())
        .stdout(if keep_output {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stderr(if keep_output {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("spawn {}: {e}", binary.display()))?;
    let pid = child.id().unwrap_or(0);
    // Read what is kept as it comes, so the process never blocks on a full pipe.
    let stderr = child.stderr.take().map(read_all);
    let stdout = child.stdout.take().map(read_all);
    // One task waits on the process: it reports an exit, or stops the process when told.
    let (stop, stopped) = oneshot::channel::<()>();
    let watcher = tokio::spawn(async move {
        tokio::select! {
            status = child.wait() => {
                let status = status.map_or_else(|e| e.to_string(), |s| s.to_string());
                let _ = heard_tx.send(Heard::Exited(status));
            }
            _ = stopped => {
                let _ = child.kill().await;
            }
        }
    });

    let mut out = Run::default();
    let result = async {
        for i in 0..invocations {
            let (index, at, answer) = match tokio::time::timeout(ANSWER_TIMEOUT, heard.recv()).await
            {
                Ok(Some(Heard::Answer(index, at, answer))) => (index, at, answer),
                Ok(Some(Heard::InitError(error))) => {
                    return Err(format!("{function}: start-up failed: {error}"))
                }
                Ok(Some(Heard::Exited(status))) => {
                    return Err(format!(
                        "{function}: the process exited ({status}) before answering invocation {i}"
                    ))
                }
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
            if i == 0 {
                out.first_answer = Some(answer);
            }
        }
        // The process is waiting on `next` again, with nothing to hand out.
        tokio::time::sleep(Duration::from_millis(5)).await;
        let (rss, peak) = memory_kb(pid);
        out.rss_last_kb = rss;
        out.peak_kb = peak;
        Ok(())
    }
    .await;
    let _ = stop.send(());
    let _ = watcher.await;
    server.abort();
    if let Some(stdout) = stdout {
        out.stdout = tokio::time::timeout(Duration::from_secs(5), stdout)
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or_default();
    }
    match (result, stderr) {
        (Ok(()), _) => Ok(out),
        (Err(why), None) => Err(why),
        (Err(why), Some(stderr)) => {
            let text = tokio::time::timeout(Duration::from_secs(5), stderr)
                .await
                .ok()
                .and_then(Result::ok)
                .unwrap_or_default();
            Err(format!("{why}; stderr: {text}"))
        }
    }
}

/// Reads a pipe to its end, on a task of its own.
fn read_all(
    mut pipe: impl tokio::io::AsyncRead + Unpin + Send + 'static,
) -> tokio::task::JoinHandle<String> {
    tokio::spawn(async move {
        let mut text = Vec::new();
        let _ = pipe.read_to_end(&mut text).await;
        String::from_utf8_lossy(&text).to_string()
    })
}
