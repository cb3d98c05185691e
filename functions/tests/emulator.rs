//! Every function binary, run as Lambda runs it: started against a small Lambda Runtime
//! API emulator (the `next` / `response` / `error` endpoints), fed each of its fixtures
//! from `events/`, and held to the fixture's `.expected.json`. This proves the binaries
//! start, read their configuration, parse API Gateway events and answer in Lambda's
//! response format, with no Docker and no AWS.
//!
//! The binaries are the test profile's (what `cargo test` builds); the release profile
//! for Lambda is built by `cargo lambda build --release` / `sam build`.

mod support;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

const REQUEST_ID: &str = "emulated-request-1";

/// One invocation: the event to hand out, and where the function's answer goes.
struct Invocation {
    event: Mutex<Option<String>>,
    answer: Mutex<Option<oneshot::Sender<Result<String, String>>>>,
}

async fn runtime_api(
    inv: Arc<Invocation>,
    req: hyper::Request<Incoming>,
) -> hyper::Response<Full<Bytes>> {
    let path = req.uri().path().to_string();
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&body).to_string();
    let reply = |status: u16, body: String| {
        let mut r = hyper::Response::new(Full::new(Bytes::from(body)));
        *r.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::OK);
        r
    };
    let answer = |result: Result<String, String>| {
        if let Some(tx) = inv.answer.lock().unwrap().take() {
            let _ = tx.send(result);
        }
    };
    match path.as_str() {
        "/2018-06-01/runtime/invocation/next" => {
            let Some(event) = inv.event.lock().unwrap().take() else {
                // One invocation per process: later polls wait until the process is stopped.
                std::future::pending::<()>().await;
                return reply(500, String::new());
            };
            let deadline = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() + 30_000)
                .unwrap_or(0);
            let mut r = reply(200, event);
            let h = r.headers_mut();
            h.insert("lambda-runtime-aws-request-id", REQUEST_ID.parse().unwrap());
            h.insert(
                "lambda-runtime-deadline-ms",
                deadline.to_string().parse().unwrap(),
            );
            h.insert(
                "lambda-runtime-invoked-function-arn",
                "arn:aws:lambda:eu-west-1:123456789012:function:emulated"
                    .parse()
                    .unwrap(),
            );
            h.insert(
                "lambda-runtime-trace-id",
                "Root=1-00000000-000000000000000000000000".parse().unwrap(),
            );
            r
        }
        p if p == format!("/2018-06-01/runtime/invocation/{REQUEST_ID}/response") => {
            answer(Ok(text));
            reply(202, "{}".into())
        }
        p if p.ends_with("/error") => {
            answer(Err(format!("{p}: {text}")));
            reply(202, "{}".into())
        }
        _ => reply(404, String::new()),
    }
}

/// Starts the emulator for one invocation; answers its address and the answer's receiver.
async fn emulator(event: String) -> (SocketAddr, oneshot::Receiver<Result<String, String>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (tx, rx) = oneshot::channel();
    let inv = Arc::new(Invocation {
        event: Mutex::new(Some(event)),
        answer: Mutex::new(Some(tx)),
    });
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let inv = Arc::clone(&inv);
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let inv = Arc::clone(&inv);
                    async move { Ok::<_, Infallible>(runtime_api(inv, req).await) }
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (addr, rx)
}

fn binary(function: &str) -> PathBuf {
    // Cargo names one binary of this package for us; the others sit beside it.
    let any = Path::new(env!("CARGO_BIN_EXE_bapi"));
    any.with_file_name(function)
}

/// Runs `function` once on `event` and returns its Lambda answer (statusCode, body).
async fn invoke(
    function: &str,
    event: String,
    env: Vec<(String, String)>,
) -> Result<(u16, Value), String> {
    let lambda = invoke_raw(function, event, env).await?;
    let status = lambda["statusCode"].as_u64().unwrap_or(0) as u16;
    let body = lambda["body"]
        .as_str()
        .and_then(|b| serde_json::from_str(b).ok())
        .unwrap_or(Value::Null);
    Ok((status, body))
}

