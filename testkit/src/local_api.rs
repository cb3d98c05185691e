//! The `local-api` binary as a process: started on a free port with the service's settings
//! taken out of the inherited environment (only those given apply), and handed back once it
//! prints its ready line. Stopped (killed) when dropped.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

/// The service's settings a test or benchmark must not inherit by accident.
pub const SETTINGS: [&str; 7] = [
    "FRONTEND_API_URL",
    "BACKEND_API_SECRET_KEY",
    "STORE_BACKEND",
    "DYNAMODB_TABLE_NAME",
    "EMBEDDED_STORE_PATH",
    "INSTANCE_TYPE",
    "WEBHOOK_ALLOW_LOOPBACK",
];

/// How long it may take to say it is ready (a guard against a hang).
const READY_TIMEOUT: Duration = Duration::from_secs(60);

pub struct LocalApi {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    /// The Backend API secret key it printed: the one it made up (one it was given is not
    /// printed).
    pub secret_key: Option<String>,
    /// What it printed, up to and including its ready line.
    pub banner: Vec<String>,
    /// What it prints after that, line by line.
    lines: mpsc::Receiver<String>,
    /// What it prints on standard error (logs; a development instance's emailed codes),
    /// line by line; each line is also passed on to the caller's standard error.
    errors: mpsc::Receiver<String>,
}

impl LocalApi {
    /// Starts `binary --port 0 <args>` with `RUST_LOG=warn` and `env` on top; its standard
    /// error is passed on to the caller's (and kept: [`LocalApi::next_error_line`]).
    pub fn start(binary: &Path, args: &[&str], env: &[(&str, &str)]) -> Result<Self, String> {
        let mut command = Command::new(binary);
        command.args(["--port", "0"]).args(args);
        for name in SETTINGS {
            command.env_remove(name);
        }
        let mut child = command
            .env("RUST_LOG", "warn")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("spawn {}: {e}", binary.display()))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let stderr = child.stderr.take().ok_or("no stderr")?;
        let (error_tx, errors) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("{line}");
                let _ = error_tx.send(line);
            }
        });
        let (tx, lines) = mpsc::channel();
        // Read everything it prints, so that it never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.as_ref().is_some_and(|tx| tx.send(line).is_err()) {
                    tx = None;
                }
            }
        });
        let mut server = Self {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            secret_key: None,
            banner: Vec::new(),
            lines,
            errors,
        };
        loop {
            let Some(line) = server.next_line(READY_TIMEOUT) else {
                return Err(format!(
                    "{} did not say it was ready; it printed {:?}",
                    binary.display(),
                    server.banner
                ));
            };
            server.banner.push(line.clone());
            if let Some(key) = line.split_once("secret key: ").map(|(_, k)| k.trim()) {
                server.secret_key = Some(key.to_string());
            }
            if let Some((_, addr)) = line.split_once("ready on http://") {
                server.addr = addr
                    .trim()
                    .parse()
                    .map_err(|e| format!("ready line {line:?}: {e}"))?;
                return Ok(server);
            }
        }
    }

    /// `http://<addr>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The next line it prints, if one comes within `timeout`.
    pub fn next_line(&self, timeout: Duration) -> Option<String> {
        self.lines.recv_timeout(timeout).ok()
    }

    /// The next line it prints on standard error, if one comes within `timeout`.
    pub fn next_error_line(&self, timeout: Duration) -> Option<String> {
        self.errors.recv_timeout(timeout).ok()
    }

    /// Waits for it to exit.
    pub fn wait(&mut self) -> std::io::Result<ExitStatus> {
        self.child.wait()
    }
}

impl Drop for LocalApi {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A plain HTTP/1 client for talking to a running `local-api`.
pub struct Http(Client<HttpConnector, Full<Bytes>>);

/// An answer: its status, headers and JSON body (`Null` when empty; a string for a
/// `text/plain` body).
pub struct Answer {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Value,
}

impl Default for Http {
    fn default() -> Self {
        Self::new()
    }
}

impl Http {
    pub fn new() -> Self {
        Self(Client::builder(TokioExecutor::new()).build_http())
    }

    pub async fn send(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: Option<(&str, String)>,
    ) -> Answer {
        let mut b = http::Request::builder().method(method).uri(url);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let payload = match body {
            Some((ct, text)) => {
                b = b.header("content-type", ct);
                Bytes::from(text)
            }
            None => Bytes::new(),
        };
        let resp = self
            .0
            .request(b.body(Full::new(payload)).expect("request"))
            .await
            .expect("response");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let bytes = resp.into_body().collect().await.expect("body").to_bytes();
        let text = headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.starts_with("text/plain"));
        let body = if bytes.is_empty() {
            Value::Null
        } else if text {
            Value::String(String::from_utf8_lossy(&bytes).into_owned())
        } else {
            serde_json::from_slice(&bytes).expect("JSON")
        };
        Answer {
            status,
            headers,
            body,
        }
    }
}

/// The `__client` cookie an answer set, as a `Cookie` header value.
pub fn client_cookie(a: &Answer) -> String {
    a.headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| c.strip_prefix("__client="))
        .and_then(|c| c.split(';').next())
        .map(|v| format!("__client={v}"))
        .expect("__client cookie")
}