/// Runs `function` once on `event` and returns what it answered the runtime.
async fn invoke_raw(
    function: &str,
    event: String,
    env: Vec<(String, String)>,
) -> Result<Value, String> {
    let (addr, answer) = emulator(event).await;
    let mut child = tokio::process::Command::new(binary(function))
        .envs(env)
        .env("AWS_LAMBDA_RUNTIME_API", addr.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", function)
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "emulated")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "emulated")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("spawn {function}: {e}"))?;
    // A guard against a hang, not a timing assertion.
    let result = tokio::time::timeout(Duration::from_secs(60), answer).await;
    let _ = child.kill().await;
    let raw = match result {
        Ok(Ok(Ok(raw))) => raw,
        Ok(Ok(Err(error))) => return Err(format!("the function reported an error: {error}")),
        _ => {
            let mut stderr = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = tokio::io::AsyncReadExt::read_to_string(&mut e, &mut stderr).await;
            }
            return Err(format!("no answer; stderr: {stderr}"));
        }
    };
    serde_json::from_str(&raw).map_err(|e| format!("not JSON: {e}: {raw}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_function_binary_answers_its_fixtures_under_a_runtime_emulator() {
    let dir = std::env::temp_dir().join(format!("emulator-{}", std::process::id()));
    let seed = support::seed(&dir).await;
    let mut failures = Vec::new();
    let mut functions_seen = std::collections::BTreeSet::new();
    for (i, (function, case, event_file, expected_file)) in
        support::fixtures().into_iter().enumerate()
    {
        functions_seen.insert(function.clone());
        let data_file = seed.copy_to(&dir.join(format!("case-{i}.json")));
        let event = seed.fill(&std::fs::read_to_string(&event_file).expect("event"));
        match invoke(&function, event, support::env(&data_file)).await {
            Ok((status, body)) => {
                if let Err(why) = support::compare(&seed, &expected_file, status, &body) {
                    failures.push(format!("{function}/{case}: {why}"));
                }
            }
            Err(why) => failures.push(format!("{function}/{case}: {why}")),
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        failures.is_empty(),
        "{} invocation(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    let all: std::collections::BTreeSet<String> = shared::routes::functions()
        .into_iter()
        .map(String::from)
        .collect();
    assert_eq!(functions_seen, all, "every function binary ran");
}

/// The scheduled rotation: EventBridge Scheduler invokes `key-rotation` with a rotation
/// request; it rotates the keyring of its store and answers its lifecycle. A malformed
/// request is reported as a failed invocation and changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_key_rotation_function_rotates_the_keyring_of_its_store() {
    let dir = std::env::temp_dir().join(format!("emulator-rotation-{}", std::process::id()));
    let seed = support::seed(&dir).await;
    let data_file = seed.copy_to(&dir.join("rotation.json"));
    let keyring = |path: &Path| {
        let data: Value =
            serde_json::from_slice(&std::fs::read(path).expect("data")).expect("JSON");
        data["keyring"].clone()
    };
    let before = keyring(&data_file);

    let refused = invoke_raw(
        "key-rotation",
        r#"{"keys":"everything"}"#.into(),
        support::env(&data_file),
    )
    .await;
    assert!(refused.is_err(), "{refused:?}");
    assert_eq!(keyring(&data_file), before);

    let answer = invoke_raw(
        "key-rotation",
        r#"{"keys":"all"}"#.into(),
        support::env(&data_file),
    )
    .await
    .expect("rotated");
    assert_eq!(answer["object"], "instance_keys");
    let states: Vec<&str> = answer["session_signing_keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|k| k["state"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(states, ["current", "next"]);
    let after = keyring(&data_file);
    assert_eq!(after["version"], before["version"].as_u64().unwrap() + 1);
    assert_eq!(after["client_token_secrets"].as_array().unwrap().len(), 2);
    let _ = std::fs::remove_dir_all(&dir);
}
